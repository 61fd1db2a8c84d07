//! One queue's indexes: waiting jobs by (priority, push order), dead jobs,
//! and how many jobs are in each state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::ready::ReadyList;
use crate::specs::SpecId;
use crate::types::{Counters, JobId, Millis, QueueId, QueueRecord};

/// A waiting job: all the engine keeps about it while it waits. A backlog
/// is mostly waiting jobs, so this is what a backlog costs: 24 bytes a
/// job, with no per-job allocation and no hash-table entry. The priority
/// is the level the job sits in; the queue is the one holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ready {
    /// The job's id; within a level, ids are in push order.
    pub id: JobId,
    /// When it was pushed.
    pub created_at: Millis,
    /// Its options, interned in the engine's spec table.
    pub spec: SpecId,
    /// Deliveries so far (0 until the first pull).
    pub attempt: u32,
}

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
    /// Jobs handed to workers since this engine was built. Kept in memory
    /// only: the on-disk record's counters are frozen by the format, and a
    /// delivery count that restarts with the process is what a metrics
    /// counter expects anyway.
    pub pulled: u64,
    /// Waiting jobs: one list per priority, highest first; each list is
    /// in id order, which is push order.
    ready: BTreeMap<Reverse<i64>, ReadyList>,
    /// Number of jobs in `ready`.
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
            pulled: 0,
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

    /// Adds a waiting job at its place: after every higher priority, in id
    /// order within its own.
    pub fn ready_insert(&mut self, priority: i64, job: Ready) {
        self.ready.entry(Reverse(priority)).or_default().insert(job);
        self.waiting += 1;
    }

    /// Takes the next job to hand out: highest priority, then lowest id.
    pub fn ready_pop(&mut self) -> Option<(i64, Ready)> {
        let mut level = self.ready.first_entry()?;
        let priority = level.key().0;
        let job = level.get_mut().pop_front()?;
        if level.get().is_empty() {
            level.remove();
        }
        self.waiting -= 1;
        Some((priority, job))
    }

    /// Waiting job `id` and its priority.
    pub fn ready_get(&self, id: JobId) -> Option<(i64, Ready)> {
        self.ready
            .iter()
            .find_map(|(&Reverse(priority), level)| level.get(id).map(|job| (priority, job)))
    }

    /// Takes waiting job `id` out of the index.
    pub fn ready_remove(&mut self, id: JobId) -> Option<(i64, Ready)> {
        let (priority, job) = self
            .ready
            .iter_mut()
            .find_map(|(&Reverse(priority), level)| level.remove(id).map(|job| (priority, job)))?;
        if self.ready[&Reverse(priority)].is_empty() {
            self.ready.remove(&Reverse(priority));
        }
        self.waiting -= 1;
        Some((priority, job))
    }

    /// Waiting jobs in the order they would be pulled, with their priority.
    pub fn ready_iter(&self) -> impl Iterator<Item = (i64, &Ready)> + '_ {
        self.ready
            .iter()
            .flat_map(|(&Reverse(priority), level)| level.iter().map(move |job| (priority, job)))
    }

    /// Empties the ready index, for deleting the queue.
    pub fn ready_drain(&mut self) -> impl Iterator<Item = Ready> {
        self.waiting = 0;
        std::mem::take(&mut self.ready)
            .into_values()
            .flat_map(ReadyList::into_iter)
    }

    /// The waiting job pushed first (lowest id).
    pub fn oldest_ready(&self) -> Option<&Ready> {
        self.ready
            .values()
            .filter_map(|level| level.front())
            .min_by_key(|job| job.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(id: JobId) -> Ready {
        Ready {
            id,
            created_at: id * 10,
            spec: 0,
            attempt: 0,
        }
    }

    #[test]
    fn priority_then_fifo_with_reinsertion() {
        let mut q = Queue::new(1, Bytes::from_static(b"q"));
        for (prio, id) in [(0, 1), (5, 2), (0, 3), (5, 4), (-1, 5)] {
            q.ready_insert(prio, ready(id));
        }
        // A returning job goes back to its push-order place.
        assert_eq!(q.ready_remove(1), Some((0, ready(1))));
        q.ready_insert(0, ready(1));
        let order: Vec<_> = q.ready_iter().map(|(p, j)| (p, j.id)).collect();
        assert_eq!(order, vec![(5, 2), (5, 4), (0, 1), (0, 3), (-1, 5)]);
        assert_eq!(q.oldest_ready().map(|j| j.id), Some(1));
        assert_eq!(q.ready_get(4), Some((5, ready(4))));
        assert_eq!(q.ready_get(6), None);
        assert_eq!(q.waiting, 5);
        assert_eq!(q.ready_pop(), Some((5, ready(2))));
        assert_eq!(q.ready_pop(), Some((5, ready(4))));
        assert_eq!(q.ready_pop(), Some((0, ready(1))));
        assert_eq!(q.waiting, 2);
        assert_eq!(q.ready_drain().map(|j| j.id).collect::<Vec<_>>(), vec![3, 5]);
        assert_eq!((q.waiting, q.ready_pop()), (0, None));
    }

    #[test]
    fn a_waiting_job_costs_24_bytes() {
        assert_eq!(std::mem::size_of::<Ready>(), 24);
    }
}
