//! Where the server is in its life (loading, serving, stopping), which is
//! what `/ready` answers.
//!
//! The HTTP listener starts before the data is loaded, so that a long
//! load shows as "not ready" instead of as a refused connection; it gets
//! the [`Server`] only once start-up has built it.

use std::sync::{Arc, OnceLock};

use crate::server::Server;

/// Shared by start-up, which publishes the server once it has loaded, and
/// the HTTP handlers, which read it.
#[derive(Debug, Default)]
pub struct Lifecycle {
    server: OnceLock<Arc<Server>>,
}

/// What `/ready` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The data is loaded and the store accepts writes.
    Ready,
    /// The store is opening or the data loading.
    Loading,
    /// SIGTERM or SHUTDOWN: finishing in-flight work.
    Stopping,
    /// The store's last write failed (disk full, map full…): writes wait
    /// and are retried. The store's message.
    StoreFailing(String),
}

impl Readiness {
    /// The readiness of a server in these conditions; a stopping server
    /// says so even when its store fails too, since it will not recover.
    pub fn of(loaded: bool, stopping: bool, store_error: Option<String>) -> Readiness {
        match (loaded, stopping, store_error) {
            (false, _, _) => Readiness::Loading,
            (true, true, _) => Readiness::Stopping,
            (true, false, Some(error)) => Readiness::StoreFailing(error),
            (true, false, None) => Readiness::Ready,
        }
    }

    /// Why it is not ready, in a few words; `None` when it is.
    pub fn reason(&self) -> Option<String> {
        match self {
            Readiness::Ready => None,
            Readiness::Loading => Some("loading".into()),
            Readiness::Stopping => Some("stopping".into()),
            Readiness::StoreFailing(error) => Some(format!("store failing: {error}")),
        }
    }
}

impl Lifecycle {
    /// Publishes the loaded server. Later calls are ignored: a process
    /// serves one server.
    pub fn loaded(&self, server: Arc<Server>) {
        let _ = self.server.set(server);
    }

    /// The server, once loaded.
    pub fn server(&self) -> Option<&Arc<Server>> {
        self.server.get()
    }

    /// Whether the server can take work now, and why not.
    pub fn readiness(&self) -> Readiness {
        match self.server() {
            None => Readiness::of(false, false, None),
            Some(server) => Readiness::of(
                true,
                server.shutdown.is_cancelled(),
                server.store.stats().last_error,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_loaded_running_and_writing() {
        assert_eq!(Readiness::of(true, false, None), Readiness::Ready);
        assert_eq!(Readiness::of(false, false, None), Readiness::Loading);
        assert_eq!(Readiness::of(true, true, None), Readiness::Stopping);
        let full = Readiness::of(true, false, Some("MDB_MAP_FULL".into()));
        assert_eq!(full.reason().as_deref(), Some("store failing: MDB_MAP_FULL"));
        assert_eq!(
            Readiness::of(true, true, Some("disk full".into())),
            Readiness::Stopping
        );
        assert_eq!(Readiness::Ready.reason(), None);
        assert_eq!(Lifecycle::default().readiness(), Readiness::Loading);
    }
}
