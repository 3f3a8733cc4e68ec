//! Bytes as they cross a VU's sockets, under any TLS: heads, bodies as
//! framed, TLS records and handshakes. That is what k6 counts as
//! `data_received` and `data_sent`, so a test reads the same in both.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The running counts of one VU's connections. A VU sends one request at
/// a time on them, so what accrued since the last [`Wire::take`] is the
/// request's (a handshake's bytes go to the request that opened it).
#[derive(Clone, Default)]
pub(super) struct Wire(Arc<Counts>);

#[derive(Default)]
struct Counts {
    read: AtomicU64,
    written: AtomicU64,
}

impl Wire {
    /// Bytes read and written since the last take.
    pub(super) fn take(&self) -> (u64, u64) {
        (
            self.0.read.swap(0, Ordering::Relaxed),
            self.0.written.swap(0, Ordering::Relaxed),
        )
    }
}

/// A socket whose traffic adds to a [`Wire`].
pub(super) struct Counted<S> {
    inner: S,
    wire: Wire,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S, wire: Wire) -> Self {
        Counted { inner, wire }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let n = (buf.filled().len() - before) as u64;
        self.wire.0.read.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        self.wire.0.written.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        self.wire.0.written.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_add_up_until_taken() {
        let (a, mut b) = tokio::io::duplex(64);
        let wire = Wire::default();
        let mut a = Counted::new(a, wire.clone());
        a.write_all(b"hello").await.unwrap();
        b.write_all(b"hi there").await.unwrap();
        let mut got = [0u8; 8];
        a.read_exact(&mut got).await.unwrap();
        assert_eq!(wire.take(), (8, 5));
        assert_eq!(wire.take(), (0, 0));
    }
}
