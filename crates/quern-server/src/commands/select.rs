//! `SELECT index` → OK for 0, the only database.

use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "select",
    arity: 2,
    flags: &["loading", "stale", "fast"],
    acl: &["@keyspace", "@fast"],
    summary: "Selects the database: Quern has one, 0.",
    args: &[Arg::integer("index")],
    run,
    ..Command::BASE
};

fn run(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let index: i64 = args.number()?;
    if index != 0 {
        return Err(CmdError::Invalid("DB index is out of range".into()));
    }
    Ok(Reply::Ok.into())
}
