//! The access policy: one declarative TOML document, validated once, evaluated per request.
//!
//! ```toml
//! version = 1
//! [geo]
//! allow_countries = ["US", "CA"]   # or deny_countries = ["T1"]; not both
//! deny_asns = [64496]
//! min_tls_version = "1.2"
//! [devices]
//! platforms = ["ios", "android"]
//! min_app_version = "1.4.0"
//! min_os_version = { ios = "16.0", android = "12" }
//! [paths]
//! allow = ["@default", "GET /api/v1/digests/*"]
//! deny = ["@default"]
//! [images]
//! default_quality = "original"
//! platform_quality = { ios = "mobile" }
//! webp = true                      # false: JPEG only (the Workers free plan's 10 ms of CPU)
//! [sealed]
//! required = true                  # device requests only sealed (Oblivious HTTP); pairing stays plain
//! ```
//!
//! [`Policy::from_toml`] parses and validates (unknown fields are errors; every error names its
//! field); [`Policy::evaluate`] answers [`Decision::Allow`] or [`Decision::Deny`] with a stable
//! reason code. Globs are compiled at parse time and evaluation does not allocate.
//!
//! `docs/policy.md` is the user-facing reference: fields, reason codes, defaults, what happens
//! when a fact is missing, and how to deploy a change.
//!
//! # Evaluation order (the first failing rule is reported)
//! 1. `geo.min_tls_version` → `tls.version_unknown`, `tls.version_too_old`
//! 2. `geo.allow_countries` / `geo.deny_countries` → `geo.country_not_allowed`, `geo.country_denied`
//! 3. `geo.deny_asns` → `geo.asn_denied`
//! 4. `paths.deny` → `path.denied` (deny always wins), then `paths.allow` → `path.not_allowed`
//! 5. with a device: `devices.platforms` → `device.platform_not_allowed`;
//!    `devices.min_app_version` → `device.app_version_unknown`, `device.app_too_old`;
//!    `devices.min_os_version` → `device.os_version_unknown`, `device.os_too_old`;
//!    read-only scope and a method other than GET/HEAD → `scope.read_only` (except the relay's
//!    self-service routes — sign out, rename or revoke *this* device — which the agent restricts
//!    to the calling device).
//!
//! # Missing facts
//! - No country (or an empty one) counts as `"XX"`, Cloudflare's "unknown": denied by an allow
//!   list that does not name `XX`, denied by a deny list that does.
//! - No TLS version with `min_tls_version` set: denied (`tls.version_unknown`).
//! - No ASN: `deny_asns` cannot match, so it does not deny.
//! - No device ([`RequestFacts::device`] is `None`): the request carried no device token (a
//!   public pairing route); device and scope rules do not apply. Geo and path rules still do.
//!   Callers pass `Some` whenever a token was verified.
//! - A device without an app (OS) version, or with one that does not parse, while a minimum is
//!   set: denied (`device.app_version_unknown` / `device.os_version_unknown`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::api::ErrorCode;
use crate::route::{AgentRoute, PublicRoute};

/// The only document version this build understands.
pub const POLICY_VERSION: u32 = 1;

/// The built-in allowlist: the relay's own routes plus what the ArgusAI mobile app uses
/// (derived from ArgusAI's openapi.json; see `docs/policy.md`). `"@default"` in `paths.allow`
/// stands for this list.
pub const DEFAULT_ALLOW: &[&str] = &[
    // The relay itself: pairing, tokens, identity, status.
    "POST /api/v1/devices/pair",
    "POST /api/v1/mobile/auth/pair",
    "GET /api/v1/mobile/auth/status/*",
    "POST /api/v1/mobile/auth/exchange",
    "POST /api/v1/mobile/auth/refresh",
    "POST /api/v1/mobile/auth/revoke",
    "GET /.well-known/jwks.json",
    "GET /.well-known/ohttp-keys",
    "GET /api/v1/health",
    "GET /api/v1/relay/status",
    // Sealed mode (Oblivious HTTP): one opaque POST; the agent applies the path rules inside.
    "POST /api/v1/relay/sealed",
    // Devices: relay device list/revoke/rename (agent) and push registration (backend).
    "GET,POST /api/v1/devices",
    "PUT,DELETE /api/v1/devices/*",
    "PUT /api/v1/devices/*/rename",
    "PUT /api/v1/devices/*/token",
    "PUT /api/v1/devices/*/preferences",
    // Events, their images, frames, video and feedback.
    "GET /api/v1/events",
    "GET /api/v1/events/*",
    "GET /api/v1/events/stats/aggregate",
    "GET /api/v1/events/packages/today",
    "GET /api/v1/events/*/thumbnail",
    "GET /api/v1/events/*/frames",
    "GET /api/v1/events/*/frames/*",
    "GET /api/v1/events/*/video",
    "GET /api/v1/events/*/video/download",
    "GET,POST,PUT,DELETE /api/v1/events/*/feedback",
    "GET /api/v1/thumbnails/*/*",
    "GET /api/v1/motion-events",
    "GET /api/v1/motion-events/*",
    // Cameras (read-only: list, detail, live preview and snapshot).
    "GET /api/v1/cameras",
    "GET /api/v1/cameras/*",
    "GET /api/v1/cameras/*/preview",
    "GET /api/v1/cameras/*/stream/info",
    "GET /api/v1/cameras/*/stream/snapshot",
    // Recognised people and vehicles.
    "GET /api/v1/context/entities",
    "GET /api/v1/context/entities/*",
    "GET /api/v1/context/entities/*/thumbnail",
    "GET /api/v1/context/entities/*/events",
    // In-app notifications.
    "GET /api/v1/notifications",
    "PATCH /api/v1/notifications/mark-all-read",
    "PATCH /api/v1/notifications/*/read",
    "DELETE /api/v1/notifications/*",
    // Daily summaries.
    "GET /api/v1/summaries",
    "GET /api/v1/summaries/*",
    // Live updates and live view.
    "GET /ws",
    "GET /ws/stream/*",
    // ArgusAI's live AI-processing feed (server-sent events). ArgusAI serves it to admin users
    // only, and the agent to owner-scoped devices only (`/api/v1/system/**`).
    "GET /api/v1/system/ai-processing-stream",
];

/// The built-in deny list (wins over any allow). `"@default"` in `paths.deny` stands for it.
/// Most of the first group is also refused by [`crate::route::classify`] (all but
/// `/api/v1/system/**` outside its tunnel controls, which only this list keeps from phones);
/// it is repeated here so the policy alone is safe too.
pub const DEFAULT_DENY: &[&str] = &[
    // `/api/v1/system`: phones never change it, and never read what holds the database,
    // secrets or the tunnel. Its read-only statistics and AI-processing feeds stay open to an
    // allow rule (the agent serves them to owner-scoped devices only).
    "/api/v1/system",
    "HEAD,POST,PUT,PATCH,DELETE,OPTIONS /api/v1/system/**",
    "/api/v1/system/backup/**",
    "/api/v1/system/settings/**",
    "/api/v1/system/smtp/**",
    "/api/v1/system/debug/**",
    "/api/v1/system/tunnel/**",
    "/docs/**",
    "/redoc/**",
    "/openapi.json",
    "/metrics",
    "/api/v1/metrics",
    "/health",
    "/api/v1/auth/**",
    "/api/v1/api-keys/**",
    "/api/v1/users/**",
    "/api/v1/mobile/auth/confirm",
    "/api/v1/mobile/auth/pending/**",
    // Administration that holds secrets or pairs new controllers to the cameras.
    "/api/v1/logs/**",
    "/api/v1/homekit/**",
    "/api/v1/integrations/**",
    "/api/v1/protect/**",
    "/api/v1/webhooks/**",
    "DELETE /api/v1/devices/inactive",
];

/// Country codes accepted besides ISO 3166-1 alpha-2: Tor exit nodes, unknown, and Kosovo
/// (user-assigned but used by geolocation databases).
const EXTRA_COUNTRIES: &[&str] = &["T1", "XX", "XK"];

/// ISO 3166-1 alpha-2, all 249 assigned codes.
const ISO_COUNTRIES: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE \
BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD \
CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF \
GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN \
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA \
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM \
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI \
SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK \
TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI \
VN VU WF WS YE YT ZA ZM ZW";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One problem with one field, e.g. `geo.allow_countries[2]: "USA" is not a 2-letter country code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, with `[i]` for list items.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// Not TOML, or not the document's shape (unknown field, wrong type, missing `version`).
    /// The message carries line and column.
    #[error("policy is not valid TOML for this schema: {0}")]
    Syntax(String),
    /// Well-formed, but values are wrong. Every problem found is listed.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<FieldError>),
}

fn join_lines(errors: &[FieldError]) -> String {
    let mut s = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&e.to_string());
    }
    s
}

impl PolicyError {
    /// The field problems (empty for [`PolicyError::Syntax`]).
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            PolicyError::Syntax(_) => &[],
            PolicyError::Invalid(v) => v,
        }
    }

    /// Reason code used when the Worker refuses to serve with a bad policy.
    pub const fn reason(&self) -> &'static str {
        "config.policy_invalid"
    }
}

// ---------------------------------------------------------------------------------------------
// The document as written
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    version: u32,
    #[serde(default)]
    geo: GeoDoc,
    #[serde(default)]
    devices: DevicesDoc,
    paths: Option<PathsDoc>,
    #[serde(default)]
    images: ImagesDoc,
    #[serde(default)]
    sealed: SealedDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedDoc {
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoDoc {
    allow_countries: Option<Vec<String>>,
    deny_countries: Option<Vec<String>>,
    #[serde(default)]
    deny_asns: Vec<u32>,
    min_tls_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesDoc {
    platforms: Option<Vec<String>>,
    min_app_version: Option<String>,
    #[serde(default)]
    min_os_version: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsDoc {
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesDoc {
    default_quality: Option<String>,
    #[serde(default)]
    platform_quality: BTreeMap<String, String>,
    webp: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// The compiled policy
// ---------------------------------------------------------------------------------------------

/// A validated policy, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    countries: CountryRule,
    /// Sorted, deduplicated.
    deny_asns: Vec<u32>,
    min_tls: Option<TlsVersion>,
    /// Lower-case platform names; `None` = any.
    platforms: Option<Vec<String>>,
    min_app_version: Option<Version>,
    /// (lower-case platform, minimum).
    min_os_version: Vec<(String, Version)>,
    allow: Vec<PathRule>,
    deny: Vec<PathRule>,
    default_image_quality: Option<ImageQuality>,
    /// (lower-case platform, quality): overrides `default_image_quality` for that platform.
    platform_image_quality: Vec<(String, ImageQuality)>,
    /// `images.webp`: whether clients that name `image/webp` get WebP (else JPEG).
    image_webp: bool,
    /// `sealed.required`: device requests must be sealed ([`crate::sealed`]).
    sealed_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CountryRule {
    Any,
    /// Upper-case two-letter codes.
    Allow(Vec<[u8; 2]>),
    Deny(Vec<[u8; 2]>),
}

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

// ---------------------------------------------------------------------------------------------
// Path rules
// ---------------------------------------------------------------------------------------------

const METHOD_NAMES: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn method_bit(m: &str) -> u8 {
    METHOD_NAMES
        .iter()
        .position(|n| *n == m)
        .map_or(0, |i| 1u8 << i)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**` (last only): zero or more segments.
    Rest,
}

/// A compiled path rule: optional methods and a segment glob.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathRule {
    /// Bit set of [`METHOD_NAMES`]; 0 = any method.
    methods: u8,
    segs: Vec<Seg>,
    /// What every matching path starts with (the literal segments before the first wildcard):
    /// a cheap pre-check before walking the segments.
    prefix: String,
    source: String,
}

impl PathRule {
    fn compile(src: &str) -> Result<PathRule, String> {
        let src_trim = src.trim();
        if src_trim.is_empty() {
            return Err("empty pattern".into());
        }
        let not_a_path = || {
            format!(
                "{src:?}: a pattern is a path starting with '/', optionally after methods \
                 (e.g. \"GET,HEAD /api/v1/events/*\")"
            )
        };
        let (methods, path) = if src_trim.starts_with('/') {
            (0, src_trim)
        } else {
            // `METHOD[,METHOD…] /path`: the methods end with whitespace before the first '/'.
            let idx = src_trim.find('/').ok_or_else(not_a_path)?;
            let (m, p) = src_trim.split_at(idx);
            if !m.ends_with(char::is_whitespace) {
                return Err(not_a_path());
            }
            (parse_methods(m.trim())?, p)
        };
        if let Some(c) = path.chars().find(|c| {
            c.is_control() || c.is_whitespace() || matches!(c, '?' | '#' | '%' | '\\' | ';')
        }) {
            return Err(format!(
                "{src:?}: {c:?} cannot appear in a pattern (patterns match the decoded path; \
                 no query, no escapes)"
            ));
        }
        let mut segs = Vec::new();
        if path != "/" {
            let body = path.strip_prefix('/').unwrap_or(path);
            if body.ends_with('/') {
                return Err(format!(
                    "{src:?}: a pattern does not end in '/' (a request's trailing '/' is \
                     ignored when matching)"
                ));
            }
            let parts: Vec<&str> = body.split('/').collect();
            let last = parts.len().saturating_sub(1);
            for (i, part) in parts.iter().enumerate() {
                let seg = match *part {
                    "" => return Err(format!("{src:?}: empty segment ('//')")),
                    "." | ".." => {
                        return Err(format!("{src:?}: '.' and '..' segments never match"))
                    }
                    "**" if i == last => Seg::Rest,
                    "**" => return Err(format!("{src:?}: '**' must be the last segment")),
                    "*" => Seg::One,
                    p if p.contains('*') => {
                        return Err(format!(
                        "{src:?}: a wildcard is a whole segment (\"*\" or \"**\"), not part of one"
                    ))
                    }
                    p => Seg::Literal(p.to_string()),
                };
                segs.push(seg);
            }
        }
        let source = if methods == 0 {
            path.to_string()
        } else {
            format!("{} {path}", methods_to_string(methods))
        };
        let mut prefix = String::from("/");
        for seg in &segs {
            match seg {
                Seg::Literal(l) => {
                    if prefix.len() > 1 {
                        prefix.push('/');
                    }
                    prefix.push_str(l);
                }
                Seg::One => {
                    if prefix.len() > 1 {
                        prefix.push('/');
                    }
                    break;
                }
                Seg::Rest => break,
            }
        }
        Ok(PathRule {
            methods,
            segs,
            prefix,
            source,
        })
    }

    /// Whether the rule matches. `method_bit` 0 (a non-standard method) only matches rules
    /// without methods. One trailing `/` of the path is ignored. No allocation.
    fn matches(&self, method_bit: u8, decoded_path: &str) -> bool {
        if self.methods != 0 && self.methods & method_bit == 0 {
            return false;
        }
        if !decoded_path.starts_with(self.prefix.as_str()) {
            return false;
        }
        let p = decoded_path.strip_prefix('/').unwrap_or(decoded_path);
        let p = p.strip_suffix('/').unwrap_or(p);
        let mut segs = (!p.is_empty()).then(|| p.split('/')).into_iter().flatten();
        for seg in &self.segs {
            match seg {
                Seg::Rest => return true,
                Seg::One => match segs.next() {
                    Some(s) if !s.is_empty() => {}
                    _ => return false,
                },
                Seg::Literal(l) => match segs.next() {
                    Some(s) if s == l => {}
                    _ => return false,
                },
            }
        }
        segs.next().is_none()
    }
}

fn parse_methods(list: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for m in list.split(',') {
        let m = m.trim();
        let bit = method_bit(m);
        if bit == 0 {
            let hint = if method_bit(&m.to_ascii_uppercase()) != 0 {
                format!(" (methods are upper-case: {:?})", m.to_ascii_uppercase())
            } else {
                String::new()
            };
            return Err(format!(
                "unknown method {m:?}{hint}; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS, \
                 comma-separated, then a space and the path"
            ));
        }
        bits |= bit;
    }
    Ok(bits)
}

fn methods_to_string(bits: u8) -> String {
    let mut out = String::new();
    for (i, name) in METHOD_NAMES.iter().enumerate() {
        if bits & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    out
}

/// Expands `@default` and compiles, collecting errors under `field[i]`.
fn compile_rules(
    field: &str,
    entries: &[String],
    defaults: &[&str],
    errors: &mut Vec<FieldError>,
) -> Vec<PathRule> {
    let mut rules = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.trim() == "@default" {
            for d in defaults {
                match PathRule::compile(d) {
                    Ok(r) => rules.push(r),
                    Err(problem) => errors.push(FieldError {
                        field: format!("{field}[{i}]"),
                        problem: format!("built-in rule {problem}"),
                    }),
                }
            }
            continue;
        }
        match PathRule::compile(entry) {
            Ok(r) => rules.push(r),
            Err(problem) => errors.push(FieldError {
                field: format!("{field}[{i}]"),
                problem,
            }),
        }
    }
    rules
}

// ---------------------------------------------------------------------------------------------
// Evaluation types
// ---------------------------------------------------------------------------------------------

/// What is known about a request when the policy is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// `GET`, `POST`, … (upper-case).
    pub method: &'a str,
    /// The canonical decoded path ([`crate::path::CanonicalTarget::decoded_path`]).
    pub decoded_path: &'a str,
    /// ISO 3166-1 alpha-2, `"T1"` for Tor, `"XX"` unknown (`request.cf.country`). `None` = `"XX"`.
    pub country: Option<&'a str>,
    /// `request.cf.asn`.
    pub asn: Option<u32>,
    /// `request.cf.tlsVersion`, e.g. `"TLSv1.3"`.
    pub tls_version: Option<&'a str>,
    /// From the verified device token; `None` when the route needs no token.
    pub device: Option<DeviceFacts<'a>>,
}

/// What the device token (and the app's headers) say about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts<'a> {
    /// `"ios"`, `"android"`, … (compared case-insensitively).
    pub platform: &'a str,
    pub app_version: Option<&'a str>,
    pub os_version: Option<&'a str>,
    /// Viewer scope: only GET and HEAD.
    pub scope_read_only: bool,
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// Stable code, e.g. `geo.country_denied` (see [`REASONS`]).
    pub reason: &'static str,
    /// HTTP status: 403 for every policy denial.
    pub status: u16,
}

/// Every reason code [`Policy::evaluate`] can give.
pub const REASONS: &[&str] = &[
    "tls.version_unknown",
    "tls.version_too_old",
    "geo.country_not_allowed",
    "geo.country_denied",
    "geo.asn_denied",
    "path.denied",
    "path.not_allowed",
    "device.platform_not_allowed",
    "device.app_version_unknown",
    "device.app_too_old",
    "device.os_version_unknown",
    "device.os_too_old",
    "scope.read_only",
];

impl Denial {
    const fn new(reason: &'static str) -> Denial {
        Denial {
            reason,
            status: 403,
        }
    }

    /// `insufficient_scope` for `scope.read_only`, `forbidden` otherwise.
    pub fn error_code(&self) -> ErrorCode {
        if self.reason == "scope.read_only" {
            ErrorCode::InsufficientScope
        } else {
            ErrorCode::Forbidden
        }
    }

    /// A sentence for people. Names the rule, never its contents.
    pub fn message(&self) -> &'static str {
        match self.reason {
            "tls.version_unknown" => "the connection's TLS version is unknown and a minimum is set",
            "tls.version_too_old" => "the connection's TLS version is below the minimum",
            "geo.country_not_allowed" => "requests from this country are not allowed",
            "geo.country_denied" => "requests from this country are denied",
            "geo.asn_denied" => "requests from this network are denied",
            "path.denied" => "this path is denied by policy",
            "path.not_allowed" => "this path is not allowed by policy",
            "device.platform_not_allowed" => "this device platform is not allowed",
            "device.app_version_unknown" => "the app version is unknown and a minimum is set",
            "device.app_too_old" => "the app is older than the minimum version; please update",
            "device.os_version_unknown" => "the OS version is unknown and a minimum is set",
            "device.os_too_old" => "the OS is older than the minimum version; please update",
            "scope.read_only" => "this device has read-only access",
            _ => "denied by policy",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

impl Policy {
    /// Parses and validates a policy document. Unknown fields are errors.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let doc: PolicyDoc = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(e.to_string().trim_end().to_string()))?;
        let mut errors = Vec::new();

        if doc.version != POLICY_VERSION {
            errors.push(FieldError {
                field: "version".into(),
                problem: format!(
                    "unsupported version {} (this build understands {POLICY_VERSION})",
                    doc.version
                ),
            });
        }

        // [geo]
        let countries = match (&doc.geo.allow_countries, &doc.geo.deny_countries) {
            (Some(_), Some(_)) => {
                errors.push(FieldError {
                    field: "geo".into(),
                    problem: "allow_countries and deny_countries are both set; use one".into(),
                });
                CountryRule::Any
            }
            (Some(list), None) => {
                CountryRule::Allow(countries_of("geo.allow_countries", list, &mut errors))
            }
            (None, Some(list)) => {
                CountryRule::Deny(countries_of("geo.deny_countries", list, &mut errors))
            }
            (None, None) => CountryRule::Any,
        };
        let mut deny_asns = doc.geo.deny_asns.clone();
        for (i, asn) in deny_asns.iter().enumerate() {
            if *asn == 0 {
                errors.push(FieldError {
                    field: format!("geo.deny_asns[{i}]"),
                    problem: "0 is not an AS number".into(),
                });
            }
        }
        deny_asns.sort_unstable();
        deny_asns.dedup();
        let min_tls = doc.geo.min_tls_version.as_deref().and_then(|v| {
            let parsed = TlsVersion::from_policy(v);
            if parsed.is_none() {
                errors.push(FieldError {
                    field: "geo.min_tls_version".into(),
                    problem: format!("{v:?} is not one of \"1.0\", \"1.1\", \"1.2\", \"1.3\""),
                });
            }
            parsed
        });

        // [devices]
        let platforms = doc.devices.platforms.as_ref().map(|list| {
            if list.is_empty() {
                errors.push(FieldError {
                    field: "devices.platforms".into(),
                    problem: "is empty, which would refuse every device (omit it to allow every platform)"
                        .into(),
                });
            }
            let mut out: Vec<String> = Vec::new();
            for (i, p) in list.iter().enumerate() {
                if let Err(problem) = check_platform(p) {
                    errors.push(FieldError {
                        field: format!("devices.platforms[{i}]"),
                        problem,
                    });
                } else if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            out
        });
        let min_app_version = doc
            .devices
            .min_app_version
            .as_deref()
            .and_then(|v| version_of("devices.min_app_version", v, &mut errors));
        let mut min_os_version = Vec::new();
        for (platform, v) in &doc.devices.min_os_version {
            let field = format!("devices.min_os_version.{platform}");
            if let Err(problem) = check_platform(platform) {
                errors.push(FieldError { field, problem });
                continue;
            }
            if let Some(ver) = version_of(&field, v, &mut errors) {
                min_os_version.push((platform.clone(), ver));
            }
        }

        // [paths]
        let (allow, deny) = match &doc.paths {
            None => (
                compile_defaults(DEFAULT_ALLOW, "paths.allow", &mut errors),
                compile_defaults(DEFAULT_DENY, "paths.deny", &mut errors),
            ),
            Some(paths) => {
                if paths.allow.is_empty() {
                    errors.push(FieldError {
                        field: "paths.allow".into(),
                        problem: "is empty, which would refuse every request (use [\"@default\"] \
                                  for the built-in allowlist, or omit [paths])"
                            .into(),
                    });
                }
                (
                    compile_rules("paths.allow", &paths.allow, DEFAULT_ALLOW, &mut errors),
                    compile_rules("paths.deny", &paths.deny, DEFAULT_DENY, &mut errors),
                )
            }
        };

        // [images]
        let default_image_quality = doc.images.default_quality.as_deref().and_then(|q| {
            let parsed = ImageQuality::parse(q);
            if parsed.is_none() {
                errors.push(FieldError {
                    field: "images.default_quality".into(),
                    problem: format!(
                        "{q:?} is not one of \"original\", \"high\", \"mobile\", \"low\""
                    ),
                });
            }
            parsed
        });
        let mut platform_image_quality = Vec::new();
        for (platform, q) in &doc.images.platform_quality {
            let field = format!("images.platform_quality.{platform}");
            if let Err(problem) = check_platform(platform) {
                errors.push(FieldError { field, problem });
                continue;
            }
            match ImageQuality::parse(q) {
                Some(parsed) => platform_image_quality.push((platform.clone(), parsed)),
                None => errors.push(FieldError {
                    field,
                    problem: format!(
                        "{q:?} is not one of \"original\", \"high\", \"mobile\", \"low\""
                    ),
                }),
            }
        }

        if !errors.is_empty() {
            return Err(PolicyError::Invalid(errors));
        }
        Ok(Policy {
            countries,
            deny_asns,
            min_tls,
            platforms,
            min_app_version,
            min_os_version,
            allow,
            deny,
            default_image_quality,
            platform_image_quality,
            image_webp: doc.images.webp.unwrap_or(true),
            sealed_required: doc.sealed.required,
        })
    }

    /// The built-in policy: no geo, TLS or device restrictions, [`DEFAULT_ALLOW`] and
    /// [`DEFAULT_DENY`] for paths, no image default.
    pub fn default_policy() -> Policy {
        let mut errors = Vec::new();
        let allow = compile_defaults(DEFAULT_ALLOW, "paths.allow", &mut errors);
        let deny = compile_defaults(DEFAULT_DENY, "paths.deny", &mut errors);
        Policy {
            countries: CountryRule::Any,
            deny_asns: Vec::new(),
            min_tls: None,
            platforms: None,
            min_app_version: None,
            min_os_version: Vec::new(),
            // The built-in rules compile (tested); should one ever not, allow nothing.
            allow: if errors.is_empty() { allow } else { Vec::new() },
            deny,
            default_image_quality: None,
            platform_image_quality: Vec::new(),
            image_webp: true,
            sealed_required: false,
        }
    }

    /// `sealed.required` (default false): the edge refuses every plain device request
    /// (`sealed.required`); only sealed requests and the public pairing routes pass.
    pub fn sealed_required(&self) -> bool {
        self.sealed_required
    }

    /// The image quality for devices that do not ask for one, if the policy sets it.
    pub fn default_image_quality(&self) -> Option<ImageQuality> {
        self.default_image_quality
    }

    /// The image quality for a device of `platform` that does not ask for one:
    /// `images.platform_quality.<platform>` (case-insensitive), else `images.default_quality`.
    /// `None`: the policy says nothing (the original is served).
    pub fn image_quality_for(&self, platform: &str) -> Option<ImageQuality> {
        self.platform_image_quality
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(platform))
            .map(|(_, q)| *q)
            .or(self.default_image_quality)
    }

    /// `images.webp` (default true): whether a client whose `Accept` names `image/webp` gets
    /// WebP. `false` keeps every transcode on the fast JPEG path — the one that fits the Workers
    /// free plan's 10 ms of CPU (docs/benchmarks.md, "Images").
    pub fn image_webp_allowed(&self) -> bool {
        self.image_webp
    }

    /// Decides a request. See the module docs for the order and for missing facts.
    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> Decision {
        match self.check(facts) {
            Ok(()) => Decision::Allow,
            Err(reason) => Decision::Deny(Denial::new(reason)),
        }
    }

    fn check(&self, f: &RequestFacts<'_>) -> Result<(), &'static str> {
        if let Some(min) = self.min_tls {
            match f.tls_version.and_then(TlsVersion::from_reported) {
                None => return Err("tls.version_unknown"),
                Some(v) if v < min => return Err("tls.version_too_old"),
                Some(_) => {}
            }
        }

        let country = f.country.filter(|c| !c.is_empty()).unwrap_or("XX");
        match &self.countries {
            CountryRule::Any => {}
            CountryRule::Allow(list) => {
                if !list.iter().any(|c| country_eq(c, country)) {
                    return Err("geo.country_not_allowed");
                }
            }
            CountryRule::Deny(list) => {
                if list.iter().any(|c| country_eq(c, country)) {
                    return Err("geo.country_denied");
                }
            }
        }

        if let Some(asn) = f.asn {
            if self.deny_asns.binary_search(&asn).is_ok() {
                return Err("geo.asn_denied");
            }
        }

        let bit = method_bit(f.method);
        if self.deny.iter().any(|r| r.matches(bit, f.decoded_path)) {
            return Err("path.denied");
        }
        if !self.allow.iter().any(|r| r.matches(bit, f.decoded_path)) {
            return Err("path.not_allowed");
        }

        if let Some(d) = &f.device {
            if let Some(list) = &self.platforms {
                if !list.iter().any(|p| p.eq_ignore_ascii_case(d.platform)) {
                    return Err("device.platform_not_allowed");
                }
            }
            if let Some(min) = self.min_app_version {
                match d.app_version.and_then(Version::parse_reported) {
                    None => return Err("device.app_version_unknown"),
                    Some(v) if v < min => return Err("device.app_too_old"),
                    Some(_) => {}
                }
            }
            if let Some((_, min)) = self
                .min_os_version
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(d.platform))
            {
                match d.os_version.and_then(Version::parse_reported) {
                    None => return Err("device.os_version_unknown"),
                    Some(v) if v < *min => return Err("device.os_too_old"),
                    Some(_) => {}
                }
            }
            if d.scope_read_only
                && f.method != "GET"
                && f.method != "HEAD"
                && !is_self_service(f.method, f.decoded_path)
            {
                return Err("scope.read_only");
            }
        }
        Ok(())
    }

    /// Whether the path rules alone let `method path` through (deny first, then allow).
    pub fn path_allowed(&self, method: &str, decoded_path: &str) -> bool {
        let bit = method_bit(method);
        !self.deny.iter().any(|r| r.matches(bit, decoded_path))
            && self.allow.iter().any(|r| r.matches(bit, decoded_path))
    }

    /// Things that parse but are probably mistakes, for `argus-relay policy check`: relay routes
    /// the path rules shut (phones could not pair or refresh), OS minimums for platforms that
    /// are not allowed anyway.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let public = PublicRoute::ALL.iter().map(|r| (r.method(), r.path()));
        let agent = AgentRoute::ALL.iter().map(|r| (r.method(), r.path()));
        for (method, template) in public.chain(agent) {
            let sample = template
                .replace("{code}", "123456")
                .replace("{id}", "device-id");
            if !self.path_allowed(method, &sample) {
                out.push(format!(
                    "paths: {method} {template} is not allowed; the relay's own route will be refused"
                ));
            }
        }
        if let Some(platforms) = &self.platforms {
            for (p, _) in &self.min_os_version {
                if !platforms.iter().any(|q| q == p) {
                    out.push(format!(
                        "devices.min_os_version.{p}: {p:?} is not in devices.platforms, so this minimum never applies"
                    ));
                }
            }
        }
        out
    }

    /// The compiled path rules, normalised (`"GET,POST /api/v1/devices"`), for display.
    pub fn path_rules(&self) -> (Vec<&str>, Vec<&str>) {
        (
            self.allow.iter().map(|r| r.source.as_str()).collect(),
            self.deny.iter().map(|r| r.source.as_str()).collect(),
        )
    }
}

fn compile_defaults(rules: &[&str], field: &str, errors: &mut Vec<FieldError>) -> Vec<PathRule> {
    let mut out = Vec::new();
    for r in rules {
        match PathRule::compile(r) {
            Ok(rule) => out.push(rule),
            Err(problem) => errors.push(FieldError {
                field: field.to_string(),
                problem: format!("built-in rule {problem}"),
            }),
        }
    }
    out
}

fn country_eq(code: &[u8; 2], reported: &str) -> bool {
    let ([a, b], [x, y]) = (code, reported.as_bytes()) else {
        return false;
    };
    a.eq_ignore_ascii_case(x) && b.eq_ignore_ascii_case(y)
}

fn countries_of(field: &str, list: &[String], errors: &mut Vec<FieldError>) -> Vec<[u8; 2]> {
    if list.is_empty() {
        let problem = if field.ends_with("allow_countries") {
            "is empty, which would refuse every request (omit it to allow every country)"
        } else {
            "is empty (omit it instead)"
        };
        errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        match check_country(c) {
            Ok(code) => {
                if !out.contains(&code) {
                    out.push(code);
                }
            }
            Err(problem) => errors.push(FieldError {
                field: format!("{field}[{i}]"),
                problem,
            }),
        }
    }
    out
}

fn check_country(c: &str) -> Result<[u8; 2], String> {
    let b = c.as_bytes();
    let [x, y] = b else {
        return Err(format!("{c:?} is not a 2-letter country code"));
    };
    if !x.is_ascii_alphabetic() || !y.is_ascii_alphabetic() {
        if c == "T1" {
            return Ok([b'T', b'1']);
        }
        return Err(format!(
            "{c:?} is not a 2-letter country code (\"T1\" is the only non-letter code: Tor)"
        ));
    }
    if !(x.is_ascii_uppercase() && y.is_ascii_uppercase()) {
        return Err(format!(
            "{c:?} must be upper-case ({:?})",
            c.to_ascii_uppercase()
        ));
    }
    let known = ISO_COUNTRIES.split(' ').any(|k| k == c) || EXTRA_COUNTRIES.contains(&c);
    if !known {
        let hint = match c {
            "UK" => " (the United Kingdom is \"GB\")",
            "EU" => " (list the member states)",
            _ => "",
        };
        return Err(format!(
            "{c:?} is not an ISO 3166-1 alpha-2 country code{hint}; also accepted: \"T1\" (Tor), \"XX\" (unknown), \"XK\""
        ));
    }
    Ok([*x, *y])
}

fn check_platform(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 32
        && p.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{p:?} is not a platform name: lower-case letters, digits, '-' or '_' (e.g. \"ios\", \"android\")"
        ))
    }
}

fn version_of(field: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<Version> {
    let parsed = Version::parse(v);
    if parsed.is_none() {
        errors.push(FieldError {
            field: field.into(),
            problem: format!(
                "{v:?} is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"
            ),
        });
    }
    parsed
}

/// The relay's own device routes that a read-only device may call *on itself*: sign out,
/// rename itself, revoke itself. The agent enforces "itself" (it knows the device); the scope rule
/// here would otherwise stop a viewer from ever signing out. Also the sealed route: its POST
/// carries any inner method, which only the agent sees and checks against the scope.
fn is_self_service(method: &str, decoded_path: &str) -> bool {
    use crate::route::{classify, AgentRoute, Route};
    matches!(
        classify(method, decoded_path),
        Route::Agent(
            AgentRoute::DeviceDelete
                | AgentRoute::DeviceRename
                | AgentRoute::MobileRevoke
                | AgentRoute::Sealed
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(method: &'a str, path: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            method,
            decoded_path: path,
            country: Some("US"),
            asn: Some(7922),
            tls_version: Some("TLSv1.3"),
            device: Some(DeviceFacts {
                platform: "ios",
                app_version: Some("1.5.0"),
                os_version: Some("17.2"),
                scope_read_only: false,
            }),
        }
    }

    fn reason(p: &Policy, f: &RequestFacts<'_>) -> Option<&'static str> {
        match p.evaluate(f) {
            Decision::Allow => None,
            Decision::Deny(d) => {
                assert_eq!(d.status, 403);
                Some(d.reason)
            }
        }
    }

    fn policy(text: &str) -> Policy {
        match Policy::from_toml(text) {
            Ok(p) => p,
            Err(e) => panic!("policy refused:\n{e}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match Policy::from_toml(text) {
            Ok(p) => panic!("policy accepted: {p:?}"),
            Err(e) => e.to_string().lines().map(str::to_string).collect(),
        }
    }

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.10.0") > v("1.9"));
        assert!(v("1.4") == v("1.4.0"));
        assert!(v("2") > v("1.99.99.99"));
        assert!(v("16.0") < v("16.0.1"));
        for bad in [
            "",
            "1.",
            ".1",
            "1..2",
            "v1",
            "1.2.3.4.5",
            "1.2-beta",
            "+1",
            "1.a",
            " 1",
            "9999999999",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        let r = |s| Version::parse_reported(s);
        assert_eq!(r("1.4.0"), Some(v("1.4.0")));
        assert_eq!(r(" 1.4.0 "), Some(v("1.4.0")));
        assert_eq!(r("1.4.0+77"), Some(v("1.4.0")));
        assert_eq!(r("1.4.0 (77)"), Some(v("1.4.0")));
        assert!(r("1.4.0-beta.2").unwrap() < v("1.4.0"));
        assert!(r("1.4.0-beta.2").unwrap() > v("1.3.9"));
        assert_eq!(r("1.2.3.4.5"), Some(v("1.2.3.4")));
        for bad in ["", "beta", "1.x", "x1", "1..2", "1.4.0b"] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tls_versions() {
        assert_eq!(
            TlsVersion::from_reported("TLSv1.3"),
            Some(TlsVersion::Tls13)
        );
        assert_eq!(
            TlsVersion::from_reported("TLSv1.2"),
            Some(TlsVersion::Tls12)
        );
        assert_eq!(
            TlsVersion::from_reported("TLSv1.1"),
            Some(TlsVersion::Tls11)
        );
        assert_eq!(TlsVersion::from_reported("TLSv1"), Some(TlsVersion::Tls10));
        assert_eq!(
            TlsVersion::from_reported("TLSv1_3"),
            Some(TlsVersion::Tls13)
        );
        assert_eq!(TlsVersion::from_reported("SSLv3"), Some(TlsVersion::Ssl));
        assert_eq!(TlsVersion::from_reported(""), None);
        assert_eq!(TlsVersion::from_reported("TLSv2"), None);
        assert_eq!(TlsVersion::from_reported("é"), None);
    }

    #[test]
    fn path_rule_matching() {
        let r = |s| PathRule::compile(s).unwrap();
        let get = method_bit("GET");
        let post = method_bit("POST");
        assert!(r("/api/v1/events").matches(get, "/api/v1/events"));
        assert!(r("/api/v1/events").matches(get, "/api/v1/events/"));
        assert!(!r("/api/v1/events").matches(get, "/api/v1/events/1"));
        assert!(!r("/api/v1/events").matches(get, "/api/v1/Events"));
        assert!(r("/api/v1/events/*").matches(get, "/api/v1/events/1"));
        assert!(!r("/api/v1/events/*").matches(get, "/api/v1/events"));
        assert!(!r("/api/v1/events/*").matches(get, "/api/v1/events/1/2"));
        assert!(r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnails/a/b/c"));
        assert!(r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnails"));
        assert!(!r("/api/v1/thumbnails/**").matches(get, "/api/v1/thumbnailsx"));
        assert!(r("/**").matches(get, "/anything/at/all"));
        assert!(r("/**").matches(get, "/"));
        assert!(r("/").matches(get, "/"));
        assert!(!r("/").matches(get, "/a"));
        assert!(r("GET /x").matches(get, "/x"));
        assert!(!r("GET /x").matches(post, "/x"));
        assert!(!r("GET /x").matches(0, "/x"));
        assert!(r("/x").matches(0, "/x"));
        assert!(r("GET, POST /x").matches(post, "/x"));
        assert_eq!(r("POST,GET /x").source, "GET,POST /x");
        assert_eq!(r("/").prefix, "/");
        assert_eq!(r("/**").prefix, "/");
        assert_eq!(r("/*").prefix, "/");
        assert_eq!(r("/docs/**").prefix, "/docs");
        assert_eq!(r("/a/b").prefix, "/a/b");
        assert_eq!(r("/a/*/c").prefix, "/a/");
        assert!(r("/*").matches(get, "/x"));
        assert!(r("/*/b").matches(get, "/x/b"));
        assert!(!r("/a/b").matches(get, "/a/bc"));
        assert!(!r("/a/b").matches(get, "/a"));
    }

    #[test]
    fn path_rule_errors() {
        for (src, needle) in [
            ("", "empty pattern"),
            ("api/v1", "starting with '/'"),
            ("FETCH /a", "unknown method \"FETCH\""),
            ("get /a", "upper-case"),
            ("/a/", "does not end in '/'"),
            ("/a//b", "empty segment"),
            ("/a/../b", "'.' and '..'"),
            ("/a/**/b", "must be the last segment"),
            ("/a/*.jpg", "whole segment"),
            ("/a?b=1", "cannot appear"),
            ("/a%2fb", "cannot appear"),
            ("/a\\b", "cannot appear"),
            ("/a b", "cannot appear"),
        ] {
            match PathRule::compile(src) {
                Ok(r) => panic!("{src:?} compiled: {r:?}"),
                Err(e) => assert!(e.contains(needle), "{src:?}: {e}"),
            }
        }
    }

    #[test]
    fn minimal_document_uses_the_defaults() {
        let p = policy("version = 1");
        assert_eq!(p, Policy::default_policy());
        assert!(p.warnings().is_empty(), "{:?}", p.warnings());
        assert_eq!(p.default_image_quality(), None);
    }

    #[test]
    fn geo_allow_countries() {
        let p = policy("version = 1\n[geo]\nallow_countries = [\"US\", \"CA\"]");
        assert_eq!(reason(&p, &facts("GET", "/api/v1/events")), None);
        let mut f = facts("GET", "/api/v1/events");
        f.country = Some("ca");
        assert_eq!(reason(&p, &f), None);
        f.country = Some("FR");
        assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
        f.country = None;
        assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
        f.country = Some("");
        assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
        f.country = Some("T1");
        assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));
        // Public routes (no device) are subject to geo rules too.
        f.device = None;
        f.method = "POST";
        f.decoded_path = "/api/v1/devices/pair";
        assert_eq!(reason(&p, &f), Some("geo.country_not_allowed"));

        let p = policy("version = 1\n[geo]\nallow_countries = [\"US\", \"XX\"]");
        f.country = None;
        assert_eq!(reason(&p, &f), None);
    }

    #[test]
    fn geo_deny_countries_and_asns() {
        let p = policy(
            "version = 1\n[geo]\ndeny_countries = [\"T1\", \"XX\"]\ndeny_asns = [64496, 64497]",
        );
        let mut f = facts("GET", "/api/v1/events");
        assert_eq!(reason(&p, &f), None);
        f.country = Some("T1");
        assert_eq!(reason(&p, &f), Some("geo.country_denied"));
        f.country = None;
        assert_eq!(reason(&p, &f), Some("geo.country_denied"));
        f.country = Some("DE");
        f.asn = Some(64497);
        assert_eq!(reason(&p, &f), Some("geo.asn_denied"));
        f.asn = None;
        assert_eq!(reason(&p, &f), None);
    }

    #[test]
    fn min_tls() {
        let p = policy("version = 1\n[geo]\nmin_tls_version = \"1.2\"");
        let mut f = facts("GET", "/api/v1/events");
        assert_eq!(reason(&p, &f), None);
        f.tls_version = Some("TLSv1.2");
        assert_eq!(reason(&p, &f), None);
        f.tls_version = Some("TLSv1.1");
        assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
        f.tls_version = Some("TLSv1");
        assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
        f.tls_version = Some("SSLv3");
        assert_eq!(reason(&p, &f), Some("tls.version_too_old"));
        f.tls_version = Some("");
        assert_eq!(reason(&p, &f), Some("tls.version_unknown"));
        f.tls_version = None;
        assert_eq!(reason(&p, &f), Some("tls.version_unknown"));
        // Without a minimum, an unknown version is fine.
        assert_eq!(reason(&Policy::default_policy(), &f), None);
    }

    #[test]
    fn device_rules() {
        let p = policy(
            "version = 1\n[devices]\nplatforms = [\"ios\", \"android\"]\nmin_app_version = \"1.4.0\"\n\
             min_os_version = { ios = \"16.0\", android = \"12\" }",
        );
        let base = facts("GET", "/api/v1/events");
        assert_eq!(reason(&p, &base), None);
        let with = |d: DeviceFacts<'static>| RequestFacts {
            device: Some(d),
            ..base
        };
        let dev = DeviceFacts {
            platform: "ios",
            app_version: Some("1.4.0"),
            os_version: Some("16.0"),
            scope_read_only: false,
        };
        assert_eq!(reason(&p, &with(dev)), None);
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    platform: "IOS",
                    ..dev
                })
            ),
            None
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    platform: "web",
                    ..dev
                })
            ),
            Some("device.platform_not_allowed")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    app_version: Some("1.3.9"),
                    ..dev
                })
            ),
            Some("device.app_too_old")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    app_version: Some("1.10"),
                    ..dev
                })
            ),
            None
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    app_version: Some("1.4.0-rc.1"),
                    ..dev
                })
            ),
            Some("device.app_too_old")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    app_version: None,
                    ..dev
                })
            ),
            Some("device.app_version_unknown")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    app_version: Some("latest"),
                    ..dev
                })
            ),
            Some("device.app_version_unknown")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    os_version: Some("15.7.9"),
                    ..dev
                })
            ),
            Some("device.os_too_old")
        );
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    os_version: None,
                    ..dev
                })
            ),
            Some("device.os_version_unknown")
        );
        let android = DeviceFacts {
            platform: "android",
            app_version: Some("1.4.1"),
            os_version: Some("12"),
            scope_read_only: false,
        };
        assert_eq!(reason(&p, &with(android)), None);
        assert_eq!(
            reason(
                &p,
                &with(DeviceFacts {
                    os_version: Some("11.0.1"),
                    ..android
                })
            ),
            Some("device.os_too_old")
        );
        // No device (public route): device rules do not apply.
        let public = RequestFacts {
            method: "POST",
            decoded_path: "/api/v1/mobile/auth/pair",
            device: None,
            ..base
        };
        assert_eq!(reason(&p, &public), None);
    }

    #[test]
    fn os_minimum_only_for_listed_platforms() {
        let p = policy("version = 1\n[devices]\nmin_os_version = { ios = \"16\" }");
        let f = RequestFacts {
            device: Some(DeviceFacts {
                platform: "android",
                app_version: None,
                os_version: None,
                scope_read_only: false,
            }),
            ..facts("GET", "/api/v1/events")
        };
        assert_eq!(reason(&p, &f), None);
    }

    #[test]
    fn read_only_scope() {
        let p = Policy::default_policy();
        let viewer = |method: &'static str, path: &'static str| RequestFacts {
            device: Some(DeviceFacts {
                platform: "ios",
                app_version: None,
                os_version: None,
                scope_read_only: true,
            }),
            ..facts(method, path)
        };
        assert_eq!(reason(&p, &viewer("GET", "/api/v1/events")), None);
        assert_eq!(reason(&p, &viewer("GET", "/ws")), None);
        assert_eq!(
            reason(&p, &viewer("POST", "/api/v1/events/e1/feedback")),
            Some("scope.read_only")
        );
        // Self-service routes pass here; the agent allows them only on the device itself.
        assert_eq!(reason(&p, &viewer("DELETE", "/api/v1/devices/d1")), None);
        assert_eq!(
            reason(&p, &viewer("PUT", "/api/v1/devices/d1/rename")),
            None
        );
        assert_eq!(
            reason(&p, &viewer("POST", "/api/v1/mobile/auth/revoke")),
            None
        );
        assert_eq!(
            reason(&p, &viewer("PUT", "/api/v1/devices/d1/preferences")),
            Some("scope.read_only")
        );
        assert_eq!(
            reason(&p, &viewer("PATCH", "/api/v1/notifications/n1/read")),
            Some("scope.read_only")
        );
        let d = match p.evaluate(&viewer("POST", "/api/v1/events/e1/feedback")) {
            Decision::Deny(d) => d,
            Decision::Allow => panic!("allowed"),
        };
        assert_eq!(d.error_code(), ErrorCode::InsufficientScope);
        // With full scope the same request passes.
        assert_eq!(
            reason(&p, &facts("POST", "/api/v1/events/e1/feedback")),
            None
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = policy(
            "version = 1\n[paths]\nallow = [\"/api/v1/**\"]\ndeny = [\"/api/v1/events/*/video\", \"DELETE /api/v1/events/*\"]",
        );
        assert_eq!(reason(&p, &facts("GET", "/api/v1/events/e1")), None);
        assert_eq!(
            reason(&p, &facts("GET", "/api/v1/events/e1/video")),
            Some("path.denied")
        );
        assert_eq!(
            reason(&p, &facts("GET", "/api/v1/events/e1/video/")),
            Some("path.denied")
        );
        assert_eq!(
            reason(&p, &facts("DELETE", "/api/v1/events/e1")),
            Some("path.denied")
        );
        assert_eq!(reason(&p, &facts("GET", "/ws")), Some("path.not_allowed"));
        let (allow, deny) = p.path_rules();
        assert_eq!(allow, vec!["/api/v1/**"]);
        assert_eq!(
            deny,
            vec!["/api/v1/events/*/video", "DELETE /api/v1/events/*"]
        );
    }

    #[test]
    fn at_default_expands() {
        let p = policy(
            "version = 1\n[paths]\nallow = [\"@default\", \"GET /api/v1/digests/*\"]\ndeny = [\"@default\", \"/api/v1/summaries/**\"]",
        );
        assert_eq!(reason(&p, &facts("GET", "/api/v1/digests/d1")), None);
        assert_eq!(reason(&p, &facts("GET", "/api/v1/events")), None);
        assert_eq!(
            reason(&p, &facts("GET", "/api/v1/summaries")),
            Some("path.denied")
        );
        assert_eq!(reason(&p, &facts("GET", "/metrics")), Some("path.denied"));
        assert!(p.warnings().is_empty());
    }

    #[test]
    fn default_deny_keeps_system_changes_and_secrets_from_a_wide_allow() {
        let p = policy("version = 1\n[paths]\nallow = [\"/api/v1/**\"]\ndeny = [\"@default\"]");
        for (m, path) in [
            ("GET", "/api/v1/system/ai-processing-stream"),
            ("GET", "/api/v1/system/ai-stats"),
            ("GET", "/api/v1/system/storage"),
        ] {
            assert_eq!(reason(&p, &facts(m, path)), None, "{m} {path}");
        }
        for (m, path) in [
            ("POST", "/api/v1/system/backup"),
            ("GET", "/api/v1/system/backup/20250101/download"),
            ("PUT", "/api/v1/system/ai-models/openai"),
            ("GET", "/api/v1/system/settings"),
            ("GET", "/api/v1/system/settings/"),
        ] {
            assert_eq!(
                reason(&p, &facts(m, path)),
                Some("path.denied"),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn default_policy_denies_the_dangerous() {
        let p = Policy::default_policy();
        for (m, path) in [
            ("GET", "/api/v1/system/settings"),
            ("POST", "/api/v1/system/tunnel/stop"),
            ("POST", "/api/v1/system/tunnel/start"),
            ("GET", "/api/v1/system/backup/20250101/download"),
            ("GET", "/api/v1/system/backup/list"),
            ("GET", "/api/v1/system"),
            ("POST", "/api/v1/system"),
            ("POST", "/api/v1/system/restore"),
            ("POST", "/api/v1/system/test-key"),
            ("PUT", "/api/v1/system/settings"),
            ("DELETE", "/api/v1/system/data"),
            ("GET", "/api/v1/system/smtp/settings"),
            ("GET", "/api/v1/system/debug/ai-keys"),
            ("GET", "/api/v1/system/tunnel/status"),
            ("HEAD", "/api/v1/system/ai-processing-stream"),
            ("OPTIONS", "/api/v1/system/ai-processing-stream"),
            ("GET", "/docs"),
            ("GET", "/docs/"),
            ("GET", "/docs/oauth2-redirect"),
            ("GET", "/redoc"),
            ("GET", "/openapi.json"),
            ("GET", "/metrics"),
            ("GET", "/api/v1/metrics"),
            ("GET", "/health"),
            ("POST", "/api/v1/auth/login"),
            ("POST", "/api/v1/auth/change-password"),
            ("POST", "/api/v1/api-keys"),
            ("POST", "/api/v1/users"),
            ("POST", "/api/v1/mobile/auth/confirm"),
            ("GET", "/api/v1/mobile/auth/pending"),
            ("GET", "/api/v1/logs/download"),
            ("GET", "/api/v1/homekit/qrcode"),
            ("GET", "/api/v1/integrations/mqtt/config"),
            ("GET", "/api/v1/protect/controllers"),
            ("DELETE", "/api/v1/devices/inactive"),
        ] {
            assert_eq!(
                reason(&p, &facts(m, path)),
                Some("path.denied"),
                "{m} {path}"
            );
        }
        for (m, path) in [
            ("GET", "/"),
            ("DELETE", "/api/v1/events/e1"),
            ("DELETE", "/api/v1/events/bulk"),
            ("POST", "/api/v1/cameras"),
            ("DELETE", "/api/v1/cameras/c1"),
            ("PUT", "/api/v1/cameras/c1"),
            ("GET", "/api/v1/alert-rules"),
            ("POST", "/api/v1/push/test"),
            ("HEAD", "/api/v1/events"),
            ("GET", "/api/v1/thumbnails/2025-01-01"),
            ("GET", "/api/v1/thumbnails/a/b/c"),
            ("GET", "/ws/other"),
            ("DELETE", "/api/v1/notifications"),
        ] {
            assert_eq!(
                reason(&p, &facts(m, path)),
                Some("path.not_allowed"),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn default_policy_allows_the_app() {
        let p = Policy::default_policy();
        for (m, path) in [
            ("POST", "/api/v1/devices/pair"),
            ("POST", "/api/v1/mobile/auth/pair"),
            ("GET", "/api/v1/mobile/auth/status/123456"),
            ("POST", "/api/v1/mobile/auth/exchange"),
            ("POST", "/api/v1/mobile/auth/refresh"),
            ("POST", "/api/v1/mobile/auth/revoke"),
            ("GET", "/.well-known/jwks.json"),
            ("GET", "/api/v1/health"),
            ("GET", "/api/v1/relay/status"),
            ("GET", "/api/v1/devices"),
            ("POST", "/api/v1/devices"),
            ("DELETE", "/api/v1/devices/d1"),
            ("PUT", "/api/v1/devices/d1"),
            ("PUT", "/api/v1/devices/d1/rename"),
            ("PUT", "/api/v1/devices/d1/token"),
            ("PUT", "/api/v1/devices/d1/preferences"),
            ("GET", "/api/v1/events"),
            ("GET", "/api/v1/events/"),
            ("GET", "/api/v1/events/recent"),
            ("GET", "/api/v1/events/123e4567-e89b-12d3-a456-426614174000"),
            ("GET", "/api/v1/events/e1/thumbnail"),
            ("GET", "/api/v1/events/e1/frames"),
            ("GET", "/api/v1/events/e1/frames/2"),
            ("GET", "/api/v1/events/e1/video"),
            ("POST", "/api/v1/events/e1/feedback"),
            ("GET", "/api/v1/events/stats/aggregate"),
            ("GET", "/api/v1/thumbnails/2025-01-01/abc.jpg"),
            ("GET", "/api/v1/motion-events"),
            ("GET", "/api/v1/cameras"),
            ("GET", "/api/v1/cameras/c1"),
            ("GET", "/api/v1/cameras/c1/preview"),
            ("GET", "/api/v1/cameras/c1/stream/snapshot"),
            ("GET", "/api/v1/cameras/c1/stream/info"),
            ("GET", "/api/v1/context/entities"),
            ("GET", "/api/v1/context/entities/n1"),
            ("GET", "/api/v1/context/entities/n1/thumbnail"),
            ("GET", "/api/v1/notifications"),
            ("PATCH", "/api/v1/notifications/mark-all-read"),
            ("PATCH", "/api/v1/notifications/n1/read"),
            ("DELETE", "/api/v1/notifications/n1"),
            ("GET", "/api/v1/summaries/daily"),
            ("GET", "/ws"),
            ("GET", "/ws/stream/3"),
            ("GET", "/api/v1/system/ai-processing-stream"),
        ] {
            assert_eq!(reason(&p, &facts(m, path)), None, "{m} {path}");
        }
    }

    #[test]
    fn default_rules_compile() {
        let mut errors = Vec::new();
        compile_defaults(DEFAULT_ALLOW, "allow", &mut errors);
        compile_defaults(DEFAULT_DENY, "deny", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(Policy::default_policy().allow.len(), DEFAULT_ALLOW.len());
    }

    #[test]
    fn parse_errors_name_the_field() {
        assert_eq!(
            errors("version = 1\n[geo]\nallow_countries = [\"US\", \"CA\", \"USA\"]"),
            vec!["geo.allow_countries[2]: \"USA\" is not a 2-letter country code"]
        );
        let e = errors("version = 1\n[geo]\ndeny_countries = [\"UK\", \"us\", \"1A\"]");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("geo.deny_countries[0]: \"UK\" is not an ISO 3166-1 alpha-2 country code (the United Kingdom is \"GB\")"), "{e:?}");
        assert_eq!(
            e[1],
            "geo.deny_countries[1]: \"us\" must be upper-case (\"US\")"
        );
        assert!(
            e[2].starts_with("geo.deny_countries[2]: \"1A\" is not a 2-letter country code"),
            "{e:?}"
        );
        assert_eq!(
            errors("version = 1\n[geo]\nallow_countries = [\"US\"]\ndeny_countries = [\"T1\"]"),
            vec!["geo: allow_countries and deny_countries are both set; use one"]
        );
        assert_eq!(
            errors("version = 1\n[geo]\nallow_countries = []"),
            vec!["geo.allow_countries: is empty, which would refuse every request (omit it to allow every country)"]
        );
        assert_eq!(
            errors("version = 1\n[geo]\nmin_tls_version = \"TLSv1.2\""),
            vec![
                "geo.min_tls_version: \"TLSv1.2\" is not one of \"1.0\", \"1.1\", \"1.2\", \"1.3\""
            ]
        );
        assert_eq!(
            errors("version = 1\n[geo]\ndeny_asns = [0]"),
            vec!["geo.deny_asns[0]: 0 is not an AS number"]
        );
        assert_eq!(
            errors("version = 2"),
            vec!["version: unsupported version 2 (this build understands 1)"]
        );
        assert_eq!(
            errors("version = 1\n[devices]\nmin_app_version = \"1.4.0-beta\""),
            vec!["devices.min_app_version: \"1.4.0-beta\" is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"]
        );
        assert_eq!(
            errors("version = 1\n[devices]\nmin_os_version = { ios = \"sixteen\" }"),
            vec!["devices.min_os_version.ios: \"sixteen\" is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"]
        );
        let e = errors("version = 1\n[devices]\nplatforms = [\"iOS\"]");
        assert!(
            e[0].starts_with("devices.platforms[0]: \"iOS\" is not a platform name"),
            "{e:?}"
        );
        assert_eq!(
            errors("version = 1\n[devices]\nplatforms = []"),
            vec!["devices.platforms: is empty, which would refuse every device (omit it to allow every platform)"]
        );
        let e = errors("version = 1\n[paths]\nallow = [\"/api/v1/events\", \"/api/v1/*.jpg\"]\ndeny = [\"FETCH /x\"]");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("paths.allow[1]: \"/api/v1/*.jpg\": a wildcard is a whole segment"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("paths.deny[0]: unknown method \"FETCH\""),
            "{e:?}"
        );
        let e = errors("version = 1\n[paths]\nallow = []");
        assert!(e[0].starts_with("paths.allow: is empty"), "{e:?}");
        assert_eq!(
            errors("version = 1\n[images]\ndefault_quality = \"ultra\""),
            vec!["images.default_quality: \"ultra\" is not one of \"original\", \"high\", \"mobile\", \"low\""]
        );
    }

    #[test]
    fn syntax_and_schema_errors() {
        for (text, needle) in [
            ("version = 1\nfoo = 2", "unknown field `foo`"),
            (
                "version = 1\n[geo]\nallow_country = [\"US\"]",
                "unknown field `allow_country`",
            ),
            (
                "version = 1\n[devices]\nmin_app = \"1\"",
                "unknown field `min_app`",
            ),
            (
                "version = 1\n[paths]\nallows = []",
                "unknown field `allows`",
            ),
            ("version = 1\n[paths]\ndeny = []", "missing field `allow`"),
            ("version = 1\n[tls]\nmin = \"1.2\"", "unknown field `tls`"),
            ("[geo]", "missing field `version`"),
            ("version = \"1\"", "invalid type"),
            ("version = 1\n[geo]\ndeny_asns = [-1]", "invalid value"),
            ("version = 1\n[geo\n", "line 2"),
            ("", "missing field `version`"),
        ] {
            match Policy::from_toml(text) {
                Ok(_) => panic!("{text:?} accepted"),
                Err(e @ PolicyError::Syntax(_)) => {
                    assert!(e.to_string().contains(needle), "{text:?}: {e}");
                    assert!(e.field_errors().is_empty());
                    assert_eq!(e.reason(), "config.policy_invalid");
                }
                Err(e) => panic!("{text:?}: expected a syntax error, got {e}"),
            }
        }
    }

    #[test]
    fn warnings_for_locked_out_relay_routes() {
        let p = policy("version = 1\n[paths]\nallow = [\"GET /api/v1/events\"]");
        let w = p.warnings();
        assert!(
            w.iter().any(|w| w.contains("POST /api/v1/devices/pair")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("POST /api/v1/mobile/auth/refresh")),
            "{w:?}"
        );
        let p = policy(
            "version = 1\n[devices]\nplatforms = [\"ios\"]\nmin_os_version = { android = \"12\" }",
        );
        let w = p.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("devices.min_os_version.android"), "{w:?}");
    }

    #[test]
    fn image_quality() {
        let p = policy("version = 1\n[images]\ndefault_quality = \"mobile\"");
        assert_eq!(p.default_image_quality(), Some(ImageQuality::Mobile));
        assert!(
            p.image_webp_allowed(),
            "WebP is on unless the policy turns it off"
        );
        assert!(Policy::default_policy().image_webp_allowed());
        assert!(!policy("version = 1\n[images]\nwebp = false").image_webp_allowed());
        assert_eq!(p.image_quality_for("ios"), Some(ImageQuality::Mobile));
        let p = policy(
            "version = 1\n[images]\ndefault_quality = \"high\"\nplatform_quality = { ios = \"mobile\", android = \"original\" }",
        );
        assert_eq!(p.image_quality_for("iOS"), Some(ImageQuality::Mobile));
        assert_eq!(p.image_quality_for("android"), Some(ImageQuality::Original));
        assert_eq!(p.image_quality_for("web"), Some(ImageQuality::High));
        assert_eq!(Policy::default_policy().image_quality_for("ios"), None);
        assert_eq!(
            errors(
                "version = 1\n[images]\nplatform_quality = { ios = \"tiny\", \"I OS\" = \"low\" }"
            )
            .len(),
            2
        );
        for q in ImageQuality::ALL {
            assert_eq!(ImageQuality::parse(q.as_str()), Some(q));
        }
    }

    #[test]
    fn denial_messages_exist_for_every_reason() {
        for r in REASONS {
            let d = Denial::new(r);
            assert_ne!(d.message(), "denied by policy", "{r}");
            assert_eq!(d.status, 403);
        }
    }
}
