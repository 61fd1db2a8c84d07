//! `DBSIZE` → integer: the number of queues (a queue is Quern's key).

use super::{Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "dbsize",
    arity: 1,
    flags: &["readonly", "fast"],
    acl: &["@keyspace", "@read", "@fast"],
    summary: "Returns the number of queues.",
    group: "server",
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, _: &mut Args) -> Result<Outcome, CmdError> {
    let mut queues = 0;
    ctx.server.shards.each(|engine| queues += engine.queues().count());
    Ok(Reply::Int(queues as i64).into())
}
