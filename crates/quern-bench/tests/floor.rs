//! The floor server (`quern_bench::floor`) in-process, over TCP: it frames
//! requests whatever way they are split, answers only what its log holds
//! (through the page cache or with `O_DIRECT`), keeps what it answered in
//! LMDB when asked, pulls each job LMDB holds once, in order, with its
//! payload, logging its lease and then keeping it in LMDB, refuses a
//! broken stream, and carries a bench run, pushes and pulls.
//!
//! Files go under Cargo's target directory rather than the system's temp
//! directory, which may be a tmpfs, where `O_DIRECT` is refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use quern_bench::floor::{Floor, Flush, Lease, Options, LEASE_RECORD};
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

/// Reads until `count` whole replies arrived; returns each one's bytes.
async fn read_replies(stream: &mut TcpStream, count: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut replies = Vec::new();
    while replies.len() < count {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a reply within 10 s")
            .expect("read");
        assert!(n > 0, "closed after {} replies", replies.len());
        got.extend_from_slice(&chunk[..n]);
        while let Some((_, len)) = resp::decode(&got).expect("RESP") {
            replies.push(got.drain(..len).collect());
        }
    }
    assert!(got.is_empty(), "more replies than requests");
    replies
}

/// Waits up to 10 s for `done`, checking every 20 ms.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

/// Quern's reply to a pull of one job, written out by hand.
fn job_reply(queue: &[u8], id: u64, payload: &[u8]) -> Vec<u8> {
    let mut reply = format!("*1\r\n*4\r\n${}\r\n", queue.len()).into_bytes();
    reply.extend_from_slice(queue);
    reply.extend_from_slice(format!("\r\n:{id}\r\n${}\r\n", payload.len()).as_bytes());
    reply.extend_from_slice(payload);
    reply.extend_from_slice(b"\r\n:1\r\n");
    reply
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

    // The pull workload pulls what the push run left, then its preload:
    // every reply reads as a Quern job, and running dry is the only error
    // a short preload allows.
    let pushed = floor.pushes();
    let report = quern_bench::run(&Config {
        port,
        target: Target::Quern,
        workload: Workload::Pull,
        no_ack: true,
        preload: 10_000,
        clients: 4,
        pipeline: 16,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        ..Config::default()
    })
    .await
    .expect("pull run");
    assert_eq!(
        report.errors,
        u64::from(report.ran_dry),
        "{:?}",
        report.first_error
    );
    assert!(report.operations > 0, "{report:?}");
    assert_eq!(report.preloaded, 10_000);
    assert_eq!(floor.pushes(), pushed + 10_000);
    assert_eq!(report.pulled_total, floor.pulls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_each_kept_job_once_in_order_and_keeps_its_lease() {
    const JOBS: u64 = 400;
    const CONNS: u64 = 4;
    let (floor, port, dir) = start(Flush::Always, true, false).await;

    // Distinct payloads of several lengths, one empty and one that looks
    // like a reply.
    let payload = |id: u64| -> Vec<u8> {
        match id {
            7 => Vec::new(),
            9 => b"*1\r\n*4\r\n$-1\r\n".to_vec(),
            _ => format!("job {id} ").repeat(1 + id as usize % 5).into_bytes(),
        }
    };
    let mut pushes = Vec::new();
    for id in 1..=JOBS {
        resp::encode(&mut pushes, &[b"QPUSH", b"q", &payload(id)]);
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.write_all(&pushes).await.expect("write");
    let ids: Vec<Vec<u8>> = (1..=JOBS).map(|id| format!(":{id}\r\n").into_bytes()).collect();
    assert_eq!(read_replies(&mut stream, JOBS as usize).await, ids);
    until("LMDB holds every payload", || {
        floor.kept(1).expect("LMDB on").expect("read LMDB").0 == JOBS
    })
    .await;

    // Connections pull at once, pipelined, more than there are jobs.
    let before = now_ms();
    let per_conn = JOBS / CONNS + 5;
    let mut tasks = Vec::new();
    for _ in 0..CONNS {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
            let mut pulls = Vec::new();
            for _ in 0..per_conn {
                resp::encode(&mut pulls, &[b"QPULL", b"jobs", b"COUNT", b"1"]);
            }
            stream.write_all(&pulls).await.expect("write");
            read_replies(&mut stream, per_conn as usize).await
        }));
    }
    let mut pulled = Vec::new();
    let mut empty = 0;
    for task in tasks {
        let (mut last, mut ran_empty) = (0, false);
        for reply in task.await.expect("pulling task") {
            if reply == b"*-1\r\n" {
                empty += 1;
                ran_empty = true;
                continue;
            }
            assert!(!ran_empty, "a job after the queue ran empty");
            let id = job_id(&reply);
            assert!(id > last, "job {id} after job {last} on one connection");
            last = id;
            assert_eq!(
                reply,
                job_reply(b"jobs", id, &payload(id)),
                "job {id}: {:?}",
                String::from_utf8_lossy(&reply)
            );
            pulled.push(id);
        }
    }
    let after = now_ms();
    pulled.sort_unstable();
    assert_eq!(pulled, (1..=JOBS).collect::<Vec<_>>(), "each job exactly once");
    assert_eq!(
        empty,
        CONNS * per_conn - JOBS,
        "an empty reply for each pull past the end"
    );
    assert_eq!(floor.pulls(), JOBS);

    // A job on its way to LMDB is not pullable yet, then it is.
    let mut more = Vec::new();
    resp::encode(&mut more, &[b"QPUSH", b"q", b"last"]);
    resp::encode(&mut more, &[b"QPULL", b"q"]);
    stream.write_all(&more).await.expect("write");
    let last = JOBS + 1;
    assert_eq!(
        read_replies(&mut stream, 2).await,
        [format!(":{last}\r\n").into_bytes(), b"*-1\r\n".to_vec()]
    );
    until("LMDB holds the last payload", || {
        floor.kept(last).expect("LMDB on").expect("read LMDB").1.is_some()
    })
    .await;
    let mut pull = Vec::new();
    resp::encode(&mut pull, &[b"QPULL", b"q"]);
    stream.write_all(&pull).await.expect("write");
    assert_eq!(
        read_replies(&mut stream, 1).await,
        [job_reply(b"q", last, b"last")]
    );
    let last_pulled = now_ms();
    stream.write_all(&pull).await.expect("write");
    assert_eq!(read_replies(&mut stream, 1).await, [b"*-1\r\n".to_vec()]);

    // The log: the pushes, each pull's lease (no pull request, no empty
    // pull), the last push, its lease, nothing else.
    let lease_of = |record: &[u8]| -> (u64, Lease) {
        assert_eq!(record.len(), LEASE_RECORD);
        let (id, rest) = record.split_at(8);
        let (attempt, deadline) = rest.split_at(4);
        let lease = Lease {
            attempt: u32::from_be_bytes(attempt.try_into().expect("4 bytes")),
            deadline_ms: u64::from_be_bytes(deadline.try_into().expect("8 bytes")),
        };
        (u64::from_be_bytes(id.try_into().expect("8 bytes")), lease)
    };
    let path = dir.path().join("floor.log");
    let leases_at = pushes.len();
    let last_push_at = leases_at + JOBS as usize * LEASE_RECORD;
    let last_lease_at = last_push_at + more.len() - pull.len();
    let end = last_lease_at + LEASE_RECORD;
    // The leases' batches are written without anyone waiting for them.
    until("the log holds the last lease", || {
        let log = std::fs::read(&path).expect("log");
        lease_of(&log[last_lease_at..end]).0 == last
    })
    .await;
    let log = std::fs::read(&path).expect("log");
    assert_eq!(&log[..leases_at], &pushes[..]);
    let logged: BTreeMap<u64, Lease> = log[leases_at..last_push_at]
        .chunks(LEASE_RECORD)
        .map(lease_of)
        .collect();
    assert_eq!(
        logged.keys().copied().collect::<Vec<_>>(),
        pulled,
        "a lease per pull"
    );
    for (id, lease) in &logged {
        assert_eq!(lease.attempt, 1, "job {id}");
        assert!(
            (before + 30_000..=after + 30_000).contains(&lease.deadline_ms),
            "job {id}: deadline {} not 30 s after its pull ({before}..={after})",
            lease.deadline_ms
        );
    }
    assert_eq!(
        &log[last_push_at..last_lease_at],
        &more[..more.len() - pull.len()]
    );
    let (_, last_lease) = lease_of(&log[last_lease_at..end]);
    assert!(last_lease.deadline_ms <= last_pulled + 30_000);
    assert!(log[end..].iter().all(|&b| b == 0), "nothing else was written");

    // LMDB: the same lease under each pulled id, and no other.
    until("LMDB holds every lease", || {
        floor.leased(1).expect("LMDB on").expect("read LMDB").0 == last
    })
    .await;
    for (id, lease) in logged.iter().chain([(&last, &last_lease)]) {
        let (_, kept) = floor.leased(*id).expect("LMDB on").expect("read LMDB");
        assert_eq!(kept.as_ref(), Some(lease), "job {id}");
    }
    let (_, beyond) = floor.leased(last + 1).expect("LMDB on").expect("read LMDB");
    assert_eq!(beyond, None);
}

/// The id of a one-job pull reply.
fn job_id(reply: &[u8]) -> u64 {
    let (decoded, _) = resp::decode(reply).expect("RESP").expect("whole");
    let resp::Reply::Array(jobs) = decoded else {
        panic!("not an array: {decoded:?}")
    };
    let Some(resp::Reply::Array(job)) = jobs.first() else {
        panic!("no job: {jobs:?}")
    };
    match job.get(1) {
        Some(resp::Reply::Integer(id)) => *id as u64,
        other => panic!("id {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_need_lmdb() {
    let (floor, port, _dir) = start(Flush::Never, false, false).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut requests = Vec::new();
    resp::encode(&mut requests, &[b"QPUSH", b"q", b"a"]);
    resp::encode(&mut requests, &[b"QPULL", b"q"]);
    stream.write_all(&requests).await.expect("write");
    assert_eq!(
        read_replies(&mut stream, 2).await,
        [
            b":1\r\n".to_vec(),
            b"-ERR the floor pulls only with --lmdb\r\n".to_vec()
        ]
    );
    assert_eq!(floor.pulls(), 0);
}
