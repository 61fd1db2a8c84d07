//! The wire: RESP2 and RESP3 replies byte for byte, inline commands,
//! binary-safe payloads, AUTH, requests split at every byte, and garbage
//! that must cost one connection at most, never the server.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use redis::Value;

// ----- a reply as a tree, for comparing replies that carry varying ids --------

#[derive(Clone, Debug, PartialEq)]
enum Frame {
    /// `+`, `-`, `#`, `,`, `(`, `_` and friends: kind and line.
    Line(u8, Vec<u8>),
    /// `:`.
    Int(i64),
    /// `$`, `!`, `=`: kind and bytes (`None`: null).
    Bulk(u8, Option<Vec<u8>>),
    /// `*`, `~`, `>`, `%` (a map's keys and values alternate).
    Agg(u8, Option<Vec<Frame>>),
}

/// Parses one complete reply (checked by `frame_len`).
fn parse(buf: &[u8]) -> Frame {
    let (frame, used) = parse_at(buf, 0);
    assert_eq!(used, buf.len(), "trailing bytes after a reply");
    frame
}

fn parse_at(buf: &[u8], at: usize) -> (Frame, usize) {
    let kind = buf[at];
    let cr = at + buf[at..].windows(2).position(|w| w == b"\r\n").expect("CRLF");
    let line = buf[at + 1..cr].to_vec();
    let after = cr + 2;
    let n = || -> i64 { std::str::from_utf8(&line).unwrap().parse().unwrap() };
    match kind {
        b':' => (Frame::Int(n()), after),
        b'$' | b'!' | b'=' => match usize::try_from(n()) {
            Err(_) => (Frame::Bulk(kind, None), after),
            Ok(len) => (
                Frame::Bulk(kind, Some(buf[after..after + len].to_vec())),
                after + len + 2,
            ),
        },
        b'*' | b'~' | b'>' | b'%' => match usize::try_from(n()) {
            Err(_) => (Frame::Agg(kind, None), after),
            Ok(len) => {
                let items = if kind == b'%' { 2 * len } else { len };
                let mut at = after;
                let mut out = Vec::with_capacity(items);
                for _ in 0..items {
                    let (item, next) = parse_at(buf, at);
                    out.push(item);
                    at = next;
                }
                (Frame::Agg(kind, Some(out)), at)
            }
        },
        _ => (Frame::Line(kind, line), after),
    }
}

/// Hides what differs between two runs of the same requests: the job id
/// `job`, and the connection id in HELLO's map.
fn normalize(frame: Frame, job: i64) -> Frame {
    match frame {
        Frame::Int(n) if n == job => Frame::Int(-1),
        Frame::Agg(b'%', Some(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                let v = if k == Frame::Bulk(b'$', Some(b"id".to_vec())) {
                    Frame::Int(-2)
                } else {
                    normalize(v, job)
                };
                out.push(normalize(k, job));
                out.push(v);
            }
            Frame::Agg(b'%', Some(out))
        }
        Frame::Agg(kind, Some(items)) => {
            Frame::Agg(kind, Some(items.into_iter().map(|f| normalize(f, job)).collect()))
        }
        other => other,
    }
}

fn header_count(reply: &[u8]) -> usize {
    let cr = reply.iter().position(|&b| b == b'\r').unwrap();
    std::str::from_utf8(&reply[1..cr]).unwrap().parse().unwrap()
}

fn is_error(reply: &[u8]) -> bool {
    reply.first() == Some(&b'-')
}

// ----- RESP2 and RESP3 ----------------------------------------------------------

#[test]
fn hello_3_switches_to_resp3_and_describes_the_server() {
    let server = Server::start();
    let mut con = server.client3();
    let reply: Value = redis::cmd("HELLO").arg(3).query(&mut con).unwrap();
    assert!(matches!(reply, Value::Map(_)), "HELLO 3 answers a map: {reply:?}");
    let f = fields(reply);
    assert_eq!(int(&f["proto"]), 3);
    assert_eq!(text(&f["server"]), "quern");

    let mut con = server.client();
    let reply: Value = redis::cmd("HELLO").arg(2).query(&mut con).unwrap();
    assert!(
        matches!(reply, Value::Array(_)),
        "HELLO 2 answers a flat array: {reply:?}"
    );
    assert_eq!(int(&fields(reply)["proto"]), 2);

    let mut raw = server.raw();
    let reply = raw.cmd(&[b"HELLO", b"3"]);
    assert_eq!(reply[0], b'%', "{}", String::from_utf8_lossy(&reply));
    let reply = raw.cmd(&[b"HELLO", b"2"]);
    assert_eq!(reply[0], b'*', "{}", String::from_utf8_lossy(&reply));
}

#[test]
fn maps_and_nulls_in_each_protocol() {
    let server = Server::start();
    let mut raw = server.raw();
    raw.cmd(&[b"QPUSH", b"q", b"x"]);

    // RESP2: QSTATS is a flat array, a timed-out pull `*-1`, a missing job `$-1`.
    let resp2 = raw.cmd(&[b"QSTATS", b"q"]);
    assert_eq!(resp2[0], b'*', "{}", String::from_utf8_lossy(&resp2));
    assert_eq!(raw.cmd(&[b"QPULL", b"none", b"BLOCK", b"10"]), b"*-1\r\n");
    assert_eq!(raw.cmd(&[b"QPULL", b"none"]), b"*-1\r\n");
    assert_eq!(raw.cmd(&[b"QGET", b"q", b"999"]), b"$-1\r\n");

    // RESP3: a map, and `_` for every null.
    let hello = raw.cmd(&[b"HELLO", b"3"]);
    assert_eq!(hello[0], b'%');
    let resp3 = raw.cmd(&[b"QSTATS", b"q"]);
    assert_eq!(resp3[0], b'%', "{}", String::from_utf8_lossy(&resp3));
    assert_eq!(
        header_count(&resp2),
        2 * header_count(&resp3),
        "as many fields in both"
    );
    assert!(header_count(&resp3) >= 12);
    assert_eq!(raw.cmd(&[b"QPULL", b"none", b"BLOCK", b"10"]), b"_\r\n");
    assert_eq!(raw.cmd(&[b"QPULL", b"none"]), b"_\r\n");
    assert_eq!(raw.cmd(&[b"QGET", b"q", b"999"]), b"_\r\n");
    let get = raw.cmd(&[b"QGET", b"q", b"1"]);
    assert_eq!(get[0], b'%');

    // The same through redis-rs.
    let mut con = server.client3();
    let reply: Value = redis::cmd("QSTATS").arg("q").query(&mut con).unwrap();
    assert!(matches!(reply, Value::Map(_)), "{reply:?}");
    assert_eq!(fields(reply)["waiting"], Value::Int(1));
    let reply: Value = redis::cmd("QPULL")
        .arg("none")
        .arg("BLOCK")
        .arg(10)
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, Value::Nil);
}

#[test]
fn hello_with_an_unknown_protocol_is_noproto() {
    let server = Server::start();
    let mut raw = server.raw();
    let reply = raw.cmd(&[b"HELLO", b"4"]);
    assert!(
        reply.starts_with(b"-NOPROTO"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // Still RESP2.
    assert_eq!(raw.cmd(&[b"QPULL", b"none"]), b"*-1\r\n");
    let mut con = server.client();
    let e = expect_err(redis::cmd("HELLO").arg(4).query::<Value>(&mut con));
    assert!(e.starts_with("NOPROTO"), "{e}");
}

#[test]
fn inline_commands() {
    let server = Server::start();
    let mut raw = server.raw();
    assert_eq!(raw.call(b"PING\r\n"), b"+PONG\r\n");
    assert_eq!(raw.call(b"ping\n"), b"+PONG\r\n");
    assert_eq!(raw.call(b"ECHO \"a b\"\r\n"), b"$3\r\na b\r\n");
    assert_eq!(raw.call(b"ECHO 'c  d'\r\n"), b"$4\r\nc  d\r\n");
    let id = raw.call(b"QPUSH inline \"x\\r\\ny\"\r\n");
    assert_eq!(id[0], b':');
    let pulled = raw.call(b"QPULL inline\r\n");
    let want = format!(
        "*1\r\n*4\r\n$6\r\ninline\r\n{}$4\r\nx\r\ny\r\n:1\r\n",
        String::from_utf8_lossy(&id)
    );
    assert_eq!(String::from_utf8_lossy(&pulled), want);
    // Blank lines are skipped, as in Redis.
    assert_eq!(raw.call(b"\r\n\r\nPING\r\n"), b"+PONG\r\n");
}

#[test]
fn binary_empty_and_large_payloads_round_trip() {
    let server = Server::start();
    let mut con = server.client();
    let mut rng = Rng::from_env("binary_payloads");
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let big = rng.bytes(1 << 20);
    let payloads: Vec<Vec<u8>> = vec![
        b"a\r\nb\0c\r\n".to_vec(),
        b"\r\n".to_vec(),
        b"\0".to_vec(),
        b"$5\r\n*1\r\n-ERR\r\n".to_vec(),
        Vec::new(),
        every_byte,
        big,
    ];
    for payload in &payloads {
        let id = push(&mut con, "bin", payload, &[]);
        let job = pull(&mut con, "bin", &[]).unwrap();
        assert_eq!(job.id, id);
        assert!(
            job.payload == *payload,
            "payload of {} bytes changed",
            payload.len()
        );
        assert_eq!(bytes(&qget(&mut con, "bin", id).unwrap()["payload"]), *payload);
        assert_eq!(ack(&mut con, "bin", &[id]), 1);
    }
    // The empty payload, byte for byte.
    let mut raw = server.raw();
    let id = raw.cmd(&[b"QPUSH", b"empty", b""]);
    let pulled = raw.cmd(&[b"QPULL", b"empty"]);
    let want = format!(
        "*1\r\n*4\r\n$5\r\nempty\r\n{}$0\r\n\r\n:1\r\n",
        String::from_utf8_lossy(&id)
    );
    assert_eq!(String::from_utf8_lossy(&pulled), want);
}

#[test]
fn unknown_command_is_worded_as_redis_words_it() {
    let server = Server::start();
    let mut raw = server.raw();
    assert_eq!(
        String::from_utf8(raw.cmd(&[b"foo", b"a", b"b"])).unwrap(),
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        String::from_utf8(raw.cmd(&[b"foo"])).unwrap(),
        "-ERR unknown command 'foo', with args beginning with: \r\n"
    );
    // A name with CR LF in it cannot break the reply's framing.
    let reply = raw.cmd(&[b"f\r\noo", b"x"]);
    assert!(is_error(&reply));
    assert_eq!(
        reply.iter().filter(|&&b| b == b'\n').count(),
        1,
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(raw.cmd(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn auth_is_required_when_a_password_is_set() {
    let server = Server::start_with(&["--requirepass", "s3cret"]);
    let mut raw = server.raw();
    for request in [&[&b"QPUSH"[..], b"q", b"x"][..], &[b"QLEN", b"q"], &[b"PING"]] {
        let reply = raw.cmd(request);
        assert!(
            reply.starts_with(b"-NOAUTH"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    let reply = raw.cmd(&[b"HELLO", b"3"]);
    assert!(
        reply.starts_with(b"-NOAUTH"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    for request in [
        &[&b"AUTH"[..], b"wrong"][..],
        &[b"AUTH", b"default", b"wrong"],
        &[b"AUTH", b"bob", b"s3cret"],
    ] {
        let reply = raw.cmd(request);
        assert!(
            reply.starts_with(b"-WRONGPASS"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    assert_eq!(raw.cmd(&[b"AUTH", b"s3cret"]), b"+OK\r\n");
    assert_eq!(
        raw.cmd(&[b"QLEN", b"q"]),
        b":0\r\n",
        "the refused QPUSH pushed nothing"
    );
    assert_eq!(raw.cmd(&[b"PING"]), b"+PONG\r\n");

    // HELLO 3 AUTH on a fresh connection.
    let mut raw = server.raw();
    let reply = raw.cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret"]);
    assert_eq!(reply[0], b'%', "{}", String::from_utf8_lossy(&reply));
    assert_eq!(raw.cmd(&[b"QLEN", b"q"]), b":0\r\n");

    // redis-rs without, then with, the password, in both protocols.
    let mut con = server.client();
    let e = expect_err(redis::cmd("QLEN").arg("q").query::<i64>(&mut con));
    assert!(e.starts_with("NOAUTH"), "{e}");
    for url in [
        format!("redis://:s3cret@127.0.0.1:{}/", server.port),
        format!("redis://default:s3cret@127.0.0.1:{}/?protocol=resp3", server.port),
    ] {
        let mut con = connect(&url);
        let id = push(&mut con, "q", b"x", &[]);
        assert_eq!(pull(&mut con, "q", &[]).unwrap().id, id);
    }
}

// ----- a request split at every byte -------------------------------------------

#[test]
fn requests_split_at_every_byte_get_the_same_replies() {
    let server = Server::start_with(&["--fsync", "no"]);
    let mut con = server.client();
    // Job ids above the small numbers the replies also carry (attempt 1,
    // proto 3), so that normalizing the id hides nothing else.
    for _ in 0..5 {
        push(&mut con, "warmup", b"x", &[]);
    }
    let payload: &[u8] = b"a\r\nb\0c$3\r\n*1\r\n";
    let mut input = Vec::new();
    let requests: Vec<Vec<u8>> = vec![
        resp(&[b"QPUSH", b"split", payload, b"LEASE", b"600000"]),
        resp(&[b"QPULL", b"split"]),
        resp(&[b"PING"]),
        resp(&[b"ECHO", b"x\r\ny"]),
        resp(&[b"HELLO", b"3"]),
        b"PING inline\r\n".to_vec(),
        resp(&[b"QPULL", b"split"]),
        b"QLEN split\r\n".to_vec(),
    ];
    for r in &requests {
        input.extend_from_slice(r);
    }
    let run = |cut: Option<usize>| -> Vec<Frame> {
        let mut raw = server.raw();
        match cut {
            None => raw.send(&input),
            Some(cut) => {
                raw.send(&input[..cut]);
                thread::sleep(Duration::from_millis(2));
                raw.send(&input[cut..]);
            }
        }
        let replies: Vec<Frame> = (0..requests.len()).map(|_| parse(&raw.reply())).collect();
        let Frame::Int(job) = replies[0] else {
            panic!("QPUSH answered {:?}", replies[0]);
        };
        replies.into_iter().map(|f| normalize(f, job)).collect()
    };
    let whole = run(None);
    assert!(
        matches!(&whole[1], Frame::Agg(b'*', Some(jobs)) if jobs.len() == 1),
        "{:?}",
        whole[1]
    );
    assert_eq!(whole[2], Frame::Line(b'+', b"PONG".to_vec()));
    assert_eq!(whole[5], Frame::Bulk(b'$', Some(b"inline".to_vec())));
    assert_eq!(
        whole[6],
        Frame::Line(b'_', Vec::new()),
        "RESP3 null after HELLO 3"
    );
    assert_eq!(whole[7], Frame::Int(0));
    for cut in 1..input.len() {
        assert_eq!(run(Some(cut)), whole, "split after byte {cut} of {}", input.len());
    }
}

// ----- garbage --------------------------------------------------------------------

/// Sends `bytes` on a fresh connection and checks what comes back: only
/// protocol errors (or nothing), then the connection closes.
fn garbage_closes(server: &Server, what: &str, bytes: &[u8]) {
    let mut raw = server.raw();
    raw.send_lossy(bytes);
    let (replies, _reset) = raw.replies_until_close();
    assert!(replies.len() <= 1, "{what}: one error at most, got {replies:?}");
    for reply in replies {
        assert!(
            reply.starts_with(b"-ERR Protocol error"),
            "{what}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
}

/// The bystander: an ordinary client that must see nothing of the garbage.
fn still_served(con: &mut redis::Connection, round: &mut i64) {
    let pong: String = redis::cmd("PING").query(con).expect("bystander PING");
    assert_eq!(pong, "PONG");
    push(con, "bystander", format!("{round}").as_bytes(), &[]);
    *round += 1;
    assert_eq!(qlen(con, "bystander"), *round);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn garbage_costs_one_connection_and_never_the_server() {
    let mut server = Server::start();
    let mut bystander = server.client();
    let mut round = 0;
    still_served(&mut bystander, &mut round);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("100k nested arrays", b"*1\r\n".repeat(100_000)),
        ("negative bulk length", b"*1\r\n$-5\r\n".to_vec()),
        ("huge argument count", b"*99999999999\r\n".to_vec()),
        (
            "argument count past i64",
            b"*99999999999999999999999\r\n".to_vec(),
        ),
        ("bulk claim over the limit", b"*1\r\n$999999999\r\n".to_vec()),
        ("not a number", b"*x\r\n".to_vec()),
        ("bulk length not a number", b"*1\r\n$abc\r\n".to_vec()),
        ("integer instead of bulk", b"*2\r\n$4\r\nPING\r\n:5\r\n".to_vec()),
        ("bulk without CRLF", b"*1\r\n$3\r\nabcXY".to_vec()),
        (
            "header without end",
            b"*1".iter().chain([b'1'; 100].iter()).copied().collect(),
        ),
        ("unbalanced quotes", b"ECHO \"abc\r\n".to_vec()),
        ("inline line too long", vec![b'a'; 200_000]),
    ];
    for (what, bytes) in &cases {
        garbage_closes(&server, what, bytes);
        still_served(&mut bystander, &mut round);
    }

    // A bulk claim within the limit, then a hang-up.
    let mut raw = server.raw();
    raw.send(b"*1\r\n$999999\r\nabc");
    drop(raw);
    still_served(&mut bystander, &mut round);

    // Random bytes: whatever they parse as, only errors come back.
    let mut rng = Rng::from_env("garbage");
    for _ in 0..20 {
        let n = rng.range(1, 8192) as usize;
        let mut raw = server.raw();
        raw.send_lossy(&rng.bytes(n));
        raw.shutdown_write();
        let (replies, _) = raw.replies_until_close();
        for reply in replies {
            assert!(
                is_error(&reply),
                "random bytes got {}",
                String::from_utf8_lossy(&reply)
            );
        }
        still_served(&mut bystander, &mut round);
    }

    // Claims are not allocations: 40 connections each claiming a 16 MB
    // argument, none sending it.
    let before = rss_kib(server.pid());
    let claims: Vec<Raw> = (0..40)
        .map(|_| {
            let mut raw = server.raw();
            raw.send(b"*2\r\n$16000000\r\nabc");
            raw
        })
        .collect();
    still_served(&mut bystander, &mut round);
    let after = rss_kib(server.pid());
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} KiB to {after} KiB for claims alone"
    );
    drop(claims);

    still_served(&mut bystander, &mut round);
    assert!(server.is_running(), "the server survived");
}

#[test]
fn command_getkeys_with_a_huge_key_count_answers_at_once() {
    let mut server = Server::start();
    let mut bystander = server.client();
    let mut round = 0;
    // As many as the server has worker threads, and more.
    let mut raws: Vec<Raw> = (0..4).map(|_| server.raw()).collect();
    for raw in &mut raws {
        raw.send(&resp(&[
            b"COMMAND",
            b"GETKEYS",
            b"QMPULL",
            b"18446744073709551615",
            b"q",
        ]));
        raw.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    for raw in &mut raws {
        let reply = raw.next_reply();
        let reply = match reply {
            Ok(Some(reply)) => reply,
            other => panic!("no reply within 10 s: {other:?}"),
        };
        // Redis refuses a key count past the arguments; listing the one
        // key there is would do too.
        assert!(
            is_error(&reply) || reply == b"*1\r\n$1\r\nq\r\n",
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    still_served(&mut bystander, &mut round);
    assert!(server.is_running());
}
