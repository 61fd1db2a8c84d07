//! `LASTSAVE` → integer: unix seconds of the last successful backup
//! (BGSAVE); the server's start until there is one, as in Redis.

use super::{Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "lastsave",
    arity: 1,
    flags: &["loading", "stale", "fast"],
    acl: &["@admin", "@fast", "@dangerous"],
    summary: "Returns the unix time of the last successful backup.",
    group: "server",
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, _: &mut Args) -> Result<Outcome, CmdError> {
    Ok(Reply::Int(ctx.server.backups.state().last_success as i64).into())
}
