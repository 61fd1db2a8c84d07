//! `QPULL queue [COUNT n] [BLOCK ms] [LEASE ms]` → array of jobs, each
//! `[queue, id, payload, attempt]`, or a null reply when none is ready
//! (after BLOCK ms when BLOCK is given; BLOCK 0 waits forever).

use std::time::Duration;

use bytes::Bytes;

use super::args::keyword;
use super::jobs::pull_first;
use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::blocking::PullRequest;
use crate::error::CmdError;

/// The pull options, for COMMAND DOCS (QMPULL shares them).
pub const OPTION_ARGS: [Arg; 3] = [
    Arg::integer("count").option("COUNT"),
    Arg::integer("ms").option("BLOCK"),
    Arg::integer("ms").option("LEASE"),
];

pub static COMMAND: Command = Command {
    name: "qpull",
    arity: -2,
    flags: &["write", "blocking"],
    keys: Keys::At(1),
    acl: &["@write", "@blocking"],
    summary: "Leases jobs from a queue, optionally waiting for one.",
    complexity: "O(N) where N is the number of jobs pulled",
    group: "queue",
    args: &[Arg::key("queue"), OPTION_ARGS[0], OPTION_ARGS[1], OPTION_ARGS[2]],
    run,
    ..Command::BASE
};

/// COUNT, BLOCK and LEASE.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PullOptions {
    /// Most jobs to take.
    pub count: u32,
    /// `Some(None)`: BLOCK 0, wait forever.
    pub block: Option<Option<Duration>>,
    /// Lease override.
    pub lease_ms: Option<u32>,
}

/// Parses COUNT, BLOCK and LEASE.
pub fn parse_options(args: &mut Args, max_batch: usize) -> Result<PullOptions, CmdError> {
    let mut opts = PullOptions {
        count: 1,
        ..PullOptions::default()
    };
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"COUNT" => opts.count = args.number_in("COUNT", 1, max_batch.min(u32::MAX as usize) as u32)?,
            b"BLOCK" => {
                let ms: u64 = args.number_in("BLOCK", 0, i64::MAX as u64 / 1000)?;
                opts.block = Some((ms > 0).then(|| Duration::from_millis(ms)));
            }
            b"LEASE" => opts.lease_ms = Some(args.number_in("LEASE", 1, u32::MAX)?),
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    Ok(opts)
}

/// Pulls now; or, when nothing is ready and BLOCK was given, asks the
/// connection to wait.
pub fn pull_or_wait(ctx: &Ctx<'_>, queues: Vec<Bytes>, opts: PullOptions) -> Result<Outcome, CmdError> {
    if let Some((queue, jobs)) = pull_first(ctx, &queues, opts.count, opts.lease_ms) {
        return Ok(Outcome::Jobs(queue, jobs));
    }
    match opts.block {
        None => Ok(Outcome::Reply(crate::resp::Reply::NullArray)),
        Some(timeout) => Ok(Outcome::Block(PullRequest {
            queues,
            count: opts.count,
            lease_ms: opts.lease_ms,
            timeout,
        })),
    }
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let opts = parse_options(args, ctx.server.settings.max_batch())?;
    pull_or_wait(ctx, vec![queue], opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<PullOptions, CmdError> {
        parse_options(&mut Args::words(words), 100)
    }

    #[test]
    fn options() {
        assert_eq!(
            parse_words(&[]).unwrap(),
            PullOptions {
                count: 1,
                block: None,
                lease_ms: None
            }
        );
        let o = parse_words(&["count", "5", "BLOCK", "0", "LEASE", "10"]).unwrap();
        assert_eq!(
            o,
            PullOptions {
                count: 5,
                block: Some(None),
                lease_ms: Some(10)
            }
        );
        assert_eq!(
            parse_words(&["BLOCK", "250"]).unwrap().block,
            Some(Some(Duration::from_millis(250)))
        );
        for bad in [
            &["COUNT", "0"][..],
            &["COUNT", "101"],
            &["BLOCK", "-1"],
            &["LEASE", "0"],
            &["WAIT", "1"],
            &["COUNT"],
        ] {
            assert!(parse_words(bad).is_err(), "{bad:?}");
        }
    }
}
