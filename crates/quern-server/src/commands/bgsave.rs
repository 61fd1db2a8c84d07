//! `BGSAVE [SCHEDULE]` → `+Background saving started`: writes a consistent
//! copy of the store to `backup/data.mdb` in the data directory while the
//! server keeps serving (see the `backups` module). LASTSAVE tells when it
//! is done. With SCHEDULE, a request made while a backup runs starts
//! another right after it, as Redis does; without it, it is refused.

use super::args::keyword;
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::backups::Started;
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "bgsave",
    arity: -1,
    flags: &["admin", "noscript", "no_async_loading"],
    acl: &["@admin", "@slow", "@dangerous"],
    summary: "Writes a backup of the store in the background.",
    complexity: "O(N) where N is the size of the store",
    group: "server",
    args: &[Arg::token("SCHEDULE").optional()],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let schedule = match args.next_arg() {
        None => false,
        Some(word) if keyword(&word).as_slice() == b"SCHEDULE" => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    if args.remaining() > 0 {
        return Err(CmdError::Syntax);
    }
    match ctx.server.backups.start(schedule) {
        Ok(Started::Now) => Ok(Reply::Status("Background saving started").into()),
        Ok(Started::Scheduled) => Ok(Reply::Status("Background saving scheduled").into()),
        Err(why) => Err(CmdError::Invalid(why)),
    }
}
