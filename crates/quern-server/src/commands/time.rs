//! `TIME` → `[unix-seconds, microseconds]`.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "time",
    arity: 1,
    flags: &["loading", "stale", "fast"],
    acl: &["@fast"],
    summary: "Returns the server time.",
    group: "server",
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, _: &mut Args) -> Result<Outcome, CmdError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
    .into())
}
