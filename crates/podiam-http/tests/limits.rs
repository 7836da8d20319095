//! The listener's limits against real TCP clients that misbehave.

#![expect(clippy::expect_used, reason = "test fixtures fail loudly")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::routing::{get, post};
use podiam_http::{BodyBudget, BodyError, Limits, PeerFilter, QueueWait, read_body, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(1500),
        body_timeout: Duration::from_millis(600),
        max_connections: 8,
        max_head_bytes: 16 * 1024,
        drain_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

async fn echo(State(budget): State<BodyBudget>, request: Request) -> String {
    match read_body(request.into_body(), 1 << 20, &budget).await {
        Ok((bytes, _permit)) => format!("read {}", bytes.len()),
        Err(BodyError::TimedOut) => "timed out".to_owned(),
        Err(BodyError::Busy) => "busy".to_owned(),
        Err(e) => format!("error {e}"),
    }
}

async fn peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    peer.ip().to_string()
}

/// How long the request waited before the server read it, in ms ("none" when not measured).
async fn waited(request: Request) -> String {
    request
        .extensions()
        .get::<QueueWait>()
        .map_or_else(|| "none".to_owned(), |w| w.0.as_millis().to_string())
}

struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(limits: Limits, filter: Option<PeerFilter>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/echo", post(echo))
            .route("/peer", get(peer))
            .route("/waited", get(waited))
            .with_state(BodyBudget::new(1 << 20));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, limits, filter, async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

/// Reads until the peer closes (or `within` passes); returns what arrived and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&all).into_owned(), true),
            Ok(Ok(n)) => all.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(_) => return (String::from_utf8_lossy(&all).into_owned(), false),
        }
    }
}

async fn get_peer(address: SocketAddr) -> reqwest::Result<String> {
    reqwest::Client::new()
        .get(format!("http://{address}/peer"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .text()
        .await
}

#[tokio::test]
async fn half_sent_headers_are_cut_off_after_the_header_timeout() {
    let server = Server::start(limits(), None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the connection stayed open");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1400),
        "closed after {took:?}, expected the 400 ms header timeout, well before the idle one"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_cut_off_too() {
    let server = Server::start(limits(), None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    let started = Instant::now();
    let head =
        b"GET /peer HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(cut || closed, "a trickled head was served: {answer:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(6));
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(limits(), None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).contains("127.0.0.1"));
    // Idle longer than the header timeout: still open (the idle timeout is longer).
    tokio::time::sleep(Duration::from_millis(800)).await;
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("second request on the same connection");
    let n = stream.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).contains("200 OK"));
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1300) && took < Duration::from_millis(3000),
        "closed after {took:?}, expected the 1.5 s idle timeout"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_times_out() {
    let server = Server::start(limits(), None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(answer.contains("timed out"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn unfinished_bodies_beyond_the_budget_are_refused_unread_and_others_still_served() {
    let server = Server::start(limits(), None).await;
    // Three clients each declare 400 KiB and send a little: the first two fit the 1 MiB
    // budget, the third is refused at once.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.address).await.expect("connect");
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 409600\r\n\r\nxx")
            .await
            .expect("write");
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(server.address).await.expect("connect");
    third
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 409600\r\n\r\nxx")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf))
        .await
        .expect("the refusal came at once")
        .expect("read");
    assert!(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).contains("busy"));
    assert_eq!(get_peer(server.address).await.expect("served"), "127.0.0.1");
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_slot() {
    let mut small = limits();
    small.max_connections = 2;
    small.idle_timeout = Duration::from_secs(10);
    small.header_timeout = Duration::from_secs(10);
    let server = Server::start(small, None).await;
    let a = TcpStream::connect(server.address).await.expect("a");
    let b = TcpStream::connect(server.address).await.expect("b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The third is accepted by the kernel but not served while both slots are held.
    let waiting = tokio::time::timeout(Duration::from_millis(500), get_peer(server.address)).await;
    assert!(waiting.is_err(), "a third connection was served");
    drop(a);
    let served = tokio::time::timeout(Duration::from_secs(3), get_peer(server.address))
        .await
        .expect("served once a slot was free")
        .expect("answer");
    assert_eq!(served, "127.0.0.1");
    drop(b);
    server.stop().await;
}

#[tokio::test]
async fn the_peer_filter_refuses_connections() {
    let filter: PeerFilter = Arc::new(|peer: SocketAddr| !peer.ip().is_loopback());
    let server = Server::start(limits(), Some(filter)).await;
    assert!(get_peer(server.address).await.is_err());
    server.stop().await;
    let allow: PeerFilter = Arc::new(|peer: SocketAddr| peer.ip().is_loopback());
    let server = Server::start(limits(), Some(allow)).await;
    assert_eq!(get_peer(server.address).await.expect("served"), "127.0.0.1");
    server.stop().await;
}

#[tokio::test]
async fn a_request_body_is_read_whole_when_it_arrives_in_time() {
    let server = Server::start(limits(), None).await;
    let answer = reqwest::Client::new()
        .post(format!("http://{}/echo", server.address))
        .body(vec![1u8; 5000])
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert_eq!(answer, "read 5000");
    server.stop().await;
}

/// The listener stamps each request with how long it sat unread: here a request that waited in
/// the kernel's accept queue and socket buffer while the only connection slot was held.
#[tokio::test]
async fn a_request_knows_how_long_it_waited_before_it_was_read() {
    let mut one = limits();
    one.max_connections = 1;
    one.idle_timeout = Duration::from_secs(10);
    one.header_timeout = Duration::from_secs(10);
    let server = Server::start(one, None).await;
    // The kernel turns receive stamps on in deferred work, not at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let request = b"GET /waited HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut fresh = TcpStream::connect(server.address).await.expect("fresh");
    fresh.write_all(request).await.expect("write");
    let (answer, _) = read_until_closed(&mut fresh, Duration::from_secs(3)).await;
    let quick: u64 = answer
        .rsplit("\r\n\r\n")
        .next()
        .and_then(|ms| ms.parse().ok())
        .expect("a measured wait");
    assert!(quick < 1_000, "an idle server read it late: {answer}");
    let holder = TcpStream::connect(server.address).await.expect("holder");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = TcpStream::connect(server.address).await.expect("waiting");
    waiting.write_all(request).await.expect("write");
    tokio::time::sleep(Duration::from_millis(400)).await;
    drop(holder);
    let (answer, _) = read_until_closed(&mut waiting, Duration::from_secs(5)).await;
    let waited: u64 = answer
        .rsplit("\r\n\r\n")
        .next()
        .and_then(|ms| ms.parse().ok())
        .expect("a measured wait");
    assert!((380..5_000).contains(&waited), "{answer}");
    server.stop().await;
}
