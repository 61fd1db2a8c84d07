//! The write-ahead log: where a change becomes durable.
//!
//! Committing to LMDB durably costs two flushes and a write per touched
//! page (leaves and branches of several trees, the free list, the meta
//! page), scattered over the file. The log costs one sequential write and
//! one flush per batch, so a reply waits for that, and LMDB takes the same
//! changes later, in larger batches that share their page writes
//! ([`crate::writer`]). Every LMDB commit records the last log record it
//! holds (`meta.wal_applied`), in the same transaction.
//!
//! # Files
//!
//! Two files, `wal-0.log` and `wal-1.log`, used in turn. Each is filled
//! with zeros when created, so that appending overwrites allocated blocks
//! and a flush writes no file-system metadata. Records are appended to one
//! file until it holds [`FILE_BYTES`]; then writing starts over at the top
//! of the other, once every record in it is in LMDB. Old records left
//! below the new ones have lower sequence numbers, which is how reading
//! knows where the new ones end.
//!
//! ```text
//! file    = magic "QUERNWAL" | version u32 (=1) | 4 zero bytes | record*
//! record  = body_len u32 | crc32 u32 of (seq | body) | seq u64 | body
//! body    = change*
//! change  = 1 PutQueue  | queue id u32 | len u32 | queue value (as in `queues`)
//!         | 2 DeleteQueue | queue id u32
//!         | 3 PutJob    | job id u64 | job value (as in `jobs`) | 0, or 1 | len u32 | payload
//!         | 4 SetError  | job id u64 | len u32 | error
//!         | 5 DeleteJob | job id u64
//!         | 6 PurgeJobs | queue id u32 | first job id u64 | last job id u64
//! ```
//!
//! PurgeJobs deletes every job of the queue with an id from first to last;
//! a build older than it refuses a log that holds one, as corrupt.
//!
//! Integers are big-endian, as everywhere on disk. A record whose length
//! runs past the file or whose checksum fails (a write cut short by a
//! crash) ends the log. The tags and layouts are frozen, as the rest of
//! the format is; a golden-bytes test pins them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use quern_engine::{Change, QueueId};

use crate::error::StoreError;
use crate::format;

/// The log's files, used in turn.
pub(crate) const FILES: [&str; 2] = ["wal-0.log", "wal-1.log"];

/// Bytes of records a file takes before writing moves to the other one;
/// also the zeros a new file is filled with. One batch may run past it.
pub(crate) const FILE_BYTES: u64 = 16 << 20;

const MAGIC: &[u8; 8] = b"QUERNWAL";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
/// body_len u32, crc32 u32, seq u64.
const RECORD_HEADER: usize = 16;

/// The change tags. Frozen: never reuse or renumber one.
mod tag {
    pub const PUT_QUEUE: u8 = 1;
    pub const DELETE_QUEUE: u8 = 2;
    pub const PUT_JOB: u8 = 3;
    pub const SET_ERROR: u8 = 4;
    pub const DELETE_JOB: u8 = 5;
    pub const PURGE_JOBS: u8 = 6;
}

/// The log, open for appending. Only the logging thread writes it.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    files: [File; 2],
    /// The file records go to.
    current: usize,
    /// Where the next record goes in it.
    offset: u64,
    /// The last record written to each file since writing last started
    /// over in it; 0 when none.
    last_seq: [u64; 2],
    /// The number of the next record.
    next_seq: u64,
    /// Reused buffer for one record.
    buf: Vec<u8>,
}

/// What opening the log found: records that LMDB does not hold yet.
#[derive(Debug)]
pub(crate) struct Unapplied {
    /// Their changes, in the order they were made.
    pub changes: Vec<Change>,
    /// The last one's number (the `applied` given to open when none).
    pub last_seq: u64,
}

impl Wal {
    /// Opens the log in `dir`, creating its files when missing, and reads
    /// the records numbered above `applied` (what LMDB already holds).
    /// The log then writes from the top of its first file: the caller must
    /// put the returned changes into LMDB before appending anything.
    pub fn open(dir: &Path, applied: u64) -> Result<(Wal, Unapplied), StoreError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let mut records: Vec<(u64, Vec<Change>)> = Vec::new();
        let mut files = Vec::with_capacity(2);
        for name in FILES {
            let path = dir.join(name);
            let contents = match std::fs::read(&path) {
                Ok(contents) => contents,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_error(&path)(e)),
            };
            if is_unwritten(&contents) {
                // New, or its creation was cut short: (re)create it.
                create(&path).map_err(io_error(&path))?;
            } else {
                for (seq, body) in scan(&contents, &path)? {
                    if seq > applied {
                        let changes = decode_body(body).map_err(|why| {
                            StoreError::Corrupt(format!("{} record {seq}: {why}", path.display()))
                        })?;
                        records.push((seq, changes));
                    }
                }
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_error(&path))?;
            files.push(file);
        }
        records.sort_unstable_by_key(|&(seq, _)| seq);
        let mut last_seq = applied;
        let mut changes = Vec::new();
        for (seq, batch) in records {
            if seq != last_seq + 1 {
                return Err(StoreError::Corrupt(format!(
                    "the write-ahead log in {} misses record {} (found {seq})",
                    dir.display(),
                    last_seq + 1
                )));
            }
            last_seq = seq;
            changes.extend(batch);
        }
        let files: [File; 2] = files.try_into().expect("two files");
        let wal = Wal {
            dir: dir.to_path_buf(),
            files,
            current: 0,
            offset: HEADER_LEN,
            last_seq: [0, 0],
            next_seq: last_seq + 1,
            buf: Vec::new(),
        };
        Ok((wal, Unapplied { changes, last_seq }))
    }

    /// When the current file is full, the record that must be in LMDB
    /// before writing can start over in the other file.
    pub fn switch_needs(&self) -> Option<u64> {
        (self.offset >= FILE_BYTES).then(|| self.last_seq[1 - self.current])
    }

    /// Moves writing to the top of the other file; every record in it
    /// must be in LMDB ([`Wal::switch_needs`]). The file left behind is
    /// flushed first, so none of its records depends on a later flush.
    pub fn switch(&mut self) -> io::Result<()> {
        self.files[self.current].sync_data()?;
        self.current = 1 - self.current;
        self.offset = HEADER_LEN;
        self.last_seq[self.current] = 0;
        Ok(())
    }

    /// Appends one record holding `changes`; returns its number. Not yet
    /// durable: see [`Wal::sync`].
    pub fn append(&mut self, changes: &[Change]) -> io::Result<u64> {
        let seq = self.next_seq;
        self.buf.clear();
        self.buf.extend_from_slice(&[0; RECORD_HEADER]);
        for change in changes {
            encode_change(change, &mut self.buf);
        }
        let body_len = u32::try_from(self.buf.len() - RECORD_HEADER)
            .map_err(|_| io::Error::other("a batch of more than 4 GiB"))?;
        self.buf[8..16].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32fast::hash(&self.buf[8..]);
        self.buf[0..4].copy_from_slice(&body_len.to_be_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_be_bytes());
        self.files[self.current].write_all_at(&self.buf, self.offset)?;
        self.offset += self.buf.len() as u64;
        self.last_seq[self.current] = seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Flushes what was appended to the disk.
    pub fn sync(&self) -> io::Result<()> {
        self.files[self.current].sync_data()
    }

    /// The directory, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether a file is missing or was never finished: shorter than its
/// header, or all zeros where the header should be.
fn is_unwritten(contents: &[u8]) -> bool {
    contents.len() < HEADER_LEN as usize || contents[..HEADER_LEN as usize].iter().all(|&b| b == 0)
}

/// Writes a new file: zeros first, then the header, each flushed, so that
/// a file with a header is always whole.
fn create(path: &Path) -> io::Result<()> {
    let mut file = File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES.div_ceil(zeros.len() as u64) {
        file.write_all(&zeros)?;
    }
    file.sync_all()?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_be_bytes());
    file.write_all_at(&header, 0)?;
    file.sync_all()?;
    // The directory entry, so the file itself survives a power cut.
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The records of one file, up to the first that is cut short, fails its
/// checksum, or does not follow the one before.
fn scan<'a>(contents: &'a [u8], path: &Path) -> Result<Vec<(u64, &'a [u8])>, StoreError> {
    if &contents[..8] != MAGIC {
        return Err(StoreError::Corrupt(format!(
            "{} is not a Quern write-ahead log",
            path.display()
        )));
    }
    let version = u32::from_be_bytes(contents[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(StoreError::Corrupt(format!(
            "{} has log version {version}; this build reads version {VERSION}",
            path.display()
        )));
    }
    let mut records = Vec::new();
    let mut at = HEADER_LEN as usize;
    let mut previous: Option<u64> = None;
    while let Some(header) = contents.get(at..at + RECORD_HEADER) {
        let body_len = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes"));
        let seq = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        let Some(body) = contents.get(at + RECORD_HEADER..at + RECORD_HEADER + body_len) else {
            break;
        };
        if seq == 0 || previous.is_some_and(|p| seq != p + 1) {
            break;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[8..16]);
        hasher.update(body);
        if hasher.finalize() != crc {
            break;
        }
        records.push((seq, body));
        previous = Some(seq);
        at += RECORD_HEADER + body_len;
    }
    Ok(records)
}

fn encode_change(change: &Change, out: &mut Vec<u8>) {
    match change {
        Change::PutQueue(record) => {
            out.push(tag::PUT_QUEUE);
            out.extend_from_slice(&record.id.to_be_bytes());
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            let mut value = Vec::new();
            format::encode_queue(record, &mut value);
            out[at..at + 4].copy_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(&value);
        }
        Change::DeleteQueue(id) => {
            out.push(tag::DELETE_QUEUE);
            out.extend_from_slice(&id.to_be_bytes());
        }
        Change::PutJob { record, payload } => {
            out.push(tag::PUT_JOB);
            out.extend_from_slice(&record.id.to_be_bytes());
            out.extend_from_slice(&format::encode_job(record));
            match payload {
                None => out.push(0),
                Some(payload) => {
                    out.push(1);
                    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    out.extend_from_slice(payload);
                }
            }
        }
        Change::SetError { id, error } => {
            out.push(tag::SET_ERROR);
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(error.len() as u32).to_be_bytes());
            out.extend_from_slice(error);
        }
        Change::DeleteJob(id) => {
            out.push(tag::DELETE_JOB);
            out.extend_from_slice(&id.to_be_bytes());
        }
        Change::PurgeJobs { queue, first, last } => {
            out.push(tag::PURGE_JOBS);
            out.extend_from_slice(&queue.to_be_bytes());
            out.extend_from_slice(&first.to_be_bytes());
            out.extend_from_slice(&last.to_be_bytes());
        }
    }
}

/// Reads a record's body; the checksum already passed, so a failure here
/// is a bug or a format mismatch, reported as corruption.
fn decode_body(mut body: &[u8]) -> Result<Vec<Change>, String> {
    let mut changes = Vec::new();
    while let Some((&tag, rest)) = body.split_first() {
        body = rest;
        let change = match tag {
            tag::PUT_QUEUE => {
                let key = take(&mut body, 4)?;
                let len = u32::from_be_bytes(take(&mut body, 4)?.try_into().expect("4")) as usize;
                let value = take(&mut body, len)?;
                Change::PutQueue(format::decode_queue(key, value).map_err(|e| e.to_string())?)
            }
            tag::DELETE_QUEUE => {
                let id = QueueId::from_be_bytes(take(&mut body, 4)?.try_into().expect("4"));
                Change::DeleteQueue(id)
            }
            tag::PUT_JOB => {
                let key = take(&mut body, 8)?;
                let value = take(&mut body, format::JOB_LEN)?;
                let record = format::decode_job(key, value).map_err(|e| e.to_string())?;
                let payload = match take(&mut body, 1)? {
                    [0] => None,
                    _ => {
                        let len = u32::from_be_bytes(take(&mut body, 4)?.try_into().expect("4")) as usize;
                        Some(Bytes::copy_from_slice(take(&mut body, len)?))
                    }
                };
                Change::PutJob { record, payload }
            }
            tag::SET_ERROR => {
                let id = format::decode_job_key(take(&mut body, 8)?).map_err(|e| e.to_string())?;
                let len = u32::from_be_bytes(take(&mut body, 4)?.try_into().expect("4")) as usize;
                let error = Bytes::copy_from_slice(take(&mut body, len)?);
                Change::SetError { id, error }
            }
            tag::DELETE_JOB => {
                Change::DeleteJob(format::decode_job_key(take(&mut body, 8)?).map_err(|e| e.to_string())?)
            }
            tag::PURGE_JOBS => {
                let queue = QueueId::from_be_bytes(take(&mut body, 4)?.try_into().expect("4"));
                let first = format::decode_job_key(take(&mut body, 8)?).map_err(|e| e.to_string())?;
                let last = format::decode_job_key(take(&mut body, 8)?).map_err(|e| e.to_string())?;
                Change::PurgeJobs { queue, first, last }
            }
            other => return Err(format!("unknown change tag {other}")),
        };
        changes.push(change);
    }
    Ok(changes)
}

/// The next `n` bytes of `body`.
fn take<'a>(body: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if body.len() < n {
        return Err(format!(
            "a change runs past its record ({n} bytes wanted, {} left)",
            body.len()
        ));
    }
    let (head, rest) = body.split_at(n);
    *body = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use quern_engine::{Counters, JobRecord, JobSpec, QueueRecord, State};

    use super::*;

    fn changes() -> Vec<Change> {
        let record = JobRecord {
            id: 7,
            queue: 2,
            state: State::Waiting,
            spec: JobSpec::default(),
            attempt: 0,
            created_at: 1_700_000_000_000,
            deadline: 0,
        };
        vec![
            Change::PutQueue(QueueRecord {
                id: 2,
                name: Bytes::from_static(b"q"),
                paused: false,
                counters: Counters {
                    pushed: 1,
                    ..Counters::default()
                },
            }),
            Change::PutJob {
                record,
                payload: Some(Bytes::from_static(b"hi")),
            },
            Change::PutJob {
                record: JobRecord {
                    state: State::Active,
                    ..record
                },
                payload: None,
            },
            Change::SetError {
                id: 7,
                error: Bytes::from_static(b"oops"),
            },
            Change::DeleteJob(7),
            Change::PurgeJobs {
                queue: 2,
                first: 7,
                last: 258,
            },
            Change::DeleteQueue(2),
        ]
    }

    #[test]
    fn the_change_encoding_is_frozen() {
        let mut out = Vec::new();
        for change in &changes()[3..] {
            encode_change(change, &mut out);
        }
        assert_eq!(
            out,
            [
                &[4, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 4][..],
                b"oops",
                &[5, 0, 0, 0, 0, 0, 0, 0, 7],
                &[6, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 2],
                &[2, 0, 0, 0, 2],
            ]
            .concat()
        );
        let mut job = Vec::new();
        encode_change(&changes()[1], &mut job);
        assert_eq!(&job[..9], &[3, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(&job[9 + format::JOB_LEN..], &[1, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, unapplied) = Wal::open(dir.path(), 0).unwrap();
        assert!(unapplied.changes.is_empty());
        assert_eq!(wal.append(&changes()[..2]).unwrap(), 1);
        assert_eq!(wal.append(&changes()[2..]).unwrap(), 2);
        let torn_at = wal.offset;
        assert_eq!(wal.append(&changes()).unwrap(), 3);
        wal.sync().unwrap();
        drop(wal);

        let (_, unapplied) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(unapplied.last_seq, 3);
        assert_eq!(unapplied.changes, [changes(), changes()].concat());
        // Records LMDB holds are skipped.
        let (_, unapplied) = Wal::open(dir.path(), 2).unwrap();
        assert_eq!((unapplied.changes, unapplied.last_seq), (changes(), 3));

        // Reopening started writing over at the top; rewrite 1 and 2, then
        // cut record 3 short as a crash would.
        let (mut wal, _) = Wal::open(dir.path(), 3).unwrap();
        assert_eq!(wal.append(&changes()[..1]).unwrap(), 4);
        drop(wal);
        let path = dir.path().join(FILES[0]);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff; 4], torn_at + 20).unwrap();
        let (_, unapplied) = Wal::open(dir.path(), 3).unwrap();
        assert_eq!(
            (unapplied.changes, unapplied.last_seq),
            (changes()[..1].to_vec(), 4)
        );
    }

    #[test]
    fn writing_moves_to_the_other_file_when_one_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        let big = Change::PutJob {
            record: JobRecord {
                id: 1,
                queue: 1,
                state: State::Waiting,
                spec: JobSpec::default(),
                attempt: 0,
                created_at: 0,
                deadline: 0,
            },
            payload: Some(Bytes::from(vec![1u8; (FILE_BYTES / 2) as usize])),
        };
        let small = Change::DeleteJob(1);
        assert_eq!(wal.switch_needs(), None);
        wal.append(std::slice::from_ref(&big)).unwrap();
        wal.append(std::slice::from_ref(&big)).unwrap();
        // Full; nothing was ever written to the other file.
        assert_eq!(wal.switch_needs(), Some(0));
        wal.switch().unwrap();
        wal.append(std::slice::from_ref(&small)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, unapplied) = Wal::open(dir.path(), 0).unwrap();
        assert_eq!(unapplied.last_seq, 3);
        assert_eq!(unapplied.changes, vec![big.clone(), big, small]);
        // Once LMDB holds 1 and 2, only 3 is read back.
        let (mut wal, unapplied) = Wal::open(dir.path(), 2).unwrap();
        assert_eq!(unapplied.changes, vec![Change::DeleteJob(1)]);
        // The next records go over the old ones in the first file; the
        // second file's record 3 is then below what LMDB holds.
        assert_eq!(wal.append(&[Change::DeleteQueue(1)]).unwrap(), 4);
        wal.sync().unwrap();
        let (_, unapplied) = Wal::open(dir.path(), 3).unwrap();
        assert_eq!(unapplied.changes, vec![Change::DeleteQueue(1)]);
    }

    #[test]
    fn a_missing_record_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), 0).unwrap();
        wal.append(&changes()).unwrap();
        wal.sync().unwrap();
        drop(wal);
        // LMDB claims record 0 only, yet the log starts at 1: fine. But if
        // LMDB were at 5 and the log held 7, 6 would be lost.
        let (mut wal, _) = Wal::open(dir.path(), 5).unwrap();
        wal.next_seq = 7;
        wal.append(&changes()).unwrap();
        drop(wal);
        match Wal::open(dir.path(), 5) {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("misses record 6"), "{why}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        std::fs::write(dir.path().join(FILES[1]), b"something else entirely").unwrap();
        assert!(matches!(Wal::open(dir.path(), 7), Err(StoreError::Corrupt(_))));
    }
}
