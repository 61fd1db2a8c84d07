//! Every metric the server exports: the names, their help text, their
//! histogram buckets, and the scrape that fills them. docs/metrics.md
//! documents each one; docs/grafana-dashboard.json draws them.
//!
//! Counters and gauges go through `metrics-exporter-prometheus`'s
//! recorder, installed once per process when the HTTP listener is on,
//! without the exporter's own HTTP listener: `/metrics` renders it on
//! request ([`render`]). With the listener off nothing is installed.
//!
//! What the request path costs is kept small on purpose:
//!
//! - Counters that already exist as atomics (per command in
//!   [`crate::stats`], per queue in the engine, the store's totals) are
//!   copied into the recorder at scrape time: not counted twice, and
//!   never looked up by name on the request path.
//! - The histograms that see every event (a command's run time, a job's
//!   push-to-ack time, a commit's duration and size) are fixed buckets of
//!   atomics ([`histogram`]), kept per command row, per queue and per
//!   store, and rendered at scrape time.
//! - Queue labels are bounded: see [`queues`].

pub mod histogram;
mod queues;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use quern_store::StoreObserver;

use crate::server::Server;
use histogram::{Family, Histogram};

pub use queues::QueueMetrics;

// ----- names ---------------------------------------------------------------

/// Gauge: clients connected now.
pub const CONNECTIONS: &str = "quern_connections";
/// Counter: connections accepted since start.
pub const CONNECTIONS_ACCEPTED: &str = "quern_connections_accepted_total";
/// Counter: connections refused because `maxclients` were connected.
pub const CONNECTIONS_REJECTED: &str = "quern_connections_rejected_total";
/// Gauge: connections waiting in a blocking pull.
pub const BLOCKED_CLIENTS: &str = "quern_blocked_clients";
/// Counter, label `command`: commands run.
pub const COMMANDS: &str = "quern_commands_total";
/// Counter, labels `command` and `kind` (`rejected`: refused before
/// running; `failed`: ran and replied with an error).
pub const COMMAND_ERRORS: &str = "quern_command_errors_total";
/// Histogram, label `command`: time to run a command, without the wait
/// for its commit or in a blocking pull.
pub const COMMAND_DURATION: &str = "quern_command_duration_seconds";
/// Counter: bytes read from clients.
pub const NET_INPUT: &str = "quern_net_input_bytes_total";
/// Counter: bytes written to clients.
pub const NET_OUTPUT: &str = "quern_net_output_bytes_total";
/// Gauge: seconds since the server started serving.
pub const UPTIME: &str = "quern_uptime_seconds";

/// Counter: records written to the write-ahead log (group commits).
pub const STORE_COMMITS: &str = "quern_store_commits_total";
/// Counter: changes committed, over all commits.
pub const STORE_CHANGES: &str = "quern_store_changes_total";
/// Histogram: time to append one record to the log, its flush included
/// with fsync always.
pub const STORE_COMMIT_DURATION: &str = "quern_store_commit_duration_seconds";
/// Histogram: changes per commit (the group-commit batch size).
pub const STORE_COMMIT_CHANGES: &str = "quern_store_commit_changes";
/// Counter: syncs to disk of the log and of LMDB.
pub const STORE_FSYNCS: &str = "quern_store_fsyncs_total";
/// Counter: batches the log held back for more writers to join (fsync
/// always), when many joined during a flush.
pub const STORE_GATHERS: &str = "quern_store_gathers_total";
/// Counter: LMDB transactions, each taking many log records.
pub const STORE_CHECKPOINTS: &str = "quern_store_checkpoints_total";
/// Histogram: time of one LMDB transaction.
pub const STORE_CHECKPOINT_DURATION: &str = "quern_store_checkpoint_duration_seconds";
/// Gauge: changes submitted and not yet committed.
pub const STORE_PENDING: &str = "quern_store_pending_changes";
/// Gauge: deleted queues whose jobs are still being deleted from disk.
pub const STORE_BULK_DELETES: &str = "quern_store_bulk_deletes";
/// Gauge: the LMDB map size.
pub const STORE_MAP_SIZE: &str = "quern_store_map_size_bytes";
/// Gauge: bytes of the LMDB map in use.
pub const STORE_USED: &str = "quern_store_used_bytes";
/// Gauge: bytes of the LMDB map still free.
pub const STORE_FREE: &str = "quern_store_free_bytes";
/// Gauge: 1 while the store's last write failed (disk full, map full…).
pub const STORE_FAILING: &str = "quern_store_failing";

/// Gauge: queues that exist.
pub const QUEUES: &str = "quern_queues";
/// Gauge, labels `queue` and `state` (waiting, delayed, active, dead).
pub const QUEUE_JOBS: &str = "quern_jobs";
/// Gauge, label `queue`: how long the oldest waiting job has waited.
pub const QUEUE_OLDEST_WAITING_AGE: &str = "quern_queue_oldest_waiting_age_seconds";
/// Counter, label `queue`: jobs pushed.
pub const QUEUE_PUSHED: &str = "quern_queue_pushed_total";
/// Counter, label `queue`: jobs handed to workers.
pub const QUEUE_PULLED: &str = "quern_queue_pulled_total";
/// Counter, label `queue`: jobs acknowledged.
pub const QUEUE_ACKED: &str = "quern_queue_acked_total";
/// Counter, label `queue`: failed attempts (QFAIL and expired leases).
pub const QUEUE_FAILED: &str = "quern_queue_failed_total";
/// Counter, label `queue`: failed attempts that were given another one.
pub const QUEUE_RETRIED: &str = "quern_queue_retried_total";
/// Counter, label `queue`: jobs moved to the dead-letter queue.
pub const QUEUE_DEAD: &str = "quern_queue_dead_total";
/// Counter, label `queue`: leases that ran out.
pub const QUEUE_EXPIRED_LEASES: &str = "quern_queue_expired_leases_total";
/// Histogram, label `queue`: time from a job's push to its ack.
pub const QUEUE_PUSH_TO_ACK: &str = "quern_queue_push_to_ack_seconds";

/// Every name above, for the test that keeps docs/metrics.md in step with
/// this module.
#[cfg(test)]
const ALL: &[&str] = &[
    CONNECTIONS,
    CONNECTIONS_ACCEPTED,
    CONNECTIONS_REJECTED,
    BLOCKED_CLIENTS,
    COMMANDS,
    COMMAND_ERRORS,
    COMMAND_DURATION,
    NET_INPUT,
    NET_OUTPUT,
    UPTIME,
    STORE_COMMITS,
    STORE_CHANGES,
    STORE_COMMIT_DURATION,
    STORE_COMMIT_CHANGES,
    STORE_FSYNCS,
    STORE_GATHERS,
    STORE_CHECKPOINTS,
    STORE_CHECKPOINT_DURATION,
    STORE_PENDING,
    STORE_BULK_DELETES,
    STORE_MAP_SIZE,
    STORE_USED,
    STORE_FREE,
    STORE_FAILING,
    QUEUES,
    QUEUE_JOBS,
    QUEUE_OLDEST_WAITING_AGE,
    QUEUE_PUSHED,
    QUEUE_PULLED,
    QUEUE_ACKED,
    QUEUE_FAILED,
    QUEUE_RETRIED,
    QUEUE_DEAD,
    QUEUE_EXPIRED_LEASES,
    QUEUE_PUSH_TO_ACK,
];

// ----- histograms ----------------------------------------------------------

/// Nanoseconds per second: durations are recorded in nanoseconds.
const NANOS: f64 = 1e9;

/// Commands take microseconds; a slow one, milliseconds. In nanoseconds.
pub const COMMAND_DURATION_FAMILY: Family = Family {
    name: COMMAND_DURATION,
    help: "Time to run a command, without the wait for its commit or in a blocking pull.",
    bounds: &[
        5_000,
        10_000,
        25_000,
        50_000,
        100_000,
        250_000,
        500_000,
        1_000_000,
        2_500_000,
        5_000_000,
        10_000_000,
        25_000_000,
        100_000_000,
        1_000_000_000,
    ],
    per_unit: NANOS,
};

/// A flush takes from tens of microseconds (a fast SSD) to tens of
/// milliseconds (a busy disk); an LMDB transaction, up to seconds. In
/// nanoseconds.
const STORE_BOUNDS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// The log's commits.
pub const STORE_COMMIT_DURATION_FAMILY: Family = Family {
    name: STORE_COMMIT_DURATION,
    help: "Time to append one record to the write-ahead log, its flush included with fsync always.",
    bounds: STORE_BOUNDS,
    per_unit: NANOS,
};

/// LMDB's transactions.
pub const STORE_CHECKPOINT_DURATION_FAMILY: Family = Family {
    name: STORE_CHECKPOINT_DURATION,
    help: "Time of one LMDB transaction.",
    bounds: STORE_BOUNDS,
    per_unit: NANOS,
};

/// One change to hundreds of thousands (the applier's batches).
pub const STORE_COMMIT_CHANGES_FAMILY: Family = Family {
    name: STORE_COMMIT_CHANGES,
    help: "Changes per commit of the log.",
    bounds: &[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20_000, 100_000],
    per_unit: 1.0,
};

/// Jobs live from milliseconds (a busy worker pool) to a day (a backlog
/// or a long delay). In milliseconds, the engine's clock.
pub const PUSH_TO_ACK_FAMILY: Family = Family {
    name: QUEUE_PUSH_TO_ACK,
    help: "Time from a job's push to its ack.",
    bounds: &[
        5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
        3_600_000, 21_600_000, 86_400_000,
    ],
    per_unit: 1e3,
};

// ----- the recorder --------------------------------------------------------

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder, once, and returns the handle that
/// renders it.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Only counters and gauges reach the recorder, set at scrape time:
        // it keeps no samples, so it needs no upkeep.
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows only the histograms");
        }
        describe();
        handle
    })
}

/// True once [`install`] has run: the figures only metrics need are worth
/// recording.
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// The Prometheus text: the server's figures once it has loaded (`None`
/// while it loads: nothing yet).
pub fn render(server: Option<&Server>) -> String {
    let handle = install();
    let Some(server) = server else {
        return handle.render();
    };
    collect(server);
    let mut text = handle.render();
    render_histograms(server, &mut text);
    text
}

/// Registers the help text and unit of every counter and gauge (the
/// histograms carry theirs in their [`Family`]).
fn describe() {
    describe_gauge!(CONNECTIONS, "Clients connected now.");
    describe_counter!(CONNECTIONS_ACCEPTED, "Connections accepted since start.");
    describe_counter!(
        CONNECTIONS_REJECTED,
        "Connections refused because maxclients were connected."
    );
    describe_gauge!(BLOCKED_CLIENTS, "Connections waiting in a blocking pull.");
    describe_counter!(COMMANDS, "Commands run, by command.");
    describe_counter!(
        COMMAND_ERRORS,
        "Commands refused before running (kind=rejected) or replying with an error (kind=failed)."
    );
    describe_counter!(NET_INPUT, Unit::Bytes, "Bytes read from clients.");
    describe_counter!(NET_OUTPUT, Unit::Bytes, "Bytes written to clients.");
    describe_gauge!(UPTIME, Unit::Seconds, "Seconds since the server started serving.");

    describe_counter!(
        STORE_COMMITS,
        "Records written to the write-ahead log (group commits)."
    );
    describe_counter!(STORE_CHANGES, "Changes committed, over all commits.");
    describe_counter!(STORE_FSYNCS, "Syncs to disk, of the log and of LMDB.");
    describe_counter!(
        STORE_GATHERS,
        "Batches the log held back (fsync always) for more writers to join, when many joined during a flush."
    );
    describe_counter!(
        STORE_CHECKPOINTS,
        "LMDB transactions, each taking many log records."
    );
    describe_gauge!(STORE_PENDING, "Changes submitted and not yet committed.");
    describe_gauge!(
        STORE_BULK_DELETES,
        "Deleted queues whose jobs are still being deleted from disk."
    );
    describe_gauge!(STORE_MAP_SIZE, Unit::Bytes, "The LMDB map size.");
    describe_gauge!(STORE_USED, Unit::Bytes, "Bytes of the LMDB map in use.");
    describe_gauge!(STORE_FREE, Unit::Bytes, "Bytes of the LMDB map still free.");
    describe_gauge!(
        STORE_FAILING,
        "1 while the store's last write failed (disk full, map full), else 0."
    );

    describe_gauge!(QUEUES, "Queues that exist.");
    describe_gauge!(QUEUE_JOBS, "Jobs in a queue, by state.");
    describe_gauge!(
        QUEUE_OLDEST_WAITING_AGE,
        Unit::Seconds,
        "How long the oldest waiting job of a queue has waited; 0 when none waits."
    );
    describe_counter!(QUEUE_PUSHED, "Jobs pushed.");
    describe_counter!(QUEUE_PULLED, "Jobs handed to workers since the server started.");
    describe_counter!(QUEUE_ACKED, "Jobs acknowledged.");
    describe_counter!(QUEUE_FAILED, "Failed attempts: QFAIL and expired leases.");
    describe_counter!(QUEUE_RETRIED, "Failed attempts that were given another one.");
    describe_counter!(QUEUE_DEAD, "Jobs moved to the dead-letter queue.");
    describe_counter!(
        QUEUE_EXPIRED_LEASES,
        "Leases that ran out before an ack or a fail."
    );
}

// ----- the store ---------------------------------------------------------------

/// The store's histograms: its [`StoreObserver`], handed to
/// [`quern_store::Store::observe`] when metrics are on.
#[derive(Debug)]
pub struct StoreMetrics {
    commit_duration: Histogram,
    commit_changes: Histogram,
    checkpoint_duration: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> StoreMetrics {
        StoreMetrics {
            commit_duration: STORE_COMMIT_DURATION_FAMILY.histogram(),
            commit_changes: STORE_COMMIT_CHANGES_FAMILY.histogram(),
            checkpoint_duration: STORE_CHECKPOINT_DURATION_FAMILY.histogram(),
        }
    }
}

impl StoreObserver for StoreMetrics {
    fn committed(&self, changes: usize, took: Duration) {
        self.commit_duration.record(nanos(took));
        self.commit_changes.record(changes as u64);
    }

    fn checkpointed(&self, _changes: usize, took: Duration) {
        self.checkpoint_duration.record(nanos(took));
    }
}

/// A duration in nanoseconds, the unit the duration histograms count in.
pub fn nanos(took: Duration) -> u64 {
    took.as_nanos().try_into().unwrap_or(u64::MAX)
}

// ----- the scrape ----------------------------------------------------------

/// Copies the server's own figures into the recorder.
fn collect(server: &Server) {
    use metrics::{counter, gauge};
    use std::sync::atomic::Ordering::Relaxed;

    gauge!(CONNECTIONS).set(server.clients.len() as f64);
    counter!(CONNECTIONS_ACCEPTED).absolute(server.clients.total_received.load(Relaxed));
    counter!(CONNECTIONS_REJECTED).absolute(server.clients.rejected.load(Relaxed));
    gauge!(BLOCKED_CLIENTS).set(server.waiters.len() as f64);
    gauge!(UPTIME).set(server.started.elapsed().as_secs_f64());
    counter!(NET_INPUT).absolute(server.stats.bytes_in());
    counter!(NET_OUTPUT).absolute(server.stats.bytes_out());

    // Commands never called add no series.
    for row in server.stats.commands() {
        let figures = row.figures();
        if figures.calls == 0 && figures.rejected == 0 {
            continue;
        }
        let name = row.command.name;
        counter!(COMMANDS, "command" => name).absolute(figures.calls);
        counter!(COMMAND_ERRORS, "command" => name, "kind" => "rejected").absolute(figures.rejected);
        counter!(COMMAND_ERRORS, "command" => name, "kind" => "failed").absolute(figures.failed);
    }

    let store = server.store.stats();
    counter!(STORE_COMMITS).absolute(store.commits);
    counter!(STORE_CHANGES).absolute(store.changes);
    counter!(STORE_FSYNCS).absolute(store.fsyncs);
    counter!(STORE_GATHERS).absolute(store.gathers);
    counter!(STORE_CHECKPOINTS).absolute(store.checkpoints);
    gauge!(STORE_PENDING).set(store.pending as f64);
    gauge!(STORE_BULK_DELETES).set(store.bulk_deletes as f64);
    gauge!(STORE_MAP_SIZE).set(store.map_size as f64);
    gauge!(STORE_USED).set(store.used_bytes as f64);
    gauge!(STORE_FREE).set(store.map_size.saturating_sub(store.used_bytes) as f64);
    gauge!(STORE_FAILING).set(if store.last_error.is_some() { 1.0 } else { 0.0 });

    server.queue_metrics.collect(&server.shards);
}

/// Appends every histogram, after the recorder's families.
fn render_histograms(server: &Server, out: &mut String) {
    // Commands never called add no series.
    let commands: Vec<([(&'static str, &str); 1], _)> = server
        .stats
        .commands()
        .map(|row| ([("command", row.command.name)], row.latency()))
        .filter(|(_, latency)| latency.count() > 0)
        .collect();
    COMMAND_DURATION_FAMILY.render(out, commands.iter().map(|(l, s)| (&l[..], s)));

    let store = &server.store_metrics;
    let no_labels: &[(&'static str, &str)] = &[];
    STORE_COMMIT_DURATION_FAMILY.render(out, [(no_labels, &store.commit_duration.snapshot())]);
    STORE_COMMIT_CHANGES_FAMILY.render(out, [(no_labels, &store.commit_changes.snapshot())]);
    STORE_CHECKPOINT_DURATION_FAMILY.render(out, [(no_labels, &store.checkpoint_duration.snapshot())]);

    server.queue_metrics.render_histograms(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL {
            assert!(seen.insert(name), "{name} twice");
            assert!(name.starts_with("quern_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
        }
    }

    /// docs/metrics.md documents every metric, and no other.
    #[test]
    fn every_name_is_documented() {
        let docs = include_str!("../../../../docs/metrics.md");
        let documented: std::collections::BTreeSet<&str> = docs
            .lines()
            .filter_map(|line| line.strip_prefix("| `quern_"))
            .filter_map(|rest| rest.split('`').next())
            .collect();
        let names: std::collections::BTreeSet<&str> =
            ALL.iter().map(|n| n.strip_prefix("quern_").unwrap()).collect();
        assert_eq!(documented, names);
    }

    #[test]
    fn every_histogram_has_rising_buckets() {
        let families = [
            &COMMAND_DURATION_FAMILY,
            &STORE_COMMIT_DURATION_FAMILY,
            &STORE_CHECKPOINT_DURATION_FAMILY,
            &STORE_COMMIT_CHANGES_FAMILY,
            &PUSH_TO_ACK_FAMILY,
        ];
        for family in families {
            assert!(ALL.contains(&family.name));
            assert!(!family.bounds.is_empty());
            assert!(family.bounds.windows(2).all(|w| w[0] < w[1]), "{}", family.name);
        }
    }

    #[test]
    fn bounds_show_as_round_numbers() {
        let mut out = String::new();
        let h = COMMAND_DURATION_FAMILY.histogram();
        h.record(1);
        COMMAND_DURATION_FAMILY.render(&mut out, [(&[("command", "ping")][..], &h.snapshot())]);
        assert!(out.contains("le=\"0.000005\"} 1\n"), "{out}");
        assert!(out.contains("le=\"0.025\"} 1\n"), "{out}");
        assert!(out.contains("le=\"1\"} 1\n"), "{out}");
    }
}
