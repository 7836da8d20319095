//! podiam's durable state behind one contract.
//!
//! A [`Store`] is a sorted key-value space with a global revision that every commit increases,
//! the model etcd uses: [`Store::txn`] applies puts and deletes atomically when every
//! [`Compare`] holds (compare-and-swap by revision), [`Store::list`] pages through a prefix in
//! key order, and [`Store::watch`] streams every change under a prefix after a revision, so a
//! cache can list once and then follow. Backends: [`MemoryStore`] (tests, and the fake behind
//! unit tests of the layers above), [`RedbStore`] (embedded, durable, the default) and
//! [`EtcdStore`] (several replicas over an etcd cluster); all pass the conformance suite in
//! `tests/`. A [`Replica`] keeps an in-memory [`View`] of a prefix
//! up to date through the watch, so the services above read without touching the store.

mod authenticated;
mod copy;
mod error;
mod etcd;
mod hub;
mod memory;
mod redb_store;
mod replica;
mod types;

pub use authenticated::AuthenticatedStore;
pub use copy::{Copied, copy_store};
pub use error::StoreError;
pub use etcd::{EtcdOptions, EtcdStore};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use replica::{Replica, View};
pub use types::{
    Compare, Entry, Event, EventKind, MAX_KEY_LEN, MAX_VALUE_LEN, Op, Page, Revision, Store,
    TxnOutcome, Watch, validate_key,
};
