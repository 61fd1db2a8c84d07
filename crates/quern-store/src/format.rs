//! The on-disk format, version 1. Frozen: a change to any byte below is a
//! new format version, and old data must then be converted, not reread.
//!
//! Every integer is big-endian so that keys sort numerically: LMDB then
//! iterates jobs in id order, which is push order, which is what keeps FIFO
//! across restarts. Values are fixed-layout records rather than a serde
//! format so that the exact bytes are pinned by a test and cannot drift
//! with a dependency's version.
//!
//! ```text
//! meta      "format_version" → u32          "next_job" → u64     "next_queue" → u32
//!           "wal_applied" → u64 (the last log record held, see `wal`)
//!           "purge" | queue id u32 → next job id u64 | last job id u64
//!               (a deleted queue whose jobs in that id range are still being
//!               deleted; a build older than this key reports them as corrupt)
//! queues    queue id u32     → paused u8 | pushed u64 | acked u64 | failed u64
//!                              | retried u64 | dead u64 | expired_leases u64 | name (rest)
//! jobs      job id u64       → record_version u8 (=1) | queue u32 | state u8 | priority i64
//!                              | retries u32 | backoff_ms u32 | lease_ms u32 | attempt u32
//!                              | created_at u64 | deadline u64
//! payloads  job id u64       → payload bytes
//! errors    job id u64       → last error bytes
//! ```

use std::ops::RangeInclusive;

use bytes::Bytes;
use quern_engine::{Counters, JobId, JobRecord, JobSpec, QueueId, QueueRecord, State};

use crate::error::StoreError;

/// The format this build writes and the only one it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The first byte of every job record, so that a later build could grow
/// the record without a whole new format.
pub(crate) const JOB_RECORD_VERSION: u8 = 1;

/// The names of LMDB's named databases: every name lives here, nowhere else.
pub(crate) mod db {
    /// Format version and id counters.
    pub const META: &str = "meta";
    /// Queue records.
    pub const QUEUES: &str = "queues";
    /// Job records.
    pub const JOBS: &str = "jobs";
    /// Job payloads, apart so a state change never rewrites them.
    pub const PAYLOADS: &str = "payloads";
    /// Jobs' last errors.
    pub const ERRORS: &str = "errors";
    /// How many there are: the environment's `max_dbs`.
    pub const COUNT: u32 = 5;
}

/// The keys of the `meta` database.
pub(crate) mod meta_key {
    /// u32: the format version.
    pub const FORMAT_VERSION: &[u8] = b"format_version";
    /// u64: no job id below this will be handed out again.
    pub const NEXT_JOB: &[u8] = b"next_job";
    /// u32: no queue id below this will be handed out again.
    pub const NEXT_QUEUE: &[u8] = b"next_queue";
    /// u64: the last write-ahead log record whose changes LMDB holds.
    pub const WAL_APPLIED: &[u8] = b"wal_applied";
    /// Followed by a queue id: the ids of a deleted queue's jobs that are
    /// still to be deleted. See [`super::purge_key`].
    pub const PURGE: &[u8] = b"purge";
}

/// The `meta` key of a bulk delete in progress: `"purge"` and the queue id.
pub(crate) fn purge_key(queue: QueueId) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..5].copy_from_slice(meta_key::PURGE);
    key[5..].copy_from_slice(&queue.to_be_bytes());
    key
}

/// The value of a bulk delete in progress: the ids left, first and last.
pub(crate) fn encode_purge(ids: &RangeInclusive<JobId>) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&ids.start().to_be_bytes());
    value[8..].copy_from_slice(&ids.end().to_be_bytes());
    value
}

/// A bulk delete in progress, from its `meta` entry.
pub(crate) fn decode_purge(key: &[u8], value: &[u8]) -> Result<(QueueId, RangeInclusive<JobId>), StoreError> {
    let queue = key
        .strip_prefix(meta_key::PURGE)
        .and_then(|id| <[u8; 4]>::try_from(id).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("bad meta key {:?}", String::from_utf8_lossy(key))))?;
    let value: [u8; 16] = value.try_into().map_err(|_| bad_meta(key, value.len()))?;
    let (first, last) = value.split_at(8);
    let first = u64::from_be_bytes(first.try_into().expect("8 bytes"));
    let last = u64::from_be_bytes(last.try_into().expect("8 bytes"));
    Ok((u32::from_be_bytes(queue), first..=last))
}

/// Length of a job record.
pub(crate) const JOB_LEN: usize = 1 + 4 + 1 + 8 + 4 + 4 + 4 + 4 + 8 + 8;
/// Length of a queue record before its name.
pub(crate) const QUEUE_HEADER_LEN: usize = 1 + 6 * 8;

/// The key of a job in `jobs`, `payloads` and `errors`.
pub(crate) fn job_key(id: JobId) -> [u8; 8] {
    id.to_be_bytes()
}

/// The key of a queue in `queues`.
pub(crate) fn queue_key(id: QueueId) -> [u8; 4] {
    id.to_be_bytes()
}

/// Decodes a key of `jobs`.
pub(crate) fn decode_job_key(key: &[u8]) -> Result<JobId, StoreError> {
    let key: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("a job key has {} bytes instead of 8", key.len())))?;
    Ok(JobId::from_be_bytes(key))
}

/// Decodes a key of `queues`.
pub(crate) fn decode_queue_key(key: &[u8]) -> Result<QueueId, StoreError> {
    let key: [u8; 4] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("a queue key has {} bytes instead of 4", key.len())))?;
    Ok(QueueId::from_be_bytes(key))
}

/// Decodes a u32 value of `meta`.
pub(crate) fn decode_meta_u32(key: &[u8], value: &[u8]) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| bad_meta(key, value.len()))?;
    Ok(u32::from_be_bytes(bytes))
}

/// Decodes a u64 value of `meta`.
pub(crate) fn decode_meta_u64(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| bad_meta(key, value.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

fn bad_meta(key: &[u8], len: usize) -> StoreError {
    StoreError::Corrupt(format!(
        "meta value {:?} has a bad length ({len} bytes)",
        String::from_utf8_lossy(key)
    ))
}

/// Encodes a job's record (the value; the id is the key).
pub(crate) fn encode_job(r: &JobRecord) -> [u8; JOB_LEN] {
    let mut out = [0u8; JOB_LEN];
    let mut w = Out { buf: &mut out, at: 0 };
    w.put(&[JOB_RECORD_VERSION]);
    w.put(&r.queue.to_be_bytes());
    w.put(&[r.state as u8]);
    w.put(&r.spec.priority.to_be_bytes());
    w.put(&r.spec.retries.to_be_bytes());
    w.put(&r.spec.backoff_ms.to_be_bytes());
    w.put(&r.spec.lease_ms.to_be_bytes());
    w.put(&r.attempt.to_be_bytes());
    w.put(&r.created_at.to_be_bytes());
    w.put(&r.deadline.to_be_bytes());
    debug_assert_eq!(w.at, JOB_LEN);
    out
}

/// Decodes a job's record from its key and value.
pub(crate) fn decode_job(key: &[u8], value: &[u8]) -> Result<JobRecord, StoreError> {
    let id = decode_job_key(key)?;
    let corrupt = |why: String| StoreError::Corrupt(format!("job {id}: {why}"));
    if value.len() != JOB_LEN {
        return Err(corrupt(format!(
            "record has {} bytes instead of {JOB_LEN}",
            value.len()
        )));
    }
    let mut r = In { buf: value };
    let [version] = r.take();
    if version != JOB_RECORD_VERSION {
        return Err(corrupt(format!("unknown record version {version}")));
    }
    let queue = u32::from_be_bytes(r.take());
    let [state] = r.take();
    let state = State::from_u8(state).ok_or_else(|| corrupt(format!("unknown state byte {state}")))?;
    let spec = JobSpec {
        priority: i64::from_be_bytes(r.take()),
        retries: u32::from_be_bytes(r.take()),
        backoff_ms: u32::from_be_bytes(r.take()),
        lease_ms: u32::from_be_bytes(r.take()),
    };
    Ok(JobRecord {
        id,
        queue,
        state,
        spec,
        attempt: u32::from_be_bytes(r.take()),
        created_at: u64::from_be_bytes(r.take()),
        deadline: u64::from_be_bytes(r.take()),
    })
}

/// Encodes a queue's record into `out` (cleared first, so the applier can
/// reuse one buffer).
pub(crate) fn encode_queue(r: &QueueRecord, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(QUEUE_HEADER_LEN + r.name.len());
    out.push(u8::from(r.paused));
    let c = &r.counters;
    for n in [c.pushed, c.acked, c.failed, c.retried, c.dead, c.expired_leases] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(&r.name);
}

/// Decodes a queue's record from its key and value.
pub(crate) fn decode_queue(key: &[u8], value: &[u8]) -> Result<QueueRecord, StoreError> {
    let id = decode_queue_key(key)?;
    let corrupt = |why: String| StoreError::Corrupt(format!("queue {id}: {why}"));
    if value.len() < QUEUE_HEADER_LEN {
        return Err(corrupt(format!(
            "record has {} bytes, fewer than {QUEUE_HEADER_LEN}",
            value.len()
        )));
    }
    let (header, name) = value.split_at(QUEUE_HEADER_LEN);
    let mut r = In { buf: header };
    let paused = match r.take() {
        [0] => false,
        [1] => true,
        [other] => return Err(corrupt(format!("paused flag is {other}, not 0 or 1"))),
    };
    let counters = Counters {
        pushed: u64::from_be_bytes(r.take()),
        acked: u64::from_be_bytes(r.take()),
        failed: u64::from_be_bytes(r.take()),
        retried: u64::from_be_bytes(r.take()),
        dead: u64::from_be_bytes(r.take()),
        expired_leases: u64::from_be_bytes(r.take()),
    };
    Ok(QueueRecord {
        id,
        name: Bytes::copy_from_slice(name),
        paused,
        counters,
    })
}

/// Writes fields one after another into a buffer of known length.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Reads fields one after another; callers check the length first, so
/// running short is a bug, not bad data.
struct In<'a> {
    buf: &'a [u8],
}

impl In<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.buf.split_at(N);
        self.buf = rest;
        head.try_into().expect("split_at gave N bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JobRecord {
        JobRecord {
            id: 0x0102_0304_0506_0708,
            queue: 7,
            state: State::Active,
            spec: JobSpec {
                priority: -2,
                retries: 3,
                backoff_ms: 1000,
                lease_ms: 30_000,
            },
            attempt: 2,
            created_at: 1_700_000_000_000,
            deadline: 1_700_000_030_000,
        }
    }

    fn queue() -> QueueRecord {
        QueueRecord {
            id: 9,
            name: Bytes::from_static(b"emails"),
            paused: true,
            counters: Counters {
                pushed: 10,
                acked: 7,
                failed: 2,
                retried: 1,
                dead: 1,
                expired_leases: 258,
            },
        }
    }

    /// These bytes are the format. If this test fails, the change broke
    /// every existing data directory: bump the format version instead.
    #[test]
    fn golden_bytes() {
        assert_eq!(FORMAT_VERSION.to_be_bytes(), [0, 0, 0, 1]);
        assert_eq!(job_key(0x0102_0304_0506_0708), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(queue_key(9), [0, 0, 0, 9]);
        #[rustfmt::skip]
        let job_bytes: [u8; 46] = [
            0x01,                                           // record version
            0x00, 0x00, 0x00, 0x07,                         // queue
            0x03,                                           // state: active
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // priority -2
            0x00, 0x00, 0x00, 0x03,                         // retries
            0x00, 0x00, 0x03, 0xe8,                         // backoff_ms 1000
            0x00, 0x00, 0x75, 0x30,                         // lease_ms 30000
            0x00, 0x00, 0x00, 0x02,                         // attempt
            0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // created_at
            0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0xdd, 0x30, // deadline
        ];
        assert_eq!(encode_job(&job()), job_bytes);

        #[rustfmt::skip]
        let queue_bytes: Vec<u8> = [
            &[0x01][..],                                      // paused
            &[0, 0, 0, 0, 0, 0, 0, 10],                       // pushed
            &[0, 0, 0, 0, 0, 0, 0, 7],                        // acked
            &[0, 0, 0, 0, 0, 0, 0, 2],                        // failed
            &[0, 0, 0, 0, 0, 0, 0, 1],                        // retried
            &[0, 0, 0, 0, 0, 0, 0, 1],                        // dead
            &[0, 0, 0, 0, 0, 0, 1, 2],                        // expired_leases 258
            b"emails",                                        // name
        ]
        .concat();
        let mut out = Vec::new();
        encode_queue(&queue(), &mut out);
        assert_eq!(out, queue_bytes);

        assert_eq!(&purge_key(0x0a0b_0c0d), b"purge\x0a\x0b\x0c\x0d");
        #[rustfmt::skip]
        let purge_bytes: [u8; 16] = [
            0, 0, 0, 0, 0, 0, 0x01, 0x00, // the next id to delete, 256
            0, 0, 0, 0, 0, 0, 0x02, 0x01, // the last, 513
        ];
        assert_eq!(encode_purge(&(256..=513)), purge_bytes);
    }

    #[test]
    fn state_bytes_are_frozen() {
        let bytes: Vec<u8> = State::ALL.iter().map(|&s| s as u8).collect();
        assert_eq!(bytes, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn round_trips() {
        let mut j = job();
        for state in State::ALL {
            for (priority, id) in [(i64::MIN, 1), (0, JobId::MAX), (i64::MAX, 42)] {
                j.state = state;
                j.spec.priority = priority;
                j.id = id;
                assert_eq!(decode_job(&job_key(id), &encode_job(&j)).unwrap(), j);
            }
        }
        let mut q = queue();
        let mut buf = Vec::new();
        for (name, paused) in [(&b""[..], false), (b"a queue \xff\x00", true)] {
            q.name = Bytes::copy_from_slice(name);
            q.paused = paused;
            q.id = u32::MAX;
            encode_queue(&q, &mut buf);
            assert_eq!(decode_queue(&queue_key(q.id), &buf).unwrap(), q);
        }
        for (queue, ids) in [(1, 1..=1), (u32::MAX, 7..=JobId::MAX)] {
            let decoded = decode_purge(&purge_key(queue), &encode_purge(&ids)).unwrap();
            assert_eq!(decoded, (queue, ids));
        }
    }

    fn corrupt_message(r: Result<impl std::fmt::Debug, StoreError>) -> String {
        match r {
            Err(StoreError::Corrupt(message)) => message,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_records_are_refused_by_name() {
        let key = job_key(77);
        let good = encode_job(&job());

        let mut bad_state = good;
        bad_state[5] = 9;
        let m = corrupt_message(decode_job(&key, &bad_state));
        assert!(m.contains("job 77") && m.contains("state byte 9"), "{m}");

        let mut bad_version = good;
        bad_version[0] = 2;
        assert!(corrupt_message(decode_job(&key, &bad_version)).contains("record version 2"));

        let m = corrupt_message(decode_job(&key, &good[..45]));
        assert!(m.contains("job 77") && m.contains("45 bytes"), "{m}");
        corrupt_message(decode_job(&key[..7], &good));

        let mut buf = Vec::new();
        encode_queue(&queue(), &mut buf);
        buf[0] = 2;
        assert!(corrupt_message(decode_queue(&queue_key(3), &buf)).contains("queue 3"));
        corrupt_message(decode_queue(&queue_key(3), &buf[..QUEUE_HEADER_LEN - 1]));
        corrupt_message(decode_meta_u32(meta_key::FORMAT_VERSION, &[0, 1]));
        corrupt_message(decode_meta_u64(meta_key::NEXT_JOB, &[0; 4]));
        corrupt_message(decode_purge(&purge_key(3), &[0; 15]));
        corrupt_message(decode_purge(b"purge\0\0\x03", &[0; 16]));
    }
}
