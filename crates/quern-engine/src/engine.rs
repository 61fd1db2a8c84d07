//! The engine: every queue of one shard, the jobs in them, their deadlines
//! and the pullers blocked on them. Each operation takes `now` and records
//! what it changed (for the store) and whom it served (blocked pullers).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::backoff::retry_delay;
use crate::queue::{Queue, Ready};
use crate::runs::RunMap;
use crate::specs::{SpecId, Specs};
use crate::types::{
    Change, Counters, JobId, JobRecord, JobSpec, Millis, QueueId, QueueRecord, State, MAX_JOB_ID,
};

/// Why an operation on a job was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// The job is not active in this queue (QFAIL, QTOUCH; QACK of a job
    /// that exists but is not active).
    NoJob(JobId),
    /// ATTEMPT was given and the job's current delivery is another one.
    LeaseLost(JobId),
    /// Every id below 2^53 has been used.
    IdsExhausted,
}

/// The id counters, shared by every shard of a server so ids are unique
/// across shards. Atomics, not IO: the engine stays deterministic when one
/// thread drives it.
#[derive(Debug)]
pub struct Ids {
    next_job: AtomicU64,
    next_queue: AtomicU32,
}

impl Default for Ids {
    fn default() -> Self {
        Ids::new(1, 1)
    }
}

impl Ids {
    /// Counters that hand out `next_job` and `next_queue` next.
    pub fn new(next_job: JobId, next_queue: QueueId) -> Ids {
        Ids {
            next_job: AtomicU64::new(next_job.max(1)),
            next_queue: AtomicU32::new(next_queue.max(1)),
        }
    }

    /// The next job id that will be handed out.
    pub fn peek_job(&self) -> JobId {
        self.next_job.load(Ordering::Relaxed)
    }

    /// The next queue id that will be handed out.
    pub fn peek_queue(&self) -> QueueId {
        self.next_queue.load(Ordering::Relaxed)
    }

    /// Makes sure ids already on disk are never handed out again.
    pub fn observe(&self, job: JobId, queue: QueueId) {
        self.next_job.fetch_max(job.saturating_add(1), Ordering::Relaxed);
        self.next_queue
            .fetch_max(queue.saturating_add(1), Ordering::Relaxed);
    }

    fn reserve_jobs(&self, n: u64) -> Result<JobId, EngineError> {
        let first = self.next_job.fetch_add(n, Ordering::Relaxed);
        if first.saturating_add(n) > MAX_JOB_ID + 1 {
            self.next_job.fetch_sub(n, Ordering::Relaxed);
            return Err(EngineError::IdsExhausted);
        }
        Ok(first)
    }

    fn queue(&self) -> QueueId {
        self.next_queue.fetch_add(1, Ordering::Relaxed)
    }
}

/// How to push a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// The job's options.
    pub spec: JobSpec,
    /// From DELAY or AT: not before this time.
    pub ready_at: Option<Millis>,
}

/// How a worker reports a failed attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailOptions {
    /// ERROR: kept as the job's last error.
    pub error: Option<Bytes>,
    /// RETRYIN: wait this long instead of the backoff.
    pub retry_in: Option<u64>,
    /// Normal, FATAL or SILENT.
    pub mode: FailMode,
    /// ATTEMPT fence.
    pub attempt: Option<u32>,
}

/// What a QFAIL does with the attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Counts a failed attempt: retry after the backoff, or dead when none
    /// are left.
    #[default]
    Retry,
    /// Straight to the dead-letter queue.
    Fatal,
    /// Back to waiting without counting the attempt (a worker stopping).
    Silent,
}

/// A job handed to a worker (or shown by QPEEK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The job.
    pub id: JobId,
    /// Its delivery number.
    pub attempt: u32,
}

/// A blocked puller's token; the server maps it to the waiting connection.
pub type WaiterToken = u64;

/// Jobs handed to a blocked puller by the operation that made them ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Whom they are for.
    pub token: WaiterToken,
    /// The queue they come from.
    pub queue: Bytes,
    /// The jobs, already active under the puller's lease.
    pub jobs: Vec<Pulled>,
}

/// QSTATS: a queue's jobs by state and its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs ready to be pulled.
    pub waiting: u64,
    /// Jobs due later.
    pub delayed: u64,
    /// Jobs leased to workers.
    pub active: u64,
    /// Jobs waiting for others (AFTER).
    pub blocked: u64,
    /// Jobs in the dead-letter queue.
    pub dead: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Lifetime counters.
    pub counters: Counters,
    /// Jobs handed to workers since the engine was built (not persisted,
    /// unlike `counters`).
    pub pulled: u64,
    /// Age of the longest-waiting job (by push time), 0 when none waits.
    pub oldest_waiting_age_ms: u64,
}

/// A map keyed by ids the server hands out, never by what a client
/// chooses, so a fast hash is safe; maps keyed by names clients choose
/// keep std's keyed hash.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A job that is not waiting (delayed, active or dead), as the engine
/// holds it. Waiting jobs, most of any backlog, live more cheaply in their
/// queue's ready index ([`Ready`]); a job moves between the two as its
/// state changes. The payload and last error are in neither: they live in
/// the store.
#[derive(Clone, Copy, Debug)]
struct Job {
    spec: SpecId,
    attempt: u32,
    created_at: Millis,
    /// Delayed: when it becomes ready. Active: when the lease runs out.
    deadline: Millis,
    queue: QueueId,
    state: State,
}

impl Job {
    /// The job a ready-index entry of queue `qid` stands for.
    fn waiting(qid: QueueId, ready: &Ready) -> Job {
        Job {
            spec: ready.spec,
            attempt: ready.attempt,
            created_at: ready.created_at,
            deadline: 0,
            queue: qid,
            state: State::Waiting,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    token: WaiterToken,
    count: u32,
    lease_ms: Option<u32>,
}

/// The jobs of a queue being deleted: their ids while they are few, and
/// their id range.
struct DeletedJobs {
    /// The ids, kept only up to one past `bulk_above`.
    few: Vec<JobId>,
    /// More jobs than this are deleted in bulk.
    bulk_above: usize,
    /// How many jobs.
    count: u64,
    /// The lowest and the highest id.
    first: JobId,
    last: JobId,
}

impl DeletedJobs {
    fn new(bulk_above: usize) -> DeletedJobs {
        DeletedJobs {
            few: Vec::new(),
            bulk_above,
            count: 0,
            first: JobId::MAX,
            last: 0,
        }
    }

    fn add(&mut self, id: JobId) {
        self.count += 1;
        self.first = self.first.min(id);
        self.last = self.last.max(id);
        if self.few.len() <= self.bulk_above {
            self.few.push(id);
        }
    }

    /// A change per job while few, else one bulk delete of their range.
    fn record(self, queue: QueueId, changes: &mut Vec<Change>) {
        if self.few.len() > self.bulk_above {
            changes.push(Change::PurgeJobs {
                queue,
                first: self.first,
                last: self.last,
            });
        } else {
            changes.extend(self.few.into_iter().map(Change::DeleteJob));
        }
    }
}

/// One shard's queues. See the crate documentation for the model.
#[derive(Debug)]
pub struct Engine {
    ids: Arc<Ids>,
    queues: IdMap<QueueId, Queue>,
    by_name: HashMap<Bytes, QueueId>,
    /// Jobs that are not waiting; waiting ones are in their queue. Mostly
    /// runs of ids in order, as jobs are pulled (see [`RunMap`]). Not a
    /// hash table: one doubles by moving every entry at once, which at a
    /// million delayed or leased jobs held the shard for a quarter of a
    /// second and more.
    jobs: RunMap<JobId, Job>,
    /// The options of every job, shared.
    specs: Specs,
    /// Delayed jobs' ready times and active jobs' lease ends, earliest
    /// first: one ordered index instead of a timer per job.
    timers: RunMap<(Millis, JobId), ()>,
    /// Blocked pullers by queue name, first come first served. Keyed by
    /// name so a puller can wait on a queue that does not exist yet.
    waiters: HashMap<Bytes, VecDeque<Waiter>>,
    /// The queues each blocked puller waits on, to unregister it.
    waiting_on: HashMap<WaiterToken, Vec<Bytes>>,
    changes: Vec<Change>,
    /// Queues whose record changed since the last `take_changes`, once each.
    dirty: Vec<QueueId>,
    deliveries: Vec<Delivery>,
    /// A deleted queue with more jobs than this has them deleted in bulk.
    bulk_delete_above: usize,
}

/// A deleted queue's jobs are recorded one change each up to this many,
/// and as one [`Change::PurgeJobs`] beyond: a change per job would be a
/// million records for a million jobs, and every writer would wait for
/// them; a bulk delete costs the store a scan of the jobs' id range, too
/// much to pay for every small queue.
pub const BULK_DELETE_ABOVE: usize = 1024;

impl Engine {
    /// An empty engine drawing ids from `ids`.
    pub fn new(ids: Arc<Ids>) -> Engine {
        Engine {
            ids,
            queues: IdMap::default(),
            by_name: HashMap::new(),
            jobs: RunMap::default(),
            specs: Specs::default(),
            timers: RunMap::default(),
            waiters: HashMap::new(),
            waiting_on: HashMap::new(),
            changes: Vec::new(),
            dirty: Vec::new(),
            deliveries: Vec::new(),
            bulk_delete_above: BULK_DELETE_ABOVE,
        }
    }

    /// Changes [`BULK_DELETE_ABOVE`], so that tests with small queues can
    /// take the bulk path too.
    pub fn set_bulk_delete_above(&mut self, jobs: usize) {
        self.bulk_delete_above = jobs;
    }

    // ----- producers -------------------------------------------------------

    /// QPUSH: adds one job, returns its id.
    pub fn push(
        &mut self,
        queue: &[u8],
        payload: Bytes,
        opts: &PushOptions,
        now: Millis,
    ) -> Result<JobId, EngineError> {
        let first = self.ids.reserve_jobs(1)?;
        self.push_reserved(queue, first, [payload], opts, now);
        Ok(first)
    }

    /// QMPUSH: adds jobs with consecutive ids, all or nothing; returns the
    /// first id.
    pub fn push_many(
        &mut self,
        queue: &[u8],
        payloads: Vec<Bytes>,
        opts: &PushOptions,
        now: Millis,
    ) -> Result<JobId, EngineError> {
        let first = self.ids.reserve_jobs(payloads.len() as u64)?;
        self.push_reserved(queue, first, payloads, opts, now);
        Ok(first)
    }

    fn push_reserved(
        &mut self,
        queue: &[u8],
        first: JobId,
        payloads: impl IntoIterator<Item = Bytes, IntoIter: ExactSizeIterator>,
        opts: &PushOptions,
        now: Millis,
    ) {
        let payloads = payloads.into_iter();
        let qid = self.queue_or_create(queue);
        let due = opts.ready_at.filter(|&at| at > now);
        let spec = self.specs.intern(opts.spec, payloads.len() as u64);
        let job = Job {
            spec,
            attempt: 0,
            created_at: now,
            deadline: due.unwrap_or(0),
            queue: qid,
            state: if due.is_some() {
                State::Delayed
            } else {
                State::Waiting
            },
        };
        self.changed(qid).counters.pushed += payloads.len() as u64;
        for (id, payload) in (first..).zip(payloads) {
            self.changes.push(Change::PutJob {
                record: self.record(id, &job),
                payload: Some(payload),
            });
            self.put(id, job);
        }
        if due.is_none() {
            self.serve_waiters(qid, now);
        }
    }

    // ----- consumers -------------------------------------------------------

    /// QPULL without BLOCK: leases up to `count` jobs.
    pub fn pull(&mut self, queue: &[u8], count: u32, lease_ms: Option<u32>, now: Millis) -> Vec<Pulled> {
        match self.by_name.get(queue) {
            Some(&qid) => self.pull_from(qid, count, lease_ms, now),
            None => Vec::new(),
        }
    }

    /// QPULL with BLOCK: pulls, or when nothing is ready registers `token`
    /// to be served (through [`Engine::take_deliveries`]) by the operation
    /// that makes a job ready. Both happen under one lock of the shard, so
    /// no push can slip between the look and the registration.
    pub fn pull_or_block(
        &mut self,
        queue: &[u8],
        count: u32,
        lease_ms: Option<u32>,
        token: WaiterToken,
        now: Millis,
    ) -> Vec<Pulled> {
        let jobs = self.pull(queue, count, lease_ms, now);
        if jobs.is_empty() {
            let name = Bytes::copy_from_slice(queue);
            self.waiters.entry(name.clone()).or_default().push_back(Waiter {
                token,
                count,
                lease_ms,
            });
            self.waiting_on.entry(token).or_default().push(name);
        }
        jobs
    }

    /// Forgets a blocked puller (served elsewhere, timed out or gone).
    pub fn unblock(&mut self, token: WaiterToken) {
        for name in self.waiting_on.remove(&token).unwrap_or_default() {
            if let Some(list) = self.waiters.get_mut(&name) {
                list.retain(|w| w.token != token);
                if list.is_empty() {
                    self.waiters.remove(&name);
                }
            }
        }
    }

    /// Puts back jobs that were delivered but never reached their puller,
    /// without counting the attempt.
    pub fn release(&mut self, queue: &[u8], jobs: &[Pulled], now: Millis) {
        for pulled in jobs {
            let opts = FailOptions {
                mode: FailMode::Silent,
                attempt: Some(pulled.attempt),
                ..FailOptions::default()
            };
            // A job acked, cancelled or deleted meanwhile has nothing to undo.
            let _ = self.fail(queue, pulled.id, &opts, now);
        }
    }

    /// QACK: removes active jobs; ids this queue does not know count 0.
    /// All or nothing: a refused id changes nothing.
    pub fn ack(&mut self, queue: &[u8], ids: &[JobId], attempt: Option<u32>) -> Result<u64, EngineError> {
        self.ack_timed(queue, ids, attempt, |_, _| {})
    }

    /// [`Engine::ack`], calling `acked(queue id, created_at)` for each job
    /// it removes, so that the caller can measure how long jobs took from
    /// push to ack without the engine reading a clock.
    pub fn ack_timed(
        &mut self,
        queue: &[u8],
        ids: &[JobId],
        attempt: Option<u32>,
        mut acked_job: impl FnMut(QueueId, Millis),
    ) -> Result<u64, EngineError> {
        let Some(&qid) = self.by_name.get(queue) else {
            return Ok(0);
        };
        for &id in ids {
            if let Some(job) = self.find(qid, id) {
                check_active(id, &job, attempt)?;
            }
        }
        let mut acked = 0;
        for &id in ids {
            // Checked above; `remove` skips an id repeated in `ids`.
            if let Some(job) = self.remove_job(qid, id) {
                self.changed(qid).counters.acked += 1;
                acked += 1;
                acked_job(qid, job.created_at);
            }
        }
        Ok(acked)
    }

    /// QFAIL: ends the job's attempt; returns its new state.
    pub fn fail(
        &mut self,
        queue: &[u8],
        id: JobId,
        opts: &FailOptions,
        now: Millis,
    ) -> Result<State, EngineError> {
        let qid = self.by_name.get(queue).copied().ok_or(EngineError::NoJob(id))?;
        let job = self.active(qid, id, opts.attempt)?;
        if let Some(error) = &opts.error {
            self.changes.push(Change::SetError {
                id,
                error: error.clone(),
            });
        }
        let to = match opts.mode {
            FailMode::Silent => {
                let job = self.jobs.get_mut(&id).expect("checked");
                job.attempt = job.attempt.saturating_sub(1);
                match opts.retry_in {
                    Some(ms) if ms > 0 => Target::Delayed(now.saturating_add(ms)),
                    _ => Target::Waiting,
                }
            }
            FailMode::Fatal => self.count_failure(id, &job, Some(0), now, true),
            FailMode::Retry => self.count_failure(id, &job, opts.retry_in, now, false),
        };
        Ok(self.move_job(qid, id, to, now))
    }

    /// QTOUCH: renews an active job's lease; returns the ms it now has.
    pub fn touch(
        &mut self,
        queue: &[u8],
        id: JobId,
        lease_ms: Option<u32>,
        attempt: Option<u32>,
        now: Millis,
    ) -> Result<u64, EngineError> {
        let qid = self.by_name.get(queue).copied().ok_or(EngineError::NoJob(id))?;
        let job = self.active(qid, id, attempt)?;
        let lease = u64::from(lease_ms.unwrap_or(self.specs.get(job.spec).lease_ms));
        self.move_job(qid, id, Target::Active(now.saturating_add(lease)), now);
        Ok(lease)
    }

    // ----- time ------------------------------------------------------------

    /// Moves every job whose deadline has come: delayed jobs become
    /// waiting; expired leases count a failed attempt.
    pub fn tick(&mut self, now: Millis) {
        while self.tick_at_most(now, usize::MAX) {}
    }

    /// [`Engine::tick`], moving no more than `max` jobs; returns whether
    /// more are due. Leases that run out together by the million (a fleet
    /// of workers gone) take the server seconds to move and record: the
    /// caller can let other operations on the engine through between
    /// slices.
    pub fn tick_at_most(&mut self, now: Millis, max: usize) -> bool {
        for _ in 0..max {
            let Some(((deadline, id), ())) = self.timers.first() else {
                return false;
            };
            if deadline > now {
                return false;
            }
            let job = self.jobs[&id];
            let to = match job.state {
                State::Delayed => Target::Waiting,
                State::Active => {
                    self.changed(job.queue).counters.expired_leases += 1;
                    match self.count_failure(id, &job, Some(0), now, false) {
                        Target::Dead => Target::Dead,
                        // An expired lease puts the job straight back.
                        _ => Target::Waiting,
                    }
                }
                other => unreachable!("a {other:?} job has no deadline"),
            };
            self.move_job(job.queue, id, to, now);
        }
        self.next_deadline().is_some_and(|at| at <= now)
    }

    /// The earliest deadline, for the timer that calls [`Engine::tick`].
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.first().map(|((at, _), ())| at)
    }

    // ----- inspection ------------------------------------------------------

    /// QLEN: waiting jobs.
    pub fn len(&self, queue: &[u8]) -> u64 {
        self.queue(queue).map_or(0, |q| q.waiting)
    }

    /// QSTATS; `None` for a queue that does not exist.
    pub fn stats(&self, queue: &[u8], now: Millis) -> Option<QueueStats> {
        let q = self.queue(queue)?;
        let oldest = q.oldest_ready().map(|job| job.created_at);
        Some(QueueStats {
            waiting: q.waiting,
            delayed: q.delayed,
            active: q.active,
            blocked: 0,
            dead: q.dead.len() as u64,
            paused: q.paused,
            counters: q.counters,
            pulled: q.pulled,
            oldest_waiting_age_ms: oldest.map_or(0, |at| now.saturating_sub(at)),
        })
    }

    /// QGET: the job's record, if it is in this queue.
    pub fn job(&self, queue: &[u8], id: JobId) -> Option<JobRecord> {
        let qid = *self.by_name.get(queue)?;
        self.find(qid, id).map(|job| self.record(id, &job))
    }

    /// QPEEK: the next `count` jobs QPULL would hand out, with the attempt
    /// number each would get.
    pub fn peek(&self, queue: &[u8], count: usize) -> Vec<Pulled> {
        let Some(q) = self.queue(queue) else {
            return Vec::new();
        };
        q.ready_iter()
            .take(count)
            .map(|(_, job)| Pulled {
                id: job.id,
                attempt: job.attempt + 1,
            })
            .collect()
    }

    /// Every queue of this shard: id, name, jobs in all states.
    pub fn queues(&self) -> impl Iterator<Item = (QueueId, &Bytes, u64)> + '_ {
        self.queues.values().map(|q| (q.id, &q.name, q.total()))
    }

    /// Jobs in this shard, in every state.
    pub fn job_count(&self) -> usize {
        self.jobs.len() + self.queues.values().map(|q| q.waiting as usize).sum::<usize>()
    }

    /// Pullers blocked on this shard's queues.
    pub fn blocked_pullers(&self) -> usize {
        self.waiting_on.len()
    }

    // ----- control ---------------------------------------------------------

    /// QCANCEL: removes waiting, delayed or blocked jobs; returns how many.
    pub fn cancel(&mut self, queue: &[u8], ids: &[JobId]) -> u64 {
        let Some(&qid) = self.by_name.get(queue) else {
            return 0;
        };
        let mut removed = 0;
        for &id in ids {
            let cancellable = self
                .find(qid, id)
                .is_some_and(|job| matches!(job.state, State::Waiting | State::Delayed | State::Blocked));
            if cancellable && self.remove_job(qid, id).is_some() {
                removed += 1;
            }
        }
        removed
    }

    /// QPAUSE (creating the queue, so it can be paused before first use).
    pub fn pause(&mut self, queue: &[u8]) {
        let qid = self.queue_or_create(queue);
        self.changed(qid).paused = true;
    }

    /// QRESUME.
    pub fn resume(&mut self, queue: &[u8], now: Millis) {
        if let Some(&qid) = self.by_name.get(queue) {
            self.changed(qid).paused = false;
            self.serve_waiters(qid, now);
        }
    }

    /// QDEL: deletes the queue and every job in it; returns how many jobs.
    pub fn delete_queue(&mut self, queue: &[u8]) -> u64 {
        let Some(qid) = self.by_name.remove(queue) else {
            return 0;
        };
        let mut q = self.queues.remove(&qid).expect("named queue exists");
        let mut deleted = DeletedJobs::new(self.bulk_delete_above);
        for job in q.ready_drain() {
            self.specs.release(job.spec);
            deleted.add(job.id);
        }
        // Only the timers hold delayed and active jobs, and the timers are
        // far fewer than the backlog.
        let timed: Vec<JobId> = self
            .timers
            .iter()
            .filter(|((_, id), ())| self.jobs[id].queue == qid)
            .map(|((_, id), ())| id)
            .collect();
        for id in q.dead.iter().copied().chain(timed) {
            let job = self.jobs.remove(&id).expect("indexed job exists");
            if matches!(job.state, State::Delayed | State::Active) {
                self.timers.remove(&(job.deadline, id));
            }
            self.specs.release(job.spec);
            deleted.add(id);
        }
        let count = deleted.count;
        deleted.record(qid, &mut self.changes);
        // Pullers blocked on the name stay: a push recreates the queue.
        self.changes.push(Change::DeleteQueue(qid));
        count
    }

    // ----- dead-letter queue -----------------------------------------------

    /// QDLQ LIST: the first `count` dead jobs (id order) and their attempts.
    pub fn dead(&self, queue: &[u8], count: usize) -> Vec<Pulled> {
        let Some(q) = self.queue(queue) else {
            return Vec::new();
        };
        q.dead
            .iter()
            .take(count)
            .map(|&id| Pulled {
                id,
                attempt: self.jobs[&id].attempt,
            })
            .collect()
    }

    /// QDLQ LEN.
    pub fn dead_len(&self, queue: &[u8]) -> u64 {
        self.queue(queue).map_or(0, |q| q.dead.len() as u64)
    }

    /// QDLQ REQUEUE: dead jobs back to waiting with attempts reset; `None`
    /// means all of them. Returns how many.
    pub fn requeue_dead(&mut self, queue: &[u8], ids: Option<&[JobId]>, now: Millis) -> u64 {
        let Some(&qid) = self.by_name.get(queue) else {
            return 0;
        };
        let chosen = self.chosen_dead(qid, ids);
        for &id in &chosen {
            self.jobs.get_mut(&id).expect("dead job exists").attempt = 0;
            self.move_job(qid, id, Target::Waiting, now);
        }
        chosen.len() as u64
    }

    /// QDLQ PURGE: deletes dead jobs; `None` means all of them.
    pub fn purge_dead(&mut self, queue: &[u8], ids: Option<&[JobId]>) -> u64 {
        let Some(&qid) = self.by_name.get(queue) else {
            return 0;
        };
        let chosen = self.chosen_dead(qid, ids);
        for &id in &chosen {
            self.remove_job(qid, id);
        }
        chosen.len() as u64
    }

    fn chosen_dead(&self, qid: QueueId, ids: Option<&[JobId]>) -> Vec<JobId> {
        let q = &self.queues[&qid];
        match ids {
            None => q.dead.iter().copied().collect(),
            Some(ids) => {
                let mut chosen: Vec<JobId> = ids.iter().copied().filter(|id| q.dead.contains(id)).collect();
                chosen.sort_unstable();
                chosen.dedup();
                chosen
            }
        }
    }

    // ----- outputs ---------------------------------------------------------

    /// Moves the changes made since the last call into `out`, in order,
    /// ending with the records of queues whose counters or flags changed.
    pub fn take_changes(&mut self, out: &mut Vec<Change>) {
        out.append(&mut self.changes);
        for qid in self.dirty.drain(..) {
            // A queue deleted since it changed has nothing to record.
            if let Some(q) = self.queues.get_mut(&qid) {
                q.dirty = false;
                out.push(Change::PutQueue(q.record()));
            }
        }
    }

    /// Jobs handed to blocked pullers since the last call.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    // ----- restore ---------------------------------------------------------

    /// Loads a queue's record from the store.
    pub fn restore_queue(&mut self, record: QueueRecord) {
        self.ids.observe(0, record.id);
        let mut q = Queue::new(record.id, record.name.clone());
        q.paused = record.paused;
        q.counters = record.counters;
        q.dirty = false;
        self.by_name.insert(record.name, record.id);
        self.queues.insert(record.id, q);
    }

    /// Loads a job's record from the store; its queue must be restored
    /// first. Jobs load in id order, which keeps FIFO order.
    pub fn restore_job(&mut self, r: JobRecord) {
        self.ids.observe(r.id, 0);
        if !self.queues.contains_key(&r.queue) {
            debug_assert!(false, "job {} of unknown queue {}", r.id, r.queue);
            return;
        }
        let job = Job {
            spec: self.specs.intern(r.spec, 1),
            attempt: r.attempt,
            created_at: r.created_at,
            deadline: r.deadline,
            queue: r.queue,
            state: r.state,
        };
        self.put(r.id, job);
    }

    /// Every queue and job record, for comparing engines in tests.
    pub fn snapshot(&self) -> (Vec<QueueRecord>, Vec<JobRecord>) {
        let mut queues: Vec<QueueRecord> = self.queues.values().map(Queue::record).collect();
        queues.sort_by_key(|q| q.id);
        let waiting = self.queues.values().flat_map(|q| {
            q.ready_iter()
                .map(|(_, ready)| self.record(ready.id, &Job::waiting(q.id, ready)))
        });
        let mut jobs: Vec<JobRecord> = self
            .jobs
            .iter()
            .map(|(id, job)| self.record(id, &job))
            .chain(waiting)
            .collect();
        jobs.sort_by_key(|j| j.id);
        (queues, jobs)
    }

    // ----- internals -------------------------------------------------------

    fn queue(&self, name: &[u8]) -> Option<&Queue> {
        self.by_name.get(name).map(|qid| &self.queues[qid])
    }

    /// The queue, marked as changed: its record goes to the store with the
    /// next [`Engine::take_changes`].
    fn changed(&mut self, qid: QueueId) -> &mut Queue {
        let q = self.queues.get_mut(&qid).expect("queue exists");
        if !q.dirty {
            q.dirty = true;
            self.dirty.push(qid);
        }
        q
    }

    fn queue_or_create(&mut self, name: &[u8]) -> QueueId {
        if let Some(&qid) = self.by_name.get(name) {
            return qid;
        }
        let qid = self.ids.queue();
        let name = Bytes::copy_from_slice(name);
        self.by_name.insert(name.clone(), qid);
        self.queues.insert(qid, Queue::new(qid, name));
        self.changed(qid);
        qid
    }

    /// Job `id` of queue `qid`, wherever its state keeps it.
    fn find(&self, qid: QueueId, id: JobId) -> Option<Job> {
        match self.jobs.get(&id) {
            Some(job) => Some(*job).filter(|job| job.queue == qid),
            None => {
                let (_, ready) = self.queues.get(&qid)?.ready_get(id)?;
                Some(Job::waiting(qid, &ready))
            }
        }
    }

    /// The job if it is active in `qid` under the given attempt.
    fn active(&self, qid: QueueId, id: JobId, attempt: Option<u32>) -> Result<Job, EngineError> {
        let job = self.find(qid, id).ok_or(EngineError::NoJob(id))?;
        check_active(id, &job, attempt)?;
        Ok(job)
    }

    /// The record the store keeps for `job`.
    fn record(&self, id: JobId, job: &Job) -> JobRecord {
        JobRecord {
            id,
            queue: job.queue,
            state: job.state,
            spec: self.specs.get(job.spec),
            attempt: job.attempt,
            created_at: job.created_at,
            deadline: job.deadline,
        }
    }

    /// Counts a failed attempt and says where the job goes: dead when no
    /// retries are left (or `fatal`), else delayed by `retry_in` or the
    /// backoff.
    fn count_failure(
        &mut self,
        id: JobId,
        job: &Job,
        retry_in: Option<u64>,
        now: Millis,
        fatal: bool,
    ) -> Target {
        let spec = self.specs.get(job.spec);
        let q = self.changed(job.queue);
        q.counters.failed += 1;
        if fatal || job.attempt > spec.retries {
            return Target::Dead;
        }
        q.counters.retried += 1;
        let wait = retry_in.unwrap_or_else(|| retry_delay(spec.backoff_ms, job.attempt, id));
        if wait == 0 {
            Target::Waiting
        } else {
            Target::Delayed(now.saturating_add(wait))
        }
    }

    fn pull_from(&mut self, qid: QueueId, count: u32, lease_ms: Option<u32>, now: Millis) -> Vec<Pulled> {
        let q = &self.queues[&qid];
        if q.paused {
            return Vec::new();
        }
        // Never reserve more than exists: COUNT is a client's claim.
        let mut pulled = Vec::with_capacity(u64::from(count).min(q.waiting) as usize);
        while pulled.len() < count as usize {
            let Some((_, ready)) = self.queue_mut(qid).ready_pop() else {
                break;
            };
            let mut job = Job::waiting(qid, &ready);
            job.attempt = job.attempt.saturating_add(1);
            let lease = u64::from(lease_ms.unwrap_or(self.specs.get(job.spec).lease_ms));
            (job.state, job.deadline) = (State::Active, now.saturating_add(lease));
            self.changes.push(Change::PutJob {
                record: self.record(ready.id, &job),
                payload: None,
            });
            self.put(ready.id, job);
            pulled.push(Pulled {
                id: ready.id,
                attempt: job.attempt,
            });
        }
        self.queue_mut(qid).pulled += pulled.len() as u64;
        pulled
    }

    /// Hands ready jobs of `qid` to its blocked pullers, first come first
    /// served, each getting up to its COUNT.
    fn serve_waiters(&mut self, qid: QueueId, now: Millis) {
        let q = &self.queues[&qid];
        if q.paused || q.waiting == 0 || !self.waiters.contains_key(&q.name) {
            return;
        }
        let name = q.name.clone();
        while self.queues[&qid].waiting > 0 {
            let Some(waiter) = self.waiters.get_mut(&name).and_then(VecDeque::pop_front) else {
                break;
            };
            self.unblock(waiter.token);
            let jobs = self.pull_from(qid, waiter.count, waiter.lease_ms, now);
            self.deliveries.push(Delivery {
                token: waiter.token,
                queue: name.clone(),
                jobs,
            });
        }
    }

    /// Moves job `id` of `qid` to `to`: its queue's indexes and counts, the
    /// timers, the change record; serves blocked pullers when it became
    /// ready.
    fn move_job(&mut self, qid: QueueId, id: JobId, to: Target, now: Millis) -> State {
        let mut job = self.take(qid, id).expect("moved job exists");
        (job.state, job.deadline) = match to {
            Target::Waiting => (State::Waiting, 0),
            Target::Delayed(at) => (State::Delayed, at),
            Target::Active(until) => (State::Active, until),
            Target::Dead => {
                self.changed(qid).counters.dead += 1;
                (State::Dead, 0)
            }
        };
        self.changes.push(Change::PutJob {
            record: self.record(id, &job),
            payload: None,
        });
        self.put(id, job);
        if job.state == State::Waiting {
            self.serve_waiters(qid, now);
        }
        job.state
    }

    /// Files a job under its state: the ready index when waiting, else
    /// the job table (and the timers or the dead set); counts it there.
    fn put(&mut self, id: JobId, job: Job) {
        let q = self.queues.get_mut(&job.queue).expect("job's queue exists");
        match job.state {
            State::Waiting => {
                let ready = Ready {
                    id,
                    created_at: job.created_at,
                    spec: job.spec,
                    attempt: job.attempt,
                };
                q.ready_insert(self.specs.get(job.spec).priority, ready);
                return;
            }
            State::Delayed => {
                q.delayed += 1;
                self.timers.insert((job.deadline, id), ());
            }
            State::Active => {
                q.active += 1;
                self.timers.insert((job.deadline, id), ());
            }
            State::Dead => {
                q.dead.insert(id);
            }
            State::Blocked => {}
        }
        self.jobs.insert(id, job);
    }

    /// Takes job `id` of `qid` out of wherever [`Engine::put`] filed it.
    fn take(&mut self, qid: QueueId, id: JobId) -> Option<Job> {
        let Some(&job) = self.jobs.get(&id) else {
            let (_, ready) = self.queues.get_mut(&qid)?.ready_remove(id)?;
            return Some(Job::waiting(qid, &ready));
        };
        if job.queue != qid {
            return None;
        }
        self.jobs.remove(&id);
        let q = self.queue_mut(qid);
        match job.state {
            State::Delayed => {
                q.delayed -= 1;
                self.timers.remove(&(job.deadline, id));
            }
            State::Active => {
                q.active -= 1;
                self.timers.remove(&(job.deadline, id));
            }
            State::Dead => {
                q.dead.remove(&id);
            }
            State::Waiting | State::Blocked => {}
        }
        Some(job)
    }

    fn queue_mut(&mut self, qid: QueueId) -> &mut Queue {
        self.queues.get_mut(&qid).expect("queue exists")
    }

    /// Removes a job of `qid` from every index; records the deletion.
    fn remove_job(&mut self, qid: QueueId, id: JobId) -> Option<Job> {
        let job = self.take(qid, id)?;
        self.specs.release(job.spec);
        self.changes.push(Change::DeleteJob(id));
        Some(job)
    }
}

/// Refuses a job that is not active under the given attempt.
fn check_active(id: JobId, job: &Job, attempt: Option<u32>) -> Result<(), EngineError> {
    match (job.state, attempt) {
        (State::Active, Some(a)) if a != job.attempt => Err(EngineError::LeaseLost(id)),
        (State::Active, _) => Ok(()),
        // The worker's lease is gone: say so rather than "no job".
        (_, Some(_)) => Err(EngineError::LeaseLost(id)),
        (_, None) => Err(EngineError::NoJob(id)),
    }
}

/// Where a job moves.
#[derive(Clone, Copy, Debug)]
enum Target {
    Waiting,
    Delayed(Millis),
    Active(Millis),
    Dead,
}
