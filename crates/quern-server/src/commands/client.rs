//! `CLIENT SETNAME|GETNAME|SETINFO|ID|INFO|LIST|KILL|NO-EVICT|NO-TOUCH|HELP`:
//! the connection's identity, and the other clients.

use bytes::Bytes;

use super::args::{keyword, number};
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "client",
    arity: -2,
    summary: "Manages client connections.",
    subcommands: &[
        &SETNAME, &GETNAME, &SETINFO, &ID, &INFO, &LIST, &KILL, &NO_EVICT, &NO_TOUCH, &HELP,
    ],
    ..Command::BASE
};

const FLAGS: &[&str] = &["noscript", "loading", "stale"];
const ACL: &[&str] = &["@slow", "@connection"];

static SETNAME: Command = Command {
    name: "client|setname",
    arity: 3,
    flags: FLAGS,
    acl: ACL,
    summary: "Sets the connection's name.",
    args: &[Arg::string("connection-name")],
    run: |ctx, args| {
        let name = args.bytes()?;
        check_client_name(&name)?;
        ctx.session.handle.set_name(Some(name));
        Ok(Reply::Ok.into())
    },
    ..Command::BASE
};

static GETNAME: Command = Command {
    name: "client|getname",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the connection's name.",
    run: |ctx, _| Ok(Reply::opt_bulk(ctx.session.handle.name()).into()),
    ..Command::BASE
};

static SETINFO: Command = Command {
    name: "client|setinfo",
    arity: 4,
    flags: FLAGS,
    acl: ACL,
    summary: "Sets the client library's name or version.",
    args: &[Arg::oneof(
        "attr",
        &[
            Arg::string("libname").option("LIB-NAME"),
            Arg::string("libver").option("LIB-VER"),
        ],
    )],
    run: setinfo,
    ..Command::BASE
};

static ID: Command = Command {
    name: "client|id",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the connection's id.",
    run: |ctx, _| Ok(Reply::Int(ctx.session.handle.id as i64).into()),
    ..Command::BASE
};

static INFO: Command = Command {
    name: "client|info",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns information about the connection.",
    run: |ctx, _| Ok(Reply::Text(format!("{}\n", ctx.session.handle.info_line())).into()),
    ..Command::BASE
};

static LIST: Command = Command {
    name: "client|list",
    arity: -2,
    flags: FLAGS,
    acl: &["@admin", "@slow", "@dangerous", "@connection"],
    summary: "Lists the client connections.",
    complexity: "O(N) where N is the number of client connections",
    args: &[
        Arg::oneof(
            "client-type",
            &[
                Arg::token("NORMAL"),
                Arg::token("MASTER"),
                Arg::token("REPLICA"),
                Arg::token("PUBSUB"),
            ],
        )
        .option("TYPE"),
        Arg::integer("client-id").option("ID").multiple(),
    ],
    run: list,
    ..Command::BASE
};

static KILL: Command = Command {
    name: "client|kill",
    arity: -3,
    flags: &["admin", "noscript", "loading", "stale"],
    acl: &["@admin", "@slow", "@dangerous", "@connection"],
    summary: "Closes client connections.",
    complexity: "O(N) where N is the number of client connections",
    args: &[Arg::oneof(
        "filter",
        &[
            Arg::string("ip:port"),
            Arg::integer("client-id").option("ID"),
            Arg::string("ip:port").option("ADDR"),
            Arg::string("ip:port").option("LADDR"),
            Arg::oneof("yes/no", &[Arg::token("YES"), Arg::token("NO")]).option("SKIPME"),
        ],
    )],
    run: kill,
    ..Command::BASE
};

static NO_EVICT: Command = Command {
    name: "client|no-evict",
    arity: 3,
    flags: FLAGS,
    acl: ACL,
    summary: "Accepted for compatibility: Quern never evicts clients.",
    args: &[Arg::oneof("enabled", &[Arg::token("ON"), Arg::token("OFF")])],
    run: on_off,
    ..Command::BASE
};

static NO_TOUCH: Command = Command {
    name: "client|no-touch",
    arity: 3,
    flags: FLAGS,
    acl: ACL,
    summary: "Accepted for compatibility: Quern keeps no access times.",
    args: &[Arg::oneof("enabled", &[Arg::token("ON"), Arg::token("OFF")])],
    run: on_off,
    ..Command::BASE
};

static HELP: Command = Command {
    name: "client|help",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Lists the CLIENT subcommands.",
    run: |_, _| {
        let lines = [
            "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
            "GETNAME, SETNAME <name>, SETINFO LIB-NAME|LIB-VER <value>, ID, INFO,",
            "LIST [TYPE NORMAL] [ID <id> ...], KILL <ip:port> | ID <id> | ADDR <ip:port> | LADDR <ip:port> | SKIPME yes|no,",
            "NO-EVICT on|off, NO-TOUCH on|off, HELP",
        ];
        Ok(Reply::Array(
            lines
                .iter()
                .map(|l| Reply::Bulk(Bytes::from_static(l.as_bytes())))
                .collect(),
        )
        .into())
    },
    ..Command::BASE
};

/// Client names and library infos: printable, no spaces (CLIENT LIST is
/// space separated).
pub fn check_client_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::Invalid(
            "Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    Ok(())
}

fn setinfo(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let attr = args.bytes()?;
    let value = args.bytes()?;
    // The attribute first: the first bad argument is the one reported.
    let name = match keyword(&attr).as_slice() {
        b"LIB-NAME" => true,
        b"LIB-VER" => false,
        _ => {
            return Err(CmdError::Invalid(format!(
                "Unrecognized option '{}'",
                String::from_utf8_lossy(&attr)
            )))
        }
    };
    check_client_name(&value).map_err(|_| {
        CmdError::Invalid(format!(
            "{} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(&attr)
        ))
    })?;
    if name {
        ctx.session.handle.set_lib(Some(value), None);
    } else {
        ctx.session.handle.set_lib(None, Some(value));
    }
    Ok(Reply::Ok.into())
}

fn list(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let mut ids: Option<Vec<u64>> = None;
    while let Some(opt) = args.next_arg() {
        match keyword(&opt).as_slice() {
            b"TYPE" => {
                let kind = args.bytes()?;
                match keyword(&kind).as_slice() {
                    b"NORMAL" => {}
                    b"MASTER" | b"REPLICA" | b"SLAVE" | b"PUBSUB" => ids = Some(Vec::new()),
                    _ => {
                        return Err(CmdError::Invalid(format!(
                            "Unknown client type '{}'",
                            String::from_utf8_lossy(&kind)
                        )))
                    }
                }
            }
            b"ID" => {
                let rest = args.rest();
                if rest.is_empty() {
                    return Err(CmdError::Syntax);
                }
                let wanted = rest.iter().map(|a| number(a)).collect::<Result<Vec<u64>, _>>()?;
                ids.get_or_insert_with(Vec::new).extend(wanted);
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let mut text = String::new();
    for client in ctx.server.clients.all() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
            text.push_str(&client.info_line());
            text.push('\n');
        }
    }
    Ok(Reply::Text(text).into())
}

fn kill(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    // The old form, `CLIENT KILL ip:port`, answers OK or an error.
    if args.remaining() == 1 {
        let addr = args.bytes()?;
        let target = ctx
            .server
            .clients
            .all()
            .into_iter()
            .find(|c| c.addr.to_string().as_bytes() == addr.as_ref());
        return match target {
            Some(client) => {
                client.kill.cancel();
                Ok(Reply::Ok.into())
            }
            None => Err(CmdError::Invalid("No such client".into())),
        };
    }
    let (mut id, mut addr, mut laddr, mut skip_me) = (None, None, None, true);
    // Every client here is a normal one of the default user; a filter
    // for another type or user matches none.
    let (mut other_kind, mut max_age) = (false, None);
    while let Some(opt) = args.next_arg() {
        let value = args.bytes()?;
        match keyword(&opt).as_slice() {
            b"ID" => {
                id = Some(
                    number::<u64>(&value)
                        .map_err(|_| CmdError::Invalid("client-id should be greater than 0".into()))?,
                )
            }
            b"ADDR" => addr = Some(value),
            b"LADDR" => laddr = Some(value),
            b"SKIPME" => {
                skip_me = match keyword(&value).as_slice() {
                    b"YES" => true,
                    b"NO" => false,
                    _ => return Err(CmdError::Syntax),
                }
            }
            b"TYPE" => match keyword(&value).as_slice() {
                b"NORMAL" => {}
                b"MASTER" | b"REPLICA" | b"SLAVE" | b"PUBSUB" => other_kind = true,
                _ => {
                    return Err(CmdError::Invalid(format!(
                        "Unknown client type '{}'",
                        String::from_utf8_lossy(&value)
                    )))
                }
            },
            b"USER" => other_kind |= value.as_ref() != b"default",
            b"MAXAGE" => max_age = Some(number::<u64>(&value)?),
            _ => return Err(CmdError::Syntax),
        }
    }
    let me = ctx.session.handle.id;
    let mut killed = 0;
    for client in ctx.server.clients.all() {
        let matched = !other_kind
            && max_age.is_none_or(|age| client.connected.elapsed().as_secs() >= age)
            && id.is_none_or(|id| id == client.id)
            && addr
                .as_deref()
                .is_none_or(|a| client.addr.to_string().as_bytes() == a)
            && laddr
                .as_deref()
                .is_none_or(|a| client.laddr.to_string().as_bytes() == a)
            && !(skip_me && client.id == me);
        if matched {
            client.kill.cancel();
            killed += 1;
        }
    }
    Ok(Reply::Int(killed).into())
}

fn on_off(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    match keyword(&args.bytes()?).as_slice() {
        b"ON" | b"OFF" => Ok(Reply::Ok.into()),
        _ => Err(CmdError::Syntax),
    }
}

#[cfg(test)]
mod tests {
    use super::check_client_name;

    #[test]
    fn names() {
        assert!(check_client_name(b"worker-1").is_ok());
        assert!(check_client_name(b"").is_ok());
        assert!(check_client_name(b"a b").is_err());
        assert!(check_client_name(b"a\nb").is_err());
    }
}
