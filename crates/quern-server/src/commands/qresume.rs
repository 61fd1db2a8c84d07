//! `QRESUME queue` → OK. Hands out jobs again, first to blocked pullers.

use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qresume",
    arity: 2,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Lets a paused queue hand out jobs again.",
    group: "queue",
    args: &[Arg::key("queue")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let ((), ticket) = ctx
        .server
        .shards
        .apply(&queue, |engine, now| engine.resume(&queue, now));
    after_commit(ctx, Reply::Ok, ticket)
}
