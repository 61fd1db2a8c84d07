//! The store's handle: opening, loading, submitting changes, waiting for
//! their commit, and reading payloads and errors.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, WithTls};
use quern_engine::{Change, JobId, JobRecord, QueueId, QueueRecord};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::format::{self, db, meta_key, FORMAT_VERSION};
use crate::observer::StoreObserver;
use crate::overlay::{Overlay, Slot};
use crate::wal::Wal;
use crate::writer::{Applier, Logger, Resume};

/// The number of a batch of changes: [`Store::submit`] returns it and
/// [`Store::committed`] waits for it. Batches are committed in order, so
/// batch `n` committed means every batch below `n` is too.
pub type Ticket = u64;

/// LMDB reserves this much address space for the data file. It is not
/// memory and not disk: the file grows only as data is written. A map that
/// fills up stops commits (they are retried), so it is set far above any
/// real backlog.
pub const DEFAULT_MAP_SIZE: usize = {
    // 1 TiB where the address space allows it.
    if usize::BITS >= 64 {
        1 << 40
    } else {
        1 << 30
    }
};

/// Read transactions that may be open at once. Readers never hold one
/// across an `.await`, so this bounds threads reading at the same moment,
/// not connections. Each slot costs 64 bytes in the lock file.
const MAX_READERS: u32 = 1024;

/// LMDB wants the map size to be a multiple of the OS page size; 64 KiB is
/// a multiple of every page size in use.
const MAP_ALIGN: usize = 64 * 1024;

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Every commit is synced before it counts as committed. A reply sent
    /// after [`Store::committed`] survives a power cut. The default.
    Always,
    /// Commits are synced at most once a second (LMDB's `NO_SYNC`). A crash
    /// of the process loses nothing; a crash of the system (power cut,
    /// kernel panic) may lose the last second, and LMDB warns that on a
    /// filesystem that reorders writes it may even corrupt the data.
    EverySec,
    /// Commits are synced only at shutdown; the OS writes them back when it
    /// likes. A system crash risks what [`Fsync::EverySec`] risks, for
    /// longer.
    No,
}

impl Fsync {
    /// The policy's name as settings and INFO spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fsync {
    /// A message naming the accepted values.
    type Err = String;

    fn from_str(s: &str) -> Result<Fsync, String> {
        [Fsync::Always, Fsync::EverySec, Fsync::No]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown fsync policy '{s}' (expected always, everysec or no)"))
    }
}

/// How to open a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The data directory; created when missing. LMDB keeps `data.mdb` and
    /// `lock.mdb` in it. It must be on a local filesystem.
    pub dir: PathBuf,
    /// When commits reach the disk.
    pub fsync: Fsync,
    /// Address space reserved for the data file, in bytes; rounded up to a
    /// multiple of 64 KiB. See [`DEFAULT_MAP_SIZE`].
    pub map_size: usize,
}

impl StoreConfig {
    /// The defaults for a data directory: fsync always, a 1 TiB map.
    pub fn new(dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            dir: dir.into(),
            fsync: Fsync::Always,
            map_size: DEFAULT_MAP_SIZE,
        }
    }
}

impl Default for StoreConfig {
    /// `./quern-data`, as the server's default.
    fn default() -> StoreConfig {
        StoreConfig::new("quern-data")
    }
}

/// Figures for INFO and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Commits: records written to the write-ahead log, each durable
    /// (with fsync always) before its waiters are told.
    pub commits: u64,
    /// Changes committed, over all commits.
    pub changes: u64,
    /// Changes in the last commit.
    pub last_batch: u64,
    /// Syncs to disk, of the log and of LMDB: with fsync always, one per
    /// commit and one per checkpoint, plus explicit ones (every second, at
    /// shutdown).
    pub fsyncs: u64,
    /// Batches the log held back (fsync always), when many writers joined
    /// one during a flush, for more of them to join it.
    pub gathers: u64,
    /// Commits to LMDB, each holding many commits of the log.
    pub checkpoints: u64,
    /// Changes submitted but not committed yet.
    pub pending: usize,
    /// Deleted queues whose jobs LMDB is still deleting (a big queue's
    /// are deleted a slice per transaction, after the QDEL has answered).
    pub bulk_deletes: usize,
    /// The map size, in bytes.
    pub map_size: u64,
    /// Bytes of the map in use (pages up to the last one used).
    pub used_bytes: u64,
    /// The last commit or sync failure; cleared by the next successful
    /// commit.
    pub last_error: Option<String>,
}

/// The id counters a server must continue from, so that no id is ever
/// handed out twice, even one whose job is long gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedIds {
    /// The next job id to hand out.
    pub next_job: JobId,
    /// The next queue id to hand out.
    pub next_queue: QueueId,
}

/// One LMDB database; keys and values are raw bytes encoded by
/// [`crate::format`].
pub(crate) type Db = Database<'static, Raw, Raw>;

/// Every database of the environment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dbs {
    /// Format version and id counters.
    pub meta: Db,
    /// Queue records.
    pub queues: Db,
    /// Job records.
    pub jobs: Db,
    /// Payloads.
    pub payloads: Db,
    /// Last errors.
    pub errors: Db,
}

/// The durable store. See the crate documentation for how the pieces fit.
pub struct Store {
    /// The data directory, as configured.
    dir: PathBuf,
    /// The sync policy the environment was opened with.
    fsync: Fsync,
    /// The LMDB environment; the applier thread holds a clone.
    pub(crate) env: Env<WithTls>,
    /// Its databases.
    pub(crate) dbs: Dbs,
    /// LMDB's page size, for `used_bytes`.
    page_size: u64,
    /// What submitters, readers, the logger and the applier share.
    pub(crate) shared: Arc<Shared>,
    /// The logger thread (which joins the applier), until shutdown joins it.
    logger: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
    /// `quern.lock` in the data directory, locked for the store's life so
    /// that a second server cannot open the same data (its ids would
    /// collide with ours). The OS releases it if the process dies.
    _lock: std::fs::File,
}

/// State shared by the handle, the logger and the applier.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The open batch and the unsynced overlay.
    pub pending: Mutex<Pending>,
    /// Wakes the logger: a batch became non-empty, or shutdown began.
    pub wake: Condvar,
    /// The last committed batch, and whether the logger has stopped.
    pub progress: watch::Sender<Progress>,
    /// Changes submitted and not yet committed.
    pub backlog: AtomicUsize,
    /// Bulk deletes submitted (or found at the start) and not yet carried
    /// out in LMDB.
    pub bulk_deletes: AtomicUsize,
    /// Write transactions committed.
    pub commits: AtomicU64,
    /// Changes committed.
    pub changes: AtomicU64,
    /// Changes in the last commit.
    pub last_batch: AtomicU64,
    /// Syncs to disk.
    pub fsyncs: AtomicU64,
    /// Batches the logger set out to wait for, for writers to join.
    pub gathers: AtomicU64,
    /// Commits to LMDB.
    pub checkpoints: AtomicU64,
    /// What the logger hands the applier, and what LMDB holds.
    pub apply: Mutex<Apply>,
    /// Wakes the applier: changes arrived, someone waits, or shutdown.
    pub apply_wake: Condvar,
    /// Wakes those waiting for LMDB to hold something.
    pub applied: Condvar,
    /// The last failure, for INFO.
    pub last_error: Mutex<Option<String>>,
    /// Told of every write, once [`Store::observe`] has set it.
    pub observer: OnceLock<Arc<dyn StoreObserver>>,
    /// Tests hold this to keep the logger from writing the log.
    #[cfg(test)]
    pub hold: Mutex<()>,
    /// Tests hold this to keep the applier from writing LMDB.
    #[cfg(test)]
    pub hold_apply: Mutex<()>,
    /// Tests hold this to keep bulk deletes from going on.
    #[cfg(test)]
    pub hold_purge: Mutex<()>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            pending: Mutex::new(Pending::new()),
            wake: Condvar::new(),
            progress: watch::Sender::new(Progress {
                committed: 0,
                stopped: false,
            }),
            backlog: AtomicUsize::new(0),
            bulk_deletes: AtomicUsize::new(0),
            commits: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            last_batch: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            gathers: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            apply: Mutex::new(Apply::default()),
            apply_wake: Condvar::new(),
            applied: Condvar::new(),
            last_error: Mutex::new(None),
            observer: OnceLock::new(),
            #[cfg(test)]
            hold: Mutex::new(()),
            #[cfg(test)]
            hold_apply: Mutex::new(()),
            #[cfg(test)]
            hold_purge: Mutex::new(()),
        }
    }

    /// The pending state. A panic elsewhere cannot leave it inconsistent
    /// (every update is a plain assignment or append), so poisoning is
    /// ignored rather than spread to every connection.
    pub fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failure for INFO and the log.
    pub fn report(&self, message: String) {
        eprintln!("quern-store: {message}");
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }
}

/// What the logger publishes after each commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Every batch up to this one is committed.
    pub committed: Ticket,
    /// The logger has stopped: later batches will never be committed.
    pub stopped: bool,
}

/// Changes the log holds and LMDB does not yet, on their way from the
/// logger to the applier; and how far LMDB has got.
#[derive(Debug, Default)]
pub(crate) struct Apply {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// The newest batch among them, and its log record.
    pub ticket: Ticket,
    pub seq: u64,
    /// When the oldest of them arrived.
    pub since: Option<Instant>,
    /// Someone waits for LMDB: commit now, and sync LMDB even when fsync
    /// is everysec or no.
    pub urgent: bool,
    /// The logger has stopped: commit what is left, sync, stop.
    pub closing: bool,
    /// LMDB holds every batch up to this one, and every log record up to
    /// `applied_seq`.
    pub applied_ticket: Ticket,
    pub applied_seq: u64,
    /// LMDB holds every log record up to this one on disk: the log may
    /// be written over up to here.
    pub synced_seq: u64,
    /// The applier has stopped.
    pub stopped: bool,
}

/// How long changes that nobody waits for may stay in the open batch,
/// for a change that someone waits for to take them along: see
/// [`Store::submit_unawaited`].
pub(crate) const UNAWAITED_WAIT: Duration = Duration::from_millis(50);
/// Unawaited changes that the log takes at once, however young.
pub(crate) const UNAWAITED_MAX: usize = 4096;

/// Changes submitted and not yet taken by the logger.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The open batch, in submission order, but for queue records: a
    /// queue's newer record replaces the one the batch holds, since both
    /// the log and LMDB keep only a batch's last record of each queue.
    pub batch: Vec<Change>,
    /// Where in `batch` each queue's record is.
    pub queue_records: foldhash::HashMap<QueueId, usize>,
    /// The open batch's number; the logger takes it and opens the next.
    pub open: Ticket,
    /// Shutdown has begun: new submissions are dropped.
    pub closing: bool,
    /// Submissions to the open batch that someone waits for: how many
    /// writers its flush will answer. With any, the logger takes the batch
    /// at once, unless it is gathering writers for it.
    pub awaited_submissions: usize,
    /// While the logger waits for the batch to grow (see
    /// `Logger::gather`): the writers it waits for, to be woken when they
    /// are in, and until when it waits at most.
    pub gather: Option<(usize, Instant)>,
    /// When the open batch's first unawaited change came, while no one
    /// waits for it.
    pub unawaited_since: Option<Instant>,
    /// The logger waits on [`Shared::wake`]. While it writes or flushes it
    /// looks at the batch again before it sleeps, so it needs no wake-up
    /// (each one is a system call).
    pub logger_asleep: bool,
    /// Payloads, errors and deletions submitted but not yet in LMDB, so
    /// that readers see them at once. The applier drops an entry once
    /// LMDB holds the batch that last touched it.
    pub unsynced: Overlay,
}

impl Pending {
    /// Nothing submitted yet; batch 1 is open.
    pub fn new() -> Pending {
        Pending {
            batch: Vec::new(),
            queue_records: foldhash::HashMap::default(),
            open: 1,
            closing: false,
            awaited_submissions: 0,
            gather: None,
            unawaited_since: None,
            logger_asleep: false,
            unsynced: Overlay::default(),
        }
    }

    /// Whether the logger should take the open batch now: someone waits
    /// for it, it is big, its oldest change has waited long enough, or
    /// the store is closing; and it is not gathering writers for it (but
    /// when closing).
    pub fn ready(&self, now: Instant) -> bool {
        !self.batch.is_empty()
            && (self.closing || !self.gathering())
            && (self.awaited()
                || self.closing
                || self.batch.len() >= UNAWAITED_MAX
                || self.unawaited_due().is_none_or(|due| now >= due))
    }

    /// Someone will wait for the open batch.
    pub fn awaited(&self) -> bool {
        self.awaited_submissions > 0
    }

    /// Whether the logger waits for more writers to join the batch.
    pub fn gathering(&self) -> bool {
        self.gather
            .is_some_and(|(writers, _)| self.awaited_submissions < writers)
    }

    /// Stops the wait for writers once its time is up.
    pub fn gather_expired(&mut self, now: Instant) {
        if self.gather.is_some_and(|(_, until)| now >= until) {
            self.gather = None;
        }
    }

    /// Counts a submission someone waits for. True when it brings the
    /// batch to the writers the logger is gathering for.
    fn writer_joined(&mut self) -> bool {
        self.awaited_submissions += 1;
        self.gather
            .is_some_and(|(writers, _)| self.awaited_submissions == writers)
    }

    /// When an open batch that no one waits for is due anyway.
    pub fn unawaited_due(&self) -> Option<Instant> {
        self.unawaited_since.map(|since| since + UNAWAITED_WAIT)
    }

    /// The logger took the batch: the next one starts afresh.
    pub fn taken(&mut self) {
        self.queue_records.clear();
        self.open += 1;
        self.awaited_submissions = 0;
        self.gather = None;
        self.unawaited_since = None;
    }
}

/// Which value of a job a read wants.
#[derive(Clone, Copy, Debug)]
enum Which {
    Payload,
    Error,
}

/// Takes the data directory's lock file, or says who holds it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "quern.lock";

impl Store {
    /// Opens (or creates) the store in `config.dir`, puts into LMDB what
    /// only the log holds, and starts the threads `quern-log` and
    /// `quern-store`.
    ///
    /// The format version is checked before any other database is opened:
    /// data of another version is refused with [`StoreError::Format`] and
    /// left untouched. An empty environment gets the current version.
    pub fn open(config: &StoreConfig) -> Result<Arc<Store>, StoreError> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let lock = lock_dir(&dir)?;
        let map_size = config
            .map_size
            .max(1)
            .div_ceil(MAP_ALIGN)
            .saturating_mul(MAP_ALIGN);
        let env = open_env(&dir, config.fsync, map_size).map_err(|e| match e {
            heed::Error::Io(source) => StoreError::Io {
                path: dir.clone(),
                source,
            },
            other => StoreError::Lmdb(other),
        })?;
        let dbs = init_databases(&env, &dir)?;
        let (resume, wal_applied) = {
            let txn = env.read_txn()?;
            let (next_job, next_queue) = read_counters(&dbs, &txn)?;
            let wal_applied = match dbs.meta.get(&txn, meta_key::WAL_APPLIED)? {
                Some(value) => format::decode_meta_u64(meta_key::WAL_APPLIED, value)?,
                None => 0,
            };
            let mut purging = BTreeMap::new();
            for entry in dbs.meta.prefix_iter(&txn, meta_key::PURGE)? {
                let (key, value) = entry?;
                let (queue, ids) = format::decode_purge(key, value)?;
                purging.insert(queue, ids);
            }
            let resume = Resume {
                next_job,
                next_queue,
                appended: highest_job_key(&dbs, &txn)?,
                purging,
            };
            (resume, wal_applied)
        };
        let page_size = u64::from(env.unnamed_database_stat().page_size);

        let shared = Arc::new(Shared::new());
        let mut applier = Applier::new(env.clone(), dbs, Arc::clone(&shared), config.fsync, resume);
        // What the log holds beyond LMDB (the last moments before a crash)
        // goes into LMDB, synced, before anything else is written.
        let (wal, unapplied) = Wal::open(&dir, wal_applied)?;
        if unapplied.last_seq > wal_applied {
            applier.commit(&unapplied.changes, unapplied.last_seq)?;
            applier.sync()?;
        }
        {
            let mut apply = shared.apply_state();
            apply.applied_seq = unapplied.last_seq;
            apply.synced_seq = unapplied.last_seq;
            // Bulk deletes a stop interrupted go on where they were.
            shared
                .bulk_deletes
                .store(applier.bulk_deletes(), Ordering::Relaxed);
        }
        let applier = spawn("quern-store", &dir, move || applier.run())?;
        let logger = Logger::new(wal, Arc::clone(&shared), config.fsync, applier);
        let handle = spawn("quern-log", &dir, move || logger.run())?;
        Ok(Arc::new(Store {
            dir,
            fsync: config.fsync,
            env,
            dbs,
            page_size,
            shared,
            logger: Mutex::new(Some(handle)),
            _lock: lock,
        }))
    }

    /// Reads every stored record, for a server starting up: all queues
    /// first, then all jobs in ascending id order (restoring them in that
    /// order keeps FIFO across restarts). Returns the id counters to
    /// continue from: past every id stored, and past every id ever handed
    /// out, even those of jobs since deleted.
    ///
    /// Runs in one read transaction; call it before serving, not while
    /// submitting (it would work, but shows only what was committed).
    pub fn load(
        &self,
        mut on_queue: impl FnMut(QueueRecord),
        mut on_job: impl FnMut(JobRecord),
    ) -> Result<LoadedIds, StoreError> {
        self.checkpoint()?;
        let txn = self.env.read_txn()?;
        let (mut next_job, mut next_queue) = read_counters(&self.dbs, &txn)?;
        // Keyed by stored ids: a fast hash, looked up once per job.
        let mut queues = foldhash::HashSet::default();
        for entry in self.dbs.queues.iter(&txn)? {
            let (key, value) = entry?;
            let record = format::decode_queue(key, value)?;
            next_queue = next_queue.max(record.id.saturating_add(1));
            queues.insert(record.id);
            on_queue(record);
        }
        for entry in self.dbs.jobs.iter(&txn)? {
            let (key, value) = entry?;
            let record = format::decode_job(key, value)?;
            if !queues.contains(&record.queue) {
                return Err(StoreError::Corrupt(format!(
                    "job {} belongs to queue {}, which is not stored",
                    record.id, record.queue
                )));
            }
            next_job = next_job.max(record.id.saturating_add(1));
            on_job(record);
        }
        Ok(LoadedIds { next_job, next_queue })
    }

    /// Hands `changes` (drained, in order) to the logger, for a caller
    /// that will wait for their commit, and returns the number of the batch
    /// they joined; a queue record replaces the one of the same queue the
    /// batch holds. Never waits for IO: it takes one mutex and appends.
    /// Call it under the lock that ordered the changes (the engine
    /// shard's), so that one shard's changes stay in order.
    ///
    /// Payloads, errors and deletions are visible to [`Store::payloads`] and
    /// [`Store::last_errors`] at once, before the commit.
    ///
    /// With nothing to submit, it returns the newest batch that holds
    /// anything already submitted, so that awaiting it means "everything I
    /// could have seen is committed". After [`Store::shutdown`] the changes
    /// are dropped and the ticket never commits.
    pub fn submit(&self, changes: &mut Vec<Change>) -> Ticket {
        self.submit_as(changes, true)
    }

    /// As [`Store::submit`], for changes no one waits for: a pull's lease,
    /// a lease running out. They wait in the open batch, for up to
    /// [`UNAWAITED_WAIT`] or until [`UNAWAITED_MAX`] have gathered, for a
    /// change someone waits for to take them along; only then does the
    /// log take them. So a stream of pulls costs a flush per thousands of
    /// leases, not one per few. A crash loses at most that much of them,
    /// which only delivers those jobs again. Their order among all other
    /// changes stays as submitted.
    pub fn submit_unawaited(&self, changes: &mut Vec<Change>) -> Ticket {
        self.submit_as(changes, false)
    }

    fn submit_as(&self, changes: &mut Vec<Change>, awaited: bool) -> Ticket {
        let mut guard = self.shared.lock();
        let pending = &mut *guard;
        if changes.is_empty() {
            if pending.batch.is_empty() {
                return pending.open - 1;
            }
            // The caller waits for what it could have seen.
            let (gathering, was_awaited) = (pending.gathering(), pending.awaited());
            let gathered = awaited && pending.writer_joined();
            // While it gathers, the logger sleeps until the writers are in
            // or its time is up: only the last writer wakes it.
            let wake = pending.logger_asleep
                && if gathering {
                    gathered
                } else {
                    awaited && !was_awaited
                };
            let ticket = pending.open;
            drop(guard);
            if wake {
                self.shared.wake.notify_one();
            }
            return ticket;
        }
        if pending.closing {
            changes.clear();
            return Ticket::MAX;
        }
        let ticket = pending.open;
        let (was_empty, was_awaited) = (pending.batch.is_empty(), pending.awaited());
        let gathering = pending.gathering();
        let before = pending.batch.len();
        for change in changes.drain(..) {
            let overlay = &mut pending.unsynced;
            match &change {
                Change::PutJob {
                    record,
                    payload: Some(payload),
                } => overlay.set(record.id, ticket, true, Some(Slot::Set(payload.clone())), None),
                Change::SetError { id, error } => {
                    overlay.set(*id, ticket, false, None, Some(Slot::Set(error.clone())))
                }
                Change::DeleteJob(id) => {
                    overlay.set(*id, ticket, false, Some(Slot::Deleted), Some(Slot::Deleted))
                }
                Change::PutQueue(record) => {
                    // Every write to a queue records it again (its counters
                    // moved); of one batch's records only the last counts.
                    let id = record.id;
                    if let Some(&at) = pending.queue_records.get(&id) {
                        pending.batch[at] = change;
                        continue;
                    }
                    pending.queue_records.insert(id, pending.batch.len());
                }
                Change::PurgeJobs { .. } => {
                    self.shared.bulk_deletes.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            pending.batch.push(change);
        }
        let gathered = awaited && pending.writer_joined();
        if !awaited && pending.unawaited_since.is_none() && !pending.awaited() {
            pending.unawaited_since = Some(Instant::now());
        }
        // The logger sleeps until the batch is ready, or for a batch no
        // one waits for until it is due: wake it when the batch opens (to
        // take it, or to learn when it is due) and when it becomes ready
        // before that; but while it gathers, only when the writers it waits
        // for are in. Each wake-up is a system call.
        let grew_big = before < UNAWAITED_MAX && pending.batch.len() >= UNAWAITED_MAX;
        let wake = pending.logger_asleep
            && if gathering {
                gathered
            } else {
                was_empty || (awaited && !was_awaited) || grew_big
            };
        self.shared
            .backlog
            .fetch_add(pending.batch.len() - before, Ordering::Relaxed);
        drop(guard);
        if wake {
            self.shared.wake.notify_one();
        }
        ticket
    }

    /// Resolves once batch `ticket` is committed: written to the log, and
    /// with [`Fsync::Always`] flushed to disk. [`StoreError::Closed`] when the
    /// logger stopped without committing it.
    pub async fn committed(&self, ticket: Ticket) -> Result<(), StoreError> {
        if self.is_committed(ticket) {
            return Ok(());
        }
        let mut progress = self.shared.progress.subscribe();
        let done = match progress.wait_for(|p| p.committed >= ticket || p.stopped).await {
            Ok(p) => p.committed >= ticket,
            // The sender lives in `self.shared`, so it cannot be gone.
            Err(_) => false,
        };
        if done {
            Ok(())
        } else {
            Err(StoreError::Closed)
        }
    }

    /// Waits until LMDB itself holds everything submitted so far
    /// (committed changes may otherwise still be only in the log), with
    /// every bulk delete of a deleted queue's jobs submitted so far
    /// carried out.
    /// [`Store::load`] calls it, so that it never meets such jobs; a
    /// backup calls it, so that it holds every change made before it.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        // Unawaited changes are awaited now.
        let target = self.submit(&mut Vec::new());
        let mut apply = self.shared.apply_state();
        while apply.applied_ticket < target || self.shared.bulk_deletes.load(Ordering::Relaxed) > 0 {
            if apply.stopped {
                return Err(StoreError::Closed);
            }
            apply.urgent = true;
            self.shared.apply_wake.notify_all();
            apply = self
                .shared
                .applied
                .wait(apply)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Ok(())
    }

    /// Whether batch `ticket` is committed.
    pub fn is_committed(&self, ticket: Ticket) -> bool {
        self.shared.progress.borrow().committed >= ticket
    }

    /// Changes submitted but not yet committed: what a server with fsync
    /// everysec or no watches to push back on producers.
    pub fn backlog(&self) -> usize {
        self.shared.backlog.load(Ordering::Relaxed)
    }

    /// The payloads of `ids`, in order; `None` for a job that does not
    /// exist (or was deleted meanwhile). Uncommitted payloads come from
    /// memory, the rest from one read transaction, copied out of the map
    /// before it ends.
    pub fn payloads(&self, ids: &[JobId]) -> Result<Vec<Option<Bytes>>, StoreError> {
        self.read(ids, Which::Payload)
    }

    /// The last error (from QFAIL ERROR) of job `id`, if it has one.
    pub fn last_error(&self, id: JobId) -> Result<Option<Bytes>, StoreError> {
        Ok(self.read(&[id], Which::Error)?.pop().flatten())
    }

    /// The last errors of `ids`, in order, as [`Store::last_error`].
    pub fn last_errors(&self, ids: &[JobId]) -> Result<Vec<Option<Bytes>>, StoreError> {
        self.read(ids, Which::Error)
    }

    fn read(&self, ids: &[JobId], which: Which) -> Result<Vec<Option<Bytes>>, StoreError> {
        // Ids this close to the one before are stepped to, not looked up.
        const NEAR_IDS: JobId = 16;
        let mut out = Vec::with_capacity(ids.len());
        let mut on_disk = Vec::new();
        {
            let pending = self.shared.lock();
            for (i, id) in ids.iter().enumerate() {
                let slot = pending.unsynced.get(*id).map(|u| match which {
                    Which::Payload => &u.payload,
                    Which::Error => &u.error,
                });
                out.push(match slot {
                    Some(Slot::Set(value)) => Some(value.clone()),
                    Some(Slot::Deleted) => None,
                    Some(Slot::OnDisk) | None => {
                        on_disk.push(i);
                        None
                    }
                });
            }
        }
        if on_disk.is_empty() {
            return Ok(out);
        }
        // An entry missing from the overlay was either never submitted or
        // is in LMDB already (the applier commits before it removes
        // entries), so a transaction begun now sees it.
        let db = match which {
            Which::Payload => self.dbs.payloads,
            Which::Error => self.dbs.errors,
        };
        let txn = self.env.read_txn()?;
        if let [i] = on_disk[..] {
            out[i] = db
                .get(&txn, &format::job_key(ids[i]))?
                .map(Bytes::copy_from_slice);
            return Ok(out);
        }
        // In id order, so that a cursor steps from one to the next: the
        // jobs of a pipeline's pulls are close together, and stepping over
        // a few entries costs much less than a lookup from the tree's root.
        on_disk.sort_unstable_by_key(|&i| ids[i]);
        let mut cursor = None;
        let mut last = 0;
        for i in on_disk {
            let id = ids[i];
            if cursor.is_none() || id <= last || id - last > NEAR_IDS {
                let from = format::job_key(id);
                let range = (Bound::Included(&from[..]), Bound::Unbounded);
                cursor = Some(db.range(&txn, &range)?.peekable());
            }
            let entries = cursor.as_mut().expect("just opened");
            out[i] = loop {
                // An entry past `id` is left for the ids after it.
                if let Some(Ok((key, _))) = entries.peek() {
                    if format::decode_job_key(key)? > id {
                        break None;
                    }
                }
                match entries.next().transpose()? {
                    None => break None,
                    Some((key, value)) if format::decode_job_key(key)? == id => {
                        break Some(Bytes::copy_from_slice(value));
                    }
                    Some(_) => {}
                }
            };
            last = id;
        }
        Ok(out)
    }

    /// Figures for INFO and metrics.
    pub fn stats(&self) -> StoreStats {
        let info = self.env.info();
        let s = &self.shared;
        StoreStats {
            commits: s.commits.load(Ordering::Relaxed),
            changes: s.changes.load(Ordering::Relaxed),
            last_batch: s.last_batch.load(Ordering::Relaxed),
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            gathers: s.gathers.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            pending: self.backlog(),
            bulk_deletes: s.bulk_deletes.load(Ordering::Relaxed),
            map_size: info.map_size as u64,
            used_bytes: (info.last_page_number as u64 + 1).saturating_mul(self.page_size),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Tells `observer` of every write from now on (for metrics). A store
    /// has one observer for its life: a second call is refused, returning
    /// `false`.
    pub fn observe(&self, observer: Arc<dyn StoreObserver>) -> bool {
        self.shared.observer.set(observer).is_ok()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sync policy.
    pub fn fsync(&self) -> Fsync {
        self.fsync
    }

    /// Commits everything submitted so far, puts it into LMDB, syncs both
    /// whatever the policy, and stops the threads. Later submissions are
    /// dropped and their tickets resolve to [`StoreError::Closed`].
    /// Idempotent: later calls return `Ok` at once.
    ///
    /// Blocks until both threads have finished (normally a commit each);
    /// from async code, call it on a blocking thread. When writes keep
    /// failing it gives up after a few quick retries and returns the
    /// error: what the log holds is put into LMDB at the next start; what
    /// it could not log is lost.
    ///
    /// The environment itself stays open, for reads, until the last
    /// `Arc<Store>` is dropped.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        self.shared.lock().closing = true;
        self.shared.wake.notify_all();
        // Held while joining, so a concurrent call returns only once the
        // threads are done too.
        let mut logger = self.logger.lock().unwrap_or_else(PoisonError::into_inner);
        match logger.take() {
            None => Ok(()),
            // A panic was already printed by the panic hook, and the
            // threads' guards told every waiter.
            Some(handle) => handle.join().unwrap_or(Err(StoreError::Closed)),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("quern-store: shutdown of {} failed: {e}", self.dir.display());
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let progress = *self.shared.progress.borrow();
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("fsync", &self.fsync)
            .field("committed", &progress.committed)
            .field("stopped", &progress.stopped)
            .field("backlog", &self.backlog())
            .finish_non_exhaustive()
    }
}

/// Opens the LMDB environment: the crate's one `unsafe`.
#[allow(unsafe_code)]
fn open_env(dir: &Path, fsync: Fsync, map_size: usize) -> Result<Env<WithTls>, heed::Error> {
    // A read transaction holds a slot in LMDB's reader table. Tied to the
    // thread (the default), the slot is taken once per thread and reused,
    // so beginning a transaction takes no lock: every pull begins one to
    // read its payload. heed makes such a transaction `!Send`, so none can
    // be held across an `.await` and moved to another worker. A thread may
    // hold only one at a time (LMDB refuses a second): no read of the store
    // begins one inside another.
    let mut options = EnvOpenOptions::new();
    options
        .map_size(map_size)
        .max_dbs(db::COUNT)
        .max_readers(MAX_READERS);
    // SAFETY: LMDB maps data.mdb into memory; it is undefined behaviour if
    // the file is changed behind the map's back. Only LMDB writes it: this
    // process opens the directory once (heed refuses a second open of the
    // same path), other processes are coordinated by LMDB's lock file, and
    // neither NO_LOCK nor WRITE_MAP is used. NO_SYNC (heed marks it unsafe)
    // only gives up durability against a system crash, which is exactly
    // what fsync everysec and no are documented to trade.
    unsafe {
        if fsync != Fsync::Always {
            options.flags(EnvFlags::NO_SYNC);
        }
        options.open(dir)
    }
}

/// Checks the format version, then creates the databases, in one write
/// transaction that is aborted (changing nothing) when the version is
/// wrong.
fn init_databases(env: &Env<WithTls>, dir: &Path) -> Result<Dbs, StoreError> {
    let txn = env.write_txn()?;
    let opened = env.create_databases_and_commit(txn, |opener, txn| -> Result<_, StoreError> {
        let meta: Database<Raw, Raw> = opener.create_database(txn, Some(db::META))?;
        match meta.get(txn, meta_key::FORMAT_VERSION)? {
            Some(value) => {
                let found = format::decode_meta_u32(meta_key::FORMAT_VERSION, value)?;
                if found != FORMAT_VERSION {
                    return Ok(CommitOrAbort::Abort(StoreError::Format {
                        dir: dir.to_path_buf(),
                        found,
                        expected: FORMAT_VERSION,
                    }));
                }
            }
            None => {
                // No version: a new environment, unless something else
                // already lives in it (the unnamed database lists the
                // named ones).
                let names: Database<Raw, Raw> = opener
                    .open_database(txn, None)?
                    .ok_or_else(|| StoreError::Corrupt("LMDB has no main database".into()))?;
                for entry in names.iter(txn)? {
                    let (name, _) = entry?;
                    if name != db::META.as_bytes() {
                        return Ok(CommitOrAbort::Abort(StoreError::Corrupt(format!(
                            "{} holds LMDB data without a Quern format version (found {:?})",
                            dir.display(),
                            String::from_utf8_lossy(name)
                        ))));
                    }
                }
                meta.put(txn, meta_key::FORMAT_VERSION, &FORMAT_VERSION.to_be_bytes())?;
            }
        }
        let queues = opener.create_database(txn, Some(db::QUEUES))?;
        let jobs = opener.create_database(txn, Some(db::JOBS))?;
        let payloads = opener.create_database(txn, Some(db::PAYLOADS))?;
        let errors = opener.create_database(txn, Some(db::ERRORS))?;
        Ok(CommitOrAbort::Commit([meta, queues, jobs, payloads, errors]))
    })?;
    match opened {
        CommitOrAbort::Commit([meta, queues, jobs, payloads, errors]) => Ok(Dbs {
            meta,
            queues,
            jobs,
            payloads,
            errors,
        }),
        CommitOrAbort::Abort(refused) => Err(refused),
    }
}

/// The id counters stored in `meta` (1 when absent).
fn read_counters(dbs: &Dbs, txn: &heed::RoTxn) -> Result<(JobId, QueueId), StoreError> {
    let next_job = match dbs.meta.get(txn, meta_key::NEXT_JOB)? {
        Some(value) => format::decode_meta_u64(meta_key::NEXT_JOB, value)?,
        None => 1,
    };
    let next_queue = match dbs.meta.get(txn, meta_key::NEXT_QUEUE)? {
        Some(value) => format::decode_meta_u32(meta_key::NEXT_QUEUE, value)?,
        None => 1,
    };
    Ok((next_job.max(1), next_queue.max(1)))
}

/// Starts one of the store's threads.
fn spawn(
    name: &str,
    dir: &Path,
    body: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> Result<JoinHandle<Result<(), StoreError>>, StoreError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// The highest job id with a record or a payload on disk (0 when none).
fn highest_job_key(dbs: &Dbs, txn: &heed::RoTxn) -> Result<JobId, StoreError> {
    let mut highest = 0;
    for db in [dbs.jobs, dbs.payloads] {
        if let Some((key, _)) = db.last(txn)? {
            highest = highest.max(format::decode_job_key(key)?);
        }
    }
    Ok(highest)
}
