//! The header timeout: a connection that has started sending a request head must finish it in
//! time. hyper's own header-read timer starts when the connection begins to wait for a request,
//! so it is the idle timeout; this one starts at the head's first byte.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// What the service tells the connection's reader: requests started and finished.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    started: AtomicU64,
    finished: AtomicU64,
}

impl ConnState {
    /// A request's head was complete and it reached the service.
    pub(crate) fn request_started(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// The service answered it.
    pub(crate) fn request_finished(&self) {
        self.finished.fetch_add(1, Ordering::AcqRel);
    }

    fn in_service(&self) -> bool {
        self.started.load(Ordering::Acquire) > self.finished.load(Ordering::Acquire)
    }

    fn generation(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }
}

/// A stream whose reads fail with `TimedOut` when a request head takes too long.
pub(crate) struct GuardedIo<T> {
    inner: T,
    state: Arc<ConnState>,
    header_timeout: Duration,
    /// The running head's deadline, and the request count when it started.
    head: Option<(u64, Pin<Box<Sleep>>)>,
}

impl<T> GuardedIo<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>, header_timeout: Duration) -> Self {
        Self {
            inner,
            state,
            header_timeout,
            head: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let generation = this.state.generation();
        // A head that reached the service, or a request being served: no head is running.
        if this.state.in_service() || this.head.as_ref().is_some_and(|(g, _)| *g != generation) {
            this.head = None;
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.head.is_none() && !this.state.in_service() {
                    let mut deadline = Box::pin(tokio::time::sleep(this.header_timeout));
                    // Registers the waker, so a client that then goes quiet is still timed.
                    let _ = deadline.as_mut().poll(cx);
                    this.head = Some((generation, deadline));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = this
                    .head
                    .as_mut()
                    .is_some_and(|(_, deadline)| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

crate::write_through!(impl[T: AsyncWrite + Unpin] GuardedIo<T>);
