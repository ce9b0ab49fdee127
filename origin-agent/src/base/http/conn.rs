//! Per-connection timeouts that hyper's HTTP/1 server does not separate: the *header-read* timeout
//! (slowloris) and the *keep-alive idle* timeout.
//!
//! hyper starts its `header_read_timeout` as soon as it waits for the next request, so idle
//! keep-alive connections would be closed after the header timeout (10 s) — shorter than
//! cloudflared's own idle timeout for origin connections (90 s), which races: cloudflared reuses
//! a connection just as the agent closes it, and the phone gets a 502. So hyper's timer is off and
//! [`ConnActivity`] keeps the state instead:
//!
//! | state | deadline |
//! |---|---|
//! | new (accepted, no request head complete yet; TLS handshake included) | accept + `header_read_timeout` |
//! | idle (no request in flight, no byte of the next one) | last response end + `idle_timeout` |
//! | reading a head (a byte arrived while idle) | that byte + `header_read_timeout` |
//! | request in flight (handler running or response body streaming) | none (body timeouts apply) |
//!
//! The keep-alive idle timeout is for connections that have been served: a client that connects
//! (and completes a TLS handshake) but never sends a request holds its slot for the header
//! timeout only.
//!
//! [`TrackedIo`] notices the first byte of a request; [`InFlight`] (held by the response body)
//! marks the end of one. The connection task waits on [`ConnActivity::changed`] and the deadline.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::base::http::body::{Body, BoxError};
use crate::base::metrics::ConnTimeout;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the process epoch, plus one (0 means "not set").
fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

fn at(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms.saturating_sub(1))
}

pub struct ConnActivity {
    in_flight: AtomicU32,
    /// When the connection last became idle (opened, or a response ended).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived (0: none yet).
    head_since: AtomicU64,
    changed: Notify,
}

impl ConnActivity {
    /// A connection accepted now: its first request head is due within the header timeout.
    pub fn new() -> Arc<ConnActivity> {
        let now = now_ms();
        Arc::new(ConnActivity {
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(now),
            head_since: AtomicU64::new(now),
            changed: Notify::new(),
        })
    }

    /// A request head was parsed: the handler runs from now until its response body is done.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since.store(0, Relaxed);
        InFlight(self.clone())
    }

    fn bytes_read(&self) {
        if self.in_flight.load(Relaxed) == 0 && self.head_since.load(Relaxed) == 0 {
            self.head_since.store(now_ms(), Relaxed);
            self.changed.notify_one();
        }
    }

    /// Resolves when the state may have changed (a head started, a request ended).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// When the connection must be closed if nothing changes, and why; `None` while a request is
    /// in flight.
    pub fn deadline(
        &self,
        header_read: Duration,
        idle: Duration,
    ) -> Option<(Instant, ConnTimeout)> {
        if self.in_flight.load(Relaxed) > 0 {
            return None;
        }
        match self.head_since.load(Relaxed) {
            0 => Some((at(self.idle_since.load(Relaxed)) + idle, ConnTimeout::Idle)),
            t => Some((at(t) + header_read, ConnTimeout::HeaderRead)),
        }
    }
}

/// Held from a request's head until its response body is done (or dropped).
pub struct InFlight(Arc<ConnActivity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(now_ms(), Relaxed);
        self.0.in_flight.fetch_sub(1, Relaxed);
        self.0.changed.notify_one();
    }
}

impl InFlight {
    /// Ties this guard to `body`: the request counts as in flight until the body ends.
    pub fn attach(self, body: Body) -> Body {
        http_body_util::BodyExt::boxed(GuardedBody {
            inner: body,
            guard: Some(self),
        })
    }
}

struct GuardedBody {
    inner: Body,
    guard: Option<InFlight>,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard = None;
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

/// The client socket, noticing the first byte of each request head.
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<ConnActivity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<ConnActivity>) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(120);

    #[test]
    fn a_new_connection_gets_the_header_timeout_from_accept() {
        let a = ConnActivity::new();
        let (d, kind) = a.deadline(HEAD, IDLE).unwrap();
        assert_eq!(kind, ConnTimeout::HeaderRead);
        assert!(d <= Instant::now() + HEAD);
        // Bytes (a TLS handshake, part of a head) do not move the deadline.
        std::thread::sleep(Duration::from_millis(5));
        a.bytes_read();
        assert_eq!(a.deadline(HEAD, IDLE).unwrap().0, d);
    }

    #[test]
    fn served_then_idle_then_head_then_in_flight() {
        let a = ConnActivity::new();
        drop(a.request_started());
        let (d, kind) = a.deadline(HEAD, IDLE).unwrap();
        assert_eq!(kind, ConnTimeout::Idle);
        assert!(d > Instant::now() + Duration::from_secs(100));

        a.bytes_read();
        let (d, kind) = a.deadline(HEAD, IDLE).unwrap();
        assert_eq!(kind, ConnTimeout::HeaderRead);
        assert!(d <= Instant::now() + HEAD);

        let guard = a.request_started();
        assert!(a.deadline(HEAD, IDLE).is_none());
        // Bytes read while a request is in flight (its body) do not start a head.
        a.bytes_read();
        assert!(a.deadline(HEAD, IDLE).is_none());
        drop(guard);
        assert_eq!(a.deadline(HEAD, IDLE).unwrap().1, ConnTimeout::Idle);
    }
}
