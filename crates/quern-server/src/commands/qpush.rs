//! `QPUSH queue payload [PRIORITY n] [DELAY ms | AT unix-ms] [RETRIES n]
//! [BACKOFF ms] [LEASE ms]` → integer: the new job's id.

use bytes::Bytes;
use quern_engine::{JobSpec, PushOptions};

use super::args::keyword;
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;
use crate::shards::now_ms;

/// The push options, as COMMAND DOCS lists them (QMPUSH shares them).
pub const OPTION_ARGS: [Arg; 6] = [
    Arg::integer("priority").option("PRIORITY"),
    Arg::integer("ms").option("DELAY"),
    Arg::integer("unix-ms").option("AT"),
    Arg::integer("retries").option("RETRIES"),
    Arg::integer("ms").option("BACKOFF"),
    Arg::integer("ms").option("LEASE"),
];

pub static COMMAND: Command = Command {
    name: "qpush",
    arity: -3,
    flags: &["write", "denyoom", "fast"],
    keys: Keys::At(1),
    acl: &["@write", "@fast"],
    summary: "Adds a job to a queue and returns its id.",
    group: "queue",
    args: &[
        Arg::key("queue"),
        Arg::string("payload"),
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

/// Longest DELAY: about 100 years, so that `now + DELAY` cannot overflow.
const MAX_DELAY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// Latest AT: the year 2500.
const MAX_AT_MS: u64 = 16_725_225_600_000;

/// Parses the push options that follow the payload(s). `now` is read only
/// for a DELAY: a clock read costs as much as a small push's parsing.
pub fn parse_options(args: &mut Args, now: impl Fn() -> u64) -> Result<PushOptions, CmdError> {
    let mut spec = JobSpec::default();
    let mut ready_at = None;
    let mut timed = false;
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"PRIORITY" => spec.priority = args.number()?,
            b"RETRIES" => spec.retries = args.number_in("RETRIES", 0, 1_000_000)?,
            b"BACKOFF" => spec.backoff_ms = args.number_in("BACKOFF", 0, u32::MAX)?,
            b"LEASE" => spec.lease_ms = args.number_in("LEASE", 1, u32::MAX)?,
            kw @ (b"DELAY" | b"AT") => {
                if timed {
                    return Err(CmdError::Invalid(
                        "give one DELAY or one AT, not both or twice".into(),
                    ));
                }
                timed = true;
                ready_at = Some(if kw == b"DELAY" {
                    now() + args.number_in("DELAY", 0, MAX_DELAY_MS)?
                } else {
                    args.number_in("AT", 0, MAX_AT_MS)?
                });
            }
            b"TTL" | b"UNIQUE" | b"GROUP" | b"AFTER" => {
                return Err(CmdError::Invalid(format!(
                    "option '{}' is not supported by this server version",
                    String::from_utf8_lossy(&opt)
                )))
            }
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    Ok(PushOptions { spec, ready_at })
}

/// A parsed QPUSH.
#[derive(Debug, PartialEq)]
struct QPush {
    queue: Bytes,
    payload: Bytes,
    options: PushOptions,
}

fn parse(args: &mut Args, max_payload: usize, now: impl Fn() -> u64) -> Result<QPush, CmdError> {
    let queue = args.queue()?;
    let payload = accept_payload(args.bytes()?, max_payload)?;
    let options = parse_options(args, now)?;
    Ok(QPush {
        queue,
        payload,
        options,
    })
}

/// Payloads up to this size are copied out of the request. A payload is
/// kept until the store has written it to LMDB, tens of milliseconds; as
/// a slice of the connection's read buffer, a 100-byte payload would pin
/// the whole buffer (16 KiB or more) that long, and the connection would
/// need a fresh buffer for every read. A larger payload is most of its
/// buffer anyway, so it stays where it is.
const COPY_PAYLOADS_UP_TO: usize = 16 << 10;

/// Refuses a payload over max-payload; copies a small one out of the
/// request buffer (see [`COPY_PAYLOADS_UP_TO`]).
pub fn accept_payload(payload: Bytes, max_payload: usize) -> Result<Bytes, CmdError> {
    if payload.len() > max_payload {
        return Err(CmdError::Invalid(format!(
            "payload of {} bytes exceeds max-payload ({max_payload} bytes)",
            payload.len()
        )));
    }
    if payload.len() <= COPY_PAYLOADS_UP_TO {
        return Ok(Bytes::copy_from_slice(&payload));
    }
    Ok(payload)
}

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let cmd = parse(args, ctx.server.settings.max_payload(), now_ms)?;
    let (id, ticket) = ctx.server.shards.apply(&cmd.queue, |engine, now| {
        engine.push(&cmd.queue, cmd.payload, &cmd.options, now)
    });
    after_commit(ctx, Reply::Int(id? as i64), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<QPush, CmdError> {
        parse(&mut Args::words(words), 16, || 1000)
    }

    #[test]
    fn parses_every_option() {
        let p = parse_words(&[
            "q", "x", "priority", "-3", "DELAY", "500", "RETRIES", "0", "BACKOFF", "7", "LEASE", "9",
        ])
        .unwrap();
        assert_eq!(
            p.options.spec,
            JobSpec {
                priority: -3,
                retries: 0,
                backoff_ms: 7,
                lease_ms: 9
            }
        );
        assert_eq!(p.options.ready_at, Some(1500));
        assert_eq!(
            parse_words(&["q", "x", "AT", "5"]).unwrap().options.ready_at,
            Some(5)
        );
        assert_eq!(parse_words(&["q", "x"]).unwrap().options, PushOptions::default());
    }

    #[test]
    fn refuses_bad_options() {
        for bad in [
            &["q", "x", "PRIORITY"][..],
            &["q", "x", "PRIORITY", "high"],
            &["q", "x", "LEASE", "0"],
            &["q", "x", "DELAY", "-1"],
            &["q", "x", "DELAY", "1", "AT", "2"],
            &["q", "x", "COLOR", "red"],
            &["q", "x", "TTL", "5"],
            &["q", "this payload is too long"],
            &["bad queue", "x"],
        ] {
            assert!(parse_words(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn small_payloads_leave_the_request_buffer() {
        let request = Bytes::from(vec![7u8; 2 * COPY_PAYLOADS_UP_TO + 10]);
        let small = request.slice(10..110);
        let kept = accept_payload(small.clone(), usize::MAX).unwrap();
        assert_eq!(kept, small);
        assert_ne!(kept.as_ptr(), small.as_ptr(), "a small payload is copied");
        let large = request.slice(5..COPY_PAYLOADS_UP_TO + 6);
        let kept = accept_payload(large.clone(), usize::MAX).unwrap();
        assert_eq!(kept.as_ptr(), large.as_ptr(), "a large payload stays in place");
        assert!(accept_payload(large, COPY_PAYLOADS_UP_TO).is_err());
    }
}
