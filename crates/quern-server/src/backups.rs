//! Backups taken while the server runs: BGSAVE starts one, LASTSAVE and
//! INFO persistence report them.
//!
//! A backup is the store's own consistent copy ([`Store::backup`]) written
//! to `backup/data.mdb` in the data directory, on a thread of its own, so
//! clients are served meanwhile. The copy is a whole data directory: start
//! a server on a directory holding only that file to restore it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use quern_store::{Backup, Store};

/// The folder, inside the data directory, that BGSAVE writes to.
pub const BACKUP_DIR: &str = "backup";

/// The server's backups: at most one running at a time.
#[derive(Debug)]
pub struct Backups {
    store: Arc<Store>,
    dir: PathBuf,
    state: Arc<Mutex<BackupState>>,
}

/// What LASTSAVE and INFO report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupState {
    /// A backup is being written.
    pub running: bool,
    /// Another is to start once it is done.
    pub scheduled: bool,
    /// Unix seconds of the last successful backup; the server's start
    /// until there is one (as Redis reports its last load).
    pub last_success: u64,
    /// The last backup that finished, or why it failed.
    pub last: Option<Result<Backup, String>>,
}

/// What BGSAVE did.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// A backup started.
    Now,
    /// One was running; another follows it.
    Scheduled,
}

impl Backups {
    /// Backups of `store` into `<data_dir>/backup`.
    pub fn new(store: Arc<Store>, data_dir: &std::path::Path) -> Backups {
        Backups {
            store,
            dir: data_dir.join(BACKUP_DIR),
            state: Arc::new(Mutex::new(BackupState {
                last_success: unix_now(),
                ..BackupState::default()
            })),
        }
    }

    /// Where backups are written.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Starts a backup on its own thread. While one runs, a `schedule`d
    /// request runs right after it (BGSAVE SCHEDULE), and any other is
    /// refused; the error, in Redis's words, says why none was started.
    pub fn start(&self, schedule: bool) -> Result<Started, String> {
        {
            let mut state = self.lock();
            if state.running {
                if !schedule {
                    return Err("Background save already in progress".into());
                }
                state.scheduled = true;
                return Ok(Started::Scheduled);
            }
            state.running = true;
        }
        let (store, dir, state) = (Arc::clone(&self.store), self.dir.clone(), Arc::clone(&self.state));
        let spawned = std::thread::Builder::new()
            .name("quern-backup".into())
            .spawn(move || loop {
                let result = store.backup(&dir).map_err(|e| e.to_string());
                match &result {
                    Ok(b) => tracing::info!(
                        path = %b.path.display(),
                        bytes = b.bytes,
                        ms = b.took.as_millis() as u64,
                        "backup written"
                    ),
                    Err(why) => tracing::error!(dir = %dir.display(), error = %why, "backup failed"),
                }
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if result.is_ok() {
                    state.last_success = unix_now();
                }
                state.last = Some(result);
                if !std::mem::take(&mut state.scheduled) {
                    state.running = false;
                    return;
                }
            });
        match spawned {
            Ok(_) => Ok(Started::Now),
            Err(e) => {
                self.lock().running = false;
                Err(format!("cannot start the backup thread: {e}"))
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> BackupState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BackupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
