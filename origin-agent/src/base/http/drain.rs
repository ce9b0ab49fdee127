//! Reads and discards the rest of a request body the agent answered without reading ("lingering
//! close", as nginx does).
//!
//! When the agent refuses a request early — a declared `Content-Length` over the cap, a body cut
//! where it passes the cap, a token refused before an upload was read — the client is usually
//! still sending. Closing the socket with unread bytes in the kernel's receive buffer makes the
//! kernel send a TCP reset, and a client that is still writing (cloudflared, the Worker's fetch,
//! a phone) then sees "connection reset" instead of the 413 or 401 the agent wrote. So a request
//! body dropped before its end is handed to a task that keeps reading it, within bounds, and the
//! connection closes cleanly once the client is done.
//!
//! Bounds: at most [`MAX_DRAIN_BYTES`], [`MAX_DRAIN_TIME`] in all and [`MAX_DRAIN_IDLE`] between
//! frames; past any of them the body is dropped and hyper closes the connection as before.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

/// At most this many more bytes are read and discarded.
pub const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;
/// Draining stops after this long in all.
pub const MAX_DRAIN_TIME: Duration = Duration::from_secs(30);
/// Draining stops when no frame arrives for this long.
pub const MAX_DRAIN_IDLE: Duration = Duration::from_secs(5);

/// A request body that, dropped before its end, is drained in the background (see the module
/// docs). Reading it is reading the inner body.
pub struct DrainUnreadBody {
    inner: Option<Incoming>,
}

impl DrainUnreadBody {
    pub fn new(inner: Incoming) -> Self {
        DrainUnreadBody { inner: Some(inner) }
    }
}

impl HttpBody for DrainUnreadBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let r = Pin::new(inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            // Ended (or broken): nothing left to drain.
            self.inner = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for DrainUnreadBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        // Outside a runtime (process exit) there is nobody to answer anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(body));
        }
    }
}

/// Reads `body` to its end or to the first bound, discarding the data. Returns the bytes read.
pub async fn drain(mut body: Incoming) -> u64 {
    let mut read = 0u64;
    let deadline = tokio::time::Instant::now() + MAX_DRAIN_TIME;
    loop {
        let idle = tokio::time::Instant::now() + MAX_DRAIN_IDLE;
        let next = tokio::time::timeout_at(idle.min(deadline), body.frame()).await;
        match next {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len() as u64);
                    if read > MAX_DRAIN_BYTES {
                        break;
                    }
                }
            }
            // Ended, broken, or past a time bound.
            Ok(None) | Ok(Some(Err(_))) | Err(_) => break,
        }
    }
    tracing::debug!(bytes = read, "drained an unread request body");
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers 413 at once, without reading the upload, then drops the body.
    async fn refusing_server() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = service_fn(|req: hyper::Request<Incoming>| async move {
                drop(DrainUnreadBody::new(req.into_body()));
                Ok::<_, std::convert::Infallible>(
                    hyper::Response::builder()
                        .status(413)
                        .body(http_body_util::Full::new(Bytes::from_static(b"too large")))
                        .unwrap(),
                )
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
        addr
    }

    #[tokio::test]
    async fn a_client_still_sending_reads_the_early_answer_instead_of_a_reset() {
        let addr = refusing_server().await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        const LEN: usize = 8 * 1024 * 1024;
        tcp.write_all(
            format!(
                "POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
                 content-length: {LEN}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        // Far more than the socket buffers hold: without draining, the server's close with
        // unread data resets the connection and this write fails.
        let chunk = vec![0u8; 64 * 1024];
        for _ in 0..LEN / chunk.len() {
            tcp.write_all(&chunk)
                .await
                .expect("the upload is read to its end");
        }
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.ends_with("too large"), "{answer}");
    }

    #[tokio::test]
    async fn draining_stops_at_the_byte_bound() {
        let addr = refusing_server().await;
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let len = MAX_DRAIN_BYTES * 4;
        tcp.write_all(
            format!("POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let chunk = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        let mut refused = false;
        while sent < len {
            if tcp.write_all(&chunk).await.is_err() {
                refused = true;
                break;
            }
            sent += chunk.len() as u64;
        }
        assert!(refused, "the server read all {len} bytes");
        assert!(sent >= MAX_DRAIN_BYTES, "cut after {sent} bytes");
    }
}
