//! `INFO [section ...]` → the server's state as Redis-style text:
//! `# Section` headers and `field:value` lines. Sections: server, clients,
//! memory, persistence, stats, replication, commandstats, queues. As in
//! Redis, `all` and `everything` give every one, and no section or
//! `default` every one but commandstats.

use std::fmt::Write;

use super::hello::REDIS_VERSION;
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;
use crate::server::Server;
use crate::shards::now_ms;

pub static COMMAND: Command = Command {
    name: "info",
    arity: -1,
    flags: &["loading", "stale"],
    acl: &["@slow", "@dangerous"],
    summary: "Returns information and statistics about the server.",
    complexity: "O(N) where N is the number of queues",
    group: "server",
    args: &[Arg::string("section").optional().multiple()],
    run,
    ..Command::BASE
};

/// Appends one section's lines.
type Render = fn(&Server, &mut String);

/// One section: its name, whether a bare INFO shows it, what it prints.
struct Section {
    name: &'static str,
    default: bool,
    render: Render,
}

/// The sections, in the order they are printed (Redis's order, with the
/// queues where Redis puts the keyspace, last).
const SECTIONS: &[Section] = &[
    Section {
        name: "server",
        default: true,
        render: server,
    },
    Section {
        name: "clients",
        default: true,
        render: clients,
    },
    Section {
        name: "memory",
        default: true,
        render: memory,
    },
    Section {
        name: "persistence",
        default: true,
        render: persistence,
    },
    Section {
        name: "stats",
        default: true,
        render: stats,
    },
    Section {
        name: "replication",
        default: true,
        render: replication,
    },
    // A line per command ever called: long, so only when asked for.
    Section {
        name: "commandstats",
        default: false,
        render: commandstats,
    },
    Section {
        name: "queues",
        default: true,
        render: queues,
    },
];

/// At most this many queues are listed one by one in `# Queues`.
const MAX_LISTED_QUEUES: usize = 1000;

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    // Commands pipelined before this one count, as in Redis.
    ctx.server.stats.flush(&mut ctx.session.tally);
    let wanted: Vec<String> = args
        .rest()
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let all = wanted.iter().any(|w| matches!(w.as_str(), "all" | "everything"));
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut text = String::new();
    for section in SECTIONS {
        if all || (default && section.default) || wanted.iter().any(|w| w == section.name) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let mut title = section.name.to_string();
            title[..1].make_ascii_uppercase();
            let _ = write!(text, "# {title}\r\n");
            (section.render)(ctx.server, &mut text);
        }
    }
    Ok(Reply::Text(text).into())
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn server(s: &Server, out: &mut String) {
    let uptime = s.started.elapsed().as_secs();
    line!(out, "redis_version:{REDIS_VERSION}");
    line!(out, "quern_version:{}", env!("CARGO_PKG_VERSION"));
    line!(out, "redis_mode:standalone");
    line!(out, "os:{} {}", std::env::consts::OS, std::env::consts::ARCH);
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "process_id:{}", std::process::id());
    line!(out, "tcp_port:{}", s.addr.port());
    line!(out, "server_time_usec:{}", now_ms() * 1000);
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86_400);
}

fn clients(s: &Server, out: &mut String) {
    line!(out, "connected_clients:{}", s.clients.len());
    line!(out, "blocked_clients:{}", s.waiters.len());
    line!(out, "maxclients:{}", s.settings.maxclients());
}

fn memory(_: &Server, out: &mut String) {
    let rss = resident_bytes();
    line!(out, "used_memory:{rss}");
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_human:{:.2}M", rss as f64 / (1 << 20) as f64);
    line!(out, "maxmemory:0");
    line!(out, "maxmemory_policy:noeviction");
}

/// The process's resident memory, from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn persistence(s: &Server, out: &mut String) {
    let st = s.store.stats();
    line!(out, "loading:0");
    line!(out, "async_loading:0");
    line!(out, "fsync:{}", s.store.fsync().name());
    line!(out, "aof_enabled:1");
    line!(out, "store_dir:{}", s.store.dir().display());
    line!(out, "store_commits:{}", st.commits);
    line!(out, "store_changes:{}", st.changes);
    line!(out, "store_last_batch:{}", st.last_batch);
    line!(out, "store_fsyncs:{}", st.fsyncs);
    line!(out, "store_gathers:{}", st.gathers);
    line!(out, "store_pending:{}", st.pending);
    line!(out, "store_bulk_deletes:{}", st.bulk_deletes);
    line!(out, "store_used_bytes:{}", st.used_bytes);
    line!(out, "store_map_size:{}", st.map_size);
    line!(
        out,
        "store_last_error:{}",
        st.last_error.unwrap_or_default().replace(['\r', '\n'], " ")
    );
    // BGSAVE, under the names Redis gives its own background saves.
    let backup = s.backups.state();
    line!(out, "rdb_bgsave_in_progress:{}", u8::from(backup.running));
    line!(out, "rdb_last_save_time:{}", backup.last_success);
    let status = match &backup.last {
        Some(Err(_)) => "err",
        _ => "ok",
    };
    line!(out, "rdb_last_bgsave_status:{status}");
    if let Some(Ok(b)) = &backup.last {
        line!(out, "rdb_last_bgsave_time_sec:{}", b.took.as_secs());
        line!(out, "backup_last_bytes:{}", b.bytes);
    }
    if let Some(Err(why)) = &backup.last {
        line!(out, "backup_last_error:{}", why.replace(['\r', '\n'], " "));
    }
    line!(
        out,
        "backup_path:{}",
        s.backups.dir().join(quern_store::BACKUP_FILE).display()
    );
}

fn stats(s: &Server, out: &mut String) {
    line!(
        out,
        "total_connections_received:{}",
        s.clients
            .total_received
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    line!(out, "total_commands_processed:{}", s.stats.commands_processed());
    line!(out, "total_net_input_bytes:{}", s.stats.bytes_in());
    line!(out, "total_net_output_bytes:{}", s.stats.bytes_out());
    line!(
        out,
        "rejected_connections:{}",
        s.clients.rejected.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn replication(_: &Server, out: &mut String) {
    line!(out, "role:master");
    line!(out, "connected_slaves:0");
}

/// Redis's format: a line per command (`container|sub` for a subcommand)
/// that was called or refused, with the time spent running it.
fn commandstats(s: &Server, out: &mut String) {
    for row in s.stats.commands() {
        let f = row.figures();
        if f.calls == 0 && f.rejected == 0 {
            continue;
        }
        let per_call = if f.calls == 0 {
            0.0
        } else {
            f.usec as f64 / f.calls as f64
        };
        line!(
            out,
            "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
            row.command.name,
            f.calls,
            f.usec,
            f.rejected,
            f.failed
        );
    }
}

fn queues(s: &Server, out: &mut String) {
    let now = now_ms();
    let mut rows = Vec::new();
    let mut jobs = 0;
    s.shards.each(|engine| {
        jobs += engine.job_count();
        for (id, name, _) in engine.queues() {
            rows.push((id, name.clone(), engine.stats(name, now).unwrap_or_default()));
        }
    });
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    line!(out, "queues:{}", rows.len());
    line!(out, "jobs:{jobs}");
    for (id, name, st) in rows.iter().take(MAX_LISTED_QUEUES) {
        line!(
            out,
            "queue{id}:name={},waiting={},delayed={},active={},blocked={},dead={},paused={}",
            String::from_utf8_lossy(name).replace([',', '\r', '\n'], "_"),
            st.waiting,
            st.delayed,
            st.active,
            st.blocked,
            st.dead,
            u8::from(st.paused)
        );
    }
}
