//! `QMPULL numqueues queue [queue ...] [COUNT n] [BLOCK ms] [LEASE ms]`
//! → jobs from the first queue (in the order given) that has any, as
//! QPULL replies; a blocked QMPULL is served by whichever queue gets a job
//! first.

use super::qpull::{parse_options, pull_or_wait, OPTION_ARGS};
use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;

/// Most queues one QMPULL may name.
const MAX_QUEUES: u64 = 1024;

pub static COMMAND: Command = Command {
    name: "qmpull",
    arity: -3,
    flags: &["write", "blocking", "movablekeys"],
    keys: Keys::Counted(1),
    acl: &["@write", "@blocking"],
    summary: "Leases jobs from the first of several queues that has any, optionally waiting.",
    complexity: "O(N+M) where N is the number of queues and M the number of jobs pulled",
    group: "queue",
    args: &[
        Arg::integer("numqueues"),
        Arg::key("queue").multiple(),
        OPTION_ARGS[0],
        OPTION_ARGS[1],
        OPTION_ARGS[2],
    ],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let n: u64 = args.number_in("numqueues", 1, MAX_QUEUES)?;
    if (args.remaining() as u64) < n {
        return Err(CmdError::Invalid(format!(
            "numqueues is {n} but fewer queues follow"
        )));
    }
    let queues = (0..n).map(|_| args.queue()).collect::<Result<Vec<_>, _>>()?;
    let opts = parse_options(args, ctx.server.settings.max_batch())?;
    pull_or_wait(ctx, queues, opts)
}
