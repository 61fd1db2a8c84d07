//! `SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]`: stops accepting
//! connections, finishes what is in flight, commits and exits. Every
//! change is already in the store, so SAVE and NOSAVE mean the same; no
//! reply is sent, as in Redis.

use super::args::keyword;
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;

pub static COMMAND: Command = Command {
    name: "shutdown",
    arity: -1,
    flags: &["admin", "noscript", "loading", "stale", "no-multi", "allow-busy"],
    acl: &["@admin", "@slow", "@dangerous"],
    summary: "Commits everything and stops the server.",
    group: "server",
    args: &[
        Arg::oneof("save-selector", &[Arg::token("NOSAVE"), Arg::token("SAVE")]).optional(),
        Arg::token("NOW").optional(),
        Arg::token("FORCE").optional(),
        Arg::token("ABORT").optional(),
    ],
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"NOSAVE" | b"SAVE" | b"NOW" | b"FORCE" => {}
            b"ABORT" => return Err(CmdError::Invalid("No shutdown in progress.".into())),
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok(Outcome::Shutdown)
}
