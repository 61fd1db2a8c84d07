//! `QDLQ LIST|LEN|REQUEUE|PURGE queue …`: the dead-letter queue.
//!
//! - `QDLQ LIST queue [COUNT n]` → `[[queue, id, payload, attempt,
//!   last_error], ...]`, oldest job first; COUNT defaults to 100.
//! - `QDLQ LEN queue` → integer.
//! - `QDLQ REQUEUE queue (id [id ...] | ALL)` → integer: jobs put back to
//!   waiting with their attempts reset.
//! - `QDLQ PURGE queue [id ...]` → integer: jobs deleted (all without ids).

use bytes::Bytes;

use super::args::{keyword, number};
use super::{after_commit, Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::inspect;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qdlq",
    arity: -2,
    keys: Keys::None,
    summary: "Inspects and empties a queue's dead-letter queue.",
    group: "queue",
    subcommands: &[&LIST, &LEN, &REQUEUE, &PURGE, &HELP],
    ..Command::BASE
};

static LIST: Command = Command {
    name: "qdlq|list",
    arity: -3,
    flags: &["readonly"],
    keys: Keys::At(2),
    acl: &["@read"],
    summary: "Lists dead jobs with their last error.",
    complexity: "O(N) where N is the number of jobs listed",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("count").option("COUNT")],
    run: list,
    ..Command::BASE
};

static LEN: Command = Command {
    name: "qdlq|len",
    arity: 3,
    flags: &["readonly", "fast"],
    keys: Keys::At(2),
    acl: &["@read", "@fast"],
    summary: "Returns the number of dead jobs.",
    group: "queue",
    args: &[Arg::key("queue")],
    run: len,
    ..Command::BASE
};

static REQUEUE: Command = Command {
    name: "qdlq|requeue",
    arity: -4,
    flags: &["write"],
    keys: Keys::At(2),
    acl: &["@write"],
    summary: "Puts dead jobs back to waiting with their attempts reset.",
    complexity: "O(N) where N is the number of jobs requeued",
    group: "queue",
    args: &[
        Arg::key("queue"),
        Arg::oneof("which", &[Arg::integer("id").multiple(), Arg::token("ALL")]),
    ],
    run: requeue,
    ..Command::BASE
};

static PURGE: Command = Command {
    name: "qdlq|purge",
    arity: -3,
    flags: &["write"],
    keys: Keys::At(2),
    acl: &["@write"],
    summary: "Deletes dead jobs: the ones named, or all.",
    complexity: "O(N) where N is the number of jobs deleted",
    group: "queue",
    args: &[Arg::key("queue"), Arg::integer("id").multiple().optional()],
    run: purge,
    ..Command::BASE
};

static HELP: Command = Command {
    name: "qdlq|help",
    arity: 2,
    flags: &["loading", "stale"],
    acl: &["@slow"],
    summary: "Lists the QDLQ subcommands.",
    group: "queue",
    run: |_, _| {
        let lines = [
            "QDLQ <subcommand> <queue> [<arg> ...]. Subcommands are:",
            "LIST <queue> [COUNT <n>]",
            "LEN <queue>",
            "REQUEUE <queue> <id> [<id> ...] | ALL",
            "PURGE <queue> [<id> ...]",
            "HELP",
        ];
        Ok(Reply::Array(lines.iter().map(|l| Reply::bulk(*l)).collect()).into())
    },
    ..Command::BASE
};

/// Default QDLQ LIST COUNT.
const DEFAULT_LIST: u64 = 100;

fn list(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let mut count = DEFAULT_LIST;
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"COUNT" => count = args.number_in("COUNT", 1, ctx.server.settings.max_batch() as u64)?,
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    let items = inspect::dead_jobs(ctx.server, &queue, count as usize)?
        .into_iter()
        .map(|job| {
            Reply::Array(vec![
                Reply::Bulk(queue.clone()),
                Reply::Int(job.id as i64),
                Reply::Bulk(job.payload),
                Reply::Int(i64::from(job.attempt)),
                Reply::opt_bulk(job.last_error),
            ])
        })
        .collect();
    Ok(Reply::Array(items).into())
}

fn len(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let n = ctx
        .server
        .shards
        .read(&queue, |engine, _| engine.dead_len(&queue));
    Ok(Reply::Int(n as i64).into())
}

/// Ids, or `None` for ALL (only where `all_word` allows it).
fn ids(rest: Vec<Bytes>, all_word: bool) -> Result<Option<Vec<u64>>, CmdError> {
    if all_word && rest.len() == 1 && keyword(&rest[0]) == b"ALL" {
        return Ok(None);
    }
    rest.iter()
        .map(|a| number(a))
        .collect::<Result<Vec<u64>, _>>()
        .map(Some)
}

fn requeue(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let ids = ids(args.rest(), true)?;
    let (n, ticket) = ctx.server.shards.apply(&queue, |engine, now| {
        engine.requeue_dead(&queue, ids.as_deref(), now)
    });
    after_commit(ctx, Reply::Int(n as i64), ticket)
}

fn purge(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let queue = args.queue()?;
    let rest = args.rest();
    let ids = if rest.is_empty() { None } else { ids(rest, false)? };
    let (n, ticket) = ctx
        .server
        .shards
        .apply(&queue, |engine, _| engine.purge_dead(&queue, ids.as_deref()));
    after_commit(ctx, Reply::Int(n as i64), ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_or_all() {
        let words = |w: &[&str]| {
            w.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(words(&["all"]), true), Ok(None));
        assert_eq!(ids(words(&["1", "2"]), true), Ok(Some(vec![1, 2])));
        assert!(ids(words(&["ALL"]), false).is_err());
        assert!(ids(words(&["1", "ALL"]), true).is_err());
    }
}
