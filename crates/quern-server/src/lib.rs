//! Quern's server: the Redis protocol in front of the queue engine.
//!
//! This crate turns requests into engine operations and store commits,
//! and replies into RESP. It owns the network, the runtime and the clock;
//! queue semantics belong to `quern-engine` and durability to
//! `quern-store`. It must not depend on how the binary is configured
//! (flags, environment): it takes a [`Config`].
//!
//! ```text
//!   tokio runtime (worker threads)                       store thread
//!  ┌────────────────────────────────────────────┐      ┌──────────────┐
//!  │ accept ─► connection task (one per client) │      │              │
//!  │            read ─► parse ─► command        │      │  group       │
//!  │                     │ lock shard i        │      │  commit:     │
//!  │                     ▼                     │submit│  one LMDB    │
//!  │   shard 0..N: Mutex<Engine> ──changes─────┼─────►│  txn per     │
//!  │       │ hand-off           ▲              │      │  batch       │
//!  │       ▼                    │ tick         │◄─────┤  committed # │
//!  │   blocked pullers    timer task per shard │ watch│              │
//!  │            write replies after commit     │      └──────────────┘
//!  └────────────────────────────────────────────┘
//! ```
//!
//! A command holds one shard's lock for its engine step only, never across
//! an await. Payloads are read from the store (or its not-yet-committed
//! overlay) outside the lock.

mod backups;
mod blocking;
mod clients;
mod commands;
mod config;
mod connection;
mod dashboard;
mod error;
mod glob;
mod http;
mod inspect;
mod lifecycle;
mod metrics;
mod password;
// Public only for the benchmarks in benches/resp.rs: not part of the
// crate's API, and free to change with the protocol code.
#[doc(hidden)]
pub mod resp;
mod server;
mod shards;
mod stats;

pub use config::{
    parse_http, show_http, Bounds, Config, InvalidSetting, LogFormat, DEFAULT_HTTP, DEFAULT_LOG_LEVEL,
    DEFAULT_MAX_BATCH, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PAYLOAD, DEFAULT_METRICS_MAX_QUEUES, DEFAULT_SHARDS,
    MAXCLIENTS_BOUNDS, MAX_BATCH_BOUNDS, MAX_PAYLOAD_BOUNDS, METRICS_MAX_QUEUES_BOUNDS, SHARDS_BOUNDS,
};
pub use http::{router, HttpState, Loaded};
pub use lifecycle::{Lifecycle, Readiness};
pub use quern_store::Fsync;
pub use server::{bind, start, Bound, Server, StartError, Starting};
