//! The values a policy compares: TLS versions, software versions, image qualities.

use std::fmt;

/// TLS protocol versions, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// SSLv3 or older: below every minimum.
    Ssl,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// A policy value: `"1.0"`, `"1.1"`, `"1.2"` or `"1.3"`.
    pub fn from_policy(s: &str) -> Option<TlsVersion> {
        Some(match s {
            "1.0" => TlsVersion::Tls10,
            "1.1" => TlsVersion::Tls11,
            "1.2" => TlsVersion::Tls12,
            "1.3" => TlsVersion::Tls13,
            _ => return None,
        })
    }

    /// What a listener reports: Cloudflare's `request.cf.tlsVersion` (`"TLSv1.3"`, `"TLSv1"`),
    /// rustls' names (`"TLSv1_3"`), `"SSLv3"`. Empty (plain HTTP) or anything else: `None`.
    pub fn from_reported(s: &str) -> Option<TlsVersion> {
        if s.len() >= 4 && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SSLv")) {
            return Some(TlsVersion::Ssl);
        }
        let rest = s
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("TLSv"))
            .and(s.get(4..))?;
        Some(match rest {
            "1" | "1.0" | "1_0" => TlsVersion::Tls10,
            "1.1" | "1_1" => TlsVersion::Tls11,
            "1.2" | "1_2" => TlsVersion::Tls12,
            "1.3" | "1_3" => TlsVersion::Tls13,
            _ => return None,
        })
    }
}

/// Image quality a device gets when it does not ask for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageQuality {
    /// The backend's bytes, untouched.
    Original,
    High,
    Mobile,
    Low,
}

impl ImageQuality {
    pub const ALL: [ImageQuality; 4] = [
        ImageQuality::Original,
        ImageQuality::High,
        ImageQuality::Mobile,
        ImageQuality::Low,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ImageQuality::Original => "original",
            ImageQuality::High => "high",
            ImageQuality::Mobile => "mobile",
            ImageQuality::Low => "low",
        }
    }

    pub fn parse(s: &str) -> Option<ImageQuality> {
        ImageQuality::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

/// A dotted numeric version (`"1.4.0"`, `"16"`, `"12.1.3.7"`), compared component by component
/// as numbers, missing components counting as 0 (`"1.4"` == `"1.4.0"`, `"1.10"` > `"1.9"`).
/// A pre-release (`"1.4.0-beta"`) sorts before its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    parts: [u32; 4],
    /// `false` for a pre-release, so that pre-releases sort first.
    release: bool,
}

impl Version {
    /// Strict form for policy documents: 1 to 4 dot-separated decimal numbers, nothing else.
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = [0u32; 4];
        for (i, comp) in s.split('.').enumerate() {
            let slot = parts.get_mut(i)?;
            *slot = parse_number(comp)?;
        }
        Some(Version {
            parts,
            release: true,
        })
    }

    /// Lenient form for what devices report: the leading dotted number, then optionally
    /// `-pre-release` (sorts before the release) or `+build` / ` (build)` (ignored). Components
    /// past the fourth are ignored. `None` when there is no leading number.
    pub fn parse_reported(s: &str) -> Option<Version> {
        let s = s.trim();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, suffix) = s.split_at(end);
        let release = match suffix.chars().next() {
            None | Some('+') | Some(' ') | Some('(') => true,
            Some('-') => false,
            Some(_) => return None,
        };
        let mut parts = [0u32; 4];
        for (i, comp) in num.split('.').enumerate() {
            let v = parse_number(comp)?;
            if let Some(slot) = parts.get_mut(i) {
                *slot = v;
            }
        }
        Some(Version { parts, release })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.parts;
        write!(f, "{a}.{b}.{c}")?;
        if d != 0 {
            write!(f, ".{d}")?;
        }
        if !self.release {
            f.write_str("-pre")?;
        }
        Ok(())
    }
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
