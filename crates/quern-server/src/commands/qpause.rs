//! `QPAUSE queue` → OK. A paused queue accepts pushes and hands out
//! nothing; blocked pullers keep waiting. Pausing creates the queue.

use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qpause",
    arity: 2,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Stops a queue from handing out jobs.",
    group: "queue",
    args: &[Arg::key("queue")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let ((), ticket) = ctx.server.shards.apply(&queue, |engine, _| engine.pause(&queue));
    after_commit(ctx, Reply::Ok, ticket)
}
