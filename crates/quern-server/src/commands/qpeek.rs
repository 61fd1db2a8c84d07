//! `QPEEK queue [COUNT n]` → the waiting jobs in the order QPULL hands
//! them out, as QPULL shows them (with the attempt each would get),
//! without leasing them; an empty array when none is waiting. A paused
//! queue is shown too, so an operator can see what waits. COUNT defaults
//! to 1.

use super::args::keyword;
use super::jobs::jobs_reply;
use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qpeek",
    arity: -2,
    flags: &["readonly"],
    keys: Keys::At(1),
    acl: &["@read"],
    summary: "Shows the next jobs a pull would get, without leasing them.",
    complexity: "O(N) where N is the number of jobs shown",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("count").option("COUNT")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let mut count = 1;
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"COUNT" => count = args.number_in("COUNT", 1, ctx.server.settings.max_batch() as u64)?,
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    let jobs = ctx
        .server
        .shards
        .read(&queue, |engine, _| engine.peek(&queue, count as usize));
    Ok(match jobs_reply(ctx.server, &queue, &jobs)? {
        Reply::NullArray => Reply::Array(Vec::new()),
        reply => reply,
    }
    .into())
}
