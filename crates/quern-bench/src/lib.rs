//! `quern-bench`: a load generator that speaks RESP2 to Quern, and runs the
//! same job-queue workloads on Redis (lists with a processing list, and
//! streams with a consumer group), so that each server is measured by the
//! same client, in the same way, on the same machine.
//!
//! It must not depend on Quern's own crates: it measures the server from
//! the outside, over TCP, as any client sees it.
//!
//! ```text
//!  run() ── flush, create groups, preload (4 connections, depth 256)
//!    │
//!    ├── one task per connection, all on the caller's tokio runtime:
//!    │     encode up to --pipeline requests → one write → read replies in
//!    │     order → record latencies in the task's own histogram → repeat
//!    │
//!    └── phase: warmup ──(--warmup)──▶ measure ──(--duration)──▶ stop
//!          tasks read it per reply; on stop they send nothing new and
//!          drain what is in flight; histograms are merged at the end
//! ```

pub mod conn;
pub mod cpu;
pub mod floor;
pub mod resp;
pub mod run;
pub mod workload;

use std::fmt;
use std::io;

pub use run::{run, Config, Report};
pub use workload::{Target, Workload};

/// Why a run could not be carried out. Error replies during the load are
/// not errors of this kind: they are counted in the [`Report`].
#[derive(Debug)]
pub enum Error {
    /// The settings make no sense together.
    Config(String),
    /// Connecting, flushing, creating groups or preloading failed.
    Setup(String),
    /// A socket failed or the server closed it.
    Io(io::Error),
    /// The server sent bytes that are not RESP2, or a reply of a shape
    /// the command never answers with.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => write!(f, "bad settings: {msg}"),
            Error::Setup(msg) => write!(f, "{msg}"),
            Error::Io(e) => write!(f, "connection failed: {e}"),
            Error::Protocol(msg) => write!(f, "protocol error: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<resp::ProtocolError> for Error {
    fn from(e: resp::ProtocolError) -> Error {
        Error::Protocol(e.0)
    }
}
