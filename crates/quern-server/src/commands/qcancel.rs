//! `QCANCEL queue id [id ...]` → integer: waiting, delayed or blocked jobs
//! removed. Active jobs are left to their worker; dead ones to QDLQ PURGE.

use super::args::number;
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qcancel",
    arity: -3,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Removes jobs that are not yet active.",
    complexity: "O(N) where N is the number of ids",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("id").multiple()],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let ids = args
        .rest()
        .iter()
        .map(|a| number(a))
        .collect::<Result<Vec<u64>, _>>()?;
    let (removed, ticket) = ctx
        .server
        .shards
        .apply(&queue, |engine, _| engine.cancel(&queue, &ids));
    after_commit(ctx, Reply::Int(removed as i64), ticket)
}
