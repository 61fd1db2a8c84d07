//! Tests against a real LMDB in a temporary directory.

mod model;
mod observer;
mod store;
mod unawaited;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use quern_engine::{Engine, Ids, JobRecord, QueueRecord};

use crate::{Fsync, LoadedIds, Store, StoreConfig, Ticket};

/// A config with a small map: tests open many environments.
fn config(dir: &Path, fsync: Fsync) -> StoreConfig {
    StoreConfig {
        dir: dir.to_path_buf(),
        fsync,
        map_size: 64 << 20,
    }
}

/// Runs a future on a throwaway current-thread runtime: the store needs no
/// runtime features, only something to poll `committed`.
fn block<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Submits and waits for the commit.
fn submit_and_wait(store: &Store, changes: &mut Vec<quern_engine::Change>) -> Ticket {
    let ticket = store.submit(changes);
    block(store.committed(ticket)).expect("committed");
    ticket
}

/// Loads a store into a fresh engine the way a server starts: one shared
/// `Ids`, queues restored before jobs.
fn load_engine(store: &Store) -> (Engine, LoadedIds) {
    let mut queues: Vec<QueueRecord> = Vec::new();
    let mut jobs: Vec<JobRecord> = Vec::new();
    let loaded = store.load(|q| queues.push(q), |j| jobs.push(j)).expect("load");
    assert!(
        jobs.windows(2).all(|w| w[0].id < w[1].id),
        "jobs load in id order"
    );
    let ids = Arc::new(Ids::new(loaded.next_job, loaded.next_queue));
    let mut engine = Engine::new(Arc::clone(&ids));
    for q in queues {
        engine.restore_queue(q);
    }
    for j in jobs {
        engine.restore_job(j);
    }
    assert_eq!(
        ids.peek_job(),
        loaded.next_job,
        "restoring does not pass the stored counters"
    );
    assert_eq!(ids.peek_queue(), loaded.next_queue);
    (engine, loaded)
}

/// A copy of the data directory's files as they are now: what a power cut
/// would leave once the last commit is durable.
fn crash_copy(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}

/// Shuts a store down, drops it (closing the environment) and opens the
/// directory again.
fn reopen(store: Arc<Store>, fsync: Fsync) -> Arc<Store> {
    let dir = store.dir().to_path_buf();
    store.shutdown().expect("shutdown");
    // The environment closes with the last handle; a second open of the
    // same path while it is still open would be refused.
    drop(Arc::into_inner(store).expect("the test holds the last handle"));
    Store::open(&config(&dir, fsync)).expect("reopen")
}
