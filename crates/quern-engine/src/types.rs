//! The words of the engine: ids, states, a job's options and the records
//! that the store persists.

use bytes::Bytes;

/// A job id: unique on the server for its whole life, always below
/// [`MAX_JOB_ID`] so JavaScript clients read it exactly.
pub type JobId = u64;
/// A queue's id; it names the queue on disk, where names may be long.
pub type QueueId = u32;
/// Wall-clock milliseconds since the Unix epoch. Deadlines use the wall
/// clock (not a monotonic one) so that they survive a restart.
pub type Millis = u64;

/// Ids stay below 2^53, the largest integer a JavaScript number holds exactly.
pub const MAX_JOB_ID: JobId = (1 << 53) - 1;

/// A job's state. The numbers are the on-disk encoding: never change one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// Ready to be pulled.
    Waiting = 1,
    /// Due later: DELAY, AT, or a retry's backoff. `deadline` is when.
    Delayed = 2,
    /// Leased to a worker until `deadline`.
    Active = 3,
    /// Waiting for other jobs (AFTER); reserved for that feature.
    Blocked = 4,
    /// In the dead-letter queue.
    Dead = 5,
}

impl State {
    /// Every state, in the order QSTATS lists them.
    pub const ALL: [State; 5] = [
        State::Waiting,
        State::Delayed,
        State::Active,
        State::Blocked,
        State::Dead,
    ];

    /// The state's name as replies spell it.
    pub fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Delayed => "delayed",
            State::Active => "active",
            State::Blocked => "blocked",
            State::Dead => "dead",
        }
    }

    /// Decodes the on-disk byte.
    pub fn from_u8(byte: u8) -> Option<State> {
        Some(match byte {
            1 => State::Waiting,
            2 => State::Delayed,
            3 => State::Active,
            4 => State::Blocked,
            5 => State::Dead,
            _ => return None,
        })
    }
}

/// The options a job was pushed with; fixed for the job's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobSpec {
    /// Higher is pulled first.
    pub priority: i64,
    /// Failed attempts that are retried before the job goes dead.
    pub retries: u32,
    /// Base of the exponential backoff between retries, in ms.
    pub backoff_ms: u32,
    /// Length of each delivery's lease, in ms (at least 1).
    pub lease_ms: u32,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            priority: 0,
            retries: 3,
            backoff_ms: 1000,
            lease_ms: 30_000,
        }
    }
}

/// Per-queue counters since the queue was created. They survive restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Jobs pushed.
    pub pushed: u64,
    /// Jobs acknowledged.
    pub acked: u64,
    /// Failed attempts: QFAIL (not SILENT) and expired leases.
    pub failed: u64,
    /// Failed attempts that were given another one.
    pub retried: u64,
    /// Jobs that went to the dead-letter queue.
    pub dead: u64,
    /// Leases that ran out before an ack or a fail.
    pub expired_leases: u64,
}

/// Everything the store keeps about a job except its payload and last
/// error, which live in their own tables so that a state change never
/// rewrites them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// The job's id.
    pub id: JobId,
    /// The queue it belongs to.
    pub queue: QueueId,
    /// Its state.
    pub state: State,
    /// Its options.
    pub spec: JobSpec,
    /// Deliveries so far; the current (or last) delivery's number.
    pub attempt: u32,
    /// When it was pushed.
    pub created_at: Millis,
    /// Delayed: when it becomes waiting. Active: when its lease runs out.
    /// Otherwise 0.
    pub deadline: Millis,
}

/// What the store keeps about a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRecord {
    /// The queue's id.
    pub id: QueueId,
    /// Its name.
    pub name: Bytes,
    /// Whether QPAUSE holds it.
    pub paused: bool,
    /// Its counters.
    pub counters: Counters,
}

/// One state change for the store to persist, in the order the engine
/// made them. Applying every change in order to an empty store and loading
/// it back gives the same engine state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A queue was created or its record changed.
    PutQueue(QueueRecord),
    /// A queue and all its jobs were deleted (a `DeleteJob` for each, or
    /// one `PurgeJobs`, comes first).
    DeleteQueue(QueueId),
    /// The jobs of deleted queue `queue`, deleted in bulk: every job of
    /// the queue with an id in `first..=last` (all of them).
    PurgeJobs {
        /// The deleted queue.
        queue: QueueId,
        /// The lowest id among its jobs.
        first: JobId,
        /// The highest.
        last: JobId,
    },
    /// A job was created (`payload` is `Some`) or its record changed.
    PutJob {
        /// The job's new record.
        record: JobRecord,
        /// The payload, on creation only.
        payload: Option<Bytes>,
    },
    /// The job's last error, from QFAIL ERROR.
    SetError {
        /// The job.
        id: JobId,
        /// The message.
        error: Bytes,
    },
    /// The job is gone: its record, payload and error.
    DeleteJob(JobId),
}
