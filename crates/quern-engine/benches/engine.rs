//! The engine's step for each queue command: push, pull and ack, and the
//! timer sweep that expires leases, through the public API only.
//!
//! Each runs under its shard's lock, so its cost bounds how many commands
//! one shard serves a second and how long other connections wait on the
//! lock. Every measured step also drains the changes it made into a
//! reused `Vec`, as the server does before submitting them to the store.
//!
//! Queues hold a backlog of 100k waiting jobs while they are measured, so
//! the job table and the ready index are the size of a busy queue's, not
//! of an empty one's.
//!
//! - `push`: one QPUSH into the backlog.
//! - `push_pull_ack`: one job through its whole life, push then pull then
//!   ack, the backlog staying at 100k: a steady producer and worker.
//! - `pull_ack`: pull then ack the oldest job of the backlog.
//! - `tick_expired_leases`: one timer sweep in which 10k leases have run
//!   out and go back to waiting.
//!
//! The server links mimalloc; these use the system allocator, so steps
//! that allocate read a little slower here than in the server.
//!
//! Run with `cargo bench -p quern-engine --bench engine`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quern_engine::{Change, Engine, Ids, JobSpec, Millis, PushOptions};

const QUEUE: &[u8] = b"q";
/// Waiting jobs in the queue while a step is measured.
const BACKLOG: u64 = 100_000;
/// Leases that run out in one `tick_expired_leases` sweep.
const EXPIRING: u32 = 10_000;
/// A fixed clock: the engine takes `now` as an argument.
const NOW: Millis = 1_700_000_000_000;

fn payload() -> Bytes {
    Bytes::from(vec![b'x'; 100])
}

/// An engine whose queue holds `jobs` waiting jobs, its changes drained.
fn engine_with(jobs: u64, opts: &PushOptions, changes: &mut Vec<Change>) -> Engine {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    let payload = payload();
    for _ in 0..jobs {
        engine.push(QUEUE, payload.clone(), opts, NOW).expect("push");
    }
    engine.take_changes(changes);
    changes.clear();
    engine
}

/// Pulls and acks the oldest job.
fn pull_ack(engine: &mut Engine, changes: &mut Vec<Change>) {
    let pulled = engine.pull(QUEUE, 1, None, NOW);
    let job = pulled.first().expect("a waiting job");
    engine.ack(QUEUE, &[job.id], Some(job.attempt)).expect("ack");
    engine.take_changes(changes);
    changes.clear();
}

fn steps(c: &mut Criterion) {
    let opts = PushOptions::default();
    let payload = payload();
    let mut changes = Vec::new();
    let mut engine = engine_with(BACKLOG, &opts, &mut changes);

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));

    // Timed pushes grow the queue past the backlog; the jobs are pulled and
    // acked again after each sample, untimed, so memory stays bounded.
    group.bench_function("push", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(engine.push(QUEUE, payload.clone(), &opts, NOW).expect("push"));
                engine.take_changes(&mut changes);
                changes.clear();
            }
            let elapsed = start.elapsed();
            for _ in 0..iters {
                pull_ack(&mut engine, &mut changes);
            }
            elapsed
        })
    });
    assert_eq!(engine.len(QUEUE), BACKLOG);

    group.bench_function("push_pull_ack", |b| {
        b.iter(|| {
            engine.push(QUEUE, payload.clone(), &opts, NOW).expect("push");
            engine.take_changes(&mut changes);
            changes.clear();
            pull_ack(&mut engine, &mut changes);
        })
    });
    assert_eq!(engine.len(QUEUE), BACKLOG);

    // The jobs the timed steps take are pushed back before each sample,
    // untimed, so the backlog never drops below 100k.
    group.bench_function("pull_ack", |b| {
        b.iter_custom(|iters| {
            for _ in 0..iters {
                engine.push(QUEUE, payload.clone(), &opts, NOW).expect("push");
            }
            engine.take_changes(&mut changes);
            changes.clear();
            let start = Instant::now();
            for _ in 0..iters {
                pull_ack(&mut engine, &mut changes);
            }
            start.elapsed()
        })
    });
    assert_eq!(engine.len(QUEUE), BACKLOG);
    group.finish();
}

fn expired_leases(c: &mut Criterion) {
    // Retries without end, so expired jobs always go back to waiting rather
    // than to the dead-letter queue, however many sweeps run.
    let opts = PushOptions {
        spec: JobSpec {
            retries: u32::MAX,
            ..JobSpec::default()
        },
        ready_at: None,
    };
    let mut changes = Vec::new();
    let mut engine = engine_with(u64::from(EXPIRING), &opts, &mut changes);
    let mut now = NOW;

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(u64::from(EXPIRING)));
    // Each sweep is set up untimed: every job is pulled with a 1 ms lease.
    group.bench_function("tick_expired_leases", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let pulled = engine.pull(QUEUE, EXPIRING, Some(1), now);
                assert_eq!(pulled.len(), EXPIRING as usize);
                engine.take_changes(&mut changes);
                changes.clear();
                now += 2;
                let start = Instant::now();
                engine.tick(now);
                engine.take_changes(&mut changes);
                elapsed += start.elapsed();
                changes.clear();
            }
            elapsed
        })
    });
    assert_eq!(engine.len(QUEUE), u64::from(EXPIRING));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = steps, expired_leases
}
criterion_main!(benches);
