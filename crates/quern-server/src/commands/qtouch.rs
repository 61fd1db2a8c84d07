//! `QTOUCH queue id [LEASE ms] [ATTEMPT n]` → integer: ms left on the
//! renewed lease. Without LEASE the job's own LEASE (from QPUSH) is used.

use bytes::Bytes;
use quern_engine::JobId;

use super::args::keyword;
use super::qack::ATTEMPT_ARG;
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qtouch",
    arity: -3,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Renews the lease of an active job.",
    group: "queue",
    args: &[
        Arg::key("queue"),
        Arg::integer("id"),
        Arg::integer("ms").option("LEASE"),
        ATTEMPT_ARG,
    ],
    run,
    ..Command::BASE
};

#[derive(Debug, PartialEq)]
struct QTouch {
    queue: Bytes,
    id: JobId,
    lease_ms: Option<u32>,
    attempt: Option<u32>,
}

fn parse(args: &mut Args) -> Result<QTouch, CmdError> {
    let queue = args.queue()?;
    let id = args.number()?;
    let (mut lease_ms, mut attempt) = (None, None);
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"LEASE" => lease_ms = Some(args.number_in("LEASE", 1, u32::MAX)?),
            b"ATTEMPT" => attempt = Some(args.number()?),
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    Ok(QTouch {
        queue,
        id,
        lease_ms,
        attempt,
    })
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let cmd = parse(args)?;
    let (left, ticket) = ctx.server.shards.apply(&cmd.queue, |engine, now| {
        engine.touch(&cmd.queue, cmd.id, cmd.lease_ms, cmd.attempt, now)
    });
    after_commit(ctx, Reply::Int(left? as i64), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<QTouch, CmdError> {
        parse(&mut Args::words(words))
    }

    #[test]
    fn options() {
        let t = parse_words(&["q", "3", "lease", "100", "ATTEMPT", "1"]).unwrap();
        assert_eq!((t.id, t.lease_ms, t.attempt), (3, Some(100), Some(1)));
        assert!(parse_words(&["q", "3", "LEASE", "0"]).is_err());
        assert!(parse_words(&["q", "3", "FOREVER"]).is_err());
    }
}
