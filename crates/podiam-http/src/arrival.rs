//! When a request's bytes reached this machine. Every read of a connection asks the kernel for
//! the receive time of what it read (`SO_TIMESTAMPNS`), so the admission layer sees how long a
//! request waited before the server read it: in the socket's buffer, in epoll's ready list and
//! in the runtime's queue. Under overload that wait is where the time goes, and nothing inside
//! the process can see it otherwise (a request is parsed only when its turn has come).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use tokio::io::{AsyncRead, Interest, ReadBuf};
use tokio::net::TcpStream;

/// How long a request waited between its last bytes reaching the machine and its head reaching
/// the service. In the request's extensions when the listener could measure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWait(pub Duration);

/// The receive time of a connection's latest read, shared by its stream and its service.
#[derive(Debug, Default)]
pub(crate) struct Arrival {
    /// Nanoseconds since the Unix epoch (the kernel stamps with the real-time clock); 0 when
    /// unknown.
    latest_ns: AtomicU64,
}

impl Arrival {
    /// How long ago the latest read's bytes arrived.
    pub(crate) fn waited(&self) -> Option<QueueWait> {
        let latest = self.latest_ns.load(Ordering::Relaxed);
        if latest == 0 {
            return None;
        }
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_nanos(),
        )
        .ok()?;
        Some(QueueWait(Duration::from_nanos(now.saturating_sub(latest))))
    }
}

/// Asks the kernel to stamp what arrives for `listener`'s connections from now on: accepted
/// sockets inherit the option, and packets are stamped on arrival only while some socket has
/// asked, so a request that arrives before its connection is accepted is stamped too. (Linux
/// turns stamping on in deferred work: packets in the first moments after the first socket asks
/// may be unstamped, and their requests are not measured.)
pub(crate) fn stamp_arrivals(listener: &tokio::net::TcpListener) {
    if let Err(e) = setsockopt(listener, sockopt::ReceiveTimestampns, &true) {
        tracing::debug!(error = %e, "no receive timestamps on this listener");
    }
}

/// A TCP stream whose reads record their kernel receive time. Writes go straight through.
#[derive(Debug)]
pub struct ArrivalStream {
    inner: TcpStream,
    arrival: Arc<Arrival>,
    /// Room for one `SO_TIMESTAMPNS` control message.
    control: Vec<u8>,
}

impl ArrivalStream {
    /// `stream`, its reads stamped with their receive time (a client uses this to measure an
    /// answer's latency as the network sees it, without its own scheduling delays).
    pub fn stamped(stream: TcpStream) -> Self {
        Self::new(stream, Arc::new(Arrival::default()))
    }

    /// When the bytes of the latest read arrived (none before a stamped read).
    pub fn arrived(&self) -> Option<SystemTime> {
        match self.arrival.latest_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => UNIX_EPOCH.checked_add(Duration::from_nanos(ns)),
        }
    }

    /// Asks the kernel to stamp `stream`'s reads. If it refuses, reads still work, unstamped.
    pub(crate) fn new(stream: TcpStream, arrival: Arc<Arrival>) -> Self {
        if let Err(e) = setsockopt(&stream, sockopt::ReceiveTimestampns, &true) {
            tracing::debug!(error = %e, "no receive timestamps on this socket");
        }
        Self {
            inner: stream,
            arrival,
            control: nix::cmsg_space!(nix::sys::time::TimeSpec),
        }
    }

    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

/// One `recvmsg` into `into`: the bytes read and their receive time in ns since the epoch.
fn receive(fd: RawFd, into: &mut [u8], control: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = [io::IoSliceMut::new(into)];
    let message = recvmsg::<()>(fd, &mut iov, Some(control), MsgFlags::empty())?;
    let stamp = message.cmsgs().ok().and_then(|mut messages| {
        messages.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(time) => {
                let seconds = u64::try_from(time.tv_sec()).ok()?;
                let nanos = u64::try_from(time.tv_nsec()).ok()?;
                seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
            }
            _ => None,
        })
    });
    Ok((message.bytes, stamp))
}

impl AsyncRead for ArrivalStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let fd = this.inner.as_raw_fd();
            let control = &mut this.control;
            let unfilled = buf.initialize_unfilled();
            match this
                .inner
                .try_io(Interest::READABLE, || receive(fd, unfilled, control))
            {
                Ok((read, stamp)) => {
                    if let Some(ns) = stamp.filter(|_| read > 0) {
                        this.arrival.latest_ns.store(ns, Ordering::Relaxed);
                    }
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

crate::write_through!(impl[] ArrivalStream);

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Bytes that sat unread for 150 ms are stamped with their arrival, not with the read.
    #[tokio::test]
    async fn a_read_knows_how_long_its_bytes_waited() {
        let listener = TcpListener::bind("127.0.0.1:0").await.ok();
        let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let (Some(listener), Some(addr)) = (listener, addr) else {
            panic!("no loopback listener");
        };
        stamp_arrivals(&listener);
        // The kernel turns stamping on in deferred work, not at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.ok()?;
            Some(stream)
        });
        let (accepted, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let arrival = Arc::new(Arrival::default());
        let mut stream = ArrivalStream::new(accepted, Arc::clone(&arrival));
        assert_eq!(arrival.waited(), None, "nothing read yet");
        let _client = client.await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut buffer = [0u8; 64];
        let read = stream.read(&mut buffer).await.unwrap_or(0);
        assert_eq!(buffer.get(..read), Some(&b"GET / HTTP/1.1\r\n\r\n"[..]));
        let waited = arrival.waited().map(|w| w.0);
        assert!(
            waited.is_some_and(|w| w >= Duration::from_millis(140) && w < Duration::from_secs(5)),
            "{waited:?}"
        );
    }
}
