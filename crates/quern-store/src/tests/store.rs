//! The store's behaviour: restart, version check, corruption, group commit,
//! the unsynced overlay, shutdown and failing commits.

use std::sync::{Arc, Barrier, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quern_engine::{
    Change, Counters, Engine, FailMode, FailOptions, Ids, JobId, JobRecord, JobSpec, PushOptions,
    QueueRecord, State,
};

use super::{block, config, crash_copy, load_engine, reopen, submit_and_wait};
use crate::format::{self, meta_key};
use crate::{Fsync, Store, StoreConfig, StoreError, StoreStats};

fn queue_record(id: u32) -> QueueRecord {
    QueueRecord {
        id,
        name: Bytes::from(format!("q{id}")),
        paused: false,
        counters: Counters::default(),
    }
}

fn job_record(id: JobId, queue: u32) -> JobRecord {
    JobRecord {
        id,
        queue,
        state: State::Waiting,
        spec: JobSpec::default(),
        attempt: 0,
        created_at: 1_000,
        deadline: 0,
    }
}

fn put_job(id: JobId, queue: u32, payload: &str) -> Change {
    Change::PutJob {
        record: job_record(id, queue),
        payload: Some(Bytes::copy_from_slice(payload.as_bytes())),
    }
}

/// The ids of the queues and jobs a load finds, in its order.
fn loaded_ids(store: &Store) -> (Vec<u32>, Vec<JobId>) {
    let mut queues = Vec::new();
    let mut jobs = Vec::new();
    store.load(|q| queues.push(q.id), |j| jobs.push(j.id)).unwrap();
    (queues, jobs)
}

/// Keeps the applier from writing LMDB while the guard lives.
fn hold_lmdb(store: &Store) -> std::sync::MutexGuard<'_, ()> {
    store
        .shared
        .hold_apply
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Drives a real engine through pushes, pulls, acks, fails and the
/// dead-letter queue, submitting after each step, then restarts.
#[test]
fn engine_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let ids = Arc::new(Ids::default());
    let mut engine = Engine::new(Arc::clone(&ids));
    let mut changes = Vec::new();
    let mut now = 1_700_000_000_000;
    let mut step = |engine: &mut Engine| {
        engine.take_changes(&mut changes);
        store.submit(&mut changes)
    };

    let opts = |priority, retries| PushOptions {
        spec: JobSpec {
            priority,
            retries,
            backoff_ms: 100,
            lease_ms: 1_000,
        },
        ready_at: None,
    };
    let mut pushed = Vec::new();
    for i in 0..6 {
        let id = engine
            .push(b"emails", Bytes::from(format!("mail {i}")), &opts(i % 2, 1), now)
            .unwrap();
        pushed.push(id);
        step(&mut engine);
    }
    let later = PushOptions {
        ready_at: Some(now + 60_000),
        ..opts(0, 3)
    };
    engine
        .push(b"reports", Bytes::from_static(b"monthly"), &later, now)
        .unwrap();
    engine.pause(b"reports");
    step(&mut engine);

    now += 10;
    let pulled = engine.pull(b"emails", 4, None, now);
    assert_eq!(pulled.len(), 4);
    step(&mut engine);
    assert_eq!(
        engine.ack(b"emails", &[pulled[0].id], Some(pulled[0].attempt)),
        Ok(1)
    );
    let failed = pulled[1].id;
    let fail = FailOptions {
        error: Some(Bytes::from_static(b"smtp timeout")),
        ..FailOptions::default()
    };
    assert_eq!(engine.fail(b"emails", failed, &fail, now), Ok(State::Delayed));
    let fatal = FailOptions {
        error: Some(Bytes::from_static(b"bad address")),
        mode: FailMode::Fatal,
        ..FailOptions::default()
    };
    assert_eq!(engine.fail(b"emails", pulled[2].id, &fatal, now), Ok(State::Dead));
    assert_eq!(engine.fail(b"emails", pulled[3].id, &fatal, now), Ok(State::Dead));
    step(&mut engine);
    assert_eq!(engine.requeue_dead(b"emails", Some(&[pulled[2].id]), now), 1);
    assert_eq!(engine.purge_dead(b"emails", Some(&[pulled[3].id])), 1);
    step(&mut engine);

    // The job with the highest id is pushed, pulled and acked: its id must
    // still never come back.
    let last = engine
        .push(b"emails", Bytes::from_static(b"last"), &opts(9, 0), now)
        .unwrap();
    let got = engine.pull(b"emails", 1, None, now);
    assert_eq!(got[0].id, last);
    assert_eq!(engine.ack(b"emails", &[last], None), Ok(1));
    let ticket = step(&mut engine);
    block(store.committed(ticket)).unwrap();
    assert!(store.is_committed(ticket));
    assert_eq!(store.backlog(), 0);

    let before = engine.snapshot();
    let store = reopen(store, Fsync::Always);
    let (restored, loaded) = load_engine(&store);
    assert_eq!(restored.snapshot(), before);
    assert_eq!(loaded.next_job, ids.peek_job());
    assert_eq!(loaded.next_queue, ids.peek_queue());
    assert!(before.1.iter().all(|j| j.id < loaded.next_job));
    assert_eq!(loaded.next_job, last + 1, "the acked job had the highest id");
    // Same pull order (priority, then FIFO) as before the restart.
    assert_eq!(restored.peek(b"emails", 100), engine.peek(b"emails", 100));

    let live: Vec<JobId> = before.1.iter().map(|j| j.id).collect();
    let payloads = store.payloads(&live).unwrap();
    for (id, payload) in live.iter().zip(&payloads) {
        let expected = if *id == pushed[5] + 1 {
            "monthly".to_string()
        } else {
            format!("mail {}", id - 1)
        };
        assert_eq!(
            payload.as_deref(),
            Some(expected.as_bytes()),
            "payload of job {id}"
        );
    }
    assert_eq!(
        store.last_error(failed).unwrap().as_deref(),
        Some(&b"smtp timeout"[..])
    );
    assert_eq!(
        store.last_error(pulled[2].id).unwrap().as_deref(),
        Some(&b"bad address"[..])
    );
    // Deleted jobs take their payload and error with them.
    assert_eq!(
        store.payloads(&[pulled[0].id, pulled[3].id, last]).unwrap(),
        vec![None, None, None]
    );
    assert_eq!(store.last_error(pulled[3].id).unwrap(), None);
}

#[test]
fn another_format_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(
        &store,
        &mut vec![Change::PutQueue(queue_record(1)), put_job(1, 1, "x")],
    );
    store.shutdown().unwrap();
    let mut txn = store.env.write_txn().unwrap();
    store
        .dbs
        .meta
        .put(&mut txn, meta_key::FORMAT_VERSION, &2u32.to_be_bytes())
        .unwrap();
    txn.commit().unwrap();
    drop(Arc::into_inner(store).unwrap());

    for _ in 0..2 {
        // Twice: the refusal must not have rewritten the version.
        match Store::open(&config(dir.path(), Fsync::Always)) {
            Err(
                e @ StoreError::Format {
                    found: 2,
                    expected: 1,
                    ..
                },
            ) => {
                let message = e.to_string();
                assert!(
                    message.contains("has format version 2; this build reads version 1"),
                    "{message}"
                );
                assert!(message.contains(&dir.path().display().to_string()), "{message}");
            }
            other => panic!("expected a format error, got {other:?}"),
        }
    }
}

#[test]
fn data_without_a_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    store.shutdown().unwrap();
    let mut txn = store.env.write_txn().unwrap();
    store.dbs.meta.delete(&mut txn, meta_key::FORMAT_VERSION).unwrap();
    txn.commit().unwrap();
    drop(Arc::into_inner(store).unwrap());
    match Store::open(&config(dir.path(), Fsync::Always)) {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("without a Quern format version")),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_corrupt_record_fails_the_load_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(
        &store,
        &mut vec![Change::PutQueue(queue_record(1)), put_job(41, 1, "x")],
    );
    store.shutdown().unwrap();
    let mut bad = format::encode_job(&job_record(41, 1));
    bad[5] = 0; // no state has the number 0
    let mut txn = store.env.write_txn().unwrap();
    store.dbs.jobs.put(&mut txn, &format::job_key(41), &bad).unwrap();
    txn.commit().unwrap();
    match store.load(|_| {}, |_| {}) {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("job 41"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // A job whose queue is missing would trip the engine: refused too.
    let mut txn = store.env.write_txn().unwrap();
    store
        .dbs
        .jobs
        .put(
            &mut txn,
            &format::job_key(41),
            &format::encode_job(&job_record(41, 7)),
        )
        .unwrap();
    txn.commit().unwrap();
    match store.load(|_| {}, |_| {}) {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("queue 7"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn concurrent_submitters_share_commits() {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(&store, &mut vec![Change::PutQueue(queue_record(1))]);
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                start.wait();
                for i in 0..EACH {
                    let id = 1 + t * EACH + i;
                    let mut changes = vec![put_job(id, 1, &format!("job {id}"))];
                    let ticket = store.submit(&mut changes);
                    assert!(changes.is_empty(), "submit drains its input");
                    runtime.block_on(store.committed(ticket)).unwrap();
                    assert!(store.is_committed(ticket));
                    // Committed means readable.
                    let payload = store.payloads(&[id]).unwrap().pop().flatten();
                    assert_eq!(payload, Some(Bytes::from(format!("job {id}"))));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = store.stats();
    let submissions = THREADS * EACH + 1;
    assert_eq!(stats.changes, submissions);
    assert!(stats.commits < submissions, "no commit was shared: {stats:?}");
    assert!(stats.fsyncs >= stats.commits);
    assert_eq!(stats.pending, 0);
    assert!(stats.used_bytes > 0 && stats.used_bytes < stats.map_size);
    assert_eq!(stats.last_error, None);

    let mut jobs = 0;
    let loaded = store.load(|_| {}, |_| jobs += 1).unwrap();
    assert_eq!(jobs, THREADS * EACH);
    assert_eq!(loaded.next_job, THREADS * EACH + 1);
    assert_eq!(loaded.next_queue, 2);
}

/// Writers that join the next batch while one is flushed: with 16 or more
/// the logger waits for the batch to grow before taking it, with fewer it
/// takes it at once; a lone writer never waits. Everything is committed
/// either way.
#[test]
fn many_writers_during_a_flush_make_the_next_batch_wait_for_more() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(&store, &mut vec![Change::PutQueue(queue_record(1))]);
    let mut next_id = 1;
    let mut flush_with_joined = |joined: usize| {
        let hold = store.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
        let first = store.submit(&mut vec![put_job(next_id, 1, "first")]);
        next_id += 1;
        // The logger has taken it, and waits for the hold to write it.
        let taken = Instant::now();
        while store.shared.lock().open <= first {
            assert!(
                taken.elapsed() < Duration::from_secs(10),
                "the logger never took the batch"
            );
            thread::yield_now();
        }
        let tickets: Vec<_> = (0..joined)
            .map(|_| {
                next_id += 1;
                store.submit(&mut vec![put_job(next_id - 1, 1, "joined")])
            })
            .collect();
        assert!(
            tickets.iter().all(|&t| t == first + 1),
            "all joined the next batch"
        );
        drop(hold);
        for ticket in tickets {
            block(store.committed(ticket)).unwrap();
        }
        store.stats().gathers
    };
    assert_eq!(flush_with_joined(15), 0, "15 writers are taken at once");
    assert_eq!(flush_with_joined(16), 1, "16 writers wait for more");
    for i in 0..20 {
        submit_and_wait(&store, &mut vec![put_job(1000 + i, 1, "alone")]);
    }
    let stats = store.stats();
    assert_eq!(stats.gathers, 1, "a lone writer never waits");
    assert_eq!(stats.pending, 0);
    let mut jobs = 0;
    store.load(|_| {}, |_| jobs += 1).unwrap();
    assert_eq!(jobs, 2 + 15 + 16 + 20);
}

#[test]
fn payloads_and_errors_are_readable_before_and_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::EverySec)).unwrap();
    submit_and_wait(&store, &mut vec![Change::PutQueue(queue_record(1))]);

    // Keep the writer from committing while we look.
    let hold = store.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
    let ticket = store.submit(&mut vec![
        put_job(1, 1, "one"),
        put_job(2, 1, "two"),
        Change::SetError {
            id: 1,
            error: Bytes::from_static(b"first"),
        },
        Change::SetError {
            id: 1,
            error: Bytes::from_static(b"second"),
        },
    ]);
    let empty = store.submit(&mut Vec::new());
    assert_eq!(empty, ticket, "nothing to submit waits for what is pending");
    assert_eq!(
        store.payloads(&[2, 99, 1]).unwrap(),
        vec![
            Some(Bytes::from_static(b"two")),
            None,
            Some(Bytes::from_static(b"one"))
        ]
    );
    assert_eq!(store.last_error(1).unwrap(), Some(Bytes::from_static(b"second")));
    assert!(!store.is_committed(ticket), "the reads came from memory");
    assert!(store.backlog() >= 4);
    drop(hold);

    block(store.committed(ticket)).unwrap();
    store.checkpoint().unwrap();
    assert!(
        store.shared.lock().unsynced.is_empty(),
        "entries leave the overlay once LMDB holds them"
    );
    assert_eq!(
        store.payloads(&[1, 2, 3]).unwrap(),
        vec![
            Some(Bytes::from_static(b"one")),
            Some(Bytes::from_static(b"two")),
            None
        ]
    );
    assert_eq!(
        store.last_errors(&[1, 2]).unwrap(),
        vec![Some(Bytes::from_static(b"second")), None]
    );

    // A deletion hides the stored payload at once, before its commit.
    let hold = store.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
    let ticket = store.submit(&mut vec![Change::DeleteJob(1)]);
    assert_eq!(store.payloads(&[1]).unwrap(), vec![None]);
    assert_eq!(store.last_error(1).unwrap(), None);
    assert!(!store.is_committed(ticket));
    drop(hold);
    block(store.committed(ticket)).unwrap();
    assert_eq!(
        store.payloads(&[1, 2]).unwrap(),
        vec![None, Some(Bytes::from_static(b"two"))]
    );
    assert_eq!(store.payloads(&[]).unwrap(), Vec::<Option<Bytes>>::new());
    let empty = store.submit(&mut Vec::new());
    assert!(
        store.is_committed(empty),
        "with nothing pending, the last batch is returned"
    );
}

#[test]
fn shutdown_commits_everything_then_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::No)).unwrap();
    let ticket = store.submit(&mut vec![
        Change::PutQueue(queue_record(1)),
        put_job(1, 1, "kept"),
    ]);
    store.shutdown().unwrap();
    assert!(store.is_committed(ticket), "shutdown commits what was submitted");
    assert!(store.stats().fsyncs >= 1, "shutdown syncs even with fsync no");
    store.shutdown().unwrap();

    let mut late = vec![put_job(2, 1, "dropped")];
    let ticket = store.submit(&mut late);
    assert!(late.is_empty());
    assert!(!store.is_committed(ticket));
    assert!(matches!(block(store.committed(ticket)), Err(StoreError::Closed)));
    // Reads still work until the last handle goes.
    assert_eq!(
        store.payloads(&[1, 2]).unwrap(),
        vec![Some(Bytes::from_static(b"kept")), None]
    );

    let store = reopen(store, Fsync::No);
    let mut jobs = Vec::new();
    store.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![1]);
}

#[test]
fn everysec_syncs_an_idle_commit_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::EverySec)).unwrap();
    // Quick commits, then nothing: the writer is idle, yet the commits
    // reach the disk within about a second, and not one sync per commit.
    for id in 1..=20 {
        submit_and_wait(&store, &mut vec![Change::PutQueue(queue_record(id))]);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while store.stats().fsyncs == 0 {
        assert!(Instant::now() < deadline, "no sync: {:?}", store.stats());
        thread::sleep(Duration::from_millis(20));
    }
    // Nothing more to sync: no more syncs.
    thread::sleep(Duration::from_millis(1_300));
    let stats = store.stats();
    assert_eq!(stats.commits, 20);
    assert!(stats.fsyncs <= 3, "{stats:?}");
}

/// A change is durable once the log holds it; when LMDB then refuses it
/// (here: a map too small), it is kept, retried and still readable, and
/// the next start with room puts it into LMDB.
#[test]
fn a_failing_lmdb_commit_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        map_size: 256 << 10,
        ..config(dir.path(), Fsync::Always)
    })
    .unwrap();
    let big = Bytes::from(vec![7u8; 1 << 20]);
    let ticket = store.submit(&mut vec![
        Change::PutQueue(queue_record(1)),
        Change::PutJob {
            record: job_record(1, 1),
            payload: Some(big.clone()),
        },
    ]);
    block(store.committed(ticket)).expect("durable in the log");
    thread::sleep(Duration::from_millis(400));
    let stats = store.stats();
    assert_eq!((stats.commits, stats.checkpoints), (1, 0));
    let error = stats.last_error.expect("the failure is reported");
    assert!(error.contains("MDB_MAP_FULL") || error.contains("map"), "{error}");
    // Still readable from memory, since nothing was dropped.
    assert_eq!(store.payloads(&[1]).unwrap(), vec![Some(big.clone())]);

    // Shutdown gives up after a few quick retries instead of hanging.
    let started = Instant::now();
    assert!(store.shutdown().is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(Arc::into_inner(store).expect("the test holds the last handle"));

    // With room, the log's copy goes into LMDB at start.
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let mut jobs = Vec::new();
    store.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![1]);
    assert_eq!(store.payloads(&[1]).unwrap(), vec![Some(big)]);
}

/// A crash (no shutdown: the threads are simply gone) loses nothing the
/// log made durable, though LMDB never saw it.
#[test]
fn what_only_the_log_holds_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(
        &store,
        &mut vec![Change::PutQueue(queue_record(1)), put_job(1, 1, "one")],
    );
    store.checkpoint().unwrap();
    // Keep LMDB from seeing the next batch, and copy the files as a power
    // cut would leave them once the batch is durable.
    let hold = hold_lmdb(&store);
    submit_and_wait(&store, &mut vec![put_job(2, 1, "two"), Change::DeleteJob(1)]);
    let copy = crash_copy(dir.path());
    drop(hold);
    let crashed = Store::open(&config(copy.path(), Fsync::Always)).unwrap();
    assert_eq!(
        crashed.stats().checkpoints,
        1,
        "the log's record went into LMDB at start"
    );
    let mut jobs = Vec::new();
    crashed.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![2]);
    assert_eq!(
        crashed.payloads(&[1, 2]).unwrap(),
        vec![None, Some(Bytes::from_static(b"two"))]
    );
}

/// Every push records its queue again; a batch keeps one record per
/// queue, its last, and what the log alone holds is that record too.
#[test]
fn a_batch_keeps_each_queues_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let counted = |id, pushed| {
        let mut record = queue_record(id);
        record.counters.pushed = pushed;
        Change::PutQueue(record)
    };
    submit_and_wait(&store, &mut vec![counted(1, 0), counted(2, 0)]);
    store.checkpoint().unwrap();

    let hold_apply = hold_lmdb(&store);
    let hold = store.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
    // The logger may have taken the first submission before the hold.
    store.submit(&mut vec![counted(1, 1), put_job(1, 1, "one")]);
    store.submit(&mut vec![counted(1, 2), put_job(2, 1, "two"), counted(2, 1)]);
    let ticket = store.submit(&mut vec![counted(1, 3), put_job(3, 1, "three")]);
    let batch = store.shared.lock().batch.clone();
    let records: Vec<_> = batch
        .iter()
        .filter_map(|c| match c {
            Change::PutQueue(q) => Some((q.id, q.counters.pushed)),
            _ => None,
        })
        .collect();
    assert_eq!(records, vec![(1, 3), (2, 1)], "batch: {batch:?}");
    let jobs = batch
        .iter()
        .filter(|c| matches!(c, Change::PutJob { .. }))
        .count();
    assert!(
        jobs == 3 || (jobs == 2 && batch.len() == 4),
        "every job is kept: {batch:?}"
    );
    drop(hold);
    block(store.committed(ticket)).unwrap();

    // A crash now leaves the records in the log only.
    let copy = crash_copy(dir.path());
    drop(hold_apply);
    let crashed = Store::open(&config(copy.path(), Fsync::Always)).unwrap();
    assert_eq!(crashed.stats().checkpoints, 1, "the log's record went into LMDB");
    for store in [crashed, reopen(store, Fsync::Always)] {
        let mut queues = Vec::new();
        let mut jobs = Vec::new();
        store
            .load(|q| queues.push((q.id, q.counters.pushed)), |j| jobs.push(j.id))
            .unwrap();
        assert_eq!(queues, vec![(1, 3), (2, 1)]);
        assert_eq!(jobs, vec![1, 2, 3]);
    }
}

/// One PurgeJobs in the log deletes every job of the queue in its range,
/// and no other queue's, whether LMDB took it before a crash or the next
/// start replays it.
#[test]
fn a_bulk_delete_takes_the_queues_jobs_in_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(
        &store,
        &mut vec![
            Change::PutQueue(queue_record(1)),
            Change::PutQueue(queue_record(2)),
            put_job(1, 1, "one"),
            put_job(2, 2, "two"),
            put_job(3, 1, "three"),
            Change::SetError {
                id: 3,
                error: Bytes::from_static(b"failed"),
            },
        ],
    );
    store.checkpoint().unwrap();
    let hold = hold_lmdb(&store);
    // A job of queue 1 pushed in the same batch as the deletion goes too;
    // job 2, in the range but of queue 2, stays.
    submit_and_wait(
        &store,
        &mut vec![
            put_job(4, 1, "four"),
            Change::PurgeJobs {
                queue: 1,
                first: 1,
                last: 4,
            },
            Change::DeleteQueue(1),
        ],
    );
    let copy = crash_copy(dir.path());
    drop(hold);
    let crashed = Store::open(&config(copy.path(), Fsync::Always)).unwrap();
    for store in [crashed, reopen(store, Fsync::Always)] {
        let (queues, jobs) = loaded_ids(&store);
        assert_eq!(queues, vec![2]);
        assert_eq!(jobs, vec![2]);
        assert_eq!(
            store.payloads(&[1, 2, 3, 4]).unwrap(),
            vec![None, Some(Bytes::from_static(b"two")), None, None]
        );
        assert_eq!(store.last_error(3).unwrap(), None);
    }
}

/// A bulk delete goes on over several LMDB transactions. A crash between
/// them (here: before the first) leaves it recorded in LMDB, and the next
/// start finishes it before it loads anything.
#[test]
fn a_bulk_delete_cut_short_by_a_crash_is_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    // Jobs 1 to 20: the odd ones queue 1's, the even ones queue 2's.
    let mut changes = vec![
        Change::PutQueue(queue_record(1)),
        Change::PutQueue(queue_record(2)),
    ];
    changes.extend((1..=20).map(|id| put_job(id, 2 - (id % 2) as u32, &format!("job {id}"))));
    submit_and_wait(&store, &mut changes);
    store.checkpoint().unwrap();
    let commits_before = store.stats().checkpoints;

    let hold = store
        .shared
        .hold_purge
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let ticket = submit_and_wait(
        &store,
        &mut vec![
            Change::PurgeJobs {
                queue: 1,
                first: 1,
                last: 19,
            },
            Change::DeleteQueue(1),
        ],
    );
    // The batch is in LMDB, the deletion of its jobs not begun.
    while store.shared.apply_state().applied_ticket < ticket {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(store.stats().bulk_deletes, 1);
    let copy = crash_copy(dir.path());
    drop(hold);
    store.checkpoint().unwrap();
    assert_eq!(store.stats().bulk_deletes, 0);
    let purge_commits = store.stats().checkpoints - commits_before - 1;
    assert!(
        purge_commits >= (19 / crate::writer::PURGE_SLICE) as u64,
        "19 jobs looked at, {} a transaction, in {purge_commits} transactions",
        crate::writer::PURGE_SLICE
    );

    let crashed = Store::open(&config(copy.path(), Fsync::Always)).unwrap();
    for store in [crashed, reopen(store, Fsync::Always)] {
        let (queues, jobs) = loaded_ids(&store);
        assert_eq!(queues, vec![2]);
        assert_eq!(jobs, (2..=20).step_by(2).collect::<Vec<JobId>>());
        let ids: Vec<JobId> = (1..=20).collect();
        let payloads = store.payloads(&ids).unwrap();
        for (id, payload) in ids.iter().zip(payloads) {
            let expected = (id % 2 == 0).then(|| Bytes::from(format!("job {id}")));
            assert_eq!(payload, expected, "job {id}");
        }
    }
}

#[test]
fn fsync_names_parse_both_ways() {
    for f in [Fsync::Always, Fsync::EverySec, Fsync::No] {
        assert_eq!(f.name().parse::<Fsync>(), Ok(f));
        assert_eq!(f.name().to_uppercase().parse::<Fsync>(), Ok(f));
        assert_eq!(f.to_string(), f.name());
    }
    assert!("sometimes"
        .parse::<Fsync>()
        .unwrap_err()
        .contains("always, everysec or no"));
    assert_eq!(StoreConfig::default().fsync, Fsync::Always);
    assert_eq!(StoreConfig::new("x").map_size, crate::DEFAULT_MAP_SIZE);
}

#[test]
fn the_default_map_size_opens_and_the_handle_is_shareable() {
    fn shareable<T: Send + Sync + std::fmt::Debug>(_: &T) {}
    fn sendable<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    // A missing directory is created.
    let store = Store::open(&StoreConfig::new(dir.path().join("nested/data"))).unwrap();
    shareable(&*store);
    sendable(&store.committed(1));
    let stats: StoreStats = store.stats();
    assert_eq!(stats.map_size, 1 << 40);
    assert!(format!("{store:?}").contains("Store"));
    assert_eq!(store.fsync(), Fsync::Always);
    assert!(store.dir().ends_with("nested/data"));
    let loaded = store
        .load(|_| panic!("no queues"), |_| panic!("no jobs"))
        .unwrap();
    assert_eq!((loaded.next_job, loaded.next_queue), (1, 1));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let error = Store::open(&config(dir.path(), Fsync::Always)).unwrap_err();
    assert!(matches!(error, StoreError::InUse(_)), "{error}");
    assert!(error.to_string().contains("in use by another process"), "{error}");
}

/// A batch writes each record's net effect: a job pushed and deleted in
/// one batch leaves nothing, a queue's records collapse to its last, and
/// ids that arrive out of order (shards reserve ids before they submit)
/// are stored whether or not they could be appended.
#[test]
fn a_batch_writes_each_records_net_effect_in_any_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let active = |id| Change::PutJob {
        record: JobRecord {
            state: State::Active,
            attempt: 1,
            deadline: 9_000,
            ..job_record(id, 1)
        },
        payload: None,
    };
    let pushed_twice = QueueRecord {
        counters: Counters {
            pushed: 2,
            ..Counters::default()
        },
        ..queue_record(1)
    };
    submit_and_wait(
        &store,
        &mut vec![
            Change::PutQueue(queue_record(1)),
            put_job(20, 1, "twenty"),
            // Pushed, pulled and acked before the commit.
            put_job(21, 1, "gone"),
            active(21),
            Change::DeleteJob(21),
            Change::PutQueue(pushed_twice.clone()),
            // A lower id submitted later, by another shard.
            put_job(10, 1, "ten"),
            Change::SetError {
                id: 10,
                error: Bytes::from_static(b"first"),
            },
            Change::SetError {
                id: 10,
                error: Bytes::from_static(b"second"),
            },
        ],
    );
    // A later batch: an id below the highest stored, and one above.
    submit_and_wait(
        &store,
        &mut vec![put_job(15, 1, "fifteen"), put_job(30, 1, "thirty"), active(20)],
    );

    let mut queues = Vec::new();
    let mut jobs = Vec::new();
    store.load(|q| queues.push(q), |j| jobs.push(j)).unwrap();
    assert_eq!(queues, vec![pushed_twice]);
    let stored: Vec<(JobId, State)> = jobs.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(
        stored,
        vec![
            (10, State::Waiting),
            (15, State::Waiting),
            (20, State::Active),
            (30, State::Waiting)
        ]
    );
    let payloads = store.payloads(&[10, 15, 20, 21, 30]).unwrap();
    let text: Vec<Option<&[u8]>> = payloads.iter().map(|p| p.as_deref()).collect();
    assert_eq!(
        text,
        vec![
            Some(&b"ten"[..]),
            Some(&b"fifteen"[..]),
            Some(&b"twenty"[..]),
            None,
            Some(&b"thirty"[..])
        ]
    );
    assert_eq!(store.last_error(10).unwrap().as_deref(), Some(&b"second"[..]));
    let txn = store.env.read_txn().unwrap();
    assert_eq!(store.dbs.payloads.len(&txn).unwrap(), 4, "job 21 never written");
    drop(txn);

    // Reopened, appending continues above what is stored.
    let store = reopen(store, Fsync::Always);
    submit_and_wait(&store, &mut vec![put_job(25, 1, "25"), put_job(31, 1, "31")]);
    let mut ids = Vec::new();
    store.load(|_| {}, |j| ids.push(j.id)).unwrap();
    assert_eq!(ids, vec![10, 15, 20, 25, 30, 31]);
}

/// Whatever the sync policy, a log file is written over only once LMDB
/// holds its records on disk: with fsync no, filling the log forces a sync
/// of LMDB, where nothing else would before shutdown.
#[test]
fn the_log_is_written_over_only_after_lmdb_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::No)).unwrap();
    submit_and_wait(&store, &mut vec![Change::PutQueue(queue_record(1))]);
    let half = (crate::wal::FILE_BYTES / 2) as usize;
    // Two records fill a file. Each is in LMDB (not synced) before the
    // next is written, so only the sync can hold up writing over a file.
    for id in 1..=6 {
        submit_and_wait(
            &store,
            &mut vec![Change::PutJob {
                record: job_record(id, 1),
                payload: Some(Bytes::from(vec![id as u8; half])),
            }],
        );
        thread::sleep(Duration::from_millis(150));
    }
    let stats = store.stats();
    assert_eq!(stats.commits, 7);
    assert!(
        stats.fsyncs >= 1,
        "the log filled up without a sync of LMDB: {stats:?}"
    );
    let store = reopen(store, Fsync::No);
    let mut jobs = Vec::new();
    store.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_backup_holds_everything_committed_before_it_and_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    submit_and_wait(
        &store,
        &mut vec![
            Change::PutQueue(queue_record(1)),
            put_job(1, 1, "one"),
            put_job(2, 1, "two"),
        ],
    );
    // Committed to the log; LMDB may not have it yet: the backup's
    // checkpoint must bring it in.
    submit_and_wait(&store, &mut vec![Change::DeleteJob(1), put_job(3, 1, "three")]);
    let target = tempfile::tempdir().unwrap();
    let backup = store.backup(&target.path().join("copy")).unwrap();
    assert_eq!(backup.path, target.path().join("copy").join(crate::BACKUP_FILE));
    assert_eq!(backup.bytes, std::fs::metadata(&backup.path).unwrap().len());
    assert!(!target.path().join("copy/data.mdb.partial").exists());
    // Changes after the backup are not in it.
    submit_and_wait(&store, &mut vec![put_job(4, 1, "four")]);

    let restored = Store::open(&config(&target.path().join("copy"), Fsync::Always)).unwrap();
    let mut jobs = Vec::new();
    let loaded = restored.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![2, 3]);
    assert_eq!(loaded.next_job, 4, "ids continue after the copy's last job");
    assert_eq!(
        restored.payloads(&[2, 3]).unwrap(),
        vec![
            Some(Bytes::from_static(b"two")),
            Some(Bytes::from_static(b"three"))
        ]
    );
    // The copy is a data directory of its own: it takes new writes.
    submit_and_wait(&restored, &mut vec![put_job(4, 1, "four, again")]);
    let reopened = reopen(restored, Fsync::Always);
    let mut jobs = Vec::new();
    reopened.load(|_| {}, |j| jobs.push(j.id)).unwrap();
    assert_eq!(jobs, vec![2, 3, 4]);

    // A second backup into the same place replaces the first.
    store.backup(&target.path().join("copy2")).unwrap();
    let again = store.backup(&target.path().join("copy2")).unwrap();
    assert!(again.bytes > 0);
}

/// Reading many payloads at once walks a cursor from id to id where they
/// are close, and looks far ones up: either way each id gets what reading
/// it alone gets, whatever the order asked in, with ids repeated, missing,
/// deleted, far apart, or past the last.
#[test]
fn many_payloads_read_as_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::No)).unwrap();
    let mut changes = vec![Change::PutQueue(queue_record(1))];
    // Ids 1..=300 with gaps, and a few far away.
    let stored: Vec<JobId> = (1..=300)
        .filter(|id| id % 7 != 0)
        .chain([5_000, 5_001, 90_000])
        .collect();
    changes.extend(stored.iter().map(|&id| put_job(id, 1, &format!("payload-{id}"))));
    submit_and_wait(&store, &mut changes);
    submit_and_wait(&store, &mut (40..60).map(Change::DeleteJob).collect());
    store.checkpoint().unwrap();
    assert!(store.shared.lock().unsynced.is_empty(), "all read from LMDB");

    let alone = |id: JobId| store.payloads(&[id]).unwrap().pop().flatten();
    assert_eq!(alone(1), Some(Bytes::from_static(b"payload-1")));
    assert_eq!(alone(7), None);
    assert_eq!(alone(45), None);
    // Close together, out of order, repeated; then far apart and past the
    // end; then a run of ids that are mostly missing.
    let mut asked: Vec<JobId> = vec![12, 10, 11, 11, 14, 13, 30, 28, 1, 2];
    asked.extend([4_999, 5_000, 5_001, 5_002, 90_000, 1, 300, 299, 100_000, u64::MAX]);
    asked.extend((35..75).rev());
    asked.extend((1..=320).step_by(3));
    let together = store.payloads(&asked).unwrap();
    let each: Vec<Option<Bytes>> = asked.iter().map(|&id| alone(id)).collect();
    assert_eq!(together, each);
    assert_eq!(
        together.iter().filter(|p| p.is_some()).count(),
        asked
            .iter()
            .filter(|&&id| stored.contains(&id) && !(40..60).contains(&id))
            .count()
    );
}
