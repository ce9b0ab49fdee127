//! `GET /api/v1/events` made small for phones, on the tunnel and the LAN listeners.
//!
//! - The seed's `page`/`per_page` and `fields=` ([`argus_shared::event_list`]): translated to
//!   ArgusAI's `limit`/`offset` before forwarding, the answer projected and given `pagination`.
//!   Bad values: 400 with the reason. Without them the request is forwarded unchanged (the iOS
//!   app's own `limit`/`offset` call).
//! - Every `200` event list the agent reads gets a weak ETag of its JSON and a `304` for an
//!   `If-None-Match` that matches it (the backend is still asked: it has no validators of its
//!   own, so the saving is the bytes, not the query). It reads those it shapes, those for a client
//!   that takes gzip (the Worker always does) and those asked with `If-None-Match`; a plain call
//!   from a client that takes none of that is streamed like any other answer.
//! - gzip for a client that accepts it (the Worker does; so does the iOS app's URLSession on the
//!   LAN): ~10× fewer bytes on the tunnel, the home connection's upload. The Worker re-encodes for
//!   the phone (br where accepted).
//!
//! The backend's answer is read whole for this (at most [`MAX_LIST_BYTES`]; ArgusAI's largest
//! page, 500 events, is ~1.4 MB), so an event list is not streamed — the one route where that is
//! worth it.

use std::io::Write;

use argus_shared::event_list::{self, ListPlan};
use argus_shared::image::request::etag_matches;
use argus_shared::{encoding, path::CanonicalTarget};
use bytes::Bytes;
use flate2::write::GzEncoder;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, ETAG, VARY};
use hyper::{Method, Request, Response, StatusCode, Uri};

use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};

/// The one path this applies to (exactly: ArgusAI's `/api/v1/events/` is another route).
pub const PATH: &str = "/api/v1/events";

/// Largest backend answer read for shaping (ArgusAI's 500-event maximum is ~1.4 MB).
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;

/// gzip level for the tunnel hop: zlib's default (6). The Worker passes these bytes on to a
/// phone that takes gzip, so they are the phone's too; a 20-event page costs the agent well under
/// a millisecond at this level.
const GZIP_LEVEL: u32 = 6;

/// Whether a request is an event-list read this module handles.
pub fn applies(method: &Method, target: &CanonicalTarget) -> bool {
    *method == Method::GET && target.decoded_path == PATH
}

/// What to do before forwarding: `Ok(None)` when there is nothing for this module to do — no relay
/// parameter, no gzip accepted, no `If-None-Match` — and the request is forwarded and its answer
/// streamed as for any route (what a plain `limit`/`offset` call from a client that takes no gzip
/// gets: reading the list whole would only add latency). Else the plan (`None`: the query goes
/// unchanged), the request rewritten for the backend, and what the client can take back. Errors
/// are the client's (400).
pub fn prepare(
    req: Request<Body>,
    target: &CanonicalTarget,
) -> Result<Result<Prepared, Request<Body>>, AgentError> {
    let plan = event_list::plan(target.query.as_deref())
        .map_err(|e| AgentError::BadRequest(e.to_string()))?;
    let negotiated = Negotiated {
        gzip: encoding::accepts_gzip(
            req.headers()
                .get(ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        ),
        if_none_match: req
            .headers()
            .get(hyper::header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if plan.is_none() && !negotiated.gzip && negotiated.if_none_match.is_none() {
        return Ok(Err(req));
    }
    let (mut parts, body) = req.into_parts();
    // The agent reads the JSON: ask for it plain, and without conditionals (the backend has no
    // validators; the agent answers them).
    parts.headers.remove(ACCEPT_ENCODING);
    parts.headers.remove(hyper::header::IF_NONE_MATCH);
    parts.headers.remove(hyper::header::IF_MODIFIED_SINCE);
    if let Some(plan) = &plan {
        let pq = match &plan.backend_query {
            Some(q) => format!("{PATH}?{q}"),
            None => PATH.to_owned(),
        };
        parts.uri = pq
            .parse::<Uri>()
            .map_err(|_| AgentError::BadRequest("malformed query".into()))?;
    }
    Ok(Ok(Prepared {
        request: Request::from_parts(parts, body),
        plan,
        negotiated,
    }))
}

/// A request this module shapes the answer of.
pub struct Prepared {
    /// What to send the backend.
    pub request: Request<Body>,
    /// `None`: the backend's JSON is kept (only tagged and compressed).
    pub plan: Option<ListPlan>,
    pub negotiated: Negotiated,
}

/// What the client can take back.
pub struct Negotiated {
    gzip: bool,
    if_none_match: Option<String>,
}

/// The backend's answer made into the client's: shaped, validated, compressed. Anything but a
/// `200` JSON answer goes back as it came.
pub async fn finish(
    resp: Response<Body>,
    plan: Option<&ListPlan>,
    negotiated: &Negotiated,
) -> Result<Response<Body>, AgentError> {
    let is_json = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    if resp.status() != StatusCode::OK || !is_json || resp.headers().contains_key(CONTENT_ENCODING)
    {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match body::read_capped(body, MAX_LIST_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "event list not read whole");
            return Err(match e {
                body::ReadCappedError::TooLarge { cap } => {
                    AgentError::BackendAnswerTooLarge { max: cap }
                }
                // Cut mid-answer: as for any backend that goes away.
                body::ReadCappedError::Read(_) => AgentError::BackendUnreachable,
            });
        }
    };
    let json = match plan.map(|p| event_list::shape(&bytes, p)) {
        Some(Ok(shaped)) => Bytes::from(shaped),
        Some(Err(e)) => {
            // Not what ArgusAI documents: the client gets the backend's bytes, and is told.
            tracing::warn!(error = %e, "event list passed through unshaped");
            parts.headers.insert(
                "x-relay-event-list",
                HeaderValue::from_static("passthrough; reason=not_an_event_list"),
            );
            bytes
        }
        None => bytes,
    };
    let etag = etag_of(&json);
    parts.headers.insert(
        ETAG,
        HeaderValue::from_str(&etag).map_err(|_| AgentError::Internal)?,
    );
    append_vary(&mut parts.headers);
    if negotiated
        .if_none_match
        .as_deref()
        .is_some_and(|inm| etag_matches(inm, &etag))
    {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.remove(hyper::header::CONTENT_TYPE);
        return Ok(Response::from_parts(parts, body::empty()));
    }
    let out = if negotiated.gzip && json.len() as u64 >= encoding::MIN_COMPRESS_BYTES {
        parts
            .headers
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Bytes::from(gzip(&json).map_err(|_| AgentError::Internal)?)
    } else {
        json
    };
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    Ok(Response::from_parts(parts, body::full(out)))
}

/// Weak (`W/`): the same for the plain and the gzip bytes, which are the same JSON. XXH3-128:
/// every event list is tagged, so the hash is on the proxy's hot path (SHA-256 cost as much as
/// the rest of proxying a 64 KB page); a validator needs no cryptographic strength — a client only
/// ever compares it with what this URL answered before.
fn etag_of(json: &[u8]) -> String {
    format!("W/\"el1-{:032x}\"", xxhash_rust::xxh3::xxh3_128(json))
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 6),
        flate2::Compression::new(GZIP_LEVEL),
    );
    enc.write_all(data)?;
    enc.finish()
}

fn append_vary(h: &mut hyper::HeaderMap) {
    let has = h
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("accept-encoding"));
    if !has {
        h.append(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argus_shared::path::canonicalize;
    use http_body_util::BodyExt;
    use std::io::Read;

    fn list_json(n: usize) -> Vec<u8> {
        let events: Vec<_> = (0..n)
            .map(|i| {
                serde_json::json!({"id": format!("e{i}"), "timestamp": "2026-11-26T00:00:00Z",
                    "description": "A person walks up to the front door carrying a parcel.",
                    "processing_metadata": {"frames": [1, 2, 3], "provider": "openai"}})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"events": events, "total_count": 100,
            "has_more": true, "next_offset": n, "limit": n, "offset": 0}))
        .unwrap()
    }

    fn backend_answer(body: Vec<u8>) -> Response<Body> {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(body::full(body))
            .unwrap()
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> (Request<Body>, CanonicalTarget) {
        let mut b = Request::get(target);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        (
            b.body(body::empty()).unwrap(),
            canonicalize(target).unwrap(),
        )
    }

    /// `prepare` for a request this module must take on.
    fn shaped(target: &str, headers: &[(&str, &str)]) -> Prepared {
        let (req, target) = request(target, headers);
        assert!(applies(req.method(), &target));
        match prepare(req, &target) {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(_)) => panic!("{target:?} passed through untouched"),
            Err(e) => panic!("{target:?} refused: {e}"),
        }
    }

    async fn read(resp: Response<Body>) -> Vec<u8> {
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn the_seeds_paging_is_translated_and_the_answer_shaped_and_gzipped() {
        let Prepared {
            request: fwd,
            plan,
            negotiated: neg,
        } = shaped(
            "/api/v1/events?page=2&per_page=20&fields=timestamp,description&camera_id=c1",
            &[("accept-encoding", "gzip, br"), ("if-none-match", "\"x\"")],
        );
        assert_eq!(
            fwd.uri().to_string(),
            "/api/v1/events?camera_id=c1&limit=20&offset=20"
        );
        assert!(fwd.headers().get("accept-encoding").is_none());
        assert!(fwd.headers().get("if-none-match").is_none());
        let resp = finish(backend_answer(list_json(20)), plan.as_ref(), &neg)
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let gz = read(resp).await;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut json)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            v["events"][3],
            serde_json::json!({"id": "e3", "timestamp": "2026-11-26T00:00:00Z",
                "description": "A person walks up to the front door carrying a parcel."})
        );
        assert_eq!(v["pagination"]["page"], 2);
        assert_eq!(v["pagination"]["has_next"], true);
        assert_eq!(
            etag,
            etag_of(&json),
            "the ETag names the JSON, not the gzip bytes"
        );
    }

    #[tokio::test]
    async fn a_matching_if_none_match_gets_304_and_no_body() {
        let full = list_json(5);
        let etag = etag_of(&full);
        let Prepared {
            request: fwd,
            plan,
            negotiated: neg,
        } = shaped("/api/v1/events?limit=5", &[("if-none-match", &etag)]);
        assert_eq!(
            fwd.uri().to_string(),
            "/api/v1/events?limit=5",
            "the app's call unchanged"
        );
        assert!(plan.is_none());
        let resp = finish(backend_answer(full), None, &neg).await.unwrap();
        assert_eq!(resp.status(), 304);
        assert_eq!(resp.headers()["etag"], etag.as_str());
        assert!(read(resp).await.is_empty());
    }

    #[tokio::test]
    async fn without_gzip_the_json_is_plain_and_other_answers_pass_untouched() {
        // Nothing to do: the request goes on as it came, its answer streamed.
        let (req, target) = request("/api/v1/events?limit=5", &[("accept-encoding", "br")]);
        let Err(untouched) = prepare(req, &target).unwrap() else {
            panic!("not shaped");
        };
        assert_eq!(untouched.uri(), "/api/v1/events?limit=5");
        assert_eq!(untouched.headers()["accept-encoding"], "br");

        let Prepared {
            plan,
            negotiated: neg,
            ..
        } = shaped("/api/v1/events?fields=id,description", &[]);
        let full = list_json(30);
        let resp = finish(backend_answer(full.clone()), plan.as_ref(), &neg)
            .await
            .unwrap();
        assert!(resp.headers().get("content-encoding").is_none());
        let projected: serde_json::Value = serde_json::from_slice(&read(resp).await).unwrap();
        assert_eq!(projected["events"].as_array().map(Vec::len), Some(30));
        assert!(projected["events"][0].get("processing_metadata").is_none());

        let err = Response::builder()
            .status(422)
            .header("content-type", "application/json")
            .body(body::full(&b"{\"detail\":[]}"[..]))
            .unwrap();
        let resp = finish(err, plan.as_ref(), &neg).await.unwrap();
        assert_eq!(resp.status(), 422);
        assert!(resp.headers().get("etag").is_none());
        assert_eq!(read(resp).await, b"{\"detail\":[]}");
    }

    #[tokio::test]
    async fn a_list_larger_than_the_agent_reads_is_a_502_that_says_so() {
        let Prepared { negotiated, .. } = shaped("/api/v1/events?page=1", &[]);
        let huge = vec![b' '; MAX_LIST_BYTES + 1];
        let err = finish(backend_answer(huge), None, &negotiated)
            .await
            .expect_err("refused");
        assert!(matches!(err, AgentError::BackendAnswerTooLarge { max } if max == MAX_LIST_BYTES));
        assert_eq!(err.code().status(), 502);
    }

    #[test]
    fn bad_parameters_are_the_clients_error() {
        let (req, target) = request("/api/v1/events?per_page=1000", &[]);
        let err = prepare(req, &target).err().expect("refused");
        assert!(matches!(err, AgentError::BadRequest(ref m) if m.contains("per_page")));
        let (req, target) = request("/api/v1/events/", &[]);
        assert!(!applies(req.method(), &target));
    }
}
