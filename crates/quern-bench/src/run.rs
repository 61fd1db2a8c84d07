//! One run, from flush to report: the settings, the per-connection loops
//! (pushers and pullers, pipelined), the warmup/measure/stop phases and
//! the numbers that come out of them.
//!
//! Latency is measured per request: from the moment its batch was written
//! to the moment the read that brought its reply returned. A job pulled
//! and acknowledged counts once, from its pull's send to its ack's reply;
//! in the cycle workload, from the push's send (stamped in the payload) to
//! the ack's reply.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Notify;

use crate::conn::Conn;
use crate::cpu;
use crate::resp::Reply;
use crate::workload::{self, Queue, Target, Workload};
use crate::Error;

/// Default number of connections.
pub const DEFAULT_CLIENTS: usize = 50;
/// Default requests in flight per connection.
pub const DEFAULT_PIPELINE: usize = 1;
/// Default payload size in bytes.
pub const DEFAULT_PAYLOAD: usize = 100;
/// Default jobs pushed before a pull run. Two million outlasts a default
/// run (1 s warmup + 5 s) at up to about 330k pulls/s; a faster target
/// runs dry, which the report says, and then `--preload` must be raised.
pub const DEFAULT_PRELOAD: u64 = 2_000_000;
/// Connections that preload the queues.
const PRELOAD_CONNS: usize = 4;
/// Pushes in flight per preloading connection: deep enough that preloading
/// is quick on every target, and still far below any server's limits.
const PRELOAD_DEPTH: usize = 256;
/// Highest latency the histograms can tell apart from "this or more".
const MAX_LATENCY_US: u64 = 60_000_000;
/// Message of the error reported when a pull finds no job.
pub const RAN_DRY: &str = "queue ran dry, raise --preload";

/// The settings of one run; `Default` gives the command line's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Which server and data structure.
    pub target: Target,
    /// What the connections do.
    pub workload: Workload,
    /// Connections (push and pull); cycle splits them between producers
    /// and workers unless those are given.
    pub clients: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Payload size in bytes.
    pub payload: usize,
    /// Queues; connection `i` uses queue `i % queues`.
    pub queues: usize,
    /// Queue names are `{prefix}:{index}`.
    pub prefix: String,
    /// Length of the measured phase.
    pub duration: Duration,
    /// Length of the unmeasured phase before it.
    pub warmup: Duration,
    /// Jobs pushed before a pull run (0: pull what is there).
    pub preload: u64,
    /// Pull without acknowledging (a leased pull, or a bare LMOVE or
    /// XREADGROUP).
    pub no_ack: bool,
    /// Cycle producers (default `clients / 2`).
    pub producers: Option<usize>,
    /// Cycle workers (default `clients / 2`).
    pub workers: Option<usize>,
    /// Delete the queues before the run.
    pub flush: bool,
    /// Server process whose CPU time is reported.
    pub server_pid: Option<u32>,
    /// Runtime worker threads, for the report: the caller builds the
    /// runtime.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            host: "127.0.0.1".into(),
            port: 6379,
            target: Target::Quern,
            workload: Workload::Push,
            clients: DEFAULT_CLIENTS,
            pipeline: DEFAULT_PIPELINE,
            payload: DEFAULT_PAYLOAD,
            queues: 1,
            prefix: "bench".into(),
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            preload: DEFAULT_PRELOAD,
            no_ack: false,
            producers: None,
            workers: None,
            flush: true,
            server_pid: None,
            threads: 1,
        }
    }
}

impl Config {
    /// Cycle producers and workers, after defaults.
    fn sides(&self) -> (usize, usize) {
        let half = (self.clients / 2).max(1);
        (self.producers.unwrap_or(half), self.workers.unwrap_or(half))
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::Config(msg.into()));
        if self.pipeline == 0 {
            return bad("--pipeline must be at least 1");
        }
        if self.queues == 0 {
            return bad("--queues must be at least 1");
        }
        if self.duration.is_zero() {
            return bad("--duration must be above 0");
        }
        match self.workload {
            Workload::Cycle => {
                let (producers, workers) = self.sides();
                if producers == 0 || workers == 0 {
                    return bad("cycle needs at least one producer and one worker");
                }
                if self.payload < workload::STAMP_LEN {
                    return bad("cycle needs --payload of at least 16 bytes for the push-time stamp");
                }
                if self.no_ack {
                    return bad("--no-ack is for the pull workload");
                }
            }
            Workload::Push | Workload::Pull if self.clients == 0 => {
                return bad("--clients must be at least 1")
            }
            Workload::Push if self.no_ack => return bad("--no-ack is for the pull workload"),
            _ => {}
        }
        Ok(())
    }
}

/// What a run measured. Serialized flat, so a script reads it by key.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Server and data structure.
    pub target: Target,
    /// Workload.
    pub workload: Workload,
    /// Pulls were not acknowledged.
    pub no_ack: bool,
    /// Connections in the load (producers + workers in cycle).
    pub clients: usize,
    /// Cycle producers (0 otherwise).
    pub producers: usize,
    /// Cycle workers (0 otherwise).
    pub workers: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Payload size in bytes.
    pub payload: usize,
    /// Queues.
    pub queues: usize,
    /// Runtime worker threads of the bench.
    pub threads: usize,
    /// Length of the measured phase as it ran (shorter than asked when
    /// the queue ran dry or a connection failed).
    pub duration_s: f64,
    /// Operations completed in the measured phase: pushes, or jobs
    /// (a pull, plus its ack unless `no_ack`).
    pub operations: u64,
    /// `operations` per second.
    pub ops_per_s: f64,
    /// Cycle: pushes completed in the measured phase.
    pub push_operations: u64,
    /// Cycle: `push_operations` per second.
    pub push_ops_per_s: f64,
    /// Latency percentiles of the measured operations, in ms.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest latency seen.
    pub max_ms: f64,
    /// CPU seconds the server used in the measured phase (`--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// Server CPU milliseconds per thousand operations.
    pub server_cpu_ms_per_1k_ops: Option<f64>,
    /// CPU seconds the bench itself used in the measured phase.
    pub bench_cpu_s: Option<f64>,
    /// Error replies from warmup to the end of the drain, plus one if the
    /// queue ran dry. Any error fails the run.
    pub errors: u64,
    /// The first of them.
    pub first_error: Option<String>,
    /// A pull found the queue empty and the run stopped early.
    pub ran_dry: bool,
    /// Jobs pushed before the run.
    pub preloaded: u64,
    /// Seconds the preload took.
    pub preload_s: f64,
    /// Pushes answered, in every phase (preload included).
    pub pushed_total: u64,
    /// Jobs pulled (and acked unless `no_ack`), in every phase.
    pub pulled_total: u64,
}

impl Report {
    /// Whether the run must exit non-zero.
    pub fn failed(&self) -> bool {
        self.errors > 0
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What the controller and the connection tasks share.
#[derive(Debug)]
struct Shared {
    /// WARMUP, MEASURE or STOP; read once per reply.
    phase: AtomicU8,
    /// The run's start: cycle stamps count nanoseconds from here.
    epoch: Instant,
    /// A pull found no job.
    dry: AtomicBool,
    /// Wakes the controller early: the queue ran dry or a task failed.
    wake: Notify,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            phase: AtomicU8::new(WARMUP),
            epoch: Instant::now(),
            dry: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    fn stopping(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == STOP
    }

    fn measuring(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == MEASURE
    }

    fn stop(&self) {
        self.phase.store(STOP, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Sleeps for `d` unless the run is stopped first.
    async fn sleep(&self, d: Duration) {
        if !self.stopping() {
            tokio::select! {
                () = tokio::time::sleep(d) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    fn nanos_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// What one connection counted.
#[derive(Debug)]
struct Tally {
    /// Latencies of measured operations, in µs.
    latency: Histogram<u64>,
    /// Operations completed in the measured phase.
    measured: u64,
    /// Operations completed in any phase.
    done: u64,
    /// Error replies.
    errors: u64,
    /// The first error reply.
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            measured: 0,
            done: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn complete(&mut self, measuring: bool, latency: Duration) {
        self.done += 1;
        if measuring {
            self.measured += 1;
            self.latency.saturating_record(latency.as_micros() as u64);
        }
    }

    fn error(&mut self, message: &[u8]) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(String::from_utf8_lossy(message).into_owned());
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency
            .add(&other.latency)
            .expect("histograms of equal bounds");
        self.measured += other.measured;
        self.done += other.done;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Where a connection works and how deep its pipeline is.
#[derive(Debug, Clone)]
struct Lane {
    target: Target,
    queue: Queue,
    depth: usize,
}

/// What a connection does on its lane.
#[derive(Debug, Clone)]
enum Work {
    Push {
        /// Payload size.
        size: usize,
        /// Stamp each payload with its push time (cycle).
        stamped: bool,
        /// Stop after this many pushes (preload).
        budget: Option<u64>,
    },
    Pull {
        /// The connection's consumer name in the stream's group.
        consumer: Vec<u8>,
        /// Acknowledge each job.
        ack: bool,
        /// Wait for jobs instead of stopping when the queue is empty (cycle).
        block: bool,
        /// Latency from the payload's push stamp (cycle).
        stamped: bool,
    },
}

/// Which total of the report a connection's tally goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Pushes of the push workload, jobs of pull and cycle.
    Main,
    /// Pushes of the cycle's producers.
    Producer,
}

/// Runs the load described by `cfg` on the current tokio runtime.
pub async fn run(cfg: &Config) -> Result<Report, Error> {
    cfg.validate()?;
    let queues: Vec<Queue> = (0..cfg.queues).map(|i| Queue::new(&cfg.prefix, i)).collect();
    prepare(cfg, &queues).await?;
    let preload_start = Instant::now();
    let preloaded = match cfg.workload {
        Workload::Pull if cfg.preload > 0 => preload(cfg, &queues).await?,
        _ => 0,
    };
    let preload_s = preload_start.elapsed().as_secs_f64();

    let plan = plan(cfg, &queues);
    // Connect everything first, so that the load starts all at once.
    let mut conns = Vec::with_capacity(plan.len());
    for _ in &plan {
        conns.push(Conn::connect(&cfg.host, cfg.port).await?);
    }
    let shared = Arc::new(Shared::new());
    let mut tasks = Vec::with_capacity(plan.len());
    for ((side, lane, work), mut conn) in plan.into_iter().zip(conns) {
        let shared = Arc::clone(&shared);
        tasks.push((
            side,
            tokio::spawn(async move {
                let result = drive(&mut conn, &shared, &lane, &work).await;
                if result.is_err() {
                    shared.stop();
                }
                result
            }),
        ));
    }

    shared.sleep(cfg.warmup).await;
    let _ = shared
        .phase
        .compare_exchange(WARMUP, MEASURE, Ordering::Relaxed, Ordering::Relaxed);
    let (start, server_start, bench_start) = (Instant::now(), server_cpu(cfg), cpu::seconds(None));
    shared.sleep(cfg.duration).await;
    shared.stop();
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu_s = server_start.zip(server_cpu(cfg)).map(|(a, b)| b - a);
    let bench_cpu_s = bench_start.zip(cpu::seconds(None)).map(|(a, b)| b - a);

    let (mut main, mut producers) = (Tally::new(), Tally::new());
    let mut failure = None;
    for (side, task) in tasks {
        match task.await {
            Ok(Ok(tally)) if side == Side::Main => main.merge(tally),
            Ok(Ok(tally)) => producers.merge(tally),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(Error::Setup(format!("a connection task failed: {e}")))),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let ran_dry = shared.dry.load(Ordering::Relaxed);
    let mut errors = main.errors + producers.errors;
    let mut first_error = main.first_error.take().or(producers.first_error.take());
    if ran_dry {
        errors += 1;
        first_error = first_error.or(Some(RAN_DRY.into()));
    }
    let per_s = |n: u64| if elapsed > 0.0 { n as f64 / elapsed } else { 0.0 };
    let ms = |us: u64| us as f64 / 1000.0;
    let h = &main.latency;
    let (n_producers, n_workers) = match cfg.workload {
        Workload::Cycle => cfg.sides(),
        _ => (0, 0),
    };
    let (pushed_total, pulled_total) = match cfg.workload {
        Workload::Push => (main.done, 0),
        Workload::Pull => (preloaded, main.done),
        Workload::Cycle => (producers.done, main.done),
    };
    Ok(Report {
        target: cfg.target,
        workload: cfg.workload,
        no_ack: cfg.no_ack,
        clients: match cfg.workload {
            Workload::Cycle => n_producers + n_workers,
            _ => cfg.clients,
        },
        producers: n_producers,
        workers: n_workers,
        pipeline: cfg.pipeline,
        payload: cfg.payload,
        queues: cfg.queues,
        threads: cfg.threads,
        duration_s: elapsed,
        operations: main.measured,
        ops_per_s: per_s(main.measured),
        push_operations: producers.measured,
        push_ops_per_s: per_s(producers.measured),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
        server_cpu_s,
        server_cpu_ms_per_1k_ops: server_cpu_s
            .filter(|_| main.measured > 0)
            .map(|s| s * 1000.0 * 1000.0 / main.measured as f64),
        bench_cpu_s,
        errors,
        first_error,
        ran_dry,
        preloaded,
        preload_s,
        pushed_total,
        pulled_total,
    })
}

fn server_cpu(cfg: &Config) -> Option<f64> {
    cpu::seconds(Some(cfg.server_pid?))
}

/// Sends each queue's setup command on one connection: the flush, and the
/// stream's consumer group.
async fn prepare(cfg: &Config, queues: &[Queue]) -> Result<(), Error> {
    let mut conn = Conn::connect(&cfg.host, cfg.port).await?;
    let setup_error = |what: &str, q: &Queue, e: &[u8]| {
        Error::Setup(format!(
            "{what} {} failed: {}",
            String::from_utf8_lossy(&q.name),
            String::from_utf8_lossy(e)
        ))
    };
    for q in queues {
        if cfg.flush {
            workload::flush(cfg.target, &mut conn.wbuf, q);
            if let Some(e) = conn.call(error_text).await? {
                return Err(setup_error("flushing", q, &e));
            }
        }
        if cfg.target == Target::RedisStream && cfg.workload != Workload::Push {
            workload::create_group(&mut conn.wbuf, q);
            match conn.call(error_text).await? {
                Some(e) if !e.starts_with(b"BUSYGROUP") => {
                    return Err(setup_error("creating the group of", q, &e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The error message of an error reply.
fn error_text(reply: Reply<'_>) -> Option<Vec<u8>> {
    match reply {
        Reply::Error(e) => Some(e.to_vec()),
        _ => None,
    }
}

/// Pushes `cfg.preload` jobs, spread evenly over the queues, each queue's
/// share split over [`PRELOAD_CONNS`] pipelined connections.
async fn preload(cfg: &Config, queues: &[Queue]) -> Result<u64, Error> {
    let shared = Arc::new(Shared::new());
    let mut tasks = Vec::new();
    for c in 0..PRELOAD_CONNS as u64 {
        let mut conn = Conn::connect(&cfg.host, cfg.port).await?;
        let shares: Vec<(Lane, u64)> = queues
            .iter()
            .enumerate()
            .map(|(i, queue)| {
                let of_queue = share(cfg.preload, queues.len() as u64, i as u64);
                let lane = Lane {
                    target: cfg.target,
                    queue: queue.clone(),
                    depth: PRELOAD_DEPTH,
                };
                (lane, share(of_queue, PRELOAD_CONNS as u64, c))
            })
            .collect();
        let (shared, size) = (Arc::clone(&shared), cfg.payload);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            for (lane, n) in shares {
                let work = Work::Push {
                    size,
                    stamped: false,
                    budget: Some(n),
                };
                tally.merge(drive(&mut conn, &shared, &lane, &work).await?);
            }
            Ok::<_, Error>(tally)
        }));
    }
    let mut total = Tally::new();
    for task in tasks {
        let tally = task
            .await
            .map_err(|e| Error::Setup(format!("a preload task failed: {e}")))??;
        total.merge(tally);
    }
    if let Some(e) = total.first_error {
        return Err(Error::Setup(format!(
            "preload: {} error replies, the first: {e}",
            total.errors
        )));
    }
    Ok(total.done)
}

/// Part `index` of `total` split into `parts` near-equal parts.
fn share(total: u64, parts: u64, index: u64) -> u64 {
    total / parts + u64::from(index < total % parts)
}

/// Every connection of the load: its side, lane and work.
fn plan(cfg: &Config, queues: &[Queue]) -> Vec<(Side, Lane, Work)> {
    let lane = |i: usize| Lane {
        target: cfg.target,
        queue: queues[i % queues.len()].clone(),
        depth: cfg.pipeline,
    };
    let puller = |i: usize, cycle: bool| Work::Pull {
        consumer: format!("c{i}").into_bytes(),
        ack: !cfg.no_ack,
        block: cycle,
        stamped: cycle,
    };
    let pusher = |stamped| Work::Push {
        size: cfg.payload,
        stamped,
        budget: None,
    };
    match cfg.workload {
        Workload::Push => (0..cfg.clients)
            .map(|i| (Side::Main, lane(i), pusher(false)))
            .collect(),
        Workload::Pull => (0..cfg.clients)
            .map(|i| (Side::Main, lane(i), puller(i, false)))
            .collect(),
        Workload::Cycle => {
            let (producers, workers) = cfg.sides();
            let producers = (0..producers).map(|i| (Side::Producer, lane(i), pusher(true)));
            let workers = (0..workers).map(|i| (Side::Main, lane(i), puller(i, true)));
            producers.chain(workers).collect()
        }
    }
}

/// Runs one connection's work until the run stops (or its budget is spent)
/// and everything it sent is answered.
async fn drive(conn: &mut Conn, shared: &Shared, lane: &Lane, work: &Work) -> Result<Tally, Error> {
    match work {
        Work::Push {
            size,
            stamped,
            budget,
        } => push_loop(conn, shared, lane, *size, *stamped, *budget).await,
        Work::Pull {
            consumer,
            ack,
            block,
            stamped,
        } => pull_loop(conn, shared, lane, consumer, *ack, *block, *stamped).await,
    }
}

fn out_of_step() -> Error {
    Error::Protocol("a reply arrived for no request".into())
}

async fn push_loop(
    conn: &mut Conn,
    shared: &Shared,
    lane: &Lane,
    size: usize,
    stamped: bool,
    budget: Option<u64>,
) -> Result<Tally, Error> {
    let mut tally = Tally::new();
    let mut payload = workload::plain_payload(size);
    // Send times of the pushes in flight, oldest first, as replies come.
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(lane.depth);
    let mut sent = 0u64;
    loop {
        if !shared.stopping() {
            let now = Instant::now();
            while in_flight.len() < lane.depth && budget.is_none_or(|b| sent < b) {
                if stamped {
                    workload::stamp(&mut payload, shared.nanos_since_epoch(now));
                }
                workload::push(lane.target, &mut conn.wbuf, &lane.queue, &payload);
                in_flight.push_back(now);
                sent += 1;
            }
        }
        if in_flight.is_empty() {
            return Ok(tally);
        }
        conn.flush().await?;
        conn.replies(|reply, now, _| {
            let sent_at = in_flight.pop_front().ok_or_else(out_of_step)?;
            match reply {
                Reply::Error(e) => tally.error(e),
                _ => tally.complete(shared.measuring(), now.saturating_duration_since(sent_at)),
            }
            Ok(())
        })
        .await?;
    }
}

/// A request of a puller awaiting its reply.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// A pull, and when it was sent.
    Pull(Instant),
    /// An ack, and when its job's latency started.
    Ack(Instant),
}

async fn pull_loop(
    conn: &mut Conn,
    shared: &Shared,
    lane: &Lane,
    consumer: &[u8],
    ack: bool,
    block: bool,
    stamped: bool,
) -> Result<Tally, Error> {
    let mut tally = Tally::new();
    let mut in_flight: VecDeque<Pending> = VecDeque::with_capacity(lane.depth);
    let mut dry = false;
    loop {
        // An ack takes its pull's place in the pipeline, so only pulls
        // that were answered (with a job acked, or without) are replaced.
        if !dry && !shared.stopping() {
            let now = Instant::now();
            while in_flight.len() < lane.depth {
                workload::pull(lane.target, &mut conn.wbuf, &lane.queue, consumer, block);
                in_flight.push_back(Pending::Pull(now));
            }
        }
        if in_flight.is_empty() {
            return Ok(tally);
        }
        conn.flush().await?;
        conn.replies(|reply, now, wbuf| {
            let pending = in_flight.pop_front().ok_or_else(out_of_step)?;
            if let Reply::Error(e) = reply {
                tally.error(e);
                return Ok(());
            }
            match pending {
                Pending::Pull(sent) => {
                    let Some(job) = workload::pulled(lane.target, &reply).map_err(Error::Protocol)? else {
                        // Only a non-blocking pull means the preload is used
                        // up; a blocking one just waited out its timeout.
                        if !block && !dry {
                            dry = true;
                            shared.dry.store(true, Ordering::Relaxed);
                            shared.stop();
                        }
                        return Ok(());
                    };
                    let origin = if stamped {
                        match workload::read_stamp(job.payload) {
                            Some(nanos) => shared.epoch + Duration::from_nanos(nanos),
                            None => {
                                tally.error(b"pulled a payload without a push stamp (flush the queue)");
                                sent
                            }
                        }
                    } else {
                        sent
                    };
                    if ack {
                        workload::ack(lane.target, wbuf, &lane.queue, &job);
                        in_flight.push_back(Pending::Ack(origin));
                    } else {
                        tally.complete(shared.measuring(), now.saturating_duration_since(origin));
                    }
                }
                Pending::Ack(origin) => {
                    if reply == Reply::Integer(0) {
                        tally.error(b"an ack matched no pulled job");
                    } else {
                        tally.complete(shared.measuring(), now.saturating_duration_since(origin));
                    }
                }
            }
            Ok(())
        })
        .await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, parts) in [(0, 4), (3, 4), (2_000_000, 4), (10, 3)] {
            let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn cycle_splits_clients() {
        let cfg = Config {
            workload: Workload::Cycle,
            clients: 50,
            ..Config::default()
        };
        assert_eq!(cfg.sides(), (25, 25));
        let cfg = Config {
            workers: Some(3),
            ..cfg
        };
        assert_eq!(cfg.sides(), (25, 3));
        let plan = plan(&cfg, &[Queue::new("b", 0)]);
        assert_eq!(plan.iter().filter(|p| p.0 == Side::Producer).count(), 25);
        assert_eq!(plan.iter().filter(|p| p.0 == Side::Main).count(), 3);
    }

    #[test]
    fn rejects_nonsense() {
        let cycle = Config {
            workload: Workload::Cycle,
            payload: 8,
            ..Config::default()
        };
        assert!(cycle.validate().is_err(), "no room for the stamp");
        let push = Config {
            pipeline: 0,
            ..Config::default()
        };
        assert!(push.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn connections_spread_over_queues() {
        let cfg = Config {
            clients: 5,
            queues: 2,
            ..Config::default()
        };
        let queues: Vec<Queue> = (0..2).map(|i| Queue::new("bench", i)).collect();
        let names: Vec<Vec<u8>> = plan(&cfg, &queues).into_iter().map(|p| p.1.queue.name).collect();
        assert_eq!(names.iter().filter(|n| n.as_slice() == b"bench:0").count(), 3);
        assert_eq!(names.iter().filter(|n| n.as_slice() == b"bench:1").count(), 2);
    }
}
