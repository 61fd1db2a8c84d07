//! The two threads that write: the logger makes changes durable in the
//! write-ahead log, the applier puts them into LMDB.
//!
//! The logger sleeps until a batch is open, takes the whole batch, appends
//! it to the log as one record, flushes it (fsync always), hands it to the
//! applier and publishes the batch's number: that is group commit, since
//! every submission that arrives during a flush joins the next record.
//! When many writers joined it, the logger waits a little before taking
//! it, for it to grow (`Logger::gather`). A batch that only holds changes
//! no one waits for (leases) is left open a little longer, for others to
//! join ([`crate::Store::submit_unawaited`]).
//!
//! The applier gathers what the logger hands it for up to
//! [`APPLY_INTERVAL`] (or [`APPLY_MAX`] changes), then commits it to LMDB
//! in one transaction that also records the last log record it holds. Only
//! then do payloads leave the memory overlay that readers consult first.
//! When a log file is full, the logger asks the applier to catch up before
//! writing over the other file.
//!
//! A deleted big queue's jobs (a `PurgeJobs` change) are deleted from LMDB
//! a slice per transaction, between the log's batches, so that a million
//! deletions never hold up the log; `meta` records the deletion until it is
//! done, and a restart resumes it.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, RangeInclusive};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use heed::{Env, MdbError, PutFlags, RwTxn, WithTls};
use quern_engine::{Change, JobId, JobRecord, QueueId, QueueRecord};

use crate::error::StoreError;
use crate::format::{self, meta_key};
use crate::store::{Apply, Db, Dbs, Fsync, Shared, Ticket};
use crate::wal::Wal;

/// With fsync everysec, the longest the log (and LMDB) stay unsynced.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Writers that, joining the next batch while one is flushed, show the
/// log busy enough to wait for more: see [`Logger::gather`].
const GATHER_WRITERS: usize = 16;
/// The longest the log waits for a busy batch to grow.
const GATHER_MAX: Duration = Duration::from_micros(250);
/// The longest a durable change waits before it is put into LMDB.
const APPLY_INTERVAL: Duration = Duration::from_millis(50);
/// Changes waiting for LMDB that start a commit at once.
const APPLY_MAX: usize = 256 * 1024;
/// The first pause after a failed write; it doubles on each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest pause between retries of a failing write.
const MAX_RETRY: Duration = Duration::from_secs(5);
/// During shutdown: retries of a failing write before giving up, and the
/// longest pause between them, so that shutdown (and `Drop`) end.
const CLOSING_ATTEMPTS: u32 = 5;
const MAX_CLOSING_RETRY: Duration = Duration::from_millis(500);

/// Jobs a bulk delete looks at per LMDB transaction. A queue of millions
/// is deleted over many transactions, with the log's batches committed
/// between them, so that the log never waits for one long transaction to
/// free its files; a slice this size takes a few milliseconds.
#[cfg(not(test))]
pub(crate) const PURGE_SLICE: usize = 20_000;
/// In the store's own tests every bulk delete of more than a few jobs
/// takes several transactions.
#[cfg(test)]
pub(crate) const PURGE_SLICE: usize = 3;

/// Changes (about 100 bytes each) whose room a buffer keeps after use; a
/// burst beyond this gives its memory back.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Retries of a failing write: when the next attempt is due.
#[derive(Debug, Default)]
struct Retry {
    failures: u32,
    closing_failures: u32,
    at: Option<Instant>,
}

impl Retry {
    fn due(&self) -> bool {
        self.at.is_none_or(|at| Instant::now() >= at)
    }

    fn succeeded(&mut self) {
        *self = Retry::default();
    }

    /// Schedules the next attempt; an error once shutdown has retried
    /// enough.
    fn failed(&mut self, closing: bool) -> Result<(), ()> {
        self.failures += 1;
        let mut pause = FIRST_RETRY
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(MAX_RETRY);
        if closing {
            self.closing_failures += 1;
            if self.closing_failures >= CLOSING_ATTEMPTS {
                return Err(());
            }
            pause = pause.min(MAX_CLOSING_RETRY);
        }
        self.at = Some(Instant::now() + pause);
        Ok(())
    }
}

/// Marks a thread stopped however it ends, panics included, so that no
/// one waits forever for work it will not do.
struct StopGuard {
    shared: Arc<Shared>,
    logger: bool,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let s = &self.shared;
        if self.logger {
            s.lock().closing = true;
            s.progress.send_modify(|p| p.stopped = true);
        }
        s.apply_state().stopped = true;
        s.applied.notify_all();
        s.apply_wake.notify_all();
    }
}

/// The logging thread's state.
pub(crate) struct Logger {
    wal: Wal,
    shared: Arc<Shared>,
    fsync: Fsync,
    applier: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Logger {
    pub(crate) fn new(
        wal: Wal,
        shared: Arc<Shared>,
        fsync: Fsync,
        applier: JoinHandle<Result<(), StoreError>>,
    ) -> Logger {
        Logger {
            wal,
            shared,
            fsync,
            applier: Some(applier),
        }
    }

    /// The thread's body: logs until shutdown, then lets the applier
    /// finish, so that everything logged is in LMDB when it returns.
    pub(crate) fn run(mut self) -> Result<(), StoreError> {
        let guard = StopGuard {
            shared: Arc::clone(&self.shared),
            logger: true,
        };
        let served = self.serve();
        let synced = self.sync().map_err(|source| StoreError::Io {
            path: self.wal.dir().to_path_buf(),
            source,
        });
        self.shared.apply_state().closing = true;
        self.shared.apply_wake.notify_all();
        let applied = match self.applier.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Err(StoreError::Closed),
        };
        drop(guard);
        served.and(synced).and(applied)
    }

    /// Logs batches until shutdown has begun and everything submitted
    /// before it is logged.
    fn serve(&mut self) -> Result<(), StoreError> {
        // Changes taken from the pending batch and not yet logged: more
        // than one batch when a write failed and later batches joined it.
        let mut carry: Vec<Change> = Vec::new();
        // The newest batch in `carry`.
        let mut ticket: Ticket = 0;
        let mut retry = Retry::default();
        // Records not yet synced (fsync everysec and no).
        let mut unsynced = false;
        let mut last_sync = Instant::now();
        // Writers waiting for the newest batch in `carry`.
        let mut writers = 0;

        loop {
            let closing = {
                let mut pending = self.shared.lock();
                loop {
                    let now = Instant::now();
                    pending.gather_expired(now);
                    let has_work = !carry.is_empty() || pending.ready(now);
                    let sync_at =
                        (unsynced && self.fsync == Fsync::EverySec).then(|| last_sync + SYNC_INTERVAL);
                    let done = pending.closing && !has_work;
                    if (has_work && retry.due()) || sync_at.is_some_and(|at| now >= at) || done {
                        break;
                    }
                    // A batch no one waits for is taken when due (unless a
                    // failed write is waiting for its retry anyway).
                    let due = pending.unawaited_due().filter(|&due| due > now);
                    let gather_until = pending.gather.map(|(_, until)| until);
                    let wake_at = [retry.at, sync_at, due, gather_until].into_iter().flatten().min();
                    pending.logger_asleep = true;
                    pending = wait_until(&self.shared.wake, pending, wake_at);
                    pending.logger_asleep = false;
                }
                if retry.due() && !pending.batch.is_empty() {
                    if carry.is_empty() {
                        // Swap, so the allocation goes back and forth
                        // instead of being copied.
                        std::mem::swap(&mut carry, &mut pending.batch);
                    } else {
                        carry.append(&mut pending.batch);
                    }
                    ticket = pending.open;
                    writers = pending.awaited_submissions;
                    pending.taken();
                }
                pending.closing
            };

            if !carry.is_empty() && retry.due() {
                let started = Instant::now();
                match self.log(&carry) {
                    Ok(seq) => {
                        let took = started.elapsed();
                        // Before the waiters are told: whoever sees the
                        // commit sees it measured (a histogram sample
                        // costs them nanoseconds).
                        if let Some(observer) = self.shared.observer.get() {
                            observer.committed(carry.len(), took);
                        }
                        if self.fsync == Fsync::Always {
                            self.gather(took, writers);
                        }
                        self.logged(&mut carry, ticket, seq);
                        retry.succeeded();
                        unsynced = self.fsync != Fsync::Always;
                    }
                    Err(e) => {
                        self.shared.report(format!(
                            "write of {} changes to the log failed (attempt {}), will retry: {e}",
                            carry.len(),
                            retry.failures + 1
                        ));
                        if retry.failed(closing).is_err() {
                            return Err(StoreError::Io {
                                path: self.wal.dir().to_path_buf(),
                                source: e,
                            });
                        }
                    }
                }
            }

            if unsynced && self.fsync == Fsync::EverySec && last_sync.elapsed() >= SYNC_INTERVAL {
                // A failed sync is retried a second later, not at once.
                last_sync = Instant::now();
                match self.sync() {
                    Ok(()) => unsynced = false,
                    Err(e) => self
                        .shared
                        .report(format!("sync of the log failed, will retry: {e}")),
                }
            }

            if closing && carry.is_empty() && self.shared.lock().batch.is_empty() {
                return Ok(());
            }
        }
    }

    /// Appends `changes` as one record, flushed with fsync always; moves
    /// to the other file first when this one is full.
    fn log(&mut self, changes: &[Change]) -> std::io::Result<u64> {
        #[cfg(test)]
        let _hold = self.shared.hold.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(needed) = self.wal.switch_needs() {
            self.wait_applied(needed)?;
            self.wal.switch()?;
        }
        let seq = self.wal.append(changes)?;
        if self.fsync == Fsync::Always {
            self.wal.sync()?;
            self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(seq)
    }

    /// Waits until LMDB holds, on disk, every record up to `seq`.
    fn wait_applied(&self, seq: u64) -> std::io::Result<()> {
        let mut apply = self.shared.apply_state();
        while apply.synced_seq < seq {
            if apply.stopped || self.shared.lock().closing {
                return Err(std::io::Error::other(
                    "the log is full and its changes are not yet in LMDB",
                ));
            }
            apply.urgent = true;
            self.shared.apply_wake.notify_all();
            apply = self
                .shared
                .applied
                .wait_timeout(apply, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }

    /// After a record is written: hands its changes to the applier, then
    /// counts it and tells the waiters. In that order, so that whatever a
    /// waiter sees committed, [`crate::Store::checkpoint`] can wait for.
    fn logged(&self, carry: &mut Vec<Change>, ticket: Ticket, seq: u64) {
        let s = &self.shared;
        let n = carry.len();
        {
            let mut apply = s.apply_state();
            let was_empty = apply.changes.is_empty();
            if was_empty {
                std::mem::swap(&mut apply.changes, carry);
                apply.since = Some(Instant::now());
            } else {
                apply.changes.append(carry);
            }
            (apply.ticket, apply.seq) = (ticket, seq);
            if was_empty || apply.changes.len() >= APPLY_MAX {
                s.apply_wake.notify_all();
            }
        }
        carry.shrink_to(KEEP_CAPACITY);
        s.commits.fetch_add(1, Ordering::Relaxed);
        s.changes.fetch_add(n as u64, Ordering::Relaxed);
        s.last_batch.store(n as u64, Ordering::Relaxed);
        s.backlog.fetch_sub(n, Ordering::Relaxed);
        *s.last_error.lock().unwrap_or_else(PoisonError::into_inner) = None;
        s.progress.send_modify(|p| p.committed = ticket);
    }

    /// With fsync always, after a flush that answered `answered` writers
    /// and took `flush`, when at least [`GATHER_WRITERS`] joined the next
    /// batch meanwhile: has the logger wait before it takes that batch,
    /// until the writers answered are in it too, or for as long as the
    /// flush took (at most [`GATHER_MAX`]). Called before the writers are
    /// answered, so that none of them is counted twice.
    ///
    /// So many writers during one flush means a busy server: a flush's
    /// CPU (the same whatever it carries, tens of microseconds on a
    /// virtual disk) is then their throughput, and fewer, bigger flushes
    /// leave more of it to them. Writers just answered are the likeliest
    /// to write again, and once they are in, waiting longer gains little.
    /// A few clients, each waiting for its reply (or one pipeline), never
    /// wait: while they are flushed, the others come back, and flushing
    /// them at once overlaps the disk with the clients.
    fn gather(&self, flush: Duration, answered: usize) {
        let mut pending = self.shared.lock();
        let joined = pending.awaited_submissions;
        if joined >= GATHER_WRITERS && !pending.closing {
            pending.gather = Some((joined + answered, Instant::now() + flush.min(GATHER_MAX)));
            self.shared.gathers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Flushes the log to disk.
    fn sync(&self) -> std::io::Result<()> {
        self.wal.sync()?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The applier: the only code that writes to LMDB.
pub(crate) struct Applier {
    /// The environment (a clone of the handle's).
    env: Env<WithTls>,
    /// Its databases.
    dbs: Dbs,
    /// What it shares with the handle and the logger.
    shared: Arc<Shared>,
    /// When LMDB syncs: with fsync always every commit is synced; else
    /// LMDB runs with NO_SYNC and is synced when the log needs it, every
    /// second (everysec) and at shutdown.
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
    /// Reused by `commit`: the batch's bulk deletes of a queue's jobs.
    purges: Vec<(QueueId, JobId, JobId)>,
    /// Bulk deletes in progress: deleted queues and the ids of theirs left
    /// to look at. Kept in `meta` too, so that a restart resumes them.
    purging: BTreeMap<QueueId, RangeInclusive<JobId>>,
    /// Reused by `commit`: every job change as (job id, place in batch).
    by_job: Vec<(JobId, usize)>,
}

/// What LMDB holds when the store opens, for the applier to go on from.
pub(crate) struct Resume {
    /// `meta.next_job`.
    pub next_job: JobId,
    /// `meta.next_queue`.
    pub next_queue: QueueId,
    /// The highest job id stored.
    pub appended: JobId,
    /// The bulk deletes `meta` records as under way.
    pub purging: BTreeMap<QueueId, RangeInclusive<JobId>>,
}

impl Applier {
    pub(crate) fn new(
        env: Env<WithTls>,
        dbs: Dbs,
        shared: Arc<Shared>,
        fsync: Fsync,
        resume: Resume,
    ) -> Applier {
        Applier {
            env,
            dbs,
            shared,
            fsync,
            next_job: resume.next_job,
            next_queue: resume.next_queue,
            appended: resume.appended,
            scratch: Vec::new(),
            last_queue_change: HashMap::new(),
            purges: Vec::new(),
            purging: resume.purging,
            by_job: Vec::new(),
        }
    }

    /// The thread's body: applies until the logger stops, then syncs.
    pub(crate) fn run(mut self) -> Result<(), StoreError> {
        let _guard = StopGuard {
            shared: Arc::clone(&self.shared),
            logger: false,
        };
        let served = self.serve();
        let synced = self.sync().map_err(StoreError::from);
        served.and(synced)
    }

    fn serve(&mut self) -> Result<(), StoreError> {
        let mut carry: Vec<Change> = Vec::new();
        let mut ticket: Ticket = 0;
        let mut seq: u64 = 0;
        let mut retry = Retry::default();
        let mut unsynced = false;
        let mut last_sync = Instant::now();
        loop {
            let (urgent, closing) = {
                let mut apply = self.shared.apply_state();
                loop {
                    let now = Instant::now();
                    let due_at = apply.since.map(|since| since + APPLY_INTERVAL);
                    let has_work = !carry.is_empty() || !apply.changes.is_empty();
                    // A commit that failed is due again at its retry time.
                    let due = !carry.is_empty()
                        || apply.urgent
                        || apply.closing
                        || apply.changes.len() >= APPLY_MAX
                        || due_at.is_some_and(|at| now >= at);
                    let sync_at =
                        (unsynced && self.fsync == Fsync::EverySec).then(|| last_sync + SYNC_INTERVAL);
                    // Someone needs LMDB on disk, and all it lacks is a sync.
                    let sync_now = apply.urgent && unsynced && !has_work;
                    let purge_now = !self.purging.is_empty() && retry.due();
                    if (has_work && due && retry.due())
                        || purge_now
                        || sync_at.is_some_and(|at| now >= at)
                        || sync_now
                        || (apply.closing && !has_work)
                    {
                        break;
                    }
                    let wake_at = [due_at, retry.at, sync_at].into_iter().flatten().min();
                    apply = wait_until(&self.shared.apply_wake, apply, wake_at);
                }
                if retry.due() && !apply.changes.is_empty() {
                    if carry.is_empty() {
                        std::mem::swap(&mut carry, &mut apply.changes);
                    } else {
                        carry.append(&mut apply.changes);
                    }
                    (ticket, seq) = (apply.ticket, apply.seq);
                    apply.since = None;
                }
                let urgent = std::mem::take(&mut apply.urgent);
                (urgent, apply.closing)
            };

            if !carry.is_empty() && retry.due() {
                let started = Instant::now();
                match self.commit(&carry, seq) {
                    Ok(()) => {
                        if let Some(observer) = self.shared.observer.get() {
                            observer.checkpointed(carry.len(), started.elapsed());
                        }
                        retry.succeeded();
                        unsynced = self.fsync != Fsync::Always;
                        self.applied(&carry, ticket, seq, !unsynced);
                        // The log may be written over only once LMDB's copy
                        // is on disk.
                        if urgent && unsynced {
                            last_sync = Instant::now();
                            self.sync()?;
                            unsynced = false;
                        }
                        carry.clear();
                        carry.shrink_to(KEEP_CAPACITY);
                        self.by_job.shrink_to(KEEP_CAPACITY);
                    }
                    Err(e) => {
                        self.shared.report(format!(
                            "commit of {} changes to LMDB failed (attempt {}), will retry: {e}",
                            carry.len(),
                            retry.failures + 1
                        ));
                        if retry.failed(closing).is_err() {
                            return Err(e.into());
                        }
                    }
                }
            }

            // A slice of the bulk deletes, once the log's changes are in.
            if carry.is_empty() && !self.purging.is_empty() && retry.due() {
                match self.purge_step() {
                    Ok(()) => {
                        retry.succeeded();
                        unsynced |= self.fsync != Fsync::Always;
                    }
                    Err(e) => {
                        self.shared.report(format!(
                            "bulk delete in LMDB failed (attempt {}), will retry: {e}",
                            retry.failures + 1
                        ));
                        if retry.failed(closing).is_err() {
                            return Err(e.into());
                        }
                    }
                }
            }

            // A sync that is due, or that someone waits for, with nothing
            // left to commit first.
            let sync_due = self.fsync == Fsync::EverySec && last_sync.elapsed() >= SYNC_INTERVAL;
            if unsynced && carry.is_empty() && (urgent || sync_due) {
                last_sync = Instant::now();
                match self.sync() {
                    Ok(()) => unsynced = false,
                    Err(e) => self
                        .shared
                        .report(format!("sync of LMDB failed, will retry: {e}")),
                }
            }

            if closing && carry.is_empty() && self.shared.apply_state().changes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes `changes` in one transaction, with the id counters when the
    /// changes pass them, and `seq` as the last log record LMDB holds.
    ///
    /// Only each record's net effect in the batch is written: a queue's
    /// last record, a job's last record, and nothing at all for a job both
    /// pushed and deleted within the batch (a fast worker's ack often joins
    /// its push's commit). Jobs are written in id order, and ids above any
    /// stored yet are appended (LMDB's `APPEND`: no search, full pages).
    pub(crate) fn commit(&mut self, changes: &[Change], seq: u64) -> Result<(), heed::Error> {
        #[cfg(test)]
        let _hold = self
            .shared
            .hold_apply
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dbs = self.dbs;
        let mut txn = self.env.write_txn()?;
        let mut next_job = self.next_job;
        let mut next_queue = self.next_queue;

        // Queue changes, in order, each only when no later one of the same
        // queue supersedes it.
        self.last_queue_change.clear();
        self.by_job.clear();
        self.purges.clear();
        for (at, change) in changes.iter().enumerate() {
            match change {
                Change::PutQueue(QueueRecord { id, .. }) | Change::DeleteQueue(id) => {
                    self.last_queue_change.insert(*id, at);
                }
                Change::PutJob { record, .. } => self.by_job.push((record.id, at)),
                Change::SetError { id, .. } | Change::DeleteJob(id) => self.by_job.push((*id, at)),
                Change::PurgeJobs { queue, first, last } => self.purges.push((*queue, *first, *last)),
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

        // A bulk delete is only recorded here, in the batch's transaction,
        // so that a restart resumes it; `purge_step` carries it out over as
        // many transactions as it takes, this batch's jobs of the queue
        // included.
        for &(queue, first, last) in &self.purges {
            let ids = self.purge_range(queue, first, last);
            dbs.meta
                .put(&mut txn, &format::purge_key(queue), &format::encode_purge(&ids))?;
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
        dbs.meta
            .put(&mut txn, meta_key::WAL_APPLIED, &seq.to_be_bytes())?;
        txn.commit()?;
        self.next_job = next_job;
        self.next_queue = next_queue;
        self.appended = appended;
        for (queue, first, last) in std::mem::take(&mut self.purges) {
            let ids = self.purge_range(queue, first, last);
            self.purging.insert(queue, ids);
        }
        self.after_commit();
        Ok(())
    }

    /// Bulk deletes in progress.
    pub(crate) fn bulk_deletes(&self) -> usize {
        self.purging.len()
    }

    /// The ids a bulk delete of `queue` covers, with one in progress.
    fn purge_range(&self, queue: QueueId, first: JobId, last: JobId) -> RangeInclusive<JobId> {
        match self.purging.get(&queue) {
            Some(left) => first.min(*left.start())..=last.max(*left.end()),
            None => first..=last,
        }
    }

    /// Carries the bulk deletes in progress a slice further, in a
    /// transaction of its own: [`PURGE_SLICE`] jobs looked at, in all.
    fn purge_step(&mut self) -> Result<(), heed::Error> {
        #[cfg(test)]
        let _hold = self
            .shared
            .hold_purge
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dbs = self.dbs;
        let mut txn = self.env.write_txn()?;
        let mut budget = PURGE_SLICE;
        let mut progress = Vec::new();
        for (&queue, ids) in &self.purging {
            if budget == 0 {
                break;
            }
            let left = purge_jobs(dbs, &mut txn, queue, ids.clone(), &mut budget)?;
            let key = format::purge_key(queue);
            match &left {
                Some(left) => dbs.meta.put(&mut txn, &key, &format::encode_purge(left))?,
                None => {
                    dbs.meta.delete(&mut txn, &key)?;
                }
            }
            progress.push((queue, left));
        }
        txn.commit()?;
        for (queue, left) in progress {
            match left {
                Some(left) => {
                    self.purging.insert(queue, left);
                }
                None => {
                    self.purging.remove(&queue);
                    self.shared.bulk_deletes.fetch_sub(1, Ordering::Relaxed);
                    // Taking the lock `checkpoint` waits under: a waiter
                    // that read the old count is waiting by now, and hears.
                    drop(self.shared.apply_state());
                    self.shared.applied.notify_all();
                }
            }
        }
        self.after_commit();
        Ok(())
    }

    /// Counts a commit to LMDB.
    fn after_commit(&self) {
        let s = &self.shared;
        s.checkpoints.fetch_add(1, Ordering::Relaxed);
        if self.fsync == Fsync::Always {
            s.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// After a commit: drops what it put into LMDB from the overlay, and
    /// tells whoever waits for LMDB. `synced`: the commit is on disk.
    fn applied(&self, changes: &[Change], ticket: Ticket, seq: u64, synced: bool) {
        let s = &self.shared;
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
                // A later batch, not yet in LMDB, may have touched it again.
                pending.unsynced.release(id, ticket);
            }
            pending.unsynced.trim();
        }
        let mut apply = s.apply_state();
        (apply.applied_ticket, apply.applied_seq) = (ticket, seq);
        if synced {
            apply.synced_seq = seq;
        }
        drop(apply);
        s.applied.notify_all();
    }

    /// Flushes LMDB to disk: whatever it holds is then synced.
    pub(crate) fn sync(&self) -> Result<(), heed::Error> {
        self.env.force_sync()?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut apply = self.shared.apply_state();
        apply.synced_seq = apply.applied_seq;
        drop(apply);
        self.shared.applied.notify_all();
        Ok(())
    }
}

/// Waits on `condvar` until notified, or until `at` when given.
fn wait_until<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>, at: Option<Instant>) -> MutexGuard<'a, T> {
    match at {
        Some(at) => {
            let wait = at.saturating_duration_since(Instant::now());
            condvar
                .wait_timeout(guard, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0
        }
        None => condvar.wait(guard).unwrap_or_else(PoisonError::into_inner),
    }
}

impl Shared {
    /// The applier's hand-off state.
    pub(crate) fn apply_state(&self) -> MutexGuard<'_, Apply> {
        self.apply.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Deletes the stored jobs of `queue` with an id in `ids`, with their
/// payloads and last errors, looking at no more than `budget` jobs (and
/// taking what it looked at off `budget`). Returns the ids left to look
/// at, if any. Jobs are keyed by id, so this reads every job in the
/// range, other queues' too; a record that does not decode is left for
/// the load to report.
///
/// The queue's jobs are deleted run by run (a run: jobs stored next to each
/// other, all the queue's), each run with one cursor walking each table,
/// not with a search of each table for each job: a queue of a million
/// jobs is mostly a few long runs.
fn purge_jobs(
    dbs: Dbs,
    txn: &mut RwTxn,
    queue: QueueId,
    ids: RangeInclusive<JobId>,
    budget: &mut usize,
) -> Result<Option<RangeInclusive<JobId>>, heed::Error> {
    let (first, last) = (format::job_key(*ids.start()), format::job_key(*ids.end()));
    let range = (Bound::Included(&first[..]), Bound::Included(&last[..]));
    let mut runs: Vec<RangeInclusive<JobId>> = Vec::new();
    let mut in_run = false;
    // The last id looked at, when the budget ran out before the range.
    let mut stopped_after = None;
    let mut looked_at = None;
    for entry in dbs.jobs.range(txn, &range)? {
        if *budget == 0 {
            stopped_after = Some(looked_at);
            break;
        }
        *budget -= 1;
        let (key, value) = entry?;
        looked_at = format::decode_job_key(key).ok().or(looked_at);
        match format::decode_job(key, value) {
            Ok(job) if job.queue == queue => match runs.last_mut() {
                Some(run) if in_run => *run = *run.start()..=job.id,
                _ => {
                    runs.push(job.id..=job.id);
                    in_run = true;
                }
            },
            _ => in_run = false,
        }
    }
    for run in runs {
        let (first, last) = (format::job_key(*run.start()), format::job_key(*run.end()));
        let run = (Bound::Included(&first[..]), Bound::Included(&last[..]));
        // A payload or error is stored only with its job, so within a run
        // every key of every table is the queue's.
        for db in [dbs.jobs, dbs.payloads, dbs.errors] {
            db.delete_range(txn, &run)?;
        }
    }
    Ok(match stopped_after {
        None => None,
        Some(None) => Some(ids),
        Some(Some(id)) => (id < *ids.end()).then(|| id + 1..=*ids.end()),
    })
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
                Change::PutQueue(_) | Change::DeleteQueue(_) | Change::PurgeJobs { .. } => {}
            }
        }
        net
    }
}
