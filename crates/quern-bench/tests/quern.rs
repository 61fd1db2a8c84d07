//! The bench against a real `quern` process: a short push run, then a pull
//! run on what it pushed, checked against the server's own QLEN.
//!
//! Cargo builds the `quern` binary for the quern crate's tests, not for
//! this crate's, so it is looked up in the workspace's target directory
//! (or taken from `QUERN_BIN`); the test fails, saying how to build it,
//! when there is none.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use quern_bench::conn::Conn;
use quern_bench::resp::Reply;
use quern_bench::{Config, Target, Workload};

/// The line the server prints on stdout once it serves.
const READY: &str = "Ready to accept connections tcp on ";
/// How long the server may take to start on a slow shared machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn quern_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("QUERN_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    // The profile this test was built with first: it is the one that the
    // same `cargo test` run built the server with.
    let profiles = if cfg!(debug_assertions) {
        ["debug", "release"]
    } else {
        ["release", "debug"]
    };
    profiles
        .iter()
        .map(|profile| target.join(profile).join("quern"))
        .find(|bin| bin.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no quern binary under {}: build it first with `cargo build -p quern` \
                 (or run `cargo test --workspace`), or point QUERN_BIN at one",
                target.display()
            )
        })
}

/// A `quern` on a free port with a fresh data directory, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("quern-bench-test-")
            .tempdir()
            .expect("temp dir");
        let bin = quern_binary();
        let mut child = Command::new(&bin)
            // HTTP on a free port: on, as by default, without competing
            // for 8379 with other tests' servers.
            .args([
                "--port",
                "0",
                "--http",
                "127.0.0.1:0",
                "--fsync",
                "always",
                "--dir",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix(READY) {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("{} did not print its address", bin.display());
            }
        };
        let port = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        Server {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_leaves_the_difference_waiting() {
    let server = Server::start();
    let base = Config {
        port: server.port,
        target: Target::Quern,
        prefix: "it".into(),
        warmup: Duration::ZERO,
        ..Config::default()
    };

    // Many pushes in flight against one pull at a time, so that the pull
    // run cannot empty the queue before it ends.
    let push = quern_bench::run(&Config {
        workload: Workload::Push,
        clients: 4,
        pipeline: 8,
        duration: Duration::from_secs(1),
        ..base.clone()
    })
    .await
    .expect("push run");
    assert!(push.operations > 0, "{push:?}");
    assert_eq!(push.errors, 0, "{:?}", push.first_error);

    let pull = quern_bench::run(&Config {
        workload: Workload::Pull,
        clients: 1,
        pipeline: 1,
        duration: Duration::from_millis(500),
        preload: 0,
        flush: false,
        ..base
    })
    .await
    .expect("pull run");
    assert!(pull.operations > 0, "{pull:?}");
    assert_eq!(pull.errors, 0, "{:?}", pull.first_error);
    assert!(!pull.ran_dry);

    let mut conn = Conn::connect("127.0.0.1", server.port).await.expect("connect");
    let waiting = conn
        .command(&[b"QLEN", b"it:0"], |reply| match reply {
            Reply::Integer(n) => n as u64,
            other => panic!("QLEN answered {other:?}"),
        })
        .await
        .expect("QLEN");
    assert_eq!(waiting, push.pushed_total - pull.pulled_total);
}
