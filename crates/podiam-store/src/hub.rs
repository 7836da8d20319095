//! Recent history and live fan-out of changes, shared by the local backends.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::{Event, Revision, StoreError, Watch};

/// How many commits of history are kept for watches that start in the past.
const HISTORY: usize = 4096;

/// Buffered events per watcher before it is told to re-list.
const WATCH_BUFFER: usize = 4096;

/// One commit's events, shared by the history and the live channel: the channel keeps its last
/// [`WATCH_BUFFER`] messages as well, and two copies of every recent value cost about 12 MB
/// after a bulk load (BENCHMARKS.md, "Store scale").
type Commit = (Revision, Arc<[Event]>);

#[derive(Debug)]
pub(crate) struct Hub {
    /// Recent commits, oldest first.
    log: VecDeque<Commit>,
    /// Every commit after this revision is in `log`.
    floor: Revision,
    live: broadcast::Sender<Commit>,
}

impl Hub {
    /// A hub for a store whose history starts at `revision`.
    pub(crate) fn new(revision: Revision) -> Self {
        let (live, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            log: VecDeque::new(),
            floor: revision,
            live,
        }
    }

    /// Records a commit. Call with the store's write lock held, after the commit is durable.
    pub(crate) fn publish(&mut self, revision: Revision, events: Vec<Event>) {
        if self.log.len() == HISTORY
            && let Some((oldest, _)) = self.log.pop_front()
        {
            self.floor = oldest;
        }
        let events: Arc<[Event]> = events.into();
        self.log.push_back((revision, Arc::clone(&events)));
        let _ = self.live.send((revision, events));
    }

    /// Starts a watch. Call with the store's write lock held, so no commit falls in between
    /// the replay and the subscription.
    pub(crate) fn watch(&self, prefix: &str, after: Revision) -> Result<Watch, StoreError> {
        if after < self.floor {
            return Err(StoreError::Compacted {
                requested: after,
                oldest: self.floor,
            });
        }
        let matches = {
            let prefix = prefix.to_owned();
            move |event: &Event| event.key.starts_with(&prefix) && event.revision > after
        };
        let replay: Vec<Event> = self
            .log
            .iter()
            .flat_map(|(_, events)| events.iter())
            .filter(|e| matches(e))
            .cloned()
            .collect();
        let mut live = self.live.subscribe();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let floor = self.floor;
        tokio::spawn(async move {
            for event in replay {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            loop {
                match live.recv().await {
                    Ok((_, events)) => {
                        for event in events.iter().filter(|e| matches(e)) {
                            if tx.send(Ok(event.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx
                            .send(Err(StoreError::Compacted {
                                requested: after,
                                oldest: floor,
                            }))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Watch { rx })
    }
}
