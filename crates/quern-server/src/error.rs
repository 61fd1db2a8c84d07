//! Why a command was refused, and how each reason is worded on the wire.
//! Every RESP error prefix the server sends is chosen here, and nowhere
//! else; the texts follow Redis's where Redis has the same error.

use std::fmt;

use bytes::Bytes;
use quern_engine::EngineError;
use quern_store::StoreError;

/// A command that was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// The command has no entry in the command table.
    UnknownCommand {
        /// The name as sent.
        name: Bytes,
        /// Its first arguments, for the message.
        args: Vec<Bytes>,
    },
    /// A container command (CLIENT, CONFIG…) has no such subcommand.
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: Bytes,
        /// The container, for the hint.
        command: &'static str,
    },
    /// Too few or too many arguments for the command's arity.
    WrongArity(String),
    /// An argument that fits nowhere (a leftover, a misplaced keyword).
    Syntax,
    /// A number that does not parse or is out of its range.
    NotInteger,
    /// A keyword option the command does not know.
    UnknownOption(Bytes),
    /// Any other invalid argument, with the reason.
    Invalid(String),
    /// Authentication is required first.
    NoAuth,
    /// HELLO without AUTH on a server that requires it.
    NoAuthHello,
    /// Wrong password (or user).
    WrongPass,
    /// AUTH on a server without a password.
    AuthNotConfigured,
    /// HELLO with a protocol version other than 2 or 3.
    NoProto,
    /// The job is not active in that queue.
    NoJob(u64),
    /// The job's current delivery is not the one given with ATTEMPT.
    LeaseLost(u64),
    /// The server is out of job ids.
    IdsExhausted,
    /// The store failed.
    Store(String),
}

impl CmdError {
    /// A number argument that is out of its range, naming it.
    pub fn range(what: &str, min: u64, max: u64) -> CmdError {
        CmdError::Invalid(format!("{what} must be between {min} and {max}"))
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl fmt::Display for CmdError {
    /// The error reply's text, code first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::UnknownCommand { name, args } => {
                write!(
                    f,
                    "ERR unknown command '{}', with args beginning with: ",
                    lossy(name)
                )?;
                for arg in args {
                    write!(f, "'{}' ", lossy(arg))?;
                }
                Ok(())
            }
            CmdError::UnknownSubcommand { sub, command } => write!(
                f,
                "ERR unknown subcommand '{}'. Try {} HELP.",
                lossy(sub),
                command.to_uppercase()
            ),
            CmdError::WrongArity(name) => write!(f, "ERR wrong number of arguments for '{name}' command"),
            CmdError::Syntax => write!(f, "ERR syntax error"),
            CmdError::NotInteger => write!(f, "ERR value is not an integer or out of range"),
            CmdError::UnknownOption(opt) => write!(f, "ERR unknown option '{}'", lossy(opt)),
            CmdError::Invalid(why) => write!(f, "ERR {why}"),
            CmdError::NoAuth => write!(f, "NOAUTH Authentication required."),
            CmdError::NoAuthHello => write!(
                f,
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time"
            ),
            CmdError::WrongPass => write!(f, "WRONGPASS invalid username-password pair or user is disabled."),
            CmdError::AuthNotConfigured => write!(
                f,
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?"
            ),
            CmdError::NoProto => write!(f, "NOPROTO unsupported protocol version"),
            CmdError::NoJob(id) => write!(f, "NOJOB job {id} is not active in this queue"),
            CmdError::LeaseLost(id) => {
                write!(f, "LEASELOST job {id} is no longer leased to this attempt")
            }
            CmdError::IdsExhausted => write!(f, "ERR job ids are exhausted"),
            CmdError::Store(why) => write!(f, "ERR store: {why}"),
        }
    }
}

impl From<EngineError> for CmdError {
    fn from(e: EngineError) -> CmdError {
        match e {
            EngineError::NoJob(id) => CmdError::NoJob(id),
            EngineError::LeaseLost(id) => CmdError::LeaseLost(id),
            EngineError::IdsExhausted => CmdError::IdsExhausted,
        }
    }
}

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> CmdError {
        CmdError::Store(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_is_worded_as_redis_words_it() {
        let e = CmdError::UnknownCommand {
            name: Bytes::from_static(b"foo"),
            args: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        let e = CmdError::UnknownCommand {
            name: Bytes::from_static(b"foo"),
            args: vec![],
        };
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: "
        );
    }
}
