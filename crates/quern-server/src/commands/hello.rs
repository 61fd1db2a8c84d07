//! `HELLO [protover [AUTH username password] [SETNAME clientname]]` → a
//! map describing the server, in the protocol just chosen.
//!
//! `server` is "quern"; `version` is the Redis version whose protocol and
//! commands Quern matches, for clients that look at it.

use bytes::Bytes;

use super::args::keyword;
use super::auth::authenticate;
use super::client::check_client_name;
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::{Protocol, Reply};

/// The Redis version reported to clients.
pub const REDIS_VERSION: &str = "7.2.0";

pub static COMMAND: Command = Command {
    name: "hello",
    arity: -1,
    flags: &["noscript", "loading", "stale", "fast", "no-auth", "allow-busy"],
    acl: &["@fast", "@connection"],
    summary: "Handshakes with the server: protocol version, credentials, name.",
    args: &[Arg::block(
        "arguments",
        &[
            Arg::integer("protover"),
            Arg::block("auth", &[Arg::string("username"), Arg::string("password")]).option("AUTH"),
            Arg::string("clientname").option("SETNAME"),
        ],
    )
    .optional()],
    run,
    ..Command::BASE
};

fn run(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let mut protocol = ctx.session.protocol;
    let (mut auth, mut name) = (None, None);
    if let Some(version) = args.next_arg() {
        protocol = match super::args::number::<i64>(&version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Err(CmdError::NoProto),
            Err(_) => {
                return Err(CmdError::Invalid(
                    "Protocol version is not an integer or out of range".into(),
                ))
            }
        };
        while let Some(opt) = args.next_arg() {
            match keyword(&opt).as_slice() {
                b"AUTH" if args.remaining() >= 2 => auth = Some((args.bytes()?, args.bytes()?)),
                b"SETNAME" if args.remaining() >= 1 => {
                    let n: Bytes = args.bytes()?;
                    check_client_name(&n)?;
                    name = Some(n);
                }
                _ => {
                    return Err(CmdError::Invalid(format!(
                        "Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&opt)
                    )))
                }
            }
        }
    }
    match auth {
        Some((user, password)) => authenticate(ctx, Some(user), &password)?,
        None if !ctx.session.authed => return Err(CmdError::NoAuthHello),
        None => {}
    }
    let session = &mut *ctx.session;
    session.protocol = protocol;
    session.handle.set_resp(protocol.version() as u8);
    if let Some(name) = name {
        session.handle.set_name(Some(name));
    }
    Ok(Reply::fields(vec![
        ("server", Reply::bulk("quern")),
        ("version", Reply::bulk(REDIS_VERSION)),
        ("proto", Reply::Int(protocol.version())),
        ("id", Reply::Int(session.handle.id as i64)),
        ("mode", Reply::bulk("standalone")),
        ("role", Reply::bulk("master")),
        ("modules", Reply::Array(Vec::new())),
    ])
    .into())
}
