//! Specifications of the token rules: each rejection with a token crafted to break just that rule.

use super::*;
use crate::fuzzing::XorShift as Rng;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const NOW: u64 = 1_700_000_000;
const SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [9; 32];
const KID: &str = "k1";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> &'static TokenSigningKey {
    static KEY: std::sync::OnceLock<TokenSigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| TokenSigningKey::from_seed(KID, SEED))
}

/// Built once: deriving the public key is a scalar multiplication, slow in debug builds.
fn keys() -> &'static KeySet {
    static KEYS: std::sync::OnceLock<KeySet> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| KeySet::from_signing_key(key()))
}

fn expect() -> Expectations {
    Expectations::new("argus-agent", "argus-edge")
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "argus-agent".into(),
        aud: "argus-edge".into(),
        sub: "dev_123".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 900,
        jti: "jti_abc".into(),
        scope: Scope::Owner,
        name: "Ada's phone".into(),
        platform: "ios".into(),
        app_version: Some("1.2.3".into()),
        os_version: None,
    }
}

fn header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": KID})
}

fn claims_value() -> Value {
    serde_json::to_value(claims()).unwrap()
}

/// A correctly Ed25519-signed compact JWS with arbitrary header and payload bytes, so a refusal
/// can only come from the rule under test, not from the signature.
fn craft_raw(header: &[u8], payload: &[u8], seed: [u8; 32]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = SigningKey::from_bytes(&seed).sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

fn craft(header: &Value, payload: &Value) -> String {
    craft_raw(
        header.to_string().as_bytes(),
        payload.to_string().as_bytes(),
        SEED,
    )
}

fn verify(token: &str) -> Result<AccessClaims, TokenError> {
    verify_access_token(token, keys(), &expect(), NOW)
}

fn with_claim(name: &str, value: Value) -> String {
    let mut c = claims_value();
    c[name] = value;
    craft(&header(), &c)
}

fn without_claim(name: &str) -> String {
    let mut c = claims_value();
    c.as_object_mut().unwrap().remove(name);
    craft(&header(), &c)
}

fn with_header(name: &str, value: Value) -> String {
    let mut h = header();
    h[name] = value;
    craft(&h, &claims_value())
}

#[test]
fn round_trip() {
    let token = sign_access_token(key(), &claims());
    assert_eq!(verify(&token), Ok(claims()));
    let h: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(h, header());
}

#[test]
fn crafted_helper_matches_signer() {
    // The helper makes tokens the verifier accepts, so the refusals below test their rule only.
    assert_eq!(verify(&craft(&header(), &claims_value())), Ok(claims()));
}

#[test]
fn claims_serialize_with_jwt_names_and_optional_fields_omitted() {
    let v = claims_value();
    assert_eq!(v["scope"], "owner");
    assert_eq!(v["name"], "Ada's phone");
    assert_eq!(v["app_version"], "1.2.3");
    assert!(v.get("os_version").is_none());
    let viewer = serde_json::to_value(Scope::Viewer).unwrap();
    assert_eq!(viewer, "viewer");
    assert!(Scope::Viewer.is_read_only() && !Scope::Owner.is_read_only());
}

#[test]
fn viewer_and_optional_fields_round_trip() {
    let mut c = claims();
    c.scope = Scope::Viewer;
    c.app_version = None;
    c.os_version = Some("17.4".into());
    let token = sign_access_token(key(), &c);
    assert_eq!(verify(&token), Ok(c));
}

#[test]
fn alg_none_is_refused() {
    let h = json!({"alg": "none", "typ": "at+jwt", "kid": KID});
    let token = format!(
        "{}.{}.",
        b64(h.to_string()),
        b64(claims_value().to_string())
    );
    assert_eq!(verify(&token), Err(TokenError::UnsupportedAlgorithm));
    // Even with a (meaningless) signature segment present.
    let token = format!("{token}{}", b64([0u8; 64]));
    assert_eq!(verify(&token), Err(TokenError::UnsupportedAlgorithm));
}

#[test]
fn hs256_with_public_key_as_hmac_secret_is_refused() {
    // The classic key-confusion attack: HMAC keyed with the verifier's public key bytes.
    let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": KID});
    let input = format!("{}.{}", b64(h.to_string()), b64(claims_value().to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key().verifying_key().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
    assert_eq!(verify(&token), Err(TokenError::UnsupportedAlgorithm));
}

#[test]
fn every_alg_but_exact_eddsa_is_refused() {
    for alg in [
        json!("none"),
        json!("None"),
        json!("NONE"),
        json!("HS256"),
        json!("ES256"),
        json!("RS256"),
        json!("PS256"),
        json!("eddsa"),
        json!("EDDSA"),
        json!("Ed25519"),
        json!("EdDSA "),
        json!(""),
        json!(null),
        json!(["EdDSA"]),
    ] {
        let token = with_header("alg", alg.clone());
        assert_eq!(
            verify(&token),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
    let mut h = header();
    h.as_object_mut().unwrap().remove("alg");
    assert_eq!(
        verify(&craft(&h, &claims_value())),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    assert_eq!(
        verify(&with_header("kid", json!("k2"))),
        Err(TokenError::UnknownKey)
    );
    let mut h = header();
    h.as_object_mut().unwrap().remove("kid");
    assert_eq!(
        verify(&craft(&h, &claims_value())),
        Err(TokenError::MissingKeyId)
    );
    assert!(verify(&with_header("kid", json!(1))).is_err());
    // An empty key set verifies nothing.
    let token = sign_access_token(key(), &claims());
    assert_eq!(
        verify_access_token(&token, &KeySet::new(), &expect(), NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn another_key_under_the_same_kid_is_refused() {
    let impostor = TokenSigningKey::from_seed(KID, OTHER_SEED);
    let token = sign_access_token(&impostor, &claims());
    assert_eq!(verify(&token), Err(TokenError::BadSignature));
}

#[test]
fn expiry_with_leeway() {
    let leeway = DEFAULT_LEEWAY_SECS;
    let mut c = claims();
    c.iat = NOW - 1000;
    c.nbf = NOW - 1000;
    c.exp = NOW - leeway; // expired, but within leeway
    let token = sign_access_token(key(), &c);
    assert_eq!(verify(&token), Ok(c.clone()));
    c.exp = NOW - leeway - 1;
    let token = sign_access_token(key(), &c);
    assert_eq!(verify(&token), Err(TokenError::Expired));
    // And a token that is fine now expires later.
    let token = sign_access_token(key(), &claims());
    assert_eq!(
        verify_access_token(&token, keys(), &expect(), NOW + 900 + leeway + 1),
        Err(TokenError::Expired)
    );
}

#[test]
fn not_before_in_the_future_is_refused() {
    let mut c = claims();
    c.nbf = NOW + DEFAULT_LEEWAY_SECS;
    assert_eq!(verify(&sign_access_token(key(), &c)), Ok(c.clone()));
    c.nbf = NOW + DEFAULT_LEEWAY_SECS + 1;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn issued_in_the_future_is_refused() {
    let mut c = claims();
    c.iat = NOW + DEFAULT_LEEWAY_SECS + 1;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn exp_before_nbf_is_refused() {
    let mut c = claims();
    c.nbf = NOW;
    c.exp = NOW - 1;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::InvalidClaims("exp before nbf or iat"))
    );
}

#[test]
fn leeway_is_configurable() {
    let mut c = claims();
    c.exp = NOW - 1;
    c.iat = NOW - 100;
    c.nbf = NOW - 100;
    let token = sign_access_token(key(), &c);
    let mut e = expect();
    e.leeway_secs = 0;
    assert_eq!(
        verify_access_token(&token, keys(), &e, NOW),
        Err(TokenError::Expired)
    );
}

#[test]
fn huge_times_do_not_overflow() {
    let mut c = claims();
    c.exp = u64::MAX;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::LifetimeTooLong)
    );
    c.iat = u64::MAX - 900;
    c.nbf = c.iat;
    assert_eq!(
        verify_access_token(&sign_access_token(key(), &c), keys(), &expect(), u64::MAX),
        Ok(c)
    );
}

#[test]
fn a_genuine_token_living_longer_than_the_issuer_makes_them_is_refused() {
    // Signed with the real key (a signing bug, a leaked key): valid in every other respect.
    let mut c = claims();
    let default_max = MAX_ACCESS_TOKEN_LIFETIME_SECS + LIFETIME_ALLOWANCE_SECS;
    c.exp = c.iat + default_max;
    assert_eq!(verify(&sign_access_token(key(), &c)), Ok(c.clone()));
    c.exp = c.iat + default_max + 1;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::LifetimeTooLong)
    );
    c.exp = c.iat + 365 * 24 * 3600;
    assert_eq!(
        verify(&sign_access_token(key(), &c)),
        Err(TokenError::LifetimeTooLong)
    );
    // An issuer configured for 5-minute tokens: the cap follows it.
    let short = expect().with_issued_lifetime(300);
    assert_eq!(short.max_lifetime_secs, 300 + LIFETIME_ALLOWANCE_SECS);
    c.exp = c.iat + 300 + LIFETIME_ALLOWANCE_SECS;
    let token = sign_access_token(key(), &c);
    assert_eq!(
        verify_access_token(&token, keys(), &short, NOW),
        Ok(c.clone())
    );
    c.exp += 1;
    let token = sign_access_token(key(), &c);
    assert_eq!(
        verify_access_token(&token, keys(), &short, NOW),
        Err(TokenError::LifetimeTooLong)
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    assert_eq!(
        verify(&with_claim("iss", json!("someone-else"))),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(
        verify(&with_claim("aud", json!("argus-edge2"))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        verify(&with_claim("aud", json!(["other", "argus-edgE"]))),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        verify(&with_claim("aud", json!([]))),
        Err(TokenError::WrongAudience)
    );
    assert!(matches!(
        verify(&with_claim("aud", json!(7))),
        Err(TokenError::InvalidClaims(_))
    ));
    assert!(matches!(
        verify(&with_claim("aud", json!(["argus-edge", 7]))),
        Err(TokenError::InvalidClaims(_))
    ));
    assert!(matches!(
        verify(&with_claim("iss", json!(null))),
        Err(TokenError::InvalidClaims(_))
    ));
}

#[test]
fn audience_array_containing_ours_is_accepted() {
    let token = with_claim("aud", json!(["other", "argus-edge"]));
    assert_eq!(verify(&token), Ok(claims()));
}

#[test]
fn required_claims_must_be_present_and_well_typed() {
    for name in [
        "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope", "name", "platform",
    ] {
        assert!(
            matches!(
                verify(&without_claim(name)),
                Err(TokenError::InvalidClaims(_))
            ),
            "missing {name}"
        );
    }
    for (name, value) in [
        ("exp", json!(1_700_000_900.5)),
        ("exp", json!(-1)),
        ("exp", json!("1700000900")),
        ("nbf", json!(null)),
        ("iat", json!(1.7e9)),
        ("sub", json!("")),
        ("jti", json!("")),
        ("sub", json!(5)),
        ("scope", json!("admin")),
        ("scope", json!("Owner")),
        ("platform", json!(null)),
    ] {
        assert!(
            matches!(
                verify(&with_claim(name, value.clone())),
                Err(TokenError::InvalidClaims(_))
            ),
            "{name} = {value}"
        );
    }
    // Optional claims may be absent; unknown claims are ignored.
    assert_eq!(
        verify(&without_claim("app_version")).map(|c| c.app_version),
        Ok(None)
    );
    assert_eq!(verify(&with_claim("extra", json!({"x": 1}))), Ok(claims()));
}

#[test]
fn payload_that_is_not_a_json_object_is_refused() {
    for payload in [&b"[]"[..], b"\"s\"", b"", b"{", b"{} x", b"\xff\xfe"] {
        let token = craft_raw(header().to_string().as_bytes(), payload, SEED);
        assert!(
            matches!(verify(&token), Err(TokenError::InvalidClaims(_))),
            "{payload:?}"
        );
    }
}

#[test]
fn duplicate_members_are_refused() {
    let token = craft_raw(
        br#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1","alg":"none"}"#,
        claims_value().to_string().as_bytes(),
        SEED,
    );
    assert_eq!(verify(&token), Err(TokenError::Malformed("header")));
    let body = claims_value().to_string();
    let dup = format!(r#"{{"exp":99999999999,{}"#, &body[1..]);
    let token = craft_raw(header().to_string().as_bytes(), dup.as_bytes(), SEED);
    assert!(matches!(verify(&token), Err(TokenError::InvalidClaims(_))));
}

#[test]
fn tampered_payload_is_refused() {
    let token = sign_access_token(key(), &claims());
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut c = claims_value();
    c["scope"] = json!("owner");
    c["sub"] = json!("dev_999");
    parts[1] = b64(c.to_string());
    assert_eq!(verify(&parts.join(".")), Err(TokenError::BadSignature));
}

#[test]
fn tampered_signature_is_refused() {
    let token = sign_access_token(key(), &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    for i in [0, 31, 32, 63] {
        sig[i] ^= 1;
        let t = format!("{input}.{}", b64(&sig));
        assert_eq!(verify(&t), Err(TokenError::BadSignature), "byte {i}");
        sig[i] ^= 1;
    }
    // Wrong lengths.
    for len in [0, 63, 65, 128] {
        let t = format!("{input}.{}", b64(vec![1u8; len]));
        assert_eq!(verify(&t), Err(TokenError::BadSignature), "len {len}");
    }
    let t = format!("{input}.{}{}", b64(&sig), "AA");
    assert!(verify(&t).is_err());
}

#[test]
fn malleated_signature_s_plus_l_is_refused() {
    // (R, S + L) satisfies the verification equation; only a strict verifier refuses it.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let token = sign_access_token(key(), &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    let t = format!("{input}.{}", b64(&sig));
    assert_eq!(verify(&t), Err(TokenError::BadSignature));
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let mut e = expect();
    let token = sign_access_token(key(), &claims());
    e.max_token_bytes = token.len();
    assert_eq!(verify_access_token(&token, keys(), &e, NOW), Ok(claims()));
    e.max_token_bytes = token.len() - 1;
    assert_eq!(
        verify_access_token(&token, keys(), &e, NOW),
        Err(TokenError::TooLarge)
    );
    // Default cap: a valid, correctly signed but huge token.
    let big = with_claim("pad", json!("x".repeat(DEFAULT_MAX_TOKEN_BYTES)));
    assert_eq!(verify(&big), Err(TokenError::TooLarge));
    assert_eq!(verify(&"x".repeat(1 << 20)), Err(TokenError::TooLarge));
}

#[test]
fn forbidden_headers_are_refused_even_when_validly_signed() {
    let jwk = serde_json::to_value(key().jwk()).unwrap();
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("jwk", jwk),
        ("crit", json!(["exp"])),
        ("b64", json!(false)),
        ("b64", json!(true)),
    ] {
        assert_eq!(
            verify(&with_header(name, value)),
            Err(TokenError::ForbiddenHeader(name)),
            "{name}"
        );
    }
    // Harmless extra header parameters are fine.
    assert_eq!(verify(&with_header("cty", json!("x"))), Ok(claims()));
}

#[test]
fn typ_must_be_access_token() {
    let mut h = header();
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        verify(&craft(&h, &claims_value())),
        Err(TokenError::WrongType)
    );
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt "),
        json!(""),
        json!(null),
        json!(1),
    ] {
        assert_eq!(
            verify(&with_header("typ", typ.clone())),
            Err(TokenError::WrongType),
            "{typ}"
        );
    }
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/At+JWT",
    ] {
        assert_eq!(
            verify(&with_header("typ", json!(typ))),
            Ok(claims()),
            "{typ}"
        );
    }
}

#[test]
fn header_must_be_a_json_object() {
    for h in [
        &b"[]"[..],
        b"null",
        b"\"EdDSA\"",
        b"",
        b"{\"alg\":\"EdDSA\"",
    ] {
        let token = craft_raw(h, claims_value().to_string().as_bytes(), SEED);
        assert_eq!(
            verify(&token),
            Err(TokenError::Malformed("header")),
            "{h:?}"
        );
    }
}

#[test]
fn non_canonical_base64_is_refused() {
    let token = sign_access_token(key(), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let sig = parts[2];
    // 64 bytes = 86 chars carrying 4 unused bits in the last char; a lenient decoder ignores them.
    let last = sig.chars().last().unwrap();
    let idx = URL_SAFE_NO_PAD_ALPHABET.find(last).unwrap();
    assert_eq!(idx & 0xf, 0);
    let bumped = URL_SAFE_NO_PAD_ALPHABET.chars().nth(idx | 1).unwrap();
    let sig2 = format!("{}{bumped}", &sig[..sig.len() - 1]);
    let t = format!("{}.{}.{sig2}", parts[0], parts[1]);
    assert_eq!(
        verify(&t),
        Err(TokenError::Malformed("segment is not strict base64url"))
    );

    // Padded, standard-alphabet, whitespace: all refused.
    let padded = format!("{}.{}.{sig}==", parts[0], parts[1]);
    assert!(matches!(verify(&padded), Err(TokenError::Malformed(_))));
    let header_padded = base64::engine::general_purpose::URL_SAFE.encode(header().to_string());
    if header_padded.ends_with('=') {
        let t = format!("{header_padded}.{}.{sig}", parts[1]);
        assert!(matches!(verify(&t), Err(TokenError::Malformed(_))));
    }
    for (i, part) in parts.iter().enumerate() {
        for bad in ["+", "/", " ", "\n", "=", "%"] {
            let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            p[i] = format!("{part}{bad}");
            assert!(
                matches!(verify(&p.join(".")), Err(TokenError::Malformed(_))),
                "segment {i} + {bad:?}"
            );
        }
    }
}

const URL_SAFE_NO_PAD_ALPHABET: &str =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[test]
fn segment_count_must_be_three() {
    let token = sign_access_token(key(), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let two = format!("{}.{}", parts[0], parts[1]);
    let four = format!("{token}.{}", parts[2]);
    let four_empty = format!("{token}.");
    let jwe_like = format!("{}.{}.{}.{}.{}", parts[0], "", parts[1], parts[1], parts[2]);
    for t in [two, four, four_empty, jwe_like, parts[0].to_string()] {
        assert!(matches!(verify(&t), Err(TokenError::Malformed(_))), "{t}");
    }
}

#[test]
fn garbage_and_empty_are_refused() {
    for t in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "\0\0\0",
        "ey.ey.ey",
        "é.é.é",
        "Bearer x.y.z",
        "🦀.🦀.🦀",
    ] {
        assert!(verify(t).is_err(), "{t:?}");
    }
    assert_eq!(verify(""), Err(TokenError::Malformed("empty")));
}

#[test]
fn rfc8037_example_jws_verifies_but_is_not_an_access_token() {
    // RFC 8037 A.4: header {"alg":"EdDSA"}, payload "Example of Ed25519 signing".
    let d = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap();
    let x = URL_SAFE_NO_PAD
        .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        .unwrap();
    let jws = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert!(verify_ed25519(&x, input.as_bytes(), &sig));
    assert!(!verify_ed25519(&x, b"other", &sig));
    let signer = TokenSigningKey::from_seed("rfc", d.try_into().unwrap());
    assert_eq!(signer.verifying_key().as_bytes()[..], x[..]);
    assert_eq!(signer.key.sign(input.as_bytes()).to_bytes()[..], sig[..]);
    let set = KeySet::from_signing_key(&signer);
    assert_eq!(
        verify_access_token(jws, &set, &expect(), NOW),
        Err(TokenError::WrongType)
    );
}

#[test]
fn verify_ed25519_refuses_bad_lengths() {
    let k = key();
    let sig = k.key.sign(b"m").to_bytes();
    let pk = k.verifying_key().to_bytes();
    assert!(verify_ed25519(&pk, b"m", &sig));
    assert!(!verify_ed25519(&pk[..31], b"m", &sig));
    assert!(!verify_ed25519(&[pk.as_slice(), &[0]].concat(), b"m", &sig));
    assert!(!verify_ed25519(&pk, b"m", &sig[..63]));
    assert!(!verify_ed25519(&pk, b"m", &[sig.as_slice(), &[0]].concat()));
    assert!(!verify_ed25519(&[0u8; 32], b"m", &[0u8; 64]));
}

#[test]
fn reasons_are_stable_snake_case_and_distinct() {
    let all = [
        TokenError::TooLarge,
        TokenError::Malformed("x"),
        TokenError::UnsupportedAlgorithm,
        TokenError::WrongType,
        TokenError::ForbiddenHeader("jku"),
        TokenError::MissingKeyId,
        TokenError::UnknownKey,
        TokenError::BadSignature,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::LifetimeTooLong,
        TokenError::InvalidClaims("x"),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for e in &all {
        let r = e.reason();
        assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        assert!(seen.insert(r), "duplicate reason {r}");
    }
    assert_eq!(TokenError::Expired.reason(), "token_expired");
    assert_eq!(TokenError::BadSignature.reason(), "bad_signature");
}

// --- keys ---

#[test]
fn thumbprint_matches_rfc8037_appendix_a3() {
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        .unwrap()
        .try_into()
        .unwrap();
    let vk = VerifyingKey::from_bytes(&x).unwrap();
    assert_eq!(
        key_id_for(&vk),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let k = TokenSigningKey::from_seed_with_thumbprint_kid(SEED);
    assert_eq!(k.kid, key_id_for(&k.verifying_key()));
}

#[test]
fn jwk_shape_and_jwks_round_trip() {
    let jwk = serde_json::to_value(key().jwk()).unwrap();
    assert_eq!(
        jwk,
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(key().verifying_key().as_bytes()),
            "kid": KID,
            "alg": "EdDSA",
            "use": "sig",
        })
    );
    let jwks = Jwks {
        keys: vec![
            key().jwk(),
            TokenSigningKey::from_seed("k2", OTHER_SEED).jwk(),
        ],
    };
    let json = serde_json::to_string(&jwks).unwrap();
    let set = KeySet::from_jwks_json(&json).unwrap();
    assert_eq!(set.kids(), vec!["k1", "k2"]);
    assert_eq!(set.len(), 2);
    assert!(!set.is_empty());
    assert_eq!(set.to_jwks(), jwks);
    let token = sign_access_token(key(), &claims());
    assert_eq!(
        verify_access_token(&token, &set, &expect(), NOW),
        Ok(claims())
    );
    assert!(format!("{:?}", key()).contains(KID));
    assert!(!format!("{:?}", key()).contains(&hex::encode(SEED)));
}

#[test]
fn key_sets_refuse_unusable_keys() {
    let good = key().jwk();
    let bad = |f: &dyn Fn(&mut Jwk)| {
        let mut j = good.clone();
        f(&mut j);
        KeySet::from_jwks(&Jwks { keys: vec![j] })
    };
    assert!(bad(&|_| {}).is_ok());
    for (what, f) in [
        (
            "kty",
            &(|j: &mut Jwk| j.kty = "EC".into()) as &dyn Fn(&mut Jwk),
        ),
        ("crv", &|j: &mut Jwk| j.crv = "X25519".into()),
        ("alg", &|j: &mut Jwk| j.alg = Some("ES256".into())),
        ("use", &|j: &mut Jwk| j.use_ = Some("enc".into())),
        ("key_ops", &|j: &mut Jwk| {
            j.key_ops = Some(vec!["encrypt".into()])
        }),
        ("x short", &|j: &mut Jwk| j.x = b64([1u8; 31])),
        ("x padded", &|j: &mut Jwk| j.x = format!("{}=", j.x)),
        ("kid", &|j: &mut Jwk| j.kid = String::new()),
        // The identity point (small order).
        ("weak", &|j: &mut Jwk| {
            let mut id = [0u8; 32];
            id[0] = 1;
            j.x = b64(id);
        }),
    ] {
        assert!(
            matches!(bad(f), Err(KeySetError::InvalidKey { .. })),
            "{what}"
        );
    }
    let dup = Jwks {
        keys: vec![good.clone(), good.clone()],
    };
    assert_eq!(
        KeySet::from_jwks(&dup),
        Err(KeySetError::DuplicateKid(KID.into()))
    );
    let mut with_d = serde_json::to_value(Jwks { keys: vec![good] }).unwrap();
    with_d["keys"][0]["d"] = json!(b64(SEED));
    assert_eq!(
        KeySet::from_jwks_json(&with_d.to_string()),
        Err(KeySetError::PrivateKeyMaterial)
    );
    assert_eq!(KeySet::from_jwks_json("{"), Err(KeySetError::Json));
    assert_eq!(KeySet::from_jwks_json("[]"), Err(KeySetError::Json));
    let rsa = r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}"#;
    assert!(matches!(
        KeySet::from_jwks_json(rsa),
        Err(KeySetError::InvalidKey { .. })
    ));
    assert!(KeySet::from_jwks_json(r#"{"keys":[]}"#).unwrap().is_empty());
}

// --- property-style loops (deterministic, no extra dependency) ---

#[test]
fn no_mutation_of_a_valid_token_verifies_and_none_panics() {
    let token = sign_access_token(key(), &claims());
    let alphabet = format!("{URL_SAFE_NO_PAD_ALPHABET}.=+/ \0é");
    let alphabet: Vec<char> = alphabet.chars().collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut checked = 0;
    for _ in 0..3000 {
        let mut chars: Vec<char> = token.chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(chars.len());
            match rng.below(4) {
                0 => chars[at] = alphabet[rng.below(alphabet.len())],
                1 => {
                    chars.remove(at);
                }
                2 => chars.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => chars.truncate(at),
            }
            if chars.is_empty() {
                break;
            }
        }
        let mutated: String = chars.into_iter().collect();
        let result = verify(&mutated);
        if mutated != token {
            assert!(result.is_err(), "mutation accepted: {mutated}");
            checked += 1;
        }
    }
    assert!(checked > 2500, "only {checked} distinct mutations");
}

#[test]
fn random_garbage_never_panics_or_verifies() {
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let len = rng.below(300);
        let s: String = (0..len)
            .map(|_| match rng.below(4) {
                0 => '.',
                1 => char::from(b'A' + rng.below(26) as u8),
                2 => char::from(rng.below(128) as u8),
                _ => URL_SAFE_NO_PAD_ALPHABET.as_bytes()[rng.below(64)] as char,
            })
            .collect();
        assert!(verify(&s).is_err(), "{s:?}");
    }
}

#[test]
fn random_claims_round_trip() {
    let mut rng = Rng(7);
    let pool = ['a', 'Z', '0', ' ', '"', '\\', '\n', 'é', '🦀', '\u{0}', '.'];
    let text = |rng: &mut Rng| -> String {
        let len = 1 + rng.below(40);
        (0..len).map(|_| pool[rng.below(pool.len())]).collect()
    };
    for _ in 0..200 {
        // Unexpired at NOW, within the default lifetime cap (900 s + the allowance).
        let iat = NOW - rng.below(900) as u64;
        let c = AccessClaims {
            iss: "argus-agent".into(),
            aud: "argus-edge".into(),
            sub: text(&mut rng),
            iat,
            nbf: iat,
            exp: iat + 900 + rng.below(61) as u64,
            jti: text(&mut rng),
            scope: if rng.below(2) == 0 {
                Scope::Owner
            } else {
                Scope::Viewer
            },
            name: text(&mut rng),
            platform: text(&mut rng),
            app_version: (rng.below(2) == 0).then(|| text(&mut rng)),
            os_version: (rng.below(2) == 0).then(|| text(&mut rng)),
        };
        let token = sign_access_token(key(), &c);
        assert_eq!(verify(&token), Ok(c));
    }
}

#[test]
fn small_order_key_with_identity_signature_is_refused() {
    // Public key = identity point, R = identity, S = 0: the cofactorless equation [S]B = R + [k]A
    // holds for every message, so a plain `verify` accepts this "signature" of anything. The
    // strict check (and KeySet, which refuses small-order keys) must not.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(
        ed25519_dalek::Verifier::verify(&weak, b"forged", &Signature::from_bytes(&sig)).is_ok(),
        "premise: the lenient check accepts this forgery"
    );
    assert!(!verify_ed25519(&identity, b"forged", &sig));
    assert!(!verify_with_key(&weak, b"forged", &sig));
    assert!(matches!(
        KeySet::new().insert("weak", weak),
        Err(KeySetError::InvalidKey { .. })
    ));
}
