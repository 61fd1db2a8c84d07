//! `QACK queue id [id ...] [ATTEMPT n]` → integer: how many jobs were
//! acknowledged (and deleted). Ids the queue does not know count 0, so
//! acks are idempotent; a known job that is not active is refused.

use bytes::Bytes;
use quern_engine::JobId;

use super::args::{keyword, number};
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qack",
    arity: -3,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Acknowledges finished jobs, deleting them.",
    complexity: "O(N) where N is the number of ids",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("id").multiple(), ATTEMPT_ARG],
    run,
    ..Command::BASE
};

/// The ATTEMPT fence, for COMMAND DOCS.
pub const ATTEMPT_ARG: Arg = Arg::integer("attempt").option("ATTEMPT");

#[derive(Debug, PartialEq)]
struct QAck {
    queue: Bytes,
    ids: Vec<JobId>,
    attempt: Option<u32>,
}

fn parse(args: &mut Args) -> Result<QAck, CmdError> {
    let queue = args.queue()?;
    let mut ids = Vec::with_capacity(args.remaining().min(64));
    let mut attempt = None;
    while let Some(arg) = args.next_arg() {
        let word = keyword(&arg);
        if word == b"ATTEMPT" {
            attempt = Some(args.number()?);
        } else if word == b"RESULT" {
            return Err(CmdError::Invalid(
                "option 'RESULT' is not supported by this server version".into(),
            ));
        } else {
            ids.push(number(&arg)?);
        }
    }
    if ids.is_empty() {
        return Err(CmdError::Syntax);
    }
    Ok(QAck { queue, ids, attempt })
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let cmd = parse(args)?;
    let metrics = &ctx.server.queue_metrics;
    let (acked, ticket) = ctx.server.shards.apply(&cmd.queue, |engine, now| {
        engine.ack_timed(&cmd.queue, &cmd.ids, cmd.attempt, |queue, created_at| {
            metrics.acked(queue, &cmd.queue, created_at, now)
        })
    });
    after_commit(ctx, Reply::Int(acked? as i64), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<QAck, CmdError> {
        parse(&mut Args::words(words))
    }

    #[test]
    fn ids_and_fence() {
        let a = parse_words(&["q", "1", "2", "attempt", "3"]).unwrap();
        assert_eq!((a.ids, a.attempt), (vec![1, 2], Some(3)));
        assert!(parse_words(&["q", "ATTEMPT", "1"]).is_err());
        assert!(parse_words(&["q", "x"]).is_err());
        assert!(parse_words(&["q", "1", "ATTEMPT"]).is_err());
        assert!(parse_words(&["q", "1", "RESULT", "v"]).is_err());
    }
}
