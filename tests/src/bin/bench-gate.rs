//! `make bench` (gate): the latency the edge gate adds — token verification, policy, request
//! signing, edge-state cache — measured against a pass-through Worker in the same workerd, both in
//! front of the same instant origin, in one run. Prints p50/p99 and the ratios.
//!
//! `BENCH_REQUESTS` (default 2000) sequential keep-alive requests per Worker after 200 warm-up
//! requests; the two Workers are measured in alternating blocks so machine noise hits both.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use argus_shared::edge_state::{self, EdgeState, EDGE_STATE_PATH};
use argus_shared::headers;
use argus_shared::token::{sign_access_token, AccessClaims, Jwks, Scope, TokenSigningKey};
use e2e::phone::cf_blob;
use e2e::worker::{EdgeWorker, WorkerSettings};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const SECRET: [u8; 32] = [0x5a; 32];
const ISSUER: &str = "https://relay.bench";
const AUDIENCE: &str = "argus-relay";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An origin that answers at once: the edge state for the real Worker, a small JSON otherwise.
async fn start_origin(jwks: Jwks) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let jwks = jwks.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let jwks = jwks.clone();
                    async move {
                        if req.uri().path() == EDGE_STATE_PATH {
                            let nonce = req
                                .headers()
                                .get(headers::RELAY_NONCE)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = serde_json::to_vec(&EdgeState {
                                generated_at: now(),
                                jwks,
                                revoked: vec![],
                                max_token_lifetime_secs: 960,
                            })
                            .unwrap_or_default();
                            let mac = edge_state::response_mac(&SECRET, &nonce, &body)
                                .unwrap_or_default();
                            return Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .header(edge_state::MAC_HEADER, mac)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap_or_default(),
                            );
                        }
                        Ok(Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(
                                br#"{"events":[],"total_count":0}"#,
                            )))
                            .unwrap_or_default())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn run_block(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
    out: &mut Vec<Duration>,
) {
    let cf = cf_blob("US", 64496, "TLSv1.3").to_string();
    for _ in 0..n {
        let t = Instant::now();
        let resp = client
            .get(url)
            .bearer_auth(token)
            .header("mf-cf-blob", &cf)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let _ = resp.bytes().await;
        assert!(status.is_success(), "{url}: {status}");
        out.push(t.elapsed());
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let key = TokenSigningKey::from_seed_with_thumbprint_kid([7; 32]);
    let origin = start_origin(Jwks {
        keys: vec![key.jwk()],
    })
    .await;
    let origin_url = format!("http://{origin}");
    let dir = tempfile::tempdir().expect("tempdir");

    let gate = EdgeWorker::start(
        &dir.path().join("gate"),
        &WorkerSettings {
            vars: vec![
                ("ORIGIN_URL".into(), origin_url.clone()),
                ("TOKEN_ISSUER".into(), ISSUER.into()),
                ("TOKEN_AUDIENCE".into(), AUDIENCE.into()),
            ],
            secrets: vec![("RELAY_SIGNING_SECRET".into(), hex::encode(SECRET))],
            rate_limits: vec![("DEVICE_LIMITER".into(), 10_000_000)],
            ..WorkerSettings::default()
        },
    )
    .expect("the real Worker starts");
    let passthrough = EdgeWorker::start(
        &dir.path().join("passthrough"),
        &WorkerSettings {
            vars: vec![("ORIGIN_URL".into(), origin_url)],
            main: Some(e2e::workspace_root().join("tests/bench/passthrough.mjs")),
            ..WorkerSettings::default()
        },
    )
    .expect("the pass-through Worker starts");

    let t = now();
    let token = sign_access_token(
        &key,
        &AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "dev_bench".into(),
            iat: t,
            nbf: t,
            exp: t + 3600,
            jti: "bench".into(),
            scope: Scope::Viewer,
            name: "bench".into(),
            platform: "ios".into(),
            app_version: Some("1.4.0".into()),
            os_version: Some("18.1".into()),
        },
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let gate_url = format!("{}/api/v1/events?limit=1", gate.url());
    let pass_url = format!("{}/api/v1/events?limit=1", passthrough.url());
    let mut sink = Vec::new();
    run_block(&client, &gate_url, &token, 200, &mut sink).await;
    run_block(&client, &pass_url, &token, 200, &mut sink).await;

    let (mut g, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let block = 100;
    for _ in 0..n.div_ceil(block) {
        run_block(&client, &gate_url, &token, block, &mut g).await;
        run_block(&client, &pass_url, &token, block, &mut p).await;
    }
    g.sort();
    p.sort();
    let (g50, g99, p50, p99) = (
        percentile(&g, 0.5),
        percentile(&g, 0.99),
        percentile(&p, 0.5),
        percentile(&p, 0.99),
    );
    println!(
        "gate latency, {} requests each, wrangler dev (workerd) on loopback",
        g.len()
    );
    println!("  pass-through Worker  p50 {p50:.3} ms  p99 {p99:.3} ms");
    println!("  argus-relay gate     p50 {g50:.3} ms  p99 {g99:.3} ms");
    println!(
        "  added by the gate    p50 {:+.3} ms  p99 {:+.3} ms   (ratio p50 {:.2}x, p99 {:.2}x)",
        g50 - p50,
        g99 - p99,
        g50 / p50,
        g99 / p99
    );
}
