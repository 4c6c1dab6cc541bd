//! A TLS connection from either engine, as one stream type: what a service reads and writes
//! after a handshake, whichever engine served it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `R` is the rustls stream, `L` the legacy engine's. See [`crate::ServerStream`] and
/// [`crate::ClientStream`].
#[derive(Debug)]
pub enum EngineStream<R, L> {
    Rustls(Box<R>),
    Legacy(Box<L>),
}

impl<R, L> AsyncRead for EngineStream<R, L>
where
    R: AsyncRead + Unpin,
    L: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Rustls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Legacy(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<R, L> AsyncWrite for EngineStream<R, L>
where
    R: AsyncWrite + Unpin,
    L: AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Rustls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Legacy(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Rustls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Legacy(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Rustls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::Legacy(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
