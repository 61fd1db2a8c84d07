//! The queue commands end to end: a real server, a real LMDB directory, a
//! redis-rs client. Each test has its own server, so they run in parallel
//! without sharing queues or id sequences.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use redis::Value;

/// Waits (polling QPULL) until `queue` hands out a job; for jobs that come
/// back after a backoff or an expired lease.
fn pull_when_ready(con: &mut redis::Connection, queue: &str) -> Job {
    wait_for(&format!("a job in {queue}"), Duration::from_secs(20), || {
        pull(con, queue, &[])
    })
}

#[test]
fn push_pull_ack() {
    let server = Server::start();
    let mut con = server.client();

    let a = push(&mut con, "jobs", b"first", &[]);
    let b = push(&mut con, "jobs", b"second", &[]);
    assert!(b > a, "ids increase: {a} then {b}");
    assert_eq!(qlen(&mut con, "jobs"), 2);

    // The reply's exact shape: [[queue, id, payload, attempt]].
    let reply: Value = redis::cmd("QPULL").arg("jobs").query(&mut con).unwrap();
    assert_eq!(
        reply,
        Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"jobs".to_vec()),
            Value::Int(a as i64),
            Value::BulkString(b"first".to_vec()),
            Value::Int(1),
        ])])
    );
    assert_eq!(qlen(&mut con, "jobs"), 1);
    assert_eq!(stats(&mut con, "jobs")["active"], 1);

    assert_eq!(ack(&mut con, "jobs", &[a]), 1);
    assert_eq!(ack(&mut con, "jobs", &[a]), 0, "a repeated ack counts 0");
    assert_eq!(qget(&mut con, "jobs", a), None, "an acked job is gone");

    let job = pull(&mut con, "jobs", &[]).expect("second job");
    assert_eq!(
        (job.id, job.payload.as_slice(), job.attempt),
        (b, &b"second"[..], 1)
    );
    assert_eq!(ack(&mut con, "jobs", &[b, 999_999]), 1, "unknown ids count 0");
    assert_eq!(pull(&mut con, "jobs", &[]), None, "empty queue: null");

    let s = stats(&mut con, "jobs");
    assert_eq!((s["pushed"], s["acked"], s["waiting"], s["active"]), (2, 2, 0, 0));
}

#[test]
fn qmpush_pushes_all_in_order_and_count_pulls_several() {
    let server = Server::start();
    let mut con = server.client();
    let ids: Vec<u64> = redis::cmd("QMPUSH")
        .arg("m")
        .arg(3)
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut con)
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive ids: {ids:?}"
    );
    let reply: Value = redis::cmd("QPULL")
        .arg("m")
        .arg("COUNT")
        .arg(10)
        .query(&mut con)
        .unwrap();
    let got = jobs(reply);
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        got.iter().map(|j| j.payload.clone()).collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(ack(&mut con, "m", &ids), 3);
}

#[test]
fn priority_then_fifo() {
    let server = Server::start();
    let mut con = server.client();
    let pushes: [(i64, &str); 9] = [
        (0, "a"),
        (5, "b"),
        (-3, "c"),
        (5, "d"),
        (0, "e"),
        (10, "f"),
        (-3, "g"),
        (5, "h"),
        (0, "i"),
    ];
    let mut expected: Vec<(i64, u64, &str)> = Vec::new();
    for (priority, payload) in pushes {
        let id = push(
            &mut con,
            "prio",
            payload.as_bytes(),
            &["PRIORITY", &priority.to_string()],
        );
        expected.push((priority, id, payload));
    }
    // Higher priority first; within one priority, push order.
    expected.sort_by_key(|&(priority, id, _)| (-priority, id));
    let mut got = Vec::new();
    while let Some(job) = pull(&mut con, "prio", &[]) {
        got.push(String::from_utf8(job.payload).unwrap());
    }
    let want: Vec<&str> = expected.iter().map(|e| e.2).collect();
    assert_eq!(got, want);
    assert_eq!(want, ["f", "b", "d", "h", "a", "e", "i", "c", "g"]);
}

#[test]
fn delay_and_at() {
    let server = Server::start();
    let mut con = server.client();
    let delay_from = now_ms();
    let delayed = push(&mut con, "later", b"delay", &["DELAY", "300"]);
    let at = now_ms() + 300;
    let timed = push(&mut con, "later", b"at", &["AT", &at.to_string()]);
    // An AT in the past is ready at once.
    let past = push(&mut con, "later", b"past", &["AT", "1000"]);

    let s = stats(&mut con, "later");
    assert_eq!((s["delayed"], s["waiting"]), (2, 1));
    assert_eq!(qlen(&mut con, "later"), 1);
    assert_eq!(pull(&mut con, "later", &[]).map(|j| j.id), Some(past));
    // Nothing else before its time (300 ms is far from over: the pushes
    // above took a few ms).
    let t = now_ms();
    let early = pull(&mut con, "later", &[]);
    if now_ms() < at.min(t + 250) {
        assert_eq!(early, None, "a delayed job was pulled before its time");
    }
    let mut got = BTreeSet::new();
    while got.len() < 2 {
        let job = pull_when_ready(&mut con, "later");
        let due = if job.id == delayed { delay_from + 300 } else { at };
        assert!(now_ms() >= due, "job {} pulled before its time", job.id);
        got.insert(job.id);
    }
    assert_eq!(got, BTreeSet::from([delayed, timed]));
    assert_eq!(stats(&mut con, "later")["delayed"], 0);
}

#[test]
fn expired_lease_redelivers_with_the_next_attempt() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "lease", b"work", &[]);
    let first = pull(&mut con, "lease", &["LEASE", "200"]).unwrap();
    assert_eq!((first.id, first.attempt), (id, 1));
    assert_eq!(state(&mut con, "lease", id).as_deref(), Some("active"));

    // The second delivery keeps the job's own (30 s) lease.
    let again = pull_when_ready(&mut con, "lease");
    assert_eq!((again.id, again.attempt), (id, 2));
    let s = stats(&mut con, "lease");
    assert_eq!((s["expired_leases"], s["active"], s["waiting"]), (1, 1, 0));

    // The same with LEASE given at push time.
    let id2 = push(&mut con, "lease2", b"work", &["LEASE", "200"]);
    assert_eq!(pull(&mut con, "lease2", &[]).unwrap().attempt, 1);
    let again = pull_when_ready(&mut con, "lease2");
    assert_eq!((again.id, again.attempt), (id2, 2));
    assert!(stats(&mut con, "lease2")["expired_leases"] >= 1);
}

#[test]
fn touch_keeps_the_job() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "touch", b"long work", &["LEASE", "1000"]);
    let job = pull(&mut con, "touch", &[]).unwrap();
    let start = now_ms();
    // Touch every 100 ms for 2.5 leases: the job must stay with us.
    while now_ms() < start + 2500 {
        let left: i64 = redis::cmd("QTOUCH").arg("touch").arg(id).query(&mut con).unwrap();
        assert_eq!(left, 1000, "QTOUCH renews the job's own lease");
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: i64 = redis::cmd("QTOUCH")
        .arg("touch")
        .arg(id)
        .arg("LEASE")
        .arg(5000)
        .query(&mut con)
        .unwrap();
    assert_eq!(left, 5000);
    let fields = qget(&mut con, "touch", id).unwrap();
    assert_eq!(text(&fields["state"]), "active");
    assert_eq!(int(&fields["attempt"]), job.attempt as i64);
    assert_eq!(
        pull(&mut con, "touch", &[]),
        None,
        "a touched job is not redelivered"
    );
    let s = stats(&mut con, "touch");
    assert_eq!((s["expired_leases"], s["active"]), (0, 1));
    assert_eq!(ack(&mut con, "touch", &[id]), 1);
}

/// The delay a QFAIL chose, as bounds: the server read its clock between
/// `before` and `after`.
fn retry_delay_bounds(con: &mut redis::Connection, queue: &str, id: u64, error: &str) -> (i64, i64) {
    let before = now_ms() as i64;
    let new_state: String = redis::cmd("QFAIL")
        .arg(queue)
        .arg(id)
        .arg("ERROR")
        .arg(error)
        .query(con)
        .unwrap();
    let after = now_ms() as i64;
    assert_eq!(new_state, "delayed");
    let fields = qget(con, queue, id).unwrap();
    assert_eq!(text(&fields["state"]), "delayed");
    let ready_at = int(&fields["ready_at"]);
    (ready_at - after, ready_at - before)
}

#[test]
fn fail_retries_with_growing_backoff_then_dead() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "flaky", b"job", &["RETRIES", "2", "BACKOFF", "100"]);

    assert_eq!(pull(&mut con, "flaky", &[]).unwrap().attempt, 1);
    let (lo1, hi1) = retry_delay_bounds(&mut con, "flaky", id, "first");
    // First retry: 100 ms ± 10%.
    assert!(
        lo1 <= 110 && hi1 >= 90,
        "first backoff in [{lo1}, {hi1}] ms, expected 90..=110"
    );

    let job = pull_when_ready(&mut con, "flaky");
    assert_eq!((job.id, job.attempt), (id, 2));
    let (lo2, hi2) = retry_delay_bounds(&mut con, "flaky", id, "second");
    // Second retry: 200 ms ± 10%, about twice the first.
    assert!(
        lo2 <= 220 && hi2 >= 180,
        "second backoff in [{lo2}, {hi2}] ms, expected 180..=220"
    );
    assert!(hi2 > lo1, "the backoff grows");

    let job = pull_when_ready(&mut con, "flaky");
    assert_eq!((job.id, job.attempt), (id, 3));
    let new_state: String = redis::cmd("QFAIL")
        .arg("flaky")
        .arg(id)
        .arg("ERROR")
        .arg("last error")
        .query(&mut con)
        .unwrap();
    assert_eq!(new_state, "dead", "no retries left after RETRIES 2");

    let dead: i64 = redis::cmd("QDLQ")
        .arg("LEN")
        .arg("flaky")
        .query(&mut con)
        .unwrap();
    assert_eq!(dead, 1);
    let list: Value = redis::cmd("QDLQ")
        .arg("LIST")
        .arg("flaky")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        list,
        Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"flaky".to_vec()),
            Value::Int(id as i64),
            Value::BulkString(b"job".to_vec()),
            Value::Int(3),
            Value::BulkString(b"last error".to_vec()),
        ])])
    );
    let s = stats(&mut con, "flaky");
    assert_eq!(
        (s["dead"], s["failed"], s["retried"], s["waiting"], s["delayed"]),
        (1, 3, 2, 0, 0)
    );
    assert_eq!(pull(&mut con, "flaky", &[]), None, "a dead job is not handed out");
}

#[test]
fn fatal_goes_dead_at_once() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "fatal", b"job", &["RETRIES", "5"]);
    pull(&mut con, "fatal", &[]).unwrap();
    let new_state: String = redis::cmd("QFAIL")
        .arg("fatal")
        .arg(id)
        .arg("FATAL")
        .arg("ERROR")
        .arg("bad input")
        .query(&mut con)
        .unwrap();
    assert_eq!(new_state, "dead");
    let dead: i64 = redis::cmd("QDLQ")
        .arg("LEN")
        .arg("fatal")
        .query(&mut con)
        .unwrap();
    assert_eq!(dead, 1);
    let fields = qget(&mut con, "fatal", id).unwrap();
    assert_eq!(text(&fields["state"]), "dead");
    assert_eq!(text(&fields["last_error"]), "bad input");
}

#[test]
fn silent_fail_keeps_the_attempt_number() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "silent", b"job", &[]);
    assert_eq!(pull(&mut con, "silent", &[]).unwrap().attempt, 1);
    let new_state: String = redis::cmd("QFAIL")
        .arg("silent")
        .arg(id)
        .arg("SILENT")
        .query(&mut con)
        .unwrap();
    assert_eq!(new_state, "waiting");
    let job = pull(&mut con, "silent", &[]).expect("back at once");
    assert_eq!(
        (job.id, job.attempt),
        (id, 1),
        "SILENT does not count the attempt"
    );

    // Once more after a counted failure: attempt 2 stays 2.
    let new_state: String = redis::cmd("QFAIL")
        .arg("silent")
        .arg(id)
        .arg("RETRYIN")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(new_state, "waiting", "RETRYIN 0 retries at once");
    assert_eq!(pull(&mut con, "silent", &[]).unwrap().attempt, 2);
    let _: String = redis::cmd("QFAIL")
        .arg("silent")
        .arg(id)
        .arg("SILENT")
        .query(&mut con)
        .unwrap();
    assert_eq!(pull(&mut con, "silent", &[]).unwrap().attempt, 2);
    assert_eq!(stats(&mut con, "silent")["failed"], 1);
}

/// Pushes `n` jobs that die on their first failure; returns their ids.
fn dead_jobs(con: &mut redis::Connection, queue: &str, n: usize) -> Vec<u64> {
    let ids: Vec<u64> = (0..n)
        .map(|i| push(con, queue, format!("d{i}").as_bytes(), &["RETRIES", "0"]))
        .collect();
    for &id in &ids {
        assert_eq!(pull(con, queue, &[]).unwrap().id, id);
        let new_state: String = redis::cmd("QFAIL")
            .arg(queue)
            .arg(id)
            .arg("ERROR")
            .arg("e")
            .query(con)
            .unwrap();
        assert_eq!(new_state, "dead");
    }
    ids
}

fn dlq_len(con: &mut redis::Connection, queue: &str) -> i64 {
    redis::cmd("QDLQ").arg("LEN").arg(queue).query(con).unwrap()
}

#[test]
fn dlq_requeue_and_purge() {
    let server = Server::start();
    let mut con = server.client();
    let ids = dead_jobs(&mut con, "dlq", 3);
    assert_eq!(dlq_len(&mut con, "dlq"), 3);

    // REQUEUE by id: waiting again, attempts reset.
    let n: i64 = redis::cmd("QDLQ")
        .arg("REQUEUE")
        .arg("dlq")
        .arg(ids[1])
        .arg(999_999)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!((dlq_len(&mut con, "dlq"), qlen(&mut con, "dlq")), (2, 1));
    assert_eq!(state(&mut con, "dlq", ids[1]).as_deref(), Some("waiting"));
    let job = pull(&mut con, "dlq", &[]).unwrap();
    assert_eq!((job.id, job.attempt), (ids[1], 1));

    // REQUEUE ALL.
    let n: i64 = redis::cmd("QDLQ")
        .arg("REQUEUE")
        .arg("dlq")
        .arg("ALL")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(dlq_len(&mut con, "dlq"), 0);
    for id in [ids[0], ids[2]] {
        let job = pull(&mut con, "dlq", &[]).unwrap();
        assert_eq!((job.id, job.attempt), (id, 1));
    }
    assert_eq!(ack(&mut con, "dlq", &ids), 3);

    // PURGE by id, then all.
    let ids = dead_jobs(&mut con, "dlq", 3);
    let n: i64 = redis::cmd("QDLQ")
        .arg("PURGE")
        .arg("dlq")
        .arg(ids[0])
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(qget(&mut con, "dlq", ids[0]), None);
    assert_eq!(dlq_len(&mut con, "dlq"), 2);
    let n: i64 = redis::cmd("QDLQ")
        .arg("PURGE")
        .arg("dlq")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(dlq_len(&mut con, "dlq"), 0);
    for id in ids {
        assert_eq!(qget(&mut con, "dlq", id), None);
    }
    let s = stats(&mut con, "dlq");
    assert_eq!((s["dead"], s["waiting"], s["active"]), (0, 0, 0));
}

#[test]
fn attempt_fence_refuses_a_stale_delivery() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "fence", b"job", &[]);
    assert_eq!(pull(&mut con, "fence", &["LEASE", "200"]).unwrap().attempt, 1);
    let job = pull_when_ready(&mut con, "fence");
    assert_eq!(job.attempt, 2);

    // The first worker comes back late: every fenced command is refused.
    let e = expect_err(
        redis::cmd("QACK")
            .arg("fence")
            .arg(id)
            .arg("ATTEMPT")
            .arg(1)
            .query::<i64>(&mut con),
    );
    assert!(e.starts_with("LEASELOST"), "{e}");
    let e = expect_err(
        redis::cmd("QTOUCH")
            .arg("fence")
            .arg(id)
            .arg("ATTEMPT")
            .arg(1)
            .query::<i64>(&mut con),
    );
    assert!(e.starts_with("LEASELOST"), "{e}");
    let e = expect_err(
        redis::cmd("QFAIL")
            .arg("fence")
            .arg(id)
            .arg("ATTEMPT")
            .arg(1)
            .query::<String>(&mut con),
    );
    assert!(e.starts_with("LEASELOST"), "{e}");
    // …and changed nothing.
    let fields = qget(&mut con, "fence", id).unwrap();
    assert_eq!(
        (text(&fields["state"]), int(&fields["attempt"])),
        ("active".to_owned(), 2)
    );

    let n: i64 = redis::cmd("QACK")
        .arg("fence")
        .arg(id)
        .arg("ATTEMPT")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(qget(&mut con, "fence", id), None);
}

#[test]
fn unknown_or_inactive_job_is_nojob() {
    let server = Server::start();
    let mut con = server.client();
    let waiting = push(&mut con, "nj", b"job", &[]);
    for id in [424_242, waiting] {
        let e = expect_err(redis::cmd("QFAIL").arg("nj").arg(id).query::<String>(&mut con));
        assert!(e.starts_with("NOJOB"), "QFAIL {id}: {e}");
        let e = expect_err(redis::cmd("QTOUCH").arg("nj").arg(id).query::<i64>(&mut con));
        assert!(e.starts_with("NOJOB"), "QTOUCH {id}: {e}");
    }
    // A known job that is not active: QACK refuses it too.
    let e = expect_err(redis::cmd("QACK").arg("nj").arg(waiting).query::<i64>(&mut con));
    assert!(e.starts_with("NOJOB"), "{e}");
    // A job of another queue is unknown in this one.
    pull(&mut con, "nj", &[]).unwrap();
    let e = expect_err(
        redis::cmd("QTOUCH")
            .arg("other")
            .arg(waiting)
            .query::<i64>(&mut con),
    );
    assert!(e.starts_with("NOJOB"), "{e}");
    assert_eq!(ack(&mut con, "other", &[waiting]), 0);
    assert_eq!(state(&mut con, "nj", waiting).as_deref(), Some("active"));
}

#[test]
fn pause_and_resume() {
    let server = Server::start();
    let mut con = server.client();
    let before = push(&mut con, "p", b"before", &[]);
    let ok: String = redis::cmd("QPAUSE").arg("p").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(pull(&mut con, "p", &[]), None, "a paused queue hands out nothing");
    let during = push(&mut con, "p", b"during", &[]);
    assert_eq!(qlen(&mut con, "p"), 2, "a paused queue accepts pushes");
    assert_eq!(stats(&mut con, "p")["paused"], 1);
    assert_eq!(pull(&mut con, "p", &[]), None);

    let ok: String = redis::cmd("QRESUME").arg("p").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(stats(&mut con, "p")["paused"], 0);
    assert_eq!(pull(&mut con, "p", &[]).unwrap().id, before);
    assert_eq!(pull(&mut con, "p", &[]).unwrap().id, during);
}

#[test]
fn cancel_removes_waiting_and_delayed_not_active() {
    let server = Server::start();
    let mut con = server.client();
    let active = push(&mut con, "c", b"active", &[]);
    assert_eq!(pull(&mut con, "c", &[]).unwrap().id, active);
    let waiting = push(&mut con, "c", b"waiting", &[]);
    let delayed = push(&mut con, "c", b"delayed", &["DELAY", "600000"]);
    let kept = push(&mut con, "c", b"kept", &[]);

    let n: i64 = redis::cmd("QCANCEL")
        .arg("c")
        .arg(waiting)
        .arg(delayed)
        .arg(active)
        .arg(777_777)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(qget(&mut con, "c", waiting), None);
    assert_eq!(qget(&mut con, "c", delayed), None);
    assert_eq!(state(&mut con, "c", active).as_deref(), Some("active"));
    assert_eq!(state(&mut con, "c", kept).as_deref(), Some("waiting"));
    let s = stats(&mut con, "c");
    assert_eq!((s["waiting"], s["delayed"], s["active"]), (1, 0, 1));
    let n: i64 = redis::cmd("QCANCEL")
        .arg("c")
        .arg(waiting)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0, "cancelling twice removes nothing");
}

#[test]
fn mpull_serves_queues_in_the_order_given() {
    let server = Server::start();
    let mut con = server.client();
    let one = push(&mut con, "one", b"1", &[]);
    let two = push(&mut con, "two", b"2", &[]);
    let mpull = |con: &mut redis::Connection, queues: &[&str]| -> Vec<Job> {
        let reply: Value = redis::cmd("QMPULL")
            .arg(queues.len())
            .arg(queues)
            .query(con)
            .unwrap();
        jobs(reply)
    };
    let got = mpull(&mut con, &["two", "one"]);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].queue.as_str(), got[0].id), ("two", two));
    let got = mpull(&mut con, &["two", "one"]);
    assert_eq!((got[0].queue.as_str(), got[0].id), ("one", one));
    assert!(mpull(&mut con, &["two", "one"]).is_empty());
    // The first named queue wins whichever is older.
    let one = push(&mut con, "one", b"1", &[]);
    push(&mut con, "two", b"2", &[]);
    let got = mpull(&mut con, &["one", "two"]);
    assert_eq!((got[0].queue.as_str(), got[0].id), ("one", one));
}

#[test]
fn get_shows_every_field() {
    let server = Server::start();
    let mut con = server.client();
    let before = now_ms() as i64;
    let id = push(
        &mut con,
        "g",
        b"{\"x\":1}",
        &["PRIORITY", "7", "RETRIES", "4", "LEASE", "60000"],
    );
    let after = now_ms() as i64;
    let f = qget(&mut con, "g", id).expect("the job");
    let keys: BTreeSet<&str> = f.keys().map(String::as_str).collect();
    for key in [
        "id",
        "queue",
        "state",
        "payload",
        "priority",
        "attempt",
        "retries",
        "created_at",
        "ready_at",
        "lease_until",
        "last_error",
        "progress",
        "group",
    ] {
        assert!(keys.contains(key), "QGET has no {key}: {keys:?}");
    }
    assert_eq!(int(&f["id"]), id as i64);
    assert_eq!(text(&f["queue"]), "g");
    assert_eq!(text(&f["state"]), "waiting");
    assert_eq!(bytes(&f["payload"]), b"{\"x\":1}");
    assert_eq!(int(&f["priority"]), 7);
    assert_eq!(int(&f["attempt"]), 0);
    assert_eq!(int(&f["retries"]), 4);
    let created = int(&f["created_at"]);
    assert!(
        (before..=after).contains(&created),
        "created_at {created} not in [{before}, {after}]"
    );
    assert_eq!(f["ready_at"], Value::Nil);
    assert_eq!(f["lease_until"], Value::Nil);
    assert_eq!(f["last_error"], Value::Nil);

    let t0 = now_ms() as i64;
    pull(&mut con, "g", &[]).unwrap();
    let t1 = now_ms() as i64;
    let f = qget(&mut con, "g", id).unwrap();
    assert_eq!((text(&f["state"]), int(&f["attempt"])), ("active".to_owned(), 1));
    let until = int(&f["lease_until"]);
    assert!(
        (t0 + 60_000..=t1 + 60_000).contains(&until),
        "lease_until {until}"
    );

    let t0 = now_ms() as i64;
    let delayed = push(&mut con, "g", b"later", &["DELAY", "50000"]);
    let t1 = now_ms() as i64;
    let f = qget(&mut con, "g", delayed).unwrap();
    assert_eq!(text(&f["state"]), "delayed");
    let ready = int(&f["ready_at"]);
    assert!((t0 + 50_000..=t1 + 50_000).contains(&ready), "ready_at {ready}");

    assert_eq!(qget(&mut con, "g", 123_456), None, "unknown id: null");
    assert_eq!(
        qget(&mut con, "other", id),
        None,
        "a job is only found in its queue"
    );
}

#[test]
fn peek_does_not_lease() {
    let server = Server::start();
    let mut con = server.client();
    let a = push(&mut con, "peek", b"a", &[]);
    let b = push(&mut con, "peek", b"b", &["PRIORITY", "1"]);
    let reply: Value = redis::cmd("QPEEK")
        .arg("peek")
        .arg("COUNT")
        .arg(10)
        .query(&mut con)
        .unwrap();
    let seen = jobs(reply);
    assert_eq!(
        seen.iter().map(|j| (j.id, j.attempt)).collect::<Vec<_>>(),
        vec![(b, 1), (a, 1)]
    );
    let s = stats(&mut con, "peek");
    assert_eq!((s["waiting"], s["active"]), (2, 0));
    let reply: Value = redis::cmd("QPEEK").arg("peek").query(&mut con).unwrap();
    assert_eq!(jobs(reply).len(), 1, "COUNT defaults to 1");
    let job = pull(&mut con, "peek", &[]).unwrap();
    assert_eq!((job.id, job.attempt), (b, 1));
    let reply: Value = redis::cmd("QPEEK").arg("empty").query(&mut con).unwrap();
    assert_eq!(reply, Value::Array(vec![]), "nothing to peek: an empty array");
}

#[test]
fn scan_with_match_and_cursor() {
    let server = Server::start();
    let mut con = server.client();
    let mut want: BTreeSet<String> = BTreeSet::new();
    for i in 0..25 {
        let name = format!("scan:{i:02}");
        push(&mut con, &name, b"x", &[]);
        want.insert(name);
    }
    push(&mut con, "other:x", b"x", &[]);
    let ok: String = redis::cmd("QPAUSE").arg("other:paused").query(&mut con).unwrap();
    assert_eq!(ok, "OK");

    let got = scan_all(&mut con, Some("scan:*"), 4);
    assert_eq!(got.len(), 25, "each queue once: {got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);

    let mut all = want.clone();
    all.insert("other:x".into());
    all.insert("other:paused".into());
    for count in [1, 3, 10, 1000] {
        let got = scan_all(&mut con, None, count);
        assert_eq!(got.len(), all.len(), "COUNT {count}: {got:?}");
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), all, "COUNT {count}");
    }
    assert_eq!(scan_all(&mut con, Some("other:*"), 100).len(), 2);
    assert_eq!(scan_all(&mut con, Some("nothing*"), 100), Vec::<String>::new());
}

#[test]
fn del_removes_the_queue_and_all_its_jobs() {
    let server = Server::start();
    let mut con = server.client();
    dead_jobs(&mut con, "d", 1);
    let active = push(&mut con, "d", b"1", &[]);
    assert_eq!(pull(&mut con, "d", &[]).unwrap().id, active);
    push(&mut con, "d", b"2", &[]);
    push(&mut con, "d", b"3", &["DELAY", "600000"]);
    push(&mut con, "keep", b"k", &[]);

    let n: i64 = redis::cmd("QDEL").arg("d").query(&mut con).unwrap();
    assert_eq!(n, 4);
    assert_eq!(qlen(&mut con, "d"), 0);
    let s = stats(&mut con, "d");
    assert!(s.values().all(|&v| v == 0), "a deleted queue has zeros: {s:?}");
    assert_eq!(scan_all(&mut con, None, 10), vec!["keep".to_owned()]);
    assert_eq!(qget(&mut con, "d", active), None);
    // The worker of a deleted job: its ack counts 0, its fail is refused.
    assert_eq!(ack(&mut con, "d", &[active]), 0);
    let e = expect_err(redis::cmd("QFAIL").arg("d").arg(active).query::<String>(&mut con));
    assert!(e.starts_with("NOJOB"), "{e}");
    let n: i64 = redis::cmd("QDEL").arg("d").query(&mut con).unwrap();
    assert_eq!(n, 0);
    assert_eq!(qlen(&mut con, "keep"), 1);
}

/// Every queue's name, length and stable QSTATS.
type Snapshot = (Vec<String>, Vec<(i64, std::collections::BTreeMap<String, i64>)>);

/// Everything a refused command could have changed.
fn snapshot(con: &mut redis::Connection) -> Snapshot {
    let queues = scan_all(con, None, 100);
    let per_queue = queues
        .iter()
        .map(|q| (qlen(con, q), stable_stats(con, q)))
        .collect();
    (queues, per_queue)
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let server = Server::start_with(&["--max-payload", "1000"]);
    let mut con = server.client();
    let id = push(&mut con, "q", b"x", &[]);
    push(&mut con, "q", b"y", &["DELAY", "600000"]);
    let active = push(&mut con, "q", b"z", &[]);
    assert_eq!(pull(&mut con, "q", &[]).unwrap().id, id);
    let _ = active;
    let before = snapshot(&mut con);

    let big = vec![b'p'; 1001];
    let bad: Vec<(Vec<&[u8]>, &str)> = vec![
        (
            vec![b"QPUSH", b"q", b"x", b"PRIORITY", b"high"],
            "ERR value is not an integer",
        ),
        (
            vec![b"QPUSH", b"q", b"x", b"PRIORITY", b"99999999999999999999"],
            "ERR value is not an integer",
        ),
        (vec![b"QPUSH", b"q", b"x", b"DELAY", b"-5"], "ERR"),
        (vec![b"QPUSH", b"q", b"x", b"LEASE", b"0"], "ERR"),
        (vec![b"QPUSH", b"q", b"x", b"DELAY", b"10", b"AT", b"10"], "ERR"),
        (vec![b"QPUSH", b"q", b"x", b"COLOR", b"red"], "ERR unknown option"),
        (vec![b"QPUSH", b"q", b"x", b"PRIORITY"], "ERR"),
        (vec![b"QPUSH", b"q"], "ERR wrong number of arguments"),
        (vec![b"QPUSH"], "ERR wrong number of arguments"),
        (vec![b"QPUSH", b"bad queue", b"x"], "ERR invalid queue name"),
        (vec![b"QPUSH", b"", b"x"], "ERR invalid queue name"),
        (
            vec![b"QPUSH", b"q", &big],
            "ERR payload of 1001 bytes exceeds max-payload",
        ),
        (vec![b"QMPUSH", b"q", b"5", b"a", b"b"], "ERR numjobs is 5"),
        (vec![b"QMPUSH", b"q", b"0"], "ERR"),
        (
            vec![b"QMPUSH", b"q", b"2", b"a", &big],
            "ERR payload of 1001 bytes",
        ),
        (
            vec![b"QMPUSH", b"q", b"2", b"a", b"b", b"PRIORITY", b"x"],
            "ERR value is not an integer",
        ),
        (
            vec![b"QMPUSH", b"q", b"two", b"a", b"b"],
            "ERR value is not an integer",
        ),
        (vec![b"QPULL", b"q", b"COUNT", b"0"], "ERR"),
        (
            vec![b"QPULL", b"q", b"COUNT", b"abc"],
            "ERR value is not an integer",
        ),
        (vec![b"QPULL", b"q", b"WAIT", b"1"], "ERR unknown option"),
        (vec![b"QPULL", b"q", b"LEASE", b"-1"], "ERR"),
        (vec![b"QMPULL", b"3", b"q", b"q2"], "ERR numqueues is 3"),
        (vec![b"QACK", b"q", b"one"], "ERR value is not an integer"),
        (vec![b"QACK", b"q", b"1", b"ATTEMPT"], "ERR"),
        (vec![b"QACK", b"q"], "ERR wrong number of arguments"),
        (vec![b"QFAIL", b"q", b"x"], "ERR value is not an integer"),
        (vec![b"QFAIL", b"q", b"1", b"FATAL", b"SILENT"], "ERR"),
        (vec![b"QFAIL", b"q", b"1", b"LOUDLY"], "ERR unknown option"),
        (vec![b"QTOUCH", b"q", b"1", b"LEASE", b"0"], "ERR"),
        (vec![b"QGET", b"q"], "ERR wrong number of arguments"),
        (vec![b"QGET", b"q", b"1", b"2"], "ERR wrong number of arguments"),
        (vec![b"QSTATS", b"bad\tname"], "ERR invalid queue name"),
        (vec![b"QLEN"], "ERR wrong number of arguments"),
        (vec![b"QSCAN", b"abc"], "ERR invalid cursor"),
        (vec![b"QSCAN", b"0", b"COUNT", b"0"], "ERR"),
        (vec![b"QDLQ", b"FOO", b"q"], "ERR unknown subcommand"),
        (vec![b"QDLQ", b"REQUEUE", b"q"], "ERR wrong number of arguments"),
        (vec![b"QDLQ", b"PURGE", b"q", b"x"], "ERR value is not an integer"),
        (vec![b"QCANCEL", b"q", b"1", b"x"], "ERR value is not an integer"),
        (vec![b"QPAUSE", b"q", b"extra"], "ERR wrong number of arguments"),
        (vec![b"QDEL", b"q", b"extra"], "ERR wrong number of arguments"),
    ];
    for (args, want) in &bad {
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(&a[..a.len().min(20)]).into())
            .collect();
        let e = expect_err(cmd.query::<Value>(&mut con));
        assert!(e.starts_with(want), "{shown:?}: got {e:?}, want {want:?}…");
        // The connection is still usable, and nothing changed.
        let pong: String = redis::cmd("PING").query(&mut con).unwrap();
        assert_eq!(pong, "PONG");
        assert_eq!(snapshot(&mut con), before, "{shown:?} changed something");
    }
    // The limit itself is allowed.
    push(&mut con, "q", &big[..1000], &[]);
}

#[test]
fn an_expired_lease_with_no_retries_left_goes_dead() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "once", b"job", &["RETRIES", "0"]);
    pull(&mut con, "once", &["LEASE", "200"]).unwrap();
    wait_for("the job to go dead", Duration::from_secs(20), || {
        (dlq_len(&mut con, "once") == 1).then_some(())
    });
    assert_eq!(state(&mut con, "once", id).as_deref(), Some("dead"));
    let s = stats(&mut con, "once");
    assert_eq!(
        (s["expired_leases"], s["dead"], s["waiting"], s["active"]),
        (1, 1, 0, 0)
    );
    assert_eq!(pull(&mut con, "once", &[]), None);
}

#[test]
fn acks_and_cancels_count_each_job_once_and_acks_are_all_or_nothing() {
    let server = Server::start();
    let mut con = server.client();
    let a = push(&mut con, "dup", b"a", &[]);
    let b = push(&mut con, "dup", b"b", &[]);
    let c = push(&mut con, "dup", b"c", &[]);
    pull(&mut con, "dup", &[]).unwrap();
    // b is waiting, not active: the whole ack is refused, a stays active.
    let e = expect_err(redis::cmd("QACK").arg("dup").arg(a).arg(b).query::<i64>(&mut con));
    assert!(e.starts_with("NOJOB"), "{e}");
    assert_eq!(state(&mut con, "dup", a).as_deref(), Some("active"));
    assert_eq!(stats(&mut con, "dup")["acked"], 0);
    assert_eq!(ack(&mut con, "dup", &[a, a, a]), 1, "one job acked once");
    let n: i64 = redis::cmd("QCANCEL")
        .arg("dup")
        .arg(b)
        .arg(b)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1, "one job cancelled once");
    assert_eq!(qlen(&mut con, "dup"), 1);
    assert_eq!(state(&mut con, "dup", c).as_deref(), Some("waiting"));
    assert_eq!(stats(&mut con, "dup")["acked"], 1);
}

#[test]
fn retryin_replaces_the_backoff_and_peek_shows_the_next_attempt() {
    let server = Server::start();
    let mut con = server.client();
    let id = push(&mut con, "ri", b"job", &["BACKOFF", "10"]);
    pull(&mut con, "ri", &[]).unwrap();
    let t0 = now_ms() as i64;
    let new_state: String = redis::cmd("QFAIL")
        .arg("ri")
        .arg(id)
        .arg("RETRYIN")
        .arg(50_000)
        .query(&mut con)
        .unwrap();
    let t1 = now_ms() as i64;
    assert_eq!(new_state, "delayed");
    let ready = int(&qget(&mut con, "ri", id).unwrap()["ready_at"]);
    assert!((t0 + 50_000..=t1 + 50_000).contains(&ready), "ready_at {ready}");

    let id2 = push(&mut con, "ri2", b"job", &[]);
    pull(&mut con, "ri2", &[]).unwrap();
    let _: String = redis::cmd("QFAIL")
        .arg("ri2")
        .arg(id2)
        .arg("RETRYIN")
        .arg(0)
        .query(&mut con)
        .unwrap();
    let reply: Value = redis::cmd("QPEEK").arg("ri2").query(&mut con).unwrap();
    assert_eq!(
        jobs(reply)[0].attempt,
        2,
        "QPEEK shows the attempt the next pull gets"
    );
    assert_eq!(pull(&mut con, "ri2", &[]).unwrap().attempt, 2);
}

#[test]
fn queue_names_any_bytes_but_whitespace_and_control_up_to_200() {
    let server = Server::start();
    let mut con = server.client();
    let longest = "q".repeat(200);
    for name in [longest.as_str(), "émoji-🦀", "a:b/c{d}[e]*?", "\"quoted\""] {
        let id = push(&mut con, name, b"x", &[]);
        let job = pull(&mut con, name, &[]).unwrap();
        assert_eq!((job.queue.as_str(), job.id), (name, id));
    }
    for bad in [
        "q".repeat(201),
        "a\nb".into(),
        "a\rb".into(),
        "nul\0".into(),
        "del\x7f".into(),
    ] {
        let e = expect_err(redis::cmd("QPUSH").arg(&bad).arg("x").query::<i64>(&mut con));
        assert!(e.starts_with("ERR invalid queue name"), "{bad:?}: {e}");
    }
    assert_eq!(scan_all(&mut con, None, 100).len(), 4);
}

#[test]
fn extreme_priorities_and_options_shared_by_a_batch() {
    let server = Server::start();
    let mut con = server.client();
    let low = push(&mut con, "x", b"low", &["PRIORITY", &i64::MIN.to_string()]);
    let high = push(&mut con, "x", b"high", &["PRIORITY", &i64::MAX.to_string()]);
    let mid: Vec<u64> = redis::cmd("QMPUSH")
        .arg("x")
        .arg(2)
        .arg("m1")
        .arg("m2")
        .arg("PRIORITY")
        .arg(1)
        .query(&mut con)
        .unwrap();
    let later: Vec<u64> = redis::cmd("QMPUSH")
        .arg("x")
        .arg(2)
        .arg("d1")
        .arg("d2")
        .arg("DELAY")
        .arg(600_000)
        .arg("PRIORITY")
        .arg(99)
        .query(&mut con)
        .unwrap();
    assert_eq!(stats(&mut con, "x")["delayed"], 2);
    for id in &later {
        let f = qget(&mut con, "x", *id).unwrap();
        assert_eq!(
            (text(&f["state"]), int(&f["priority"])),
            ("delayed".to_owned(), 99)
        );
    }
    let reply: Value = redis::cmd("QPULL")
        .arg("x")
        .arg("COUNT")
        .arg(10)
        .query(&mut con)
        .unwrap();
    let order: Vec<u64> = jobs(reply).into_iter().map(|j| j.id).collect();
    assert_eq!(order, vec![high, mid[0], mid[1], low]);
}

#[test]
fn dlq_list_is_oldest_first_and_counted() {
    let server = Server::start();
    let mut con = server.client();
    let ids = dead_jobs(&mut con, "dl", 3);
    let list: Value = redis::cmd("QDLQ")
        .arg("LIST")
        .arg("dl")
        .arg("COUNT")
        .arg(2)
        .query(&mut con)
        .unwrap();
    let Value::Array(items) = list else {
        panic!("{list:?}")
    };
    let listed: Vec<i64> = items
        .iter()
        .map(|item| match item {
            Value::Array(parts) => {
                assert_eq!(parts.len(), 5);
                assert_eq!(text(&parts[4]), "e");
                int(&parts[1])
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(listed, vec![ids[0] as i64, ids[1] as i64]);
    // A waiting job is not dead: neither requeued nor purged.
    let waiting = push(&mut con, "dl", b"w", &[]);
    let n: i64 = redis::cmd("QDLQ")
        .arg("PURGE")
        .arg("dl")
        .arg(waiting)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = redis::cmd("QDLQ")
        .arg("REQUEUE")
        .arg("dl")
        .arg(waiting)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(state(&mut con, "dl", waiting).as_deref(), Some("waiting"));
}

#[test]
fn scan_match_understands_redis_globs() {
    let server = Server::start();
    let mut con = server.client();
    for name in ["job:a", "job:b", "job:c1", "JOB:a", "jobs", "x*y", "xzy"] {
        push(&mut con, name, b"x", &[]);
    }
    let matching = |con: &mut redis::Connection, p: &str| -> BTreeSet<String> {
        scan_all(con, Some(p), 3).into_iter().collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(matching(&mut con, "job:?"), set(&["job:a", "job:b"]));
    assert_eq!(matching(&mut con, "job:[ac]*"), set(&["job:a", "job:c1"]));
    assert_eq!(matching(&mut con, "job:[^a]"), set(&["job:b"]));
    assert_eq!(
        matching(&mut con, "job*"),
        set(&["job:a", "job:b", "job:c1", "jobs"])
    );
    assert_eq!(matching(&mut con, "x\\*y"), set(&["x*y"]));
    assert_eq!(
        matching(&mut con, "*"),
        set(&["job:a", "job:b", "job:c1", "JOB:a", "jobs", "x*y", "xzy"])
    );
}

#[test]
fn resp3_clients_read_the_same_jobs_and_maps() {
    let server = Server::start();
    let mut con = server.client3();
    let id = push(&mut con, "r3", b"payload", &["PRIORITY", "2"]);
    let reply: Value = redis::cmd("QGET").arg("r3").arg(id).query(&mut con).unwrap();
    assert!(matches!(reply, Value::Map(_)), "{reply:?}");
    let f = fields(reply);
    assert_eq!(
        (text(&f["state"]), int(&f["priority"])),
        ("waiting".to_owned(), 2)
    );
    let job = pull(&mut con, "r3", &[]).unwrap();
    assert_eq!(
        (job.id, job.payload.as_slice(), job.attempt),
        (id, &b"payload"[..], 1)
    );
    assert_eq!(pull(&mut con, "r3", &[]), None);
    assert_eq!(ack(&mut con, "r3", &[id]), 1);
}

#[test]
fn oldest_waiting_age_follows_the_oldest_waiting_job() {
    let server = Server::start();
    let mut con = server.client();
    assert_eq!(stats(&mut con, "age")["oldest_waiting_age_ms"], 0);
    let t0 = now_ms() as i64;
    push(&mut con, "age", b"old", &[]);
    let t1 = now_ms() as i64;
    std::thread::sleep(Duration::from_millis(150));
    push(&mut con, "age", b"young", &["PRIORITY", "9"]);
    let t2 = now_ms() as i64;
    let age = stats(&mut con, "age")["oldest_waiting_age_ms"];
    let t3 = now_ms() as i64;
    // The oldest by push time, whatever its priority.
    assert!(
        (t2 - t1..=t3 - t0).contains(&age),
        "age {age} not in [{}, {}]",
        t2 - t1,
        t3 - t0
    );
    while pull(&mut con, "age", &[]).is_some() {}
    assert_eq!(stats(&mut con, "age")["oldest_waiting_age_ms"], 0, "none waits");
}
