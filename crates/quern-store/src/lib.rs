//! Quern's durable store: every queue and job record, payload and last
//! error. A change becomes durable in a write-ahead log, flushed once for
//! many changes at a time (group commit), and is then kept in an embedded
//! LMDB environment, which takes the log's records in larger batches.
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
//!  connection tasks                 logger thread "quern-log"      applier thread "quern-store"
//!  (under their shard's lock)
//!
//!  engine.take_changes ─► submit ─► pending batch ─(condvar)─► take the whole batch
//!                         │         (mutex; also the           │
//!                         │          overlay of payloads       ▼
//!                         │          and errors)           append one record to the log
//!                         │                                (+ one flush if fsync always)
//!                         │                                    │
//!                         │                                    ├─ hand over ──► gather ≤ 50 ms
//!                         ▼                                    │                one LMDB write txn
//!  reply ◄── committed(ticket).await ◄── watch channel ◄── publish batch number   (synced if always)
//!                                                                              drop from the overlay
//!
//!  payloads / last_errors: overlay first, then one short LMDB read txn
//!  (never held across an .await)
//! ```
//!
//! A submission never waits for IO; a connection that must not reply
//! before its change is durable (fsync always) awaits [`Store::committed`]
//! for its ticket. Every submission that arrives while the log is being
//! flushed joins the next record, so concurrent writers share one flush.
//! Only the logger writes the log and only the applier writes LMDB; each
//! LMDB commit records the last log record it holds, in the same
//! transaction, and opening the store puts whatever the log holds beyond
//! that into LMDB first (see the `wal` module).
//!
//! # Durability
//!
//! - [`Fsync::Always`]: each log record is flushed before its ticket
//!   resolves; each LMDB commit is synced too, so LMDB is whole after a
//!   power cut and the log fills in what it missed.
//! - [`Fsync::EverySec`]: the log is flushed, and LMDB (`NO_SYNC`) synced,
//!   at most once a second while there is something to flush.
//! - [`Fsync::No`]: neither is flushed but at shutdown, or when a log file
//!   is about to be written over (LMDB is synced first).
//!
//! A write that fails (disk full, map full, ...) is kept and retried after
//! a pause that grows from 100 ms to 5 s; its changes are never dropped,
//! and the error shows in [`StoreStats::last_error`]. A change the log
//! holds is durable even while LMDB refuses it: it stays readable from
//! memory and goes into LMDB when it can, at the latest on the next start.
//!
//! # On disk
//!
//! Format version 1, described in the `format` module, checked before
//! anything else is opened: data of another version is refused, untouched.
//! The log's own layout is in the `wal` module.

mod backup;
mod error;
mod format;
mod observer;
mod overlay;
mod store;
mod wal;
mod writer;

#[cfg(test)]
mod tests;

pub use backup::{Backup, BACKUP_FILE};
pub use error::StoreError;
pub use observer::StoreObserver;
pub use store::{Fsync, LoadedIds, Store, StoreConfig, StoreStats, Ticket, DEFAULT_MAP_SIZE};
