//! Bodies in transit through the proxy, streamed frame by frame (backpressure is the caller's
//! polling), with the limits a reverse proxy needs: a size cap, a stall timer (no frame for a
//! while), a deadline for the whole body, and a signal when a request body has been sent.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::base::config::Limits;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body, BoxError};
use crate::base::http::drain::DrainUnreadBody;
use crate::base::metrics::{UpstreamError, METRICS};

/// A streamed request body as the listeners take it: a declared `Content-Length` over
/// `limits.max_body_bytes` is refused at once (413, the backend never contacted);
/// otherwise the body is cut where it passes the cap (answered 413 by the proxy) or when no data
/// arrives for `limits.idle_timeout_secs`. Whatever is left unread when the agent answers is
/// drained in the background ([`DrainUnreadBody`]), so the client reads the answer instead of a
/// connection reset.
pub fn request_body(
    incoming: hyper::body::Incoming,
    headers: &hyper::HeaderMap,
    limits: &Limits,
) -> Result<Body, AgentError> {
    let incoming = DrainUnreadBody::new(incoming);
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(AgentError::PayloadTooLarge);
    }
    Ok(body::boxed(
        Watched::new(incoming)
            .limit(limits.max_body_bytes)
            .stall_after(Duration::from_secs(limits.idle_timeout_secs)),
    ))
}

/// Why a body in transit was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no data for {secs} s")]
    Stalled { secs: u64 },
    #[error("body not finished within {secs} s")]
    DeadlineExceeded { secs: u64 },
}

impl BodyError {
    /// The first [`BodyError`] in an error's source chain (e.g. inside a hyper client error).
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(b) = err.downcast_ref::<BodyError>() {
                return Some(*b);
            }
            cur = err.source();
        }
        None
    }
}

/// A body with optional limits; see the module docs.
pub struct Watched<B> {
    inner: B,
    limit: Option<u64>,
    seen: u64,
    stall: Option<(Duration, Pin<Box<Sleep>>)>,
    deadline: Option<(Duration, Pin<Box<Sleep>>)>,
    on_end: Option<oneshot::Sender<()>>,
    /// Log and count a cut (any error) under this request id.
    report_cut: Option<String>,
    /// Released when the body ends (a backend slot).
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<B> Watched<B> {
    pub fn new(inner: B) -> Self {
        Watched {
            inner,
            limit: None,
            seen: 0,
            stall: None,
            deadline: None,
            on_end: None,
            report_cut: None,
            held: None,
        }
    }

    /// Keeps `permit` until the body ends (or is dropped).
    pub fn hold(mut self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        self.held = permit;
        self
    }

    /// Logs and counts (`upstream_errors_total{kind="cut"}`) the body ending in an error.
    pub fn report_cut(mut self, request_id: String) -> Self {
        self.report_cut = Some(request_id);
        self
    }

    /// At most `limit` bytes of data.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Fails when no frame arrives for `after`.
    pub fn stall_after(mut self, after: Duration) -> Self {
        self.stall = Some((after, Box::pin(tokio::time::sleep(after))));
        self
    }

    /// Fails when the body is not finished within `within` from now.
    pub fn deadline(mut self, within: Duration) -> Self {
        self.deadline = Some((within, Box::pin(tokio::time::sleep(within))));
        self
    }

    /// Resolves the returned receiver when the body ends (or is dropped).
    pub fn signal_end(mut self) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        self.on_end = Some(tx);
        (self, rx)
    }
}

impl<B> HttpBody for Watched<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let r = self.as_mut().poll_inner(cx);
        if let (Poll::Ready(Some(Err(e))), Some(request_id)) = (&r, &self.report_cut) {
            tracing::warn!(request_id = %request_id, error = %e, "response body cut");
            METRICS.upstream_error(UpstreamError::Cut);
        }
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.held = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Watched<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_inner(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some((within, timer)) = &this.deadline {
            // Also when the inner body never waits.
            if timer.is_elapsed() {
                let secs = within.as_secs();
                return Poll::Ready(Some(Err(Box::new(BodyError::DeadlineExceeded { secs }))));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if let Some(limit) = this.limit.filter(|l| this.seen > *l) {
                        this.on_end = None;
                        return Poll::Ready(Some(Err(Box::new(BodyError::TooLarge { limit }))));
                    }
                }
                if let Some((after, timer)) = &mut this.stall {
                    timer.as_mut().reset(Instant::now() + *after);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.on_end = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                if let Some(tx) = this.on_end.take() {
                    let _ = tx.send(());
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some((within, timer)) = &mut this.deadline {
                    if timer.as_mut().poll(cx).is_ready() {
                        let secs = within.as_secs();
                        return Poll::Ready(Some(Err(Box::new(BodyError::DeadlineExceeded {
                            secs,
                        }))));
                    }
                }
                if let Some((after, timer)) = &mut this.stall {
                    if timer.as_mut().poll(cx).is_ready() {
                        let secs = after.as_secs();
                        return Poll::Ready(Some(Err(Box::new(BodyError::Stalled { secs }))));
                    }
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// `n` chunks of `size` bytes, each after `gap`.
    struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunks(n: usize, size: usize, gap: Duration) -> Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..n {
                tokio::time::sleep(gap).await;
                if tx.send(Bytes::from(vec![7u8; size])).await.is_err() {
                    return;
                }
            }
        });
        Chunks(rx)
    }

    #[tokio::test]
    async fn passes_data_and_signals_the_end() {
        let (body, done) = Watched::new(chunks(3, 10, Duration::ZERO))
            .limit(30)
            .stall_after(Duration::from_secs(5))
            .signal_end();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 30);
        done.await.unwrap();
    }

    #[tokio::test]
    async fn cuts_past_the_limit() {
        let body = Watched::new(chunks(4, 10, Duration::ZERO)).limit(30);
        let err = body.collect().await.unwrap_err();
        assert_eq!(
            BodyError::find(err.as_ref()),
            Some(BodyError::TooLarge { limit: 30 })
        );
    }

    #[tokio::test]
    async fn cuts_a_stalled_body_and_a_late_one() {
        let body = Watched::new(chunks(3, 1, Duration::from_millis(400)))
            .stall_after(Duration::from_millis(100));
        let err = body.collect().await.unwrap_err();
        assert!(matches!(
            BodyError::find(err.as_ref()),
            Some(BodyError::Stalled { .. })
        ));

        let body = Watched::new(chunks(20, 1, Duration::from_millis(50)))
            .stall_after(Duration::from_secs(5))
            .deadline(Duration::from_millis(300));
        let err = body.collect().await.unwrap_err();
        assert!(matches!(
            BodyError::find(err.as_ref()),
            Some(BodyError::DeadlineExceeded { .. })
        ));
    }
}
