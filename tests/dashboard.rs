//! The dashboard's JSON API, end to end: a real server with its HTTP
//! listener on a free port, RESP clients that make the state, and a small
//! HTTP/1.1 client over TCP that reads it back and acts on it. What the
//! API shows must be what QSTATS, QPEEK, QDLQ LIST and QGET show; what it
//! does must be what RESP clients then see, durably (a `kill -9` right
//! after the answer loses nothing).

mod common;

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::http::{self, Response};
use common::*;
use redis::Value;
use serde_json::{json, Value as Json};

/// The HTTP flags every server here starts with: a free port.
const HTTP: [&str; 2] = ["--http", "127.0.0.1:0"];

fn start(args: &[&str]) -> Server {
    Server::start_with(&[&HTTP[..], args].concat())
}

fn start_in(dir: &Path, args: &[&str]) -> Server {
    Server::start_in(dir, &[&HTTP[..], args].concat())
}

/// One request to the server's HTTP listener.
fn request(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let port = server.http_port.expect("the server prints its HTTP address");
    http::request(port, method, path, headers, body)
}

fn get(server: &Server, path: &str) -> Response {
    request(server, "GET", path, &[], b"")
}

/// A dashboard action, as the page sends it: POST, JSON, the action header.
fn post(server: &Server, path: &str, body: Json) -> Response {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    request(
        server,
        "POST",
        path,
        &[("X-Quern-Action", "1"), ("Content-Type", "application/json")],
        &body,
    )
}

/// The `Authorization` header value for `user:password`.
fn basic(user_password: &str) -> String {
    format!("Basic {}", STANDARD.encode(user_password))
}

// ----- RESP shorthands -------------------------------------------------------------

/// Pushes a job that goes dead at once: RETRIES 0, pulled, failed.
fn make_dead(con: &mut redis::Connection, queue: &str, payload: &[u8], error: Option<&str>) -> u64 {
    let id = push(con, queue, payload, &["RETRIES", "0"]);
    let job = pull(con, queue, &[]).expect("the job just pushed");
    assert_eq!(job.id, id, "{queue} had other jobs waiting");
    let mut fail = redis::cmd("QFAIL");
    fail.arg(queue).arg(id);
    if let Some(e) = error {
        fail.arg("ERROR").arg(e);
    }
    let state: String = fail.query(con).expect("QFAIL");
    assert_eq!(state, "dead");
    id
}

fn dead_len(con: &mut redis::Connection, queue: &str) -> i64 {
    redis::cmd("QDLQ")
        .arg("LEN")
        .arg(queue)
        .query(con)
        .expect("QDLQ LEN")
}

/// The API's stats of a queue as QSTATS names them (paused as 0/1), less
/// the age that moves with the clock.
fn api_stats(stats: &Json) -> std::collections::BTreeMap<String, i64> {
    stats
        .as_object()
        .expect("stats object")
        .iter()
        .filter(|(k, _)| *k != "oldest_waiting_age_ms")
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_i64()
                    .unwrap_or_else(|| i64::from(v.as_bool().expect("number or bool"))),
            )
        })
        .collect()
}

fn texts(v: &Json, field: &str) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {item}"))
                .to_owned()
        })
        .collect()
}

// ----- what the API shows -------------------------------------------------------------

#[test]
fn the_api_shows_the_state_resp_clients_left() {
    let server = start(&[]);
    let mut con = server.client();

    // emails: waiting jobs (one urgent, pulled first), one active, one
    // delayed, one acknowledged.
    let ann = push(&mut con, "emails", br#"{"to":"ann@example.com"}"#, &[]);
    let bob = push(&mut con, "emails", br#"{"to":"bob@example.com"}"#, &[]);
    let urgent = push(&mut con, "emails", b"urgent", &["PRIORITY", "5"]);
    let cy = push(&mut con, "emails", br#"{"to":"cy@example.com"}"#, &[]);
    assert_eq!(pull(&mut con, "emails", &[]).unwrap().id, urgent);
    assert_eq!(pull(&mut con, "emails", &[]).unwrap().id, ann);
    assert_eq!(ack(&mut con, "emails", &[ann]), 1);
    let later = push(&mut con, "emails", b"later", &["DELAY", "600000"]);
    let high = push(&mut con, "emails", b"high", &["PRIORITY", "9"]);
    // reports: dead jobs, with and without an error message.
    let r1 = make_dead(&mut con, "reports", b"r1", Some("bad input"));
    let r2 = make_dead(&mut con, "reports", b"r2", None);
    let r3 = make_dead(&mut con, "reports", b"r3", Some("schema mismatch"));
    redis::cmd("QPAUSE").arg("paused").exec(&mut con).expect("QPAUSE");

    // The queues page: every queue, in creation order, with QSTATS's numbers.
    let page = get(&server, "/api/queues").expect(200).json();
    assert_eq!(page["total"], 3);
    assert_eq!(texts(&page["queues"], "name"), ["emails", "reports", "paused"]);
    assert_eq!(texts(&page["queues"], "encoded"), ["emails", "reports", "paused"]);
    for row in page["queues"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        assert_eq!(api_stats(&row["stats"]), stable_stats(&mut con, name), "{name}");
    }
    let emails = &page["queues"][0]["stats"];
    assert_eq!(
        (
            emails["waiting"].as_u64(),
            emails["delayed"].as_u64(),
            emails["active"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(emails["acked"], 1);
    assert!(emails["oldest_waiting_age_ms"].as_u64().unwrap() < 120_000);
    assert_eq!(page["queues"][1]["stats"]["dead"], 3);
    assert_eq!(page["queues"][2]["stats"]["paused"], true);
    assert!(page["now_ms"].as_u64().unwrap().abs_diff(now_ms()) < 60_000);

    // A queue's page: its next waiting jobs in QPEEK's order, its dead
    // jobs as QDLQ LIST shows them.
    let q = get(&server, "/api/queues/emails?waiting=10").expect(200).json();
    assert_eq!(api_stats(&q["stats"]), stable_stats(&mut con, "emails"));
    let peeked = jobs(
        redis::cmd("QPEEK")
            .arg("emails")
            .arg("COUNT")
            .arg(10)
            .query(&mut con)
            .unwrap(),
    );
    let listed: Vec<(u64, u64, String)> = q["waiting_jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let id = j["id"].as_u64().unwrap();
            (
                id,
                j["attempt"].as_u64().unwrap(),
                j["payload"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(u64, u64, String)> = peeked
        .iter()
        .map(|j| (j.id, j.attempt, String::from_utf8(j.payload.clone()).unwrap()))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(listed.iter().map(|j| j.0).collect::<Vec<_>>(), [high, bob, cy]);
    assert_eq!(q["waiting_jobs"][0]["priority"], 9);
    assert_eq!(q["waiting_jobs"][1]["priority"], 0);
    assert!(q["waiting_jobs"][2]["age_ms"].as_u64().unwrap() < 120_000);
    assert_eq!(q["dead_jobs"], json!([]));

    let q = get(&server, "/api/queues/reports").expect(200).json();
    let dlq: Value = redis::cmd("QDLQ")
        .arg("LIST")
        .arg("reports")
        .query(&mut con)
        .unwrap();
    let Value::Array(dlq) = dlq else {
        panic!("QDLQ LIST: {dlq:?}")
    };
    assert_eq!(q["dead_jobs"].as_array().unwrap().len(), dlq.len());
    for (shown, listed) in q["dead_jobs"].as_array().unwrap().iter().zip(&dlq) {
        let Value::Array(parts) = listed else {
            panic!("{listed:?}")
        };
        assert_eq!(shown["id"].as_i64(), Some(int(&parts[1])));
        assert_eq!(
            shown["payload"]["text"].as_str().unwrap().as_bytes(),
            bytes(&parts[2])
        );
        assert_eq!(shown["attempt"].as_i64(), Some(int(&parts[3])));
        match &parts[4] {
            Value::Nil => assert!(shown["last_error"].is_null(), "{shown}"),
            error => assert_eq!(
                shown["last_error"]["text"].as_str().unwrap().as_bytes(),
                bytes(error)
            ),
        }
    }
    assert_eq!(
        q["dead_jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [r1, r2, r3]
    );

    // One job, as QGET shows it, in each state.
    for (queue, id, state) in [
        ("emails", urgent, "active"),
        ("emails", later, "delayed"),
        ("emails", bob, "waiting"),
        ("reports", r1, "dead"),
    ] {
        let job = get(&server, &format!("/api/queues/{queue}/jobs/{id}"))
            .expect(200)
            .json();
        let fields = qget(&mut con, queue, id).expect("QGET");
        assert_eq!(job["state"], state);
        assert_eq!(job["state"].as_str().unwrap(), text(&fields["state"]));
        assert_eq!(
            job["payload"]["text"].as_str().unwrap().as_bytes(),
            bytes(&fields["payload"])
        );
        for field in ["priority", "attempt", "retries", "backoff", "lease", "created_at"] {
            assert_eq!(
                job[field].as_i64(),
                Some(int(&fields[field])),
                "{queue} {id} {field}"
            );
        }
        for field in ["ready_at", "lease_until"] {
            match &fields[field] {
                Value::Nil => assert!(job[field].is_null(), "{queue} {id} {field}"),
                v => assert_eq!(job[field].as_i64(), Some(int(v)), "{queue} {id} {field}"),
            }
        }
        match &fields["last_error"] {
            Value::Nil => assert!(job["last_error"].is_null()),
            v => assert_eq!(job["last_error"]["text"].as_str().unwrap().as_bytes(), bytes(v)),
        }
    }

    // Lists are bounded by what the request asks, within the limit.
    let q = get(&server, "/api/queues/emails?waiting=2&dead=0")
        .expect(200)
        .json();
    assert_eq!(q["waiting_jobs"].as_array().unwrap().len(), 2);
    assert_eq!(q["stats"]["waiting"], 3, "the counts are not cut");
    let q = get(&server, "/api/queues/reports?dead=1").expect(200).json();
    assert_eq!(q["dead_jobs"].as_array().unwrap().len(), 1);
    get(&server, "/api/queues/emails?waiting=201").expect(400);

    // The pages themselves, and their assets.
    let page = get(&server, "/").expect(200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(String::from_utf8_lossy(&page.body).contains("/assets/overview.js"));
    let page = get(&server, "/queues/emails").expect(200);
    assert!(String::from_utf8_lossy(&page.body).contains("/assets/queue.js"));
    for asset in [
        "dashboard.css",
        "common.js",
        "overview.js",
        "queue.js",
        "favicon.svg",
    ] {
        let r = get(&server, &format!("/assets/{asset}")).expect(200);
        assert!(!r.body.is_empty(), "{asset}");
    }
    get(&server, "/assets/nothing.js").expect(404);
}

#[test]
fn the_queues_are_paged_and_filtered() {
    let server = start(&[]);
    let mut con = server.client();
    let mut pipe = redis::pipe();
    for i in 0..120 {
        pipe.cmd("QPUSH").arg(format!("bulk-{i:03}")).arg("x");
    }
    pipe.cmd("QPUSH").arg("Other").arg("x");
    let _: Vec<i64> = pipe.query(&mut con).expect("pushes");

    let page = get(&server, "/api/queues").expect(200).json();
    assert_eq!(page["total"], 121);
    assert_eq!(page["limit"], 50, "the default page");
    let names = texts(&page["queues"], "name");
    assert_eq!(names.len(), 50);
    assert_eq!((names[0].as_str(), names[49].as_str()), ("bulk-000", "bulk-049"));

    let page = get(&server, "/api/queues?offset=100&limit=50").expect(200).json();
    let names = texts(&page["queues"], "name");
    assert_eq!(names.len(), 21);
    assert_eq!((names[0].as_str(), names[20].as_str()), ("bulk-100", "Other"));

    let page = get(&server, "/api/queues?offset=121").expect(200).json();
    assert_eq!(
        (page["total"].as_u64(), page["queues"].as_array().unwrap().len()),
        (Some(121), 0)
    );

    // The filter ignores case and is applied before paging.
    let page = get(&server, "/api/queues?filter=BULK-01&limit=5")
        .expect(200)
        .json();
    assert_eq!(page["total"], 10);
    assert_eq!(
        texts(&page["queues"], "name"),
        ["bulk-010", "bulk-011", "bulk-012", "bulk-013", "bulk-014"]
    );
    let page = get(&server, "/api/queues?filter=other").expect(200).json();
    assert_eq!(texts(&page["queues"], "name"), ["Other"]);
    let page = get(&server, "/api/queues?filter=nothing-like-it")
        .expect(200)
        .json();
    assert_eq!(
        (page["total"].as_u64(), page["queues"].as_array().unwrap().len()),
        (Some(0), 0)
    );

    let page = get(&server, "/api/queues?limit=500").expect(200).json();
    assert_eq!(page["queues"].as_array().unwrap().len(), 121);
    for bad in ["limit=501", "limit=0", "offset=-1", "limit=x"] {
        let r = get(&server, &format!("/api/queues?{bad}")).expect(400);
        assert!(
            r.error().contains("must be an integer from"),
            "{bad}: {}",
            r.error()
        );
    }
    let long = "x".repeat(201);
    get(&server, &format!("/api/queues?filter={long}")).expect(400);
}

// ----- what the actions do ------------------------------------------------------------

#[test]
fn actions_change_what_resp_clients_see_and_are_durable() {
    let dir = tempfile::Builder::new()
        .prefix("quern-test-")
        .tempdir()
        .expect("temp dir");
    let mut server = start_in(dir.path(), &[]);
    let mut con = server.client();
    let d1 = make_dead(&mut con, "reports", b"r1", Some("boom"));
    let d2 = make_dead(&mut con, "reports", b"r2", Some("boom"));
    let d3 = make_dead(&mut con, "reports", b"r3", None);
    let d4 = make_dead(&mut con, "reports", b"r4", None);

    // Requeue one: waiting again, its attempts reset.
    let r = post(
        &server,
        "/api/queues/reports/dead/requeue",
        json!({ "ids": [d1] }),
    )
    .expect(200);
    assert_eq!(r.json(), json!({ "requeued": 1 }));
    assert_eq!(state(&mut con, "reports", d1).as_deref(), Some("waiting"));
    assert_eq!(dead_len(&mut con, "reports"), 3);
    // Again: it is no longer dead, so nothing happens.
    let r = post(
        &server,
        "/api/queues/reports/dead/requeue",
        json!({ "ids": [d1] }),
    )
    .expect(200);
    assert_eq!(r.json(), json!({ "requeued": 0 }));

    // Purge one: gone.
    let r = post(&server, "/api/queues/reports/dead/purge", json!({ "ids": [d2] })).expect(200);
    assert_eq!(r.json(), json!({ "purged": 1 }));
    assert_eq!(state(&mut con, "reports", d2), None);

    // Pause: the waiting job is not handed out.
    let r = post(&server, "/api/queues/reports/pause", Json::Null).expect(200);
    assert_eq!(r.json(), json!({ "paused": true }));
    assert_eq!(stats(&mut con, "reports")["paused"], 1);
    assert_eq!(pull(&mut con, "reports", &[]), None);

    // Each answer came after its commit: a kill -9 now loses none of it.
    server.kill();
    let mut server = start_in(dir.path(), &[]);
    let mut con = server.client();
    assert_eq!(stats(&mut con, "reports")["paused"], 1);
    assert_eq!(state(&mut con, "reports", d1).as_deref(), Some("waiting"));
    assert_eq!(state(&mut con, "reports", d2), None);
    assert_eq!(dead_len(&mut con, "reports"), 2);

    // Resume: the requeued job comes out as a first attempt.
    let r = post(&server, "/api/queues/reports/resume", Json::Null).expect(200);
    assert_eq!(r.json(), json!({ "paused": false }));
    let job = pull(&mut con, "reports", &[]).expect("a job once resumed");
    assert_eq!((job.id, job.attempt, job.payload.as_slice()), (d1, 1, &b"r1"[..]));
    assert_eq!(ack(&mut con, "reports", &[d1]), 1);

    // Requeue all, then purge all of a new batch.
    let r = post(
        &server,
        "/api/queues/reports/dead/requeue",
        json!({ "all": true }),
    )
    .expect(200);
    assert_eq!(r.json(), json!({ "requeued": 2 }));
    assert_eq!(dead_len(&mut con, "reports"), 0);
    assert_eq!(qlen(&mut con, "reports"), 2);
    let peeked = jobs(
        redis::cmd("QPEEK")
            .arg("reports")
            .arg("COUNT")
            .arg(5)
            .query(&mut con)
            .unwrap(),
    );
    assert_eq!(peeked.iter().map(|j| j.id).collect::<Vec<_>>(), [d3, d4]);
    // Taken out of the way, so the next dead jobs are the only ones.
    redis::cmd("QCANCEL")
        .arg("reports")
        .arg(d3)
        .arg(d4)
        .exec(&mut con)
        .expect("QCANCEL");
    let d5 = make_dead(&mut con, "reports", b"r5", None);
    let d6 = make_dead(&mut con, "reports", b"r6", None);
    let r = post(&server, "/api/queues/reports/dead/purge", json!({ "all": true })).expect(200);
    assert_eq!(r.json(), json!({ "purged": 2 }));

    server.kill();
    let server = start_in(dir.path(), &[]);
    let mut con = server.client();
    assert_eq!(dead_len(&mut con, "reports"), 0);
    assert_eq!(state(&mut con, "reports", d5), None);
    assert_eq!(state(&mut con, "reports", d6), None);
    assert_eq!(stats(&mut con, "reports")["paused"], 0);
}

// ----- protection -------------------------------------------------------------------------

#[test]
fn a_password_guards_the_dashboard_but_not_the_probes() {
    let server = start(&["--requirepass", "s3cret"]);
    let mut con = connect(&format!("redis://:s3cret@127.0.0.1:{}/", server.port));
    make_dead(&mut con, "emails", b"x", Some("boom"));

    let guarded = [
        "/",
        "/queues/emails",
        "/assets/dashboard.css",
        "/api/queues",
        "/api/queues/emails",
        "/api/queues/emails/jobs/1",
    ];
    let right = [basic("default:s3cret"), basic("anyone:s3cret"), basic(":s3cret")];
    let wrong = [
        basic("default:s3cre"),
        basic("default:s3cret "),
        basic("s3cret:"),
        "Bearer s3cret".into(),
    ];
    for path in guarded {
        let r = get(&server, path).expect(401);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Basic realm="quern", charset="UTF-8""#)
        );
        assert!(r.error().contains("authentication required"));
        for auth in &wrong {
            request(&server, "GET", path, &[("Authorization", auth.as_str())], b"").expect(401);
        }
        for auth in &right {
            request(&server, "GET", path, &[("Authorization", auth.as_str())], b"").expect(200);
        }
    }
    // The probes stay open: Prometheus and orchestrators have no password.
    for path in ["/metrics", "/health", "/ready"] {
        get(&server, path).expect(200);
    }

    // An action needs the password and the action header.
    let pause = |headers: &[(&str, &str)]| request(&server, "POST", "/api/queues/emails/pause", headers, b"");
    let auth = basic("default:s3cret");
    pause(&[("X-Quern-Action", "1")]).expect(401);
    pause(&[("Authorization", auth.as_str())]).expect(403);
    assert_eq!(
        stats(&mut con, "emails")["paused"],
        0,
        "a refused action changes nothing"
    );
    pause(&[("Authorization", auth.as_str()), ("X-Quern-Action", "1")]).expect(200);
    assert_eq!(stats(&mut con, "emails")["paused"], 1);

    // The password is read on every request: CONFIG SET applies at once.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("n3w")
        .exec(&mut con)
        .expect("CONFIG SET");
    request(
        &server,
        "GET",
        "/api/queues",
        &[("Authorization", auth.as_str())],
        b"",
    )
    .expect(401);
    request(
        &server,
        "GET",
        "/api/queues",
        &[("Authorization", basic("x:n3w").as_str())],
        b"",
    )
    .expect(200);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("")
        .exec(&mut con)
        .expect("CONFIG SET");
    get(&server, "/api/queues").expect(200);
}

#[test]
fn actions_need_the_action_header() {
    let server = start(&[]);
    let mut con = server.client();
    make_dead(&mut con, "reports", b"r1", Some("boom"));

    // What a cross-site form can send: no custom header.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = request(
        &server,
        "POST",
        "/api/queues/reports/dead/purge",
        &form,
        b"all=true",
    )
    .expect(403);
    assert!(r.error().contains("x-quern-action"), "{}", r.error());
    request(&server, "POST", "/api/queues/reports/pause", &form, b"").expect(403);
    let wrong_value = [("X-Quern-Action", "0"), ("Content-Type", "application/json")];
    request(
        &server,
        "POST",
        "/api/queues/reports/dead/purge",
        &wrong_value,
        br#"{"all":true}"#,
    )
    .expect(403);
    assert_eq!(dead_len(&mut con, "reports"), 1, "nothing was purged");
    assert_eq!(stats(&mut con, "reports")["paused"], 0, "nothing was paused");

    post(&server, "/api/queues/reports/dead/purge", json!({ "all": true })).expect(200);
    assert_eq!(dead_len(&mut con, "reports"), 0);
}

// ----- bad input ----------------------------------------------------------------------------

#[test]
fn bad_input_gets_a_clear_4xx() {
    let server = start(&[]);
    let mut con = server.client();
    let id = push(&mut con, "emails", b"x", &[]);
    let other = push(&mut con, "sms", b"y", &[]);
    make_dead(&mut con, "reports", b"r1", None);

    let action = [("X-Quern-Action", "1"), ("Content-Type", "application/json")];
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "GET",
            "/api/queues/nosuch".into(),
            vec![],
            404,
            "no queue 'nosuch'",
        ),
        (
            "POST",
            "/api/queues/nosuch/pause".into(),
            vec![],
            404,
            "no queue 'nosuch'",
        ),
        (
            "POST",
            "/api/queues/nosuch/dead/requeue".into(),
            br#"{"all":true}"#.to_vec(),
            404,
            "no queue",
        ),
        (
            "GET",
            "/api/queues/emails/jobs/abc".into(),
            vec![],
            400,
            "invalid job id 'abc'",
        ),
        (
            "GET",
            "/api/queues/emails/jobs/0".into(),
            vec![],
            400,
            "invalid job id",
        ),
        (
            "GET",
            "/api/queues/emails/jobs/9007199254740992".into(),
            vec![],
            400,
            "invalid job id",
        ),
        (
            "GET",
            "/api/queues/emails/jobs/99999".into(),
            vec![],
            404,
            "no job 99999",
        ),
        (
            "GET",
            format!("/api/queues/emails/jobs/{other}"),
            vec![],
            404,
            "no job",
        ),
        (
            "POST",
            "/api/queues/reports/dead/requeue".into(),
            b"not json".to_vec(),
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/api/queues/reports/dead/requeue".into(),
            vec![],
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/api/queues/reports/dead/requeue".into(),
            b"{}".to_vec(),
            400,
            "\"all\": true",
        ),
        (
            "POST",
            "/api/queues/reports/dead/purge".into(),
            br#"{"ids":[]}"#.to_vec(),
            400,
            "1 to 1000",
        ),
        (
            "POST",
            "/api/queues/reports/dead/purge".into(),
            br#"{"ids":[-3]}"#.to_vec(),
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/api/queues/reports/dead/purge".into(),
            br#"{"ids":[0]}"#.to_vec(),
            400,
            "invalid job id 0",
        ),
        (
            "POST",
            "/api/queues/reports/dead/purge".into(),
            br#"{"all":"yes"}"#.to_vec(),
            400,
            "invalid JSON",
        ),
        (
            "GET",
            "/api/queues?bogus=1".into(),
            vec![],
            400,
            "unknown parameter 'bogus'",
        ),
        (
            "GET",
            "/api/queues?limit=1&limit=2".into(),
            vec![],
            400,
            "given twice",
        ),
        ("GET", "/api/queues/a%20b".into(), vec![], 400, "whitespace"),
        (
            "GET",
            format!("/api/queues/{}", "x".repeat(201)),
            vec![],
            400,
            "1 to 200 bytes",
        ),
        ("GET", "/queues/a%0Ab".into(), vec![], 400, "control"),
        ("GET", "/api/nothing/here".into(), vec![], 404, "no API route"),
        (
            "GET",
            "/api/queues/emails/pause".into(),
            vec![],
            405,
            "GET is not allowed",
        ),
        (
            "DELETE",
            "/api/queues/emails".into(),
            vec![],
            405,
            "DELETE is not allowed",
        ),
        (
            "POST",
            "/api/queues/reports/dead/purge".into(),
            vec![b' '; 100 << 10],
            413,
            "too large",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let r = request(&server, method, &path, &action, &body);
        assert_eq!(
            r.status,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let error = r.error();
        assert!(
            error.contains(says),
            "{method} {path}: {error:?} does not say {says:?}"
        );
    }
    // Nothing was created, changed or broken by any of it.
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 3, "no queue was created");
    assert_eq!(dead_len(&mut con, "reports"), 1);
    assert_eq!(state(&mut con, "emails", id).as_deref(), Some("waiting"));
    get(&server, "/api/queues").expect(200);
}

#[test]
fn names_and_payloads_that_are_not_text_are_shown_safely() {
    let server = start(&[]);
    let mut con = server.client();
    let queue = &b"caf\xc3\xa9/\xff"[..];
    let push_to = |con: &mut redis::Connection, payload: &[u8]| -> u64 {
        redis::cmd("QPUSH")
            .arg(queue)
            .arg(payload)
            .query(con)
            .expect("QPUSH")
    };
    let binary = push_to(&mut con, b"\x00\x01bin\xff");
    let long = push_to(&mut con, "é".repeat(1000).as_bytes());
    let markup = push_to(&mut con, b"<script>alert(1)</script>");

    let page = get(&server, "/api/queues").expect(200).json();
    let row = &page["queues"][0];
    assert_eq!(row["name"], "café/\\xff");
    assert_eq!(row["encoded"], "caf%C3%A9%2F%FF");
    assert_eq!(row["binary"], true);

    let q = get(&server, "/api/queues/caf%C3%A9%2F%FF").expect(200).json();
    assert_eq!(q["name"], "café/\\xff");
    let shown = |id: u64| {
        q["waiting_jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("job {id} in {q}"))["payload"]
            .clone()
    };
    let p = shown(binary);
    assert_eq!(
        p,
        json!({ "text": "\\u{0}\\u{1}bin\\xff", "bytes": 6, "truncated": false, "binary": true })
    );
    let p = shown(long);
    assert_eq!(
        (
            p["bytes"].as_u64(),
            p["truncated"].as_bool(),
            p["binary"].as_bool()
        ),
        (Some(2000), Some(true), Some(false))
    );
    assert_eq!(
        p["text"].as_str().unwrap(),
        "é".repeat(100),
        "cut at 200 bytes, between characters"
    );
    // Markup is data: the page sets it as text.
    assert_eq!(shown(markup)["text"], "<script>alert(1)</script>");

    let job = get(&server, &format!("/api/queues/caf%C3%A9%2F%FF/jobs/{long}"))
        .expect(200)
        .json();
    assert_eq!(
        job["payload"]["text"].as_str().unwrap(),
        "é".repeat(1000),
        "one job shows more"
    );
    get(&server, "/queues/caf%C3%A9%2F%FF").expect(200);
    let r = post(&server, "/api/queues/caf%C3%A9%2F%FF/pause", Json::Null).expect(200);
    assert_eq!(r.json()["paused"], true);
    let paused: Value = redis::cmd("QSTATS").arg(queue).query(&mut con).unwrap();
    assert_eq!(int(&fields(paused)["paused"]), 1);
}
