//! `make bench` (scripts/bench-sealed.sh): what sealed mode (RFC 9458 Oblivious HTTP) costs per
//! request, natively, for a 20-event page and a ~16 KB thumbnail, beside the plain path in the
//! same run: the phone's seal and open (`argus_client::sealed`) and the agent's open and seal
//! (`origin_agent::sealed_keys`, `origin_agent::encode_sealed_answer`: the gateway's own code),
//! and the bytes each way. Target (issue 16): ≤ 0.1 ms and ≤ 100 bytes added per request.
//!
//! The yardstick, timed in the same run: one X25519 Diffie-Hellman (`x25519-dalek`, the
//! implementation the `hpke` crate uses). Every sealed request costs the agent one and the phone
//! one plus a key generation (RFC 9180's DHKEM), so "agent = 1.1 DH" says how close the code is
//! to what the protocol itself asks, on any machine.

use std::io::Cursor;
use std::time::{Instant, SystemTime};

use argus_client::sealed::{open, seal, KeyConfig};
use e2e::backend::{BackendConfig, StandInBackend, DEFAULT_API_KEY};
use origin_agent::body;
use origin_agent::sealed_keys::{self, SealedKeys};
use origin_agent::store::Store;
use reqwest::Method;

const ROUNDS: u32 = 400;

struct Figures {
    plain_request: usize,
    sealed_request: usize,
    plain_answer: usize,
    sealed_answer: usize,
    client_seal_us: f64,
    agent_open_us: f64,
    agent_seal_us: f64,
    client_open_us: f64,
    /// The plain path's own per-request work on the same answer, for scale: copying the body
    /// into an HTTP/1.1 response head + body buffer.
    plain_us: f64,
}

async fn measure(
    keys: &SealedKeys,
    config: &KeyConfig,
    path: &str,
    answer: &[u8],
    ct: &str,
) -> Figures {
    let headers = [("accept", "application/json, image/*")];
    let plain_head = format!(
        "GET {path} HTTP/1.1\r\nhost: relay.example\r\naccept: application/json, image/*\r\ndate: {}\r\n\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    );
    let (mut client_seal, mut agent_open, mut agent_seal, mut client_open, mut plain) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sealed_request, mut sealed_answer) = (0, 0);
    let plain_answer_head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
        answer.len()
    );
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut out = Vec::with_capacity(plain_answer_head.len() + answer.len());
        out.extend_from_slice(plain_answer_head.as_bytes());
        out.extend_from_slice(answer);
        std::hint::black_box(&out);
        plain += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let request = seal(
            config,
            &Method::GET,
            path,
            &headers,
            None,
            SystemTime::now(),
        )
        .expect("seal");
        client_seal += t.elapsed().as_secs_f64();
        sealed_request = request.bytes.len();

        let t = Instant::now();
        let (inner, sealer) = keys.open(&request.bytes, now()).expect("opens");
        let message = bhttp::Message::read_bhttp(&mut Cursor::new(&inner[..])).expect("bhttp");
        std::hint::black_box(message.control().path());
        agent_open += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let resp = hyper::Response::builder()
            .status(200)
            .header("content-type", ct)
            .body(body::full(answer.to_vec()))
            .expect("response");
        let encoded = origin_agent::encode_sealed_answer(resp, &keys.pin())
            .await
            .expect("encoded");
        let sealed = sealer.encapsulate(&encoded).expect("sealed");
        agent_seal += t.elapsed().as_secs_f64();
        sealed_answer = sealed.len();

        let t = Instant::now();
        let opened = open(request.opener, &sealed).expect("opens");
        client_open += t.elapsed().as_secs_f64();
        assert_eq!(&opened.body[..], answer);
    }
    let us = |s: f64| s * 1e6 / f64::from(ROUNDS);
    Figures {
        plain_request: plain_head.len(),
        sealed_request,
        plain_answer: plain_answer_head.len() + answer.len(),
        sealed_answer,
        client_seal_us: us(client_seal),
        agent_open_us: us(agent_open),
        agent_seal_us: us(agent_seal),
        client_open_us: us(client_open),
        plain_us: us(plain),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One X25519 Diffie-Hellman, in µs (averaged over `ROUNDS`).
fn x25519_dh_us() -> f64 {
    let secret = x25519_dalek::StaticSecret::from([0x5a; 32]);
    let peer = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([0xa5; 32]));
    let t = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(secret.diffie_hellman(std::hint::black_box(&peer)));
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS)
}

fn print(what: &str, f: &Figures, dh_us: f64) {
    let total = f.client_seal_us + f.agent_open_us + f.agent_seal_us + f.client_open_us;
    println!("sealed mode, {what}:");
    println!(
        "  request bytes: plain {} (HTTP/1.1 head), sealed {} ({:+})",
        f.plain_request,
        f.sealed_request,
        f.sealed_request as i64 - f.plain_request as i64
    );
    println!(
        "  answer bytes:  plain {} (HTTP/1.1 head + body), sealed {} ({:+})",
        f.plain_answer,
        f.sealed_answer,
        f.sealed_answer as i64 - f.plain_answer as i64
    );
    println!(
        "  CPU per request: phone seal {:.1} µs + agent open {:.1} µs + agent seal {:.1} µs + phone open {:.1} µs = {:.1} µs \
         (agent {:.1} µs; plain path's copy of the same answer {:.1} µs, {:.0}x)",
        f.client_seal_us,
        f.agent_open_us,
        f.agent_seal_us,
        f.client_open_us,
        total,
        f.agent_open_us + f.agent_seal_us,
        f.plain_us,
        total / f.plain_us.max(1e-3)
    );
    println!(
        "  in X25519 operations ({dh_us:.1} µs each in this run): phone {:.2}, agent {:.2} \
         (the protocol's own floor: phone 2 (key generation + DH), agent 1)",
        (f.client_seal_us + f.client_open_us) / dh_us,
        (f.agent_open_us + f.agent_seal_us) / dh_us,
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let backend = StandInBackend::start(BackendConfig::default())
        .await
        .expect("stand-in backend");
    let page = reqwest::Client::new()
        .get(format!("{}/api/v1/events?limit=20", backend.url()))
        .header("x-api-key", DEFAULT_API_KEY)
        .send()
        .await
        .expect("events")
        .bytes()
        .await
        .expect("body");
    let thumbnail = ["water-320x180.jpg", "cups-320x180.jpg", "leaf-320x180.jpg"]
        .iter()
        .find_map(|n| backend.photo_bytes(n))
        .expect("a 320x180 test photo");

    let store = Store::open_in_memory().expect("store");
    sealed_keys::rotate(&store, now()).expect("key");
    let keys = SealedKeys::load(&store, now()).expect("keys");
    let config = KeyConfig {
        encoded: keys.served().to_vec(),
        pin: keys.pin().to_string(),
    };
    let dh_us = x25519_dh_us();
    let list = measure(
        &keys,
        &config,
        "/api/v1/events?limit=20",
        &page,
        "application/json",
    )
    .await;
    print(
        &format!("20-event page ({} bytes)", page.len()),
        &list,
        dh_us,
    );
    let thumb = measure(
        &keys,
        &config,
        "/api/v1/thumbnails/2026-01-01/event_1.jpg",
        &thumbnail,
        "image/jpeg",
    )
    .await;
    print(
        &format!("thumbnail ({} bytes)", thumbnail.len()),
        &thumb,
        dh_us,
    );
}
