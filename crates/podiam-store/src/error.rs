use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A key or value breaks the store's limits.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A watch asked for history the store no longer keeps; list again and watch from there.
    #[error("revision {requested} is compacted; the oldest available is {oldest}")]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision that can still be watched from.
        oldest: u64,
    },
    /// The backend failed (disk, database, network).
    #[error("storage backend failure: {0}")]
    Backend(String),
    /// The stored data is not what the store wrote.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store is shut down.
    #[error("the store is closed")]
    Closed,
}
