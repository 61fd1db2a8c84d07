//! `quern-bench`: the command line. Reads the flags, runs the load on one
//! tokio runtime and prints the report, as a table or as one JSON object.
//! Exits 1 when the server answered any error (or the queue ran dry), 2
//! when the run could not be carried out.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use quern_bench::run::{DEFAULT_CLIENTS, DEFAULT_PAYLOAD, DEFAULT_PIPELINE, DEFAULT_PRELOAD};
use quern_bench::{Config, Report, Target, Workload};

/// Load generator for Quern, with the same workloads on Redis lists and
/// streams for comparison.
#[derive(Debug, Parser)]
#[command(name = "quern-bench", version, about)]
struct Cli {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Server and data structure under load.
    #[arg(long, value_enum, default_value = "quern")]
    target: Target,
    /// push, pull (after a preload) or cycle (producers and workers).
    #[arg(long, value_enum, default_value = "push")]
    workload: Workload,
    /// Connections.
    #[arg(long, default_value_t = DEFAULT_CLIENTS)]
    clients: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = DEFAULT_PIPELINE)]
    pipeline: usize,
    /// Payload size in bytes.
    #[arg(long, default_value_t = DEFAULT_PAYLOAD)]
    payload: usize,
    /// Queues; connections are spread over them round-robin.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Queue names are PREFIX:0 … PREFIX:{queues-1}.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds run, unmeasured, before the measured phase.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pull: jobs pushed before the run, spread over the queues (0: pull
    /// what is there). The default outlasts a default run at up to about
    /// 330k pulls/s.
    #[arg(long, default_value_t = DEFAULT_PRELOAD)]
    preload: u64,
    /// Pull: do not acknowledge (QPULL's lease, a bare LMOVE or XREADGROUP).
    #[arg(long)]
    no_ack: bool,
    /// Cycle: pushing connections (default clients/2).
    #[arg(long)]
    producers: Option<usize>,
    /// Cycle: pulling and acking connections (default clients/2).
    #[arg(long)]
    workers: Option<usize>,
    /// Delete the queues before the run (QDEL, or DEL for Redis).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    flush: bool,
    /// Report the CPU time this server process used in the measured phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Runtime worker threads of the bench. One leaves the other cores to
    /// the server on a small machine.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

impl Cli {
    fn config(&self) -> Result<Config, String> {
        let seconds = |flag: &str, s: f64| {
            Duration::try_from_secs_f64(s).map_err(|_| format!("--{flag} must be a number of seconds ≥ 0"))
        };
        Ok(Config {
            host: self.host.clone(),
            port: self.port,
            target: self.target,
            workload: self.workload,
            clients: self.clients,
            pipeline: self.pipeline,
            payload: self.payload,
            queues: self.queues,
            prefix: self.prefix.clone(),
            duration: seconds("duration", self.duration)?,
            warmup: seconds("warmup", self.warmup)?,
            preload: self.preload,
            no_ack: self.no_ack,
            producers: self.producers,
            workers: self.workers,
            flush: self.flush,
            server_pid: self.server_pid,
            threads: self.threads.max(1),
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("quern-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quern-bench: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(quern_bench::run(&config)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("quern-bench: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("quern-bench: cannot write the report: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print_table(&report);
    }
    if report.failed() {
        eprintln!(
            "quern-bench: {} error(s); the first: {}",
            report.errors,
            report.first_error.as_deref().unwrap_or("?")
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_table(r: &Report) {
    let workload = match (r.workload, r.no_ack) {
        (Workload::Pull, true) => "pull --no-ack".to_owned(),
        (w, _) => w.name().to_owned(),
    };
    let row = |key: &str, value: String| println!("  {key:<22} {value}");
    println!("quern-bench: {} {workload}", r.target.name());
    if r.workload == Workload::Cycle {
        row(
            "clients",
            format!("{} ({} producers, {} workers)", r.clients, r.producers, r.workers),
        );
    } else {
        row("clients", r.clients.to_string());
    }
    row("pipeline", r.pipeline.to_string());
    row("payload", format!("{} bytes", r.payload));
    row("queues", r.queues.to_string());
    row("bench threads", r.threads.to_string());
    if r.preloaded > 0 {
        row(
            "preloaded",
            format!("{} jobs in {:.2} s", r.preloaded, r.preload_s),
        );
    }
    row("duration", format!("{:.2} s", r.duration_s));
    let unit = match r.workload {
        Workload::Push => "pushes",
        _ => "jobs",
    };
    row("operations", format!("{} {unit}", r.operations));
    row("throughput", format!("{:.0} {unit}/s", r.ops_per_s));
    if r.workload == Workload::Cycle {
        row(
            "pushes",
            format!("{} ({:.0}/s)", r.push_operations, r.push_ops_per_s),
        );
    }
    let what = match r.workload {
        Workload::Cycle => "latency, end to end",
        _ => "latency",
    };
    row(
        what,
        format!(
            "p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms
        ),
    );
    if let Some(s) = r.server_cpu_s {
        let per_1k = r
            .server_cpu_ms_per_1k_ops
            .map_or(String::new(), |ms| format!(" ({ms:.2} ms per 1k ops)"));
        row("server cpu", format!("{s:.2} s{per_1k}"));
    }
    if let Some(s) = r.bench_cpu_s {
        row("bench cpu", format!("{s:.2} s"));
    }
    match &r.first_error {
        Some(e) => row("errors", format!("{} (first: {e})", r.errors)),
        None => row("errors", r.errors.to_string()),
    }
}
