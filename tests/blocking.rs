//! Blocking pulls: woken by pushes from other connections, first come
//! first served, timing out with a null, and never swallowing a job for a
//! puller that has gone.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use redis::Value;

/// A blocking QPULL/QMPULL on its own connection, in a thread.
fn spawn_pull<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    mut con: redis::Connection,
    args: Vec<String>,
) -> thread::ScopedJoinHandle<'scope, Vec<Job>> {
    scope.spawn(move || {
        let reply: Value = redis::cmd(&args[0])
            .arg(&args[1..])
            .query(&mut con)
            .expect("blocking pull");
        jobs(reply)
    })
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

#[test]
fn block_forever_is_woken_by_a_push_from_another_connection() {
    let server = Server::start();
    let mut con = server.client();
    thread::scope(|s| {
        let puller = spawn_pull(s, server.client(), words("QPULL wake BLOCK 0"));
        wait_blocked(&mut con, 1);
        let id = push(&mut con, "wake", b"for you", &[]);
        let got = puller.join().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].id, got[0].payload.as_slice(), got[0].attempt),
            (id, &b"for you"[..], 1)
        );
    });
    let s = stats(&mut con, "wake");
    assert_eq!(
        (s["waiting"], s["active"]),
        (0, 1),
        "the job went to the puller, leased"
    );
    assert_eq!(blocked_clients(&mut con), 0);
}

#[test]
fn block_with_timeout_returns_null_on_an_empty_queue() {
    let server = Server::start();
    let mut con = server.client();
    let start = Instant::now();
    let reply: Value = redis::cmd("QPULL")
        .arg("empty")
        .arg("BLOCK")
        .arg(200)
        .query(&mut con)
        .unwrap();
    let waited = start.elapsed();
    assert_eq!(reply, Value::Nil);
    assert!(waited >= Duration::from_millis(200), "returned after {waited:?}");
    assert!(waited < Duration::from_secs(20), "returned after {waited:?}");
    // The connection is usable afterwards, and nothing was left registered.
    assert_eq!(blocked_clients(&mut con), 0);
    let id = push(&mut con, "empty", b"x", &[]);
    assert_eq!(pull(&mut con, "empty", &[]).unwrap().id, id);
}

#[test]
fn blocked_pullers_are_served_first_come_first_served() {
    let server = Server::start();
    let mut con = server.client();
    thread::scope(|s| {
        let mut pullers = Vec::new();
        for n in 1..=3 {
            pullers.push(spawn_pull(s, server.client(), words("QPULL fcfs BLOCK 0")));
            // Each one blocks before the next arrives.
            wait_blocked(&mut con, n);
        }
        let ids: Vec<u64> = (0..3)
            .map(|i| push(&mut con, "fcfs", format!("j{i}").as_bytes(), &[]))
            .collect();
        for (puller, id) in pullers.into_iter().zip(ids) {
            let got = puller.join().unwrap();
            assert_eq!(
                got.iter().map(|j| j.id).collect::<Vec<_>>(),
                vec![id],
                "served out of order"
            );
        }
    });
}

#[test]
fn a_puller_that_disconnects_does_not_swallow_the_next_job() {
    let server = Server::start();
    let mut con = server.client();

    // Gone before the push, and the server has noticed.
    let mut gone = server.raw();
    gone.send(&resp(&[b"QPULL", b"gone", b"BLOCK", b"0"]));
    wait_blocked(&mut con, 1);
    drop(gone);
    wait_blocked(&mut con, 0);
    let id = push(&mut con, "gone", b"first", &[]);
    let job = pull(&mut con, "gone", &[]).expect("the job is still there");
    assert_eq!((job.id, job.attempt), (id, 1));

    // Gone just before the push: the server may hand the job over before
    // it notices the hang-up; then it must take it back, unattempted.
    let mut gone = server.raw();
    gone.send(&resp(&[b"QPULL", b"gone", b"BLOCK", b"0"]));
    wait_blocked(&mut con, 1);
    drop(gone);
    let id = push(&mut con, "gone", b"second", &[]);
    let job = pull(&mut con, "gone", &["BLOCK", "10000"]).expect("the job comes back");
    assert_eq!((job.id, job.attempt), (id, 1));
    wait_blocked(&mut con, 0);
    let s = stats(&mut con, "gone");
    assert_eq!((s["waiting"], s["active"], s["failed"]), (0, 2, 0));
}

#[test]
fn mpull_block_is_woken_by_a_push_to_the_second_queue() {
    let server = Server::start();
    let mut con = server.client();
    thread::scope(|s| {
        let puller = spawn_pull(s, server.client(), words("QMPULL 2 first second BLOCK 0"));
        wait_blocked(&mut con, 1);
        let id = push(&mut con, "second", b"2", &[]);
        let got = puller.join().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].queue.as_str(), got[0].id), ("second", id));
    });
    // Served once: it no longer waits on the first queue.
    wait_blocked(&mut con, 0);
    push(&mut con, "first", b"1", &[]);
    assert_eq!(qlen(&mut con, "first"), 1);
}

#[test]
fn resume_wakes_a_puller_blocked_on_a_paused_queue() {
    let server = Server::start();
    let mut con = server.client();
    let _: String = redis::cmd("QPAUSE").arg("held").query(&mut con).unwrap();
    thread::scope(|s| {
        let puller = spawn_pull(s, server.client(), words("QPULL held BLOCK 0"));
        wait_blocked(&mut con, 1);
        let id = push(&mut con, "held", b"x", &[]);
        assert_eq!(qlen(&mut con, "held"), 1, "a paused queue keeps the job");
        assert_eq!(blocked_clients(&mut con), 1, "the puller still waits");
        let _: String = redis::cmd("QRESUME").arg("held").query(&mut con).unwrap();
        let got = puller.join().unwrap();
        assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    });
}

#[test]
fn a_blocked_pull_keeps_its_lease_and_count() {
    let server = Server::start();
    let mut con = server.client();
    thread::scope(|s| {
        let puller = spawn_pull(s, server.client(), words("QPULL bl COUNT 2 BLOCK 0 LEASE 60000"));
        wait_blocked(&mut con, 1);
        let t0 = now_ms() as i64;
        let ids: Vec<u64> = redis::cmd("QMPUSH")
            .arg("bl")
            .arg(3)
            .arg("a")
            .arg("b")
            .arg("c")
            .query(&mut con)
            .unwrap();
        let t1 = now_ms() as i64;
        let got = puller.join().unwrap();
        assert_eq!(
            got.iter().map(|j| j.id).collect::<Vec<_>>(),
            ids[..2],
            "COUNT 2 of 3"
        );
        let until = int(&qget(&mut con, "bl", ids[0]).unwrap()["lease_until"]);
        assert!(
            (t0 + 60_000..=t1 + 60_000).contains(&until),
            "lease_until {until} not from LEASE 60000"
        );
    });
    assert_eq!(qlen(&mut con, "bl"), 1);
}

#[test]
fn requests_pipelined_behind_a_blocked_pull_wait_their_turn() {
    let server = Server::start();
    let mut raw = server.raw();
    let mut bytes = resp(&[b"QPULL", b"pipe", b"BLOCK", b"100"]);
    bytes.extend(resp(&[b"PING"]));
    raw.send(&bytes);
    assert_eq!(raw.reply(), b"*-1\r\n");
    assert_eq!(raw.reply(), b"+PONG\r\n");
}

#[test]
fn a_job_handed_to_a_puller_served_twice_goes_back_unattempted() {
    let server = Server::start();
    let mut con = server.client();
    let mut producers = [server.client(), server.client()];
    for round in 0..20 {
        let (a, b) = (format!("race:a{round}"), format!("race:b{round}"));
        thread::scope(|s| {
            let puller = spawn_pull(
                s,
                server.client(),
                vec![
                    "QMPULL".into(),
                    "2".into(),
                    a.clone(),
                    b.clone(),
                    "BLOCK".into(),
                    "0".into(),
                ],
            );
            wait_blocked(&mut con, 1);
            // Both queues get a job at about the same time: the puller takes
            // one, the other must stay available, unattempted.
            let [pa, pb] = &mut producers;
            let (qa, qb) = (&a, &b);
            let ta = s.spawn(move || push(pa, qa, b"a", &[]));
            let tb = s.spawn(move || push(pb, qb, b"b", &[]));
            let mut ids = [ta.join().unwrap(), tb.join().unwrap()];
            ids.sort_unstable();
            let got = puller.join().unwrap();
            assert_eq!(got.len(), 1, "round {round}: {got:?}");
            assert_eq!(got[0].attempt, 1);
            let other = if got[0].queue == a { &b } else { &a };
            let rest = pull(&mut con, other, &["BLOCK", "10000"]).expect("the other job is not lost");
            assert_eq!(rest.attempt, 1, "round {round}: the hand-back counted an attempt");
            let mut seen = [got[0].id, rest.id];
            seen.sort_unstable();
            assert_eq!(seen, ids, "round {round}");
        });
        wait_blocked(&mut con, 0);
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn blocked_pullers_take_no_cpu_while_they_wait() {
    let server = Server::start();
    let mut con = server.client();
    let mut waiting: Vec<Raw> = (0..50).map(|_| server.raw()).collect();
    for raw in &mut waiting {
        raw.send(&resp(&[b"QPULL", b"idle", b"BLOCK", b"0"]));
    }
    wait_blocked(&mut con, 50);
    let before = cpu_ticks(server.pid());
    thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(server.pid()) - before;
    // USER_HZ is 100 on Linux: 25 ticks is a quarter of a core.
    assert!(
        used < 25,
        "50 blocked pullers used {used} ticks of CPU in one second"
    );
    // And each is still served, once.
    let ids: BTreeSet<u64> = (0..50)
        .map(|i| push(&mut con, "idle", format!("{i}").as_bytes(), &[]))
        .collect();
    let mut got = BTreeSet::new();
    for raw in &mut waiting {
        let reply = raw.reply();
        let text = String::from_utf8_lossy(&reply).into_owned();
        let Some(rest) = text.strip_prefix("*1\r\n*4\r\n$4\r\nidle\r\n:") else {
            panic!("not one job: {text:?}");
        };
        assert!(text.ends_with("\r\n:1\r\n"), "attempt 1: {text:?}");
        got.insert(rest.split('\r').next().unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(got, ids);
}

#[test]
fn concurrent_pushers_and_blocked_pullers_deliver_every_job_exactly_once() {
    const PER_PUSHER: usize = 300;
    let server = Server::start();
    let mut con = server.client();
    let delivered = &AtomicUsize::new(0);
    let (pushed, pulled): (Vec<(u64, Vec<u8>)>, Vec<Job>) = thread::scope(|s| {
        let pullers: Vec<_> = (0..3)
            .map(|_| {
                let mut con = server.client();
                s.spawn(move || {
                    let mut got = Vec::new();
                    // A lost job shows as a shortfall after the deadline.
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while delivered.load(Ordering::SeqCst) < 2 * PER_PUSHER && Instant::now() < deadline {
                        if let Some(job) = pull(&mut con, "stress", &["BLOCK", "200"]) {
                            assert_eq!(ack(&mut con, "stress", &[job.id]), 1);
                            got.push(job);
                            delivered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    got
                })
            })
            .collect();
        let pushers: Vec<_> = (0..2)
            .map(|p| {
                let mut con = server.client();
                s.spawn(move || {
                    (0..PER_PUSHER)
                        .map(|i| {
                            let payload = format!("p{p}-{i}").into_bytes();
                            (push(&mut con, "stress", &payload, &[]), payload)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let pushed = pushers.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let pulled = pullers.into_iter().flat_map(|h| h.join().unwrap()).collect();
        (pushed, pulled)
    });
    let want: std::collections::BTreeMap<u64, Vec<u8>> = pushed.into_iter().collect();
    let mut got = std::collections::BTreeMap::new();
    for job in pulled {
        assert_eq!(job.attempt, 1, "job {} delivered again", job.id);
        assert!(
            got.insert(job.id, job.payload).is_none(),
            "job {} delivered twice",
            job.id
        );
    }
    assert_eq!(got.len(), want.len(), "delivered {} of {}", got.len(), want.len());
    assert!(got == want, "payloads differ");
    let s = stats(&mut con, "stress");
    assert_eq!(
        (s["waiting"], s["active"], s["acked"]),
        (0, 0, 2 * PER_PUSHER as i64)
    );
}

#[test]
fn the_longest_block_allowed_still_wakes_on_a_push() {
    let server = Server::start();
    let mut con = server.client();
    let longest = (i64::MAX / 1000).to_string();
    thread::scope(|s| {
        let puller = spawn_pull(
            s,
            server.client(),
            words(&format!("QPULL far BLOCK {longest} LEASE 4294967295")),
        );
        wait_blocked(&mut con, 1);
        let id = push(&mut con, "far", b"x", &[]);
        assert_eq!(
            puller.join().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![id]
        );
    });
    let e = expect_err(
        redis::cmd("QPULL")
            .arg("far")
            .arg("BLOCK")
            .arg(i64::MAX as u64 / 1000 + 1)
            .query::<Value>(&mut con),
    );
    assert!(e.starts_with("ERR"), "{e}");
    assert_eq!(blocked_clients(&mut con), 0);
}
