//! The one body type every handler and the proxy return, and small response builders.

use argus_shared::api::{ErrorBody, ErrorCode};
use argus_shared::headers;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::{Response, StatusCode};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Boxes any body whose error converts into [`BoxError`] (e.g. `hyper::body::Incoming`).
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(|e| -> BoxError { e.into() }).boxed()
}

/// A request body as the router takes it.
pub fn incoming(body: hyper::body::Incoming) -> Body {
    body.map_err(|e| -> BoxError { Box::new(e) }).boxed()
}

/// Why [`read_capped`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadCappedError {
    #[error("the body is larger than {cap} bytes")]
    TooLarge { cap: usize },
    #[error("the body could not be read: {0}")]
    Read(BoxError),
}

/// The whole of `body`, at most `cap` bytes.
///
/// A plain frame loop rather than `Limited<Body>`: `Limited`'s `Into<BoxError>` bound on an
/// already boxed error trips rustc's higher-ranked `Send` inference in spawned tasks.
pub async fn read_capped(mut body: Body, cap: usize) -> Result<Bytes, ReadCappedError> {
    let mut bytes = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ReadCappedError::Read)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > cap {
                return Err(ReadCappedError::TooLarge { cap });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes.freeze())
}

/// A JSON response with `Cache-Control: no-store` (everything the agent itself says is per-user).
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .body(full(bytes))
            .unwrap_or_else(|_| fallback_500()),
        Err(_) => fallback_500(),
    }
}

/// `{"error":{...}}` with the status of `code`, plus the request id header.
pub fn error(
    code: ErrorCode,
    message: &str,
    request_id: &str,
    reason: Option<&str>,
) -> Response<Body> {
    let mut body = ErrorBody::new(code, message, request_id);
    if let Some(reason) = reason {
        body = body.with_reason(reason);
    }
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json(status, &body);
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(headers::REQUEST_ID, v);
    }
    resp
}

fn fallback_500() -> Response<Body> {
    let mut resp = Response::new(full(
        r#"{"error":{"code":"internal","message":"internal error","request_id":""}}"#,
    ));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}
