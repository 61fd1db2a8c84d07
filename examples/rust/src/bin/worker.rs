//! A Quern worker with the redis crate on tokio: pull, handle, ack, or
//! fail with the error. Long jobs keep their lease with QTOUCH; on SIGTERM
//! the worker stops pulling and hands an unfinished job back with
//! QFAIL ... SILENT (the attempt is not counted).
//!
//!     REDIS_URL=redis://127.0.0.1:6379 cargo run -p quern-example --bin worker

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};
use tokio::signal::unix::{signal, SignalKind};

const LEASE_MS: u64 = 30_000;

/// Your work goes here. An `Err` fails the job with that message.
async fn handle(payload: String) -> Result<(), String> {
    if payload.contains("\"fail\": true") {
        return Err(format!("cannot handle {payload}"));
    }
    if let Some(seconds) = payload
        .split("\"seconds\": ")
        .nth(1)
        .and_then(|s| s.trim_end_matches('}').parse().ok())
    {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> RedisResult<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = std::env::var("QUEUE").unwrap_or_else(|_| "emails".into());
    let client = redis::Client::open(url)?;
    // Blocking pulls get a connection of their own (a blocked command holds
    // up everything behind it on a multiplexed connection), without the
    // default 500 ms response timeout.
    let no_timeout = AsyncConnectionConfig::new().set_response_timeout(None);
    let mut puller = client
        .get_multiplexed_async_connection_with_config(&no_timeout)
        .await?;
    let mut commands: MultiplexedConnection = client.get_multiplexed_async_connection().await?;
    let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");

    let mut pull = redis::cmd("QPULL");
    pull.arg(&queue).arg("BLOCK").arg(1000).arg("LEASE").arg(LEASE_MS);
    loop {
        let jobs: Option<Vec<(String, u64, String, u32)>> = tokio::select! {
            _ = sigterm.recv() => break,
            jobs = pull.query_async(&mut puller) => jobs?,
        };
        for (queue, id, payload, attempt) in jobs.unwrap_or_default() {
            let work = tokio::spawn(handle(payload));
            tokio::pin!(work);
            let mut renew = tokio::time::interval(Duration::from_millis(LEASE_MS / 3));
            renew.tick().await;
            let outcome = loop {
                tokio::select! {
                    outcome = &mut work => break outcome.unwrap_or_else(|e| Err(e.to_string())),
                    _ = renew.tick() => {
                        let _: u64 = redis::cmd("QTOUCH").arg(&queue).arg(id).arg("ATTEMPT").arg(attempt)
                            .query_async(&mut commands).await?;
                    }
                    _ = sigterm.recv() => {
                        // Not finished: back to the queue, unattempted.
                        work.abort();
                        let _: String = redis::cmd("QFAIL").arg(&queue).arg(id).arg("SILENT")
                            .arg("ATTEMPT").arg(attempt).query_async(&mut commands).await?;
                        println!("worker stopped");
                        return Ok(());
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    let _: u64 = redis::cmd("QACK")
                        .arg(&queue)
                        .arg(id)
                        .arg("ATTEMPT")
                        .arg(attempt)
                        .query_async(&mut commands)
                        .await?;
                }
                Err(error) => {
                    let state: String = redis::cmd("QFAIL")
                        .arg(&queue)
                        .arg(id)
                        .arg("ERROR")
                        .arg(&error)
                        .arg("ATTEMPT")
                        .arg(attempt)
                        .query_async(&mut commands)
                        .await?;
                    println!("job {id} failed ({error}): now {state}");
                }
            }
        }
    }
    println!("worker stopped");
    Ok(())
}
