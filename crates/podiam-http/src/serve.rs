//! The accept loop: a connection slot, an optional source check and handshake, then HTTP/1.1
//! with the header, idle and body timeouts.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::Limits;
use crate::arrival::{Arrival, ArrivalStream};
use crate::body::TimedBody;
use crate::guard::{ConnState, GuardedIo};

/// Decides, by the client's address, whether a connection is served at all.
pub type PeerFilter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Turns an accepted TCP stream into the stream HTTP is spoken on (a TLS handshake, say).
pub type Handshake<S> =
    Arc<dyn Fn(ArrivalStream) -> Pin<Box<dyn Future<Output = io::Result<S>> + Send>> + Send + Sync>;

/// How many finished handshakes the kernel holds for the accept loop (Linux caps it at
/// `net.core.somaxconn`, 4,096 by default). The runtime's default, 1,024, is too few for a
/// connection storm: the kernel drops the handshakes beyond it, and those clients' requests
/// arrive a second later, when TCP retransmits (seen with 4,000 clients connecting at once).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with the [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as `bind` has).
pub async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    listen(address, false)
}

/// A listening socket on `address` (`SO_REUSEADDR`, `SO_REUSEPORT` if asked) with the
/// [`LISTEN_BACKLOG`].
fn listen(address: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// `count` listeners on `address`, one per event loop, with `SO_REUSEPORT`: the kernel spreads
/// new connections over them by the connection's address hash. (One socket shared by several
/// loops lets whichever loop wakes first take a whole burst of connections, and keep them.)
/// The first binds `address`, whose port may be 0; the others bind the port it got. Only
/// processes of the same user can join such a group of sockets. Each listener goes to its
/// loop's runtime with `tokio::net::TcpListener::from_std`.
pub async fn bind_shared(
    address: SocketAddr,
    count: usize,
) -> io::Result<Vec<std::net::TcpListener>> {
    let mut address = address;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let listener = listen(address, true)?;
        address = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// Serves `router` over plain TCP until `shutdown` completes, then lets in-flight requests
/// finish for [`Limits::drain_timeout`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    filter: Option<PeerFilter>,
    shutdown: impl Future<Output = ()>,
) {
    let plain: Handshake<ArrivalStream> = Arc::new(|stream| Box::pin(async move { Ok(stream) }));
    serve_with(listener, router, limits, filter, plain, shutdown).await;
}

/// Serves `router` on streams made by `handshake` (which gets `header_timeout` to finish).
pub async fn serve_with<S>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    filter: Option<PeerFilter>,
    handshake: Handshake<S>,
    shutdown: impl Future<Output = ()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    crate::arrival::stamp_arrivals(&listener);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Backpressure: no slot, no accept.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Some(filter) = &filter
            && !filter(peer)
        {
            tracing::debug!(%peer, "connection refused by the source filter");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let handshake = Arc::clone(&handshake);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let arrival = Arc::new(Arrival::default());
            let stream = ArrivalStream::new(stream, Arc::clone(&arrival));
            let stream = match tokio::time::timeout(limits.header_timeout, handshake(stream)).await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "handshake timed out");
                    return;
                }
            };
            let state = Arc::new(ConnState::default());
            let io = TokioIo::new(GuardedIo::new(
                stream,
                Arc::clone(&state),
                limits.header_timeout,
            ));
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                state.request_started();
                let waited = arrival.waited();
                let state = Arc::clone(&state);
                let router = router.clone();
                async move {
                    let (mut parts, body) = request.into_parts();
                    parts.extensions.insert(ConnectInfo(peer));
                    if let Some(waited) = waited {
                        parts.extensions.insert(waited);
                    }
                    let body = Body::new(TimedBody::new(body, limits.body_timeout));
                    let response = router.oneshot(http::Request::from_parts(parts, body)).await;
                    state.request_finished();
                    Ok::<_, Infallible>(match response {
                        Ok(response) => response,
                        Err(never) => match never {},
                    })
                }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192))
                .serve_connection(io, service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_port_spreads_connections_over_its_listeners() {
        let listeners = bind_shared("127.0.0.1:0".parse().unwrap(), 2)
            .await
            .unwrap();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_ne!(ports[0], 0);
        assert_eq!(ports[0], ports[1], "one port for both");
        let listeners: Vec<TcpListener> = listeners
            .into_iter()
            .map(|l| TcpListener::from_std(l).unwrap())
            .collect();
        let mut clients = Vec::new();
        for _ in 0..32 {
            clients.push(
                tokio::net::TcpStream::connect(("127.0.0.1", ports[0]))
                    .await
                    .unwrap(),
            );
        }
        // Each connection is in exactly one listener's queue; 200 ms of nothing new means
        // that queue is empty.
        let mut accepted = [0usize; 2];
        for (n, listener) in listeners.iter().enumerate() {
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
            {
                accepted[n] += 1;
            }
        }
        assert_eq!(accepted[0] + accepted[1], 32);
        // By the addresses' hash: all 32 on one side has odds of 2 in 2^32.
        assert!(accepted[0] > 0 && accepted[1] > 0, "{accepted:?}");
    }
}
