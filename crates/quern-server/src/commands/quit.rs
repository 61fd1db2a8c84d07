//! `QUIT` → OK, then the server closes the connection.

use super::{Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "quit",
    arity: -1,
    flags: &["allow-busy", "noscript", "loading", "stale", "fast", "no-auth"],
    acl: &["@fast", "@connection"],
    summary: "Closes the connection.",
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, _: &mut Args) -> Result<Outcome, CmdError> {
    Ok(Outcome::Close(Reply::Ok))
}
