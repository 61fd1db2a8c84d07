//! `QDEL queue` → integer: jobs deleted with the whole queue, in every
//! state. Active ones too: their workers' QACK then counts 0, and QFAIL
//! or QTOUCH answer -NOJOB.

use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qdel",
    arity: 2,
    flags: &["write"],
    keys: Keys::At(1),
    acl: &["@write", "@dangerous"],
    summary: "Deletes a queue and all its jobs.",
    complexity: "O(N) where N is the number of jobs in the queue",
    group: "queue",
    args: &[Arg::key("queue")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let (deleted, ticket) = ctx
        .server
        .shards
        .apply(&queue, |engine, _| engine.delete_queue(&queue));
    after_commit(ctx, Reply::Int(deleted as i64), ticket)
}
