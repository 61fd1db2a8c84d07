//! `kill -9` under load, with fsync always: every push that was answered
//! survives, and no ack that was answered is undone.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use redis::Value;

const THREADS: usize = 4;
const ROUNDS: usize = 10;

/// What one client thread saw answered before the server died.
#[derive(Debug, Default)]
struct Seen {
    /// Pushes whose id came back.
    pushed: Vec<(String, u64)>,
    /// Acks answered 1.
    acked: Vec<(String, u64)>,
    /// Acks sent whose answer never came: either outcome is allowed.
    unsure: Vec<(String, u64)>,
}

/// Pushes (and, for workers, pulls and acks) until the connection dies.
fn client(mut con: redis::Connection, queue: String, worker: bool, started: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0u64;
    loop {
        let pushed: redis::RedisResult<u64> = redis::cmd("QPUSH")
            .arg(&queue)
            .arg(format!("{queue}-{n}"))
            .query(&mut con);
        n += 1;
        match pushed {
            Ok(id) => seen.pushed.push((queue.clone(), id)),
            Err(_) => return seen,
        }
        started.store(true, Ordering::Relaxed);
        if !worker {
            continue;
        }
        let pulled: redis::RedisResult<Value> = redis::cmd("QPULL").arg(&queue).query(&mut con);
        let Ok(reply) = pulled else { return seen };
        for job in jobs(reply) {
            let key = (queue.clone(), job.id);
            match redis::cmd("QACK").arg(&queue).arg(job.id).query::<i64>(&mut con) {
                Ok(1) => seen.acked.push(key),
                Ok(other) => panic!("ack of a job just pulled answered {other}"),
                Err(_) => {
                    seen.unsure.push(key);
                    return seen;
                }
            }
        }
    }
}

fn crash_once(round: usize, rng: &mut Rng) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &["--fsync", "always"]);
    let started = AtomicBool::new(false);
    let delay = Duration::from_millis(rng.range(50, 500));
    let seen: Vec<Seen> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let con = server.client();
                let queue = format!("crash:{}", i % 2);
                let started = &started;
                s.spawn(move || client(con, queue, i >= THREADS / 2, started))
            })
            .collect();
        // The delay counts from the first answered push, so that a slow
        // start does not leave nothing to check.
        wait_for("a first push", Duration::from_secs(30), || {
            started.load(Ordering::Relaxed).then_some(())
        });
        thread::sleep(delay);
        server.kill();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let acked: BTreeSet<(String, u64)> = seen.iter().flat_map(|s| s.acked.iter().cloned()).collect();
    let unsure: BTreeSet<(String, u64)> = seen.iter().flat_map(|s| s.unsure.iter().cloned()).collect();
    let pushed: Vec<(String, u64)> = seen.iter().flat_map(|s| s.pushed.iter().cloned()).collect();
    let unique: BTreeSet<u64> = pushed.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        unique.len(),
        pushed.len(),
        "round {round}: an id was handed out twice"
    );

    let server = Server::start_in(dir.path(), &["--fsync", "always"]);
    let mut con = server.client();
    let mut pipe = redis::pipe();
    for (queue, id) in &pushed {
        pipe.cmd("QGET").arg(queue).arg(*id);
    }
    let found: Vec<Value> = if pushed.is_empty() {
        Vec::new()
    } else {
        pipe.query(&mut con).unwrap()
    };
    let mut lost = Vec::new();
    let mut undone = Vec::new();
    for (key, reply) in pushed.iter().zip(&found) {
        if unsure.contains(key) {
            continue;
        }
        match (acked.contains(key), reply) {
            (false, Value::Nil) => lost.push(key.1),
            (true, r) if *r != Value::Nil => undone.push(key.1),
            _ => {}
        }
    }
    assert!(
        lost.is_empty(),
        "round {round} (kill after {delay:?}): answered pushes lost: {lost:?}"
    );
    assert!(
        undone.is_empty(),
        "round {round} (kill after {delay:?}): answered acks undone: {undone:?}"
    );

    // The recovered store hands out new ids above every answered one.
    if let Some(&max) = unique.last() {
        let next = push(&mut con, "crash:0", b"after", &[]);
        assert!(next > max, "round {round}: id {next} after {max}");
    }
    eprintln!(
        "round {round}: kill after {delay:?}: {} pushes, {} acks, {} acks unanswered",
        pushed.len(),
        acked.len(),
        unsure.len()
    );
    drop(con);
    let mut server = server;
    server.stop();
    pushed.len()
}

#[test]
fn kill_9_loses_no_answered_push_or_ack() {
    let mut rng = Rng::from_env("crash");
    let total: usize = (0..ROUNDS).map(|round| crash_once(round, &mut rng)).sum();
    assert!(total > 0, "no push was answered in {ROUNDS} rounds");
}

/// A QDEL of a big queue answers before its jobs leave the disk; a
/// `kill -9` at any point of that deletion (here: at 0 to 80 ms after the
/// reply, since LMDB takes the QDEL within 50 ms and the jobs in a few
/// more) must neither bring the queue back nor touch the queue whose jobs
/// are stored between its own.
#[test]
fn kill_9_during_a_big_qdel_keeps_the_queue_deleted() {
    for pause_ms in [0, 20, 40, 60, 80] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(dir.path(), &["--fsync", "always"]);
        let mut con = server.client();
        // 60,000 jobs of "big" (more than one slice of the bulk delete),
        // with a job of "kept" after every thousand of them.
        let payloads: Vec<String> = (0..1000).map(|i| format!("big {i}")).collect();
        let mut kept = Vec::new();
        for round in 0..60 {
            let ids: Vec<u64> = redis::cmd("QMPUSH")
                .arg("big")
                .arg(payloads.len())
                .arg(&payloads)
                .query(&mut con)
                .unwrap();
            assert_eq!(ids.len(), 1000);
            kept.push(push(&mut con, "kept", format!("kept {round}").as_bytes(), &[]));
        }
        let deleted: i64 = redis::cmd("QDEL").arg("big").query(&mut con).unwrap();
        assert_eq!(deleted, 60_000);
        thread::sleep(Duration::from_millis(pause_ms));
        server.kill();

        let server = Server::start_in(dir.path(), &[]);
        let mut con = server.client();
        assert_eq!(qlen(&mut con, "big"), 0, "pause {pause_ms} ms");
        assert_eq!(scan_all(&mut con, None, 100), vec!["kept".to_string()]);
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap();
        assert!(info.contains("store_bulk_deletes:0\r\n"), "{info}");
        for (round, id) in kept.iter().enumerate() {
            let job = pull(&mut con, "kept", &[]).expect("a kept job");
            assert_eq!((job.id, job.payload), (*id, format!("kept {round}").into_bytes()));
        }
        assert_eq!(pull(&mut con, "kept", &[]), None);
    }
}
