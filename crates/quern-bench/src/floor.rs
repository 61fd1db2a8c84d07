//! The floor: the least work a server built as Quern is can do to answer
//! a push durably, as a yardstick for Quern and Redis on one machine.
//!
//! It frames each request, appends the requests' bytes to a log and
//! answers only once they are written (and, with `fsync`, flushed). One
//! thread writes the log for every connection, so one flush covers every
//! request that arrived meanwhile: a group commit, as Quern's log does.
//! The log file is filled with zeros up front and then written over in a
//! ring, so that a flush writes data only, never the file's size. With
//! `direct`, the log is written with `O_DIRECT`, past the page cache, in
//! whole 4 KiB blocks: the last, partial block of a write is written again,
//! with what follows, by the next.
//!
//! Without an LMDB directory it keeps no jobs. With one, it also keeps
//! what Quern keeps: every pushed payload, by id, in LMDB. A third thread
//! writes the payloads the log has committed into LMDB every 50 ms, one
//! put per job (appended, as ids rise), as Quern's store does behind its
//! log; replies never wait for it.
//!
//! What the floor does is a part of what such a server must do, so its
//! throughput bounds any server built this way on the same machine, Quern
//! included: a target above the floor is above what the machine allows
//! that design, and one above the floor with LMDB is above what it allows
//! a server that also keeps its jobs in LMDB.
//!
//! ```text
//!  connection ── frame requests → append their bytes (and the pushes'
//!                payloads) to the open batch (ticket n)
//!                → wait for `committed ≥ n` → write the replies
//!  log thread ── take the batch → pwrite → fdatasync → committed = n
//!                → hand its payloads to the LMDB thread
//!  LMDB thread ── every 50 ms: put each payload under its id, commit
//! ```
//!
//! Replies: `PING` → `+PONG`; `QPUSH` and `LPUSH` → the next integer id;
//! any other array → `:0` (the bench's QDEL, QLEN and DEL before a run).

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, PutFlags, WithoutTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::resp::{self, Reply};

/// The block `O_DIRECT` writes in: offsets, lengths and the buffer's
/// address are multiples of it.
const BLOCK: usize = 4096;
/// Bytes read from a socket at a time, at least.
const READ_CHUNK: usize = 16 << 10;
/// The log file is filled with zeros in chunks of this size.
const ZERO_CHUNK: usize = 1 << 20;
/// How long the LMDB thread gathers payloads before a transaction, as
/// Quern's store does.
const APPLY_INTERVAL: Duration = Duration::from_millis(50);
/// LMDB's map: room to spare for a whole comparison's pushes.
const MAP_SIZE: usize = 256 << 30;

/// Whether the log is flushed before replies go out (`--fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flush {
    /// `fdatasync` after every write of the log, as `fsync always`.
    Always,
    /// Written to the page cache only, as `fsync no`.
    #[value(name = "no")]
    Never,
}

/// How the floor keeps what it answers.
#[derive(Debug, Clone)]
pub struct Options {
    /// The log file's size, written over in a ring (rounded up to MiB).
    pub log_size: u64,
    /// Whether each write of the log is flushed before replies go out.
    pub flush: Flush,
    /// Write the log with `O_DIRECT`, past the page cache.
    pub direct: bool,
    /// Keep every pushed payload in LMDB, in this directory.
    pub lmdb: Option<PathBuf>,
}

/// The log every connection appends to, and its threads.
#[derive(Debug)]
pub struct Floor {
    shared: Arc<Shared>,
    ids: AtomicU64,
    /// Where the pushes' payloads are kept, if they are.
    lmdb: Option<(Env<WithoutTls>, Database<'static, Raw, Raw>)>,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the log thread when a batch opens.
    wake: Condvar,
    /// The last batch written (and flushed): replies waiting on a batch up
    /// to it may go out. `u64::MAX` once a thread failed, to wake all.
    committed: watch::Sender<u64>,
    /// Whether pushes' payloads go to LMDB.
    keeps_jobs: bool,
    /// Payloads the log has committed, for the LMDB thread.
    applying: Mutex<Vec<u8>>,
    /// Wakes the LMDB thread when payloads arrive.
    apply_wake: Condvar,
}

#[derive(Debug)]
struct Pending {
    /// The requests of the open batch, in arrival order.
    batch: Vec<u8>,
    /// Its pushes' payloads (with LMDB only), see [`encode_job`].
    jobs: Vec<u8>,
    /// The open batch's number; batch 0 is "nothing", and an open batch
    /// of 0 means a thread failed.
    open: u64,
}

impl Floor {
    /// Creates the log file at `path`, zeros flushed to disk, and starts
    /// the log thread; with `options.lmdb`, opens (or creates) an LMDB
    /// environment in that directory and starts the LMDB thread.
    pub fn start(path: &Path, options: &Options) -> io::Result<Floor> {
        let Options { flush, direct, .. } = *options;
        let lmdb = options.lmdb.as_deref();
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        let size = options.log_size.max(ZERO_CHUNK as u64);
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = 0;
        while at < size {
            file.write_all_at(&zeros, at)?;
            at += ZERO_CHUNK as u64;
        }
        file.sync_all()?;
        let file = if direct {
            File::options()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)?
        } else {
            file
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                batch: Vec::new(),
                jobs: Vec::new(),
                open: 1,
            }),
            wake: Condvar::new(),
            committed: watch::Sender::new(0),
            keeps_jobs: lmdb.is_some(),
            applying: Mutex::new(Vec::new()),
            apply_wake: Condvar::new(),
        });
        let lmdb = lmdb
            .map(|dir| open_lmdb(dir, flush).map_err(io::Error::other))
            .transpose()?;
        if let Some((env, db)) = lmdb.clone() {
            let applier = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("floor-lmdb".into())
                .spawn(move || {
                    let Err(e) = apply(&applier, &env, db);
                    applier.fail("LMDB", &e);
                })?;
        }
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("floor-log".into())
            .spawn(move || {
                let mut log = Log::new(file, at, direct);
                let Err(e) = write_log(&writer, &mut log, flush);
                writer.fail("the log", &e);
            })?;
        Ok(Floor {
            shared,
            ids: AtomicU64::new(0),
            lmdb,
        })
    }

    /// Pushes answered so far (the last id handed out).
    pub fn pushes(&self) -> u64 {
        self.ids.load(Ordering::Relaxed)
    }

    /// How many payloads LMDB holds, and the one of push `id`; `None`
    /// without LMDB.
    pub fn kept(&self, id: u64) -> Option<heed::Result<(u64, Option<Vec<u8>>)>> {
        let (env, db) = self.lmdb.as_ref()?;
        let read = || {
            let txn = env.read_txn()?;
            let payload = db.get(&txn, &id.to_be_bytes())?.map(<[u8]>::to_vec);
            Ok((db.len(&txn)?, payload))
        };
        Some(read())
    }

    /// Serves connections from `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let floor = Arc::clone(&self);
            tokio::spawn(async move {
                let _ = floor.connection(stream).await;
            });
        }
    }

    async fn connection(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let mut committed = self.shared.committed.subscribe();
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(READ_CHUNK);
        let mut jobs = Vec::new();
        loop {
            let mut used = 0;
            let mut broken = None;
            loop {
                match resp::decode(&input[used..]) {
                    Ok(Some((request, len))) => {
                        self.reply(&request, &mut out, &mut jobs);
                        used += len;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            if used > 0 {
                let ticket = self.append(&input[..used], &mut jobs);
                input.advance(used);
                let failed = ticket == 0
                    || match committed.wait_for(|&n| n >= ticket).await {
                        Ok(n) => *n == u64::MAX,
                        Err(_) => true,
                    };
                if failed {
                    stream
                        .write_all(b"-ERR the floor failed, see its log\r\n")
                        .await?;
                    return Err(io::Error::other("the floor failed"));
                }
                stream.write_all(&out).await?;
                out.clear();
            }
            if let Some(e) = broken {
                stream.write_all(format!("-ERR {e}\r\n").as_bytes()).await?;
                return Ok(());
            }
            input.reserve(READ_CHUNK);
            if stream.read_buf(&mut input).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Answers one request into `out`; a push's payload goes to `jobs`
    /// when the floor keeps them.
    fn reply(&self, request: &Reply<'_>, out: &mut Vec<u8>, jobs: &mut Vec<u8>) {
        let Reply::Array(words) = request else {
            out.extend_from_slice(b"-ERR requests are arrays of bulk strings\r\n");
            return;
        };
        let is = |command: &str| match words.first() {
            Some(Reply::Bulk(name)) => name.eq_ignore_ascii_case(command.as_bytes()),
            _ => false,
        };
        if is("PING") {
            out.extend_from_slice(b"+PONG\r\n");
        } else if is("QPUSH") || is("LPUSH") {
            let id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
            if let (true, Some(Reply::Bulk(payload))) = (self.shared.keeps_jobs, words.get(2)) {
                encode_job(jobs, id, payload);
            }
            let mut digits = [0; 20];
            out.push(b':');
            out.extend_from_slice(resp::decimal(id, &mut digits));
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(b":0\r\n");
        }
    }

    /// Adds `requests` and `jobs` (emptied) to the open batch; returns its
    /// number, or 0 once a thread has failed.
    fn append(&self, requests: &[u8], jobs: &mut Vec<u8>) -> u64 {
        let mut pending = self.shared.lock();
        if pending.open == 0 {
            return 0;
        }
        let first = pending.batch.is_empty();
        pending.batch.extend_from_slice(requests);
        pending.jobs.extend_from_slice(jobs);
        jobs.clear();
        let ticket = pending.open;
        drop(pending);
        if first {
            self.shared.wake.notify_one();
        }
        ticket
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a thread's failure: no batch opens again, and every waiting
    /// reply learns it.
    fn fail(&self, what: &str, e: &dyn std::fmt::Display) {
        eprintln!("quern-floor: {what} failed: {e}");
        self.lock().open = 0;
        // The log thread may be waiting for a batch that will not come.
        self.wake.notify_one();
        self.committed.send_replace(u64::MAX);
    }
}

/// Appends one job for the LMDB thread: id u64, length u32, payload.
fn encode_job(jobs: &mut Vec<u8>, id: u64, payload: &[u8]) {
    jobs.extend_from_slice(&id.to_be_bytes());
    jobs.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    jobs.extend_from_slice(payload);
}

/// The log file, written over as a ring.
struct Log {
    file: File,
    size: u64,
    /// Where the next write goes; with `O_DIRECT`, where the partial block
    /// `tail` starts.
    at: u64,
    /// With `O_DIRECT`: a buffer a block longer than the longest write, so
    /// that a block-aligned stretch of it can always be found.
    direct: Option<Vec<u8>>,
    /// With `O_DIRECT`: the bytes of the last, partial block written.
    tail: Vec<u8>,
}

impl Log {
    fn new(file: File, size: u64, direct: bool) -> Log {
        Log {
            file,
            size,
            at: 0,
            direct: direct.then(Vec::new),
            tail: Vec::new(),
        }
    }

    /// Writes `batch` after what was written before; a batch larger than
    /// the ring is written over itself (its bytes are measured, not kept).
    fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        let ring = (self.size as usize / 2).max(BLOCK) / BLOCK * BLOCK;
        for chunk in batch.chunks(ring) {
            match self.direct.take() {
                None => {
                    if self.at + chunk.len() as u64 > self.size {
                        self.at = 0;
                    }
                    self.file.write_all_at(chunk, self.at)?;
                    self.at += chunk.len() as u64;
                }
                Some(mut buffer) => {
                    let written = self.write_direct(&mut buffer, chunk);
                    self.direct = Some(buffer);
                    written?;
                }
            }
        }
        Ok(())
    }

    /// The partial block again, then `chunk`, padded with zeros to whole
    /// blocks, from a block-aligned stretch of `buffer`.
    fn write_direct(&mut self, buffer: &mut Vec<u8>, chunk: &[u8]) -> io::Result<()> {
        let len = self.tail.len() + chunk.len();
        let padded = len.div_ceil(BLOCK) * BLOCK;
        if self.at + padded as u64 > self.size {
            self.at = 0;
            self.tail.clear();
            return self.write_direct(buffer, chunk);
        }
        if buffer.len() < padded + BLOCK {
            *buffer = vec![0; padded + BLOCK];
        }
        let start = buffer.as_ptr().align_offset(BLOCK);
        let aligned = &mut buffer[start..start + padded];
        aligned[..self.tail.len()].copy_from_slice(&self.tail);
        aligned[self.tail.len()..len].copy_from_slice(chunk);
        aligned[len..].fill(0);
        self.file.write_all_at(aligned, self.at)?;
        let whole = len / BLOCK * BLOCK;
        self.tail.clear();
        self.tail.extend_from_slice(&aligned[whole..len]);
        self.at += whole as u64;
        Ok(())
    }
}

/// The log thread: one batch at a time, each flushed before its number
/// is published.
fn write_log(shared: &Shared, log: &mut Log, flush: Flush) -> io::Result<Infallible> {
    let mut batch = Vec::new();
    let mut jobs = Vec::new();
    loop {
        let ticket = {
            let mut pending = shared.lock();
            while pending.batch.is_empty() && pending.open != 0 {
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            if pending.open == 0 {
                return Err(io::Error::other("stopped: the LMDB thread failed"));
            }
            std::mem::swap(&mut pending.batch, &mut batch);
            std::mem::swap(&mut pending.jobs, &mut jobs);
            pending.open += 1;
            pending.open - 1
        };
        log.write(&batch)?;
        batch.clear();
        if flush == Flush::Always {
            log.file.sync_data()?;
        }
        shared.committed.send_replace(ticket);
        if !jobs.is_empty() {
            let mut applying = shared.applying.lock().unwrap_or_else(|e| e.into_inner());
            let first = applying.is_empty();
            applying.extend_from_slice(&jobs);
            drop(applying);
            jobs.clear();
            if first {
                shared.apply_wake.notify_one();
            }
        }
    }
}

#[allow(unsafe_code)]
fn open_lmdb(dir: &Path, flush: Flush) -> heed::Result<(Env<WithoutTls>, Database<'static, Raw, Raw>)> {
    std::fs::create_dir_all(dir)?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(MAP_SIZE);
    // SAFETY: only this process writes the environment, through LMDB; heed
    // marks NO_SYNC unsafe only because it gives up durability against a
    // system crash, which is what `--fsync no` stands for.
    let env = unsafe {
        if flush == Flush::Never {
            options.flags(EnvFlags::NO_SYNC);
        }
        options.open(dir)?
    };
    let txn = env.write_txn()?;
    let opened = env.create_databases_and_commit(txn, |opener, txn| -> heed::Result<_> {
        let db: Database<Raw, Raw> = opener.create_database(txn, None)?;
        // A floor restarted on the same directory starts its ids over: the
        // jobs from before go, so that appends stay in order.
        db.clear(txn)?;
        Ok(CommitOrAbort::<_, Infallible>::Commit(db))
    })?;
    let CommitOrAbort::Commit(db) = opened;
    Ok((env, db))
}

/// The LMDB thread: every [`APPLY_INTERVAL`], puts the payloads the log
/// committed meanwhile under their ids, in one transaction.
fn apply(
    shared: &Shared,
    env: &Env<WithoutTls>,
    db: Database<'static, Raw, Raw>,
) -> heed::Result<Infallible> {
    let mut jobs = Vec::new();
    loop {
        {
            let mut applying = shared.applying.lock().unwrap_or_else(|e| e.into_inner());
            while applying.is_empty() {
                applying = shared
                    .apply_wake
                    .wait(applying)
                    .unwrap_or_else(|e| e.into_inner());
            }
            // Gather for the interval, as Quern's store does.
            let until = Instant::now() + APPLY_INTERVAL;
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                applying = shared
                    .apply_wake
                    .wait_timeout(applying, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut *applying, &mut jobs);
        }
        let mut txn = env.write_txn()?;
        let mut rest = jobs.as_slice();
        while rest.len() >= 12 {
            let (key, after) = rest.split_at(8);
            let len = u32::from_le_bytes(after[..4].try_into().expect("4 bytes")) as usize;
            let (payload, after) = after[4..].split_at(len);
            // Connections take ids in one order and join batches in
            // another, so an id may come after a higher one: append where
            // it can, put where it must.
            match db.put_with_flags(&mut txn, PutFlags::APPEND, key, payload) {
                Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => db.put(&mut txn, key, payload)?,
                other => other?,
            }
            rest = after;
        }
        txn.commit()?;
        jobs.clear();
    }
}
