//! Per-queue series, with a bounded number of `queue` labels.
//!
//! Every series with a `queue` label is a time series for Prometheus to
//! keep, so the number of labels is capped (`metrics-max-queues`). The
//! first queues the server sees, in creation order at a scrape or by
//! their first ack, each get their own label and keep it for the life of
//! the process; every later queue is summed into `queue="_other"`. A
//! deleted queue keeps its label, its gauges at 0 and its counters where
//! they stopped, so labels never exceed the cap: a restart hands them out
//! afresh.
//!
//! Jobs by state, the oldest waiting job and the lifetime counters are
//! read from the engines at scrape time; the counters grow by what each
//! queue's engine counters grew since the last scrape, so that `_other`
//! never goes down when one of its queues is deleted. Only the push-to-ack
//! histogram is recorded as acks happen, into a histogram kept per label.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use metrics::{counter, gauge};
use quern_engine::{Counters, Millis, QueueId, QueueStats};

use super::histogram::{Histogram, Snapshot};
use super::{
    enabled, PUSH_TO_ACK_FAMILY, QUEUES, QUEUE_ACKED, QUEUE_DEAD, QUEUE_EXPIRED_LEASES, QUEUE_FAILED,
    QUEUE_JOBS, QUEUE_OLDEST_WAITING_AGE, QUEUE_PULLED, QUEUE_PUSHED, QUEUE_RETRIED,
};
use crate::shards::{now_ms, Shards};

/// The label of every queue beyond the cap.
pub const OTHER_QUEUES: &str = "_other";

/// The states whose job counts are exported, with their label.
const STATES: [&str; 4] = ["waiting", "delayed", "active", "dead"];

/// The per-queue series of one server.
#[derive(Debug)]
pub struct QueueMetrics {
    /// Most queues with a label of their own.
    max_labelled: usize,
    /// Those queues, with their push-to-ack histogram. Read on every ack,
    /// written only when a queue gets its label.
    labelled: RwLock<HashMap<QueueId, Arc<Labelled>, foldhash::fast::RandomState>>,
    /// The push-to-ack times of every other queue, in milliseconds.
    other: Histogram,
    /// Whether `_other` has had a queue: until then it has no series.
    other_used: AtomicBool,
    /// What the last scrape saw.
    scrape: Mutex<LastScrape>,
}

/// A queue with a label of its own. (A queue deleted and created again
/// under its name has a new id and a second entry with the same label:
/// their figures are shown together.)
#[derive(Debug)]
struct Labelled {
    label: String,
    /// Push-to-ack times, in milliseconds.
    push_to_ack: Histogram,
}

/// One queue's counters as the last scrape saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    counters: Counters,
    pulled: u64,
}

#[derive(Debug, Default)]
struct LastScrape {
    /// Every queue that existed then.
    queues: HashMap<QueueId, Seen, foldhash::fast::RandomState>,
}

/// A queue's figures at a scrape, or the sum of several (`_other`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Figures {
    jobs: [u64; 4],
    oldest_waiting_ms: u64,
    /// What the counters grew since the last scrape.
    grown: Seen,
}

impl Figures {
    fn of(stats: &QueueStats, grown: Seen) -> Figures {
        Figures {
            jobs: [stats.waiting, stats.delayed, stats.active, stats.dead],
            oldest_waiting_ms: stats.oldest_waiting_age_ms,
            grown,
        }
    }

    /// Adds `other` in: job counts and growth add up, the oldest job is
    /// the oldest of both.
    fn add(&mut self, other: &Figures) {
        for (sum, n) in self.jobs.iter_mut().zip(other.jobs) {
            *sum += n;
        }
        self.oldest_waiting_ms = self.oldest_waiting_ms.max(other.oldest_waiting_ms);
        let (sum, add) = (&mut self.grown.counters, &other.grown.counters);
        sum.pushed += add.pushed;
        sum.acked += add.acked;
        sum.failed += add.failed;
        sum.retried += add.retried;
        sum.dead += add.dead;
        sum.expired_leases += add.expired_leases;
        self.grown.pulled += other.grown.pulled;
    }
}

/// What `now` grew by since `last` (engine counters only grow).
fn growth(now: Seen, last: Seen) -> Seen {
    let d = u64::saturating_sub;
    let (n, l) = (now.counters, last.counters);
    Seen {
        counters: Counters {
            pushed: d(n.pushed, l.pushed),
            acked: d(n.acked, l.acked),
            failed: d(n.failed, l.failed),
            retried: d(n.retried, l.retried),
            dead: d(n.dead, l.dead),
            expired_leases: d(n.expired_leases, l.expired_leases),
        },
        pulled: d(now.pulled, last.pulled),
    }
}

impl QueueMetrics {
    /// Series for at most `max_labelled` queues, the rest under `_other`.
    pub fn new(max_labelled: usize) -> QueueMetrics {
        QueueMetrics {
            max_labelled,
            labelled: RwLock::default(),
            other: PUSH_TO_ACK_FAMILY.histogram(),
            other_used: AtomicBool::new(false),
            scrape: Mutex::default(),
        }
    }

    /// Records that a job of queue `queue` (named `name`) pushed at
    /// `created_at` was acked at `now`. Called under the shard's lock, so
    /// it only reads a map and records.
    pub fn acked(&self, queue: QueueId, name: &[u8], created_at: Millis, now: Millis) {
        if !enabled() {
            return;
        }
        let ms = now.saturating_sub(created_at);
        {
            let labelled = self.labelled.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = labelled.get(&queue) {
                series.push_to_ack.record(ms);
                return;
            }
            if labelled.len() >= self.max_labelled {
                drop(labelled);
                self.other_acked(ms);
                return;
            }
        }
        let mut labelled = self.labelled.write().unwrap_or_else(PoisonError::into_inner);
        match self.label(&mut labelled, queue, name) {
            Some(series) => series.push_to_ack.record(ms),
            None => self.other_acked(ms),
        }
    }

    fn other_acked(&self, ms: u64) {
        self.other.record(ms);
        self.other_used.store(true, Ordering::Relaxed);
    }

    /// The queue's series, given a label now if it has none and there is
    /// room; `None` when it belongs to `_other`.
    fn label<'a>(
        &self,
        labelled: &'a mut HashMap<QueueId, Arc<Labelled>, foldhash::fast::RandomState>,
        queue: QueueId,
        name: &[u8],
    ) -> Option<&'a Labelled> {
        if !labelled.contains_key(&queue) && labelled.len() >= self.max_labelled {
            return None;
        }
        let series = labelled.entry(queue).or_insert_with(|| {
            Arc::new(Labelled {
                label: String::from_utf8_lossy(name).into_owned(),
                push_to_ack: PUSH_TO_ACK_FAMILY.histogram(),
            })
        });
        Some(series)
    }

    /// Appends the push-to-ack histograms: one per label, and `_other`
    /// once it has had a queue.
    pub fn render_histograms(&self, out: &mut String) {
        let mut by_label: BTreeMap<String, Snapshot> = BTreeMap::new();
        for series in self
            .labelled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            let snapshot = series.push_to_ack.snapshot();
            match by_label.get_mut(&series.label) {
                Some(sum) => sum.add(&snapshot),
                None => {
                    by_label.insert(series.label.clone(), snapshot);
                }
            }
        }
        if self.other_used.load(Ordering::Relaxed) {
            by_label.insert(OTHER_QUEUES.to_owned(), self.other.snapshot());
        }
        let labels: Vec<[(&'static str, &str); 1]> =
            by_label.keys().map(|label| [("queue", label.as_str())]).collect();
        PUSH_TO_ACK_FAMILY.render(out, labels.iter().map(|l| &l[..]).zip(by_label.values()));
    }

    /// Copies every queue's figures into the recorder.
    pub fn collect(&self, shards: &Shards) {
        let now = now_ms();
        let mut queues = Vec::new();
        shards.each(|engine| {
            for (id, name, _) in engine.queues() {
                if let Some(stats) = engine.stats(name, now) {
                    queues.push((id, name.clone(), stats));
                }
            }
        });
        // Creation order: the oldest queues get the labels.
        queues.sort_unstable_by_key(|(id, _, _)| *id);
        gauge!(QUEUES).set(queues.len() as f64);

        // Labels first, under the lock that acks read, held only for that.
        let (labels, deleted) = {
            let mut labelled = self.labelled.write().unwrap_or_else(PoisonError::into_inner);
            let labels: Vec<Option<String>> = queues
                .iter()
                .map(|(id, name, _)| self.label(&mut labelled, *id, name).map(|s| s.label.clone()))
                .collect();
            // A queue deleted and created again under its name has a new id
            // and the same label: the live one's figures win.
            let live: HashSet<&str> = labels.iter().flatten().map(String::as_str).collect();
            let deleted: Vec<String> = labelled
                .values()
                .filter(|series| !live.contains(series.label.as_str()))
                .map(|series| series.label.clone())
                .collect();
            (labels, deleted)
        };

        // One scrape at a time, so that growth is counted once.
        let mut last = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = HashMap::with_capacity_and_hasher(queues.len(), Default::default());
        let mut other = Figures::default();
        let mut other_queues = 0;
        for ((id, _, stats), label) in queues.iter().zip(labels) {
            let now_seen = Seen {
                counters: stats.counters,
                pulled: stats.pulled,
            };
            let grown = growth(now_seen, last.queues.get(id).copied().unwrap_or_default());
            seen.insert(*id, now_seen);
            let figures = Figures::of(stats, grown);
            match label {
                Some(label) => export(&label, &figures),
                None => {
                    other.add(&figures);
                    other_queues += 1;
                }
            }
        }
        // Deleted queues keep their label: nothing waits in them any more.
        for label in deleted {
            export(&label, &Figures::default());
        }
        if other_queues > 0 {
            self.other_used.store(true, Ordering::Relaxed);
        }
        if self.other_used.load(Ordering::Relaxed) {
            export(OTHER_QUEUES, &other);
        }
        last.queues = seen;
    }
}

/// Sets one label's gauges and grows its counters.
fn export(label: &str, figures: &Figures) {
    let label = label.to_owned();
    for (state, jobs) in STATES.iter().zip(figures.jobs) {
        gauge!(QUEUE_JOBS, "queue" => label.clone(), "state" => *state).set(jobs as f64);
    }
    gauge!(QUEUE_OLDEST_WAITING_AGE, "queue" => label.clone()).set(figures.oldest_waiting_ms as f64 / 1000.0);
    let grown = &figures.grown;
    let counters = [
        (QUEUE_PUSHED, grown.counters.pushed),
        (QUEUE_PULLED, grown.pulled),
        (QUEUE_ACKED, grown.counters.acked),
        (QUEUE_FAILED, grown.counters.failed),
        (QUEUE_RETRIED, grown.counters.retried),
        (QUEUE_DEAD, grown.counters.dead),
        (QUEUE_EXPIRED_LEASES, grown.counters.expired_leases),
    ];
    for (name, by) in counters {
        counter!(name, "queue" => label.clone()).increment(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_what_each_counter_gained() {
        let seen = |pushed, acked, pulled| Seen {
            counters: Counters {
                pushed,
                acked,
                ..Counters::default()
            },
            pulled,
        };
        assert_eq!(growth(seen(10, 4, 7), seen(6, 4, 2)), seen(4, 0, 5));
        // A queue seen for the first time grows by all it has.
        assert_eq!(growth(seen(3, 1, 1), Seen::default()), seen(3, 1, 1));
    }

    #[test]
    fn other_sums_jobs_and_keeps_the_oldest_wait() {
        let figures = |waiting, oldest| Figures {
            jobs: [waiting, 1, 0, 2],
            oldest_waiting_ms: oldest,
            grown: Seen::default(),
        };
        let mut sum = Figures::default();
        sum.add(&figures(3, 500));
        sum.add(&figures(4, 200));
        assert_eq!(sum.jobs, [7, 2, 0, 4]);
        assert_eq!(sum.oldest_waiting_ms, 500);
    }

    #[test]
    fn labels_stop_at_the_cap() {
        let metrics = QueueMetrics::new(2);
        let mut labelled = metrics.labelled.write().unwrap();
        assert!(metrics.label(&mut labelled, 1, b"a").is_some());
        assert!(metrics.label(&mut labelled, 2, b"b").is_some());
        assert!(metrics.label(&mut labelled, 3, b"c").is_none(), "beyond the cap");
        // A labelled queue keeps its label.
        assert_eq!(metrics.label(&mut labelled, 1, b"a").unwrap().label, "a");
        assert_eq!(labelled.len(), 2);
    }
}
