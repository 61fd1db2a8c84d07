//! Quern's queue engine: the state of every queue, as plain data.
//!
//! This crate owns what a job queue *means*: which job is pulled next, what
//! a lease, a retry, a dead job is, and when deadlines fire. It does no IO,
//! reads no clock and starts no thread: every operation takes `now` and
//! leaves behind
//!
//! - the [`Change`]s the store must persist, in order
//!   ([`Engine::take_changes`]), and
//! - the [`Delivery`]s to blocked pullers that an operation served
//!   ([`Engine::take_deliveries`]).
//!
//! It must not depend on the store, the network, a runtime or the wall
//! clock, so that it can be driven deterministically in tests.
//!
//! # A job's life
//!
//! ```text
//!  QPUSH ──► waiting ──QPULL──► active ──QACK──► (deleted)
//!    │          ▲                 │  │
//!    │ DELAY/AT │ due             │  └─ QFAIL / lease runs out ─┐
//!    └──────► delayed ◄─ backoff ─┘                             │
//!                                  attempts left? no ──► dead ◄─┘ FATAL
//!                                                         │
//!                                   QDLQ REQUEUE ─► waiting / PURGE ─► deleted
//! ```
//!
//! Timestamps, all wall-clock ms since the Unix epoch so they survive a
//! restart: `created_at` is the push; `deadline` is when a delayed job
//! becomes ready or when an active job's lease runs out. `attempt` is the
//! number of the current (or last) delivery: 1 on the first.
//!
//! # Memory
//!
//! Payloads and errors never enter the engine's memory: they go to the
//! store with the [`Change`] that created them. A waiting job costs its
//! entry in the job table plus 8 bytes in its queue's ready index.
//!
//! An [`Engine`] is one shard: the server runs several, each behind its
//! own lock, with queues spread over them by name, and one shared [`Ids`].

mod backoff;
mod engine;
mod queue;
mod ready;
mod runs;
mod specs;
mod types;

pub use backoff::{retry_delay, MAX_BACKOFF_MS};
pub use engine::{
    Delivery, Engine, EngineError, FailMode, FailOptions, Ids, Pulled, PushOptions, QueueStats, WaiterToken,
    BULK_DELETE_ABOVE,
};
pub use types::{
    Change, Counters, JobId, JobRecord, JobSpec, Millis, QueueId, QueueRecord, State, MAX_JOB_ID,
};
