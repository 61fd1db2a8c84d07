//! `QGET queue id` → map (RESP3) or flat array (RESP2) of the job's
//! fields, or null when the queue has no such job.

use quern_engine::State;

use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::inspect::{self, JobDetail};
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qget",
    arity: 3,
    flags: &["readonly", "fast"],
    keys: Keys::At(1),
    acl: &["@read", "@fast"],
    summary: "Returns a job: its state, options, payload and last error.",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("id")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let id: u64 = args.number()?;
    let Some(JobDetail {
        record: job,
        payload,
        last_error,
    }) = inspect::job(ctx.server, &queue, id)?
    else {
        return Ok(Reply::Null.into());
    };
    let int = |n: u64| Reply::Int(n as i64);
    let when = |state: State| {
        if job.state == state {
            int(job.deadline)
        } else {
            Reply::Null
        }
    };
    Ok(Reply::fields(vec![
        ("id", int(id)),
        ("queue", Reply::Bulk(queue)),
        ("state", Reply::bulk(job.state.name())),
        ("payload", Reply::Bulk(payload)),
        ("priority", Reply::Int(job.spec.priority)),
        ("attempt", int(u64::from(job.attempt))),
        ("retries", int(u64::from(job.spec.retries))),
        ("backoff", int(u64::from(job.spec.backoff_ms))),
        ("lease", int(u64::from(job.spec.lease_ms))),
        ("created_at", int(job.created_at)),
        ("ready_at", when(State::Delayed)),
        ("lease_until", when(State::Active)),
        ("last_error", Reply::opt_bulk(last_error)),
        ("progress", Reply::Null),
        ("group", Reply::Null),
    ])
    .into())
}
