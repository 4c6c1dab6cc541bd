//! The stream under the engines on the server side: it gives back the bytes already read from
//! it (the ClientHello we looked at is replayed to the engine that serves the connection), and
//! reads ahead in large chunks.
//!
//! Reading ahead matters for speed: rustls asks its transport for 4 KiB at a time, so a 16 KiB
//! record would cost four `recv` calls. With the read-ahead, one `recv` fills up to
//! [`READ_AHEAD`] and rustls's small reads are served from memory. The buffer is given back
//! whenever the connection has nothing more to read, so an idle connection holds none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much one read from the transport may fetch: four full TLS records.
pub const READ_AHEAD: usize = 64 * 1024;

/// `inner`, with `buffered[at..filled]` read first.
#[derive(Debug)]
pub struct Rewind<S> {
    buffered: Vec<u8>,
    at: usize,
    filled: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            filled: prefix.len(),
            buffered: prefix,
            at: 0,
            inner,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.filled {
            let n = buf.remaining().min(this.filled - this.at);
            buf.put_slice(&this.buffered[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= READ_AHEAD {
            // A caller with room for more than the read-ahead gains nothing from a copy.
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.buffered.len() < READ_AHEAD {
            this.buffered = vec![0; READ_AHEAD];
        }
        let mut ahead = ReadBuf::new(&mut this.buffered);
        match Pin::new(&mut this.inner).poll_read(cx, &mut ahead) {
            Poll::Pending => {
                // Nothing to read now: an idle connection keeps no buffer.
                this.buffered = Vec::new();
                (this.at, this.filled) = (0, 0);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let n = ahead.filled().len().min(buf.remaining());
                this.filled = ahead.filled().len();
                buf.put_slice(&this.buffered[..n]);
                this.at = n;
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_prefix_comes_first() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b" world")
            .await
            .unwrap();
        drop(a);
        let mut s = Rewind::new(b"hello".to_vec(), b);
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_and_idle_holds_no_buffer() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut a, b) = tokio::io::duplex(10_000);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in sent.chunks(7_000) {
                tokio::io::AsyncWriteExt::write_all(&mut a, chunk)
                    .await
                    .unwrap();
            }
            a
        });
        let mut s = Rewind::new(b"hello".to_vec(), b);
        let mut got = Vec::new();
        let mut small = [0u8; 4096];
        loop {
            let n = s.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
            if got.len() == 5 + data.len() {
                break;
            }
        }
        let _open = writer.await.unwrap();
        assert_eq!(&got[..5], b"hello");
        assert!(got[5..] == data[..], "bytes lost or reordered");
        // Nothing more to read: the next read waits, and the buffer is given back meanwhile.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), s.read(&mut small));
        assert!(waiting.await.is_err());
        assert_eq!(s.buffered.capacity(), 0);
    }
}
