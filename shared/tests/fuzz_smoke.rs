//! The fuzz targets' properties (see `src/fuzzing.rs`) on stable, over seeds and a few thousand
//! deterministic mutations of them: a quick guard in `cargo test`; `make fuzz` runs libFuzzer.

use argus_shared::fuzzing;
use argus_shared::fuzzing::XorShift as Rng;
use argus_shared::token::{sign_access_token, AccessClaims, Scope, TokenSigningKey};

const INTERESTING: &[&[u8]] = &[
    b".", b"..", b"/", b"%", b"%2e", b"%2f", b"%00", b"%c0%ae", b"=", b"\"", b"[", b"]", b"{",
    b"}", b"eyJ", b"\\", b";", b"?", b"#", b"\xff", b"\0", b"\n",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next_u64() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, piece.iter().copied());
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let j = i + rng.below(v.len() - i + 1);
                let chunk: Vec<u8> = v[i..j].to_vec();
                v.splice(j..j, chunk);
            }
        }
    }
    v
}

fn run(seeds: &[Vec<u8>], target: fn(&[u8]), rounds: usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for s in seeds {
        target(s);
    }
    for _ in 0..rounds {
        let s = &seeds[rng.below(seeds.len())];
        target(&mutate(&mut rng, s));
    }
}

#[test]
fn token_parser_survives_mutations() {
    let key = TokenSigningKey::from_seed("fuzz-key", [42; 32]);
    let claims = AccessClaims {
        iss: "https://relay.example".into(),
        aud: "argus-relay".into(),
        sub: "dev_1".into(),
        iat: 1_800_000_000,
        nbf: 1_800_000_000,
        exp: 1_800_000_600,
        jti: "j".into(),
        scope: Scope::Viewer,
        name: "n".into(),
        platform: "ios".into(),
        app_version: None,
        os_version: None,
    };
    let good = sign_access_token(&key, &claims).into_bytes();
    run(
        &[good, b"a.b.c".to_vec(), b"".to_vec()],
        fuzzing::token_parser,
        4000,
    );
}

#[test]
fn policy_parser_survives_mutations() {
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/example-policy.toml"
    ))
    .expect("example policy");
    run(
        &[example, b"version = 1\n".to_vec()],
        fuzzing::policy_parser,
        3000,
    );
}

#[test]
fn path_canonicalize_survives_mutations() {
    let seeds: Vec<Vec<u8>> = [
        "/api/v1/events?limit=20&offset=0",
        "/api/v1/thumbnails/2025-11-20/event_1.jpg",
        "/api/v1/thumbnails/%2e%2e/app.db",
        "/ws/stream/cam-1",
        "/api/v1/events/%E2%80%A4",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    run(&seeds, fuzzing::path_canonicalize, 20000);
}
