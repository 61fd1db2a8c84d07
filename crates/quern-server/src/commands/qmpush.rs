//! `QMPUSH queue numjobs payload [payload ...] [options as QPUSH]`
//! → array of the new ids, in order. All or nothing.

use bytes::Bytes;
use quern_engine::PushOptions;

use super::qpush::{accept_payload, parse_options, OPTION_ARGS};
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;
use crate::shards::now_ms;

pub static COMMAND: Command = Command {
    name: "qmpush",
    arity: -4,
    flags: &["write", "denyoom"],
    keys: Keys::At(1),
    acl: &["@write"],
    summary: "Adds several jobs to a queue at once and returns their ids.",
    complexity: "O(N) where N is the number of jobs",
    group: "queue",
    args: &[
        Arg::key("queue"),
        Arg::integer("numjobs"),
        Arg::string("payload").multiple(),
        OPTION_ARGS[0],
        OPTION_ARGS[1],
        OPTION_ARGS[2],
        OPTION_ARGS[3],
        OPTION_ARGS[4],
        OPTION_ARGS[5],
    ],
    run,
    ..Command::BASE
};

#[derive(Debug)]
struct QMPush {
    queue: Bytes,
    payloads: Vec<Bytes>,
    options: PushOptions,
}

fn parse(
    args: &mut Args,
    max_payload: usize,
    max_batch: usize,
    now: impl Fn() -> u64,
) -> Result<QMPush, CmdError> {
    let queue = args.queue()?;
    let n: usize = args.number_in("numjobs", 1, max_batch as u64)? as usize;
    if args.remaining() < n {
        return Err(CmdError::Invalid(format!(
            "numjobs is {n} but fewer payloads follow"
        )));
    }
    let payloads = (0..n)
        .filter_map(|_| args.next_arg())
        .map(|payload| accept_payload(payload, max_payload))
        .collect::<Result<Vec<Bytes>, CmdError>>()?;
    let options = parse_options(args, now)?;
    Ok(QMPush {
        queue,
        payloads,
        options,
    })
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let settings = &ctx.server.settings;
    let cmd = parse(args, settings.max_payload(), settings.max_batch(), now_ms)?;
    let n = cmd.payloads.len() as u64;
    let (first, ticket) = ctx.server.shards.apply(&cmd.queue, |engine, now| {
        engine.push_many(&cmd.queue, cmd.payloads, &cmd.options, now)
    });
    let first = first?;
    let ids = (first..first + n).map(|id| Reply::Int(id as i64)).collect();
    after_commit(ctx, Reply::Array(ids), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<QMPush, CmdError> {
        parse(&mut Args::words(words), 8, 3, || 0)
    }

    #[test]
    fn payloads_then_options() {
        let p = parse_words(&["q", "2", "a", "b", "PRIORITY", "4"]).unwrap();
        assert_eq!(p.payloads, vec![Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(p.options.spec.priority, 4);
        // A payload that looks like an option is still a payload.
        assert_eq!(
            parse_words(&["q", "1", "PRIORITY"]).unwrap().payloads,
            vec![Bytes::from("PRIORITY")]
        );
    }

    #[test]
    fn refuses_bad_counts() {
        for bad in [
            &["q", "0"][..],
            &["q", "4", "a", "b", "c", "d"], // over max-batch (3)
            &["q", "3", "a", "b"],
            &["q", "x", "a"],
            &["q", "1", "a", "b"], // leftover that is not an option
            &["q", "1", "longer than 8"],
        ] {
            assert!(parse_words(bad).is_err(), "{bad:?}");
        }
    }
}
