//! A stopped server comes back with exactly the state it had: every queue,
//! job, lease, dead letter, pause and counter, and ids that keep growing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use redis::Value;

/// The queues the state is built in.
const QUEUES: [&str; 5] = ["r:alpha", "r:beta", "r:gamma", "r:epsilon", "r:deleted"];

/// Everything observable about the state, except ages that grow with the
/// clock alone.
#[derive(Debug, PartialEq)]
struct Capture {
    scan: Vec<String>,
    stats: BTreeMap<String, BTreeMap<String, i64>>,
    lens: BTreeMap<String, i64>,
    peeks: BTreeMap<String, Value>,
    dead: BTreeMap<String, Value>,
    jobs: BTreeMap<u64, Option<BTreeMap<String, Value>>>,
}

fn capture(con: &mut redis::Connection, ids: &[(&str, u64)]) -> Capture {
    let mut c = Capture {
        scan: scan_all(con, None, 2),
        stats: BTreeMap::new(),
        lens: BTreeMap::new(),
        peeks: BTreeMap::new(),
        dead: BTreeMap::new(),
        jobs: BTreeMap::new(),
    };
    for q in QUEUES {
        c.stats.insert(q.into(), stable_stats(con, q));
        c.lens.insert(q.into(), qlen(con, q));
        c.peeks.insert(
            q.into(),
            redis::cmd("QPEEK")
                .arg(q)
                .arg("COUNT")
                .arg(100)
                .query(con)
                .unwrap(),
        );
        c.dead.insert(
            q.into(),
            redis::cmd("QDLQ").arg("LIST").arg(q).query(con).unwrap(),
        );
    }
    for &(q, id) in ids {
        c.jobs.insert(id, qget(con, q, id));
    }
    c
}

fn fail(con: &mut redis::Connection, queue: &str, id: u64, opts: &[&str]) -> String {
    redis::cmd("QFAIL")
        .arg(queue)
        .arg(id)
        .arg(opts)
        .query(con)
        .unwrap()
}

#[test]
fn sigterm_then_restart_keeps_every_job_and_counter() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let mut ids: Vec<(&str, u64)> = Vec::new();

    // alpha: waiting jobs of several priorities, a delayed one, a retrying
    // one (delayed by its backoff), with binary payloads.
    for (i, priority) in [0, 5, -1, 5, 0, 10].into_iter().enumerate() {
        let payload = format!("alpha {i}\r\n\0");
        let id = push(
            &mut con,
            "r:alpha",
            payload.as_bytes(),
            &["PRIORITY", &priority.to_string()],
        );
        ids.push(("r:alpha", id));
    }
    ids.push((
        "r:alpha",
        push(
            &mut con,
            "r:alpha",
            b"delayed",
            &["DELAY", "600000", "PRIORITY", "3"],
        ),
    ));
    let retrying = push(
        &mut con,
        "r:beta",
        b"retrying",
        &["BACKOFF", "600000", "RETRIES", "5"],
    );
    ids.push(("r:beta", retrying));
    assert_eq!(pull(&mut con, "r:beta", &[]).unwrap().id, retrying);
    assert_eq!(
        fail(&mut con, "r:beta", retrying, &["ERROR", "try later"]),
        "delayed"
    );

    // beta: an active job on a long lease, dead jobs with their errors, a
    // job released with SILENT.
    let active = push(&mut con, "r:beta", b"active", &["LEASE", "600000"]);
    ids.push(("r:beta", active));
    assert_eq!(pull(&mut con, "r:beta", &[]).unwrap().id, active);
    for (n, how) in [(0, "plain"), (1, "fatal")] {
        let id = push(
            &mut con,
            "r:beta",
            format!("dead {n}").as_bytes(),
            &["RETRIES", "0"],
        );
        ids.push(("r:beta", id));
        assert_eq!(pull(&mut con, "r:beta", &[]).unwrap().id, id);
        let mut opts = vec!["ERROR", "boom \u{e9}"];
        if how == "fatal" {
            opts.push("FATAL");
        }
        assert_eq!(fail(&mut con, "r:beta", id, &opts), "dead");
    }
    let silent = push(&mut con, "r:beta", b"silent", &[]);
    ids.push(("r:beta", silent));
    pull(&mut con, "r:beta", &[]).unwrap();
    assert_eq!(fail(&mut con, "r:beta", silent, &["SILENT"]), "waiting");

    // gamma: paused, with jobs.
    for i in 0..3 {
        ids.push((
            "r:gamma",
            push(&mut con, "r:gamma", format!("g{i}").as_bytes(), &[]),
        ));
    }
    let _: String = redis::cmd("QPAUSE").arg("r:gamma").query(&mut con).unwrap();

    // deleted: must not come back.
    ids.push(("r:deleted", push(&mut con, "r:deleted", b"x", &[])));
    let _: i64 = redis::cmd("QDEL").arg("r:deleted").query(&mut con).unwrap();

    // epsilon: the highest id of all, acked before the stop.
    let highest = push(&mut con, "r:epsilon", b"last", &[]);
    ids.push(("r:epsilon", highest));
    assert_eq!(pull(&mut con, "r:epsilon", &[]).unwrap().id, highest);
    assert_eq!(ack(&mut con, "r:epsilon", &[highest]), 1);

    let before = capture(&mut con, &ids);
    // The capture sees what was built (a capture of nothing would match too).
    assert_eq!(before.scan.len(), 4, "{:?}", before.scan);
    assert_eq!(before.stats["r:beta"]["dead"], 2);
    assert_eq!(before.stats["r:beta"]["active"], 1);
    assert_eq!(before.stats["r:gamma"]["paused"], 1);
    assert_eq!(before.stats["r:epsilon"]["acked"], 1);
    assert_eq!(
        before.jobs.values().filter(|j| j.is_some()).count(),
        ids.len() - 2
    );

    drop(con);
    server.stop();
    let server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let after = capture(&mut con, &ids);
    assert_eq!(after, before);

    // Ids continue above every old one, the acked highest included.
    let next = push(&mut con, "r:new", b"new", &[]);
    assert!(
        next > highest,
        "id {next} reused after restart (highest was {highest})"
    );
    // The state still works: the active job is still leased to its
    // attempt, the paused queue still holds.
    let n: i64 = redis::cmd("QACK")
        .arg("r:beta")
        .arg(active)
        .arg("ATTEMPT")
        .arg(1)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(pull(&mut con, "r:gamma", &[]), None);
    assert_eq!(pull(&mut con, "r:alpha", &[]).unwrap().payload, b"alpha 5\r\n\0");
    let silent_job = pull(&mut con, "r:beta", &[]).unwrap();
    assert_eq!((silent_job.id, silent_job.attempt), (silent, 1));
}

#[test]
fn shutdown_command_commits_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let id = push(&mut con, "s", b"kept", &[]);
    // No reply: the connection closes.
    let _ = redis::cmd("SHUTDOWN").query::<Value>(&mut con);
    let status = server.wait_exit();
    assert!(status.success(), "SHUTDOWN exited with {status}");
    // The log says why it stopped (read by a thread: poll for it).
    wait_for("the stop's reason in the log", Duration::from_secs(10), || {
        server.log().contains("stopping: SHUTDOWN").then_some(())
    });
    let server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    assert_eq!(pull(&mut con, "s", &[]).unwrap().id, id);
    assert!(push(&mut con, "s", b"next", &[]) > id);
}

#[test]
fn restarts_under_every_fsync_policy_keep_acknowledged_work() {
    for fsync in ["always", "everysec", "no"] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(dir.path(), &["--fsync", fsync]);
        let mut con = server.client();
        let ids: Vec<u64> = (0..100)
            .map(|i| push(&mut con, "f", format!("{i}").as_bytes(), &[]))
            .collect();
        assert_eq!(pull(&mut con, "f", &[]).unwrap().id, ids[0]);
        assert_eq!(ack(&mut con, "f", &[ids[0]]), 1);
        drop(con);
        server.stop();
        let server = Server::start_in(dir.path(), &["--fsync", fsync]);
        let mut con = server.client();
        assert_eq!(qlen(&mut con, "f"), 99, "fsync {fsync}");
        assert_eq!(qget(&mut con, "f", ids[0]), None, "fsync {fsync}");
        assert_eq!(
            pull(&mut con, "f", &[]).unwrap().id,
            ids[1],
            "fsync {fsync}: FIFO across restarts"
        );
    }
}

#[test]
fn a_lease_that_runs_out_while_stopped_redelivers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let id = push(&mut con, "l", b"job", &[]);
    let pulled_at = now_ms();
    assert_eq!(pull(&mut con, "l", &["LEASE", "300"]).unwrap().attempt, 1);
    drop(con);
    server.stop();
    // Make sure the lease is over before the server is back.
    while now_ms() < pulled_at + 400 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let job = wait_for("the expired job", std::time::Duration::from_secs(20), || {
        pull(&mut con, "l", &[])
    });
    assert_eq!((job.id, job.attempt), (id, 2));
    assert_eq!(stats(&mut con, "l")["expired_leases"], 1);
}

#[test]
fn a_queue_deleted_and_recreated_comes_back_new() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let old = push(&mut con, "reborn", b"old", &[]);
    push(&mut con, "reborn", b"old2", &[]);
    let _: i64 = redis::cmd("QDEL").arg("reborn").query(&mut con).unwrap();
    let new = push(&mut con, "reborn", b"new", &[]);
    let before = (stable_stats(&mut con, "reborn"), scan_all(&mut con, None, 10));
    assert_eq!(
        before.0["pushed"], 1,
        "a recreated queue starts its counters anew"
    );
    drop(con);
    server.stop();
    let server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    assert_eq!(
        (stable_stats(&mut con, "reborn"), scan_all(&mut con, None, 10)),
        before
    );
    assert_eq!(qget(&mut con, "reborn", old), None);
    assert_eq!(pull(&mut con, "reborn", &[]).unwrap().id, new);
    assert_eq!(pull(&mut con, "reborn", &[]), None);
}

#[test]
fn sigterm_with_blocked_and_idle_clients_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    let id = push(&mut con, "t", b"kept", &[]);
    let mut blocked = server.raw();
    blocked.send(&resp(&[b"QPULL", b"nothing", b"BLOCK", b"0"]));
    wait_blocked(&mut con, 1);
    let _idle = server.raw();
    server.stop();
    // The blocked client is let go: its connection closes.
    let (replies, _) = blocked.replies_until_close();
    assert!(replies.iter().all(|r| r == b"*-1\r\n"), "{replies:?}");
    let server = Server::start_in(dir.path(), &[]);
    let mut con = server.client();
    assert_eq!(pull(&mut con, "t", &[]).unwrap().id, id);
}

/// BGSAVE writes a copy the server can be restored from while it keeps
/// serving: the copy has everything acknowledged before the command and
/// nothing acknowledged after the copy was written.
#[test]
fn bgsave_copy_restores_the_state_it_was_taken_at() {
    let mut server = Server::start();
    let mut con = server.client();
    let mut ids: Vec<(&str, u64)> = Vec::new();
    for i in 0..200 {
        let payload = format!("job {i}");
        ids.push(("r:alpha", push(&mut con, "r:alpha", payload.as_bytes(), &[])));
    }
    // Leases and acks: pulled jobs stay active in the copy, acked ones gone.
    let pulled: Vec<u64> = (0..5)
        .map(|_| pull(&mut con, "r:alpha", &["LEASE", "600000"]).unwrap().id)
        .collect();
    assert_eq!(ack(&mut con, "r:alpha", &pulled[..2]), 2);
    let dead = push(&mut con, "r:beta", b"poison", &["RETRIES", "0"]);
    ids.push(("r:beta", dead));
    assert_eq!(pull(&mut con, "r:beta", &[]).unwrap().id, dead);
    assert_eq!(fail(&mut con, "r:beta", dead, &["ERROR", "bad input"]), "dead");
    let before = capture(&mut con, &ids);

    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    let copy = server.dir.join("backup").join("data.mdb");
    wait_for("the backup file", Duration::from_secs(60), || {
        copy.exists().then_some(())
    });
    // After the copy: a push and an ack it must not hold.
    let later = push(&mut con, "r:alpha", b"after the backup", &[]);
    assert_eq!(ack(&mut con, "r:alpha", &pulled[2..3]), 1);
    let persistence = fields_of_info(&mut con);
    assert_eq!(persistence["rdb_last_bgsave_status"], "ok");
    assert!(persistence["backup_last_bytes"].parse::<u64>().unwrap() > 0);
    let lastsave: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(
        (lastsave - (now_ms() / 1000) as i64).abs() <= 60,
        "LASTSAVE {lastsave}"
    );

    let restored_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored_dir.path().join("data.mdb")).unwrap();

    // Redis's forms: SCHEDULE is accepted (and writes a newer copy, which
    // is why the one above was taken out first); anything else is an error.
    let scheduled: String = redis::cmd("BGSAVE").arg("SCHEDULE").query(&mut con).unwrap();
    assert!(scheduled.starts_with("Background saving "), "{scheduled}");
    assert!(expect_err(redis::cmd("BGSAVE").arg("NOW").query::<Value>(&mut con)).contains("syntax"));
    server.stop();
    let mut restored = Server::start_in(restored_dir.path(), &[]);
    let mut con = restored.client();
    assert_eq!(capture(&mut con, &ids), before);
    assert_eq!(
        qget(&mut con, "r:alpha", later),
        None,
        "the push after the copy is not in it"
    );
    let newest = ids.iter().map(|&(_, id)| id).max().unwrap();
    let next = push(&mut con, "r:alpha", b"new", &[]);
    assert!(
        next > newest,
        "ids continue past the copy's: {next} after {newest}"
    );
    restored.stop();
}

/// `INFO persistence` as field → value, once the backup thread has
/// recorded its result (the file appears just before).
fn fields_of_info(con: &mut redis::Connection) -> BTreeMap<String, String> {
    wait_for("the backup to finish", Duration::from_secs(60), || {
        let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        let fields: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (fields["rdb_bgsave_in_progress"] == "0").then_some(fields)
    })
}
