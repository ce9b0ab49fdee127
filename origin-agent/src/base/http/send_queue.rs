//! How many bytes a connection's TCP socket still holds for its peer: sent but not yet
//! acknowledged, or not yet sent (Linux `SIOCOUTQ`). A write completing says only that the
//! kernel took the bytes; this says whether the link has delivered them. The adaptive live
//! preview (`domain::proxy::live_stream`) waits on it so that a frame is not written while the
//! previous one is still queued on the link — small frames fit in what TCP keeps in flight, so
//! their writes complete at once however slow the link is.

use std::os::fd::RawFd;

/// The accepted socket of one connection, for asking its send queue. Put in the extensions of
/// each WebSocket upgrade request by the accept loop (`base::http::server`).
///
/// Holds the raw descriptor, not the socket: it is valid while the connection is, which is as
/// long as anything serving a request of that connection (or its upgraded stream) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendQueue {
    fd: RawFd,
}

impl SendQueue {
    pub(crate) fn of(stream: &tokio::net::TcpStream) -> SendQueue {
        use std::os::fd::AsRawFd;
        SendQueue {
            fd: stream.as_raw_fd(),
        }
    }

    /// Bytes the socket holds for the peer (unsent plus unacknowledged); `None` if the kernel
    /// does not say.
    pub fn bytes(&self) -> Option<u64> {
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is the connection's socket, open while the connection is (see the type's
        // documentation); TIOCOUTQ (SIOCOUTQ for sockets) writes one c_int.
        let r = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &mut queued) };
        if r != 0 {
            return None;
        }
        u64::try_from(queued).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn counts_what_the_peer_has_not_acknowledged() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        let queue = SendQueue::of(&accepted);
        assert_eq!(queue.bytes(), Some(0), "nothing written yet");
        // The peer does not read: what does not fit its receive buffer stays queued here.
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0usize;
        while let Ok(Ok(n)) = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            accepted.write(&chunk),
        )
        .await
        {
            written += n;
        }
        let queued = queue.bytes().unwrap();
        assert!(
            queued > 0 && queued <= written as u64,
            "{queued} of {written}"
        );
        drop(peer);
    }
}
