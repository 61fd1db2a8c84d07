//! Histograms of fixed buckets made of atomics, for what is measured on
//! the request path: a command's run time, a job's push-to-ack time, a
//! commit's duration and size.
//!
//! The exporter's own histograms keep every sample (with a timestamp, in
//! an epoch-managed list shared by every thread) until a scrape or an
//! upkeep folds it into buckets. Recorded on every command, that took
//! about 7% more server CPU in the push benchmark (50 clients, pipeline
//! 16: 4.63 against 4.35 ms per 1000 pushes, medians of alternating runs)
//! and 16 bytes per sample until the fold. Here a sample is a search
//! among a dozen integer bounds and two relaxed atomic additions, and the
//! memory is fixed; the request path goes further and counts into a
//! per-connection tally first ([`crate::stats::Tally`]). The scrape
//! renders the buckets with the exporter's own formatting functions, so
//! the text is the same as for its histograms.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::formatting::{write_help_line, write_metric_line, write_type_line};
use metrics_exporter_prometheus::LabelSet;

/// One histogram: samples counted per bucket, and their sum.
#[derive(Debug)]
pub struct Histogram {
    /// The buckets' upper bounds (inclusive), rising, in the recorded unit.
    bounds: &'static [u64],
    /// Samples per bucket, not cumulative; the last one counts those above
    /// every bound (Prometheus's `le="+Inf"`).
    counts: Box<[AtomicU64]>,
    /// The sum of every sample, in the recorded unit.
    sum: AtomicU64,
}

/// A histogram's figures at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Samples per bucket, not cumulative, the +Inf bucket last.
    pub counts: Vec<u64>,
    /// The sum of every sample.
    pub sum: u64,
}

impl Snapshot {
    /// Samples in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`, a snapshot of a histogram with the same buckets.
    pub fn add(&mut self, other: &Snapshot) {
        for (count, more) in self.counts.iter_mut().zip(&other.counts) {
            *count += more;
        }
        self.sum += other.sum;
    }
}

impl Histogram {
    /// An empty histogram with these bucket bounds.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one sample.
    pub fn record(&self, value: u64) {
        self.counts[bucket(self.bounds, value)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Adds samples counted elsewhere: `counts` per bucket, as
    /// [`bucket`] numbers them, and their sum.
    pub fn add(&self, counts: &[u64], sum: u64) {
        for (total, &n) in self.counts.iter().zip(counts) {
            if n > 0 {
                total.fetch_add(n, Ordering::Relaxed);
            }
        }
        self.sum.fetch_add(sum, Ordering::Relaxed);
    }

    /// The figures so far. Read bucket by bucket while samples may
    /// arrive: the count comes from the buckets themselves, so the
    /// cumulative counts always end at the count, as Prometheus requires.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

/// The bucket a sample falls in: the first whose bound holds it, or the
/// last (+Inf), numbered from 0.
pub fn bucket(bounds: &[u64], value: u64) -> usize {
    // Most samples fall in the first few buckets: a scan beats a binary
    // search over a dozen bounds.
    bounds
        .iter()
        .position(|&bound| value <= bound)
        .unwrap_or(bounds.len())
}

/// What a family of histograms is called and how its unit is shown.
#[derive(Debug)]
pub struct Family {
    /// The metric's name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// The buckets' upper bounds, in the recorded unit.
    pub bounds: &'static [u64],
    /// Recorded units per exported unit: 1e9 for nanoseconds shown as
    /// seconds, 1 for a plain count. (A division, not a multiplication by
    /// the inverse, so that 5000 ns shows as 0.000005 exactly.)
    pub per_unit: f64,
}

impl Family {
    /// An empty histogram of this family.
    pub fn histogram(&self) -> Histogram {
        Histogram::new(self.bounds)
    }

    /// Appends the family in the Prometheus text format: help, type, then
    /// each series' buckets, sum and count. Nothing when there are no
    /// series, like the exporter's families with none.
    pub fn render<'a>(&self, out: &mut String, series: impl IntoIterator<Item = (Labels<'a>, &'a Snapshot)>) {
        let mut series = series.into_iter().peekable();
        if series.peek().is_none() {
            return;
        }
        write_help_line(out, self.name, None, None, self.help);
        write_type_line(out, self.name, None, None, "histogram");
        let bounds: Vec<String> = self
            .bounds
            .iter()
            .map(|&b| (b as f64 / self.per_unit).to_string())
            .chain(std::iter::once("+Inf".to_owned()))
            .collect();
        for (labels, snapshot) in series {
            let labels = label_set(labels);
            let mut cumulative = 0;
            for (le, count) in bounds.iter().zip(&snapshot.counts) {
                cumulative += count;
                write_metric_line(
                    out,
                    self.name,
                    Some("bucket"),
                    &labels,
                    Some(("le", le)),
                    cumulative,
                    None,
                );
            }
            let sum = snapshot.sum as f64 / self.per_unit;
            write_metric_line::<&str, f64>(out, self.name, Some("sum"), &labels, None, sum, None);
            write_metric_line::<&str, u64>(out, self.name, Some("count"), &labels, None, cumulative, None);
        }
        let _ = writeln!(out);
    }
}

/// A series' labels: name and value pairs.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

/// The exporter's label set for `labels` (it escapes the values).
fn label_set(labels: Labels<'_>) -> LabelSet {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(key, value)| metrics::Label::new(*key, value.to_string()))
        .collect();
    LabelSet::from_key_and_global(&metrics::Key::from_parts("", labels), &Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[u64] = &[10, 100, 1000];

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(BOUNDS);
        for value in [0, 10, 11, 100, 5000, 1000] {
            h.record(value);
        }
        let snapshot = h.snapshot();
        assert_eq!(snapshot.counts, [2, 2, 1, 1]);
        assert_eq!(snapshot.sum, 6121);
        assert_eq!(snapshot.count(), 6);
    }

    #[test]
    fn renders_cumulative_buckets_in_the_exported_unit() {
        let family = Family {
            name: "quern_test_seconds",
            help: "A test.",
            bounds: BOUNDS,
            per_unit: 1000.0,
        };
        let h = family.histogram();
        h.record(5);
        h.record(50);
        h.record(2000);
        let mut out = String::new();
        family.render(&mut out, [(&[("queue", "a\"b")][..], &h.snapshot())]);
        assert_eq!(
            out,
            "# HELP quern_test_seconds A test.\n\
             # TYPE quern_test_seconds histogram\n\
             quern_test_seconds_bucket{queue=\"a\\\"b\",le=\"0.01\"} 1\n\
             quern_test_seconds_bucket{queue=\"a\\\"b\",le=\"0.1\"} 2\n\
             quern_test_seconds_bucket{queue=\"a\\\"b\",le=\"1\"} 2\n\
             quern_test_seconds_bucket{queue=\"a\\\"b\",le=\"+Inf\"} 3\n\
             quern_test_seconds_sum{queue=\"a\\\"b\"} 2.055\n\
             quern_test_seconds_count{queue=\"a\\\"b\"} 3\n\n"
        );
        let mut none = String::new();
        family.render(&mut none, std::iter::empty());
        assert_eq!(none, "");
    }
}
