//! The store contract, run against every backend. A new backend adds one line at the bottom.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test fixtures fail loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use podiam_store::{Compare, EventKind, MemoryStore, Op, RedbStore, Store, StoreError, TxnOutcome};

async fn next_event(watch: &mut podiam_store::Watch) -> podiam_store::Event {
    tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .unwrap()
}

async fn get_put_revisions(store: Arc<dyn Store>) {
    assert_eq!(store.get("a").await.unwrap(), None);
    let start = store.revision().await.unwrap();
    let r1 = store.put("a", b"1".to_vec()).await.unwrap();
    assert!(r1 > start);
    let e = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.create_revision, e.mod_revision),
        (&b"1"[..], r1, r1)
    );
    let r2 = store.put("a", b"2".to_vec()).await.unwrap();
    assert!(r2 > r1);
    let e = store.get("a").await.unwrap().unwrap();
    assert_eq!(
        (e.value.as_slice(), e.create_revision, e.mod_revision),
        (&b"2"[..], r1, r2)
    );
    assert_eq!(store.revision().await.unwrap(), r2);
}

async fn compare_and_swap(store: Arc<dyn Store>) {
    assert!(matches!(
        store
            .compare_and_swap("k", None, b"v1".to_vec())
            .await
            .unwrap(),
        TxnOutcome::Committed(_)
    ));
    assert_eq!(
        store
            .compare_and_swap("k", None, b"v2".to_vec())
            .await
            .unwrap(),
        TxnOutcome::Failed,
        "create only once"
    );
    let rev = store.get("k").await.unwrap().unwrap().mod_revision;
    assert_eq!(
        store
            .compare_and_swap("k", Some(rev + 100), b"v2".to_vec())
            .await
            .unwrap(),
        TxnOutcome::Failed
    );
    assert!(matches!(
        store
            .compare_and_swap("k", Some(rev), b"v2".to_vec())
            .await
            .unwrap(),
        TxnOutcome::Committed(_)
    ));
    assert_eq!(
        store
            .compare_and_swap("k", Some(rev), b"v3".to_vec())
            .await
            .unwrap(),
        TxnOutcome::Failed,
        "stale revision"
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value, b"v2");
}

async fn transactions_are_atomic(store: Arc<dyn Store>) {
    store.put("x", b"0".to_vec()).await.unwrap();
    let rev = store.get("x").await.unwrap().unwrap().mod_revision;
    let failed = store
        .txn(
            &[
                Compare::ModRevision("x".into(), rev),
                Compare::Absent("x".into()),
            ],
            &[Op::Put("y".into(), b"1".to_vec()), Op::Delete("x".into())],
        )
        .await
        .unwrap();
    assert_eq!(failed, TxnOutcome::Failed);
    assert!(store.get("y").await.unwrap().is_none(), "nothing applied");
    assert!(store.get("x").await.unwrap().is_some());
    let TxnOutcome::Committed(r) = store
        .txn(
            &[
                Compare::ModRevision("x".into(), rev),
                Compare::Absent("y".into()),
            ],
            &[
                Op::Put("y".into(), b"1".to_vec()),
                Op::Put("z".into(), b"2".to_vec()),
                Op::Delete("x".into()),
            ],
        )
        .await
        .unwrap()
    else {
        panic!("should commit")
    };
    assert_eq!(store.get("y").await.unwrap().unwrap().mod_revision, r);
    assert_eq!(
        store.get("z").await.unwrap().unwrap().mod_revision,
        r,
        "one revision for the whole transaction"
    );
    assert!(store.get("x").await.unwrap().is_none());
}

async fn deletes(store: Arc<dyn Store>) {
    assert!(!store.delete("gone").await.unwrap());
    store.put("gone", b"x".to_vec()).await.unwrap();
    assert!(store.delete("gone").await.unwrap());
    assert!(store.get("gone").await.unwrap().is_none());
    let r = store.put("gone", b"again".to_vec()).await.unwrap();
    assert_eq!(
        store.get("gone").await.unwrap().unwrap().create_revision,
        r,
        "a re-created key starts over"
    );
}

async fn prefix_listing_and_pages(store: Arc<dyn Store>) {
    for key in ["p/", "p/a", "p/b", "p/b/x", "p/c", "pa", "q", "o"] {
        store.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let all = store.list("p/", None, 100).await.unwrap();
    let keys: Vec<&str> = all.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["p/", "p/a", "p/b", "p/b/x", "p/c"]);
    assert!(!all.more);
    assert_eq!(all.revision, store.revision().await.unwrap());
    let first = store.list("p/", None, 2).await.unwrap();
    assert_eq!(first.entries.len(), 2);
    assert!(first.more);
    let second = store
        .list("p/", Some(&first.entries[1].key), 2)
        .await
        .unwrap();
    let keys: Vec<&str> = second.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["p/b", "p/b/x"]);
    assert!(second.more);
    let last = store.list("p/", Some("p/b/x"), 2).await.unwrap();
    assert_eq!(last.entries.len(), 1);
    assert!(!last.more);
    assert!(
        store
            .list("nothing/", None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert_eq!(
        store.list("", None, 100).await.unwrap().entries.len(),
        8,
        "the empty prefix lists everything"
    );
}

/// A page of large values, more than an etcd answer may hold (64 MiB): the listing still
/// returns every key once, in order, across pages.
async fn large_pages(store: Arc<dyn Store>) {
    const VALUES: usize = 48;
    let value = vec![b'v'; 1400 * 1024];
    for i in 0..VALUES {
        store
            .put(&format!("big/{i:02}"), value.clone())
            .await
            .unwrap();
    }
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list("big/", after.as_deref(), 500).await.unwrap();
        assert!(!page.entries.is_empty());
        assert!(page.entries.iter().all(|e| e.value.len() == value.len()));
        after = page.entries.last().map(|e| e.key.clone());
        keys.extend(page.entries.into_iter().map(|e| e.key));
        if !page.more {
            break;
        }
    }
    let expected: Vec<String> = (0..VALUES).map(|i| format!("big/{i:02}")).collect();
    assert_eq!(keys, expected);
}

async fn watches(store: Arc<dyn Store>) {
    store.put("w/before", b"0".to_vec()).await.unwrap();
    let start = store.revision().await.unwrap();
    let mut watch = store.watch("w/", start).await.unwrap();
    let r1 = store.put("w/a", b"1".to_vec()).await.unwrap();
    store.put("other", b"ignored".to_vec()).await.unwrap();
    let r2 = store
        .txn(
            &[],
            &[
                Op::Put("w/b".into(), b"2".to_vec()),
                Op::Delete("w/a".into()),
            ],
        )
        .await
        .unwrap();
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, e.key.as_str(), e.value.as_deref(), e.revision),
        (EventKind::Put, "w/a", Some(&b"1"[..]), r1)
    );
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, e.key.as_str()), (EventKind::Put, "w/b"));
    let e2 = next_event(&mut watch).await;
    assert_eq!(
        (e2.kind, e2.key.as_str(), e2.value),
        (EventKind::Delete, "w/a", None)
    );
    assert_eq!(TxnOutcome::Committed(e.revision), r2);
    assert_eq!(e.revision, e2.revision);

    // A watch that starts in the past replays what it missed, in order, then follows.
    let mut late = store.watch("w/", start).await.unwrap();
    assert_eq!(next_event(&mut late).await.revision, r1);
    assert_eq!(next_event(&mut late).await.key, "w/b");
    assert_eq!(next_event(&mut late).await.key, "w/a");
    store.put("w/c", b"3".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut late).await.key, "w/c");
}

async fn limits(store: Arc<dyn Store>) {
    assert!(matches!(
        store.get("").await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.put(&"k".repeat(2000), vec![]).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.put("big", vec![0; 2 * 1024 * 1024]).await,
        Err(StoreError::InvalidArgument(_))
    ));
    store.put("empty", Vec::new()).await.unwrap();
    assert_eq!(store.get("empty").await.unwrap().unwrap().value, b"");
}

async fn concurrent_compare_and_swap(store: Arc<dyn Store>) {
    store.put("counter", b"0".to_vec()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let e = store.get("counter").await.unwrap().unwrap();
                    let n: u32 = String::from_utf8(e.value).unwrap().parse().unwrap();
                    let next = (n + 1).to_string().into_bytes();
                    if store
                        .compare_and_swap("counter", Some(e.mod_revision), next)
                        .await
                        .unwrap()
                        != TxnOutcome::Failed
                    {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.get("counter").await.unwrap().unwrap().value,
        b"80",
        "no lost update"
    );
}

macro_rules! conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            async fn store() -> (Arc<dyn Store>, Option<Box<dyn std::any::Any + Send>>) {
                let make = $make;
                make().await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn get_put_revisions() {
                super::get_put_revisions(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn compare_and_swap() {
                super::compare_and_swap(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn transactions_are_atomic() {
                super::transactions_are_atomic(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn deletes() {
                super::deletes(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn prefix_listing_and_pages() {
                super::prefix_listing_and_pages(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_pages() {
                super::large_pages(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn watches() {
                super::watches(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn limits() {
                super::limits(store().await.0).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_compare_and_swap() {
                super::concurrent_compare_and_swap(store().await.0).await
            }
        }
    };
}

/// A scratch directory removed on drop.
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = std::env::temp_dir()
                .join(format!("podiam-store-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

conformance!(memory, || async {
    (Arc::new(MemoryStore::new()) as Arc<dyn Store>, None)
});
conformance!(redb, || async {
    let dir = tempdir::Dir::new("redb");
    let store = RedbStore::open(&dir.0.join("podiam.redb")).unwrap();
    (
        Arc::new(store) as Arc<dyn Store>,
        Some(Box::new(dir) as Box<dyn std::any::Any + Send>),
    )
});

// etcd: the cluster `scripts/test` starts (`PODIAM_ETCD_ENDPOINTS`), else three members
// started for the test; each test in a namespace of its own. The revision checks assume no
// other writer, so these tests run one at a time (`.config/nextest.toml`).
async fn etcd_store() -> (Arc<dyn Store>, Option<Box<dyn std::any::Any + Send>>) {
    static NAMESPACE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (endpoints, guard) = match std::env::var("PODIAM_ETCD_ENDPOINTS") {
        Ok(list) => (list.split(',').map(str::to_owned).collect::<Vec<_>>(), None),
        Err(_) => {
            let cluster = podiam_e2e::EtcdCluster::start(3);
            (
                cluster.endpoints(),
                Some(Box::new(cluster) as Box<dyn std::any::Any + Send>),
            )
        }
    };
    let n = NAMESPACE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let namespace = format!("/podiam-conformance-{}-{n}/", std::process::id());
    let store = podiam_store::EtcdStore::connect(
        &endpoints,
        podiam_store::EtcdOptions {
            namespace,
            ..podiam_store::EtcdOptions::default()
        },
    )
    .await
    .unwrap();
    (Arc::new(store) as Arc<dyn Store>, guard)
}

conformance!(etcd, || etcd_store());

/// Records bound to their keys with a MAC (how replicas use etcd) behave as a store still.
fn authenticated(inner: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(podiam_store::AuthenticatedStore::new(
        inner,
        podiam_crypto::HmacKey::new(b"conformance"),
    ))
}

conformance!(authenticated_memory, || async {
    (authenticated(Arc::new(MemoryStore::new())), None)
});

conformance!(authenticated_etcd, || async {
    let (store, guard) = etcd_store().await;
    (authenticated(store), guard)
});

/// redb keeps data and revisions across reopening; a watch from before the restart is told to
/// list again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_survives_reopening() {
    let dir = tempdir::Dir::new("reopen");
    let path = dir.0.join("podiam.redb");
    let revision = {
        let store = RedbStore::open(&path).unwrap();
        store.put("a", b"1".to_vec()).await.unwrap();
        store.put("b", b"2".to_vec()).await.unwrap()
    };
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.revision().await.unwrap(), revision);
    assert_eq!(store.get("b").await.unwrap().unwrap().value, b"2");
    assert!(matches!(
        store.watch("", 0).await,
        Err(StoreError::Compacted { .. })
    ));
    let mut watch = store.watch("", revision).await.unwrap();
    let next = store.put("c", b"3".to_vec()).await.unwrap();
    assert_eq!(next, revision + 1);
    assert_eq!(next_event(&mut watch).await.key, "c");
}
