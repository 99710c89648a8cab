//! The byte streams a connection runs over: unix sockets (which can carry file descriptors),
//! TCP, or any `AsyncRead + AsyncWrite` supplied by the user (TLS, a pipe, a test duplex).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Any stream a user can hand to [`ClientBuilder::connect_stream`](crate::ClientBuilder::connect_stream).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

pub(crate) enum Transport {
    Unix(UnixStream),
    Tcp(TcpStream),
    Stream(Box<dyn AsyncStream>),
}

impl Transport {
    /// Only unix sockets carry `SCM_RIGHTS` ancillary data.
    pub(crate) fn can_pass_fds(&self) -> bool {
        matches!(self, Transport::Unix(_))
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        let res = match self {
            Transport::Unix(s) => Pin::new(s).poll_read(cx, &mut rb),
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, &mut rb),
            Transport::Stream(s) => Pin::new(s).poll_read(cx, &mut rb),
        };
        ready!(res)?;
        Poll::Ready(Ok(rb.filled().len()))
    }

    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Stream(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    /// Writes (a prefix of) `buf` with `fds` attached to its first byte, as QEMU expects for
    /// `getfd` and `add-fd`. On success the descriptors have been sent and may be closed.
    pub(crate) fn poll_write_with_fds(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        fds: &[OwnedFd],
    ) -> Poll<io::Result<usize>> {
        let Transport::Unix(s) = self else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "file descriptors can only be passed over a unix socket",
            )));
        };
        loop {
            ready!(s.poll_write_ready(cx))?;
            match s.try_io(Interest::WRITABLE, || send_with_fds(s.as_fd(), buf, fds)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                res => return Poll::Ready(res),
            }
        }
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Stream(s) => Pin::new(s).poll_flush(cx),
        }
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Stream(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }
}

/// One `sendmsg` carrying `buf` and an `SCM_RIGHTS` message with `fds`.
fn send_with_fds(socket: BorrowedFd<'_>, buf: &[u8], fds: &[OwnedFd]) -> io::Result<usize> {
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|fd| fd.as_fd()).collect();
    let mut space =
        vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many file descriptors for one message",
        ));
    }
    let n = rustix::net::sendmsg(
        socket,
        &[IoSlice::new(buf)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(n)
}
