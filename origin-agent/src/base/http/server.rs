//! One HTTP/1.1 accept loop for every listener: limits, upgrades, graceful shutdown. What the
//! connection speaks under HTTP is a [`Handshake`]: plain TCP ([`PlainTcp`]) for the loopback
//! listeners, TLS for the LAN listener ([`crate::listener::lan`]).
//!
//! Limits per connection: request head at most `max_header_bytes` (431); the first head within
//! `header_read_timeout_secs` of accept (a TLS handshake included), later ones within that of
//! their first byte; an idle keep-alive connection closed after `idle_timeout_secs` (see
//! [`crate::base::http::conn`]); at most `max_connections` at once per listener and, where the listener
//! sets one ([`PeerLimit`], the LAN listener), at most so many per peer IP address (further
//! connections are closed at once). Metrics: [`crate::base::metrics`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::base::config::Limits;
use crate::base::http::body::Body;
use crate::base::http::conn::{ConnActivity, TrackedIo};
use crate::base::metrics::METRICS;

/// How long in-flight requests get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Turns an accepted TCP connection into the byte stream HTTP is served over. It runs in the
/// connection's own task (holding its connection permit), bounded by the header read timeout,
/// so a slow handshake never stalls the accept loop.
pub trait Handshake: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Plain TCP: the connection as it is.
pub struct PlainTcp;

impl Handshake for PlainTcp {
    type Stream = TcpStream;
    async fn handshake(&self, tcp: TcpStream) -> io::Result<TcpStream> {
        Ok(tcp)
    }
}

/// Serves plain HTTP on `listener` until `shutdown` turns true, then drains.
pub async fn serve<F, Fut>(
    name: &'static str,
    listener: TcpListener,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(
        name,
        listener,
        Arc::new(PlainTcp),
        limits,
        None,
        shutdown,
        handler,
    )
    .await
}

/// At most `max` connections open at once from one peer IP address (IPv4-mapped IPv6 counts as
/// IPv4), so one host cannot take every slot of a listener shared with others.
#[derive(Debug, Clone, Copy)]
pub struct PeerLimit {
    pub max: usize,
}

/// The connections open per peer IP address, for a listener with a [`PeerLimit`].
#[derive(Debug, Default)]
struct PeerConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its peer; uncounted when dropped.
struct PeerSlot {
    peers: Arc<PeerConnections>,
    ip: IpAddr,
}

impl PeerConnections {
    /// A slot for a connection from `ip`, unless it already has `limit.max` open.
    fn take(self: &Arc<Self>, ip: IpAddr, limit: PeerLimit) -> Option<PeerSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit.max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `listener`, each connection first through `handshake` and at most `per_peer`
/// connections per peer address, until `shutdown` turns true, then drains.
pub async fn serve_with<H, F, Fut>(
    name: &'static str,
    listener: TcpListener,
    handshake: Arc<H>,
    limits: Limits,
    per_peer: Option<PeerLimit>,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    H: Handshake,
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let peers = Arc::new(PeerConnections::default());
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Header-read and idle timeouts are `conn::ConnActivity`'s (hyper's starts while idle).
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let header_read = Duration::from_secs(limits.header_read_timeout_secs);
    let idle = Duration::from_secs(limits.idle_timeout_secs);

    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The first head is due within the header timeout of now, the handshake included.
        let head_due = tokio::time::Instant::now() + header_read;
        let peer_slot = match per_peer {
            Some(limit) => match peers.take(peer.ip(), limit) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(listener = name, %peer, "per-peer connection limit reached; closing");
                    METRICS.connection_rejected(name);
                    drop(stream);
                    continue;
                }
            },
            None => None,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(listener = name, %peer, "connection limit reached; closing");
            METRICS.connection_rejected(name);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        limit_unsent_bytes(&stream);
        let handler = handler.clone();
        let activity = ConnActivity::new();
        let act = activity.clone();
        let send_queue = crate::base::http::send_queue::SendQueue::of(&stream);
        let service = service_fn(move |req: Request<Incoming>| {
            let handler = handler.clone();
            let in_flight = act.request_started();
            // Here, not in the future: hyper calls this before it reads on (detach_head).
            let (mut parts, body) = req.into_parts();
            crate::base::http::detach_head::detach(&mut parts);
            // Only a WebSocket upgrade can become a live preview, the queue's one reader; other
            // requests skip the extension map's allocation.
            let upgrade = parts.headers.get(hyper::header::UPGRADE);
            if argus_shared::headers::is_websocket_upgrade(upgrade.and_then(|v| v.to_str().ok())) {
                parts.extensions.insert(send_queue);
            }
            let req = Request::from_parts(parts, body);
            async move {
                let resp = handler(req, peer).await;
                Ok::<_, Infallible>(resp.map(|b| in_flight.attach(b)))
            }
        });
        let builder = builder.clone();
        let handshake = handshake.clone();
        let mut stop = shutdown.clone();
        let open = OpenConnection::new(name);
        tasks.spawn(async move {
            // Counted until the task ends, whichever way (a failed handshake returns early).
            let _open = open;
            let _peer_slot = peer_slot;
            let stream = tokio::select! {
                r = tokio::time::timeout_at(head_due, handshake.handshake(stream)) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(listener = name, %peer, error = %e, "handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(listener = name, %peer, "handshake timed out");
                        return;
                    }
                },
                _ = stop.changed() => return,
            };
            let conn = builder
                .serve_connection(
                    TokioIo::new(TrackedIo::new(stream, activity.clone())),
                    service,
                )
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let result = loop {
                let deadline = activity.deadline(header_read, idle);
                let timer = async {
                    match deadline {
                        Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = conn.as_mut() => break r,
                    _ = stop.changed() => {
                        // Finish the in-flight request, then close.
                        conn.as_mut().graceful_shutdown();
                        break conn.as_mut().await;
                    }
                    _ = activity.changed() => {}
                    _ = timer => {
                        if let Some((at, kind)) = activity.deadline(header_read, idle) {
                            if at <= std::time::Instant::now() {
                                tracing::debug!(listener = name, %peer, ?kind, "connection timed out");
                                METRICS.connection_timed_out(name, kind);
                                break Ok(());
                            }
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with error");
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = drain => tracing::info!(listener = name, "drained"),
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!(listener = name, "drain timed out"),
    }
}

/// One malloc arena for the whole process (glibc): with many connections served by a few
/// threads, per-thread arenas fragment and hold freed memory (docs/benchmarks.md, "Proxy" →
/// "Where the proxy's settings come from"), and glibc's per-thread caches keep small allocations
/// lock-free. Must run before other threads start. `MALLOC_ARENA_MAX` overrides.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// How often [`return_freed_memory`] gives freed memory back.
const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// glibc keeps what the process frees for its next allocations and returns to the system only
/// what sits at the very top of its heap, so without this the agent's RSS stays at its peak
/// after a burst (backend read buffers of 64 KiB each, request state of 1,000 connections).
/// Every [`TRIM_INTERVAL`], `malloc_trim(0)` hands back every whole free page; it holds the
/// allocator's lock only briefly (docs/benchmarks.md, "Proxy" → "Where the proxy's settings come
/// from").
pub async fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = std::time::Instant::now();
            // SAFETY: malloc_trim only releases memory glibc's allocator holds free.
            let returned = unsafe { libc::malloc_trim(0) } == 1;
            tracing::debug!(
                returned,
                elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "malloc_trim"
            );
        }
    }
}

/// `argus_relay_connections_active`: up while the value lives.
struct OpenConnection(&'static str);

impl OpenConnection {
    fn new(listener: &'static str) -> Self {
        METRICS.connection_opened(listener);
        OpenConnection(listener)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        METRICS.connection_closed(self.0);
    }
}

/// Raises the soft limit on open files to the hard limit: each proxied request holds a client and
/// a backend socket, and the usual soft limit (1024) is below twice `max_connections`.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
            return;
        }
        let before = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
            tracing::debug!(
                from = before,
                to = lim.rlim_cur,
                "raised the open-file limit"
            );
        }
    }
}

/// A socket takes more from a write only while less than this is waiting unsent in it.
pub const UNSENT_LOW_WATER: u32 = 16 * 1024;

/// Sets `TCP_NOTSENT_LOWAT` ([`UNSENT_LOW_WATER`]): a write completes when the link has taken
/// the bytes, not when a kernel buffer sized for the connection's best moment has. The adaptive
/// live preview times its writes to see how fast frames drain; bulk
/// transfers lose nothing (the kernel still keeps a window's worth in flight).
fn limit_unsent_bytes(stream: &tokio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let value = UNSENT_LOW_WATER as libc::c_int;
    // SAFETY: a valid socket fd and a c_int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_NOTSENT_LOWAT not set");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_at_most_its_share_of_connections() {
        let peers = Arc::new(PeerConnections::default());
        let limit = PeerLimit { max: 2 };
        let a: IpAddr = "192.168.1.20".parse().unwrap();
        let a_mapped: IpAddr = "::ffff:192.168.1.20".parse().unwrap();
        let b: IpAddr = "192.168.1.21".parse().unwrap();
        let first = peers.take(a, limit).unwrap();
        let _second = peers.take(a_mapped, limit).unwrap();
        assert!(
            peers.take(a, limit).is_none(),
            "the same host, IPv4-mapped or not"
        );
        let _other = peers.take(b, limit).expect("another host is not affected");
        drop(first);
        let _again = peers
            .take(a, limit)
            .expect("a closed connection frees its slot");
        assert!(peers.take(a, limit).is_none());
    }

    #[test]
    fn closed_peers_are_forgotten() {
        let peers = Arc::new(PeerConnections::default());
        let limit = PeerLimit { max: 4 };
        let slots: Vec<_> = (1..=50u8)
            .filter_map(|i| peers.take(IpAddr::from([10, 0, 0, i]), limit))
            .collect();
        assert_eq!(peers.open.lock().unwrap().len(), 50);
        drop(slots);
        assert!(peers.open.lock().unwrap().is_empty());
    }
}
