//! An upgraded (WebSocket) connection between a phone and ArgusAI, bounded by the device token it
//! was opened with: it lives only while the device is active and the token unexpired.
//!
//! The token is checked once, at the upgrade; afterwards the agent copies bytes both ways. So
//! that a stolen phone does not keep its live camera view after the owner revokes it, every
//! bridge races the copy against its [`SocketLifetime`]:
//!
//! - **revocation**: the store wakes every bridge after any device revocation commits
//!   ([`Store::watch_revocations`]: the CLI and admin API, the Mobile Access page, a phone
//!   signing itself out, `revoke_all`, refresh-token reuse); each asks whether *its* device is
//!   still active (one indexed read). The socket is closed at once: well within 1 s.
//! - **expiry**: at the token's `exp` (the agent's clock, to the millisecond).
//!
//! Closing: nothing more goes from the phone to ArgusAI, and no new backend frame starts towards
//! the phone. The phone then gets a close frame ([`RelayClose`]: 4401 "token expired:
//! reconnect", 4403 "device revoked") — written only at a frame boundary, since the copy is raw
//! bytes and a close frame inside a frame would be read as payload. The backend→phone direction
//! follows frame heads ([`FrameBoundaries`]); if the cut falls inside a frame, the rest of that
//! one frame (already under way when the device was revoked) is passed on first, if it is at
//! most [`FINISH_FRAME_MAX`] bytes and arrives within [`CLOSE_WITHIN`]; otherwise the connection
//! is closed without a close frame (the app sees an abnormal closure, then its next request or
//! upgrade gets the 401). Then the phone's connection is shut down (TLS `close_notify`, FIN) and
//! the backend's is dropped (ArgusAI sees the client disconnect and stops its stream).

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::domain::proxy::ws_frames::{FrameBoundaries, RelayClose};
use crate::domain::store::Store;

/// From the moment a socket's lifetime ends to its connections being closed, at most.
pub const CLOSE_WITHIN: Duration = Duration::from_millis(800);
/// The most of a frame already under way that is passed on so the close frame can follow it
/// (a live-view JPEG is tens to hundreds of KB).
pub const FINISH_FRAME_MAX: u64 = 1024 * 1024;
/// The backend→phone copy buffer: 8 KiB, what `tokio::io::copy` uses the other way, so an
/// open socket holds 16 KiB of buffers in all.
const COPY_BUF: usize = 8 * 1024;

/// How long an upgraded connection may live: while `device_id` is active, until `expires_at`
/// (Unix seconds, the token's `exp`).
pub struct SocketLifetime {
    store: Arc<Store>,
    device_id: String,
    expires_at: u64,
    revocations: watch::Receiver<u64>,
}

impl SocketLifetime {
    /// Subscribes to revocations now, so one that commits between the token check and the
    /// bridge starting is not missed (the bridge also looks once when it starts).
    pub fn new(store: Arc<Store>, device_id: &str, expires_at: u64) -> SocketLifetime {
        SocketLifetime {
            revocations: store.watch_revocations(),
            store,
            device_id: device_id.to_owned(),
            expires_at,
        }
    }

    /// Resolves when the socket must close, with the reason the phone is given.
    pub async fn ended(&mut self) -> RelayClose {
        let until_exp = (UNIX_EPOCH + Duration::from_secs(self.expires_at))
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let expiry = tokio::time::sleep(until_exp);
        tokio::pin!(expiry);
        let mut watching = true;
        loop {
            match self.store.is_device_active(&self.device_id) {
                Ok(true) => {}
                Ok(false) => return RelayClose::DeviceRevoked,
                Err(e) => {
                    tracing::error!(error = %e, "device lookup failed; closing its WebSocket");
                    return RelayClose::DeviceUnverifiable;
                }
            }
            tokio::select! {
                () = &mut expiry => return RelayClose::TokenExpired,
                changed = self.revocations.changed(), if watching => {
                    // The store is gone only when the agent stops; expiry still bounds the socket.
                    watching = changed.is_ok();
                }
            }
        }
    }
}

/// How a bridge ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BridgeEnd {
    /// One side closed (or failed) and the other followed: the normal end.
    Closed,
    /// The relay closed it; `close_frame_sent` tells whether the phone got the close frame.
    Cut {
        why: RelayClose,
        close_frame_sent: bool,
    },
}

/// Copies between the phone (`client`) and ArgusAI (`backend`) until either closes or `lifetime`
/// ends; see the module documentation.
pub async fn run<C, B>(client: C, backend: B, mut lifetime: SocketLifetime) -> BridgeEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut backend_rx, mut backend_tx) = tokio::io::split(backend);
    let mut down = Downstream::default();
    let why = {
        let up = async {
            tokio::io::copy(&mut client_rx, &mut backend_tx).await?;
            backend_tx.shutdown().await
        };
        let down = down.pump(&mut backend_rx, &mut client_tx);
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "websocket bridge ended");
                }
                return BridgeEnd::Closed;
            }
            why = lifetime.ended() => why,
        }
    };
    // Nothing is read from the phone any more; the backend's connection goes when this returns.
    let close_frame_sent = tokio::time::timeout(CLOSE_WITHIN, async {
        let sent = match down.finish_frame(&mut backend_rx, &mut client_tx).await {
            Ok(()) => client_tx.write_all(&why.frame()).await.is_ok(),
            Err(e) => {
                tracing::debug!(error = %e, "websocket cut inside a frame: no close frame");
                false
            }
        };
        let _ = client_tx.shutdown().await;
        sent
    })
    .await
    .unwrap_or(false);
    BridgeEnd::Cut {
        why,
        close_frame_sent,
    }
}

/// The backend→phone direction: bytes read from ArgusAI and not yet written to the phone
/// (`buf[start..end]`), and the frame boundaries of what the phone was sent.
struct Downstream {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    sent: FrameBoundaries,
}

impl Default for Downstream {
    fn default() -> Self {
        Downstream {
            buf: vec![0; COPY_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            sent: FrameBoundaries::default(),
        }
    }
}

impl Downstream {
    /// Copies until ArgusAI closes. May be dropped at any await: each one (`read`, `write`,
    /// `flush`) is cancel-safe, and only bytes the phone's stream took are counted as sent.
    async fn pump<R, W>(&mut self, from: &mut R, to: &mut W) -> io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.start == self.end {
                // Flush before waiting (TLS buffers records until then).
                to.flush().await?;
                let n = from.read(&mut self.buf).await?;
                if n == 0 {
                    return to.shutdown().await;
                }
                self.start = 0;
                self.end = n;
            }
            self.write_some(to, self.end).await?;
        }
    }

    /// Writes some of `buf[start..until]` to the phone and records it as sent.
    async fn write_some<W: AsyncWrite + Unpin>(
        &mut self,
        to: &mut W,
        until: usize,
    ) -> io::Result<()> {
        let n = to.write(&self.buf[self.start..until]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.sent.advance(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(())
    }

    /// Passes on the rest of the frame the phone is in the middle of, and not a byte more, so a
    /// close frame can follow. Fails if the frame has more than [`FINISH_FRAME_MAX`] bytes to go,
    /// the framing is lost, or ArgusAI closes first.
    async fn finish_frame<R, W>(&mut self, from: &mut R, to: &mut W) -> io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let cut_off = |what: &str| io::Error::other(what.to_owned());
        let mut budget = FINISH_FRAME_MAX;
        loop {
            let left = self
                .sent
                .until_boundary()
                .ok_or_else(|| cut_off("the backend's framing is not understood"))?;
            if left == 0 {
                return to.flush().await;
            }
            if left > budget {
                return Err(cut_off("the frame under way is too long to finish"));
            }
            if self.start == self.end {
                to.flush().await?;
                let want = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                let n = from.read(&mut self.buf[..want]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.start = 0;
                self.end = n;
            }
            let before = self.start;
            let until = self
                .end
                .min(self.start + usize::try_from(left).unwrap_or(usize::MAX));
            self.write_some(to, until).await?;
            budget -= (self.start - before) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::proxy::ws_frames::close_frame;
    use crate::domain::store::{DeviceInfo, Scope};
    use tokio::io::DuplexStream;
    use tokio::time::Instant;

    fn unix_now() -> u64 {
        crate::base::clock::unix_now()
    }

    /// A store with two paired devices, "phone" and "other".
    fn store() -> Arc<Store> {
        let store = Store::open_in_memory().expect("store");
        for (n, id) in [(1u8, "phone"), (2, "other")] {
            let code = format!("12345{n}");
            let info = DeviceInfo {
                name: id.into(),
                ..DeviceInfo::default()
            };
            store
                .create_pairing_code(&code, Scope::Viewer, 600, 1)
                .expect("code");
            store
                .redeem_owner_code(&code, &info, id, &[n; 32], &format!("fam-{id}"), 1)
                .expect("paired");
        }
        Arc::new(store)
    }

    /// A server (unmasked) binary frame.
    fn binary(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x82];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// The bridge between a phone and a backend, each an in-memory pipe; returns the phone's and
    /// the backend's far ends and the running bridge.
    fn bridge(
        lifetime: SocketLifetime,
    ) -> (
        DuplexStream,
        DuplexStream,
        tokio::task::JoinHandle<BridgeEnd>,
    ) {
        let (phone, client) = tokio::io::duplex(64 * 1024);
        let (backend, backend_far) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(run(client, backend, lifetime));
        (phone, backend_far, task)
    }

    async fn read_exactly(phone: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        tokio::time::timeout(Duration::from_secs(5), phone.read_exact(&mut got))
            .await
            .expect("in time")
            .expect("read");
        got
    }

    async fn read_to_end(phone: &mut DuplexStream) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), phone.read_to_end(&mut rest))
            .await
            .expect("the phone's connection is closed")
            .expect("read");
        rest
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_until_one_side_closes() {
        let store = store();
        let lifetime = SocketLifetime::new(store, "phone", unix_now() + 600);
        let (mut phone, mut backend, task) = bridge(lifetime);
        phone.write_all(b"masked frame bytes").await.unwrap();
        let mut got = [0; 18];
        backend.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"masked frame bytes");
        let frame = binary(b"jpeg");
        backend.write_all(&frame).await.unwrap();
        assert_eq!(read_exactly(&mut phone, frame.len()).await, frame);
        drop(backend);
        assert_eq!(read_to_end(&mut phone).await, b"");
        drop(phone);
        assert_eq!(task.await.unwrap(), BridgeEnd::Closed);
    }

    #[tokio::test]
    async fn revoking_the_device_closes_its_socket_with_4403_at_once() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        let (mut phone, mut backend, task) = bridge(lifetime);
        let frame = binary(&[9; 300]);
        backend.write_all(&frame).await.unwrap();
        assert_eq!(read_exactly(&mut phone, frame.len()).await, frame);

        let revoked = Instant::now();
        assert!(store.revoke_device("phone", 2).unwrap());
        assert_eq!(
            read_to_end(&mut phone).await,
            close_frame(4403, "device revoked")
        );
        assert!(revoked.elapsed() < Duration::from_secs(1));
        assert_eq!(
            task.await.unwrap(),
            BridgeEnd::Cut {
                why: RelayClose::DeviceRevoked,
                close_frame_sent: true
            }
        );
        // The backend's connection is closed too, and nothing the backend sends now arrives.
        let mut rest = Vec::new();
        assert_eq!(backend.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn another_devices_revocation_leaves_the_socket_open() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        let (mut phone, mut backend, task) = bridge(lifetime);
        assert!(store.revoke_device("other", 2).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let frame = binary(b"still streaming");
        backend.write_all(&frame).await.unwrap();
        assert_eq!(read_exactly(&mut phone, frame.len()).await, frame);
        assert!(!task.is_finished());
        task.abort();
    }

    #[tokio::test]
    async fn a_revocation_before_the_bridge_starts_is_not_missed() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        assert!(store.revoke_device("phone", 2).unwrap());
        let (mut phone, _backend, task) = bridge(lifetime);
        assert_eq!(
            read_to_end(&mut phone).await,
            close_frame(4403, "device revoked")
        );
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_socket_closes_with_4401_when_its_token_expires() {
        let store = store();
        // `exp` is whole seconds: the next second boundary but one, so at least 1 s from now.
        let exp = unix_now() + 2;
        let lifetime = SocketLifetime::new(store, "phone", exp);
        let (mut phone, _backend, task) = bridge(lifetime);
        assert_eq!(
            read_to_end(&mut phone).await,
            close_frame(4401, "token expired: reconnect")
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(now >= Duration::from_secs(exp), "not before exp");
        assert!(now < Duration::from_secs(exp) + Duration::from_secs(1));
        assert!(matches!(
            task.await.unwrap(),
            BridgeEnd::Cut {
                why: RelayClose::TokenExpired,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_frame_under_way_is_finished_then_the_close_frame_follows() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        let (mut phone, mut backend, task) = bridge(lifetime);
        let frame = binary(&[7; 1000]);
        let next = binary(b"a frame begun after the revocation");
        backend.write_all(&frame[..400]).await.unwrap();
        assert_eq!(read_exactly(&mut phone, 400).await, frame[..400]);

        assert!(store.revoke_device("phone", 2).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        backend.write_all(&frame[400..]).await.unwrap();
        backend.write_all(&next).await.unwrap();
        let rest = read_to_end(&mut phone).await;
        let mut expected = frame[400..].to_vec();
        expected.extend(close_frame(4403, "device revoked"));
        assert_eq!(
            rest, expected,
            "the frame's rest, the close frame, and nothing of the next"
        );
        assert_eq!(
            task.await.unwrap(),
            BridgeEnd::Cut {
                why: RelayClose::DeviceRevoked,
                close_frame_sent: true
            }
        );
    }

    #[tokio::test]
    async fn a_frame_that_never_finishes_is_cut_without_a_close_frame_within_the_bound() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        let (mut phone, mut backend, task) = bridge(lifetime);
        let frame = binary(&[7; 1000]);
        backend.write_all(&frame[..10]).await.unwrap();
        assert_eq!(read_exactly(&mut phone, 10).await, frame[..10]);
        let revoked = Instant::now();
        assert!(store.revoke_device("phone", 2).unwrap());
        assert_eq!(
            read_to_end(&mut phone).await,
            b"",
            "no close frame inside a frame"
        );
        assert!(revoked.elapsed() < Duration::from_secs(1));
        assert_eq!(
            task.await.unwrap(),
            BridgeEnd::Cut {
                why: RelayClose::DeviceRevoked,
                close_frame_sent: false
            }
        );
    }

    #[tokio::test]
    async fn a_phone_that_stops_reading_is_still_cut_within_the_bound() {
        let store = store();
        let lifetime = SocketLifetime::new(store.clone(), "phone", unix_now() + 600);
        let (phone, mut backend, task) = bridge(lifetime);
        // More than the pipe to the phone (64 KiB) and the bridge's buffer hold: the bridge ends
        // up stuck writing, inside a frame.
        let big = binary(&[1; 60_000]);
        let writer = tokio::spawn(async move {
            for _ in 0..3 {
                if backend.write_all(&big).await.is_err() {
                    break;
                }
            }
            backend
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let revoked = Instant::now();
        assert!(store.revoke_device("phone", 2).unwrap());
        let end = tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the bridge ends within 1 s")
            .unwrap();
        assert!(revoked.elapsed() < Duration::from_secs(1));
        assert!(matches!(
            end,
            BridgeEnd::Cut {
                why: RelayClose::DeviceRevoked,
                close_frame_sent: false
            }
        ));
        drop(phone);
        writer.abort();
    }
}
