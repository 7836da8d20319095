//! The etcd store fails over between members by itself (issue 17): with a member refusing
//! connections, hung (SIGSTOP), or killed while it leads, every call succeeds within its
//! deadline, a replica of the store starts with a member down, and a transaction whose answer
//! was lost is reported committed once rather than as a conflict.

#![expect(clippy::unwrap_used, reason = "test fixtures fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use podiam_e2e::EtcdCluster;
use podiam_store::{Compare, EtcdOptions, EtcdStore, Op, Store, TxnOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn namespace(test: &str) -> EtcdOptions {
    EtcdOptions {
        namespace: format!("/failover-{test}-{}/", std::process::id()),
        ..EtcdOptions::default()
    }
}

/// A loopback port nobody listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

/// A listener that accepts connections and never answers (a hung member).
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_refuses_or_hangs_costs_no_call() {
    let cluster = EtcdCluster::start(1);
    let live = cluster.endpoints().remove(0);
    for dead in [closed_port().await, black_hole().await] {
        // The dead member first: the store starts and every call is answered.
        let store = EtcdStore::connect(&[dead.clone(), live.clone()], namespace("dead"))
            .await
            .expect("connect does not dial");
        let started = Instant::now();
        for i in 0..20 {
            let key = format!("k{i}");
            let outcome = store
                .txn(&[], &[Op::Put(key.clone(), b"v".to_vec())])
                .await
                .unwrap_or_else(|e| panic!("write {i} with {dead} down: {e}"));
            assert!(matches!(outcome, TxnOutcome::Committed(_)));
            assert!(store.get(&key).await.unwrap().is_some());
        }
        // Only the first call pays for the dead member (its circuit stays open after).
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{dead}: 40 calls took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_fails_no_call() {
    let mut cluster = EtcdCluster::start(3);
    // The store talks to the leader first, so killing it cuts the store's own connection.
    let leader = cluster.leader().expect("a leader");
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(leader);
    let store = Arc::new(
        EtcdStore::connect(&endpoints, namespace("leader"))
            .await
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut failures = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{i:05}");
                let started = Instant::now();
                match store
                    .txn(
                        &[Compare::Absent(key.clone())],
                        &[Op::Put(key.clone(), i.to_be_bytes().to_vec())],
                    )
                    .await
                {
                    Ok(TxnOutcome::Committed(_)) => acknowledged.push((key, started.elapsed())),
                    Ok(TxnOutcome::Failed) => failures.push(format!("{key}: reported a conflict")),
                    Err(e) => failures.push(format!("{key}: {e}")),
                }
                i += 1;
            }
            (acknowledged, failures)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Then a follower of the new majority is hung: calls still go through.
    let follower = (0..3).find(|&i| i != leader && cluster.leader() != Some(i));
    if let Some(f) = follower {
        cluster.pause(f, true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        cluster.pause(f, false);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, failures) = writer.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} failed calls, the first: {:?}",
        failures.len(),
        failures.iter().take(3).collect::<Vec<_>>()
    );
    assert!(acknowledged.len() > 20, "{} writes", acknowledged.len());
    let slowest = acknowledged
        .iter()
        .map(|(_, t)| *t)
        .max()
        .unwrap_or_default();
    assert!(slowest < Duration::from_secs(5), "a write took {slowest:?}");
    for (key, _) in &acknowledged {
        assert!(
            store.get(key).await.unwrap().is_some(),
            "acknowledged {key} is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_starts_with_a_member_down() {
    let mut cluster = EtcdCluster::start(3);
    cluster.kill(0);
    let started = Instant::now();
    let store = EtcdStore::connect(&cluster.endpoints(), namespace("start"))
        .await
        .unwrap();
    store.revision().await.expect("the majority answers");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Forwards to `target`; while `swallow` is set, the answers from `target` are dropped and the
/// connection is cut: the request arrived, its answer is lost.
async fn lossy_proxy(target: String, swallow: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let swallow = Arc::clone(&swallow);
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    let Some(bytes) = buffer.get(..n).filter(|b| !b.is_empty()) else {
                        break;
                    };
                    if swallow.load(Ordering::SeqCst) {
                        // Let etcd finish the request, then cut the client off.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                    if client_write.write_all(bytes).await.is_err() {
                        break;
                    }
                }
                upstream.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_reported_once() {
    let cluster = EtcdCluster::start(1);
    let live = cluster.endpoints().remove(0);
    let swallow = Arc::new(AtomicBool::new(false));
    let proxy = lossy_proxy(live.clone(), Arc::clone(&swallow)).await;
    let store = EtcdStore::connect(&[proxy, live], namespace("lost"))
        .await
        .unwrap();
    // The connection through the proxy is up and preferred.
    assert!(store.get("warm").await.unwrap().is_none());
    swallow.store(true, Ordering::SeqCst);
    let outcome = store
        .txn(
            &[Compare::Absent("created".to_owned())],
            &[Op::Put("created".to_owned(), b"first".to_vec())],
        )
        .await
        .expect("the retry on the other member answers");
    let TxnOutcome::Committed(revision) = outcome else {
        panic!("the first try committed, so the create must be reported committed: {outcome:?}");
    };
    let entry = store.get("created").await.unwrap().expect("written");
    assert_eq!(entry.value, b"first");
    assert_eq!(
        entry.mod_revision, revision,
        "the revision of the one commit"
    );
    assert_eq!(entry.create_revision, entry.mod_revision, "written once");
    // A create that really conflicts is still a conflict.
    let again = store
        .txn(
            &[Compare::Absent("created".to_owned())],
            &[Op::Put("created".to_owned(), b"second".to_vec())],
        )
        .await
        .unwrap();
    assert!(matches!(again, TxnOutcome::Failed), "{again:?}");
}

/// A watch on a member that hangs ends with an error within seconds instead of staying silent,
/// and a new watch from the same revision, made through the members that answer, gets the
/// writes made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_a_hung_member_is_given_up_and_made_again() {
    let cluster = EtcdCluster::start(3);
    let store = EtcdStore::connect(&cluster.endpoints(), namespace("watch"))
        .await
        .unwrap();
    let start = store.revision().await.unwrap();
    // Member 0 answered first, so the watch is on it.
    let mut watch = store.watch("w/", start).await.unwrap();
    cluster.pause(0, true);
    let written = store
        .txn(&[], &[Op::Put("w/after-hang".to_owned(), b"v".to_vec())])
        .await
        .expect("the write goes through the other members");
    assert!(matches!(written, TxnOutcome::Committed(_)));
    let ended = tokio::time::timeout(Duration::from_secs(8), watch.next()).await;
    cluster.pause(0, false);
    assert!(
        matches!(ended, Ok(Some(Err(_)))),
        "the silent watch ends with an error: {ended:?}"
    );
    cluster.pause(0, true);
    let mut again = store
        .watch("w/", start)
        .await
        .expect("a new watch elsewhere");
    let event = tokio::time::timeout(Duration::from_secs(5), again.next()).await;
    cluster.pause(0, false);
    let Ok(Some(Ok(event))) = event else {
        panic!("the new watch delivers the write: {event:?}");
    };
    assert_eq!(event.key, "w/after-hang");
}
