//! Ed25519-signed JWT access tokens for paired phones.
//!
//! The origin agent signs them with [`sign_access_token`]; the edge Worker (wasm32) and the agent
//! verify them with [`verify_access_token`], the same code on both sides.
//!
//! # Format
//!
//! A compact JWS (RFC 7515) with header `{"alg":"EdDSA","typ":"at+jwt","kid":…}` (RFC 8037,
//! RFC 9068) and [`AccessClaims`] as payload.
//!
//! # Verification (RFC 8725, OWASP ASVS V9)
//!
//! [`verify_access_token`] runs these checks, cheapest first, and stops at the first failure:
//!
//! 1. size cap ([`Expectations::max_token_bytes`]) before any parsing;
//! 2. exactly three segments, each strict unpadded base64url (non-canonical trailing bits refused);
//! 3. header: a JSON object without duplicate members; `alg` exactly `"EdDSA"` (so `none`, `HS256`,
//!    `ES256`, `RS256`, `eddsa` … are refused before any key is touched); none of `jku`, `x5u`,
//!    `x5c`, `jwk`, `crit`, `b64` present (keys are never taken from the token); `typ`
//!    `at+jwt` or `application/at+jwt` (case-insensitive); `kid` present and in the [`KeySet`];
//! 4. signature: exactly 64 bytes, checked with `VerifyingKey::verify_strict` over
//!    `header_b64 "." payload_b64` (refuses small-order keys and `R`, non-canonical `S`);
//! 5. only then the claims: `iss`, `aud` (a string, or an array containing the audience), `exp`,
//!    `nbf`, `iat` (integers, with [`Expectations::leeway_secs`]), `exp - iat` at most
//!    [`Expectations::max_lifetime_secs`] (a token signed with the real key but living longer than
//!    the issuer ever makes them — a signing bug, a leaked key — is refused), then the
//!    access-token schema (`sub`, `jti` non-empty, `scope`, `name`, `platform`).
//!
//! No input makes it panic.
//!
//! # Why hand-written and not `jwt-compact`
//!
//! The compact-JWS part is ~60 lines here. `jwt-compact` would need its own strict Ed25519
//! `Algorithm` (its dalek impl uses the non-strict `verify`), a `Header<serde_json::Map>` to see
//! `crit`/`jwk`, and our own claim checks anyway (its `Claims` makes `exp`/`nbf` optional and
//! times are `chrono` values), while bringing `chrono`, `anyhow`, `rand_core`, `smallvec`… into the
//! Worker's wasm. Owning the ~60 lines keeps every rule above visible and tested in one place.

mod keys;
#[cfg(test)]
mod tests;
mod verified;

pub use keys::{key_id_for, Jwk, Jwks, KeySet, KeySetError};
pub use verified::VerifiedTokens;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The only accepted `alg`.
pub const ALG: &str = "EdDSA";
/// The `typ` written by [`sign_access_token`] (RFC 9068).
pub const TYP: &str = "at+jwt";
/// Default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Default cap on the length of a token, in bytes, checked before any parsing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 4096;
/// The longest an access token may live (`exp - iat`): the agent's `tokens.access_ttl_secs` is at
/// most this.
pub const MAX_ACCESS_TOKEN_LIFETIME_SECS: u64 = 15 * 60;
/// Added to the issuer's access-token lifetime to get [`Expectations::max_lifetime_secs`]: a
/// token the agent signed is never refused over a second of rounding.
pub const LIFETIME_ALLOWANCE_SECS: u64 = 60;

/// Header parameters that are refused outright. Keys, key URLs and extensions are never taken
/// from a token (RFC 8725 §3.10; `crit` because we understand no extension, `b64` (RFC 7797)
/// because it changes what is signed).
const FORBIDDEN_HEADERS: [&str; 6] = ["jku", "x5u", "x5c", "jwk", "crit", "b64"];

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything a paired phone may do.
    Owner,
    /// Read-only.
    Viewer,
}

impl Scope {
    /// `"owner"` / `"viewer"`, as in the claim.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Owner => "owner",
            Scope::Viewer => "viewer",
        }
    }

    /// True for [`Scope::Viewer`].
    pub const fn is_read_only(self) -> bool {
        matches!(self, Scope::Viewer)
    }

    /// What a pairing gives when the owner names no scope: read-only, least privilege.
    pub const LEAST_PRIVILEGE: Scope = Scope::Viewer;

    /// `"owner"` / `"viewer"` (exactly, as [`Scope::as_str`] writes them).
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "owner" => Some(Scope::Owner),
            "viewer" => Some(Scope::Viewer),
            _ => None,
        }
    }
}

/// The claims of an access token. Field names are the JWT claim names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`iss`).
    pub iss: String,
    /// Audience (`aud`). After verification this is the expected audience, also when the token
    /// carried an array containing it.
    pub aud: String,
    /// Device id (`sub`).
    pub sub: String,
    /// Issued at (`iat`), Unix seconds.
    pub iat: u64,
    /// Not before (`nbf`), Unix seconds.
    pub nbf: u64,
    /// Expiry (`exp`), Unix seconds.
    pub exp: u64,
    /// Token id (`jti`), for revocation and logs.
    pub jti: String,
    /// `scope`: `"owner"` or `"viewer"`.
    pub scope: Scope,
    /// Device name (`name`).
    pub name: String,
    /// `"ios"`, `"android"`, … (`platform`).
    pub platform: String,
    /// App version (`app_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// OS version (`os_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

/// The agent's signing key and its `kid`.
pub struct TokenSigningKey {
    /// The key id written into each token header and into the JWK.
    pub kid: String,
    key: SigningKey,
}

impl TokenSigningKey {
    /// A key from a 32-byte Ed25519 seed (RFC 8032 private key), under the given `kid`.
    pub fn from_seed(kid: impl Into<String>, seed: [u8; 32]) -> Self {
        TokenSigningKey {
            kid: kid.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A key from a seed, with `kid` = [`key_id_for`] its public key (RFC 7638 thumbprint).
    pub fn from_seed_with_thumbprint_kid(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        TokenSigningKey {
            kid: key_id_for(&key.verifying_key()),
            key,
        }
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as a JWK (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use` sig).
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(self.kid.clone(), &self.verifying_key())
    }
}

impl fmt::Debug for TokenSigningKey {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigningKey")
            .field("kid", &self.kid)
            .field(
                "public",
                &URL_SAFE_NO_PAD.encode(self.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SignedHeader<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// Signs `claims` as a compact JWS: `{"alg":"EdDSA","typ":"at+jwt","kid":<key.kid>}`.
pub fn sign_access_token(key: &TokenSigningKey, claims: &AccessClaims) -> String {
    let header = SignedHeader {
        alg: ALG,
        typ: TYP,
        kid: &key.kid,
    };
    // Serialising these plain structs (strings, integers, a unit enum) cannot fail. Should it
    // ever, the empty segment yields a token that every verifier refuses (fail closed).
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    let claims_json = serde_json::to_vec(claims).unwrap_or_default();
    let mut token = URL_SAFE_NO_PAD.encode(header_json);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims_json));
    let signature = key.key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    token
}

/// What a token must match besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (or member of the `aud` array).
    pub audience: String,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`, seconds ([`DEFAULT_LEEWAY_SECS`]).
    pub leeway_secs: u64,
    /// Longer tokens are refused before parsing ([`DEFAULT_MAX_TOKEN_BYTES`]).
    pub max_token_bytes: usize,
    /// Tokens whose `exp - iat` is longer are refused: the issuer's access-token lifetime plus
    /// [`LIFETIME_ALLOWANCE_SECS`] (default: [`MAX_ACCESS_TOKEN_LIFETIME_SECS`] plus it).
    pub max_lifetime_secs: u64,
}

impl Expectations {
    /// Issuer and audience with the default leeway and size cap.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Expectations {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            max_lifetime_secs: MAX_ACCESS_TOKEN_LIFETIME_SECS + LIFETIME_ALLOWANCE_SECS,
        }
    }

    /// The same, for an issuer whose access tokens live `lifetime_secs`: longer ones are refused
    /// (with [`LIFETIME_ALLOWANCE_SECS`] to spare).
    pub fn with_issued_lifetime(mut self, lifetime_secs: u64) -> Self {
        self.max_lifetime_secs = lifetime_secs.saturating_add(LIFETIME_ALLOWANCE_SECS);
        self
    }
}

/// Why a token was refused. [`TokenError::reason`] is a stable string for logs and error bodies;
/// the messages never contain token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than allowed")]
    TooLarge,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("token type is not at+jwt")]
    WrongType,
    #[error("token header has forbidden parameter `{0}`")]
    ForbiddenHeader(&'static str),
    #[error("token header has no key id")]
    MissingKeyId,
    #[error("token key id is not known")]
    UnknownKey,
    #[error("token signature is not valid")]
    BadSignature,
    #[error("token issuer is not the expected one")]
    WrongIssuer,
    #[error("token audience is not the expected one")]
    WrongAudience,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token was issued in the future")]
    IssuedInFuture,
    #[error("token lives longer than the issuer makes them")]
    LifetimeTooLong,
    #[error("token claims are invalid: {0}")]
    InvalidClaims(&'static str),
}

impl TokenError {
    /// A stable snake_case reason for logs and `ErrorDetail::reason`.
    pub const fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge => "token_too_large",
            TokenError::Malformed(_) => "token_malformed",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::WrongType => "wrong_token_type",
            TokenError::ForbiddenHeader(_) => "forbidden_header",
            TokenError::MissingKeyId => "missing_kid",
            TokenError::UnknownKey => "unknown_kid",
            TokenError::BadSignature => "bad_signature",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::LifetimeTooLong => "token_lifetime_too_long",
            TokenError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

/// Ed25519 verification as the token path does it: `verify_strict` (RFC 8032 with canonical
/// `S`, no small-order public key or `R`). `public_key` must be 32 bytes and `signature` 64.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    verify_with_key(&key, message, signature)
}

/// The one place a signature is checked.
fn verify_with_key(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .is_ok()
}

/// Verifies `token` and returns its claims. See the module doc for the rules and their order.
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    expect: &Expectations,
    now_unix: u64,
) -> Result<AccessClaims, TokenError> {
    // 1. Size, before anything else.
    if token.len() > expect.max_token_bytes {
        return Err(TokenError::TooLarge);
    }
    if token.is_empty() {
        return Err(TokenError::Malformed("empty"));
    }

    // 2. Three strict base64url segments.
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("not three segments"))?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or(TokenError::Malformed("not three segments"))?;
    if payload_b64.contains('.') {
        return Err(TokenError::Malformed("not three segments"));
    }
    let header_bytes = decode_segment(header_b64)?;
    let payload_bytes = decode_segment(payload_b64)?;
    let signature = decode_segment(sig_b64)?;

    // 3. Header.
    let header = parse_object(&header_bytes).ok_or(TokenError::Malformed("header"))?;
    if header.get("alg").and_then(Value::as_str) != Some(ALG) {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if let Some(name) = FORBIDDEN_HEADERS
        .iter()
        .find(|name| header.contains_key(**name))
    {
        return Err(TokenError::ForbiddenHeader(name));
    }
    match header.get("typ").and_then(Value::as_str) {
        Some(typ)
            if typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case("application/at+jwt") => {}
        _ => return Err(TokenError::WrongType),
    }
    let kid = match header.get("kid") {
        None => return Err(TokenError::MissingKeyId),
        Some(Value::String(kid)) => kid,
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;

    // 4. Signature.
    if signature.len() != 64 || !verify_with_key(key, signing_input.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }

    // 5. Claims.
    let claims = parse_object(&payload_bytes)
        .ok_or(TokenError::InvalidClaims("payload is not a JSON object"))?;
    check_registered_claims(&claims, expect, now_unix)?;
    let wire: WireClaims = serde_json::from_value(Value::Object(claims))
        .map_err(|_| TokenError::InvalidClaims("not an access token"))?;
    if wire.sub.is_empty() {
        return Err(TokenError::InvalidClaims("empty sub"));
    }
    if wire.jti.is_empty() {
        return Err(TokenError::InvalidClaims("empty jti"));
    }
    Ok(AccessClaims {
        iss: wire.iss,
        aud: expect.audience.clone(),
        sub: wire.sub,
        iat: wire.iat,
        nbf: wire.nbf,
        exp: wire.exp,
        jti: wire.jti,
        scope: wire.scope,
        name: wire.name,
        platform: wire.platform,
        app_version: wire.app_version,
        os_version: wire.os_version,
    })
}

/// Strict unpadded base64url: no `=`, no `+`/`/`, no whitespace, zero trailing bits.
fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed("segment is not strict base64url"))
}

/// `iss`, `aud`, `exp`, `nbf`, `iat`, in that order.
fn check_registered_claims(
    claims: &Map<String, Value>,
    expect: &Expectations,
    now: u64,
) -> Result<(), TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == expect.issuer => {}
        Some(Value::String(_)) => return Err(TokenError::WrongIssuer),
        _ => return Err(TokenError::InvalidClaims("iss missing or not a string")),
    }
    match claims.get("aud") {
        Some(Value::String(aud)) if *aud == expect.audience => {}
        Some(Value::String(_)) => return Err(TokenError::WrongAudience),
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(TokenError::InvalidClaims("aud has a non-string member"));
            }
            if !auds
                .iter()
                .any(|a| a.as_str() == Some(expect.audience.as_str()))
            {
                return Err(TokenError::WrongAudience);
            }
        }
        _ => return Err(TokenError::InvalidClaims("aud missing or not a string")),
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_u64);
    let exp = time("exp").ok_or(TokenError::InvalidClaims("exp missing or not an integer"))?;
    let nbf = time("nbf").ok_or(TokenError::InvalidClaims("nbf missing or not an integer"))?;
    let iat = time("iat").ok_or(TokenError::InvalidClaims("iat missing or not an integer"))?;
    check_times(exp, nbf, iat, expect, now)
}

/// The time rules of step 5: `exp`, `nbf` and `iat` against `now`, with the leeway, and the
/// lifetime cap.
fn check_times(
    exp: u64,
    nbf: u64,
    iat: u64,
    expect: &Expectations,
    now: u64,
) -> Result<(), TokenError> {
    let leeway = expect.leeway_secs;
    if now > exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if nbf > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    if iat > now.saturating_add(leeway) {
        return Err(TokenError::IssuedInFuture);
    }
    if exp < nbf || exp < iat {
        return Err(TokenError::InvalidClaims("exp before nbf or iat"));
    }
    if exp - iat > expect.max_lifetime_secs {
        return Err(TokenError::LifetimeTooLong);
    }
    Ok(())
}

/// The payload as it travels: like [`AccessClaims`] but `aud` may be an array (checked before).
#[derive(Deserialize)]
struct WireClaims {
    iss: String,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    scope: Scope,
    name: String,
    platform: String,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    os_version: Option<String>,
}

/// A JSON object whose members are all distinct: RFC 7515 §4 lets a parser reject duplicates,
/// and `{"alg":"EdDSA","alg":"none"}` must not mean different things to different parsers.
fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice::<StrictObject>(bytes)
        .ok()
        .map(|o| o.0)
}

struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object without duplicate members")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}
