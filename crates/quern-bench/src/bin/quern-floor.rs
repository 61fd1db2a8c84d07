//! `quern-floor`: the command line of the floor server (see
//! `quern_bench::floor`). Serves until killed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use quern_bench::floor::{Floor, Flush, Options};

/// The least a server can do to answer a push durably: frame the request,
/// append it to a log (group commit), flush, reply; with --lmdb, also keep
/// each payload in LMDB, and answer QPULL: the next job's payload read
/// from LMDB, its lease logged and put into LMDB, the reply not waiting
/// for the flush. A yardstick for what this machine allows, not a queue.
#[derive(Debug, Parser)]
#[command(name = "quern-floor", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 6390)]
    port: u16,
    /// always: fdatasync each write of the log before replying; no: reply
    /// once written to the page cache.
    #[arg(long, value_enum, default_value = "always")]
    fsync: Flush,
    /// The log file, created (or emptied) at start.
    #[arg(long, default_value = "quern-floor.log")]
    log: PathBuf,
    /// Size of the log file, written over in a ring, in MiB.
    #[arg(long, default_value_t = 64)]
    log_mib: u64,
    /// Also keep every pushed payload in LMDB, in this directory (emptied
    /// at start), as Quern keeps its jobs, and answer QPULL from it (each
    /// pull's lease logged, then put into LMDB too). Without it, QPULL is
    /// answered with an error.
    #[arg(long)]
    lmdb: Option<PathBuf>,
    /// Write the log with O_DIRECT, past the page cache, in whole 4 KiB
    /// blocks.
    #[arg(long)]
    direct: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .and_then(|runtime| {
            runtime.block_on(async {
                // Bind first: the port is the one a mistake would show in.
                let listener = tokio::net::TcpListener::bind((cli.bind.as_str(), cli.port)).await?;
                let options = Options {
                    log_size: cli.log_mib.saturating_mul(1 << 20),
                    flush: cli.fsync,
                    direct: cli.direct,
                    lmdb: cli.lmdb.clone(),
                };
                let floor = Floor::start(&cli.log, &options)?;
                Arc::new(floor).serve(listener).await
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quern-floor: {e}");
            ExitCode::from(2)
        }
    }
}
