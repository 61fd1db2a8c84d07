//! The commands: one file each, all registered in [`TABLE`], which both
//! dispatches and answers COMMAND, COMMAND INFO and COMMAND DOCS.
//!
//! Each file holds the command's syntax line, its table entry, a parse
//! step into a typed struct (every argument parsed, the first error kept,
//! leftovers refused), the execution, and its parse tests.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::Bytes;
use quern_engine::Pulled;
use quern_store::{Fsync, Ticket};

use crate::blocking::PullRequest;
use crate::clients::ClientHandle;
use crate::config::MAX_QUEUE_NAME;
use crate::error::CmdError;
use crate::resp::{Protocol, Reply};
use crate::server::Server;
use crate::stats::Tally;

mod args;
mod jobs;

mod auth;
mod bgsave;
mod client;
mod command;
mod config;
mod dbsize;
mod echo;
mod hello;
mod info;
mod lastsave;
mod ping;
mod quit;
mod reset;
mod select;
mod shutdown;
mod time;

mod qack;
mod qcancel;
mod qdel;
mod qdlq;
mod qfail;
mod qget;
mod qlen;
mod qmpull;
mod qmpush;
mod qpause;
mod qpeek;
mod qpull;
mod qpush;
mod qresume;
mod qscan;
mod qstats;
mod qtouch;

pub use args::Args;
pub use jobs::{jobs_replies, jobs_reply};

/// Every command the server knows.
pub static TABLE: &[&Command] = &[
    &auth::COMMAND,
    &bgsave::COMMAND,
    &client::COMMAND,
    &command::COMMAND,
    &config::COMMAND,
    &dbsize::COMMAND,
    &echo::COMMAND,
    &hello::COMMAND,
    &info::COMMAND,
    &lastsave::COMMAND,
    &ping::COMMAND,
    &quit::COMMAND,
    &reset::COMMAND,
    &select::COMMAND,
    &shutdown::COMMAND,
    &time::COMMAND,
    &qack::COMMAND,
    &qcancel::COMMAND,
    &qdel::COMMAND,
    &qdlq::COMMAND,
    &qfail::COMMAND,
    &qget::COMMAND,
    &qlen::COMMAND,
    &qmpull::COMMAND,
    &qmpush::COMMAND,
    &qpause::COMMAND,
    &qpeek::COMMAND,
    &qpull::COMMAND,
    &qpush::COMMAND,
    &qresume::COMMAND,
    &qscan::COMMAND,
    &qstats::COMMAND,
    &qtouch::COMMAND,
];

/// Every command and subcommand, each container followed by its
/// subcommands: the rows of the per-command statistics (INFO
/// commandstats, the command metrics).
pub static ROWS: LazyLock<Vec<&'static Command>> = LazyLock::new(|| {
    TABLE
        .iter()
        .flat_map(|c| std::iter::once(*c).chain(c.subcommands.iter().copied()))
        .collect()
});

/// The table by name, with each command's row in [`ROWS`]. Clients choose
/// what is looked up but not what is in the table, so a fast hash is safe.
static BY_NAME: LazyLock<foldhash::HashMap<&'static [u8], (&'static Command, usize)>> = LazyLock::new(|| {
    ROWS.iter()
        .enumerate()
        .filter(|(_, c)| !c.name.contains('|'))
        .map(|(row, c)| (c.name.as_bytes(), (*c, row)))
        .collect()
});

/// A command's entry: what it is called, how many arguments it takes,
/// where its key is, its documentation, and the function that runs it.
#[derive(Debug)]
pub struct Command {
    /// Lowercase name; a subcommand's is `container|sub`.
    pub name: &'static str,
    /// Redis arity: N means exactly N words (name included), -N at least N.
    pub arity: i32,
    /// Redis command flags (write, readonly, fast, blocking, …).
    pub flags: &'static [&'static str],
    /// Where the command's queue (its key) is.
    pub keys: Keys,
    /// ACL categories.
    pub acl: &'static [&'static str],
    /// One line for COMMAND DOCS.
    pub summary: &'static str,
    /// Complexity for COMMAND DOCS.
    pub complexity: &'static str,
    /// COMMAND DOCS group.
    pub group: &'static str,
    /// The arguments, for COMMAND DOCS (and redis-cli's hints).
    pub args: &'static [Arg],
    /// Subcommands of a container command (CLIENT, CONFIG…).
    pub subcommands: &'static [&'static Command],
    /// Parses and runs it. Containers dispatch to their subcommands.
    pub run: Run,
}

/// Parses and executes a command.
pub type Run = fn(&mut Ctx<'_>, &mut Args) -> Result<Outcome, CmdError>;

/// The version every command entry reports in COMMAND DOCS `since`.
pub const SINCE: &str = "0.1.0";

impl Command {
    /// Defaults for the fields most entries share.
    pub const BASE: Command = Command {
        name: "",
        arity: 1,
        flags: &[],
        keys: Keys::None,
        acl: &[],
        summary: "",
        complexity: "O(1)",
        group: "connection",
        args: &[],
        subcommands: &[],
        run: |_, _| Err(CmdError::Syntax),
    };

    /// True when the command may run before AUTH.
    fn no_auth(&self) -> bool {
        self.flags.contains(&"no-auth")
    }
}

/// Where a command's queue name is, for COMMAND's key specs (cluster
/// clients route by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// No key.
    None,
    /// One key at this index (1: right after the name).
    At(i64),
    /// `numkeys key [key ...]` starting at this index (QMPULL).
    Counted(i64),
}

/// One argument, for COMMAND DOCS.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    /// Its name.
    pub name: &'static str,
    /// Its type: key, string, integer, pure-token, block, oneof.
    pub kind: &'static str,
    /// The keyword before it, if any.
    pub token: Option<&'static str>,
    /// May be left out.
    pub optional: bool,
    /// May repeat.
    pub multiple: bool,
    /// The parts of a block or the choices of a oneof.
    pub children: &'static [Arg],
}

impl Arg {
    const fn new(name: &'static str, kind: &'static str) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            children: &[],
        }
    }

    /// The queue name.
    pub const fn key(name: &'static str) -> Arg {
        Arg::new(name, "key")
    }
    /// A string.
    pub const fn string(name: &'static str) -> Arg {
        Arg::new(name, "string")
    }
    /// An integer.
    pub const fn integer(name: &'static str) -> Arg {
        Arg::new(name, "integer")
    }
    /// A bare keyword.
    pub const fn token(word: &'static str) -> Arg {
        let mut a = Arg::new(word, "pure-token");
        a.token = Some(word);
        a
    }
    /// One of several.
    pub const fn oneof(name: &'static str, choices: &'static [Arg]) -> Arg {
        let mut a = Arg::new(name, "oneof");
        a.children = choices;
        a
    }
    /// A group.
    pub const fn block(name: &'static str, parts: &'static [Arg]) -> Arg {
        let mut a = Arg::new(name, "block");
        a.children = parts;
        a
    }
    /// `KEYWORD value`.
    pub const fn option(self, keyword: &'static str) -> Arg {
        let mut a = self;
        a.token = Some(keyword);
        a.optional = true;
        a
    }
    /// Marks it optional.
    pub const fn optional(self) -> Arg {
        let mut a = self;
        a.optional = true;
        a
    }
    /// Marks it repeatable.
    pub const fn multiple(self) -> Arg {
        let mut a = self;
        a.multiple = true;
        a
    }
}

/// Per-connection state that commands read and change.
#[derive(Debug)]
pub struct Session {
    /// The protocol replies are encoded in.
    pub protocol: Protocol,
    /// Whether the client has authenticated (or no password is set).
    pub authed: bool,
    /// What other connections see of this one.
    pub handle: Arc<ClientHandle>,
    /// Its command runs not yet added to the server's figures.
    pub tally: Tally,
}

/// What a command runs with.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The server.
    pub server: &'a Arc<Server>,
    /// The connection.
    pub session: &'a mut Session,
}

/// What the connection does with a command's result.
#[derive(Debug)]
pub enum Outcome {
    /// Send this.
    Reply(Reply),
    /// Send this once the store has committed `Ticket` (when the fsync
    /// policy requires it).
    Durable(Reply, Ticket),
    /// Send these jobs, pulled from this queue, with their payloads: the
    /// connection reads the payloads of a pipeline's pulls together, before
    /// it runs any other command (see [`reads_payloads_later`]).
    Jobs(Bytes, Vec<Pulled>),
    /// Wait for jobs, then send them.
    Block(PullRequest),
    /// Send this, then close the connection.
    Close(Reply),
    /// Stop the server.
    Shutdown,
}

/// Whether the command `name` may answer [`Outcome::Jobs`]. The payloads
/// of pulls are read before any other command runs, so that a pipeline's
/// ack, fail or delete of a job cannot take the payload from its pull's
/// reply.
pub fn reads_payloads_later(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"QPULL") || name.eq_ignore_ascii_case(b"QMPULL")
}

impl Outcome {
    /// A reply that is durable after `ticket`.
    pub fn durable(reply: Reply, ticket: Ticket) -> Result<Outcome, CmdError> {
        Ok(Outcome::Durable(reply, ticket))
    }
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Outcome {
        Outcome::Reply(r)
    }
}

/// Runs one request. Errors become error replies here.
pub fn execute(ctx: &mut Ctx<'_>, argv: Vec<Bytes>) -> Outcome {
    match dispatch(ctx, argv) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Reply(Reply::Error(e.to_string())),
    }
}

fn dispatch(ctx: &mut Ctx<'_>, argv: Vec<Bytes>) -> Result<Outcome, CmdError> {
    let Some((command, row)) = find(&argv[0]) else {
        return Err(CmdError::UnknownCommand {
            name: argv[0].clone(),
            args: argv
                .iter()
                .skip(1)
                .take(20)
                .map(|a| a.slice(..a.len().min(128)))
                .collect(),
        });
    };
    // One clock read serves CLIENT LIST's idle time and the run's timing.
    let received = Instant::now();
    ctx.session.handle.touch(command.name, received);
    let stats = &ctx.server.stats;
    let (command, row, first_arg) = match resolve(ctx.session, command, row, &argv) {
        Ok(found) => found,
        Err((e, row)) => {
            stats.command(row).rejected();
            return Err(e);
        }
    };
    let result = (command.run)(ctx, &mut Args::new(argv, first_arg));
    ctx.session.tally.ran(row, received.elapsed(), result.is_err());
    result
}

/// The entry that runs a request for `command` (found in row `row`): the
/// command itself or its subcommand, with its row and where its arguments
/// start; or why it is refused before running, and the row to count that
/// against.
fn resolve(
    session: &Session,
    command: &'static Command,
    row: usize,
    argv: &[Bytes],
) -> Result<(&'static Command, usize, usize), (CmdError, usize)> {
    // Redis's order: unknown command, then arity, then authentication.
    check_arity(command, argv.len()).map_err(|e| (e, row))?;
    if !session.authed && !command.no_auth() {
        return Err((CmdError::NoAuth, row));
    }
    // A container alone (bare COMMAND) runs its own entry.
    if command.subcommands.is_empty() || argv.len() == 1 {
        return Ok((command, row, 1));
    }
    let Some(index) = command.subcommands.iter().position(|s| {
        s.name
            .rsplit('|')
            .next()
            .is_some_and(|n| argv[1].eq_ignore_ascii_case(n.as_bytes()))
    }) else {
        let unknown = CmdError::UnknownSubcommand {
            sub: argv[1].clone(),
            command: command.name,
        };
        return Err((unknown, row));
    };
    // Subcommands follow their container in ROWS.
    let (sub, sub_row) = (command.subcommands[index], row + 1 + index);
    check_arity(sub, argv.len()).map_err(|e| (e, sub_row))?;
    Ok((sub, sub_row, 2))
}

/// The command named `name`, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    find(name).map(|(command, _)| command)
}

/// The command named `name`, in any case, and its row in [`ROWS`].
fn find(name: &[u8]) -> Option<(&'static Command, usize)> {
    // Every name is shorter than this; lowercase it without allocating.
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(&*lower).copied()
}

fn check_arity(command: &Command, words: usize) -> Result<(), CmdError> {
    let words = words as i32;
    let ok = if command.arity >= 0 {
        words == command.arity
    } else {
        words >= -command.arity
    };
    if ok {
        Ok(())
    } else {
        Err(CmdError::WrongArity(command.name.to_owned()))
    }
}

/// Checks a queue name: 1–200 bytes, no whitespace or control characters.
pub fn check_queue_name(name: &[u8]) -> Result<(), CmdError> {
    if name.is_empty() || name.len() > MAX_QUEUE_NAME {
        return Err(CmdError::Invalid(format!(
            "invalid queue name: must be 1 to {MAX_QUEUE_NAME} bytes"
        )));
    }
    if name
        .iter()
        .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(CmdError::Invalid(
            "invalid queue name: no whitespace or control characters allowed".into(),
        ));
    }
    Ok(())
}

/// A reply after a write: durable once committed, when the fsync policy
/// says replies wait for that.
pub fn after_commit(ctx: &Ctx<'_>, reply: Reply, ticket: Ticket) -> Result<Outcome, CmdError> {
    let store = &ctx.server.store;
    if store.fsync() == Fsync::Always || store.backlog() > crate::config::MAX_STORE_BACKLOG {
        Outcome::durable(reply, ticket)
    } else {
        Ok(Outcome::Reply(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for c in TABLE {
            assert!(names.insert(c.name), "{} twice", c.name);
            assert_eq!(c.name, c.name.to_lowercase());
            assert!(!c.summary.is_empty(), "{} has no summary", c.name);
            if c.group == "queue" {
                assert!(
                    matches!(c.keys, Keys::At(1) | Keys::Counted(1)) || c.name == "qscan" || c.name == "qdlq",
                    "{}: the queue comes first",
                    c.name
                );
            }
            for sub in c.subcommands {
                assert!(sub.name.starts_with(&format!("{}|", c.name)), "{}", sub.name);
                assert!(sub.arity.unsigned_abs() >= 2);
            }
        }
        assert!(lookup(b"QpUsH").is_some());
        assert!(lookup(b"nope").is_none());
        // Each subcommand's row follows its container's.
        for (row, command) in ROWS.iter().enumerate() {
            if let Some((container, _)) = command.name.split_once('|') {
                let (found, container_row) = find(container.as_bytes()).unwrap();
                let index = found
                    .subcommands
                    .iter()
                    .position(|s| s.name == command.name)
                    .unwrap();
                assert_eq!(row, container_row + 1 + index, "{}", command.name);
            } else {
                assert_eq!(find(command.name.as_bytes()).unwrap().1, row);
            }
        }
    }
}
