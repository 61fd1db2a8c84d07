//! `QLEN queue` → integer: jobs waiting to be pulled.

use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qlen",
    arity: 2,
    flags: &["readonly", "fast"],
    keys: Keys::At(1),
    acl: &["@read", "@fast"],
    summary: "Returns the number of jobs waiting in a queue.",
    group: "queue",
    args: &[Arg::key("queue")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let len = ctx.server.shards.read(&queue, |engine, _| engine.len(&queue));
    Ok(Reply::Int(len as i64).into())
}
