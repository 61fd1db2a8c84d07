//! What every end-to-end test shares: a real `quern` process on port 0
//! with its own data directory, real clients (redis-rs, and a raw TCP
//! socket for byte-level control), and small helpers that read the
//! Q-commands' replies.
//!
//! Every server is started through [`Server`] and stopped by it: `stop`
//! (SIGTERM, exit 0 asserted), `kill` (SIGKILL), or, failing both, `Drop`,
//! which kills the child by its pid. Nothing here sleeps to assert a
//! timing: waits poll with a generous deadline, because the suite runs on
//! a slow shared machine.

#![allow(dead_code)]

pub mod http;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{RedisError, RedisResult, Value};

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_quern");
/// The line the server prints on stdout once it serves.
const READY: &str = "Ready to accept connections tcp on ";
/// The line it prints before it loads its data, when its HTTP listener is on.
const HTTP: &str = "HTTP on ";
/// How long a server may take to load its data and print READY.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped server may take to commit and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Read and write timeout of every client socket: a hung server fails the
/// test instead of hanging the suite.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `quern` process.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// The RESP port it listens on (127.0.0.1).
    pub port: u16,
    /// The HTTP port, when the listener is on.
    pub http_port: Option<u16>,
    /// Its data directory.
    pub dir: PathBuf,
    /// What it printed on stderr so far, shown when a test fails.
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The temporary directory, when the server made its own: it lives as
    /// long as the server value, so a restart can reuse it.
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with default settings in a fresh temporary directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra flags (`--fsync no`, `--requirepass x`…) in a
    /// fresh temporary directory.
    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("quern-test-")
            .tempdir()
            .expect("temp dir");
        let mut server = Server::start_in(tmp.path(), args);
        server._tmp = Some(tmp);
        server
    }

    /// A server on the data in `dir` (a restart reuses the directory of a
    /// stopped or killed server; the caller keeps the directory alive).
    /// Its HTTP listener is off unless `args` asks for one (`--http
    /// 127.0.0.1:0`): servers side by side would all want port 8379.
    pub fn start_in(dir: &Path, args: &[&str]) -> Server {
        let mut command = Server::bare_command();
        command.arg("--port").arg("0").arg("--dir").arg(dir).args(args);
        if !args.contains(&"--http") {
            command.args(["--http", "off"]);
        }
        Server::spawn(command, dir)
    }

    /// The binary with no settings at all: no flag, and none of the
    /// `QUERN_*` variables of the test's own environment. Tests of where
    /// settings come from add flags, variables or `--config` to it.
    pub fn bare_command() -> Command {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("QUERN_") {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs `command` (from [`Server::bare_command`]) and waits for its
    /// ready line; `dir` is the data directory it was given, by whatever
    /// means.
    pub fn spawn(mut command: Command, dir: &Path) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn quern");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        let lines = stdout_lines(child.stdout.take().expect("stdout"));
        let mut server = Server {
            child: Some(child),
            port: 0,
            http_port: None,
            dir: dir.to_path_buf(),
            stderr,
            _tmp: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let line = lines.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            match line {
                Ok(Printed::Http(addr)) => server.http_port = Some(port_of(&addr)),
                Ok(Printed::Ready(addr)) => {
                    server.port = port_of(&addr);
                    return server;
                }
                Err(_) => {
                    server.kill();
                    panic!("quern did not print its ready line; stderr:\n{}", server.log());
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// `redis://127.0.0.1:PORT/` (RESP2).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The URL of a RESP3 connection.
    pub fn url3(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }

    /// A RESP2 connection.
    pub fn client(&self) -> redis::Connection {
        connect(&self.url())
    }

    /// A RESP3 connection (redis-rs sends HELLO 3).
    pub fn client3(&self) -> redis::Connection {
        connect(&self.url3())
    }

    /// A raw TCP connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Everything the server wrote on stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM; asserts the server commits and exits 0.
    pub fn stop(&mut self) {
        let pid = self.pid();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let status = self.wait_exit();
        assert!(
            status.success(),
            "quern exited with {status} after SIGTERM; stderr:\n{}",
            self.log()
        );
    }

    /// Waits until the process exits by itself (SIGTERM sent, SHUTDOWN…);
    /// fails the test if that takes longer than the stop timeout.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("server is running");
            if let Some(status) = child.try_wait().expect("wait for quern") {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "quern did not exit within {STOP_TIMEOUT:?}; stderr:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no chance to commit anything more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.kill();
        if was_running && thread::panicking() {
            // Captured by the test harness, shown with the failure.
            eprintln!("quern on port {} stderr:\n{}", self.port, self.log());
        }
    }
}

/// An address line the server printed on stdout.
#[derive(Debug)]
pub enum Printed {
    /// `HTTP on ADDR`, before the data loads.
    Http(String),
    /// `Ready to accept connections tcp on ADDR`, once it serves.
    Ready(String),
}

/// Reads the child's stdout in a thread: sends each address line, then
/// keeps draining so that a later print cannot fail.
pub fn stdout_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<Printed> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = line.trim_end();
                    let printed = if let Some(addr) = line.strip_prefix(READY) {
                        Printed::Ready(addr.to_owned())
                    } else if let Some(addr) = line.strip_prefix(HTTP) {
                        Printed::Http(addr.to_owned())
                    } else {
                        continue;
                    };
                    let _ = tx.send(printed);
                }
            }
        }
    });
    rx
}

/// The port at the end of an address line.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// Copies the child's stderr into `log` in a thread.
fn drain(mut from: impl Read + Send + 'static, log: Arc<Mutex<Vec<u8>>>) {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                return;
            }
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
}

/// A redis-rs connection with the suite's timeouts.
pub fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).expect("client URL");
    let con = client
        .get_connection_with_timeout(IO_TIMEOUT)
        .expect("connect to quern");
    con.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    con.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    con
}

// ----- replies ---------------------------------------------------------------

/// A job as QPULL, QMPULL and QPEEK show it: `[queue, id, payload, attempt]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub queue: String,
    pub id: u64,
    pub payload: Vec<u8>,
    pub attempt: u64,
}

/// The jobs of a QPULL/QMPULL/QPEEK reply; none for a null reply.
pub fn jobs(reply: Value) -> Vec<Job> {
    match reply {
        Value::Nil => Vec::new(),
        Value::Array(items) => items.into_iter().map(job).collect(),
        other => panic!("not a jobs reply: {other:?}"),
    }
}

fn job(item: Value) -> Job {
    let Value::Array(parts) = item else {
        panic!("a job is an array: {item:?}");
    };
    let [queue, id, payload, attempt] = <[Value; 4]>::try_from(parts).expect("a job has 4 parts");
    Job {
        queue: text(&queue),
        id: int(&id) as u64,
        payload: bytes(&payload),
        attempt: int(&attempt) as u64,
    }
}

/// An integer reply.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A bulk or simple string reply, as bytes.
pub fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Okay => b"OK".to_vec(),
        other => panic!("not a string: {other:?}"),
    }
}

/// A bulk or simple string reply, as text.
pub fn text(v: &Value) -> String {
    String::from_utf8(bytes(v)).expect("UTF-8 text")
}

/// The fields of a map reply: a RESP3 map, or a RESP2 flat array of
/// field/value pairs.
pub fn fields(reply: Value) -> BTreeMap<String, Value> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Map(pairs) => pairs,
        Value::Array(flat) => {
            assert!(flat.len() % 2 == 0, "odd field/value array: {flat:?}");
            let mut it = flat.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        other => panic!("not a map: {other:?}"),
    };
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        let key = text(&k);
        assert!(map.insert(key.clone(), v).is_none(), "field {key} twice");
    }
    map
}

/// The text of an error reply, code first, as the server sent it.
pub fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_owned(),
        _ => panic!("not an error reply from the server: {e:?}"),
    }
}

/// The error text of a reply that must be an error.
pub fn expect_err<T: std::fmt::Debug>(result: RedisResult<T>) -> String {
    match result {
        Ok(v) => panic!("expected an error reply, got {v:?}"),
        Err(e) => error_text(&e),
    }
}

// ----- commands ----------------------------------------------------------------

/// `QPUSH queue payload [options]` → id.
pub fn push(con: &mut redis::Connection, queue: &str, payload: &[u8], opts: &[&str]) -> u64 {
    let id: i64 = redis::cmd("QPUSH")
        .arg(queue)
        .arg(payload)
        .arg(opts)
        .query(con)
        .unwrap_or_else(|e| panic!("QPUSH {queue}: {e}"));
    assert!(id > 0, "ids are positive: {id}");
    id as u64
}

/// `QPULL queue [options]` → at most one job (COUNT defaults to 1).
pub fn pull(con: &mut redis::Connection, queue: &str, opts: &[&str]) -> Option<Job> {
    let reply: Value = redis::cmd("QPULL")
        .arg(queue)
        .arg(opts)
        .query(con)
        .unwrap_or_else(|e| panic!("QPULL {queue}: {e}"));
    let mut got = jobs(reply);
    assert!(got.len() <= 1, "COUNT 1 gave {got:?}");
    got.pop()
}

/// `QACK queue id...` → count.
pub fn ack(con: &mut redis::Connection, queue: &str, ids: &[u64]) -> i64 {
    redis::cmd("QACK")
        .arg(queue)
        .arg(ids)
        .query(con)
        .unwrap_or_else(|e| panic!("QACK {queue} {ids:?}: {e}"))
}

/// `QLEN queue`.
pub fn qlen(con: &mut redis::Connection, queue: &str) -> i64 {
    redis::cmd("QLEN").arg(queue).query(con).expect("QLEN")
}

/// `QSTATS queue` as field → integer.
pub fn stats(con: &mut redis::Connection, queue: &str) -> BTreeMap<String, i64> {
    let reply: Value = redis::cmd("QSTATS").arg(queue).query(con).expect("QSTATS");
    fields(reply).into_iter().map(|(k, v)| (k, int(&v))).collect()
}

/// QSTATS without the fields that change with the clock alone.
pub fn stable_stats(con: &mut redis::Connection, queue: &str) -> BTreeMap<String, i64> {
    let mut s = stats(con, queue);
    assert!(
        s.remove("oldest_waiting_age_ms").is_some(),
        "QSTATS has oldest_waiting_age_ms"
    );
    s
}

/// `QGET queue id` as its fields, or `None` for a null reply.
pub fn qget(con: &mut redis::Connection, queue: &str, id: u64) -> Option<BTreeMap<String, Value>> {
    let reply: Value = redis::cmd("QGET").arg(queue).arg(id).query(con).expect("QGET");
    match reply {
        Value::Nil => None,
        other => Some(fields(other)),
    }
}

/// A job's state, from QGET (`None` when it is gone).
pub fn state(con: &mut redis::Connection, queue: &str, id: u64) -> Option<String> {
    qget(con, queue, id).map(|f| text(&f["state"]))
}

/// Every queue name, by iterating QSCAN to the end.
pub fn scan_all(con: &mut redis::Connection, pattern: Option<&str>, count: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor = "0".to_owned();
    for _ in 0..100_000 {
        let mut cmd = redis::cmd("QSCAN");
        cmd.arg(&cursor).arg("COUNT").arg(count);
        if let Some(p) = pattern {
            cmd.arg("MATCH").arg(p);
        }
        let (next, batch): (String, Vec<String>) = cmd.query(con).expect("QSCAN");
        names.extend(batch);
        if next == "0" {
            return names;
        }
        cursor = next;
    }
    panic!("QSCAN never returned cursor 0");
}

// ----- time --------------------------------------------------------------------

/// Wall-clock ms since the Unix epoch: the clock the server's deadlines use.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// Polls `probe` every 10 ms until it gives a value; fails the test after
/// `timeout`, naming `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Connections blocked in a pull right now (`CLIENT LIST` flags `b`).
pub fn blocked_clients(con: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).expect("CLIENT LIST");
    list.lines()
        .filter(|l| l.split(' ').any(|w| w == "flags=b"))
        .count()
}

/// Waits until exactly `n` connections are blocked in a pull.
pub fn wait_blocked(con: &mut redis::Connection, n: usize) {
    wait_for(&format!("{n} blocked clients"), Duration::from_secs(20), || {
        (blocked_clients(con) == n).then_some(())
    });
}

// ----- randomness --------------------------------------------------------------

/// A small seeded generator (SplitMix64): enough for test inputs, and a
/// failing seed can be replayed with QUERN_TEST_SEED.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from QUERN_TEST_SEED, or the clock; the seed is printed so a
    /// failure can be replayed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("QUERN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos() as u64
            });
        eprintln!("{test}: QUERN_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ----- raw RESP ------------------------------------------------------------------

/// A request as a RESP array of bulk strings.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The length of the complete RESP2/RESP3 reply at the start of `buf`, or
/// `None` while it is incomplete.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    frame_end(buf, 0)
}

fn frame_end(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let cr = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let after = cr + 2;
    let head = || -> i64 {
        std::str::from_utf8(&buf[at + 1..cr])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "bad length in reply header {:?}",
                    String::from_utf8_lossy(&buf[at..cr])
                )
            })
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Some(after),
        b'$' | b'!' | b'=' => {
            let n = head();
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = head();
            let items = if kind == b'%' { 2 * n } else { n };
            let mut at = after;
            for _ in 0..items.max(0) {
                at = frame_end(buf, at)?;
            }
            Some(at)
        }
        other => panic!(
            "not a RESP reply: {:?} at {at} in {:?}",
            char::from(other),
            String::from_utf8_lossy(&buf[..buf.len().min(200)])
        ),
    }
}

/// A raw TCP connection: bytes in, whole replies out.
#[derive(Debug)]
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port`, with the suite's timeouts.
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes` and flushes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Writes `bytes`, ignoring a connection the server already closed.
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).and_then(|_| self.stream.flush());
    }

    /// The next whole reply; `Ok(None)` when the server closed first.
    pub fn next_reply(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(n) = frame_len(&self.buf) {
                return Ok(Some(self.buf.drain(..n).collect()));
            }
            let mut chunk = [0u8; 64 << 10];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next whole reply, which must come.
    pub fn reply(&mut self) -> Vec<u8> {
        match self.next_reply() {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!(
                "connection closed; unparsed bytes {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Sends one request and reads its reply.
    pub fn call(&mut self, request: &[u8]) -> Vec<u8> {
        self.send(request);
        self.reply()
    }

    /// Sends a request built from `args` and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.call(&resp(args))
    }

    /// Stops writing: the server sees the end of the input.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Every reply until the server closes the connection (or resets it);
    /// also says whether the connection ended by a reset.
    pub fn replies_until_close(&mut self) -> (Vec<Vec<u8>>, bool) {
        let mut replies = Vec::new();
        loop {
            match self.next_reply() {
                Ok(Some(r)) => replies.push(r),
                Ok(None) => return (replies, false),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (replies, true),
                Err(e) => panic!("waiting for the server to close: {e}"),
            }
        }
    }
}
