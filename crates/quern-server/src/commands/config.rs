//! `CONFIG GET pattern [pattern ...]` → map of matching settings;
//! `CONFIG SET name value [name value ...]` → OK (all or nothing);
//! `CONFIG RESETSTAT` → OK; `CONFIG HELP`.

use super::args::number;
use super::{Arg, Args, Command, Ctx, Outcome};
use crate::config::{Bounds, MAXCLIENTS_BOUNDS, MAX_BATCH_BOUNDS, MAX_PAYLOAD_BOUNDS};
use crate::error::CmdError;
use crate::glob;
use crate::resp::Reply;
use crate::server::Server;

pub static COMMAND: Command = Command {
    name: "config",
    arity: -2,
    summary: "Reads and changes the server's settings.",
    group: "server",
    subcommands: &[&GET, &SET, &RESETSTAT, &HELP],
    ..Command::BASE
};

static GET: Command = Command {
    name: "config|get",
    arity: -3,
    flags: &["admin", "noscript", "loading", "stale"],
    acl: &["@admin", "@slow", "@dangerous"],
    summary: "Returns the settings whose names match the patterns.",
    complexity: "O(N) where N is the number of settings",
    group: "server",
    args: &[Arg::string("parameter").multiple()],
    run: get,
    ..Command::BASE
};

static SET: Command = Command {
    name: "config|set",
    arity: -4,
    flags: &["admin", "noscript", "loading", "stale"],
    acl: &["@admin", "@slow", "@dangerous"],
    summary: "Changes settings while the server runs.",
    complexity: "O(N) where N is the number of settings",
    group: "server",
    args: &[Arg::block("data", &[Arg::string("parameter"), Arg::string("value")]).multiple()],
    run: set,
    ..Command::BASE
};

static RESETSTAT: Command = Command {
    name: "config|resetstat",
    arity: 2,
    flags: &["admin", "noscript", "loading", "stale"],
    acl: &["@admin", "@slow", "@dangerous"],
    summary: "Accepted for compatibility; queue counters are part of each queue's state.",
    group: "server",
    run: |_, _| Ok(Reply::Ok.into()),
    ..Command::BASE
};

static HELP: Command = Command {
    name: "config|help",
    arity: 2,
    flags: &["loading", "stale"],
    acl: &["@slow"],
    summary: "Lists the CONFIG subcommands.",
    group: "server",
    run: |_, _| {
        let lines = [
            "CONFIG <subcommand> [<arg> ...]. Subcommands are:",
            "GET <pattern> ...",
            "SET <name> <value> ...",
            "RESETSTAT",
            "HELP",
        ];
        Ok(Reply::Array(lines.iter().map(|l| Reply::bulk(*l)).collect()).into())
    },
    ..Command::BASE
};

/// Checks a value for a setting, and stores it when the flag is set.
type Setter = fn(&Server, &[u8], bool) -> Result<(), String>;

/// One setting: how to read it and, if it may change while the server
/// runs, how to change it.
struct Setting {
    name: &'static str,
    get: fn(&Server) -> String,
    /// Checks a value, and stores it when the flag is set. CONFIG SET
    /// checks every pair before storing any.
    set: Option<Setter>,
}

/// Every setting CONFIG knows, with the names Redis tools look for.
const SETTINGS: &[Setting] = &[
    Setting {
        name: "bind",
        get: |s| s.config.bind.to_string(),
        set: None,
    },
    Setting {
        name: "port",
        get: |s| s.addr.port().to_string(),
        set: None,
    },
    Setting {
        name: "dir",
        get: |s| s.config.dir.display().to_string(),
        set: None,
    },
    Setting {
        name: "fsync",
        get: |s| s.store.fsync().name().to_owned(),
        set: None,
    },
    Setting {
        name: "appendfsync",
        get: |s| s.store.fsync().name().to_owned(),
        set: None,
    },
    Setting {
        name: "appendonly",
        get: |_| "yes".into(),
        set: None,
    },
    Setting {
        name: "save",
        get: |_| String::new(),
        set: None,
    },
    Setting {
        name: "databases",
        get: |_| "1".into(),
        set: None,
    },
    Setting {
        name: "maxmemory",
        get: |_| "0".into(),
        set: None,
    },
    Setting {
        name: "maxmemory-policy",
        get: |_| "noeviction".into(),
        set: None,
    },
    Setting {
        name: "timeout",
        get: |_| "0".into(),
        set: None,
    },
    Setting {
        name: "shards",
        get: |s| s.config.shards.to_string(),
        set: None,
    },
    // The logger is installed once, at start: these two only report it.
    Setting {
        name: "log-format",
        get: |s| s.config.log_format.name().to_owned(),
        set: None,
    },
    Setting {
        name: "log-level",
        get: |s| s.config.log_level.clone(),
        set: None,
    },
    // The address the listener has (with the port chosen for port 0).
    Setting {
        name: "http",
        get: |s| crate::config::show_http(s.http_addr),
        set: None,
    },
    Setting {
        name: "metrics-max-queues",
        get: |s| s.config.metrics_max_queues.to_string(),
        set: None,
    },
    Setting {
        name: "requirepass",
        get: |s| s.settings.requirepass().unwrap_or_default(),
        set: Some(|s, v, store| {
            let v = std::str::from_utf8(v).map_err(|_| "the password must be UTF-8".to_owned())?;
            if store {
                s.settings.set_requirepass(v);
            }
            Ok(())
        }),
    },
    Setting {
        name: "maxclients",
        get: |s| s.settings.maxclients().to_string(),
        set: Some(|s, v, store| {
            let n = parse_setting(&MAXCLIENTS_BOUNDS, v)?;
            if store {
                s.settings.set_maxclients(n);
            }
            Ok(())
        }),
    },
    Setting {
        name: "max-payload",
        get: |s| s.settings.max_payload().to_string(),
        set: Some(|s, v, store| {
            let n = parse_setting(&MAX_PAYLOAD_BOUNDS, v)?;
            if store {
                s.settings.set_max_payload(n);
            }
            Ok(())
        }),
    },
    Setting {
        name: "max-batch",
        get: |s| s.settings.max_batch().to_string(),
        set: Some(|s, v, store| {
            let n = parse_setting(&MAX_BATCH_BOUNDS, v)?;
            if store {
                s.settings.set_max_batch(n);
            }
            Ok(())
        }),
    },
];

/// A number within `bounds`, the same ones the server checks at start.
fn parse_setting(bounds: &Bounds, value: &[u8]) -> Result<usize, String> {
    let n: usize = number(value).map_err(|_| "argument couldn't be parsed into an integer".to_owned())?;
    bounds.check(n)
}

fn get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let patterns = args.rest();
    let pairs = SETTINGS
        .iter()
        .filter(|s| {
            patterns
                .iter()
                .any(|p| glob::matches(&p.to_ascii_lowercase(), s.name.as_bytes()))
        })
        .map(|s| (Reply::bulk(s.name), Reply::bulk((s.get)(ctx.server))))
        .collect();
    Ok(Reply::Map(pairs).into())
}

fn set(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Outcome, CmdError> {
    let words = args.rest();
    if !words.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("config|set".into()));
    }
    // Check every pair before changing any, so a bad one changes nothing.
    let mut changes = Vec::new();
    for pair in words.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
        let Some(setting) = SETTINGS.iter().find(|s| s.name == name) else {
            return Err(CmdError::Invalid(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        let Some(apply) = setting.set else {
            return Err(CmdError::Invalid(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )));
        };
        changes.push((setting, apply, pair[1].clone()));
    }
    let failed = |name: &str, why: String| {
        CmdError::Invalid(format!(
            "CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    for (setting, set, value) in &changes {
        set(ctx.server, value, false).map_err(|why| failed(setting.name, why))?;
    }
    for (setting, set, value) in &changes {
        set(ctx.server, value, true).map_err(|why| failed(setting.name, why))?;
    }
    Ok(Reply::Ok.into())
}
