//! `QSCAN cursor [MATCH pattern] [COUNT n]` → `[next-cursor, [queue ...]]`.
//!
//! Queues are visited in the order they were created; the cursor is where
//! the next call continues, "0" when the scan is complete. As with SCAN,
//! COUNT is how many queues to visit, and MATCH filters them afterwards,
//! so a call may return fewer names than COUNT, even none.

use bytes::Bytes;

use super::args::{keyword, number};
use super::{Arg, Args, Command, Ctx, Keys, Outcome};
use crate::error::CmdError;
use crate::glob;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "qscan",
    arity: -2,
    flags: &["readonly"],
    keys: Keys::None,
    acl: &["@read", "@keyspace"],
    summary: "Iterates over the names of the queues.",
    complexity: "O(N) where N is the number of queues",
    group: "queue",
    args: &[
        Arg::integer("cursor"),
        Arg::string("pattern").option("MATCH"),
        Arg::integer("count").option("COUNT"),
    ],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let cursor: u32 = number(&args.bytes()?).map_err(|_| CmdError::Invalid("invalid cursor".into()))?;
    let (mut pattern, mut count) = (None, 10u64);
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"MATCH" => pattern = Some(args.bytes()?),
            b"COUNT" => count = args.number_in("COUNT", 1, 1_000_000)?,
            _ => return Err(CmdError::UnknownOption(opt)),
        }
    }
    let mut queues: Vec<(u32, Bytes)> = Vec::new();
    ctx.server.shards.each(|engine| {
        queues.extend(
            engine
                .queues()
                .filter(|(id, ..)| *id >= cursor)
                .map(|(id, name, _)| (id, name.clone())),
        );
    });
    queues.sort_unstable_by_key(|(id, _)| *id);
    let more = queues.len() as u64 > count;
    queues.truncate(count as usize);
    let next = match queues.last() {
        Some((id, _)) if more => id + 1,
        _ => 0,
    };
    let names = queues
        .into_iter()
        .filter(|(_, name)| pattern.as_ref().is_none_or(|p| glob::matches(p, name)))
        .map(|(_, name)| Reply::Bulk(name))
        .collect();
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(names)]).into())
}
