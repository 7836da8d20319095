//! [`EtcdStore`]: the store over an etcd v3 cluster. etcd's own model is the store's: one revision for the whole keyspace, transactions with comparisons, ranges and
//! watches from a revision, so every call maps to one etcd request.
//!
//! Every key lives under a namespace (`/podiam/` by default), so several podiam installations,
//! or test runs, can share one etcd. Several podiam servers over the same namespace share
//! everything: each one's caches follow the others' writes through the watch.
//!
//! Calls fail over between members inside the store (`super::members`): a minority of
//! members down, hung or in an election costs a call time within its deadline, not an error. A
//! transaction whose answer was lost is tried again; when the retry finds its comparison no
//! longer holds, the store reads whether the first try's writes are there, so a committed
//! write is reported committed, once.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::client::ConnectOptions;
use super::members::Members;
use super::proto::etcdserverpb::{
    Compare as EtcdCompare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
    WatchCreateRequest, compare, request_op,
};
use super::proto::mvccpb::{KeyValue, event::EventType};

use crate::types::{Watch, validate_ops};
use crate::{
    Compare, Entry, Event, EventKind, Op, Page, Revision, Store, StoreError, TxnOutcome,
    validate_key,
};

/// A quiet watch asks its member for progress this often.
const WATCH_PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A watch that hears nothing, progress included, for this long is given up and made again.
const WATCH_SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// How to reach etcd.
#[derive(Clone, Default)]
pub struct EtcdOptions {
    /// The prefix of every key (`/podiam/` when empty).
    pub namespace: String,
    /// PEM of the CA that signs the members' certificates (enables TLS).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for etcd's `--client-cert-auth`.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// User name and password, for etcd's role-based access control.
    pub user: Option<(String, String)>,
    /// Connecting to a member (default 1 s).
    pub connect_timeout: Option<Duration>,
    /// One try at one member (default 1.5 s): what a hung member costs a call.
    pub request_timeout: Option<Duration>,
    /// A call's whole budget, failovers and an election included (default 5 s).
    pub deadline: Option<Duration>,
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdOptions")
            .field("namespace", &self.namespace)
            .field("tls", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert_pem.is_some())
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

/// The store over an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    members: Arc<Members>,
    namespace: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn backend(status: &tonic::Status) -> StoreError {
    StoreError::Backend(format!("etcd: {}", status.message()))
}

/// A range read of one key.
fn get_one(key: Vec<u8>) -> RangeRequest {
    RangeRequest {
        key,
        ..RangeRequest::default()
    }
}

/// etcd revisions are `i64`; ours are `u64`.
fn to_etcd(revision: Revision) -> Result<i64, StoreError> {
    i64::try_from(revision)
        .map_err(|_| StoreError::InvalidArgument(format!("revision {revision} is out of range")))
}

fn from_etcd(revision: i64) -> Revision {
    u64::try_from(revision).unwrap_or(0)
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

impl EtcdStore {
    /// Prepares clients of the members at `endpoints` (`host:port` or `http(s)://host:port`).
    /// Nothing is dialled yet: a replica starts while any member is down.
    pub async fn connect(endpoints: &[String], options: EtcdOptions) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::InvalidArgument(
                "no etcd endpoint given".to_owned(),
            ));
        }
        let attempt = options
            .request_timeout
            .unwrap_or(Duration::from_millis(1_500));
        let connect = ConnectOptions {
            connect_timeout: options.connect_timeout.unwrap_or(Duration::from_secs(1)),
            ca_pem: options.ca_pem.clone(),
            client_cert_pem: options.client_cert_pem.clone(),
            user: options.user.clone(),
        };
        let members = Members::new(
            endpoints,
            &connect,
            options.deadline.unwrap_or(Duration::from_secs(5)),
            attempt,
        )?;
        let namespace = if options.namespace.is_empty() {
            "/podiam/".to_owned()
        } else {
            options.namespace
        };
        Ok(Self {
            members: Arc::new(members),
            namespace,
        })
    }

    /// After a transaction whose first try may have committed failed its comparison on a
    /// retry: whether every write of `ops` is in place, and at which revision.
    async fn landed(&self, ops: &[Op]) -> Result<Option<Revision>, StoreError> {
        let mut revision = None;
        for op in ops {
            let key = match op {
                Op::Put(key, _) | Op::Delete(key) => self.full(key),
            };
            let (response, _) = self
                .members
                .call("get", |client| {
                    let request = get_one(key.clone().into_bytes());
                    async move { client.range(request).await }
                })
                .await?;
            let current = response.kvs.first();
            let header = response.header.map(|h| from_etcd(h.revision));
            match (op, current) {
                (Op::Put(_, value), Some(kv)) if kv.value == *value => {
                    revision = Some(from_etcd(kv.mod_revision));
                }
                (Op::Delete(_), None) => revision = revision.or(header),
                _ => return Ok(None),
            }
        }
        Ok(revision)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    /// A key of ours from an etcd key (the namespace removed).
    fn ours(&self, key: &[u8]) -> Result<String, StoreError> {
        let text = std::str::from_utf8(key)
            .map_err(|_| StoreError::Corrupt("an etcd key is not UTF-8".to_owned()))?;
        text.strip_prefix(&self.namespace)
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt(format!("key {text:?} is outside the namespace")))
    }

    fn entry(&self, kv: KeyValue) -> Result<Entry, StoreError> {
        Ok(Entry {
            key: self.ours(&kv.key)?,
            value: kv.value,
            create_revision: from_etcd(kv.create_revision),
            mod_revision: from_etcd(kv.mod_revision),
        })
    }
}

/// A comparison that `target` of `key` equals `value`.
fn equal(key: String, target: compare::CompareTarget, value: compare::TargetUnion) -> EtcdCompare {
    EtcdCompare {
        result: compare::CompareResult::Equal.into(),
        target: target.into(),
        key: key.into_bytes(),
        range_end: Vec::new(),
        target_union: Some(value),
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let full = self.full(key);
        let (response, _) = self
            .members
            .call("get", |client| {
                let request = get_one(full.clone().into_bytes());
                async move { client.range(request).await }
            })
            .await?;
        response
            .kvs
            .into_iter()
            .next()
            .map(|e| self.entry(e))
            .transpose()
    }

    async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome, StoreError> {
        validate_ops(ops)?;
        let mut conditions = Vec::with_capacity(compares.len());
        for compare in compares {
            conditions.push(match compare {
                // A key that does not exist has version 0.
                Compare::Absent(key) => {
                    validate_key(key)?;
                    equal(
                        self.full(key),
                        compare::CompareTarget::Version,
                        compare::TargetUnion::Version(0),
                    )
                }
                Compare::ModRevision(key, revision) => {
                    validate_key(key)?;
                    equal(
                        self.full(key),
                        compare::CompareTarget::Mod,
                        compare::TargetUnion::ModRevision(to_etcd(*revision)?),
                    )
                }
            });
        }
        let success = ops
            .iter()
            .map(|op| RequestOp {
                request: Some(match op {
                    Op::Put(key, value) => request_op::Request::RequestPut(PutRequest {
                        key: self.full(key).into_bytes(),
                        value: value.clone(),
                        ..PutRequest::default()
                    }),
                    Op::Delete(key) => {
                        request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                            key: self.full(key).into_bytes(),
                            ..DeleteRangeRequest::default()
                        })
                    }
                }),
            })
            .collect();
        let txn = TxnRequest {
            compare: conditions,
            success,
            failure: Vec::new(),
        };
        let (response, tries) = self
            .members
            .call("txn", |client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        if !response.succeeded {
            // The first try may have committed and lost its answer: then the comparison fails
            // on the retry because of our own write. Report that commit, not a conflict.
            if tries.ambiguous
                && !ops.is_empty()
                && let Some(revision) = self.landed(ops).await?
            {
                tracing::info!("an etcd transaction committed on a try whose answer was lost");
                return Ok(TxnOutcome::Committed(revision));
            }
            return Ok(TxnOutcome::Failed);
        }
        let revision = response
            .header
            .map(|h| from_etcd(h.revision))
            .ok_or_else(|| StoreError::Backend("etcd answered without a header".to_owned()))?;
        Ok(TxnOutcome::Committed(revision))
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let full_prefix = self.full(prefix);
        let end = prefix_end(full_prefix.as_bytes());
        let start = match after {
            // The first key after `after`.
            Some(after) => {
                let mut key = self.full(after).into_bytes();
                key.push(0);
                key
            }
            None => full_prefix.into_bytes(),
        };
        let mut limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let response = loop {
            let (answer, _) = self
                .members
                .call("list", |client| {
                    let request = RangeRequest {
                        key: start.clone(),
                        range_end: end.clone(),
                        limit,
                        ..RangeRequest::default()
                    };
                    async move {
                        match client.range(request).await {
                            Ok(response) => Ok(Some(response)),
                            Err(status) if too_large(&status) => Ok(None),
                            Err(status) => Err(status),
                        }
                    }
                })
                .await?;
            match answer {
                Some(response) => break response,
                // A page of many large values: ask for fewer (one value always fits).
                None if limit > 1 => limit /= 2,
                None => {
                    return Err(StoreError::Backend(
                        "etcd: one entry is larger than an answer may be".to_owned(),
                    ));
                }
            }
        };
        let revision = response
            .header
            .map(|h| from_etcd(h.revision))
            .unwrap_or_default();
        let more = response.more;
        let entries = response
            .kvs
            .into_iter()
            .map(|e| self.entry(e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            entries,
            more,
            revision,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        let start = to_etcd(after.saturating_add(1))?;
        let full = self.full(prefix);
        let (mut stream, _) = self
            .members
            .call("watch", |client| {
                let create = WatchCreateRequest {
                    key: full.clone().into_bytes(),
                    range_end: prefix_end(full.as_bytes()),
                    start_revision: start,
                    ..WatchCreateRequest::default()
                };
                async move { client.watch(create).await }
            })
            .await?;
        let (tx, rx) = mpsc::channel(1024);
        let store = self.clone();
        tokio::spawn(async move {
            // A member that hangs leaves a watch silent rather than broken: ask for progress
            // when the watch has been quiet, and give the watch up when even that gets no
            // answer, so that the replica watches again through a member that answers.
            let mut last_heard = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(WATCH_PROGRESS_EVERY);
            loop {
                let message = tokio::select! {
                    message = stream.message() => message,
                    _ = tick.tick() => {
                        if last_heard.elapsed() > WATCH_SILENCE_LIMIT {
                            let _ = tx
                                .send(Err(StoreError::Backend(
                                    "etcd: the watch's member stopped answering".to_owned(),
                                )))
                                .await;
                            return;
                        }
                        if last_heard.elapsed() >= WATCH_PROGRESS_EVERY {
                            let _ = stream.request_progress().await;
                        }
                        continue;
                    }
                };
                last_heard = tokio::time::Instant::now();
                let message = match message {
                    Ok(Some(message)) => message,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(backend(&e))).await;
                        return;
                    }
                };
                if message.compact_revision > 0 {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: after.saturating_add(1),
                            oldest: from_etcd(message.compact_revision),
                        }))
                        .await;
                    return;
                }
                if message.canceled {
                    let _ = tx
                        .send(Err(StoreError::Backend(format!(
                            "etcd cancelled the watch: {}",
                            message.cancel_reason
                        ))))
                        .await;
                    return;
                }
                for event in message.events {
                    let kind = event.r#type;
                    let Some(kv) = event.kv else { continue };
                    let key = match store.ours(&kv.key) {
                        Ok(key) => key,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let (kind, value) = match EventType::try_from(kind) {
                        Ok(EventType::Put) => (EventKind::Put, Some(kv.value)),
                        Ok(EventType::Delete) => (EventKind::Delete, None),
                        Err(_) => {
                            let _ = tx
                                .send(Err(StoreError::Backend(format!(
                                    "etcd sent a watch event of unknown type {kind}"
                                ))))
                                .await;
                            return;
                        }
                    };
                    let event = Event {
                        kind,
                        key,
                        value,
                        revision: from_etcd(kv.mod_revision),
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        // The watcher was dropped; the stream ends with this task.
                        return;
                    }
                }
            }
        });
        Ok(Watch { rx })
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        // The cheapest read that carries the header: count keys under a key that never exists.
        let key = format!("{}\u{0}revision", self.namespace);
        let (response, _) = self
            .members
            .call("revision", |client| {
                let request = RangeRequest {
                    key: key.clone().into_bytes(),
                    count_only: true,
                    ..RangeRequest::default()
                };
                async move { client.range(request).await }
            })
            .await?;
        response
            .header
            .map(|h| from_etcd(h.revision))
            .ok_or_else(|| StoreError::Backend("etcd answered without a header".to_owned()))
    }
}

/// tonic's refusal of an answer over the client's size limit.
fn too_large(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::OutOfRange && status.message().contains("too large")
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/podiam/a"), b"/podiam/b");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
