//! `QSTATS queue` → map (RESP3) or flat field/value array (RESP2): jobs
//! by state, whether the queue is paused, lifetime counters and the age
//! of the longest-waiting job. A queue that does not exist has zeros.

use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qstats",
    arity: 2,
    flags: &["readonly", "fast"],
    keys: Keys::At(1),
    acl: &["@read", "@fast"],
    summary: "Returns a queue's jobs by state and its counters.",
    group: "queue",
    args: &[Arg::key("queue")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let s = ctx
        .server
        .shards
        .read(&queue, |engine, now| engine.stats(&queue, now))
        .unwrap_or_default();
    let int = |n: u64| Reply::Int(n as i64);
    Ok(Reply::fields(vec![
        ("waiting", int(s.waiting)),
        ("delayed", int(s.delayed)),
        ("active", int(s.active)),
        ("blocked", int(s.blocked)),
        ("dead", int(s.dead)),
        ("paused", int(u64::from(s.paused))),
        ("pushed", int(s.counters.pushed)),
        ("acked", int(s.counters.acked)),
        ("failed", int(s.counters.failed)),
        ("retried", int(s.counters.retried)),
        ("dead_total", int(s.counters.dead)),
        ("expired_leases", int(s.counters.expired_leases)),
        ("oldest_waiting_age_ms", int(s.oldest_waiting_age_ms)),
    ])
    .into())
}
