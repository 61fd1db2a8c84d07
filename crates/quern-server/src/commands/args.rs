//! Reading a command's arguments one by one.

use std::str::FromStr;

use bytes::Bytes;

use super::check_queue_name;
use crate::error::CmdError;

/// A command's arguments after its name (and subcommand).
#[derive(Debug)]
pub struct Args {
    argv: Vec<Bytes>,
    pos: usize,
}

impl Args {
    /// The arguments of `argv` from index `pos` on.
    pub fn new(argv: Vec<Bytes>, pos: usize) -> Args {
        Args { argv, pos }
    }

    /// Arguments from words, for parse tests.
    #[cfg(test)]
    pub fn words(words: &[&str]) -> Args {
        Args::new(
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
            0,
        )
    }

    /// The next argument, if any.
    pub fn next_arg(&mut self) -> Option<Bytes> {
        let arg = self.argv.get(self.pos).cloned();
        self.pos += usize::from(arg.is_some());
        arg
    }

    /// The next argument, which must be there.
    pub fn bytes(&mut self) -> Result<Bytes, CmdError> {
        self.next_arg().ok_or(CmdError::Syntax)
    }

    /// The next argument as a queue name.
    pub fn queue(&mut self) -> Result<Bytes, CmdError> {
        let name = self.bytes()?;
        check_queue_name(&name)?;
        Ok(name)
    }

    /// The next argument as a number of type `T`.
    pub fn number<T: FromStr>(&mut self) -> Result<T, CmdError> {
        number(&self.bytes()?)
    }

    /// The next argument as a number within `[min, max]`; `what` names it
    /// in the error.
    pub fn number_in<T>(&mut self, what: &str, min: T, max: T) -> Result<T, CmdError>
    where
        T: FromStr + PartialOrd + Copy + Into<u64>,
    {
        let n: T = self.number()?;
        if n < min || n > max {
            return Err(CmdError::range(what, min.into(), max.into()));
        }
        Ok(n)
    }

    /// Arguments not read yet.
    pub fn remaining(&self) -> usize {
        self.argv.len().saturating_sub(self.pos)
    }

    /// The arguments not read yet, consumed.
    pub fn rest(&mut self) -> Vec<Bytes> {
        let rest = self.argv.get(self.pos..).unwrap_or_default().to_vec();
        self.pos = self.argv.len();
        rest
    }

    /// Refuses leftover arguments.
    pub fn finish(&self) -> Result<(), CmdError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(CmdError::Syntax)
        }
    }
}

/// Parses a decimal number as Redis does: no sign other than a leading
/// `-`, no spaces.
pub fn number<T: FromStr>(arg: &[u8]) -> Result<T, CmdError> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse().ok())
        .ok_or(CmdError::NotInteger)
}

/// An option keyword, uppercased for matching.
pub fn keyword(arg: &[u8]) -> Vec<u8> {
    arg.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        Args::words(words)
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(number::<i64>(b"-12"), Ok(-12));
        for bad in [&b"+1"[..], b" 1", b"1.5", b"", b"99999999999999999999"] {
            assert_eq!(number::<i64>(bad), Err(CmdError::NotInteger));
        }
        let mut a = args(&["0", "5"]);
        assert!(matches!(
            a.number_in::<u32>("COUNT", 1, 10),
            Err(CmdError::Invalid(_))
        ));
        assert_eq!(a.number_in::<u32>("COUNT", 1, 10), Ok(5));
        assert_eq!(a.finish(), Ok(()));
    }

    #[test]
    fn queue_names_are_checked() {
        assert!(args(&["ok:queue/1"]).queue().is_ok());
        assert!(args(&[""]).queue().is_err());
        assert!(args(&["a b"]).queue().is_err());
        assert!(args(&[&"x".repeat(201)]).queue().is_err());
    }
}
