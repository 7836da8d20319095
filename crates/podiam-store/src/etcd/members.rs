//! Failover across etcd members, inside the store.
//!
//! A client that balances over all endpoints (etcd-client's, with tonic's balance channel)
//! sends requests to a member whose connection has failed and returns that member's `tcp
//! connect error` to the caller: with one member of three down, about a third of the calls
//! fail, and a replica cannot even start. A member that hangs costs every call routed to it
//! the full timeout.
//!
//! Here each member has its own client, calls go to the member that answered last, and a call
//! that fails in a way another member (or a moment later, the same cluster) could answer is
//! tried again on the next member until the call's deadline: refused and hung connections,
//! "no leader" during an election, "leader changed", etcd's own request timeout. A member that
//! failed is skipped: no call goes to it while a background probe asks it, at 0.5 s doubling
//! to 8 s, until it answers (only when every member is skipped does a call try the one whose
//! next probe is nearest), so a hung member costs one call its try, not one call per probe.
//! Errors that no other member would answer differently (a bad argument, a permission) are
//! returned at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Status};

use super::client::{ConnectOptions, MemberClient};
use super::proto::etcdserverpb::RangeRequest;
use crate::StoreError;

/// The first pause of a member's circuit; it doubles with each failure in a row.
const CIRCUIT_FIRST: Duration = Duration::from_millis(500);
/// The longest pause.
const CIRCUIT_MAX: Duration = Duration::from_secs(8);
/// The pause after every member has failed once in a call (an election in progress).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How a failed try is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Another member, or the same cluster later, may answer: try again. `delivered` is false
    /// only when the request certainly did not reach etcd (the connection was refused).
    Retry { delivered: bool },
    /// No retry would answer differently.
    Final,
}

/// Sorts a failed call's status.
pub(crate) fn classify(status: &Status) -> Failure {
    match status.code() {
        // Connection failures surface as Unavailable with the transport's message.
        Code::Unavailable => Failure::Retry {
            delivered: !is_connect_failure(status.message()),
        },
        Code::DeadlineExceeded | Code::Cancelled | Code::Unknown | Code::Internal => {
            Failure::Retry { delivered: true }
        }
        _ => Failure::Final,
    }
}

/// A failure before the request reached etcd's state machine: the connection was refused,
/// or the member has no leader (with `require_leader`, it refuses before proposing).
fn is_connect_failure(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("connect error")
        || message.contains("connection refused")
        || message.contains("no leader")
}

/// One etcd member: its client (which connects on first use, so that a replica starts while
/// the member is down) and its health.
struct Member {
    endpoint: String,
    client: MemberClient,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    failures: u32,
    down_until: Option<Instant>,
    /// A background probe owns the member until it answers.
    probing: bool,
}

impl Member {
    fn is_open(&self, now: Instant) -> bool {
        let health = self.health();
        health.probing || health.down_until.is_some_and(|until| until > now)
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, now: Instant) {
        let mut health = self.health();
        let factor = 1u32 << health.failures.min(4);
        health.failures = health.failures.saturating_add(1);
        health.down_until = Some(now + (CIRCUIT_FIRST * factor).min(CIRCUIT_MAX));
    }

    fn answered(&self) {
        let mut health = self.health();
        health.failures = 0;
        health.down_until = None;
        health.probing = false;
    }

    /// Marks the member as probed; false when a probe already runs.
    fn start_probing(&self) -> bool {
        let mut health = self.health();
        !std::mem::replace(&mut health.probing, true)
    }
}

/// The members of one etcd cluster, with the failover policy.
pub(crate) struct Members {
    members: Vec<Member>,
    preferred: AtomicUsize,
    /// A call's whole budget, retries included.
    deadline: Duration,
    /// One try's budget (a hung member costs at most this).
    attempt: Duration,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field(
                "endpoints",
                &self.members.iter().map(|m| &m.endpoint).collect::<Vec<_>>(),
            )
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What a call reports back besides its value: whether an earlier try may have been applied.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tries {
    /// A try before the one that answered may have reached etcd (a write may have committed).
    pub(crate) ambiguous: bool,
}

impl Members {
    pub(crate) fn new(
        endpoints: &[String],
        options: &ConnectOptions,
        deadline: Duration,
        attempt: Duration,
    ) -> Result<Self, StoreError> {
        let members = endpoints
            .iter()
            .map(|endpoint| {
                Ok(Member {
                    endpoint: endpoint.clone(),
                    client: MemberClient::new(endpoint, options)?,
                    health: Mutex::new(Health::default()),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            members,
            preferred: AtomicUsize::new(0),
            deadline,
            attempt,
        })
    }

    /// The member to try next: the preferred one, or the next whose circuit is closed; when
    /// every circuit is open, the one that reopens first.
    fn pick(&self, tried_last: Option<usize>, now: Instant) -> usize {
        let count = self.members.len();
        let start = match tried_last {
            Some(last) => last + 1,
            None => self.preferred.load(Ordering::Relaxed),
        };
        (0..count)
            .map(|step| (start + step) % count)
            .find(|&i| self.members.get(i).is_some_and(|m| !m.is_open(now)))
            .unwrap_or_else(|| {
                (0..count)
                    .min_by_key(|&i| {
                        self.members
                            .get(i)
                            .and_then(|m| m.health().down_until)
                            .unwrap_or(now)
                    })
                    .unwrap_or(0)
            })
    }

    /// Runs `op` against the members until one answers or the deadline passes.
    pub(crate) async fn call<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        mut op: F,
    ) -> Result<(T, Tries), StoreError>
    where
        F: FnMut(MemberClient) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut tries = Tries::default();
        let mut last: Option<usize> = None;
        let mut made = 0usize;
        loop {
            let now = Instant::now();
            let index = self.pick(last, now);
            let Some(member) = self.members.get(index) else {
                return Err(StoreError::Backend("etcd: no endpoint".to_owned()));
            };
            let budget = self.attempt.min(deadline.saturating_duration_since(now));
            let attempt = op(member.client.clone());
            let (failure, last_error) = match tokio::time::timeout(budget, attempt).await {
                Ok(Ok(value)) => {
                    member.answered();
                    self.preferred.store(index, Ordering::Relaxed);
                    if last.is_some() {
                        tracing::debug!(
                            what,
                            endpoint = member.endpoint,
                            waited_ms = started.elapsed().as_millis(),
                            "etcd answered after a failover"
                        );
                    }
                    return Ok((value, tries));
                }
                Ok(Err(e)) => (classify(&e), format!("{}: {e}", member.endpoint)),
                Err(_) => (
                    Failure::Retry { delivered: true },
                    format!("{}: no answer within {budget:?}", member.endpoint),
                ),
            };
            match failure {
                Failure::Final => {
                    return Err(StoreError::Backend(format!("etcd: {last_error}")));
                }
                Failure::Retry { delivered } => {
                    tries.ambiguous |= delivered;
                    member.failed(Instant::now());
                    if member.start_probing() {
                        tokio::spawn(probe(Arc::downgrade(self), index));
                    }
                    tracing::debug!(what, error = last_error, "etcd try failed; trying again");
                }
            }
            last = Some(index);
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(what, error = last_error, "etcd did not answer in time");
                return Err(StoreError::Backend(format!(
                    "etcd did not answer within {:?} ({last_error})",
                    self.deadline
                )));
            }
            // Once every member has been tried, the cluster as a whole is not answering (an
            // election): pause briefly rather than spinning through the members.
            made += 1;
            if made.is_multiple_of(self.members.len().max(1)) && now + RETRY_PAUSE < deadline {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Asks member `index` for the cluster's revision after each pause of its circuit, until it
/// answers; then calls go to it again.
async fn probe(members: Weak<Members>, index: usize) {
    loop {
        let pause = {
            let Some(members) = members.upgrade() else {
                return;
            };
            let Some(member) = members.members.get(index) else {
                return;
            };
            member.health().down_until.map_or(CIRCUIT_FIRST, |until| {
                until.saturating_duration_since(Instant::now())
            })
        };
        tokio::time::sleep(pause).await;
        let Some(members) = members.upgrade() else {
            return;
        };
        let Some(member) = members.members.get(index) else {
            return;
        };
        let asked = member.client.range(RangeRequest {
            key: b"\0probe".to_vec(),
            count_only: true,
            ..RangeRequest::default()
        });
        // Any answer that is not a failure of the member (a permission error for a key
        // outside a restricted user's namespace, say) shows it serves again.
        let answers = match tokio::time::timeout(members.attempt, asked).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => classify(&e) == Failure::Final,
            Err(_) => false,
        };
        if answers {
            tracing::info!(endpoint = member.endpoint, "an etcd member answers again");
            member.answered();
            return;
        }
        member.failed(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Members {
        let endpoints: Vec<String> = (0..n).map(|i| format!("http://127.0.0.1:{i}")).collect();
        let options = ConnectOptions {
            connect_timeout: Duration::from_secs(1),
            ..ConnectOptions::default()
        };
        Members::new(
            &endpoints,
            &options,
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(start_paused = true)]
    async fn failed_members_are_skipped_until_their_circuit_closes() {
        let m = members(3);
        let now = Instant::now();
        assert_eq!(m.pick(None, now), 0);
        m.members[0].failed(now);
        assert_eq!(m.pick(None, now), 1, "member 0 is skipped");
        assert_eq!(m.pick(Some(1), now), 2);
        assert_eq!(m.pick(Some(2), now), 1, "wraps past the open member");
        assert_eq!(m.pick(None, now + CIRCUIT_FIRST), 0, "probed again after");
        m.members[0].answered();
        assert_eq!(m.pick(None, now), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_circuit_open_the_first_to_reopen_is_tried() {
        let m = members(3);
        let now = Instant::now();
        m.members[1].failed(now);
        m.members[2].failed(now);
        m.members[2].answered();
        m.members[2].failed(now);
        m.members[0].failed(now);
        m.members[0].failed(now);
        // 0 has failed twice (1 s), 1 and 2 once (0.5 s): 1 is the first of those to reopen.
        assert_eq!(m.pick(None, now), 1);
    }

    #[tokio::test]
    async fn circuits_grow_to_a_cap() {
        let m = members(1);
        let now = Instant::now();
        for _ in 0..10 {
            m.members[0].failed(now);
        }
        let until = m.members[0].health().down_until;
        assert_eq!(until, Some(now + CIRCUIT_MAX));
    }

    #[test]
    fn errors_are_sorted() {
        let status = |code, message: &str| Status::new(code, message);
        assert_eq!(
            classify(&status(Code::Unavailable, "tcp connect error")),
            Failure::Retry { delivered: false }
        );
        assert_eq!(
            classify(&status(Code::Unavailable, "etcdserver: leader changed")),
            Failure::Retry { delivered: true }
        );
        assert_eq!(
            classify(&status(Code::Unavailable, "etcdserver: no leader")),
            Failure::Retry { delivered: false }
        );
        assert_eq!(
            classify(&status(
                Code::InvalidArgument,
                "etcdserver: key is not provided"
            )),
            Failure::Final
        );
        assert_eq!(
            classify(&status(
                Code::PermissionDenied,
                "etcdserver: permission denied"
            )),
            Failure::Final
        );
    }
}
