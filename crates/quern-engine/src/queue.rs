//! One queue's indexes: ready jobs by (priority, push order), dead jobs,
//! and how many jobs are in each state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::types::{Counters, JobId, QueueId, QueueRecord};

/// A queue inside one engine shard.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The queue's id, stable across restarts.
    pub id: QueueId,
    /// Its name, as clients spell it.
    pub name: Bytes,
    /// QPAUSE: pushes are accepted, nothing is handed out.
    pub paused: bool,
    /// Lifetime counters, persisted with the queue's record.
    pub counters: Counters,
    /// Waiting jobs: one deque per priority, highest first; each deque is
    /// sorted by id, which is push order. A new job is appended; a job that
    /// comes back (retry, requeue) is inserted at its id's place, which is
    /// near the front, so both are cheap. 8 bytes per waiting job.
    ready: BTreeMap<Reverse<i64>, VecDeque<JobId>>,
    /// Number of ids in `ready`; the engine keeps the counts.
    pub waiting: u64,
    /// Jobs in state delayed (their deadlines are in the engine's timers).
    pub delayed: u64,
    /// Jobs in state active (their lease deadlines are in the timers).
    pub active: u64,
    /// Dead jobs, in id order.
    pub dead: BTreeSet<JobId>,
    /// Set when the record changed since the engine last emitted it (the
    /// engine also lists the queue then, so that it never scans them all).
    pub dirty: bool,
}

impl Queue {
    pub fn new(id: QueueId, name: Bytes) -> Queue {
        Queue {
            id,
            name,
            paused: false,
            counters: Counters::default(),
            ready: BTreeMap::new(),
            waiting: 0,
            delayed: 0,
            active: 0,
            dead: BTreeSet::new(),
            dirty: false,
        }
    }

    pub fn record(&self) -> QueueRecord {
        QueueRecord {
            id: self.id,
            name: self.name.clone(),
            paused: self.paused,
            counters: self.counters,
        }
    }

    /// Jobs in every state.
    pub fn total(&self) -> u64 {
        self.waiting + self.delayed + self.active + self.dead.len() as u64
    }

    pub fn ready_insert(&mut self, priority: i64, id: JobId) {
        let level = self.ready.entry(Reverse(priority)).or_default();
        match level.back() {
            Some(&last) if last > id => {
                let at = level.partition_point(|&x| x < id);
                level.insert(at, id);
            }
            _ => level.push_back(id),
        }
    }

    /// The next job to hand out: highest priority, then lowest id.
    pub fn ready_first(&self) -> Option<JobId> {
        self.ready
            .values()
            .next()
            .and_then(|level| level.front().copied())
    }

    pub fn ready_remove(&mut self, priority: i64, id: JobId) -> bool {
        let Some(level) = self.ready.get_mut(&Reverse(priority)) else {
            return false;
        };
        let Ok(at) = level.binary_search(&id) else {
            return false;
        };
        level.remove(at);
        if level.is_empty() {
            self.ready.remove(&Reverse(priority));
        }
        true
    }

    /// Waiting jobs in the order they would be pulled.
    pub fn ready_iter(&self) -> impl Iterator<Item = JobId> + '_ {
        self.ready.values().flatten().copied()
    }

    /// The lowest id among waiting jobs: the one pushed first.
    pub fn oldest_ready(&self) -> Option<JobId> {
        self.ready
            .values()
            .filter_map(|level| level.front())
            .min()
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_then_fifo_with_reinsertion() {
        let mut q = Queue::new(1, Bytes::from_static(b"q"));
        for (prio, id) in [(0, 1), (5, 2), (0, 3), (5, 4), (-1, 5)] {
            q.ready_insert(prio, id);
        }
        // A returning job goes back to its push-order place.
        assert!(q.ready_remove(0, 1));
        q.ready_insert(0, 1);
        assert_eq!(q.ready_iter().collect::<Vec<_>>(), vec![2, 4, 1, 3, 5]);
        assert_eq!(q.ready_first(), Some(2));
        assert_eq!(q.oldest_ready(), Some(1));
        assert!(!q.ready_remove(0, 2), "2 has priority 5");
    }
}
