//! The pairing link in the owner's QR code: `argusai://pair?code=…&url=…&fp=sha256:…`. The agent
//! writes it (a new owner code), a phone reads it; both use this one definition.
//!
//! - `code`: the one-time pairing code;
//! - `url`: the relay's public URL, where the phone redeems the code and sends its tokens
//!   ([`check_relay_url`]);
//! - `fp`: the LAN certificate's fingerprint, which the phone pins ([`CertFingerprint`]);
//! - `okp` (optional): the SHA-256 of the agent's Oblivious HTTP key config, which a sealed-mode
//!   phone pins ([`crate::sealed`]).

use std::fmt;

use url::Url;

use crate::cert_fingerprint::{CertFingerprint, FingerprintError};

/// The link's scheme and host: `argusai://pair`.
const SCHEME: &str = "argusai";
const HOST: &str = "pair";

/// Longest accepted link (a QR code holds a few hundred bytes; anything longer is not ours).
const MAX_URI_BYTES: usize = 2048;
/// Longest accepted code (the agent's are 6 to 8 characters).
const MAX_CODE_BYTES: usize = 32;

/// A pairing link's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairUri {
    /// The one-time code, as shown (normalised by the server).
    pub code: String,
    /// The relay's public URL, without a trailing `/`.
    pub url: String,
    /// The LAN certificate the phone will pin.
    pub fingerprint: CertFingerprint,
    /// `okp`: the agent's Oblivious HTTP key pin (sealed mode), when the link carries one.
    pub ohttp_keys_sha256: Option<String>,
}

/// Why a text is not a pairing link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairUriError {
    #[error("longer than {MAX_URI_BYTES} bytes")]
    TooLong,
    #[error("not a URI: {0}")]
    NotAUri(#[from] url::ParseError),
    #[error("expected argusai://pair?…")]
    NotAPairingLink,
    #[error("{0} is given twice")]
    Repeated(&'static str),
    #[error("no {0}")]
    Missing(&'static str),
    #[error("the code is not a pairing code")]
    BadCode,
    #[error("okp is not a key pin (64 lower-case hex digits)")]
    BadKeyPin,
    #[error(transparent)]
    BadRelayUrl(#[from] RelayUrlError),
    #[error(transparent)]
    BadFingerprint(#[from] FingerprintError),
}

/// A relay URL a phone must not send tokens to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relay URL {url:?}: {reason}")]
pub struct RelayUrlError {
    pub url: String,
    pub reason: &'static str,
}

impl PairUri {
    /// Reads a scanned link. Surrounding white space is ignored, unknown query keys too (a later
    /// agent may add some); every known key must appear once.
    pub fn parse(text: &str) -> Result<PairUri, PairUriError> {
        let text = text.trim();
        if text.len() > MAX_URI_BYTES {
            return Err(PairUriError::TooLong);
        }
        let uri = Url::parse(text)?;
        if uri.scheme() != SCHEME || uri.host_str() != Some(HOST) {
            return Err(PairUriError::NotAPairingLink);
        }
        let (mut code, mut relay, mut fp, mut okp) = (None, None, None, None);
        for (key, value) in uri.query_pairs() {
            let (name, slot) = match key.as_ref() {
                "code" => ("code", &mut code),
                "url" => ("url", &mut relay),
                "fp" => ("fp", &mut fp),
                "okp" => ("okp", &mut okp),
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(PairUriError::Repeated(name));
            }
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(PairUriError::Missing("code"))?;
        if code.len() > MAX_CODE_BYTES
            || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(PairUriError::BadCode);
        }
        let relay = relay.ok_or(PairUriError::Missing("url"))?;
        check_relay_url(&relay)?;
        let fingerprint = CertFingerprint::parse(&fp.ok_or(PairUriError::Missing("fp"))?)?;
        if okp.as_deref().is_some_and(|p| !crate::sealed::is_pin(p)) {
            return Err(PairUriError::BadKeyPin);
        }
        Ok(PairUri {
            code,
            url: relay.trim_end_matches('/').to_owned(),
            fingerprint,
            ohttp_keys_sha256: okp,
        })
    }
}

/// The link. Values are percent-encoded except `:` and `/`, which a query may carry as they are
/// (RFC 3986 §3.4), so the link stays readable.
impl fmt::Display for PairUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}://{HOST}?code=")?;
        write_encoded(f, &self.code)?;
        f.write_str("&url=")?;
        write_encoded(f, &self.url)?;
        f.write_str("&fp=")?;
        write_encoded(f, &self.fingerprint.to_string())?;
        if let Some(pin) = &self.ohttp_keys_sha256 {
            f.write_str("&okp=")?;
            write_encoded(f, pin)?;
        }
        Ok(())
    }
}

fn write_encoded(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/') {
            fmt::Write::write_char(f, char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// A relay URL a phone will send tokens to: `https://…`, or `http://` to a loopback host only (a
/// relay under development). No user info, no query, no fragment.
pub fn check_relay_url(url: &str) -> Result<(), RelayUrlError> {
    let bad = |reason| RelayUrlError {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|_| bad("not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(bad("plain http is allowed to a loopback address only"))
            }
        }
        _ => Err(bad("must be https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn link(code: &str, url: &str) -> PairUri {
        PairUri {
            code: code.to_owned(),
            url: url.to_owned(),
            fingerprint: CertFingerprint::parse(FP).unwrap(),
            ohttp_keys_sha256: None,
        }
    }

    #[test]
    fn the_oblivious_http_key_pin_rides_in_okp() {
        let pin = "0f".repeat(32);
        let made = PairUri {
            ohttp_keys_sha256: Some(pin.clone()),
            ..link("K7QRTA", "https://relay.example.com")
        };
        assert_eq!(
            made.to_string(),
            format!("argusai://pair?code=K7QRTA&url=https://relay.example.com&fp={FP}&okp={pin}")
        );
        assert_eq!(PairUri::parse(&made.to_string()), Ok(made));
        for bad in ["0F".repeat(32), "0f".repeat(31), "zz".repeat(32)] {
            let uri = format!(
                "argusai://pair?code=K7QRTA&url=https://relay.example.com&fp={FP}&okp={bad}"
            );
            assert_eq!(PairUri::parse(&uri), Err(PairUriError::BadKeyPin), "{bad}");
        }
    }

    #[test]
    fn the_link_keeps_colons_and_slashes_readable() {
        assert_eq!(
            link("K7QRTA", "https://relay.example.com").to_string(),
            format!("argusai://pair?code=K7QRTA&url=https://relay.example.com&fp={FP}")
        );
    }

    #[test]
    fn the_link_encodes_what_a_query_cannot_carry() {
        assert_eq!(
            link("K7-QR", "https://relay.example.com/a b&c=d+e").to_string(),
            format!(
                "argusai://pair?code=K7-QR&url=https://relay.example.com/a%20b%26c%3Dd%2Be&fp={FP}"
            )
        );
    }

    #[test]
    fn a_phone_reads_what_the_agent_writes() {
        for made in [
            link("K7QRTA", "https://relay.example.com"),
            link("K7-QRTA", "https://relay.example.com:8443/argus"),
            link("ABC123", "http://127.0.0.1:8787"),
            link("ABC123", "http://[::1]:8787"),
        ] {
            assert_eq!(
                PairUri::parse(&made.to_string()),
                Ok(made.clone()),
                "{made}"
            );
        }
    }

    #[test]
    fn reading_drops_a_trailing_slash_and_surrounding_space() {
        let text = format!("  argusai://pair?code=K7QRTA&url=https://relay.example.com/&fp={FP}\n");
        assert_eq!(
            PairUri::parse(&text),
            Ok(link("K7QRTA", "https://relay.example.com"))
        );
    }

    #[test]
    fn reading_ignores_keys_it_does_not_know() {
        let text = format!("argusai://pair?v=2&code=K7QRTA&url=https://r.example&fp={FP}&x=");
        assert_eq!(
            PairUri::parse(&text),
            Ok(link("K7QRTA", "https://r.example"))
        );
    }

    #[test]
    fn refuses_what_is_not_a_pairing_link() {
        use PairUriError as E;
        // Each bad link, and what the refusal must say.
        type Expected = fn(&PairUriError) -> bool;
        let cases: Vec<(String, Expected)> = vec![
            ("not a uri".into(), |e| matches!(e, E::NotAUri(_))),
            ("".into(), |e| matches!(e, E::NotAUri(_))),
            (format!("https://pair?code=A&url=https://r&fp={FP}"), |e| {
                matches!(e, E::NotAPairingLink)
            }),
            (
                format!("argusai://other?code=A&url=https://r&fp={FP}"),
                |e| matches!(e, E::NotAPairingLink),
            ),
            (format!("argusai://pair?url=https://r&fp={FP}"), |e| {
                *e == E::Missing("code")
            }),
            (format!("argusai://pair?code=&url=https://r&fp={FP}"), |e| {
                *e == E::Missing("code")
            }),
            (format!("argusai://pair?code=A&fp={FP}"), |e| {
                *e == E::Missing("url")
            }),
            ("argusai://pair?code=A&url=https://r".into(), |e| {
                *e == E::Missing("fp")
            }),
            (
                "argusai://pair?code=A&url=https://r&fp=sha256:abcd".into(),
                |e| matches!(e, E::BadFingerprint(_)),
            ),
            (
                format!("argusai://pair?code=A&code=B&url=https://r&fp={FP}"),
                |e| *e == E::Repeated("code"),
            ),
            (
                format!("argusai://pair?code=A&url=https://r&url=https://s&fp={FP}"),
                |e| *e == E::Repeated("url"),
            ),
            (
                format!("argusai://pair?code=A&url=https://r&fp={FP}&fp={FP}"),
                |e| *e == E::Repeated("fp"),
            ),
            (
                format!("argusai://pair?code=A%20B&url=https://r&fp={FP}"),
                |e| *e == E::BadCode,
            ),
            (
                format!("argusai://pair?code=A%0A&url=https://r&fp={FP}"),
                |e| *e == E::BadCode,
            ),
            (
                format!(
                    "argusai://pair?code={}&url=https://r&fp={FP}",
                    "A".repeat(33)
                ),
                |e| *e == E::BadCode,
            ),
            (
                format!("argusai://pair?code=A&url=http://relay.example.com&fp={FP}"),
                |e| matches!(e, E::BadRelayUrl(_)),
            ),
            (format!("argusai://pair?code=A&url=ftp://r&fp={FP}"), |e| {
                matches!(e, E::BadRelayUrl(_))
            }),
            (
                format!("argusai://pair?code=A&url=https://u:p@r&fp={FP}"),
                |e| matches!(e, E::BadRelayUrl(_)),
            ),
            (
                format!("argusai://pair?code=A&url=not%20a%20url&fp={FP}"),
                |e| matches!(e, E::BadRelayUrl(_)),
            ),
            (
                format!(
                    "argusai://pair?code=A&url=https://r&fp={FP}&pad={}",
                    "x".repeat(2048)
                ),
                |e| *e == E::TooLong,
            ),
        ];
        for (text, expected) in cases {
            match PairUri::parse(&text) {
                Ok(p) => panic!("{text:?} was read as {p:?}"),
                Err(e) => assert!(expected(&e), "{text:?}: {e:?}"),
            }
        }
    }

    #[test]
    fn plain_http_relays_are_for_loopback_only() {
        assert!(check_relay_url("http://127.0.0.1:8787").is_ok());
        assert!(check_relay_url("http://localhost:8787").is_ok());
        assert!(check_relay_url("http://[::1]:8787").is_ok());
        assert!(check_relay_url("https://relay.example.com").is_ok());
        let refused = check_relay_url("http://192.168.1.2:8787").unwrap_err();
        assert_eq!(
            refused.reason,
            "plain http is allowed to a loopback address only"
        );
    }

    #[test]
    fn relay_urls_carry_no_credentials_query_or_fragment() {
        for bad in [
            "https://user@relay.example.com",
            "https://relay.example.com/?a=1",
            "https://relay.example.com/#x",
            "relay.example.com",
        ] {
            assert!(check_relay_url(bad).is_err(), "{bad}");
        }
    }
}
