//! Bounded work before authentication, against the real server: 1,000 unauthenticated
//! connections that send half their headers or a trickle of body do not grow the server's
//! memory without bound, are cut off by the timeouts, and do not stop it answering a real
//! client (the AWS SDK for Rust) throughout. Bounded: 1,000 connections, about 20 seconds.

use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use podiam_e2e::{Server, ServerOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Opens a connection and sends `prefix` and nothing more; the stream is returned held open.
async fn holder(address: std::net::SocketAddr, prefix: Vec<u8>) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    stream.write_all(&prefix).await.ok()?;
    Some(stream)
}

/// Whether the server closed `stream` (read returns 0 or an error) within `within`.
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_unauthenticated_clients_are_bounded_and_the_server_keeps_answering() {
    let server = Server::start_with(&ServerOptions {
        args: [
            "--header-timeout",
            "3s",
            "--body-timeout",
            "4s",
            "--idle-timeout",
            "30s",
        ]
        .iter()
        .map(ToString::to_string)
        .collect(),
        ..ServerOptions::default()
    });
    let address = server.addr();
    let (id, secret) = server.root_keys();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(Credentials::new(id, secret, None, None, "root"))
            .build(),
    );
    sts.get_caller_identity()
        .send()
        .await
        .expect("answers before");
    let before = rss_kib(server.pid());

    // 500 half-sent heads, and 500 unsigned bodies that declare 60 KiB (under the unsigned
    // limit) and send 30 KiB of it: the attack's shape, at the size an unsigned request may have.
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..1000 {
        let prefix = if i % 2 == 0 {
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".to_vec()
        } else {
            let mut p = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 61440\r\n\r\nAction=AssumeRoleWithWebIdentity&WebIdentityToken=".to_vec();
            p.resize(p.len() + 30 * 1024, b'a');
            p
        };
        if let Some(stream) = holder(address, prefix).await {
            held.push(stream);
        }
    }
    assert!(held.len() >= 990, "only {} connections opened", held.len());

    // The server answers a real client while all of them hang on.
    let mut slowest = Duration::ZERO;
    let mut peak = 0;
    for _ in 0..10 {
        let asked = Instant::now();
        sts.get_caller_identity()
            .send()
            .await
            .expect("the server answers during the flood");
        slowest = slowest.max(asked.elapsed());
        peak = peak.max(rss_kib(server.pid()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = rss_kib(server.pid()).max(peak);
    // Every held connection is cut off by the header or the body timeout.
    let mut cut = 0;
    for stream in &mut held {
        let left = (started + Duration::from_secs(10)).saturating_duration_since(Instant::now());
        if closed(stream, left).await {
            cut += 1;
        }
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server.pid());
    sts.get_caller_identity()
        .send()
        .await
        .expect("answers after");
    eprintln!(
        "RSS before {before} KiB, during {during} KiB (+{} KiB for 1,000 connections), after {after} KiB; slowest GetCallerIdentity during the flood {slowest:?}; {cut} of 1,000 cut off by the timeouts",
        during.saturating_sub(before)
    );
    assert_eq!(cut, 1000, "connections left open past the timeouts");
    // 1,000 connections holding 15 MiB of body between them: the server grew by far less than
    // the 3.9 GB the unbounded server reached at 2,000.
    assert!(
        during.saturating_sub(before) < 200 * 1024,
        "RSS grew by {} KiB",
        during.saturating_sub(before)
    );
}
