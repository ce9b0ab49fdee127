//! `make bench` (scripts/bench-event-lists.sh): the bytes of one 20-event page, as ArgusAI sends
//! it and as the relay sends it on — projected (`fields=`), compressed (gzip on the tunnel hop,
//! what the agent answers the Worker), both — through the agent's own code
//! (`origin_agent::event_list`) against the stand-in backend's events (~3 KB each, shaped
//! like ArgusAI's). Also the agent's CPU time to shape, tag and compress one page.

use std::time::Instant;

use argus_shared::path::canonicalize;
use e2e::backend::{BackendConfig, StandInBackend, DEFAULT_API_KEY};
use origin_agent::body::{self, Body};
use origin_agent::event_list::{finish, prepare, Prepared};

const FIELDS: &str = "id,timestamp,thumbnail_url,description";

/// What the agent answers for `target` (client headers `headers`), fetching from `backend`; with
/// `repeat`, the mean time of that many `finish` calls (shape + ETag + gzip) on the same answer.
async fn through_agent(
    backend: &str,
    target: &str,
    headers: &[(&str, &str)],
    repeat: u32,
) -> (Vec<u8>, String, f64) {
    let canonical = canonicalize(target).expect("canonical");
    let mut b = hyper::Request::get(target);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req: hyper::Request<Body> = b.body(body::empty()).expect("request");
    let (forwarded, plan, negotiated) = match prepare(req, &canonical).expect("valid") {
        Ok(Prepared {
            request,
            plan,
            negotiated,
        }) => (request, plan, Some(negotiated)),
        // Nothing for the agent to do: it streams the backend's answer as it is.
        Err(untouched) => (untouched, None, None),
    };
    let resp = reqwest::Client::new()
        .get(format!("{backend}{}", forwarded.uri()))
        .header("x-api-key", DEFAULT_API_KEY)
        .send()
        .await
        .expect("backend answers");
    let mut out = hyper::Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        out = out.header(k.as_str(), v.as_bytes());
    }
    let bytes = resp.bytes().await.expect("body");
    let head = out.body(()).expect("response").into_parts().0;
    let Some(negotiated) = negotiated else {
        // Streamed as the backend sent it: no work for this module.
        return (bytes.to_vec(), "identity".to_owned(), 0.0);
    };
    let started = Instant::now();
    for _ in 0..repeat {
        let resp = hyper::Response::from_parts(head.clone(), body::full(bytes.clone()));
        finish(resp, plan.as_ref(), &negotiated)
            .await
            .expect("shaped");
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(repeat.max(1));
    let resp = hyper::Response::from_parts(head, body::full(bytes));
    let answer = finish(resp, plan.as_ref(), &negotiated)
        .await
        .expect("shaped");
    let coding = answer
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_owned();
    let body = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (body, coding, ms)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let backend = StandInBackend::start(BackendConfig {
        record_requests: false,
        ..BackendConfig::default()
    })
    .await
    .expect("stand-in backend starts");
    let url = backend.url();
    let plain_target = "/api/v1/events?limit=20&offset=0";
    let compact_target = format!("/api/v1/events?page=1&per_page=20&fields={FIELDS}");
    let gzip = [("accept-encoding", "gzip")];

    let runs = 200;
    let (plain, _, _) = through_agent(&url, plain_target, &[], runs).await;
    // A client that revalidates but takes no gzip: the list is read whole for its ETag only.
    let revalidating = [("if-none-match", "W/\"el1-not-this-one\"")];
    let (tagged, _, tagged_ms) = through_agent(&url, plain_target, &revalidating, runs).await;
    assert_eq!(tagged, plain, "an ETag changes no byte");
    let (plain_gz, c1, plain_gz_ms) = through_agent(&url, plain_target, &gzip, runs).await;
    let (projected, _, projected_ms) = through_agent(&url, &compact_target, &[], runs).await;
    let (projected_gz, c2, projected_gz_ms) =
        through_agent(&url, &compact_target, &gzip, runs).await;
    assert_eq!((c1.as_str(), c2.as_str()), ("gzip", "gzip"));

    println!("### Event list: one 20-event page (stand-in backend, ArgusAI-shaped events)\n");
    println!("| what | bytes | per event | vs as ArgusAI sends it | agent CPU per page |");
    println!("|---|---:|---:|---:|---:|");
    let row = |what: &str, n: usize, ms: Option<f64>| {
        println!(
            "| {what} | {n} | {:.0} | {:.1}× smaller | {} |",
            n as f64 / 20.0,
            plain.len() as f64 / n as f64,
            ms.map_or("— (streamed untouched)".to_owned(), |ms| format!(
                "{ms:.3} ms"
            ))
        )
    };
    row("as ArgusAI sends it (`limit=20`)", plain.len(), None);
    row(
        "the same, tagged (`If-None-Match` sent, no gzip)",
        tagged.len(),
        Some(tagged_ms),
    );
    row(
        "gzip (the agent, on the tunnel)",
        plain_gz.len(),
        Some(plain_gz_ms),
    );
    row(
        &format!("projected (`fields={FIELDS}`)"),
        projected.len(),
        Some(projected_ms),
    );
    row(
        "projected + gzip",
        projected_gz.len(),
        Some(projected_gz_ms),
    );
    println!(
        "\n(agent CPU: mean of {runs} `finish` calls on the same backend answer, release build)"
    );
}
