//! podiam's HTTP/1.1 listener, shared by the server, the agent, IMDS, the gateway and the
//! webhook: the work an unauthenticated client can cause is bounded.
//!
//! * **Header timeout.** Once the first byte of a request arrives, its headers must be complete
//!   within [`Limits::header_timeout`], or the connection is closed.
//! * **Idle timeout.** A keep-alive connection that sends no request for
//!   [`Limits::idle_timeout`] is closed (hyper's header-read timer, which starts when the
//!   connection waits for a request).
//! * **Body timeout.** A request body must arrive within [`Limits::body_timeout`] of its
//!   headers; a slower one fails with [`BodyError::TimedOut`].
//! * **Connection limit.** At most [`Limits::max_connections`] at once; the accept loop waits
//!   for a free slot (backpressure: the kernel's backlog holds the rest).
//! * **Body budget.** Handlers read bodies through a [`BodyBudget`]: bytes buffered by all
//!   requests together never exceed it, and a request that would is answered at once as
//!   throttled instead of being buffered.
//!
//! * **Load shedding.** An [`Admission`] answers at once with the protocol's throttling error
//!   the requests over its in-flight limit, and those that waited longer than the queue-delay
//!   limit before the server read them (the kernel's receive time, see [`QueueWait`]); there is
//!   no queue (health and metrics are always served).
//!
//! A [`PeerFilter`] can refuse connections by source address (IMDS serves the node only), and
//! [`addressed_host`] reads the one `Host` a request was addressed to.

/// `AsyncWrite` for a stream wrapper whose writes go straight through to its `inner` field.
macro_rules! write_through {
    (impl[$($generics:tt)*] $type:ty) => {
        impl<$($generics)*> tokio::io::AsyncWrite for $type {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.get_mut().inner), cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.get_mut().inner), cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                tokio::io::AsyncWrite::poll_shutdown(std::pin::Pin::new(&mut self.get_mut().inner), cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                tokio::io::AsyncWrite::poll_write_vectored(
                    std::pin::Pin::new(&mut self.get_mut().inner),
                    cx,
                    bufs,
                )
            }

            fn is_write_vectored(&self) -> bool {
                tokio::io::AsyncWrite::is_write_vectored(&self.inner)
            }
        }
    };
}
pub(crate) use write_through;

mod admission;
mod arrival;
mod body;
mod guard;
mod host;
mod serve;

pub use admission::{Admission, Shed};
pub use arrival::{ArrivalStream, QueueWait};
pub use body::{BodyBudget, BodyError, BudgetPermit, read_body};
pub use host::addressed_host;
pub use serve::{Handshake, LISTEN_BACKLOG, PeerFilter, bind, bind_shared, serve, serve_with};

use std::time::Duration;

/// What one listener allows a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From a request's first byte to its last header byte.
    pub header_timeout: Duration,
    /// A keep-alive connection without a request (also bounds a new connection's first
    /// request head).
    pub idle_timeout: Duration,
    /// From a request's headers to the last byte of its body.
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// The largest request head (request line and headers), in bytes; also the most a
    /// connection's read buffer grows to.
    pub max_head_bytes: usize,
    /// In-flight requests get this long to finish at shutdown.
    pub drain_timeout: Duration,
    /// Requests in the handlers at once; more are shed with the protocol's throttling answer
    /// (applied by the service, which knows that answer: see [`Admission`]).
    pub max_in_flight: usize,
    /// A request that waited longer than this before the server read it is shed too (see
    /// [`Admission`]).
    pub max_queue_delay: Option<Duration>,
}

impl Default for Limits {
    /// 10 s for headers, 60 s idle, 30 s for a body, 4,096 connections, 32 KiB of headers
    /// (a SigV4 request with the longest session token needs about 10), 1,024 requests in
    /// flight (counted from their last body byte, so slow clients take no slot; high enough
    /// that requests waiting on a slow issuer or an etcd election do not shed the others in
    /// normal operation), and no queue-delay shedding unless asked for (requests also wait
    /// when other processes take the CPU).
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_head_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            max_queue_delay: None,
        }
    }
}
