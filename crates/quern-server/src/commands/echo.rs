//! `ECHO message` → the message, byte for byte.

use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "echo",
    arity: 2,
    flags: &["fast"],
    acl: &["@fast", "@connection"],
    summary: "Returns the given string.",
    args: &[Arg::string("message")],
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    Ok(Reply::Bulk(args.bytes()?).into())
}
