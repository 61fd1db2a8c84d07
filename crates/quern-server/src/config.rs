//! The server's settings and limits.
//!
//! [`Config`] is what the server starts with. The settings CONFIG SET may
//! change while it runs live in [`Settings`], read on every use. The
//! bounds of the numeric settings are [`Bounds`] constants, so that
//! start-up, the binary's settings loader and CONFIG SET agree on them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
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

/// The inclusive bounds of a numeric setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The setting's name, as flags, the config file and CONFIG spell it.
    pub name: &'static str,
    /// Smallest accepted value.
    pub min: usize,
    /// Largest accepted value.
    pub max: usize,
}

impl Bounds {
    /// `value` if it is within the bounds; otherwise a message naming the
    /// setting and its bounds.
    pub fn check(&self, value: usize) -> Result<usize, String> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{} must be between {} and {}, not {value}",
                self.name, self.min, self.max
            ))
        }
    }
}

/// Bounds of maxclients.
pub const MAXCLIENTS_BOUNDS: Bounds = Bounds {
    name: "maxclients",
    min: 1,
    max: 1_000_000,
};
/// Bounds of max-payload.
pub const MAX_PAYLOAD_BOUNDS: Bounds = Bounds {
    name: "max-payload",
    min: 1,
    max: MAX_PAYLOAD_CEILING,
};
/// Bounds of max-batch.
pub const MAX_BATCH_BOUNDS: Bounds = Bounds {
    name: "max-batch",
    min: 1,
    max: 1_000_000,
};
/// Bounds of shards: each shard is a lock and a timer task, so thousands
/// buy nothing but overhead.
pub const SHARDS_BOUNDS: Bounds = Bounds {
    name: "shards",
    min: 1,
    max: 4096,
};

/// Default HTTP address (/metrics, /health, /ready): loopback only, since
/// the endpoints ask for no password.
pub const DEFAULT_HTTP: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8379);
/// The `http` setting's value that turns the listener off.
pub const HTTP_OFF: &str = "off";

/// Parses the `http` setting: `ADDR:PORT` (port 0 picks a free one), or
/// `off` for no HTTP listener.
pub fn parse_http(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.eq_ignore_ascii_case(HTTP_OFF) {
        return Ok(None);
    }
    text.parse::<SocketAddr>()
        .map(Some)
        .map_err(|_| format!("expected ADDR:PORT, such as 127.0.0.1:8379 or [::1]:8379, or {HTTP_OFF}"))
}

/// The `http` setting as [`parse_http`] reads it.
pub fn show_http(http: Option<SocketAddr>) -> String {
    http.map_or_else(|| HTTP_OFF.to_owned(), |addr| addr.to_string())
}

/// Default number of queues with a metrics label of their own.
pub const DEFAULT_METRICS_MAX_QUEUES: usize = 100;
/// Bounds of metrics-max-queues: each labelled queue is a dozen series
/// for Prometheus to keep; 0 puts every queue under `_other`.
pub const METRICS_MAX_QUEUES_BOUNDS: Bounds = Bounds {
    name: "metrics-max-queues",
    min: 0,
    max: 10_000,
};

/// How log lines are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event. The default.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The format's name as settings spell it.
    pub fn name(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LogFormat {
    /// A message naming the accepted values.
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        [LogFormat::Text, LogFormat::Json]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown log format '{s}' (expected text or json)"))
    }
}

/// The default log filter: the server's own events at info and above.
pub const DEFAULT_LOG_LEVEL: &str = "info";

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
    /// How log lines are printed. The binary installs the logger; the
    /// server keeps the setting only so that CONFIG GET can report it.
    pub log_format: LogFormat,
    /// Which events are logged, as a `tracing` filter directive
    /// (`info`, `info,quern_store=debug`). Kept for CONFIG GET, as above.
    pub log_level: String,
    /// Where the HTTP listener (/metrics, /health, /ready) listens; `None`
    /// turns it, and the metrics recorder, off.
    pub http: Option<SocketAddr>,
    /// Queues with a `queue` label of their own in the metrics; the rest
    /// are summed under `queue="_other"`.
    pub metrics_max_queues: usize,
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
            log_format: LogFormat::default(),
            log_level: DEFAULT_LOG_LEVEL.to_owned(),
            http: Some(DEFAULT_HTTP),
            metrics_max_queues: DEFAULT_METRICS_MAX_QUEUES,
        }
    }
}

/// A setting whose value is out of bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The setting's name.
    pub name: &'static str,
    /// Why the value is refused; names the setting and its bounds.
    pub why: String,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl std::error::Error for InvalidSetting {}

impl Config {
    /// Checks the values against their bounds; the first one out of
    /// bounds is named in the error.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let numbers = [
            (MAXCLIENTS_BOUNDS, self.maxclients),
            (MAX_PAYLOAD_BOUNDS, self.max_payload),
            (MAX_BATCH_BOUNDS, self.max_batch),
            (SHARDS_BOUNDS, self.shards),
            (METRICS_MAX_QUEUES_BOUNDS, self.metrics_max_queues),
        ];
        for (bounds, value) in numbers {
            bounds.check(value).map_err(|why| InvalidSetting {
                name: bounds.name,
                why,
            })?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_first_setting_out_of_bounds() {
        assert_eq!(Config::default().validate(), Ok(()));
        let config = Config {
            max_batch: 0,
            shards: 5000,
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.name, "max-batch");
        assert_eq!(err.to_string(), "max-batch must be between 1 and 1000000, not 0");
    }

    #[test]
    fn http_is_an_address_or_off() {
        assert_eq!(parse_http("127.0.0.1:8379"), Ok(Some(DEFAULT_HTTP)));
        assert_eq!(parse_http("OFF"), Ok(None));
        assert_eq!(
            parse_http("[::1]:0").map(|a| a.map(|a| a.to_string())),
            Ok(Some("[::1]:0".to_owned()))
        );
        assert!(parse_http("8379").unwrap_err().contains("ADDR:PORT"));
        assert!(parse_http("localhost:8379").is_err());
        assert_eq!(show_http(None), "off");
        assert_eq!(show_http(Some(DEFAULT_HTTP)), "127.0.0.1:8379");
    }

    #[test]
    fn bounds_include_both_ends() {
        assert_eq!(SHARDS_BOUNDS.check(1), Ok(1));
        assert_eq!(SHARDS_BOUNDS.check(4096), Ok(4096));
        assert!(SHARDS_BOUNDS.check(0).is_err());
        assert!(SHARDS_BOUNDS.check(4097).is_err());
        assert_eq!(MAX_PAYLOAD_BOUNDS.max, MAX_PAYLOAD_CEILING);
    }

    #[test]
    fn log_formats_parse_by_name_in_any_case() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("TEXT".parse(), Ok(LogFormat::Text));
        assert_eq!(LogFormat::Json.to_string(), "json");
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("text or json"));
    }
}
