//! A hook for metrics: the store tells an observer how long each write
//! took and how many changes it held.
//!
//! The store keeps running totals for INFO ([`crate::StoreStats`]), but a
//! latency distribution belongs to whoever exports it: the server names
//! its metrics and chooses their buckets, and the store stays free of any
//! metrics library. Without an observer the threads only skip a call.

use std::fmt;
use std::time::Duration;

/// Told of every write the store's threads make.
///
/// Called on those threads right after each write, so an implementation
/// must be quick and must never block (record into a histogram, bump a
/// counter): the logger calls it between two group commits.
pub trait StoreObserver: fmt::Debug + Send + Sync {
    /// The logger appended one record of `changes` changes to the
    /// write-ahead log; `took` includes its flush with fsync always. This
    /// is the commit that replies wait for.
    fn committed(&self, changes: usize, took: Duration);

    /// The applier put `changes` changes into LMDB in one transaction
    /// (synced with fsync always), which took `took`.
    fn checkpointed(&self, changes: usize, took: Duration);
}
