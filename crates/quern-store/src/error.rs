//! The store's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the store could not do what was asked.
#[derive(Debug)]
pub enum StoreError {
    /// A filesystem operation outside LMDB failed (creating the data
    /// directory, starting a thread), or LMDB failed to open its
    /// files.
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// LMDB refused an operation (disk full, map full, not an LMDB file,
    /// environment already open in this process, ...).
    Lmdb(heed::Error),
    /// The data was written by a build that uses another on-disk format.
    /// Nothing was changed: this build refuses to touch it.
    Format {
        /// The data directory.
        dir: PathBuf,
        /// The version stored in the data.
        found: u32,
        /// The only version this build reads.
        expected: u32,
    },
    /// Another process (another quern) has this data directory open.
    InUse(PathBuf),
    /// A stored record cannot be decoded; the message names it.
    Corrupt(String),
    /// The store has shut down (or its threads stopped) before the work was
    /// committed.
    Closed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "I/O error on {}: {source}", path.display()),
            StoreError::Lmdb(e) => write!(f, "LMDB error: {e}"),
            StoreError::Format { dir, found, expected } => write!(
                f,
                "data in {} has format version {found}; this build reads version {expected}",
                dir.display()
            ),
            StoreError::InUse(dir) => write!(
                f,
                "{} is in use by another process (another quern holds its lock)",
                dir.display()
            ),
            StoreError::Corrupt(what) => write!(f, "corrupt data: {what}"),
            StoreError::Closed => f.write_str("the store is shut down"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Lmdb(e) => Some(e),
            _ => None,
        }
    }
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        StoreError::Lmdb(e)
    }
}
