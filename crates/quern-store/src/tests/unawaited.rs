//! Changes no one waits for (a pull's lease): they wait in the open batch
//! for a change someone waits for, or until they are due, and are never
//! lost by a checkpoint, a backup or a shutdown.

use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quern_engine::{Change, Counters, JobId, JobRecord, JobSpec, QueueRecord, State};

use super::{block, config, crash_copy, reopen, submit_and_wait};
use crate::store::{Pending, UNAWAITED_MAX, UNAWAITED_WAIT};
use crate::{Fsync, Store};

fn queue(id: u32) -> Change {
    Change::PutQueue(QueueRecord {
        id,
        name: Bytes::from(format!("q{id}")),
        paused: false,
        counters: Counters::default(),
    })
}

/// Job `id` of queue 1, in `state`, with a payload only when it is new.
fn job(id: JobId, state: State, payload: Option<&'static str>) -> Change {
    Change::PutJob {
        record: JobRecord {
            id,
            queue: 1,
            state,
            spec: JobSpec::default(),
            attempt: u32::from(state == State::Active),
            created_at: 1_000,
            deadline: if state == State::Active { 99_000 } else { 0 },
        },
        payload: payload.map(|p| Bytes::from_static(p.as_bytes())),
    }
}

/// The states of the jobs a load of `store` finds, by id.
fn loaded_states(store: &Store) -> Vec<(JobId, State)> {
    let mut jobs = Vec::new();
    store.load(|_| {}, |j| jobs.push((j.id, j.state))).unwrap();
    jobs
}

/// A store in `dir` holding queue 1 and its waiting job 1, committed.
fn store_with_a_job(dir: &Path) -> Arc<Store> {
    let store = Store::open(&config(dir, Fsync::Always)).unwrap();
    submit_and_wait(&store, &mut vec![queue(1), job(1, State::Waiting, Some("one"))]);
    store
}

#[test]
fn a_batch_is_ready_when_awaited_big_due_or_closing() {
    let now = Instant::now();
    let mut p = Pending::new();
    assert!(!p.ready(now), "an empty batch is never ready");

    p.batch.push(job(1, State::Active, None));
    p.unawaited_since = Some(now);
    assert!(!p.ready(now), "a young, small batch no one waits for waits");
    assert!(!p.ready(now + UNAWAITED_WAIT - Duration::from_millis(1)));
    assert!(p.ready(now + UNAWAITED_WAIT), "due");
    assert_eq!(p.unawaited_due(), Some(now + UNAWAITED_WAIT));

    p.awaited_submissions = 1;
    assert!(p.ready(now), "someone waits for it");
    p.awaited_submissions = 0;

    p.closing = true;
    assert!(p.ready(now), "shutdown takes everything");
    p.closing = false;

    p.batch
        .extend((2..=UNAWAITED_MAX as JobId).map(|id| job(id, State::Active, None)));
    assert_eq!(p.batch.len(), UNAWAITED_MAX);
    assert!(p.ready(now), "big enough to take at once");

    p.taken();
    assert_eq!((p.open, p.awaited(), p.unawaited_since), (2, false, None));
}

/// An unawaited change alone is committed all the same, once due.
#[test]
fn an_unawaited_change_alone_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_job(dir.path());
    let ticket = store.submit_unawaited(&mut vec![job(1, State::Active, None)]);
    block(store.committed(ticket)).unwrap();
    let store = reopen(store, Fsync::Always);
    assert_eq!(loaded_states(&store), vec![(1, State::Active)]);
}

/// An unawaited change waits in the open batch, and an awaited one takes
/// it along: one record, made durable by the awaited change's flush.
#[test]
fn an_awaited_change_takes_unawaited_ones_along() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_job(dir.path());
    let commits = store.stats().commits;

    // Keep the logger writing an awaited batch, so that the next batch
    // stays open whatever the clock says.
    let hold = store.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
    let busy = store.submit(&mut vec![job(2, State::Waiting, Some("two"))]);
    while !store.shared.lock().batch.is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }

    let lease = store.submit_unawaited(&mut vec![job(1, State::Active, None)]);
    assert_eq!(lease, busy + 1, "a batch of its own");
    {
        let pending = store.shared.lock();
        assert!(!pending.awaited(), "no one waits for a lease");
        assert!(pending.unawaited_since.is_some(), "it is due some time");
    }
    let ack = store.submit(&mut vec![Change::DeleteJob(2)]);
    assert_eq!(ack, lease, "the awaited change joined the open batch");
    assert!(store.shared.lock().awaited(), "which someone waits for now");
    drop(hold);
    block(store.committed(ack)).unwrap();
    assert_eq!(store.stats().commits, commits + 2, "a record for each batch");

    // What the log holds survives a crash.
    let copy = crash_copy(dir.path());
    let crashed = Store::open(&config(copy.path(), Fsync::Always)).unwrap();
    assert_eq!(loaded_states(&crashed), vec![(1, State::Active)]);
}

/// An operation that changed nothing waits for what it could have seen:
/// the open batch, which then goes at once.
#[test]
fn awaiting_nothing_takes_an_open_unawaited_batch_along() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_job(dir.path());

    let lease = store.submit_unawaited(&mut vec![job(1, State::Active, None)]);
    assert_eq!(
        store.submit(&mut Vec::new()),
        lease,
        "the batch it could have seen"
    );
    assert_eq!(
        store.submit_unawaited(&mut Vec::new()),
        lease,
        "the same answer when it does not wait"
    );
    block(store.committed(lease)).unwrap();
    assert!(store.is_committed(lease));
}

/// A checkpoint (and so a backup) holds the unawaited changes made before
/// it, without waiting for them to be due.
#[test]
fn a_backup_holds_unawaited_changes_made_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_job(dir.path());

    let lease = store.submit_unawaited(&mut vec![job(1, State::Active, None)]);
    let target = tempfile::tempdir().unwrap();
    store.backup(&target.path().join("copy")).unwrap();
    assert!(store.is_committed(lease), "the checkpoint committed it");
    let restored = Store::open(&config(&target.path().join("copy"), Fsync::Always)).unwrap();
    assert_eq!(loaded_states(&restored), vec![(1, State::Active)]);
}

/// A shutdown commits unawaited changes too.
#[test]
fn a_shutdown_commits_unawaited_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_a_job(dir.path());
    store.submit_unawaited(&mut vec![job(1, State::Active, None)]);
    let store = reopen(store, Fsync::Always);
    assert_eq!(loaded_states(&store), vec![(1, State::Active)]);
}
