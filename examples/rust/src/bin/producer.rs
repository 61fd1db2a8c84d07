//! Pushes one job per argument to a Quern queue with the redis crate.
//!
//!     REDIS_URL=redis://127.0.0.1:6379 cargo run -p quern-example --bin producer -- '{"to":"ada@example.com"}'

fn main() -> redis::RedisResult<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = std::env::var("QUEUE").unwrap_or_else(|_| "emails".into());
    let mut con = redis::Client::open(url)?.get_connection()?;
    for payload in std::env::args().skip(1) {
        // RETRIES: failed attempts retried before the dead-letter queue;
        // LEASE: how long a worker may hold the job before it comes back.
        let id: u64 = redis::cmd("QPUSH")
            .arg(&queue)
            .arg(payload)
            .arg(&["RETRIES", "3", "LEASE", "30000"])
            .query(&mut con)?;
        println!("pushed job {id}");
    }
    Ok(())
}
