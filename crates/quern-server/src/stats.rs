//! The counters every request bumps: per command (calls, time spent,
//! errors) and the bytes read and written.
//!
//! They are plain atomics, read by INFO (`# Commandstats`, `# Stats`) and
//! by the metrics scrape, so that both show the same numbers and a
//! request never looks a metric up by name. A command's calls and time are
//! its latency histogram's count and sum. A connection counts its runs in
//! its own [`Tally`] and adds them to the shared figures once per round of
//! replies: with every connection writing the same few counters for every
//! command, the two worker threads would otherwise take turns at their
//! cache lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::commands::{Command, ROWS};
use crate::metrics::histogram::{bucket, Histogram, Snapshot};
use crate::metrics::{nanos, COMMAND_DURATION_FAMILY};

/// One command's (or subcommand's) figures, as Redis's `cmdstat_*` lines
/// report them.
#[derive(Debug)]
pub struct CommandStats {
    /// The command, for its name.
    pub command: &'static Command,
    /// Every run that got past the checks, failed or not, by time spent
    /// running, in nanoseconds (not waiting for a commit or in a blocked
    /// pull): its count is the calls, its sum the time.
    latency: Histogram,
    /// Calls refused before running: wrong arity, not authenticated, an
    /// unknown subcommand.
    rejected: AtomicU64,
    /// Runs that ended in an error reply.
    failed: AtomicU64,
}

/// A snapshot of one command's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandFigures {
    /// Runs.
    pub calls: u64,
    /// Time spent running, in microseconds.
    pub usec: u64,
    /// Calls refused before running.
    pub rejected: u64,
    /// Runs that ended in an error reply.
    pub failed: u64,
}

impl CommandStats {
    fn new(command: &'static Command) -> CommandStats {
        CommandStats {
            command,
            latency: COMMAND_DURATION_FAMILY.histogram(),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Adds a connection's runs of this command.
    fn add(&self, runs: &PendingRuns) {
        self.latency.add(&runs.counts, runs.nanos);
        if runs.failed > 0 {
            self.failed.fetch_add(runs.failed, Ordering::Relaxed);
        }
    }

    /// Counts one call refused before running.
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn figures(&self) -> CommandFigures {
        let latency = self.latency.snapshot();
        CommandFigures {
            calls: latency.count(),
            usec: latency.sum / 1000,
            rejected: self.rejected.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// The run times so far, in nanoseconds.
    pub fn latency(&self) -> Snapshot {
        self.latency.snapshot()
    }
}

/// One connection's runs not yet added to the shared [`Stats`].
#[derive(Debug, Default)]
pub struct Tally {
    /// One entry per command run since the connection's first flush,
    /// zeroed (not removed) by each flush: a connection uses few commands.
    rows: Vec<PendingRuns>,
}

/// Runs of one command, in a [`Tally`].
#[derive(Debug)]
struct PendingRuns {
    /// The command's row in [`ROWS`].
    row: usize,
    /// Runs per latency bucket.
    counts: Vec<u64>,
    /// Their time, in nanoseconds.
    nanos: u64,
    /// Those that replied with an error.
    failed: u64,
}

impl Tally {
    /// Counts one run of the command in row `row` that took `took`;
    /// `failed` when it replied with an error.
    pub fn ran(&mut self, row: usize, took: Duration, failed: bool) {
        let at = match self.rows.iter().position(|r| r.row == row) {
            Some(at) => at,
            None => {
                self.rows.push(PendingRuns {
                    row,
                    counts: vec![0; COMMAND_DURATION_FAMILY.bounds.len() + 1],
                    nanos: 0,
                    failed: 0,
                });
                self.rows.len() - 1
            }
        };
        let runs = &mut self.rows[at];
        let took = nanos(took);
        runs.counts[bucket(COMMAND_DURATION_FAMILY.bounds, took)] += 1;
        runs.nanos += took;
        runs.failed += u64::from(failed);
    }
}

/// The server's request counters.
#[derive(Debug)]
pub struct Stats {
    /// One row per command and subcommand, in the order of
    /// [`ROWS`]; a command's row number comes with its lookup.
    commands: Box<[CommandStats]>,
    /// Bytes read from clients.
    bytes_in: AtomicU64,
    /// Bytes written to clients.
    bytes_out: AtomicU64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            commands: ROWS.iter().map(|c| CommandStats::new(c)).collect(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// The figures of the command in row `row`.
    pub fn command(&self, row: usize) -> &CommandStats {
        &self.commands[row]
    }

    /// Adds a connection's runs since its last flush, and empties its
    /// tally.
    pub fn flush(&self, tally: &mut Tally) {
        for runs in &mut tally.rows {
            if runs.nanos == 0 && runs.counts.iter().all(|&n| n == 0) {
                continue;
            }
            self.commands[runs.row].add(runs);
            runs.counts.fill(0);
            (runs.nanos, runs.failed) = (0, 0);
        }
    }

    /// Every command's figures, in table order.
    pub fn commands(&self) -> impl Iterator<Item = &CommandStats> {
        self.commands.iter()
    }

    /// Commands processed since start: run or refused, as
    /// `total_commands_processed` has always counted them.
    pub fn commands_processed(&self) -> u64 {
        self.commands
            .iter()
            .map(|c| {
                let f = c.figures();
                f.calls + f.rejected
            })
            .sum()
    }

    /// Counts bytes read from a client.
    pub fn read(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts bytes written to a client.
    pub fn wrote(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes read from clients since start.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to clients since start.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_subcommand_has_a_row() {
        let stats = Stats::default();
        let names: Vec<&str> = stats.commands().map(|c| c.command.name).collect();
        assert!(names.contains(&"qpush"));
        assert!(names.contains(&"client|list"));
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "one row each");
    }

    #[test]
    fn figures_add_up_once_flushed() {
        let stats = Stats::default();
        let mut tally = Tally::default();
        tally.ran(0, Duration::from_micros(3), false);
        tally.ran(2, Duration::from_millis(2), false);
        tally.ran(0, Duration::from_nanos(2500), true);
        stats.command(0).rejected();
        assert_eq!(stats.command(0).figures().calls, 0, "not before the flush");
        stats.flush(&mut tally);
        let want = CommandFigures {
            calls: 2,
            usec: 5,
            rejected: 1,
            failed: 1,
        };
        assert_eq!(stats.command(0).figures(), want);
        assert_eq!(stats.command(2).figures().usec, 2000);
        // A second flush adds nothing more.
        stats.flush(&mut tally);
        assert_eq!(stats.command(0).figures(), want);
        assert_eq!(stats.commands_processed(), 4);
        let latency = stats.command(0).latency();
        assert_eq!(latency.counts[0], 2, "both under 5 µs");
    }
}
