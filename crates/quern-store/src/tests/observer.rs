//! The observer sees each commit of the log and each LMDB commit, with
//! the number of changes each held.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{config, submit_and_wait};
use crate::{Fsync, Store, StoreObserver};

#[derive(Debug, Default)]
struct Seen {
    committed: Mutex<Vec<usize>>,
    checkpointed: Mutex<Vec<usize>>,
}

impl StoreObserver for Seen {
    fn committed(&self, changes: usize, took: Duration) {
        assert!(took < Duration::from_secs(60));
        self.committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(changes);
    }

    fn checkpointed(&self, changes: usize, _took: Duration) {
        self.checkpointed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(changes);
    }
}

#[test]
fn every_write_is_reported_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(dir.path(), Fsync::Always)).unwrap();
    let seen = Arc::new(Seen::default());
    assert!(store.observe(seen.clone()));
    assert!(
        !store.observe(Arc::new(Seen::default())),
        "one observer per store"
    );

    let mut engine = quern_engine::Engine::new(Arc::new(quern_engine::Ids::default()));
    let opts = quern_engine::PushOptions::default();
    let mut changes = Vec::new();
    engine
        .push_many(b"q", vec![bytes::Bytes::new(); 3], &opts, 1)
        .unwrap();
    engine.take_changes(&mut changes);
    // Three jobs and the queue's record, in one commit.
    assert_eq!(changes.len(), 4);
    submit_and_wait(&store, &mut changes);
    engine.push(b"q", bytes::Bytes::new(), &opts, 2).unwrap();
    engine.take_changes(&mut changes);
    submit_and_wait(&store, &mut changes);
    assert_eq!(*seen.committed.lock().unwrap(), vec![4, 2]);

    // LMDB takes both log records in one transaction, or in two.
    store.checkpoint().unwrap();
    let checkpointed = seen.checkpointed.lock().unwrap().clone();
    assert_eq!(checkpointed.iter().sum::<usize>(), 6, "{checkpointed:?}");
    store.shutdown().unwrap();
}
