//! Pipelining is the normal case: thousands of requests in one write get
//! their replies, in order, with nothing lost at buffer boundaries.

mod common;

use std::io::Write;
use std::thread;

use common::*;
use redis::Value;

const N: usize = 10_000;

#[test]
fn ten_thousand_pushes_then_mixed_pulls_and_acks() {
    let server = Server::start();
    let mut con = server.client();

    let mut pipe = redis::pipe();
    for i in 0..N {
        pipe.cmd("QPUSH").arg("bulk").arg(format!("job-{i}"));
    }
    let ids: Vec<u64> = pipe.query(&mut con).expect("10,000 QPUSH");
    assert_eq!(ids.len(), N);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase in pipeline order"
    );
    assert_eq!(qlen(&mut con, "bulk"), N as i64);

    // Half the jobs: pull one, ack it, in one pipeline of 10,000 commands.
    // FIFO order makes each QPULL's job known in advance.
    let half = N / 2;
    let mut pipe = redis::pipe();
    for &id in &ids[..half] {
        pipe.cmd("QPULL").arg("bulk");
        pipe.cmd("QACK").arg("bulk").arg(id);
    }
    let replies: Vec<Value> = pipe.query(&mut con).expect("10,000 mixed commands");
    assert_eq!(replies.len(), N);
    for (i, pair) in replies.chunks(2).enumerate() {
        let pulled = jobs(pair[0].clone());
        assert_eq!(pulled.len(), 1, "pull {i}");
        assert_eq!(pulled[0].id, ids[i], "pull {i}");
        assert_eq!(pulled[0].payload, format!("job-{i}").into_bytes());
        assert_eq!(pair[1], Value::Int(1), "ack {i}");
    }
    let s = stats(&mut con, "bulk");
    assert_eq!(
        (s["waiting"], s["active"], s["acked"], s["pushed"]),
        (half as i64, 0, half as i64, N as i64)
    );

    // The rest, mixing more kinds of command.
    let mut pipe = redis::pipe();
    for _ in 0..half / 2 {
        pipe.cmd("QPULL").arg("bulk").arg("COUNT").arg(2);
        pipe.cmd("QLEN").arg("bulk");
    }
    let replies: Vec<Value> = pipe.query(&mut con).expect("pulls and lengths");
    let mut pulled = Vec::new();
    for (i, pair) in replies.chunks(2).enumerate() {
        pulled.extend(jobs(pair[0].clone()).into_iter().map(|j| j.id));
        assert_eq!(pair[1], Value::Int((half - 2 * (i + 1)) as i64));
    }
    assert_eq!(pulled, ids[half..]);
    assert_eq!(ack(&mut con, "bulk", &pulled), half as i64);
    assert_eq!(stats(&mut con, "bulk")["acked"], N as i64);
}

#[test]
fn ten_thousand_raw_pings_in_one_write() {
    let server = Server::start();
    let mut raw = server.raw();
    let request = b"*1\r\n$4\r\nPING\r\n".repeat(N);
    // Write from another thread: the replies may fill the socket buffers
    // before the requests are all written.
    let mut writer = raw.stream.try_clone().expect("clone socket");
    let sent = thread::spawn(move || writer.write_all(&request).and_then(|_| writer.flush()));
    for i in 0..N {
        assert_eq!(raw.reply(), b"+PONG\r\n", "reply {i}");
    }
    sent.join().unwrap().expect("write 10,000 PINGs");
    // Nothing more came, and the connection still works.
    assert_eq!(raw.call(b"*2\r\n$4\r\nECHO\r\n$3\r\nend\r\n"), b"$3\r\nend\r\n");
}

#[test]
fn ten_thousand_raw_pushes_in_one_write() {
    let server = Server::start();
    let mut raw = server.raw();
    let mut request = Vec::new();
    for i in 0..N {
        request.extend(resp(&[b"QPUSH", b"raw", format!("{i}").as_bytes()]));
    }
    let mut writer = raw.stream.try_clone().expect("clone socket");
    let sent = thread::spawn(move || writer.write_all(&request).and_then(|_| writer.flush()));
    let mut last = 0;
    for i in 0..N {
        let reply = raw.reply();
        let text = String::from_utf8(reply).unwrap();
        let id: u64 = text
            .strip_prefix(':')
            .and_then(|t| t.strip_suffix("\r\n"))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("reply {i}: {text:?}"));
        assert!(id > last, "reply {i}: {id} after {last}");
        last = id;
    }
    sent.join().unwrap().expect("write");
    let mut con = server.client();
    assert_eq!(qlen(&mut con, "raw"), N as i64);
}

/// The payloads of a pipeline's pulls are read together: the replies
/// still come in order, each with its own job, across the bound on how
/// many are read at once and around other commands; a command after a
/// pull (here acking the job) runs after its payload was read.
#[test]
fn pipelined_pulls_each_get_their_own_job() {
    let server = Server::start();
    let mut con = server.client();
    let ids: Vec<u64> = (0..300)
        .map(|i| push(&mut con, "p", format!("payload-{i}").as_bytes(), &[]))
        .collect();
    let mut raw = server.raw();
    let mut request = Vec::new();
    for _ in 0..150 {
        request.extend(resp(&[b"QPULL", b"p"]));
    }
    request.extend(resp(&[b"QACK", b"p", ids[149].to_string().as_bytes()]));
    request.extend(resp(&[b"QLEN", b"p"]));
    for _ in 0..140 {
        request.extend(resp(&[b"QPULL", b"p"]));
    }
    request.extend(resp(&[b"QPULL", b"p", b"COUNT", b"20"]));
    request.extend(resp(&[b"QPULL", b"p"]));
    raw.send(&request);

    let expect_job = |raw: &mut Raw, i: usize| {
        let payload = format!("payload-{i}");
        let expected = format!(
            "*1\r\n*4\r\n$1\r\np\r\n:{}\r\n${}\r\n{payload}\r\n:1\r\n",
            ids[i],
            payload.len()
        );
        assert_eq!(
            String::from_utf8(raw.reply()).unwrap(),
            expected,
            "pull of job {i}"
        );
    };
    for i in 0..150 {
        expect_job(&mut raw, i);
    }
    assert_eq!(raw.reply(), b":1\r\n");
    assert_eq!(raw.reply(), b":150\r\n");
    for i in 150..290 {
        expect_job(&mut raw, i);
    }
    let last = String::from_utf8(raw.reply()).unwrap();
    assert!(last.starts_with("*10\r\n"), "the last ten jobs: {last}");
    assert!(last.contains("payload-299"), "{last}");
    assert_eq!(raw.reply(), b"*-1\r\n");
}
