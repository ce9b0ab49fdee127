//! Security story: forged, altered, expired or foreign device tokens are refused at the edge
//! *and* at the agent (a request that reached the tunnel with a valid edge signature still needs
//! a valid token), and requests straight to the agent without a valid, fresh, unused edge
//! signature are refused before anything else.

use argus_shared::token::{key_id_for, AccessClaims, Scope};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use e2e::signer::{nonce as fresh_nonce, EdgeSigner, Signing};
use e2e::stack::Stack;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The install's current signing key (read from the agent's database, as only the agent can).
fn install_key(stack: &Stack) -> (String, SigningKey) {
    let store = origin_agent::store::Store::open(stack.agent.data_dir().join("relay.db")).unwrap();
    let k = store.current_signing_key().unwrap().unwrap();
    (k.kid.clone(), SigningKey::from_bytes(&k.seed))
}

fn claims(device: &str) -> AccessClaims {
    let t = now();
    AccessClaims {
        iss: "https://relay.test".into(),
        aud: "argus-relay".into(),
        sub: device.into(),
        iat: t,
        nbf: t,
        exp: t + 600,
        jti: "attack".into(),
        scope: Scope::Owner,
        name: "Mallory".into(),
        platform: "ios".into(),
        app_version: None,
        os_version: None,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn signed(key: &SigningKey, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn header(kid: &str) -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid})
}

/// Every attack, named. `device` is a real, active device id (so only the token is wrong).
fn attacks(kid: &str, key: &SigningKey, device: &str, valid: &str) -> Vec<(&'static str, String)> {
    let c = serde_json::to_value(claims(device)).unwrap();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = c.clone();
        f(&mut v);
        v
    };
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let other_kid = key_id_for(&other.verifying_key());
    let hs256 = {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})),
            b64(&c)
        );
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.verifying_key().as_bytes()).unwrap();
        m.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    };
    let mut parts: Vec<&str> = valid.split('.').collect();
    let tampered_payload = {
        let mut p: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        p["scope"] = json!("owner");
        p["sub"] = json!(device);
        p["exp"] = json!(now() + 86_400);
        let enc = b64(&p);
        format!("{}.{}.{}", parts[0], enc, parts[2])
    };
    let tampered_sig = {
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let enc = URL_SAFE_NO_PAD.encode(sig);
        parts[2] = &enc;
        parts.join(".")
    };
    vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                b64(&c)
            ),
        ),
        ("HS256 keyed with the public key", hs256),
        ("unknown kid", signed(key, header("no-such-kid"), &c)),
        (
            "expired",
            signed(
                key,
                header(kid),
                &with(&|v| {
                    v["exp"] = json!(now() - 120);
                    v["iat"] = json!(now() - 1000);
                    v["nbf"] = json!(now() - 1000);
                }),
            ),
        ),
        (
            // A signing bug or a leaked key: the real key, a lifetime the agent never issues.
            "the install's key, valid for a year",
            signed(
                key,
                header(kid),
                &with(&|v| v["exp"] = json!(now() + 365 * 24 * 3600)),
            ),
        ),
        (
            "nbf in the future",
            signed(key, header(kid), &with(&|v| v["nbf"] = json!(now() + 600))),
        ),
        (
            "wrong aud",
            signed(
                key,
                header(kid),
                &with(&|v| v["aud"] = json!("someone-else")),
            ),
        ),
        (
            "wrong iss",
            signed(
                key,
                header(kid),
                &with(&|v| v["iss"] = json!("https://evil.example")),
            ),
        ),
        ("tampered payload", tampered_payload),
        ("tampered signature", tampered_sig),
        (
            "oversized",
            signed(
                key,
                header(kid),
                &with(&|v| v["name"] = json!("x".repeat(6000))),
            ),
        ),
        (
            "jku header",
            signed(
                key,
                json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks"}),
                &c,
            ),
        ),
        (
            "x5u header",
            signed(
                key,
                json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5u": "https://evil.example/cert"}),
                &c,
            ),
        ),
        (
            "jwk header",
            signed(
                key,
                json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(other.verifying_key().as_bytes())}}),
                &c,
            ),
        ),
        (
            "crit header",
            signed(
                key,
                json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "crit": ["exp"]}),
                &c,
            ),
        ),
        (
            "wrong typ",
            signed(key, json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}), &c),
        ),
        (
            "another install's key",
            signed(&other, header(&other_kid), &c),
        ),
        (
            "another install's key under our kid",
            signed(&other, header(kid), &c),
        ),
        ("not a JWT", "hello".into()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_altered_tokens_are_refused_at_the_edge_and_at_the_agent() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let (kid, key) = install_key(&stack);
    let signer = EdgeSigner::for_agent(&stack.agent);
    stack.backend.clear_requests();

    // Control: the genuine token passes both ways.
    let good = stack.phone().with_token(&device.access_token);
    assert_eq!(good.get("/api/v1/events?limit=1").await.status(), 200);
    let bearer = format!("Bearer {}", device.access_token);
    let (s, _) = signer
        .send(
            "GET",
            "/api/v1/events?limit=1",
            &[("authorization", &bearer)],
            &Signing::default(),
        )
        .await;
    assert_eq!(s, 200);
    let reached = stack.backend.requests().len();

    for (name, token) in attacks(&kid, &key, &device.device_id, &device.access_token) {
        let (s, body) = stack
            .phone()
            .with_token(&token)
            .get_json("/api/v1/events?limit=1")
            .await;
        assert_eq!(s, 401, "edge accepted {name}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{name}: {body}");
        let bearer = format!("Bearer {token}");
        let (s, body) = signer
            .send(
                "GET",
                "/api/v1/events?limit=1",
                &[("authorization", &bearer)],
                &Signing {
                    device_id: Some(device.device_id.clone()),
                    ..Signing::default()
                },
            )
            .await;
        assert_eq!(s, 401, "agent accepted {name}: {body}");
    }
    assert_eq!(
        stack.backend.requests().len(),
        reached,
        "no attack reached ArgusAI"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wycheproof_jws_passes_the_edge_or_the_agent() {
    let Some(path) = e2e::reference_file(
        "no_wycheproof_jws_passes_the_edge_or_the_agent",
        "testvectors/wycheproof/json_web_signature_test.json",
    ) else {
        return;
    };
    let stack = Stack::start().await;
    let signer = EdgeSigner::for_agent(&stack.agent);
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let compact: Vec<String> = doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter())
        .filter_map(|t| t["jws"].as_str().map(str::to_owned))
        .collect();
    assert!(compact.len() > 100, "{}", compact.len());
    // What reached ArgusAI before the attacks was the agent signing itself in.
    stack.backend.clear_requests();
    let phone = stack.phone();
    for jws in &compact {
        let (s, body) = phone
            .clone()
            .with_token(jws)
            .get_json("/api/v1/events?limit=1")
            .await;
        assert!(s == 401, "edge: {s} {body} for {jws}");
        let bearer = format!("Bearer {jws}");
        let (s, _) = signer
            .send(
                "GET",
                "/api/v1/events?limit=1",
                &[("authorization", &bearer)],
                &Signing::default(),
            )
            .await;
        assert!(s == 401, "agent: {s} for {jws}");
    }
    eprintln!(
        "{} compact Wycheproof JWS refused at both hops",
        compact.len()
    );
    assert!(stack.backend.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tunnel_without_a_valid_fresh_unused_edge_signature_gives_nothing() {
    let stack = Stack::start().await;
    let device = stack.pair_phone("viewer").await;
    let signer = EdgeSigner::for_agent(&stack.agent);
    let bearer = format!("Bearer {}", device.access_token);
    let auth = [("authorization", bearer.as_str())];
    stack.backend.clear_requests();

    let cases = [
        (
            "no signature",
            Signing {
                unsigned: true,
                ..Signing::default()
            },
            "signature.missing",
        ),
        (
            "tampered signature",
            Signing {
                tamper: true,
                ..Signing::default()
            },
            "signature.mismatch",
        ),
        (
            "stale signature",
            Signing {
                skew_secs: -3600,
                ..Signing::default()
            },
            "signature.stale",
        ),
        (
            "future signature",
            Signing {
                skew_secs: 3600,
                ..Signing::default()
            },
            "signature.stale",
        ),
    ];
    for (name, how, reason) in &cases {
        let (s, body) = signer
            .send("GET", "/api/v1/events?limit=1", &auth, how)
            .await;
        assert_eq!(s, 401, "{name}: {body}");
        assert_eq!(body["error"]["code"], "invalid_signature", "{name}: {body}");
        assert_eq!(body["error"]["reason"], *reason, "{name}: {body}");
    }
    // Public routes too: pairing is not reachable around the Worker.
    let (s, _) = signer
        .send(
            "GET",
            "/api/v1/mobile/auth/status/402918",
            &[],
            &Signing {
                unsigned: true,
                ..Signing::default()
            },
        )
        .await;
    assert_eq!(s, 401);

    // A signature vouching for another device than the token's: the two checks must agree.
    let other = Signing {
        device_id: Some("dev_someone_else".into()),
        ..Signing::default()
    };
    let (s, body) = signer
        .send("GET", "/api/v1/events?limit=1", &auth, &other)
        .await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(
        body["error"]["reason"], "signature.device_mismatch",
        "{body}"
    );

    // A replayed signature: the first use passes, the second is refused.
    let nonce = fresh_nonce();
    let once = Signing {
        nonce: Some(nonce.clone()),
        ..Signing::default()
    };
    let (s, _) = signer
        .send("GET", "/api/v1/events?limit=1", &auth, &once)
        .await;
    assert_eq!(s, 200);
    let (s, body) = signer
        .send("GET", "/api/v1/events?limit=1", &auth, &once)
        .await;
    // Refused, as a failure to ask again (workerd itself resends a GET whose connection was
    // reset): the phone retries and the Worker signs the retry afresh.
    assert_eq!(s, 503, "replay: {body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["error"]["reason"], "signature.replayed", "{body}");

    let reached: Vec<_> = stack.backend.requests();
    assert_eq!(
        reached.len(),
        1,
        "only the one genuine request reached ArgusAI"
    );
}
