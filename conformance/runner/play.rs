//! Playing one case file in one protocol against a fresh server.
//!
//! Requests accumulate on their connection and go out in one write when a
//! reply is read, the connection changes, or a directive waits: so
//! consecutive request lines are one pipeline. Each `=>` line reads one
//! reply, decoded in the protocol the connection speaks at that point,
//! which follows HELLO and RESET as a client library would.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::reply::{decode, Value};
use crate::script::{Expect, Kind, Script};
use crate::server::Server;
use crate::text::{encode_request, show};

/// How long a reply may take (a blocked pull is woken well within it).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between the two halves of a `@split` request.
const SPLIT_PAUSE: Duration = Duration::from_millis(1);
/// Longest message, in characters: a reply can be long.
const MESSAGE_WIDTH: usize = 800;

/// What one run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Replies that matched.
    pub checks: usize,
    /// Known failures (`@bug`): line and message.
    pub known: Vec<(usize, String)>,
    /// `@bug` lines whose reply now matches.
    pub fixed: Vec<usize>,
    /// The failure that ended the run: line (0: the file) and message.
    pub failure: Option<(usize, String)>,
    /// A known failure that left the connection unusable ended the run.
    pub stopped: bool,
}

/// Why a run ended early.
enum Stop {
    Fail(usize, String),
    /// A `@bug` reply that never came: the rest cannot run.
    Known,
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet decoded.
    input: Vec<u8>,
    /// Requests not yet written.
    output: Vec<u8>,
    /// The protocol the connection speaks now.
    proto: u8,
    /// Requests whose replies have not been read: line and words.
    pending: VecDeque<(usize, Vec<Vec<u8>>)>,
}

impl Conn {
    fn flush(&mut self) -> Result<(), String> {
        if self.output.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.output);
        self.output.clear();
        result.map_err(|e| format!("cannot send: {e}"))
    }

    /// Reads one reply, decoded as RESP`proto`.
    fn read(&mut self, proto: u8) -> Result<Value, String> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut chunk = [0; 16 << 10];
        loop {
            if let Some((value, used)) = decode(&self.input, proto)? {
                self.input.drain(..used);
                return Ok(value);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no reply within {} s{}",
                    REPLY_TIMEOUT.as_secs(),
                    partial(&self.input)
                ));
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "the server closed the connection{}",
                        partial(&self.input)
                    ))
                }
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read: {e}{}", partial(&self.input))),
            }
        }
    }
}

fn partial(input: &[u8]) -> String {
    if input.is_empty() {
        String::new()
    } else {
        format!(" (received only {})", show(input))
    }
}

/// Plays `script` in protocol `proto` on a fresh server.
pub fn play(script: &Script, proto: u8, bin: &Path) -> Report {
    let mut report = Report::default();
    let server = match Server::start(bin, &script.server_args) {
        Ok(server) => server,
        Err(e) => {
            report.failure = Some((0, e));
            return report;
        }
    };
    let password = script
        .server_args
        .iter()
        .position(|a| a == "--requirepass")
        .and_then(|i| script.server_args.get(i + 1).cloned());
    let mut player = Player {
        script,
        proto,
        server,
        password,
        exit_expected: false,
        conns: BTreeMap::new(),
        current: "main".into(),
        report,
    };
    match player.run() {
        Ok(()) => {}
        Err(Stop::Known) => player.report.stopped = true,
        Err(Stop::Fail(line, mut message)) => {
            if !player.exit_expected {
                if let Some(status) = player.server.exited() {
                    let tail = player.server.stderr_tail();
                    let _ = write!(message, " [the server exited ({status}); stderr: {tail}]");
                }
            }
            player.report.failure = Some((line, message));
        }
    }
    player.report
}

struct Player<'a> {
    script: &'a Script,
    proto: u8,
    server: Server,
    /// The server's `--requirepass`, for the connection `@blocked` uses.
    password: Option<String>,
    /// An `@exit` step ran: the server is meant to be gone.
    exit_expected: bool,
    conns: BTreeMap<String, Conn>,
    current: String,
    report: Report,
}

impl Player<'_> {
    fn run(&mut self) -> Result<(), Stop> {
        let script = self.script;
        for step in &script.steps {
            let line = step.line;
            let fail = |e: String| Stop::Fail(line, e);
            match &step.kind {
                Kind::Send { bytes, argv } => {
                    let conn = self.conn(line)?;
                    conn.output.extend_from_slice(bytes);
                    if let Some(argv) = argv {
                        conn.pending.push_back((line, argv.clone()));
                    }
                }
                Kind::Expect(expect) => {
                    if expect.proto.is_none_or(|p| p == self.proto) {
                        self.expect(line, expect)?;
                    }
                }
                Kind::Conn(name) => {
                    self.flush(line)?;
                    self.current = name.clone();
                }
                Kind::Sleep(ms) => {
                    self.flush(line)?;
                    thread::sleep(Duration::from_millis(*ms));
                }
                Kind::Blocked(n) => {
                    self.flush(line)?;
                    self.wait_blocked(*n).map_err(fail)?;
                }
                Kind::Closed => {
                    self.flush(line)?;
                    let conn = self.conns.remove(&self.current);
                    let conn = conn.ok_or_else(|| fail("@closed: no connection is open".into()))?;
                    expect_closed(conn).map_err(fail)?;
                }
                Kind::Disconnect => {
                    self.flush(line)?;
                    let conn = self.conns.remove(&self.current);
                    let conn = conn.ok_or_else(|| fail("@disconnect: no connection is open".into()))?;
                    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                }
                Kind::Exit(code) => {
                    self.flush(line)?;
                    self.exit_expected = true;
                    match self.server.wait_exit(Duration::from_secs(30)) {
                        None => return Err(fail("the server is still running after 30 s".into())),
                        Some(status) if status.code() != Some(*code) => {
                            return Err(fail(format!("the server exited with {status}, not {code}")))
                        }
                        Some(_) => self.report.checks += 1,
                    }
                }
                Kind::Split { bytes, expects } => self.split(line, bytes, expects)?,
            }
        }
        self.finish()
    }

    /// The current connection, opened on first use (or after a close).
    fn conn(&mut self, line: usize) -> Result<&mut Conn, Stop> {
        if !self.conns.contains_key(&self.current) {
            let conn = self.open().map_err(|e| Stop::Fail(line, e))?;
            self.conns.insert(self.current.clone(), conn);
        }
        Ok(self.conns.get_mut(&self.current).expect("just opened"))
    }

    fn flush(&mut self, line: usize) -> Result<(), Stop> {
        match self.conns.get_mut(&self.current) {
            Some(conn) => conn.flush().map_err(|e| Stop::Fail(line, e)),
            None => Ok(()),
        }
    }

    /// A new connection; in a RESP3 run it first says HELLO 3.
    fn open(&self) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&self.server.addr, REPLY_TIMEOUT)
            .map_err(|e| format!("cannot connect to {}: {e}", self.server.addr))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(REPLY_TIMEOUT));
        let mut conn = Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            proto: 2,
            pending: VecDeque::new(),
        };
        if self.proto == 3 {
            conn.output = encode_request(&[b"HELLO".to_vec(), b"3".to_vec()]);
            conn.flush()?;
            match conn.read(3)? {
                Value::Map(_) => conn.proto = 3,
                other => return Err(format!("the RESP3 run's HELLO 3 got {other}")),
            }
        }
        Ok(conn)
    }

    fn expect(&mut self, line: usize, expect: &Expect) -> Result<(), Stop> {
        let Some(conn) = self.conns.get_mut(&self.current) else {
            return Err(Stop::Fail(line, "no request was sent on this connection".into()));
        };
        conn.flush().map_err(|e| Stop::Fail(line, e))?;
        let request = conn.pending.pop_front().map(|(_, argv)| argv).unwrap_or_default();
        let word = |i: usize| request.get(i).map(|w| w.to_ascii_uppercase());
        let hello = match (word(0).as_deref(), word(1).as_deref()) {
            (Some(b"HELLO"), Some(b"2")) => Some(2),
            (Some(b"HELLO"), Some(b"3")) => Some(3),
            _ => None,
        };
        let proto = hello.unwrap_or(conn.proto);
        let value = match conn.read(proto) {
            Ok(value) => value,
            Err(e) if expect.bug.is_some() => {
                self.known(line, expect, e);
                return Err(Stop::Known);
            }
            Err(e) => return Err(Stop::Fail(line, e)),
        };
        if !matches!(value, Value::Error(_)) {
            if let Some(p) = hello {
                conn.proto = p;
            }
            if word(0).as_deref() == Some(b"RESET") {
                conn.proto = 2;
            }
        }
        self.check(line, expect, &value, proto, "")
    }

    fn check(
        &mut self,
        line: usize,
        expect: &Expect,
        value: &Value,
        proto: u8,
        when: &str,
    ) -> Result<(), Stop> {
        match expect.pattern.check(value, proto) {
            Ok(()) => {
                self.report.checks += 1;
                // An intermittent bug passing proves nothing.
                if expect
                    .bug
                    .as_ref()
                    .is_some_and(|b| !b.starts_with("intermittent"))
                {
                    self.report.fixed.push(line);
                }
                Ok(())
            }
            Err(m) => {
                let mut message = if m.path.is_empty() {
                    format!("{when}expected {} got {value}", expect.pattern)
                } else {
                    let (path, expected, got) = (m.path, m.expected, m.got);
                    format!("{when}at {path}: expected {expected} got {got} (whole reply: {value})")
                };
                message = shorten(message);
                if let Some(detail) = m.detail {
                    let _ = write!(message, "; {detail}");
                }
                if expect.bug.is_some() {
                    self.known(line, expect, message);
                    Ok(())
                } else {
                    Err(Stop::Fail(line, message))
                }
            }
        }
    }

    fn known(&mut self, line: usize, expect: &Expect, message: impl std::fmt::Display) {
        let reason = expect.bug.as_deref().unwrap_or_default();
        self.report.known.push((line, format!("{reason} — {message}")));
    }

    /// Sends `bytes` split in two at every byte, each on a fresh
    /// connection, and checks the replies each time.
    fn split(&mut self, line: usize, bytes: &[u8], expects: &[(usize, Expect)]) -> Result<(), Stop> {
        let expects: Vec<&(usize, Expect)> = expects
            .iter()
            .filter(|(_, e)| e.proto.is_none_or(|p| p == self.proto))
            .collect();
        for cut in 1..bytes.len() {
            let mut conn = self.open().map_err(|e| Stop::Fail(line, e))?;
            let sent = conn
                .stream
                .write_all(&bytes[..cut])
                .and_then(|()| {
                    thread::sleep(SPLIT_PAUSE);
                    conn.stream.write_all(&bytes[cut..])
                })
                .map_err(|e| format!("split at byte {cut}: cannot send: {e}"));
            sent.map_err(|e| Stop::Fail(line, e))?;
            let when = format!("split at byte {cut} of {}: ", bytes.len());
            for (eline, expect) in &expects {
                let value = match conn.read(conn.proto) {
                    Ok(value) => value,
                    Err(e) if expect.bug.is_some() => {
                        self.known(*eline, expect, format!("{when}{e}"));
                        return Ok(());
                    }
                    Err(e) => return Err(Stop::Fail(*eline, format!("{when}{e}"))),
                };
                let known = self.report.known.len();
                self.check(*eline, expect, &value, conn.proto, &when)?;
                if self.report.known.len() > known {
                    // One known failure says enough; the other splits would repeat it.
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Polls INFO on a connection of its own until the server counts `n`
    /// clients blocked in a pull.
    fn wait_blocked(&self, n: u64) -> Result<(), String> {
        let stream = TcpStream::connect_timeout(&self.server.addr, REPLY_TIMEOUT)
            .map_err(|e| format!("cannot connect to {}: {e}", self.server.addr))?;
        let mut conn = Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            proto: 2,
            pending: VecDeque::new(),
        };
        if let Some(password) = &self.password {
            conn.output = encode_request(&[b"AUTH".to_vec(), password.as_bytes().to_vec()]);
            conn.flush()?;
            conn.read(2)?;
        }
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            conn.output = encode_request(&[b"INFO".to_vec(), b"clients".to_vec()]);
            conn.flush()?;
            let info = match conn.read(2)? {
                Value::Bulk(text) => String::from_utf8_lossy(&text).into_owned(),
                other => return Err(format!("@blocked: INFO clients got {other}")),
            };
            let blocked = info
                .lines()
                .find_map(|l| l.strip_prefix("blocked_clients:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            if blocked == Some(n) {
                // Leave only once the server has let this connection go,
                // so that it shows in no CLIENT LIST a case reads next.
                conn.output = encode_request(&[b"QUIT".to_vec()]);
                conn.flush()?;
                conn.read(2)?;
                return expect_closed(conn);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "@blocked {n}: the server still counts {blocked:?} blocked clients after {} s",
                    REPLY_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every request got its `=>`, and no connection holds a reply more.
    fn finish(&mut self) -> Result<(), Stop> {
        let last = self.script.steps.last().map_or(0, |s| s.line);
        for (name, conn) in &mut self.conns {
            if let Some((line, _)) = conn.pending.front() {
                return Err(Stop::Fail(
                    *line,
                    format!("no `=>` line checks the reply to this request (connection {name})"),
                ));
            }
            let mut extra = std::mem::take(&mut conn.input);
            let _ = conn.stream.set_nonblocking(true);
            let mut chunk = [0; 4096];
            if let Ok(n) = conn.stream.read(&mut chunk) {
                extra.extend_from_slice(&chunk[..n]);
            }
            if !extra.is_empty() {
                return Err(Stop::Fail(
                    last,
                    format!(
                        "connection {name} received more than the expected replies: {}",
                        show(&extra)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Waits for the server to close `conn`. Requests still waiting for
/// their reply are meant to get none.
fn expect_closed(mut conn: Conn) -> Result<(), String> {
    if !conn.input.is_empty() {
        return Err(format!("unread bytes before the close: {}", show(&conn.input)));
    }
    let _ = conn.stream.set_read_timeout(Some(REPLY_TIMEOUT));
    let mut chunk = [0; 4096];
    match conn.stream.read(&mut chunk) {
        Ok(0) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Ok(n) => Err(format!(
            "expected the server to close the connection, got {}",
            show(&chunk[..n])
        )),
        Err(e) => Err(format!("expected the server to close the connection: {e}")),
    }
}

fn shorten(message: String) -> String {
    if message.chars().count() <= MESSAGE_WIDTH {
        return message;
    }
    let cut: String = message.chars().take(MESSAGE_WIDTH).collect();
    format!("{cut}…")
}

/// Where a case file lives, and a run's label.
pub fn label(script: &Script, line: usize) -> String {
    if line == 0 {
        script.name.clone()
    } else {
        format!("{}:{line}", script.name)
    }
}
