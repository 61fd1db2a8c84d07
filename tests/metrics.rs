//! The HTTP listener's probes and metrics, end to end: a real server with
//! its HTTP listener on a free port, workloads over a real Redis client,
//! `/metrics`, `/health` and `/ready` read over real HTTP, and the Grafana
//! dashboard checked against a real scrape. Prometheus's own `promtool`
//! checks a scrape's format in `.ci/check-deploy`, which installs it, so
//! that this suite needs nothing beyond cargo.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::http;
use common::*;

/// The flags that turn the HTTP listener on, on a free port.
const HTTP: [&str; 2] = ["--http", "127.0.0.1:0"];

// ----- HTTP --------------------------------------------------------------------

/// An HTTP response: its status and its body as text.
#[derive(Debug)]
struct Response {
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// `GET path` on `port`, whose answer must come whole (a Content-Length,
/// no chunks) and as text.
fn get(port: u16, path: &str) -> Response {
    let response = http::request(port, "GET", path, &[], b"");
    assert_eq!(
        response.header("transfer-encoding"),
        None,
        "a whole body, not chunks"
    );
    let length: usize = response
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .expect("content-length");
    assert_eq!(response.body.len(), length, "the whole body arrived");
    Response {
        status: response.status,
        content_type: response.header("content-type").map(str::to_owned),
        body: String::from_utf8(response.body).expect("a text response"),
    }
}

// ----- the scrape ----------------------------------------------------------------

/// One sample of a scrape: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A `/metrics` body, read line by line as Prometheus reads it.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn of(server: &Server) -> Scrape {
        let response = get(server.http_port.expect("HTTP is on"), "/metrics");
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            response.content_type.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        Scrape::parse(response.body)
    }

    fn parse(text: String) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a value");
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
                let (name, labels) = match series.split_once('{') {
                    None => (series, BTreeMap::new()),
                    Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect("labels end"))),
                };
                (name.to_owned(), labels, value)
            })
            .collect();
        Scrape { text, samples }
    }

    /// The value of the one sample named `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    /// [`Scrape::value`], which must be there.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in the scrape:\n{}", self.text))
    }

    /// The `queue` labels that `name` has.
    fn queues(&self, name: &str) -> Vec<String> {
        let mut queues: Vec<String> = self
            .samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get("queue").cloned())
            .collect();
        queues.sort();
        queues.dedup();
        queues
    }

    fn has_name(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

/// `a="x",b="y"` (values without escapes: the tests' names have none).
fn labels(text: &str) -> BTreeMap<String, String> {
    text.split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
            (key.to_owned(), value.trim_end_matches('"').to_owned())
        })
        .collect()
}

// ----- workloads -----------------------------------------------------------------

/// `QFAIL queue id [options]`, which must be answered.
fn fail(con: &mut redis::Connection, queue: &str, id: u64, opts: &[&str]) {
    let _: redis::Value = redis::cmd("QFAIL")
        .arg(queue)
        .arg(id)
        .arg(opts)
        .query(con)
        .unwrap_or_else(|e| panic!("QFAIL {queue} {id}: {e}"));
}

/// `INFO section` as field → value.
fn info(con: &mut redis::Connection, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(con).expect("INFO");
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Waits until the store has put the last writes into LMDB (a checkpoint
/// every 50 ms), so that every store histogram has samples.
fn wait_checkpoint(server: &Server) {
    wait_for("a checkpoint", Duration::from_secs(20), || {
        let scrape = Scrape::of(server);
        (scrape.value("quern_store_checkpoint_duration_seconds_count", &[]) >= Some(1.0)).then_some(())
    });
}

// ----- the tests ------------------------------------------------------------------

#[test]
fn metrics_count_what_the_workload_did() {
    let server = Server::start_with(&HTTP);
    let mut con = server.client();
    let emails: Vec<u64> = (0..5)
        .map(|i| push(&mut con, "emails", format!("e{i}").as_bytes(), &[]))
        .collect();
    push(&mut con, "sms", b"s", &[]);
    push(&mut con, "sms", b"t", &["DELAY", "60000"]);
    let pulled: Vec<Job> = (0..3)
        .map(|_| pull(&mut con, "emails", &[]).expect("a job"))
        .collect();
    assert_eq!(pulled[0].id, emails[0]);
    assert_eq!(ack(&mut con, "emails", &[pulled[0].id, pulled[1].id]), 2);
    fail(&mut con, "emails", pulled[2].id, &["FATAL"]);
    // Refused before running: wrong number of arguments. Failed while
    // running: no such job.
    expect_err(redis::cmd("QACK").arg("emails").query::<i64>(&mut con));
    expect_err(
        redis::cmd("QFAIL")
            .arg("emails")
            .arg(999)
            .query::<redis::Value>(&mut con),
    );

    let scrape = Scrape::of(&server);
    let emails = |name: &str| scrape.get(name, &[("queue", "emails")]);
    let jobs = |queue: &str, state: &str| scrape.get("quern_jobs", &[("queue", queue), ("state", state)]);
    assert_eq!(scrape.get("quern_queues", &[]), 2.0);
    assert_eq!(jobs("emails", "waiting"), 2.0);
    assert_eq!(jobs("emails", "active"), 0.0);
    assert_eq!(jobs("emails", "delayed"), 0.0);
    assert_eq!(jobs("emails", "dead"), 1.0);
    assert_eq!(jobs("sms", "waiting"), 1.0);
    assert_eq!(jobs("sms", "delayed"), 1.0);
    assert_eq!(emails("quern_queue_pushed_total"), 5.0);
    assert_eq!(emails("quern_queue_pulled_total"), 3.0);
    assert_eq!(emails("quern_queue_acked_total"), 2.0);
    assert_eq!(emails("quern_queue_failed_total"), 1.0);
    assert_eq!(emails("quern_queue_retried_total"), 0.0);
    assert_eq!(emails("quern_queue_dead_total"), 1.0);
    assert_eq!(emails("quern_queue_expired_leases_total"), 0.0);
    assert_eq!(emails("quern_queue_push_to_ack_seconds_count"), 2.0);
    assert!(emails("quern_queue_push_to_ack_seconds_sum") < 60.0);
    assert!(emails("quern_queue_oldest_waiting_age_seconds") < 60.0);
    assert_eq!(scrape.get("quern_queue_pulled_total", &[("queue", "sms")]), 0.0);
    assert_eq!(
        scrape.queues("quern_jobs"),
        ["emails", "sms"],
        "no _other under the cap"
    );

    let command = |name: &str, cmd: &str| scrape.get(name, &[("command", cmd)]);
    let errors =
        |cmd: &str, kind: &str| scrape.get("quern_command_errors_total", &[("command", cmd), ("kind", kind)]);
    assert_eq!(command("quern_commands_total", "qpush"), 7.0);
    assert_eq!(command("quern_command_duration_seconds_count", "qpush"), 7.0);
    assert_eq!(command("quern_commands_total", "qpull"), 3.0);
    assert_eq!(
        command("quern_commands_total", "qack"),
        1.0,
        "the refused QACK did not run"
    );
    assert_eq!(errors("qack", "rejected"), 1.0);
    assert_eq!(errors("qack", "failed"), 0.0);
    assert_eq!(command("quern_commands_total", "qfail"), 2.0);
    assert_eq!(errors("qfail", "failed"), 1.0);
    assert_eq!(errors("qfail", "rejected"), 0.0);
    assert_eq!(
        scrape.value("quern_commands_total", &[("command", "qstats")]),
        None,
        "never called"
    );

    assert_eq!(scrape.get("quern_connections", &[]), 1.0);
    assert!(scrape.get("quern_connections_accepted_total", &[]) >= 1.0);
    assert!(scrape.get("quern_net_input_bytes_total", &[]) > 0.0);
    assert!(scrape.get("quern_net_output_bytes_total", &[]) > 0.0);
    // Every write was committed, one log record each at most.
    let commits = scrape.get("quern_store_commits_total", &[]);
    assert!((1.0..=12.0).contains(&commits), "{commits}");
    assert_eq!(
        scrape.get("quern_store_commit_duration_seconds_count", &[]),
        commits
    );
    assert_eq!(scrape.get("quern_store_commit_changes_count", &[]), commits);
    assert_eq!(
        scrape.get("quern_store_commit_changes_sum", &[]),
        scrape.get("quern_store_changes_total", &[])
    );
    assert!(
        scrape.get("quern_store_fsyncs_total", &[]) >= commits,
        "fsync always"
    );
    let (map, used, free) = (
        scrape.get("quern_store_map_size_bytes", &[]),
        scrape.get("quern_store_used_bytes", &[]),
        scrape.get("quern_store_free_bytes", &[]),
    );
    assert!(used > 0.0 && free > 0.0);
    assert_eq!(used + free, map);
    assert_eq!(scrape.get("quern_store_failing", &[]), 0.0);

    // INFO reads the same per-command figures.
    let commandstats = info(&mut con, "commandstats");
    let qpush = &commandstats["cmdstat_qpush"];
    assert!(qpush.starts_with("calls=7,usec="), "{qpush}");
    assert!(qpush.ends_with(",rejected_calls=0,failed_calls=0"), "{qpush}");
    let qack = &commandstats["cmdstat_qack"];
    assert!(qack.ends_with(",rejected_calls=1,failed_calls=0"), "{qack}");
    assert!(!commandstats.contains_key("cmdstat_qstats"));
    // A bare INFO leaves commandstats out, as Redis does.
    assert!(!info(&mut con, "default").contains_key("cmdstat_qpush"));
    assert!(info(&mut con, "all").contains_key("cmdstat_qpush"));
}

#[test]
fn queues_beyond_the_cap_are_summed_under_other() {
    let server = Server::start_with(&["--http", "127.0.0.1:0", "--metrics-max-queues", "2"]);
    let mut con = server.client();
    // Created in this order: a and b get the labels at the first scrape.
    for (queue, jobs) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        for _ in 0..jobs {
            push(&mut con, queue, b"x", &[]);
        }
    }
    assert_eq!(Scrape::of(&server).queues("quern_jobs"), ["_other", "a", "b"]);
    let job = pull(&mut con, "d", &[]).expect("a job of d");
    ack(&mut con, "d", &[job.id]);

    let scrape = Scrape::of(&server);
    let waiting = |queue: &str| scrape.get("quern_jobs", &[("queue", queue), ("state", "waiting")]);
    assert_eq!(scrape.queues("quern_jobs"), ["_other", "a", "b"]);
    assert_eq!(waiting("a"), 1.0);
    assert_eq!(waiting("b"), 2.0);
    assert_eq!(waiting("_other"), 3.0 + 3.0, "c and d");
    assert_eq!(
        scrape.get("quern_queue_pushed_total", &[("queue", "_other")]),
        7.0
    );
    assert_eq!(scrape.get("quern_queue_acked_total", &[("queue", "_other")]), 1.0);
    assert_eq!(
        scrape.get("quern_queue_push_to_ack_seconds_count", &[("queue", "_other")]),
        1.0
    );
    assert_eq!(scrape.get("quern_queues", &[]), 4.0);

    // Deleting one of _other's queues does not take its counts back.
    let deleted: i64 = redis::cmd("QDEL").arg("c").query(&mut con).expect("QDEL c");
    assert!(deleted >= 1, "{deleted}");
    let scrape = Scrape::of(&server);
    assert_eq!(
        scrape.get("quern_queue_pushed_total", &[("queue", "_other")]),
        7.0
    );
    assert_eq!(
        scrape.get("quern_jobs", &[("queue", "_other"), ("state", "waiting")]),
        3.0,
        "d's jobs only"
    );
}

#[test]
fn health_and_ready_answer_while_the_data_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Enough jobs that loading them takes a while, pushed without waiting
    // for the disk.
    {
        let mut server = Server::start_in(dir.path(), &["--fsync", "no"]);
        let mut con = server.client();
        let payloads = vec![vec![b'x'; 16]; 10_000];
        for _ in 0..40 {
            let ids: Vec<u64> = redis::cmd("QMPUSH")
                .arg("backlog")
                .arg(payloads.len())
                .arg(&payloads)
                .query(&mut con)
                .expect("QMPUSH");
            assert_eq!(ids.len(), payloads.len());
        }
        server.stop();
    }

    let mut command = Server::bare_command();
    command
        .args(["--port", "0", "--http", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(command.spawn().expect("spawn quern"));
    let lines = stdout_lines(child.0.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = || match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(printed) => printed,
        Err(_) => panic!("quern printed neither its HTTP nor its ready line"),
    };
    let Printed::Http(addr) = next() else {
        panic!("the HTTP line comes first, before the data loads");
    };
    let http = port_of(&addr);
    // The first answers come while the 400,000 jobs load.
    let health = get(http, "/health");
    let ready = get(http, "/ready");
    let metrics = get(http, "/metrics");
    let Printed::Ready(addr) = next() else {
        panic!("then the ready line");
    };
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!((ready.status, ready.body.as_str()), (503, "loading\n"));
    assert_eq!(metrics.status, 200);
    assert!(
        !metrics.body.contains("quern_jobs"),
        "no queue figures before the load"
    );

    let ready = wait_for("/ready to say ready", Duration::from_secs(20), || {
        let ready = get(http, "/ready");
        (ready.status == 200).then_some(ready)
    });
    assert_eq!(ready.body, "ready\n");
    let mut con = connect(&format!("redis://{addr}/"));
    assert_eq!(qlen(&mut con, "backlog"), 400_000);
    let server_scrape = Scrape::parse(get(http, "/metrics").body);
    assert_eq!(
        server_scrape.get("quern_jobs", &[("queue", "backlog"), ("state", "waiting")]),
        400_000.0
    );
    assert_eq!(
        server_scrape.get("quern_queue_pushed_total", &[("queue", "backlog")]),
        400_000.0,
        "the stored counters carry over a restart"
    );
    let _ = redis::cmd("SHUTDOWN").query::<redis::Value>(&mut con);
    let status = child.0.wait().expect("wait for quern");
    assert!(status.success(), "{status}");
}

/// A server started by hand, killed if the test fails before it exits.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_taken_http_port_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Server::bare_command()
        .args(["--port", "0", "--http", &addr, "--dir"])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .expect("run quern");
    assert!(!out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen for HTTP on {addr}")),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "no store is opened");
}

#[test]
fn http_off_means_no_listener() {
    let server = Server::start_with(&["--http", "off"]);
    assert_eq!(server.http_port, None, "no HTTP line");
    let mut con = server.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("http")
        .query(&mut con)
        .expect("CONFIG GET http");
    assert_eq!(got, ["http", "off"]);
}

/// Every metric a panel of docs/grafana-dashboard.json queries is in a
/// real scrape, so the dashboard cannot drift from the metrics.
#[test]
fn the_grafana_dashboard_uses_only_metrics_that_exist() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("docs/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard["panels"], &mut exprs);
    assert!(
        exprs.len() >= 10,
        "the dashboard's panels have queries: {exprs:?}"
    );

    // A workload that makes every metric appear: pushes, pulls, acks, a
    // failure, a refused command, and a checkpoint for the store's.
    let server = Server::start_with(&HTTP);
    let mut con = server.client();
    let id = push(&mut con, "emails", b"x", &[]);
    push(&mut con, "emails", b"y", &[]);
    pull(&mut con, "emails", &[]).expect("a job");
    ack(&mut con, "emails", &[id]);
    let job = pull(&mut con, "emails", &[]).expect("a job");
    fail(&mut con, "emails", job.id, &["FATAL"]);
    expect_err(redis::cmd("QACK").arg("emails").query::<i64>(&mut con));
    wait_checkpoint(&server);
    let scrape = Scrape::of(&server);

    let mut used = std::collections::BTreeSet::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(
                scrape.has_name(&name),
                "the dashboard's {expr:?} uses {name}, which the server does not export"
            );
            used.insert(name);
        }
    }
    // The panels named in the brief are there.
    for name in [
        "quern_jobs",
        "quern_queue_pushed_total",
        "quern_queue_acked_total",
        "quern_queue_failed_total",
        "quern_queue_push_to_ack_seconds_bucket",
        "quern_commands_total",
        "quern_command_duration_seconds_bucket",
        "quern_store_commit_duration_seconds_bucket",
        "quern_store_fsyncs_total",
        "quern_store_used_bytes",
        "quern_store_free_bytes",
        "quern_connections",
    ] {
        assert!(used.contains(name), "no panel queries {name}");
    }
}

/// Every `expr` of every panel's targets, rows' nested panels included.
fn collect_exprs(panels: &serde_json::Value, out: &mut Vec<String>) {
    for panel in panels.as_array().expect("panels is a list") {
        assert!(panel["title"].is_string(), "every panel has a title: {panel}");
        if let Some(targets) = panel["targets"].as_array() {
            for target in targets {
                out.push(target["expr"].as_str().expect("a target has an expr").to_owned());
            }
        }
        if panel["panels"].is_array() {
            collect_exprs(&panel["panels"], out);
        }
    }
}

/// The `quern_…` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("quern_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}
