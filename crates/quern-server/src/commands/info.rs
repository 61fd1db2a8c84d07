//! `INFO [section ...]` → the server's state as Redis-style text:
//! `# Section` headers and `field:value` lines. Sections: server, clients,
//! memory, persistence, stats, replication, queues; `all`, `everything`
//! and `default` give every one.

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
type Section = fn(&Server, &mut String);

/// The sections, in the order they are printed.
const SECTIONS: &[(&str, Section)] = &[
    ("server", server),
    ("clients", clients),
    ("memory", memory),
    ("persistence", persistence),
    ("stats", stats),
    ("replication", replication),
    ("queues", queues),
];

/// At most this many queues are listed one by one in `# Queues`.
const MAX_LISTED_QUEUES: usize = 1000;

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let wanted: Vec<String> = args
        .rest()
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for (name, render) in SECTIONS {
        if all || wanted.iter().any(|w| w == name) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let mut title = name.to_string();
            title[..1].make_ascii_uppercase();
            let _ = write!(text, "# {title}\r\n");
            render(ctx.server, &mut text);
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
    line!(out, "store_pending:{}", st.pending);
    line!(out, "store_used_bytes:{}", st.used_bytes);
    line!(out, "store_map_size:{}", st.map_size);
    line!(
        out,
        "store_last_error:{}",
        st.last_error.unwrap_or_default().replace(['\r', '\n'], " ")
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
    line!(out, "total_commands_processed:{}", s.stats.commands());
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
