//! The server's settings and limits.
//!
//! [`Config`] is what the server starts with. The settings CONFIG SET may
//! change while it runs live in [`Settings`], read on every use.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use quern_store::Fsync;

use crate::resp::RequestLimits;

/// Default largest payload: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;
/// Default most jobs in one QMPUSH, or pulled by one COUNT.
pub const DEFAULT_MAX_BATCH: usize = 10_000;
/// Default most client connections at once.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default number of engine shards (each with its own lock).
pub const DEFAULT_SHARDS: usize = 16;
/// Hard ceiling on max-payload: a request must fit in memory many times.
pub const MAX_PAYLOAD_CEILING: usize = 512 << 20;
/// Longest request, all arguments together (a QMPUSH of many payloads).
pub const MAX_REQUEST_BYTES: usize = 1 << 30;
/// Longest inline command line, as in Redis.
pub const MAX_INLINE_BYTES: usize = 64 << 10;
/// Arguments a request may carry beyond max-batch payloads, for the
/// command name, queue and options.
pub const EXTRA_ARGS: usize = 64;
/// Queue names are 1 to this many bytes.
pub const MAX_QUEUE_NAME: usize = 200;
/// Replies are written once this much is buffered, even mid-pipeline.
pub const OUTPUT_FLUSH_BYTES: usize = 64 << 10;
/// With fsync everysec or no, a connection waits for the store once this
/// many changes are waiting to be written, so a fast client cannot grow
/// the store's queue without bound.
pub const MAX_STORE_BACKLOG: usize = 200_000;

/// What the server starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on.
    pub bind: IpAddr,
    /// RESP port (0 picks a free one).
    pub port: u16,
    /// Data directory (the LMDB environment).
    pub dir: PathBuf,
    /// When commits reach the disk.
    pub fsync: Fsync,
    /// Password clients must give; none when `None`.
    pub requirepass: Option<String>,
    /// Most client connections at once.
    pub maxclients: usize,
    /// Largest payload, in bytes.
    pub max_payload: usize,
    /// Most jobs in one QMPUSH, or pulled by one COUNT.
    pub max_batch: usize,
    /// Engine shards.
    pub shards: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 6379,
            dir: PathBuf::from("quern-data"),
            fsync: Fsync::Always,
            requirepass: None,
            maxclients: DEFAULT_MAX_CLIENTS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_batch: DEFAULT_MAX_BATCH,
            shards: DEFAULT_SHARDS,
        }
    }
}

impl Config {
    /// Checks the values against their bounds; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        check("maxclients", self.maxclients, 1, 1_000_000)?;
        check("max-payload", self.max_payload, 1, MAX_PAYLOAD_CEILING)?;
        check("max-batch", self.max_batch, 1, 1_000_000)?;
        check("shards", self.shards, 1, 4096)?;
        Ok(())
    }
}

/// Checks that setting `name` is within `[min, max]`.
pub fn check(name: &str, value: usize, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be between {min} and {max}, not {value}"))
    }
}

/// The settings that may change while the server runs (CONFIG SET).
#[derive(Debug)]
pub struct Settings {
    requirepass: RwLock<Option<String>>,
    maxclients: AtomicUsize,
    max_payload: AtomicUsize,
    max_batch: AtomicUsize,
}

impl Settings {
    /// The live settings, starting from `config`.
    pub fn new(config: &Config) -> Settings {
        Settings {
            requirepass: RwLock::new(config.requirepass.clone()),
            maxclients: AtomicUsize::new(config.maxclients),
            max_payload: AtomicUsize::new(config.max_payload),
            max_batch: AtomicUsize::new(config.max_batch),
        }
    }

    /// The password, if one is required.
    pub fn requirepass(&self) -> Option<String> {
        self.requirepass.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the password; empty means none.
    pub fn set_requirepass(&self, value: &str) {
        let value = (!value.is_empty()).then(|| value.to_owned());
        *self.requirepass.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    /// Most client connections.
    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Ordering::Relaxed)
    }

    /// Largest payload.
    pub fn max_payload(&self) -> usize {
        self.max_payload.load(Ordering::Relaxed)
    }

    /// Most jobs per batch.
    pub fn max_batch(&self) -> usize {
        self.max_batch.load(Ordering::Relaxed)
    }

    /// Sets maxclients.
    pub fn set_maxclients(&self, v: usize) {
        self.maxclients.store(v, Ordering::Relaxed);
    }

    /// Sets max-payload.
    pub fn set_max_payload(&self, v: usize) {
        self.max_payload.store(v, Ordering::Relaxed);
    }

    /// Sets max-batch.
    pub fn set_max_batch(&self, v: usize) {
        self.max_batch.store(v, Ordering::Relaxed);
    }

    /// The request limits these settings imply. A bulk string may be as
    /// long as a payload (and at least 64 KiB, so that error messages and
    /// other arguments always fit).
    pub fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            max_bulk: self.max_payload().max(64 << 10),
            max_args: self.max_batch() + EXTRA_ARGS,
            max_request: MAX_REQUEST_BYTES,
            max_inline: MAX_INLINE_BYTES,
        }
    }
}
