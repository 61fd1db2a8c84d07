//! The store's commit path: submit a batch of changes, then wait until the
//! writer thread has committed it to a real LMDB in a temporary directory.
//!
//! Every write command waits on this path before it replies, so its
//! latency is a floor under each QPUSH, QPULL and QACK, and its cost per
//! change bounds the writes a server sustains. Batches of 1, 64 and 1024
//! changes show how group commit spreads a commit's fixed cost: one busy
//! connection, a pipelined or QMPUSH client, many clients sharing one
//! commit.
//!
//! - `commit/put/N`: N new jobs (`Change::PutJob` with a 100-byte payload)
//!   in one submission, with fsync `no`. The jobs are deleted again after
//!   each sample, untimed, so the data file does not grow from sample to
//!   sample.
//! - `commit/put_delete/N`: the same N jobs put, committed, then deleted
//!   (`Change::DeleteJob`) and committed: two commits, a job's whole life
//!   on disk.
//! - `commit_fsync_always/put/64`: `commit/put/64` with fsync `always`.
//!   It measures the disk's sync, not Quern, and varies with the machine;
//!   compare it with `commit/put/64` from the same run, not across
//!   machines.
//!
//! Waiting uses a current-thread tokio runtime's `block_on`, as a
//! connection task awaits [`Store::committed`]: the time includes waking
//! the waiter, not only the LMDB transaction. Its peer in the same run,
//! `commit/put_spin_wait/1`, waits by spinning on [`Store::is_committed`]
//! instead; the difference is what parking and waking the waiter costs.
//!
//! Run with `cargo bench -p quern-store --bench commit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quern_engine::{Change, Counters, JobId, JobRecord, JobSpec, QueueRecord, State};
use quern_store::{Fsync, Store, StoreConfig};
use tokio::runtime::Runtime;

/// The one queue every job belongs to.
const QUEUE: u32 = 1;
const BATCHES: [usize; 3] = [1, 64, 1024];

/// A store in its own temporary directory, holding one queue.
struct Bench {
    store: Arc<Store>,
    runtime: Runtime,
    payload: Bytes,
    next_id: JobId,
    changes: Vec<Change>,
    /// Wait for a commit by spinning on `is_committed` rather than parking
    /// in `block_on`.
    spin_wait: bool,
    /// Dropped after the store, which closes the environment first.
    _dir: tempfile::TempDir,
}

impl Bench {
    fn open(fsync: Fsync) -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&StoreConfig {
            fsync,
            ..StoreConfig::new(dir.path())
        })
        .expect("open store");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut bench = Bench {
            store,
            runtime,
            payload: Bytes::from(vec![b'x'; 100]),
            next_id: 1,
            changes: Vec::new(),
            spin_wait: false,
            _dir: dir,
        };
        // Jobs are stored only with their queue: a store that loads a job
        // of an unknown queue refuses it as corrupt.
        bench.changes.push(Change::PutQueue(QueueRecord {
            id: QUEUE,
            name: Bytes::from_static(b"q"),
            paused: false,
            counters: Counters::default(),
        }));
        bench.commit();
        bench
    }

    /// Submits `self.changes` and waits for their commit.
    fn commit(&mut self) {
        let ticket = self.store.submit(&mut self.changes);
        if self.spin_wait {
            while !self.store.is_committed(ticket) {
                std::thread::yield_now();
            }
        } else {
            self.runtime
                .block_on(self.store.committed(ticket))
                .expect("committed");
        }
        // `submit` may hand back an empty buffer of its own; either way it
        // is empty and reused.
        debug_assert!(self.changes.is_empty());
    }

    /// Puts `n` new jobs in one commit; returns the first id.
    fn put(&mut self, n: usize) -> JobId {
        let first = self.next_id;
        self.next_id += n as JobId;
        for id in first..self.next_id {
            self.changes.push(Change::PutJob {
                record: JobRecord {
                    id,
                    queue: QUEUE,
                    state: State::Waiting,
                    spec: JobSpec::default(),
                    attempt: 0,
                    created_at: 1_700_000_000_000,
                    deadline: 0,
                },
                payload: Some(self.payload.clone()),
            });
        }
        self.commit();
        first
    }

    /// Deletes jobs `first..first + n` in one commit.
    fn delete(&mut self, first: JobId, n: usize) {
        self.changes
            .extend((first..first + n as JobId).map(Change::DeleteJob));
        self.commit();
    }
}

fn put(c: &mut Criterion, group_name: &str, name: &str, fsync: Fsync, spin_wait: bool, batches: &[usize]) {
    let mut bench = Bench::open(fsync);
    bench.spin_wait = spin_wait;
    let mut group = c.benchmark_group(group_name);
    for &n in batches {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let first = bench.next_id;
                let start = Instant::now();
                for _ in 0..iters {
                    bench.put(n);
                }
                let elapsed = start.elapsed();
                // Untimed clean-up in batches of at most 1024, so the data
                // file stays the same size from sample to sample.
                let total = bench.next_id - first;
                for at in (first..first + total).step_by(1024) {
                    bench.delete(at, (first + total - at).min(1024) as usize);
                }
                elapsed
            })
        });
    }
    group.finish();
}

fn commit_no_sync(c: &mut Criterion) {
    put(c, "commit", "put", Fsync::No, false, &BATCHES);
    put(c, "commit", "put_spin_wait", Fsync::No, true, &[1]);

    let mut bench = Bench::open(Fsync::No);
    let mut group = c.benchmark_group("commit");
    for n in BATCHES {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("put_delete", n), &n, |b, &n| {
            b.iter(|| {
                let first = bench.put(n);
                bench.delete(first, n);
            })
        });
    }
    group.finish();
}

fn commit_fsync_always(c: &mut Criterion) {
    put(c, "commit_fsync_always", "put", Fsync::Always, false, &[64]);
}

criterion_group! {
    name = no_sync;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = commit_no_sync
}
criterion_group! {
    name = always;
    // Few samples: each commit waits for the disk (milliseconds on many
    // machines), and the figure says more about the disk than the store.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    targets = commit_fsync_always
}
criterion_main!(no_sync, always);
