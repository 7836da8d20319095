//! Overload (issue 17): 4,000 clients at once against a server whose in-flight limit is 64 and
//! whose queue-delay limit is 50 ms.
//! The requests over the limit are answered at once with STS's `Throttling` (which the SDKs
//! back off on), every other request succeeds, nothing fails at the connection level, and
//! the server's memory stays bounded. The admitted requests' latency is reported (speed
//! targets live in `BENCHMARKS.md`, not in tests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use podiam_e2e::{ClientEnv, Server, ServerOptions, TestIssuer, create_irsa_role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const CLIENTS: usize = 4_000;
const ROUNDS: usize = 3;

#[derive(Default)]
struct Tally {
    ok: usize,
    throttled: usize,
    other: Vec<String>,
    admitted_ms: Vec<f64>,
}

/// One HTTP/1.1 response's status and body, from a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(chunk.get(..n)?);
        let text = String::from_utf8_lossy(&buffer);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let body = String::from_utf8_lossy(buffer.get(end + 4..end + 4 + length)?).into_owned();
            return Some((status, body));
        }
    }
}

async fn client(addr: std::net::SocketAddr, request: Arc<Vec<u8>>, tally: Arc<Mutex<Tally>>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        tally.lock().await.other.push("connect failed".to_owned());
        return;
    };
    for _ in 0..ROUNDS {
        let started = Instant::now();
        if stream.write_all(&request).await.is_err() {
            tally.lock().await.other.push("write failed".to_owned());
            return;
        }
        let answer = read_response(&mut stream).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let mut tally = tally.lock().await;
        match answer {
            Some((200, _)) => {
                tally.ok += 1;
                tally.admitted_ms.push(elapsed);
            }
            Some((400, body)) if body.contains("<Code>Throttling</Code>") => tally.throttled += 1,
            Some((status, body)) => tally.other.push(format!("{status}: {body}")),
            None => {
                tally.other.push("the connection closed".to_owned());
                return;
            }
        }
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn overload_is_shed_with_throttling_and_memory_stays_bounded() {
    let issuer = TestIssuer::start();
    let server = Server::start_with(&ServerOptions {
        args: vec![
            "--max-in-flight".to_owned(),
            "64".to_owned(),
            "--max-queue-delay".to_owned(),
            "50ms".to_owned(),
        ],
        ..ServerOptions::default()
    });
    let root = ClientEnv::root(&server);
    create_irsa_role(&root, &issuer, "carts", "carts", "carts");
    let token = issuer.mint("carts", "carts", "sts.amazonaws.com", &[]);
    let body = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fcarts&RoleSessionName=load&WebIdentityToken={token}"
    );
    let request = Arc::new(
        format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            server.addr(),
            body.len()
        )
        .into_bytes(),
    );
    let before = peak_rss_mib(server.pid());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::spawn(client(
                    server.addr(),
                    Arc::clone(&request),
                    Arc::clone(&tally),
                ))
            })
            .collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(120), task).await;
        }
    });
    let took = started.elapsed();
    let peak = peak_rss_mib(server.pid());
    let mut tally = runtime.block_on(async { std::mem::take(&mut *tally.lock().await) });
    tally.admitted_ms.sort_by(f64::total_cmp);
    let p = |q: f64| {
        let i = ((tally.admitted_ms.len() as f64 * q) as usize)
            .min(tally.admitted_ms.len().saturating_sub(1));
        tally.admitted_ms.get(i).copied().unwrap_or_default()
    };
    eprintln!(
        "{CLIENTS} clients × {ROUNDS} requests in {took:?}: {} answered, {} throttled, {} other; admitted p50 {:.1} ms, p99 {:.1} ms; server RSS peak {before:.1} → {peak:.1} MiB",
        tally.ok,
        tally.throttled,
        tally.other.len(),
        p(0.5),
        p(0.99)
    );
    assert!(
        tally.other.is_empty(),
        "{} answers were neither success nor Throttling, the first: {:?}",
        tally.other.len(),
        tally.other.first()
    );
    assert_eq!(tally.ok + tally.throttled, CLIENTS * ROUNDS);
    assert!(tally.throttled > 0, "the limit never shed a request");
    assert!(tally.ok > 0, "nothing was admitted");
    assert!(peak < 256.0, "the server's RSS peaked at {peak:.1} MiB");
    // The server still serves normally afterwards.
    root.aws(&["sts", "get-caller-identity"]).ok();
    let metrics = server.get("/metrics").unwrap_or_default();
    assert!(
        metrics.contains("podiam_requests_shed_total{service=\"sts\"}"),
        "shed requests are counted"
    );
}
