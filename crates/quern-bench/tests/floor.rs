//! The floor server (`quern_bench::floor`) in-process, over TCP: it frames
//! requests whatever way they are split, answers only what its log holds
//! (through the page cache or with `O_DIRECT`), keeps what it answered in
//! LMDB when asked, refuses a broken stream, and carries a bench run.
//!
//! Files go under Cargo's target directory rather than the system's temp
//! directory, which may be a tmpfs, where `O_DIRECT` is refused.

use std::sync::Arc;
use std::time::Duration;

use quern_bench::floor::{Floor, Flush, Options};
use quern_bench::{resp, Config, Target, Workload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A floor on a free port, with its log (and LMDB, if `lmdb`) in a fresh
/// directory.
async fn start(flush: Flush, lmdb: bool, direct: bool) -> (Arc<Floor>, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let options = Options {
        log_size: 1 << 20,
        flush,
        direct,
        lmdb: lmdb.then(|| dir.path().join("lmdb")),
    };
    let floor = Arc::new(Floor::start(&dir.path().join("floor.log"), &options).expect("start"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(Arc::clone(&floor).serve(listener));
    (floor, port, dir)
}

/// Reads until `want` bytes arrived or the peer closed.
async fn read_at_least(stream: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a reply within 10 s")
            .expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_order_once_the_log_holds_the_requests() {
    log_holds_what_was_answered(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_in_order_once_the_log_holds_the_requests_direct() {
    log_holds_what_was_answered(true).await;
}

async fn log_holds_what_was_answered(direct: bool) {
    let (floor, port, dir) = start(Flush::Always, true, direct).await;
    let mut requests = Vec::new();
    resp::encode(&mut requests, &[b"PING"]);
    // A payload that looks like the start of another request.
    resp::encode(&mut requests, &[b"QPUSH", b"q", b"a\r\n*3\r\n$1\r\n"]);
    resp::encode(&mut requests, &[b"qpush", b"q", b"b"]);
    resp::encode(&mut requests, &[b"QLEN", b"q"]);
    resp::encode(&mut requests, &[b"LPUSH", b"q", b"c"]);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    // Split inside the second request: its first part alone is answered
    // by nothing, then the rest completes it.
    let split = 30;
    stream.write_all(&requests[..split]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&requests[split..]).await.expect("write");

    let expected = b"+PONG\r\n:1\r\n:2\r\n:0\r\n:3\r\n";
    let replies = read_at_least(&mut stream, expected.len()).await;
    assert_eq!(replies, expected, "{:?}", String::from_utf8_lossy(&replies));
    assert_eq!(floor.pushes(), 3);

    // Batches that end inside a 4 KiB block, one after the other: with
    // O_DIRECT each one writes the partial block before it again.
    let mut id = 3;
    for round in 0..5 {
        let mut more = Vec::new();
        for _ in 0..(7 + round * 11) {
            resp::encode(&mut more, &[b"QPUSH", b"q", &[b'0' + round as u8; 100]]);
        }
        stream.write_all(&more).await.expect("write");
        let mut expected = Vec::new();
        for _ in 0..(7 + round * 11) {
            id += 1;
            expected.extend_from_slice(format!(":{id}\r\n").as_bytes());
        }
        assert_eq!(read_at_least(&mut stream, expected.len()).await, expected);
        requests.extend_from_slice(&more);
    }

    // Every request answered was in the log before its reply.
    let log = std::fs::read(dir.path().join("floor.log")).expect("log");
    assert_eq!(&log[..requests.len()], &requests[..]);
    assert!(
        log[requests.len()..].iter().all(|&b| b == 0),
        "nothing else was written"
    );

    // LMDB holds every push's payload under its id, within its interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (count, first) = floor.kept(1).expect("LMDB on").expect("read LMDB");
        if count == id {
            assert_eq!(first.as_deref(), Some(&b"a\r\n*3\r\n$1\r\n"[..]));
            let (_, third) = floor.kept(3).expect("LMDB on").expect("read LMDB");
            assert_eq!(third.as_deref(), Some(&b"c"[..]));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "LMDB holds {count} payloads of {id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_gets_an_error_and_is_closed() {
    let (floor, port, _dir) = start(Flush::Never, false, false).await;
    assert!(floor.kept(1).is_none(), "no LMDB unless asked");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut requests = Vec::new();
    resp::encode(&mut requests, &[b"QPUSH", b"q", b"a"]);
    requests.extend_from_slice(b"*1\r\n$x\r\n");
    stream.write_all(&requests).await.expect("write");
    // Read until the floor closes the connection.
    let replies = read_at_least(&mut stream, usize::MAX).await;
    let text = String::from_utf8_lossy(&replies);
    assert!(
        text.starts_with(":1\r\n-ERR protocol error: bad integer"),
        "{text:?}"
    );
    assert_eq!(floor.pushes(), 1, "the push before the broken request counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carries_a_bench_run() {
    let (floor, port, _dir) = start(Flush::Always, true, false).await;
    let report = quern_bench::run(&Config {
        port,
        target: Target::Quern,
        workload: Workload::Push,
        clients: 4,
        pipeline: 8,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        ..Config::default()
    })
    .await
    .expect("push run");
    assert_eq!(report.errors, 0, "{:?}", report.first_error);
    assert!(report.operations > 0, "{report:?}");
    assert_eq!(report.pushed_total, floor.pushes());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while floor.kept(1).expect("LMDB on").expect("read LMDB").0 < floor.pushes() {
        assert!(std::time::Instant::now() < deadline, "LMDB never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
