//! Dropping a connection unanswered, as a reset: the fault
//! `close_before_response` ends its connection with a TCP RST every time,
//! whatever the client has sent and the server has read.
//!
//! A plain close sends a FIN, or a RST when the kernel still holds unread
//! bytes of the request: the client would see "closed without TLS
//! close_notify" one run and "connection reset" the next. The fault's
//! effect, and the fault matrix that records it, must not depend on that.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// The handle a fault uses to drop the connection its request came on
/// (one per connection, carried in each request's extensions).
#[derive(Clone, Default)]
pub(crate) struct ConnectionKill(Arc<Kill>);

#[derive(Default)]
struct Kill {
    fired: AtomicBool,
    notify: Notify,
}

impl ConnectionKill {
    /// Asks for the connection to be reset: the task serving it stops
    /// (see [`ConnectionKill::killed`]) and its socket closes with a RST.
    pub(crate) fn kill(&self) {
        self.0.fired.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }

    /// Completes once [`ConnectionKill::kill`] has been called.
    pub(crate) async fn killed(&self) {
        self.0.notify.notified().await;
    }

    /// `stream`, to be reset when it is dropped after a kill.
    pub(crate) fn guard(&self, stream: TcpStream) -> ResettingStream {
        ResettingStream {
            tcp: stream,
            kill: self.clone(),
        }
    }
}

/// A TCP stream that closes with a RST (`SO_LINGER` 0) when dropped after
/// its connection was killed, and closes normally otherwise.
pub(crate) struct ResettingStream {
    tcp: TcpStream,
    kill: ConnectionKill,
}

impl Drop for ResettingStream {
    fn drop(&mut self) {
        if self.kill.0.fired.load(Ordering::Acquire) {
            // A zero linger never blocks: the close sends the RST at once.
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    /// The client's read after the server drops its end, with `kill` called
    /// first or not.
    async fn client_read_after_drop(kill_first: bool) -> io::Result<usize> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let kill = ConnectionKill::default();
        let mut server = kill.guard(server);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut head = [0u8; 18];
        server.read_exact(&mut head).await.unwrap();
        if kill_first {
            kill.kill();
        }
        drop(server);
        let mut buf = [0u8; 8];
        client.read(&mut buf).await
    }

    #[tokio::test]
    async fn a_killed_connection_is_reset_even_with_nothing_left_unread() {
        let error = client_read_after_drop(true).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    }

    #[tokio::test]
    async fn a_connection_not_killed_closes_normally() {
        assert_eq!(client_read_after_drop(false).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn killed_completes_after_kill() {
        let kill = ConnectionKill::default();
        let waiting = kill.clone();
        let waiter = tokio::spawn(async move { waiting.killed().await });
        kill.kill();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
