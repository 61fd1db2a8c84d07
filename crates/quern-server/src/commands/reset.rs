//! `RESET` → RESET: the connection back to how it started (RESP2, no
//! name, not authenticated when a password is set).

use super::{Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::{Protocol, Reply};

pub static COMMAND: Command = Command {
    name: "reset",
    arity: 1,
    flags: &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"],
    acl: &["@fast", "@connection"],
    summary: "Resets the connection.",
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, _: &mut Args) -> Result<Outcome, CmdError> {
    let session = &mut *ctx.session;
    session.protocol = Protocol::Resp2;
    session.authed = ctx.server.settings.requirepass().is_none();
    session.handle.set_name(None);
    session.handle.set_resp(2);
    Ok(Reply::Status("RESET").into())
}
