//! `COMMAND [COUNT | INFO [name ...] | DOCS [name ...] | LIST | GETKEYS
//! command [arg ...] | HELP]`: the command table, as Redis presents its
//! own. Cluster clients read the key specs to route each command by its
//! queue; redis-cli reads the docs for its hints.

use bytes::Bytes;

use super::args::number;
use super::{lookup, Arg, Args, Command, Ctx, Keys, Outcome, SINCE, TABLE};
use crate::error::CmdError;
use crate::resp::Reply;

pub static COMMAND: Command = Command {
    name: "command",
    arity: -1,
    flags: &["loading", "stale"],
    acl: &["@slow", "@connection"],
    summary: "Returns every command's details.",
    complexity: "O(N) where N is the number of commands",
    group: "server",
    run: |_, args| {
        // Bare COMMAND; with a subcommand the table dispatches elsewhere,
        // except for an unknown one, which lands here.
        match args.next_arg() {
            None => Ok(Reply::Array(TABLE.iter().map(|c| info(c)).collect()).into()),
            Some(sub) => Err(CmdError::UnknownSubcommand {
                sub,
                command: "command",
            }),
        }
    },
    subcommands: &[&COUNT, &INFO, &DOCS, &LIST, &GETKEYS, &HELP],
    ..Command::BASE
};

const FLAGS: &[&str] = &["loading", "stale"];
const ACL: &[&str] = &["@slow", "@connection"];

static COUNT: Command = Command {
    name: "command|count",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the number of commands.",
    group: "server",
    run: |_, _| Ok(Reply::Int(TABLE.len() as i64).into()),
    ..Command::BASE
};

static INFO: Command = Command {
    name: "command|info",
    arity: -2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the details of the named commands (all without names).",
    complexity: "O(N) where N is the number of commands",
    group: "server",
    args: &[Arg::string("command-name").optional().multiple()],
    run: |_, args| {
        let names = args.rest();
        let infos = if names.is_empty() {
            TABLE.iter().map(|c| info(c)).collect()
        } else {
            names.iter().map(|n| find(n).map_or(Reply::Null, info)).collect()
        };
        Ok(Reply::Array(infos).into())
    },
    ..Command::BASE
};

static DOCS: Command = Command {
    name: "command|docs",
    arity: -2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the documentation of the named commands (all without names).",
    complexity: "O(N) where N is the number of commands",
    group: "server",
    args: &[Arg::string("command-name").optional().multiple()],
    run: |_, args| {
        let names = args.rest();
        let chosen: Vec<&Command> = if names.is_empty() {
            TABLE.to_vec()
        } else {
            names.iter().filter_map(|n| find(n)).collect()
        };
        Ok(Reply::Map(
            chosen
                .into_iter()
                .map(|c| (Reply::bulk(c.name), docs(c)))
                .collect(),
        )
        .into())
    },
    ..Command::BASE
};

static LIST: Command = Command {
    name: "command|list",
    arity: -2,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the names of the commands.",
    complexity: "O(N) where N is the number of commands",
    group: "server",
    run: |_, _| Ok(Reply::Array(TABLE.iter().map(|c| Reply::bulk(c.name)).collect()).into()),
    ..Command::BASE
};

static GETKEYS: Command = Command {
    name: "command|getkeys",
    arity: -3,
    flags: FLAGS,
    acl: ACL,
    summary: "Returns the queues a command would touch.",
    group: "server",
    args: &[Arg::string("command"), Arg::string("arg").optional().multiple()],
    run: getkeys,
    ..Command::BASE
};

static HELP: Command = Command {
    name: "command|help",
    arity: 2,
    flags: FLAGS,
    acl: ACL,
    summary: "Lists the COMMAND subcommands.",
    group: "server",
    run: |_, _| {
        let lines = [
            "COMMAND <subcommand> [<arg> ...]. Subcommands are:",
            "(no subcommand), COUNT, INFO [<name> ...], DOCS [<name> ...], LIST, GETKEYS <command> [<arg> ...], HELP",
        ];
        Ok(Reply::Array(lines.iter().map(|l| Reply::bulk(*l)).collect()).into())
    },
    ..Command::BASE
};

/// A command or subcommand by name (`client|setname` too).
fn find(name: &[u8]) -> Option<&'static Command> {
    let lower = String::from_utf8_lossy(name).to_lowercase();
    match lower.split_once('|') {
        None => lookup(lower.as_bytes()),
        Some((top, _)) => lookup(top.as_bytes())?
            .subcommands
            .iter()
            .copied()
            .find(|s| s.name == lower),
    }
}

fn strings(words: &[&'static str]) -> Vec<Reply> {
    words.iter().map(|w| Reply::Status(w)).collect()
}

/// The legacy (first, last, step) key positions.
fn legacy_range(keys: Keys) -> (i64, i64, i64) {
    match keys {
        Keys::At(i) => (i, i, 1),
        // Keys counted by an argument cannot be a range: Redis gives 0s
        // and the movablekeys flag.
        Keys::None | Keys::Counted(_) => (0, 0, 0),
    }
}

/// COMMAND INFO's entry for `c`, as Redis 7 lays it out.
fn info(c: &Command) -> Reply {
    let (first, last, step) = legacy_range(c.keys);
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(i64::from(c.arity)),
        Reply::Set(strings(c.flags)),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        Reply::Set(strings(c.acl)),
        Reply::Array(Vec::new()),
        Reply::Array(key_specs(c)),
        Reply::Array(c.subcommands.iter().map(|s| info(s)).collect()),
    ])
}

fn key_specs(c: &Command) -> Vec<Reply> {
    let flags = if c.flags.contains(&"write") {
        vec!["RW", "UPDATE"]
    } else {
        vec!["RO", "ACCESS"]
    };
    let spec = |begin: i64, find: Reply| {
        Reply::fields(vec![
            (
                "flags",
                Reply::Set(flags.iter().map(|f| Reply::Status(f)).collect()),
            ),
            (
                "begin_search",
                Reply::fields(vec![
                    ("type", Reply::bulk("index")),
                    ("spec", Reply::fields(vec![("index", Reply::Int(begin))])),
                ]),
            ),
            ("find_keys", find),
        ])
    };
    match c.keys {
        Keys::None => Vec::new(),
        Keys::At(i) => vec![spec(
            i,
            Reply::fields(vec![
                ("type", Reply::bulk("range")),
                (
                    "spec",
                    Reply::fields(vec![
                        ("lastkey", Reply::Int(0)),
                        ("keystep", Reply::Int(1)),
                        ("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        )],
        Keys::Counted(i) => vec![spec(
            i,
            Reply::fields(vec![
                ("type", Reply::bulk("keynum")),
                (
                    "spec",
                    Reply::fields(vec![
                        ("keynumidx", Reply::Int(0)),
                        ("firstkey", Reply::Int(1)),
                        ("keystep", Reply::Int(1)),
                    ]),
                ),
            ]),
        )],
    }
}

/// COMMAND DOCS's entry for `c`.
fn docs(c: &Command) -> Reply {
    let mut fields = vec![
        ("summary", Reply::bulk(c.summary)),
        ("since", Reply::bulk(SINCE)),
        ("group", Reply::bulk(c.group)),
        ("complexity", Reply::bulk(c.complexity)),
    ];
    if !c.args.is_empty() {
        fields.push(("arguments", Reply::Array(c.args.iter().map(arg_docs).collect())));
    }
    if !c.subcommands.is_empty() {
        fields.push((
            "subcommands",
            Reply::Map(
                c.subcommands
                    .iter()
                    .map(|s| (Reply::bulk(s.name), docs(s)))
                    .collect(),
            ),
        ));
    }
    Reply::fields(fields)
}

fn arg_docs(a: &Arg) -> Reply {
    let mut fields = vec![("name", Reply::bulk(a.name)), ("type", Reply::bulk(a.kind))];
    if !matches!(a.kind, "block" | "oneof" | "pure-token") {
        fields.push(("display_text", Reply::bulk(a.name)));
    }
    if let Some(token) = a.token {
        fields.push(("token", Reply::bulk(token)));
    }
    let mut flags = Vec::new();
    if a.optional {
        flags.push(Reply::Status("optional"));
    }
    if a.multiple {
        flags.push(Reply::Status("multiple"));
    }
    if !flags.is_empty() {
        fields.push(("flags", Reply::Array(flags)));
    }
    if !a.children.is_empty() {
        fields.push((
            "arguments",
            Reply::Array(a.children.iter().map(arg_docs).collect()),
        ));
    }
    Reply::fields(fields)
}

fn getkeys(_: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let argv: Vec<Bytes> = args.rest();
    let invalid = || CmdError::Invalid("Invalid command specified".into());
    let mut command = lookup(&argv[0]).ok_or_else(invalid)?;
    if !command.subcommands.is_empty() {
        let sub = argv.get(1).ok_or_else(invalid)?;
        let name = format!("{}|{}", command.name, String::from_utf8_lossy(sub).to_lowercase());
        command = command
            .subcommands
            .iter()
            .copied()
            .find(|s| s.name == name)
            .ok_or_else(invalid)?;
    }
    let at = |i: i64| argv.get(i as usize).cloned();
    let keys: Vec<Bytes> = match command.keys {
        Keys::None => Vec::new(),
        Keys::At(i) => at(i).into_iter().collect(),
        Keys::Counted(i) => {
            // The count is a claim: it must be a number that fits the
            // arguments actually sent.
            let bad_arguments = || CmdError::Invalid("Invalid arguments specified for command".into());
            let n: usize = at(i).and_then(|n| number(&n).ok()).ok_or_else(bad_arguments)?;
            let first = i as usize + 1;
            if n == 0 || n > argv.len().saturating_sub(first) {
                return Err(bad_arguments());
            }
            argv[first..first + n].to_vec()
        }
    };
    if keys.is_empty() {
        return Err(CmdError::Invalid("The command has no key arguments".into()));
    }
    Ok(Reply::Array(keys.into_iter().map(Reply::Bulk).collect()).into())
}
