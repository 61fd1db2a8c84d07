//! `AUTH [username] password` → OK. The one user is `default`.

use bytes::Bytes;

use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::password;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "auth",
    arity: -2,
    flags: &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"],
    acl: &["@fast", "@connection"],
    summary: "Authenticates the connection.",
    args: &[Arg::string("username").optional(), Arg::string("password")],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let (user, password) = match args.remaining() {
        1 => (None, args.bytes()?),
        2 => (Some(args.bytes()?), args.bytes()?),
        _ => return Err(CmdError::Syntax),
    };
    authenticate(ctx, user, &password)?;
    Ok(Reply::Ok.into())
}

/// Checks credentials (AUTH, HELLO … AUTH) and marks the session.
pub fn authenticate(ctx: &mut Ctx<'_>, user: Option<Bytes>, password: &[u8]) -> Result<(), CmdError> {
    let required = ctx.server.settings.requirepass();
    let user_ok = user.as_deref().is_none_or(|u| u == b"default");
    let ok = match &required {
        // Without a password the default user takes any; the one-word
        // form is refused as a likely misconfiguration, as in Redis.
        None if user.is_none() => return Err(CmdError::AuthNotConfigured),
        None => user_ok,
        Some(expected) => user_ok && password::matches(expected.as_bytes(), password),
    };
    if !ok {
        return Err(CmdError::WrongPass);
    }
    ctx.session.authed = true;
    Ok(())
}
