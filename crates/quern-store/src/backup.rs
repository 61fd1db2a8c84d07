//! A consistent copy of the store, taken while it serves.
//!
//! The copy is LMDB's own (`mdb_env_copy2` with compaction: free pages are
//! left out) from one read transaction, so it is a single point in the
//! store's history, and nothing waits for it but the caller. Before it
//! starts, [`Store::checkpoint`] moves what only the log holds into LMDB,
//! so the copy has every change committed before the call.
//!
//! The result is a data directory of its own: a server started on it
//! creates its log and lock files, and serves the jobs as they were. It is
//! written as `data.mdb.partial` and renamed to `data.mdb` once flushed, so
//! a `data.mdb` in the target is always a whole copy.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use heed::CompactionOption;

use crate::error::StoreError;
use crate::store::Store;

/// The copy's file name: what LMDB opens in a data directory.
pub const BACKUP_FILE: &str = "data.mdb";
/// The name it has while being written.
const PARTIAL_FILE: &str = "data.mdb.partial";

/// What a finished backup wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The copy: `data.mdb` in the target directory.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// How long it took, checkpoint included.
    pub took: Duration,
}

impl Store {
    /// Copies the store into `dir` (created if missing; an earlier copy
    /// there is replaced only once the new one is whole). Blocks until
    /// done: call it from a thread of its own.
    pub fn backup(&self, dir: &Path) -> Result<Backup, StoreError> {
        let started = Instant::now();
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        self.checkpoint()?;
        let partial = dir.join(PARTIAL_FILE);
        let mut file = File::create(&partial).map_err(io_error(&partial))?;
        if let Err(e) = self.env.copy_to_file(&mut file, CompactionOption::Enabled) {
            drop(file);
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        file.sync_all().map_err(io_error(&partial))?;
        let bytes = file.metadata().map_err(io_error(&partial))?.len();
        drop(file);
        let path = dir.join(BACKUP_FILE);
        std::fs::rename(&partial, &path).map_err(io_error(&path))?;
        // The rename is durable once the directory is flushed.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
        Ok(Backup {
            path,
            bytes,
            took: started.elapsed(),
        })
    }
}
