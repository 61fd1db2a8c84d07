//! `quern`: the job-queue server. Reads its settings from flags, `QUERN_*`
//! environment variables and an optional TOML file (see `settings`), logs
//! to stderr, prints its HTTP address and its ready line on stdout,
//! serves until SIGTERM, SIGINT or SHUTDOWN, then commits and exits 0.

mod logging;
mod settings;

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use quern_server::Config;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Until the settings are known there is no logger: these two errors
    // are plain lines on stderr.
    let loaded = match settings::load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("quern: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::install(loaded.config.log_format, &loaded.config.log_level) {
        eprintln!("quern: {e}");
        return ExitCode::FAILURE;
    }
    loaded.log();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(loaded.config))
}

async fn run(config: Config) -> ExitCode {
    let dir = config.dir.clone();
    let fsync = config.fsync;
    let loading = Instant::now();
    let starting = match quern_server::start(config).await {
        Ok(starting) => starting,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    // Before the data loads, so that /health and /ready answer meanwhile;
    // on stdout like the ready line, for tests and scripts that ask for
    // port 0.
    if let Some(addr) = starting.http_addr() {
        println!("HTTP on {addr}");
        info!(addr = %addr, "HTTP listening");
    }
    let bound = match starting.load().await {
        Ok(bound) => bound,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let server = bound.server().clone();
    info!(
        jobs = bound.jobs_loaded,
        dir = %dir.display(),
        load_ms = loading.elapsed().as_millis() as u64,
        fsync = %fsync,
        "loaded"
    );
    match stop_on_signal(server.shutdown.clone()) {
        Ok(stopper) => {
            tokio::spawn(stopper);
        }
        Err(e) => warn!(error = %e, "cannot listen for SIGTERM and SIGINT"),
    }
    // Tests and scripts read this line to learn the port: it stays on
    // stdout, worded as Redis words it, whatever the log format.
    println!("Ready to accept connections tcp on {}", server.addr);
    info!(addr = %server.addr, "ready");
    match bound.serve().await {
        Ok(()) => {
            info!("stopped; every change is committed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "stopped, but the last commit failed");
            ExitCode::FAILURE
        }
    }
}

/// A task that cancels `stop` on SIGTERM or SIGINT. The handlers are
/// installed before it returns, so a signal sent as soon as the ready
/// line is out finds them, instead of the default action, which would
/// kill the process before it commits.
fn stop_on_signal(stop: CancellationToken) -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    let received = {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        }
    };
    #[cfg(not(unix))]
    let received = async {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    };
    Ok(async move {
        let signal = received.await;
        info!(signal = %signal, "stopping: finishing in-flight work");
        stop.cancel();
    })
}
