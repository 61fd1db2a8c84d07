//! Quern's durable store: every queue and job record, payload and last
//! error, in an embedded LMDB environment, written by one thread that
//! commits many changes at once (group commit).
//!
//! The engine decides; the store remembers. It persists the engine's
//! [`Change`](quern_engine::Change)s in the order they were made and gives
//! them back at startup ([`Store::load`]), so that a restarted server has
//! the same queues, the same jobs in the same order and never reuses an
//! id. Payloads and errors are kept only here, not in the engine's memory:
//! [`Store::payloads`] reads them when jobs are handed out.
//!
//! It must not depend on the server, the network or an async runtime: it
//! uses `tokio::sync::watch` only as a wake-up signal, which works without
//! one. That keeps it testable with plain threads and a real LMDB in a
//! temporary directory.
//!
//! # Threads
//!
//! ```text
//!  connection tasks                              writer thread "quern-store"
//!  (under their shard's lock)
//!
//!  engine.take_changes ─► submit ──► pending batch ──(condvar)──► take the whole batch
//!                         │          (mutex; also the              │
//!                         │           unsynced overlay of          ▼
//!                         │           payloads and errors)     one LMDB write txn
//!                         │                                    (+ fsync if always)
//!                         ▼                                        │
//!  reply ◄── committed(ticket).await ◄── watch channel ◄── publish batch number
//!
//!  payloads / last_errors: overlay first, then one short read txn
//!  (never held across an .await)
//! ```
//!
//! Only the writer thread writes. A submission never waits for IO; a
//! connection that must not reply before its change is durable (fsync
//! always) awaits [`Store::committed`] for its ticket. Every submission
//! that arrives while a commit waits for the disk joins the next commit,
//! so concurrent writers share one fsync.
//!
//! # Durability
//!
//! - [`Fsync::Always`]: each commit is synced before its ticket resolves.
//! - [`Fsync::EverySec`]: LMDB's `NO_SYNC`; the writer syncs at most once a
//!   second while there are unsynced commits.
//! - [`Fsync::No`]: `NO_SYNC`; synced at shutdown only.
//!
//! A commit that fails (disk full, ...) is kept and retried after a pause
//! that grows from 100 ms to 5 s; its changes are never dropped and never
//! reported committed, and the error shows in [`StoreStats::last_error`].
//!
//! # On disk
//!
//! Format version 1, described in the `format` module, checked before
//! anything else is opened: data of another version is refused, untouched.

mod error;
mod format;
mod store;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use store::{Fsync, LoadedIds, Store, StoreConfig, StoreStats, Ticket, DEFAULT_MAP_SIZE};
