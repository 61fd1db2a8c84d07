//! The floor: the least work a server can do to answer a push durably on
//! this machine, as a yardstick for Quern and Redis.
//!
//! It keeps no jobs. It frames each request, appends the requests' bytes
//! to a log and answers only once they are written (and, with `fsync`,
//! flushed). One thread writes the log for every connection, so one flush
//! covers every request that arrived meanwhile: a group commit, as Quern's
//! log does. The log file is filled with zeros up front and then written
//! over in a ring, so that a flush writes data only, never the file's size.
//!
//! What the floor does is a part of what a durable server must do, so its
//! throughput bounds any such server on the same machine, Quern included:
//! a target above the floor is above what the machine allows.
//!
//! ```text
//!  connection ── frame requests → append their bytes to the open batch
//!                (ticket n) → wait for `committed ≥ n` → write the replies
//!  log thread ── take the batch → pwrite → fdatasync → committed = n
//! ```
//!
//! Replies: `PING` → `+PONG`; `QPUSH` and `LPUSH` → the next integer id;
//! any other array → `:0` (the bench's QDEL, QLEN and DEL before a run).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::resp::{self, Reply};

/// Bytes read from a socket at a time, at least.
const READ_CHUNK: usize = 16 << 10;
/// The log file is filled with zeros in chunks of this size.
const ZERO_CHUNK: usize = 1 << 20;

/// Whether the log is flushed before replies go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// `fdatasync` after every write of the log, as `fsync always`.
    Always,
    /// Written to the page cache only, as `fsync no`.
    Never,
}

/// The log every connection appends to, and its writer thread.
#[derive(Debug)]
pub struct Floor {
    shared: Arc<Shared>,
    ids: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer when a batch opens.
    wake: Condvar,
    /// The last batch written (and flushed): replies waiting on a batch up
    /// to it may go out. `u64::MAX` once the writer failed, to wake all.
    committed: watch::Sender<u64>,
}

#[derive(Debug)]
struct Pending {
    /// The requests of the open batch, in arrival order.
    batch: Vec<u8>,
    /// The open batch's number; batch 0 is "nothing".
    open: u64,
}

impl Floor {
    /// Creates the log file at `path`, `size` bytes of zeros flushed to
    /// disk, and starts the writer thread.
    pub fn start(path: &Path, size: u64, flush: Flush) -> io::Result<Floor> {
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        let size = size.max(ZERO_CHUNK as u64);
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = 0;
        while at < size {
            file.write_all_at(&zeros, at)?;
            at += ZERO_CHUNK as u64;
        }
        file.sync_all()?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                batch: Vec::new(),
                open: 1,
            }),
            wake: Condvar::new(),
            committed: watch::Sender::new(0),
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("floor-log".into())
            .spawn(move || {
                let Err(e) = write_log(&writer, &file, at, flush);
                eprintln!("quern-floor: the log failed: {e}");
                // No batch opens again, and every waiting reply learns it.
                writer.lock().open = 0;
                writer.committed.send_replace(u64::MAX);
            })?;
        Ok(Floor {
            shared,
            ids: AtomicU64::new(0),
        })
    }

    /// Pushes answered so far (the last id handed out).
    pub fn pushes(&self) -> u64 {
        self.ids.load(Ordering::Relaxed)
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
        loop {
            let mut used = 0;
            let mut broken = None;
            loop {
                match resp::decode(&input[used..]) {
                    Ok(Some((request, len))) => {
                        self.reply(&request, &mut out);
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
                let ticket = self.append(&input[..used]);
                input.advance(used);
                let failed = ticket == 0
                    || match committed.wait_for(|&n| n >= ticket).await {
                        Ok(n) => *n == u64::MAX,
                        Err(_) => true,
                    };
                if failed {
                    stream.write_all(b"-ERR the log failed\r\n").await?;
                    return Err(io::Error::other("the log failed"));
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

    fn reply(&self, request: &Reply<'_>, out: &mut Vec<u8>) {
        let name = match request {
            Reply::Array(words) => match words.first() {
                Some(Reply::Bulk(name)) => name.to_ascii_uppercase(),
                _ => Vec::new(),
            },
            _ => {
                out.extend_from_slice(b"-ERR requests are arrays of bulk strings\r\n");
                return;
            }
        };
        match name.as_slice() {
            b"PING" => out.extend_from_slice(b"+PONG\r\n"),
            b"QPUSH" | b"LPUSH" => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed) + 1;
                let mut digits = [0; 20];
                out.push(b':');
                out.extend_from_slice(resp::decimal(id, &mut digits));
                out.extend_from_slice(b"\r\n");
            }
            _ => out.extend_from_slice(b":0\r\n"),
        }
    }

    /// Adds `requests` to the open batch; returns its number, or 0 once
    /// the log has failed.
    fn append(&self, requests: &[u8]) -> u64 {
        let mut pending = self.shared.lock();
        if pending.open == 0 {
            return 0;
        }
        let first = pending.batch.is_empty();
        pending.batch.extend_from_slice(requests);
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
}

/// The writer thread: one batch at a time, written over the ring of
/// `size` bytes, each flushed before its number is published.
fn write_log(shared: &Shared, file: &File, size: u64, flush: Flush) -> io::Result<std::convert::Infallible> {
    let mut batch = Vec::new();
    let mut at = 0u64;
    loop {
        let ticket = {
            let mut pending = shared.lock();
            while pending.batch.is_empty() {
                pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::swap(&mut pending.batch, &mut batch);
            pending.open += 1;
            pending.open - 1
        };
        // A batch larger than the ring is written over itself; its bytes
        // are measured, not kept.
        for chunk in batch.chunks(size as usize) {
            if at + chunk.len() as u64 > size {
                at = 0;
            }
            file.write_all_at(chunk, at)?;
            at += chunk.len() as u64;
        }
        batch.clear();
        if flush == Flush::Always {
            file.sync_data()?;
        }
        shared.committed.send_replace(ticket);
    }
}
