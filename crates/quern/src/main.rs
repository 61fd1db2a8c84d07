//! `quern`: the job-queue server. Reads its settings from flags and
//! `QUERN_*` environment variables (flags win), serves until SIGTERM,
//! SIGINT or SHUTDOWN, then commits and exits 0.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use quern_server::{
    Config, Fsync, DEFAULT_MAX_BATCH, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PAYLOAD, DEFAULT_SHARDS,
};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A durable job-queue server that speaks the Redis protocol.
#[derive(Debug, Parser)]
#[command(name = "quern", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "QUERN_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// RESP port (0 picks a free one).
    #[arg(long, short, env = "QUERN_PORT", default_value_t = 6379)]
    port: u16,
    /// Data directory, created if missing.
    #[arg(long, env = "QUERN_DIR", default_value = "quern-data")]
    dir: PathBuf,
    /// When a commit reaches the disk: always (before the reply),
    /// everysec, or no (left to the OS).
    #[arg(long, env = "QUERN_FSYNC", default_value = "always")]
    fsync: Fsync,
    /// Password clients must give (AUTH or HELLO … AUTH).
    #[arg(long, env = "QUERN_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// Most client connections at once.
    #[arg(long, env = "QUERN_MAXCLIENTS", default_value_t = DEFAULT_MAX_CLIENTS)]
    maxclients: usize,
    /// Largest payload, in bytes.
    #[arg(long, env = "QUERN_MAX_PAYLOAD", default_value_t = DEFAULT_MAX_PAYLOAD)]
    max_payload: usize,
    /// Most jobs in one QMPUSH, or pulled by one COUNT.
    #[arg(long, env = "QUERN_MAX_BATCH", default_value_t = DEFAULT_MAX_BATCH)]
    max_batch: usize,
    /// Engine shards (queues are spread over them by name).
    #[arg(long, env = "QUERN_SHARDS", default_value_t = DEFAULT_SHARDS)]
    shards: usize,
}

impl Cli {
    fn config(self) -> Config {
        Config {
            bind: self.bind,
            port: self.port,
            dir: self.dir,
            fsync: self.fsync,
            requirepass: self.requirepass.filter(|p| !p.is_empty()),
            maxclients: self.maxclients,
            max_payload: self.max_payload,
            max_batch: self.max_batch,
            shards: self.shards,
        }
    }
}

fn main() -> ExitCode {
    let config = Cli::parse().config();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quern: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    let dir = config.dir.clone();
    let fsync = config.fsync;
    let loading = std::time::Instant::now();
    let bound = match quern_server::bind(config).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("quern: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = bound.server().clone();
    eprintln!(
        "quern {}: {} jobs loaded from {} in {} ms (fsync {})",
        env!("CARGO_PKG_VERSION"),
        bound.jobs_loaded,
        dir.display(),
        loading.elapsed().as_millis(),
        fsync.name()
    );
    // Tests and scripts read this line to learn the port.
    println!("Ready to accept connections tcp on {}", server.addr);
    tokio::spawn(stop_on_signal(server.shutdown.clone()));
    match bound.serve().await {
        Ok(()) => {
            eprintln!("quern: stopped; every change is committed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quern: stopped, but the last commit failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `stop` on SIGTERM or SIGINT.
async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("quern: stopping: finishing in-flight work");
    stop.cancel();
}
