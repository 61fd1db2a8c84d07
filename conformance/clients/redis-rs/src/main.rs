//! The conformance scenarios (conformance/README.md) through redis-rs:
//! sync connections and async multiplexed connections, each with RESP2
//! and RESP3. Prints `SUITE`, `PASS` and `FAIL` lines.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};

/// A scenario's outcome: `Err` carries the reason it failed.
type Outcome = Result<(), String>;

struct Env {
    port: u16,
    auth_port: u16,
    password: String,
    restart: String,
}

impl Env {
    fn read() -> Env {
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        Env {
            port: var("QUERN_PORT").parse().expect("QUERN_PORT"),
            auth_port: var("QUERN_AUTH_PORT").parse().expect("QUERN_AUTH_PORT"),
            password: var("QUERN_PASSWORD"),
            restart: var("QUERN_RESTART"),
        }
    }

    fn url(&self, port: u16, resp3: bool, password: Option<&str>) -> String {
        let auth = password.map_or(String::new(), |p| format!(":{p}@"));
        let protocol = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{auth}127.0.0.1:{port}/{protocol}")
    }

    fn restart(&self) -> Outcome {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&self.restart)
            .status();
        match status {
            Ok(s) if s.success() => Ok(()),
            other => Err(format!("restart failed: {other:?}")),
        }
    }
}

fn check(what: &str, ok: bool) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

fn err(e: RedisError) -> String {
    e.to_string()
}

/// QSTATS as field → integer, from a RESP3 map or a RESP2 flat list.
fn stats(value: Value) -> HashMap<String, i64> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut items = items.into_iter();
            std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
        }
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let key: String = redis::from_redis_value(k).ok()?;
            let value: i64 = redis::from_redis_value(v).ok()?;
            Some((key, value))
        })
        .collect()
}

fn report(name: &str, outcome: Outcome, failed: &mut bool) {
    match outcome {
        Ok(()) => println!("PASS {name}"),
        Err(why) => {
            *failed = true;
            println!("FAIL {name} {}", why.replace('\n', " "));
        }
    }
}

// ----- sync ---------------------------------------------------------------

fn sync_suite(env: &Env, resp3: bool, failed: &mut bool) {
    let tag = if resp3 { "rs:sync3" } else { "rs:sync2" };
    let client = Client::open(env.url(env.port, resp3, None)).expect("url");
    let mut con = match client.get_connection() {
        Ok(con) => con,
        Err(e) => return report("connect", Err(err(e)), failed),
    };
    let q = |suffix: &str| format!("{tag}:{suffix}");
    let mut run = |name: &str, f: &mut dyn FnMut(&mut redis::Connection) -> Outcome| {
        report(name, f(&mut con), failed);
    };

    run("connect", &mut |con| {
        let pong: String = redis::cmd("PING").query(con).map_err(err)?;
        check("PONG", pong == "PONG")
    });
    run("push_options", &mut |con| {
        let id: u64 = redis::cmd("QPUSH")
            .arg(q("opt"))
            .arg("payload")
            .arg(&["PRIORITY", "5", "RETRIES", "2", "BACKOFF", "100", "LEASE", "5000"])
            .query(con)
            .map_err(err)?;
        let fields = stats(redis::cmd("QGET").arg(q("opt")).arg(id).query(con).map_err(err)?);
        check(
            "priority 5, retries 2",
            fields.get("priority") == Some(&5) && fields.get("retries") == Some(&2),
        )
    });
    run("mpush", &mut |con| {
        let ids: Vec<u64> = redis::cmd("QMPUSH")
            .arg(q("m"))
            .arg(3)
            .arg(&["a", "b", "c"])
            .query(con)
            .map_err(err)?;
        check("consecutive ids", ids.len() == 3 && ids[2] == ids[0] + 2)
    });
    run("blocking_pull", &mut |con| {
        let mut worker = client.get_connection().map_err(err)?;
        let queue = q("b");
        let puller = std::thread::spawn(move || {
            redis::cmd("QPULL")
                .arg(queue)
                .arg("BLOCK")
                .arg(5000)
                .query::<Vec<(String, u64, String, u32)>>(&mut worker)
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let info: String = redis::cmd("INFO").arg("clients").query(con).map_err(err)?;
            if info.contains("blocked_clients:1") {
                break;
            }
            check("the pull never blocked", Instant::now() < deadline)?;
            std::thread::sleep(Duration::from_millis(10));
        }
        let id: u64 = redis::cmd("QPUSH")
            .arg(q("b"))
            .arg("wake")
            .query(con)
            .map_err(err)?;
        let jobs = puller
            .join()
            .map_err(|_| "puller panicked".to_owned())?
            .map_err(err)?;
        check(
            "woken with the pushed job",
            jobs.first().is_some_and(|j| j.1 == id && j.2 == "wake"),
        )
    });
    run("ack", &mut |con| {
        let id: u64 = redis::cmd("QPUSH").arg(q("a")).arg("x").query(con).map_err(err)?;
        let _: Value = redis::cmd("QPULL").arg(q("a")).query(con).map_err(err)?;
        let first: i64 = redis::cmd("QACK").arg(q("a")).arg(id).query(con).map_err(err)?;
        let again: i64 = redis::cmd("QACK").arg(q("a")).arg(id).query(con).map_err(err)?;
        check("1 then 0", (first, again) == (1, 0))
    });
    run("fail_dead_requeue", &mut |con| {
        let id: u64 = redis::cmd("QPUSH")
            .arg(q("d"))
            .arg("x")
            .arg("RETRIES")
            .arg(0)
            .query(con)
            .map_err(err)?;
        let _: Value = redis::cmd("QPULL").arg(q("d")).query(con).map_err(err)?;
        let state: String = redis::cmd("QFAIL")
            .arg(q("d"))
            .arg(id)
            .arg("ERROR")
            .arg("boom")
            .query(con)
            .map_err(err)?;
        let listed: Vec<(String, u64, String, u32, String)> = redis::cmd("QDLQ")
            .arg("LIST")
            .arg(q("d"))
            .query(con)
            .map_err(err)?;
        let requeued: i64 = redis::cmd("QDLQ")
            .arg("REQUEUE")
            .arg(q("d"))
            .arg("ALL")
            .query(con)
            .map_err(err)?;
        check(
            "dead, listed with boom, requeued",
            state == "dead" && listed.first().is_some_and(|j| j.4 == "boom") && requeued == 1,
        )
    });
    run("stats", &mut |con| {
        let _: u64 = redis::cmd("QPUSH").arg(q("s")).arg("x").query(con).map_err(err)?;
        let fields = stats(redis::cmd("QSTATS").arg(q("s")).query(con).map_err(err)?);
        check(
            "waiting 1, pushed 1",
            fields.get("waiting") == Some(&1) && fields.get("pushed") == Some(&1),
        )
    });
    run("pipeline", &mut |con| {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("QPUSH").arg(q("p")).arg(i);
        }
        let ids: Vec<u64> = pipe.query(con).map_err(err)?;
        check(
            "1000 increasing ids",
            ids.len() == 1000 && ids.windows(2).all(|w| w[0] < w[1]),
        )
    });
    run("error_type", &mut |con| match redis::cmd("QPUSH")
        .arg(q("e"))
        .arg("x")
        .arg("PRIORITY")
        .arg("high")
        .query::<u64>(con)
    {
        Err(e) if e.to_string().contains("not an integer") => Ok(()),
        other => Err(format!("{other:?}")),
    });
    run("auth", &mut |_| {
        let anonymous = Client::open(env.url(env.auth_port, resp3, None)).map_err(err)?;
        let refused = anonymous
            .get_connection()
            .and_then(|mut c| redis::cmd("QLEN").arg(q("x")).query::<i64>(&mut c));
        check(
            "NOAUTH without a password",
            refused.is_err_and(|e| e.to_string().contains("NOAUTH")),
        )?;
        let authed = Client::open(env.url(env.auth_port, resp3, Some(&env.password))).map_err(err)?;
        let pong: String = redis::cmd("PING")
            .query(&mut authed.get_connection().map_err(err)?)
            .map_err(err)?;
        check("PONG with the password", pong == "PONG")
    });
    run("reconnect", &mut |con| {
        let _: Vec<u64> = redis::cmd("QMPUSH")
            .arg(q("r"))
            .arg(2)
            .arg(&["a", "b"])
            .query(con)
            .map_err(err)?;
        env.restart()?;
        // A sync connection does not reconnect by itself; the client
        // object hands out a new one.
        let mut fresh = client.get_connection().map_err(err)?;
        let len: i64 = redis::cmd("QLEN").arg(q("r")).query(&mut fresh).map_err(err)?;
        *con = fresh;
        check("the length from before the restart", len == 2)
    });
}

// ----- async multiplexed --------------------------------------------------

async fn async_suite(env: &Env, resp3: bool, failed: &mut bool) {
    let tag = if resp3 { "rs:async3" } else { "rs:async2" };
    let q = |suffix: &str| format!("{tag}:{suffix}");
    let client = Client::open(env.url(env.port, resp3, None)).expect("url");
    // Blocking pulls outlast redis-rs's default 500 ms response timeout.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let mut con = match client.get_multiplexed_async_connection_with_config(&config).await {
        Ok(con) => con,
        Err(e) => return report("connect", Err(err(e)), failed),
    };

    async fn step<F: Future<Output = Outcome>>(name: &str, f: F, failed: &mut bool) {
        report(name, f.await, failed);
    }
    let c = &mut con;

    step(
        "connect",
        async {
            let pong: String = redis::cmd("PING")
                .query_async(&mut c.clone())
                .await
                .map_err(err)?;
            check("PONG", pong == "PONG")
        },
        failed,
    )
    .await;
    step(
        "push_options",
        async {
            let mut c = c.clone();
            let id: u64 = redis::cmd("QPUSH")
                .arg(q("opt"))
                .arg("payload")
                .arg(&["PRIORITY", "5", "RETRIES", "2", "BACKOFF", "100", "LEASE", "5000"])
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let fields = stats(
                redis::cmd("QGET")
                    .arg(q("opt"))
                    .arg(id)
                    .query_async(&mut c)
                    .await
                    .map_err(err)?,
            );
            check(
                "priority 5, retries 2",
                fields.get("priority") == Some(&5) && fields.get("retries") == Some(&2),
            )
        },
        failed,
    )
    .await;
    step(
        "mpush",
        async {
            let ids: Vec<u64> = redis::cmd("QMPUSH")
                .arg(q("m"))
                .arg(3)
                .arg(&["a", "b", "c"])
                .query_async(&mut c.clone())
                .await
                .map_err(err)?;
            check("consecutive ids", ids.len() == 3 && ids[2] == ids[0] + 2)
        },
        failed,
    )
    .await;
    step(
        "blocking_pull",
        async {
            // A blocking command stalls everything behind it on a multiplexed
            // connection: the worker gets a connection of its own.
            let mut worker: MultiplexedConnection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(err)?;
            let queue = q("b");
            let pull = tokio::spawn(async move {
                redis::cmd("QPULL")
                    .arg(queue)
                    .arg("BLOCK")
                    .arg(5000)
                    .query_async::<Vec<(String, u64, String, u32)>>(&mut worker)
                    .await
            });
            let mut c = c.clone();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let info: String = redis::cmd("INFO")
                    .arg("clients")
                    .query_async(&mut c)
                    .await
                    .map_err(err)?;
                if info.contains("blocked_clients:1") {
                    break;
                }
                check("the pull never blocked", Instant::now() < deadline)?;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let id: u64 = redis::cmd("QPUSH")
                .arg(q("b"))
                .arg("wake")
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let jobs = pull.await.map_err(|e| e.to_string())?.map_err(err)?;
            check(
                "woken with the pushed job",
                jobs.first().is_some_and(|j| j.1 == id && j.2 == "wake"),
            )
        },
        failed,
    )
    .await;
    step(
        "ack",
        async {
            let mut c = c.clone();
            let id: u64 = redis::cmd("QPUSH")
                .arg(q("a"))
                .arg("x")
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let _: Value = redis::cmd("QPULL")
                .arg(q("a"))
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let first: i64 = redis::cmd("QACK")
                .arg(q("a"))
                .arg(id)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let again: i64 = redis::cmd("QACK")
                .arg(q("a"))
                .arg(id)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            check("1 then 0", (first, again) == (1, 0))
        },
        failed,
    )
    .await;
    step(
        "fail_dead_requeue",
        async {
            let mut c = c.clone();
            let id: u64 = redis::cmd("QPUSH")
                .arg(q("d"))
                .arg("x")
                .arg("RETRIES")
                .arg(0)
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let _: Value = redis::cmd("QPULL")
                .arg(q("d"))
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let state: String = redis::cmd("QFAIL")
                .arg(q("d"))
                .arg(id)
                .arg("ERROR")
                .arg("boom")
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let listed: Vec<(String, u64, String, u32, String)> = redis::cmd("QDLQ")
                .arg("LIST")
                .arg(q("d"))
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let requeued: i64 = redis::cmd("QDLQ")
                .arg("REQUEUE")
                .arg(q("d"))
                .arg("ALL")
                .query_async(&mut c)
                .await
                .map_err(err)?;
            check(
                "dead, listed with boom, requeued",
                state == "dead" && listed.first().is_some_and(|j| j.4 == "boom") && requeued == 1,
            )
        },
        failed,
    )
    .await;
    step(
        "stats",
        async {
            let mut c = c.clone();
            let _: u64 = redis::cmd("QPUSH")
                .arg(q("s"))
                .arg("x")
                .query_async(&mut c)
                .await
                .map_err(err)?;
            let fields = stats(
                redis::cmd("QSTATS")
                    .arg(q("s"))
                    .query_async(&mut c)
                    .await
                    .map_err(err)?,
            );
            check(
                "waiting 1, pushed 1",
                fields.get("waiting") == Some(&1) && fields.get("pushed") == Some(&1),
            )
        },
        failed,
    )
    .await;
    step(
        "pipeline",
        async {
            let mut pipe = redis::pipe();
            for i in 0..1000 {
                pipe.cmd("QPUSH").arg(q("p")).arg(i);
            }
            let ids: Vec<u64> = pipe.query_async(&mut c.clone()).await.map_err(err)?;
            check(
                "1000 increasing ids",
                ids.len() == 1000 && ids.windows(2).all(|w| w[0] < w[1]),
            )
        },
        failed,
    )
    .await;
    step(
        "error_type",
        async {
            let result = redis::cmd("QPUSH")
                .arg(q("e"))
                .arg("x")
                .arg("PRIORITY")
                .arg("high")
                .query_async::<u64>(&mut c.clone())
                .await;
            match result {
                Err(e) if e.to_string().contains("not an integer") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
        failed,
    )
    .await;
    step(
        "auth",
        async {
            let anonymous = Client::open(env.url(env.auth_port, resp3, None)).map_err(err)?;
            let refused = match anonymous.get_multiplexed_async_connection().await {
                Ok(mut c) => redis::cmd("QLEN").arg(q("x")).query_async::<i64>(&mut c).await,
                Err(e) => Err(e),
            };
            check(
                "NOAUTH without a password",
                refused.is_err_and(|e| e.to_string().contains("NOAUTH")),
            )?;
            let authed = Client::open(env.url(env.auth_port, resp3, Some(&env.password))).map_err(err)?;
            let mut c = authed.get_multiplexed_async_connection().await.map_err(err)?;
            let pong: String = redis::cmd("PING").query_async(&mut c).await.map_err(err)?;
            check("PONG with the password", pong == "PONG")
        },
        failed,
    )
    .await;
    step(
        "reconnect",
        async {
            // redis-rs's reconnecting async handle: a ConnectionManager over a
            // multiplexed connection.
            let manager_config =
                ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
            let mut manager: ConnectionManager = client
                .get_connection_manager_with_config(manager_config)
                .await
                .map_err(err)?;
            let _: Vec<u64> = redis::cmd("QMPUSH")
                .arg(q("r"))
                .arg(2)
                .arg(&["a", "b"])
                .query_async(&mut manager)
                .await
                .map_err(err)?;
            env.restart()?;
            // The first command may see the broken connection; the manager
            // reconnects behind it.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match redis::cmd("QLEN")
                    .arg(q("r"))
                    .query_async::<i64>(&mut manager)
                    .await
                {
                    Ok(len) => return check("the length from before the restart", len == 2),
                    Err(e) if Instant::now() > deadline => return Err(err(e)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        },
        failed,
    )
    .await;
}

fn main() {
    let env = Env::read();
    let version = std::env::var("REDIS_RS_VERSION").unwrap_or_else(|_| "?".into());
    let mut failed = false;
    for resp3 in [false, true] {
        println!(
            "SUITE redis-rs@{version} (sync, RESP{})",
            if resp3 { 3 } else { 2 }
        );
        sync_suite(&env, resp3, &mut failed);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for resp3 in [false, true] {
        println!(
            "SUITE redis-rs@{version} (async multiplexed, RESP{})",
            if resp3 { 3 } else { 2 }
        );
        runtime.block_on(async_suite(&env, resp3, &mut failed));
    }
    std::process::exit(i32::from(failed));
}
