//! A replica's view follows the store: its own commits at once, other writers through the
//! watch, nothing outside its prefix.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use podiam_store::{Compare, MemoryStore, Op, Replica, Store, View};

#[derive(Debug, Default)]
struct Map(BTreeMap<String, (String, u64)>);

impl View for Map {
    fn clear(&mut self) {
        self.0.clear();
    }

    fn apply(&mut self, key: &str, value: Option<&[u8]>, revision: u64) {
        match value {
            Some(v) => {
                self.0.insert(
                    key.to_owned(),
                    (String::from_utf8_lossy(v).into_owned(), revision),
                );
            }
            None => {
                self.0.remove(key);
            }
        }
    }
}

async fn eventually(replica: &Replica<Map>, check: impl Fn(&Map) -> bool) -> bool {
    for _ in 0..200 {
        if check(&replica.view()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[tokio::test]
async fn replicas_converge_and_see_their_own_writes_at_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store
        .txn(&[], &[Op::Put("app/before".into(), b"0".to_vec())])
        .await
        .unwrap();
    let a = Replica::open(Arc::clone(&store), "app/", Map::default())
        .await
        .unwrap();
    let b = Replica::open(Arc::clone(&store), "app/", Map::default())
        .await
        .unwrap();
    assert!(a.view().0.contains_key("app/before"), "loaded at open");

    let committed = a
        .commit(
            &[Compare::Absent("app/x".into())],
            &[
                Op::Put("app/x".into(), b"1".to_vec()),
                Op::Put("other/y".into(), b"2".to_vec()),
            ],
        )
        .await
        .unwrap();
    assert!(committed.is_some());
    assert_eq!(a.view().0.get("app/x").map(|v| v.0.as_str()), Some("1"));
    assert!(!a.view().0.contains_key("other/y"), "outside the prefix");
    assert!(eventually(&b, |m| m.0.contains_key("app/x")).await);

    // A failed comparison changes nothing.
    let failed = b
        .commit(
            &[Compare::Absent("app/x".into())],
            &[Op::Put("app/x".into(), b"3".to_vec())],
        )
        .await
        .unwrap();
    assert!(failed.is_none());

    b.commit(&[], &[Op::Delete("app/before".into())])
        .await
        .unwrap();
    assert!(!b.view().0.contains_key("app/before"));
    assert!(eventually(&a, |m| !m.0.contains_key("app/before")).await);
}
