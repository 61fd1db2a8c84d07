//! `PING [message]` → PONG, or the message.

use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "ping",
    arity: -1,
    flags: &["fast"],
    acl: &["@fast", "@connection"],
    summary: "Returns the server's liveliness response.",
    args: &[Arg::string("message").optional()],
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let message = args.next_arg();
    args.finish().map_err(|_| CmdError::WrongArity("ping".into()))?;
    Ok(message.map_or(Reply::Status("PONG"), Reply::Bulk).into())
}
