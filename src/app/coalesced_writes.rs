//! Accepted connections that send what HTTP/2 writes between two flushes in
//! one system call.
//!
//! h2 sends a DATA frame of 256 bytes or more by reference on a connection
//! that can write vectored, and must flush it before it can queue anything
//! behind it: a unary answer of a few hundred bytes (a role) then goes out
//! as headers and data in one `writev` and its trailers in a second, and the
//! caller reads twice. On a connection that does not write vectored h2
//! copies DATA frames under 1 KiB into its own buffer, trailers included,
//! and writes each chunk it holds with a plain `write`. This connection says
//! it does not write vectored, holds what h2 writes until h2 flushes, and
//! then sends it in one call; a chunk that would not fit the holding buffer
//! goes out at once, together with what is held, in one `writev`.
//!
//! Only plaintext connections are wrapped: under TLS rustls frames records
//! of its own.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The most a connection holds before it writes: a flush's frames (headers,
/// a DATA frame's head, a small payload, trailers) fit many times over, and
/// a thousand idle connections hold at most a few MiB.
const HOLD_LIMIT: usize = 8 * 1024;

pub struct CoalescedWrites<T> {
    inner: T,
    held: Vec<u8>,
}

impl<T> CoalescedWrites<T> {
    pub fn new(inner: T) -> Self {
        CoalescedWrites {
            inner,
            held: Vec::new(),
        }
    }
}

impl<T: AsyncWrite + Unpin> CoalescedWrites<T> {
    /// Writes everything held; Ready(Ok) once nothing is.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() + buf.len() <= HOLD_LIMIT {
            this.held.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        loop {
            if this.held.is_empty() {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
            let held = this.held.len();
            let slices = [IoSlice::new(&this.held), IoSlice::new(buf)];
            let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if written > held {
                this.held.clear();
                return Poll::Ready(Ok(written - held));
            }
            this.held.drain(..written);
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    /// False, so that h2 copies small DATA frames and queues their trailers
    /// behind them (see the module's documentation).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Connected> Connected for CoalescedWrites<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Records each write it is given, and accepts at most `accept` bytes
    /// per write.
    struct Recorder {
        writes: Vec<Vec<u8>>,
        accept: usize,
        flushes: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.accept);
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let n = all.len().min(self.accept);
            self.writes.push(all[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn recorder(accept: usize) -> CoalescedWrites<Recorder> {
        CoalescedWrites::new(Recorder {
            writes: Vec::new(),
            accept,
            flushes: 0,
        })
    }

    #[tokio::test]
    async fn small_writes_go_out_together_at_the_flush() {
        let mut conn = recorder(usize::MAX);
        conn.write_all(b"headers").await.unwrap();
        conn.write_all(b"data").await.unwrap();
        conn.write_all(b"trailers").await.unwrap();
        assert!(conn.inner.writes.is_empty());
        conn.flush().await.unwrap();
        assert_eq!(conn.inner.writes, vec![b"headersdatatrailers".to_vec()]);
        assert_eq!(conn.inner.flushes, 1);
    }

    #[tokio::test]
    async fn a_large_write_takes_what_is_held_with_it() {
        let mut conn = recorder(usize::MAX);
        let large = vec![7u8; HOLD_LIMIT];
        conn.write_all(b"head").await.unwrap();
        conn.write_all(&large).await.unwrap();
        assert_eq!(conn.inner.writes.len(), 1);
        assert_eq!(conn.inner.writes[0][..4], *b"head");
        assert_eq!(conn.inner.writes[0][4..], large[..]);
        conn.flush().await.unwrap();
        assert_eq!(conn.inner.writes.len(), 1);
    }

    #[tokio::test]
    async fn partial_writes_lose_and_repeat_nothing() {
        let large: Vec<u8> = (0..HOLD_LIMIT + 10).map(|i| i as u8).collect();
        // Writes of 2 to 5 bytes end inside what is held, exactly at its
        // end, and beyond it.
        for accept in 2..=5 {
            for head in [b"head".as_slice(), b"header", b"headers"] {
                let mut conn = recorder(accept);
                conn.write_all(head).await.unwrap();
                conn.write_all(&large).await.unwrap();
                conn.write_all(b"trailers").await.unwrap();
                conn.shutdown().await.unwrap();
                let sent: Vec<u8> = conn.inner.writes.concat();
                let expected = [head, &large, b"trailers"].concat();
                assert_eq!(sent, expected, "{accept} bytes per write after {head:?}");
            }
        }
    }
}
