//! The writer thread: the only code that writes to LMDB.
//!
//! It sleeps until a batch is open, takes the whole batch, commits it in
//! one write transaction, publishes the batch's number, and goes back for
//! whatever arrived meanwhile. That loop is group commit: while one commit
//! waits for the disk, every submission that arrives joins the next one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use heed::{Env, MdbError, PutFlags, RwTxn, WithoutTls};
use quern_engine::{Change, JobId, JobRecord, QueueId, QueueRecord};

use crate::error::StoreError;
use crate::format::{self, meta_key};
use crate::store::{Db, Dbs, Fsync, Shared, Ticket};

/// With fsync everysec, the longest a commit stays unsynced.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The first pause after a failed commit; it doubles on each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest pause between retries of a failing commit.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// During shutdown: retries of a failing commit before giving up, and the
/// longest pause between them, so that shutdown (and `Drop`) end.
const CLOSING_ATTEMPTS: u32 = 5;
const MAX_CLOSING_RETRY: Duration = Duration::from_millis(500);

/// Changes (about 100 bytes each) whose room a batch keeps after a commit,
/// and overlay entries whose room the overlay keeps once empty; a burst
/// beyond this gives its memory back.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The writer's state; it lives on the writer thread.
pub(crate) struct Writer {
    /// The environment (a clone of the handle's).
    env: Env<WithoutTls>,
    /// Its databases.
    dbs: Dbs,
    /// What it shares with the handle.
    shared: Arc<Shared>,
    /// When to sync.
    fsync: Fsync,
    /// `meta.next_job` as committed; written only when a batch passes it.
    next_job: JobId,
    /// `meta.next_queue` as committed.
    next_queue: QueueId,
    /// Jobs with ids up to this one may be stored; above it, a job is new
    /// to LMDB and can be appended.
    appended: JobId,
    /// Reused buffer for encoding queue records.
    scratch: Vec<u8>,
    /// Reused by `commit`: where each queue's last change in the batch is.
    last_queue_change: HashMap<QueueId, usize>,
    /// Reused by `commit`: every job change as (job id, place in batch).
    by_job: Vec<(JobId, usize)>,
}

/// Puts `value` under `key`, appending when `append` says the key is above
/// every stored one. Should that ever be wrong, LMDB refuses the append
/// before changing anything, and a plain put does the job.
fn put(db: Db, txn: &mut RwTxn, key: &[u8], value: &[u8], append: bool) -> Result<(), heed::Error> {
    if append {
        match db.put_with_flags(txn, PutFlags::APPEND, key, value) {
            Err(heed::Error::Mdb(MdbError::KeyExist)) => {}
            done => return done,
        }
    }
    db.put(txn, key, value)
}

/// What a batch's changes to one job come to.
#[derive(Debug, Default)]
struct NetJob<'a> {
    /// The last record written.
    record: Option<&'a JobRecord>,
    /// The payload, when the job was pushed in this batch.
    payload: Option<&'a Bytes>,
    /// The last error set.
    error: Option<&'a Bytes>,
    /// The batch deletes the job (the other fields no longer matter).
    deleted: bool,
}

impl<'a> NetJob<'a> {
    /// The net effect of one job's changes, given in the order made.
    fn of(changes: impl Iterator<Item = &'a Change>) -> NetJob<'a> {
        let mut net = NetJob::default();
        for change in changes {
            match change {
                Change::PutJob { record, payload } => {
                    net.record = Some(record);
                    if payload.is_some() {
                        net.payload = payload.as_ref();
                    }
                }
                Change::SetError { error, .. } => net.error = Some(error),
                Change::DeleteJob(_) => net.deleted = true,
                Change::PutQueue(_) | Change::DeleteQueue(_) => {}
            }
        }
        net
    }
}

/// Marks the writer stopped however its thread ends, panics included, so
/// that no one waits forever for a commit that will not come.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.progress.send_modify(|p| p.stopped = true);
    }
}

impl Writer {
    pub(crate) fn new(
        env: Env<WithoutTls>,
        dbs: Dbs,
        shared: Arc<Shared>,
        fsync: Fsync,
        next_job: JobId,
        next_queue: QueueId,
        appended: JobId,
    ) -> Writer {
        Writer {
            env,
            dbs,
            shared,
            fsync,
            next_job,
            next_queue,
            appended,
            scratch: Vec::new(),
            last_queue_change: HashMap::new(),
            by_job: Vec::new(),
        }
    }

    /// The thread's body: serves until shutdown, then syncs.
    pub(crate) fn run(mut self) -> Result<(), StoreError> {
        let _stop = StopGuard(Arc::clone(&self.shared));
        let served = self.serve();
        // Whatever the policy, what was committed reaches the disk before
        // shutdown returns.
        let synced = self.sync();
        served.and(synced.map_err(StoreError::from))
    }

    /// Commits batches until shutdown has begun and everything submitted
    /// before it is committed.
    fn serve(&mut self) -> Result<(), StoreError> {
        // Changes taken from the pending batch and not yet committed: more
        // than one batch when a commit failed and later batches joined it.
        let mut carry: Vec<Change> = Vec::new();
        // The newest batch in `carry`.
        let mut ticket: Ticket = 0;
        // Failed attempts at committing `carry`, and when to try again.
        // `retry_at` is set exactly when `carry` is not empty.
        let mut failures: u32 = 0;
        let mut closing_failures: u32 = 0;
        let mut retry_at: Option<Instant> = None;
        // Commits not yet synced (fsync everysec and no).
        let mut unsynced = false;
        let mut last_sync = Instant::now();

        loop {
            let closing = {
                let mut pending = self.shared.lock();
                loop {
                    let now = Instant::now();
                    let retry_due = retry_at.is_none_or(|at| now >= at);
                    let has_work = !carry.is_empty() || !pending.batch.is_empty();
                    let sync_at =
                        (unsynced && self.fsync == Fsync::EverySec).then(|| last_sync + SYNC_INTERVAL);
                    let done = pending.closing && !has_work;
                    if (has_work && retry_due) || sync_at.is_some_and(|at| now >= at) || done {
                        break;
                    }
                    let wake_at = [retry_at, sync_at].into_iter().flatten().min();
                    pending = match wake_at {
                        Some(at) => {
                            let wait = at.saturating_duration_since(now);
                            let (guard, _) = self
                                .shared
                                .wake
                                .wait_timeout(pending, wait)
                                .unwrap_or_else(PoisonError::into_inner);
                            guard
                        }
                        None => self
                            .shared
                            .wake
                            .wait(pending)
                            .unwrap_or_else(PoisonError::into_inner),
                    };
                }
                let retry_due = retry_at.is_none_or(|at| Instant::now() >= at);
                if retry_due && !pending.batch.is_empty() {
                    if carry.is_empty() {
                        // Swap, so the allocation goes back and forth
                        // instead of being copied.
                        std::mem::swap(&mut carry, &mut pending.batch);
                    } else {
                        carry.append(&mut pending.batch);
                    }
                    ticket = pending.open;
                    pending.open += 1;
                }
                pending.closing
            };

            if !carry.is_empty() && retry_at.is_none_or(|at| Instant::now() >= at) {
                match self.commit(&carry) {
                    Ok(()) => {
                        self.committed(&carry, ticket);
                        carry.clear();
                        // A burst must not pin its memory for the server's life.
                        carry.shrink_to(KEEP_CAPACITY);
                        self.by_job.shrink_to(KEEP_CAPACITY);
                        failures = 0;
                        retry_at = None;
                        unsynced = self.fsync != Fsync::Always;
                    }
                    Err(e) => {
                        failures += 1;
                        self.shared.report(format!(
                            "commit of {} changes failed (attempt {failures}), will retry: {e}",
                            carry.len()
                        ));
                        let mut pause = FIRST_RETRY
                            .saturating_mul(1 << (failures - 1).min(16))
                            .min(MAX_RETRY);
                        if closing {
                            closing_failures += 1;
                            if closing_failures >= CLOSING_ATTEMPTS {
                                return Err(e.into());
                            }
                            pause = pause.min(MAX_CLOSING_RETRY);
                        }
                        retry_at = Some(Instant::now() + pause);
                    }
                }
            }

            if unsynced && self.fsync == Fsync::EverySec && last_sync.elapsed() >= SYNC_INTERVAL {
                // A failed sync is retried a second later, not at once.
                last_sync = Instant::now();
                match self.sync() {
                    Ok(()) => unsynced = false,
                    Err(e) => self.shared.report(format!("sync failed, will retry: {e}")),
                }
            }

            if closing && carry.is_empty() && self.shared.lock().batch.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes `changes` in one transaction, with the id counters when the
    /// changes pass them.
    ///
    /// Only each record's net effect in the batch is written: a queue's
    /// last record, a job's last record, and nothing at all for a job both
    /// pushed and deleted within the batch (a fast worker's ack often joins
    /// its push's commit). Jobs are written in id order, and ids above any
    /// stored yet are appended (LMDB's `APPEND`: no search, full pages).
    fn commit(&mut self, changes: &[Change]) -> Result<(), heed::Error> {
        #[cfg(test)]
        let _hold = self.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
        let dbs = self.dbs;
        let mut txn = self.env.write_txn()?;
        let mut next_job = self.next_job;
        let mut next_queue = self.next_queue;

        // Queue changes, in order, each only when no later one of the same
        // queue supersedes it.
        self.last_queue_change.clear();
        self.by_job.clear();
        for (at, change) in changes.iter().enumerate() {
            match change {
                Change::PutQueue(QueueRecord { id, .. }) | Change::DeleteQueue(id) => {
                    self.last_queue_change.insert(*id, at);
                }
                Change::PutJob { record, .. } => self.by_job.push((record.id, at)),
                Change::SetError { id, .. } | Change::DeleteJob(id) => self.by_job.push((*id, at)),
            }
        }
        for (at, change) in changes.iter().enumerate() {
            let (Change::PutQueue(QueueRecord { id, .. }) | Change::DeleteQueue(id)) = change else {
                continue;
            };
            next_queue = next_queue.max(id.saturating_add(1));
            if self.last_queue_change[id] != at {
                continue;
            }
            let key = format::queue_key(*id);
            if let Change::PutQueue(record) = change {
                format::encode_queue(record, &mut self.scratch);
                dbs.queues.put(&mut txn, &key, &self.scratch)?;
            } else {
                dbs.queues.delete(&mut txn, &key)?;
            }
        }

        // Job changes by id, each id's in the order they were made.
        self.by_job.sort_unstable();
        let mut appended = self.appended;
        for group in self.by_job.chunk_by(|a, b| a.0 == b.0) {
            let id = group[0].0;
            next_job = next_job.max(id.saturating_add(1));
            let net = NetJob::of(group.iter().map(|&(_, at)| &changes[at]));
            let key = format::job_key(id);
            if net.deleted {
                // Pushed and deleted in this batch: nothing ever reached the disk.
                if net.payload.is_none() {
                    dbs.jobs.delete(&mut txn, &key)?;
                    dbs.payloads.delete(&mut txn, &key)?;
                    dbs.errors.delete(&mut txn, &key)?;
                }
                continue;
            }
            let append = id > appended;
            appended = appended.max(id);
            if let Some(record) = net.record {
                put(dbs.jobs, &mut txn, &key, &format::encode_job(record), append)?;
            }
            if let Some(payload) = net.payload {
                put(dbs.payloads, &mut txn, &key, payload, append)?;
            }
            if let Some(error) = net.error {
                dbs.errors.put(&mut txn, &key, error)?;
            }
        }

        // Ids of deleted jobs and queues must not come back after a
        // restart, so the counters are kept apart from the records.
        if next_job > self.next_job {
            dbs.meta
                .put(&mut txn, meta_key::NEXT_JOB, &next_job.to_be_bytes())?;
        }
        if next_queue > self.next_queue {
            dbs.meta
                .put(&mut txn, meta_key::NEXT_QUEUE, &next_queue.to_be_bytes())?;
        }
        txn.commit()?;
        self.next_job = next_job;
        self.next_queue = next_queue;
        self.appended = appended;
        Ok(())
    }

    /// After a commit: counts it, drops what it made durable from the
    /// overlay, and tells the waiters.
    fn committed(&self, changes: &[Change], ticket: Ticket) {
        let s = &self.shared;
        let n = changes.len();
        s.commits.fetch_add(1, Ordering::Relaxed);
        s.changes.fetch_add(n as u64, Ordering::Relaxed);
        s.last_batch.store(n as u64, Ordering::Relaxed);
        if self.fsync == Fsync::Always {
            s.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        s.backlog.fetch_sub(n, Ordering::Relaxed);
        *s.last_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
        {
            let mut pending = s.lock();
            for change in changes {
                let id = match change {
                    Change::PutJob {
                        record,
                        payload: Some(_),
                    } => record.id,
                    Change::SetError { id, .. } | Change::DeleteJob(id) => *id,
                    _ => continue,
                };
                // A later, uncommitted batch may have touched it again.
                if pending.unsynced.get(&id).is_some_and(|u| u.batch <= ticket) {
                    pending.unsynced.remove(&id);
                }
            }
            if pending.unsynced.is_empty() {
                pending.unsynced.shrink_to(KEEP_CAPACITY);
            }
        }
        s.progress.send_modify(|p| p.committed = ticket);
    }

    /// Flushes committed data to disk.
    fn sync(&self) -> Result<(), heed::Error> {
        self.env.force_sync()?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
