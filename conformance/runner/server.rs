//! A fresh `quern` process for one run of one case file: port 0, its own
//! temporary data directory, killed by its pid when the run ends.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The line the server prints on stdout once it serves.
const READY: &str = "Ready to accept connections tcp on ";
/// How long a server may take to start on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin` with `args` after its port and data directory.
    pub fn start(bin: &Path, args: &[String]) -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix("quern-conformance-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let stderr = dir.path().join("stderr.log");
        let log = File::create(&stderr).map_err(|e| format!("cannot create {}: {e}", stderr.display()))?;
        let mut command = Command::new(bin);
        // The runner's environment must not configure the server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("QUERN_") {
                command.env_remove(key);
            }
        }
        // No HTTP listener: servers started side by side would all want
        // port 8379, and the cases speak RESP only.
        command
            .args(["--port", "0", "--http", "off", "--dir"])
            .arg(dir.path().join("data"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end, so the pipe never fills.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix(READY) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
            _dir: dir,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.addr = addr
                    .parse()
                    .map_err(|_| format!("bad address in {READY}{addr}"))?;
                Ok(server)
            }
            Err(_) => Err(format!("quern did not start: {}", server.stderr_tail())),
        }
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines the server wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // Child::kill signals this child's pid, and only it.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
