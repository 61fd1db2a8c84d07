//! `QFAIL queue id [ERROR message] [RETRYIN ms] [FATAL | SILENT]
//! [ATTEMPT n]` → the job's new state: `delayed`, `waiting` or `dead`.
//!
//! A normal fail counts an attempt and retries after the backoff (or
//! RETRYIN), or sends the job dead when no retries are left. FATAL sends
//! it dead at once; SILENT puts it back without counting the attempt.

use bytes::Bytes;
use quern_engine::{FailMode, FailOptions, JobId};

use super::args::keyword;
use super::qack::ATTEMPT_ARG;
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qfail",
    arity: -3,
    flags: &["write", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Reports a failed attempt: retry later, or dead when no retries are left.",
    group: "queue",
    args: &[
        Arg::key("queue"),
        Arg::integer("id"),
        Arg::string("message").option("ERROR"),
        Arg::integer("ms").option("RETRYIN"),
        Arg::oneof("mode", &[Arg::token("FATAL"), Arg::token("SILENT")]).optional(),
        ATTEMPT_ARG,
    ],
    run,
    ..Command::BASE
};

/// Longest RETRYIN: about 100 years.
const MAX_RETRY_IN_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

#[derive(Debug, PartialEq)]
struct QFail {
    queue: Bytes,
    id: JobId,
    options: FailOptions,
}

fn parse(args: &mut Args) -> Result<QFail, CmdError> {
    let queue = args.queue()?;
    let id = args.number()?;
    let mut options = FailOptions::default();
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"ERROR" => options.error = Some(args.bytes()?),
            b"RETRYIN" => options.retry_in = Some(args.number_in("RETRYIN", 0, MAX_RETRY_IN_MS)?),
            b"ATTEMPT" => options.attempt = Some(args.number()?),
            kw @ (b"FATAL" | b"SILENT") => {
                if options.mode != FailMode::Retry {
                    return Err(CmdError::Invalid("FATAL and SILENT are exclusive".into()));
                }
                options.mode = if kw == b"FATAL" {
                    FailMode::Fatal
                } else {
                    FailMode::Silent
                };
            }
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    Ok(QFail { queue, id, options })
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let cmd = parse(args)?;
    let (state, ticket) = ctx.server.shards.apply(&cmd.queue, |engine, now| {
        engine.fail(&cmd.queue, cmd.id, &cmd.options, now)
    });
    after_commit(ctx, Reply::Status(state?.name()), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<QFail, CmdError> {
        parse(&mut Args::words(words))
    }

    #[test]
    fn options() {
        let f = parse_words(&[
            "q", "7", "ERROR", "boom", "retryin", "50", "SILENT", "ATTEMPT", "2",
        ])
        .unwrap();
        assert_eq!(f.id, 7);
        assert_eq!(
            f.options,
            FailOptions {
                error: Some(Bytes::from("boom")),
                retry_in: Some(50),
                mode: FailMode::Silent,
                attempt: Some(2)
            }
        );
        for bad in [
            &["q", "x"][..],
            &["q", "1", "FATAL", "SILENT"],
            &["q", "1", "ERROR"],
            &["q", "1", "LOUD"],
        ] {
            assert!(parse_words(bad).is_err(), "{bad:?}");
        }
    }
}
