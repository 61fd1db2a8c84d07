//! The floor: the least work a server built as Quern is can do to answer
//! a push durably (and, with LMDB, a pull), as a yardstick for Quern and
//! Redis on one machine.
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
//! With LMDB it also pulls, as Quern must: Quern keeps a few dozen bytes
//! of memory per waiting job, not its payload, so a pull takes the next
//! id from memory (a counter: the floor keeps one queue, whatever its
//! name) and reads the payload from LMDB, in a read transaction per
//! request. An id is pullable once LMDB holds its payload, and is handed
//! out once, in id order. The pull's lease (id, attempt 1, deadline 30 s
//! on) is a durable change: its record joins the log's open batch, and
//! once the log has committed it the LMDB thread puts it too, into a
//! second database. The reply does not wait for the flush, as Quern's
//! does not: a lease lost in a crash only delivers the job again. So a
//! batch of leases alone waits, as Quern's does, for a request whose
//! reply waits, for 50 ms, or until 4,096 leases have gathered.
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
//!             └─ QPULL: next id → its payload from LMDB (read txn) →
//!                its lease record to the open batch → reply, no wait
//!  log thread ── take the batch → pwrite → fdatasync → committed = n
//!                → hand its payloads and leases to the LMDB thread
//!  LMDB thread ── every 50 ms: put each payload under its id, each
//!                 lease under its id (a second database), commit
//! ```
//!
//! Replies: `PING` → `+PONG`; `QPUSH` and `LPUSH` → the next integer id;
//! `QPULL queue …` → with LMDB, the next pullable job in Quern's shape
//! for one job, `*1` of `[queue, id, payload, 1]`, or the null array `*-1`
//! when none is pullable (any further arguments are ignored: one job, no
//! blocking); without LMDB an error, since there is nothing to pull; any
//! other array → `:0` (the bench's QDEL, QLEN and DEL before a run: QDEL
//! empties nothing, jobs left by a run are pulled by the next).

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, PutFlags, RwTxn, WithoutTls};
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
/// How long a pulled job's lease lasts: Quern's default.
const LEASE_MS: u64 = 30_000;
/// How long leases no reply waits for stay in the open batch, and how many
/// the log takes at once however young: as Quern's store.
const LEASES_WAIT: Duration = Duration::from_millis(50);
const LEASES_AT_ONCE: usize = 4096;
/// Bytes of a lease record, in the log and for the LMDB thread: id u64,
/// attempt u32, deadline u64 (ms since the Unix epoch), big-endian. In
/// LMDB the id is the key and the rest the value.
pub const LEASE_RECORD: usize = 20;
/// The LMDB databases: payloads by push id, leases by pulled id.
const PAYLOADS: &str = "payloads";
const LEASES: &str = "leases";

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
    /// Keep every pushed payload (and every pull's lease) in LMDB, in this
    /// directory; pulls need it.
    pub lmdb: Option<PathBuf>,
}

/// A pulled job's lease, as LMDB holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Which delivery of the job this is: always 1 on the floor.
    pub attempt: u32,
    /// When the lease runs out, in ms since the Unix epoch.
    pub deadline_ms: u64,
}

/// The log every connection appends to, and its threads.
#[derive(Debug)]
pub struct Floor {
    shared: Arc<Shared>,
    ids: AtomicU64,
    /// The last id a pull handed out: the next pull tries the one after.
    pulled: AtomicU64,
    /// Where the payloads and leases are kept, if they are.
    lmdb: Option<Store>,
}

/// The floor's LMDB environment and its two databases.
#[derive(Debug, Clone)]
struct Store {
    env: Env<WithoutTls>,
    /// Push id → payload.
    payloads: Database<'static, Raw, Raw>,
    /// Pulled id → attempt u32 | deadline u64.
    leases: Database<'static, Raw, Raw>,
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
    /// What the log has committed, for the LMDB thread.
    applying: Mutex<Records>,
    /// Wakes the LMDB thread when records arrive.
    apply_wake: Condvar,
}

#[derive(Debug)]
struct Pending {
    /// What the open batch writes to the log: requests, in arrival order,
    /// and lease records.
    batch: Vec<u8>,
    /// What its changes put into LMDB (with LMDB only).
    records: Records,
    /// The open batch's number; batch 0 is "nothing", and an open batch
    /// of 0 means a thread failed.
    open: u64,
    /// A reply waits for the open batch: the log thread takes it at once.
    awaited: bool,
    /// When the first lease came into an open batch no reply waits for.
    leases_since: Option<Instant>,
}

impl Pending {
    /// Whether the log thread takes the open batch now, and if not, until
    /// when it waits: a batch of leases alone waits, as Quern's does, for
    /// a reply to wait for it, for [`LEASES_WAIT`] or until
    /// [`LEASES_AT_ONCE`] have gathered.
    fn due(&self, now: Instant) -> Result<(), Option<Instant>> {
        if self.batch.is_empty() {
            return Err(None);
        }
        let due = self.leases_since.map(|since| since + LEASES_WAIT);
        match due {
            Some(due) if !self.awaited && now < due && self.batch.len() < LEASES_AT_ONCE * LEASE_RECORD => {
                Err(Some(due))
            }
            _ => Ok(()),
        }
    }
}

/// What the LMDB thread puts: pushes' payloads and pulls' leases.
#[derive(Debug, Default)]
struct Records {
    /// See [`encode_job`].
    jobs: Vec<u8>,
    /// See [`encode_lease`].
    leases: Vec<u8>,
}

impl Records {
    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.leases.is_empty()
    }

    fn extend_from(&mut self, other: &Records) {
        self.jobs.extend_from_slice(&other.jobs);
        self.leases.extend_from_slice(&other.leases);
    }

    fn clear(&mut self) {
        self.jobs.clear();
        self.leases.clear();
    }
}

/// What one connection's read adds to the open batch.
#[derive(Debug, Default)]
struct Work {
    /// The stretches of the input whose requests go to the log as they
    /// are (every request but a pull).
    requests: Vec<Range<usize>>,
    /// The payloads and leases for LMDB.
    records: Records,
}

impl Work {
    /// Adds the request at `range` of the input to those logged.
    fn log(&mut self, range: Range<usize>) {
        match self.requests.last_mut() {
            Some(run) if run.end == range.start => run.end = range.end,
            _ => self.requests.push(range),
        }
    }
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
                records: Records::default(),
                open: 1,
                awaited: false,
                leases_since: None,
            }),
            wake: Condvar::new(),
            committed: watch::Sender::new(0),
            keeps_jobs: lmdb.is_some(),
            applying: Mutex::new(Records::default()),
            apply_wake: Condvar::new(),
        });
        let lmdb = lmdb
            .map(|dir| open_lmdb(dir, flush).map_err(io::Error::other))
            .transpose()?;
        if let Some(store) = lmdb.clone() {
            let applier = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("floor-lmdb".into())
                .spawn(move || {
                    let Err(e) = apply(&applier, &store);
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
            pulled: AtomicU64::new(0),
            lmdb,
        })
    }

    /// Pushes answered so far (the last id handed out).
    pub fn pushes(&self) -> u64 {
        self.ids.load(Ordering::Relaxed)
    }

    /// Jobs pulled so far (the last id a pull handed out).
    pub fn pulls(&self) -> u64 {
        self.pulled.load(Ordering::Relaxed)
    }

    /// How many payloads LMDB holds, and the one of push `id`; `None`
    /// without LMDB.
    pub fn kept(&self, id: u64) -> Option<heed::Result<(u64, Option<Vec<u8>>)>> {
        let store = self.lmdb.as_ref()?;
        let read = || {
            let txn = store.env.read_txn()?;
            let payload = store.payloads.get(&txn, &id.to_be_bytes())?.map(<[u8]>::to_vec);
            Ok((store.payloads.len(&txn)?, payload))
        };
        Some(read())
    }

    /// How many leases LMDB holds, and the one of pulled job `id`; `None`
    /// without LMDB.
    pub fn leased(&self, id: u64) -> Option<heed::Result<(u64, Option<Lease>)>> {
        let store = self.lmdb.as_ref()?;
        let read = || {
            let txn = store.env.read_txn()?;
            let lease = store.leases.get(&txn, &id.to_be_bytes())?.map(|value| {
                let (attempt, deadline) = value.split_at(4);
                Lease {
                    attempt: u32::from_be_bytes(attempt.try_into().expect("4 bytes")),
                    deadline_ms: u64::from_be_bytes(deadline.try_into().expect("8 bytes")),
                }
            });
            Ok((store.leases.len(&txn)?, lease))
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
        let mut work = Work::default();
        loop {
            let mut used = 0;
            let mut broken = None;
            loop {
                match resp::decode(&input[used..]) {
                    Ok(Some((request, len))) => {
                        if self.reply(&request, &mut out, &mut work.records) {
                            work.log(used..used + len);
                        }
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
                // Pulls alone wait for nothing: a lease lost with the
                // batch only delivers its job again.
                let waits = !work.requests.is_empty();
                let ticket = self.append(&input[..used], &mut work);
                input.advance(used);
                let failed = ticket == 0
                    || (waits
                        && match committed.wait_for(|&n| n >= ticket).await {
                            Ok(n) => *n == u64::MAX,
                            Err(_) => true,
                        });
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

    /// Answers one request into `out`; a push's payload (when the floor
    /// keeps them) and a pull's lease go to `records`. Returns whether the
    /// request itself goes to the log, its reply then waiting for the
    /// flush: all but a pull, whose lease record is logged instead.
    fn reply(&self, request: &Reply<'_>, out: &mut Vec<u8>, records: &mut Records) -> bool {
        let Reply::Array(words) = request else {
            out.extend_from_slice(b"-ERR requests are arrays of bulk strings\r\n");
            return true;
        };
        let is = |command: &str| match words.first() {
            Some(Reply::Bulk(name)) => name.eq_ignore_ascii_case(command.as_bytes()),
            _ => false,
        };
        if is("PING") {
            out.extend_from_slice(b"+PONG\r\n");
        } else if is("QPUSH") || is("LPUSH") {
            let id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
            if self.shared.keeps_jobs {
                // A push without a payload keeps an empty one: every id
                // handed out must reach LMDB, or the pulls stop at it.
                let payload = match words.get(2) {
                    Some(Reply::Bulk(payload)) => payload,
                    _ => &[][..],
                };
                encode_job(&mut records.jobs, id, payload);
            }
            push_integer(out, id);
        } else if is("QPULL") {
            match (&self.lmdb, words.get(1)) {
                (Some(store), Some(Reply::Bulk(queue))) => {
                    if let Err(e) = self.pull(store, queue, out, &mut records.leases) {
                        out.extend_from_slice(format!("-ERR LMDB: {e}\r\n").as_bytes());
                    }
                }
                (None, _) => out.extend_from_slice(b"-ERR the floor pulls only with --lmdb\r\n"),
                (Some(_), _) => out.extend_from_slice(b"-ERR QPULL takes a queue\r\n"),
            }
            return false;
        } else {
            out.extend_from_slice(b":0\r\n");
        }
        true
    }

    /// Pulls the next id, if LMDB holds its payload, into `out` as Quern
    /// replies a one-job pull (`*-1` if none is pullable), and appends its
    /// lease to `leases`.
    fn pull(&self, store: &Store, queue: &[u8], out: &mut Vec<u8>, leases: &mut Vec<u8>) -> heed::Result<()> {
        // A read transaction per request, as Quern takes one per command.
        let txn = store.env.read_txn()?;
        let mut last = self.pulled.load(Ordering::Relaxed);
        let (id, payload) = loop {
            let id = last + 1;
            // Not in LMDB (yet): still on its way, or never pushed. Ids
            // reach LMDB out of order by a little, and the next is waited
            // for rather than skipped, so that each goes out in id order.
            let Some(payload) = store.payloads.get(&txn, &id.to_be_bytes())? else {
                out.extend_from_slice(b"*-1\r\n");
                return Ok(());
            };
            // Taken only if no other connection took it meanwhile: each id
            // goes out once.
            match self
                .pulled
                .compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break (id, payload),
                Err(now) => last = now,
            }
        };
        out.extend_from_slice(b"*1\r\n*4\r\n");
        push_bulk(out, queue);
        push_integer(out, id);
        push_bulk(out, payload);
        out.extend_from_slice(b":1\r\n");
        encode_lease(leases, id, 1, now_ms() + LEASE_MS);
        Ok(())
    }

    /// Adds the logged requests of `input` and the records of `work`
    /// (emptied) to the open batch; returns its number, or 0 once a thread
    /// has failed.
    fn append(&self, input: &[u8], work: &mut Work) -> u64 {
        let mut pending = self.shared.lock();
        if pending.open == 0 {
            return 0;
        }
        let (first, was_awaited) = (pending.batch.is_empty(), pending.awaited);
        let awaited = !work.requests.is_empty();
        for run in work.requests.drain(..) {
            pending.batch.extend_from_slice(&input[run]);
        }
        // The leases go to the log, and once it holds them to LMDB.
        pending.batch.extend_from_slice(&work.records.leases);
        pending.records.extend_from(&work.records);
        work.records.clear();
        pending.awaited |= awaited;
        if !pending.awaited && pending.leases_since.is_none() && !pending.batch.is_empty() {
            pending.leases_since = Some(Instant::now());
        }
        let ticket = pending.open;
        // Wake the log thread to take the batch, or to learn when it is
        // due; each wake-up is a system call.
        let wake = (first && !pending.batch.is_empty()) || (awaited && !was_awaited);
        drop(pending);
        if wake {
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

/// Appends `:n\r\n`.
fn push_integer(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0; 20];
    out.push(b':');
    out.extend_from_slice(resp::decimal(n, &mut digits));
    out.extend_from_slice(b"\r\n");
}

/// Appends `bytes` as a bulk string.
fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut digits = [0; 20];
    out.push(b'$');
    out.extend_from_slice(resp::decimal(bytes.len() as u64, &mut digits));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Milliseconds since the Unix epoch, as lease deadlines are kept.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Appends one job for the LMDB thread: id u64, length u32, payload.
fn encode_job(jobs: &mut Vec<u8>, id: u64, payload: &[u8]) {
    jobs.extend_from_slice(&id.to_be_bytes());
    jobs.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    jobs.extend_from_slice(payload);
}

/// Appends one lease record, [`LEASE_RECORD`] bytes.
fn encode_lease(leases: &mut Vec<u8>, id: u64, attempt: u32, deadline_ms: u64) {
    leases.extend_from_slice(&id.to_be_bytes());
    leases.extend_from_slice(&attempt.to_be_bytes());
    leases.extend_from_slice(&deadline_ms.to_be_bytes());
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
    let mut records = Records::default();
    loop {
        let ticket = {
            let mut pending = shared.lock();
            while pending.open != 0 {
                match pending.due(Instant::now()) {
                    Ok(()) => break,
                    Err(None) => pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner()),
                    Err(Some(at)) => {
                        let wait = at.saturating_duration_since(Instant::now());
                        pending = shared
                            .wake
                            .wait_timeout(pending, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
            if pending.open == 0 {
                return Err(io::Error::other("stopped: the LMDB thread failed"));
            }
            std::mem::swap(&mut pending.batch, &mut batch);
            std::mem::swap(&mut pending.records, &mut records);
            (pending.awaited, pending.leases_since) = (false, None);
            pending.open += 1;
            pending.open - 1
        };
        log.write(&batch)?;
        batch.clear();
        if flush == Flush::Always {
            log.file.sync_data()?;
        }
        shared.committed.send_replace(ticket);
        if !records.is_empty() {
            let mut applying = shared.applying.lock().unwrap_or_else(|e| e.into_inner());
            let first = applying.is_empty();
            applying.extend_from(&records);
            drop(applying);
            records.clear();
            if first {
                shared.apply_wake.notify_one();
            }
        }
    }
}

#[allow(unsafe_code)]
fn open_lmdb(dir: &Path, flush: Flush) -> heed::Result<Store> {
    std::fs::create_dir_all(dir)?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(MAP_SIZE).max_dbs(2);
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
        let payloads: Database<Raw, Raw> = opener.create_database(txn, Some(PAYLOADS))?;
        let leases: Database<Raw, Raw> = opener.create_database(txn, Some(LEASES))?;
        // A floor restarted on the same directory starts its ids over: the
        // jobs and leases from before go, so that appends stay in order.
        payloads.clear(txn)?;
        leases.clear(txn)?;
        Ok(CommitOrAbort::<_, Infallible>::Commit((payloads, leases)))
    })?;
    let CommitOrAbort::Commit((payloads, leases)) = opened;
    Ok(Store {
        env,
        payloads,
        leases,
    })
}

/// The LMDB thread: every [`APPLY_INTERVAL`], puts the payloads and
/// leases the log committed meanwhile under their ids, in one
/// transaction.
fn apply(shared: &Shared, store: &Store) -> heed::Result<Infallible> {
    let mut records = Records::default();
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
            std::mem::swap(&mut *applying, &mut records);
        }
        let mut txn = store.env.write_txn()?;
        let mut rest = records.jobs.as_slice();
        while rest.len() >= 12 {
            let (key, after) = rest.split_at(8);
            let len = u32::from_le_bytes(after[..4].try_into().expect("4 bytes")) as usize;
            let (payload, after) = after[4..].split_at(len);
            put_in_order(store.payloads, &mut txn, key, payload)?;
            rest = after;
        }
        for lease in records.leases.chunks_exact(LEASE_RECORD) {
            let (key, value) = lease.split_at(8);
            put_in_order(store.leases, &mut txn, key, value)?;
        }
        txn.commit()?;
        records.clear();
    }
}

/// Puts `value` under `key`. Connections take ids in one order and join
/// batches in another, so an id may come after a higher one: appended
/// where it can be, put where it must.
fn put_in_order(
    db: Database<'static, Raw, Raw>,
    txn: &mut RwTxn<'_>,
    key: &[u8],
    value: &[u8],
) -> heed::Result<()> {
    match db.put_with_flags(txn, PutFlags::APPEND, key, value) {
        Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => db.put(txn, key, value),
        other => other,
    }
}
