//! The overlay: payloads, errors and deletions submitted but not yet in
//! LMDB, so that readers see them at once.
//!
//! Every push adds an entry and every LMDB commit drops a batch of them,
//! tens of thousands a second. In a hash map each of those is a cache miss
//! into a table of megabytes. But new jobs' ids come from one counter and
//! are submitted nearly in order, and entries leave in the order their
//! batches were committed, so the entries of new jobs live in a window
//! indexed by id: adding one writes at the window's end, dropping them
//! walks it from the front, both in memory order. Changes to older jobs
//! (an ack of a job pushed before a restart, an error) go to a hash map.

use std::collections::VecDeque;

use bytes::Bytes;
use quern_engine::JobId;

use crate::store::Ticket;

/// A job's payload and error as the uncommitted batches leave them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unsynced {
    /// The last batch that touched the entry.
    pub batch: Ticket,
    /// The payload.
    pub payload: Slot,
    /// The last error.
    pub error: Slot,
}

/// One value of the overlay.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Slot {
    /// Not changed by an uncommitted batch: read LMDB.
    OnDisk,
    /// Set by an uncommitted batch.
    Set(Bytes),
    /// Deleted by an uncommitted batch.
    Deleted,
}

/// Empty slots a new job's id may leave between it and the window's end
/// (ids handed out but not yet submitted); a job further ahead goes to the
/// map, so that no id can make the window allocate much.
const MAX_GAP: u64 = 64 * 1024;

/// Entries whose room the window and the map keep once they are empty; a
/// burst beyond this gives its memory back.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Entries by job id. An id has at most one entry: in the window from its
/// creation until LMDB holds every batch that touched it, or in the map.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// The id of `window[0]`.
    base: JobId,
    /// Entries of ids `base..base + window.len()`; `None` where there is
    /// none. [`Overlay::trim`] leaves no `None` at either end.
    window: VecDeque<Option<Unsynced>>,
    /// Every other entry.
    map: foldhash::HashMap<JobId, Unsynced>,
}

impl Overlay {
    /// Records a change to job `id` in batch `ticket`: `created` for the
    /// job's creation, then the new payload and error, where they change.
    pub fn set(
        &mut self,
        id: JobId,
        ticket: Ticket,
        created: bool,
        payload: Option<Slot>,
        error: Option<Slot>,
    ) {
        let entry = self.entry(id, created, ticket);
        entry.batch = ticket;
        if let Some(payload) = payload {
            entry.payload = payload;
        }
        if let Some(error) = error {
            entry.error = error;
        }
    }

    fn entry(&mut self, id: JobId, created: bool, ticket: Ticket) -> &mut Unsynced {
        let fresh = Unsynced {
            batch: ticket,
            payload: Slot::OnDisk,
            error: Slot::OnDisk,
        };
        match self.index(id) {
            // Its own entry, or the empty slot its creation fills.
            Some(at) if created || self.window[at].is_some() => {
                return self.window[at].get_or_insert(fresh);
            }
            None if created && self.can_append(id) => {
                if self.window.is_empty() {
                    self.base = id;
                }
                let end = self.base + self.window.len() as u64;
                self.window.extend((end..=id).map(|_| None));
                return self.window.back_mut().expect("just extended").insert(fresh);
            }
            _ => {}
        }
        self.map.entry(id).or_insert(fresh)
    }

    /// Where `id` is in the window, if the window spans it.
    fn index(&self, id: JobId) -> Option<usize> {
        let at = id.checked_sub(self.base)?;
        (at < self.window.len() as u64).then_some(at as usize)
    }

    /// Whether a job created with `id` may go at the window's end: past
    /// the end but not far past it (an empty window starts anew at any id
    /// from `base` up, so that `base` never goes back). A window slot is
    /// filled only by its job's creation, so an id whose entry went to the
    /// map never has one in the window too, even once the window spans it.
    fn can_append(&self, id: JobId) -> bool {
        let end = self.base + self.window.len() as u64;
        id >= self.base && (self.window.is_empty() || (id >= end && id - end <= MAX_GAP))
    }

    /// The entry of job `id`, if an uncommitted batch changed it.
    pub fn get(&self, id: JobId) -> Option<&Unsynced> {
        match self.index(id).and_then(|at| self.window[at].as_ref()) {
            Some(entry) => Some(entry),
            None => self.map.get(&id),
        }
    }

    /// Drops job `id`'s entry if LMDB now holds the batch that last
    /// touched it (`ticket` or older); a later batch keeps it. Call
    /// [`Overlay::trim`] once a commit's entries are released.
    pub fn release(&mut self, id: JobId, ticket: Ticket) {
        if let Some(at) = self.index(id) {
            let slot = &mut self.window[at];
            if slot.as_ref().is_some_and(|u| u.batch <= ticket) {
                *slot = None;
                return;
            }
        }
        if self.map.get(&id).is_some_and(|u| u.batch <= ticket) {
            self.map.remove(&id);
        }
    }

    /// Cuts released entries off both ends of the window and gives back
    /// the room of a burst.
    pub fn trim(&mut self) {
        while let Some(None) = self.window.front() {
            self.window.pop_front();
            self.base += 1;
        }
        while let Some(None) = self.window.back() {
            self.window.pop_back();
        }
        if self.window.is_empty() {
            self.window.shrink_to(KEEP_CAPACITY);
        }
        if self.map.is_empty() {
            self.map.shrink_to(KEEP_CAPACITY);
        }
    }

    /// True when no entry is left.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.window.is_empty() && self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// One step against the overlay and a plain map that must agree.
    #[derive(Clone, Debug)]
    enum Step {
        /// Creates the next job, or one `back` ids before it (submitted
        /// late), or `ahead` ids past it (ids handed out in between).
        Create { back: u8, ahead: u32 },
        /// Changes a job created earlier (the n-th, modulo how many).
        Change { nth: usize, delete: bool },
        /// Changes a job the overlay never saw created (before a restart).
        ChangeOld { id: u16 },
        /// Commits the oldest open batch to LMDB.
        Commit,
        /// Closes the open batch.
        Close,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u8..3, prop_oneof![9 => Just(0u32), 1 => 0u32..200_000])
                .prop_map(|(back, ahead)| Step::Create { back, ahead }),
            3 => (any::<usize>(), any::<bool>()).prop_map(|(nth, delete)| Step::Change { nth, delete }),
            1 => any::<u16>().prop_map(|id| Step::ChangeOld { id }),
            1 => Just(Step::Commit),
            2 => Just(Step::Close),
        ]
    }

    /// The overlay and a plain map that must agree, and the batches.
    struct Check {
        overlay: Overlay,
        model: HashMap<JobId, Unsynced>,
        open: Ticket,
        committed: Ticket,
        /// Ids each open or logged batch touched, for its commit.
        touched: HashMap<Ticket, Vec<JobId>>,
    }

    impl Check {
        fn set(&mut self, id: JobId, created: bool, payload: Option<Slot>, error: Option<Slot>) {
            self.overlay
                .set(id, self.open, created, payload.clone(), error.clone());
            let fresh = Unsynced {
                batch: self.open,
                payload: Slot::OnDisk,
                error: Slot::OnDisk,
            };
            let entry = self.model.entry(id).or_insert(fresh);
            entry.batch = self.open;
            if let Some(p) = payload {
                entry.payload = p;
            }
            if let Some(e) = error {
                entry.error = e;
            }
            self.touched.entry(self.open).or_default().push(id);
        }

        fn commit(&mut self) {
            if self.committed + 1 >= self.open {
                return;
            }
            self.committed += 1;
            let ticket = self.committed;
            for id in self.touched.remove(&ticket).unwrap_or_default() {
                self.overlay.release(id, ticket);
                if self.model.get(&id).is_some_and(|u| u.batch <= ticket) {
                    self.model.remove(&id);
                }
            }
            self.overlay.trim();
        }
    }

    proptest! {
        #[test]
        fn agrees_with_a_map(steps in proptest::collection::vec(step(), 1..300)) {
            let mut check = Check {
                overlay: Overlay::default(),
                model: HashMap::new(),
                open: 1,
                committed: 0,
                touched: HashMap::new(),
            };
            // New ids start above every old job's.
            let mut next: JobId = 1 << 20;
            let mut created: Vec<JobId> = Vec::new();
            let mut old: Vec<JobId> = Vec::new();
            for step in steps {
                match step {
                    Step::Create { back, ahead } => {
                        next += u64::from(ahead);
                        let id = next - u64::from(back);
                        if created.contains(&id) {
                            continue;
                        }
                        next += 1;
                        created.push(id);
                        let payload = Bytes::from(id.to_be_bytes().to_vec());
                        check.set(id, true, Some(Slot::Set(payload)), None);
                    }
                    Step::Change { nth, delete } => {
                        let Some(&id) = created.get(nth % created.len().max(1)) else {
                            continue;
                        };
                        if delete {
                            check.set(id, false, Some(Slot::Deleted), Some(Slot::Deleted));
                        } else {
                            check.set(id, false, None, Some(Slot::Set(Bytes::from_static(b"failed"))));
                        }
                    }
                    Step::ChangeOld { id } => {
                        old.push(JobId::from(id));
                        check.set(JobId::from(id), false, Some(Slot::Deleted), Some(Slot::Deleted));
                    }
                    Step::Close => check.open += 1,
                    Step::Commit => check.commit(),
                }
                for id in created.iter().chain(&old).copied() {
                    prop_assert_eq!(check.overlay.get(id), check.model.get(&id), "job {}", id);
                }
                prop_assert_eq!(check.overlay.is_empty(), check.model.is_empty());
                let window_end = check.overlay.base + check.overlay.window.len() as u64;
                prop_assert!(check.overlay.window.is_empty() || window_end <= next);
            }
        }
    }

    #[test]
    fn new_jobs_fill_the_window_and_leave_it_from_the_front() {
        let mut overlay = Overlay::default();
        for id in 100..110 {
            overlay.set(id, 1, true, Some(Slot::Set(Bytes::from_static(b"p"))), None);
        }
        // Job 105 fails in a later batch, and an old job is acked.
        overlay.set(105, 2, false, None, Some(Slot::Set(Bytes::from_static(b"e"))));
        overlay.set(7, 2, false, Some(Slot::Deleted), Some(Slot::Deleted));
        assert_eq!(overlay.window.len(), 10);
        assert_eq!(overlay.map.len(), 1, "only the old job is hashed");

        for id in 100..110 {
            overlay.release(id, 1);
        }
        overlay.trim();
        assert_eq!(overlay.base, 105, "job 105 waits for batch 2");
        assert_eq!(overlay.window.len(), 1);
        assert!(overlay.get(104).is_none());
        assert_eq!(overlay.get(105).map(|u| u.batch), Some(2));

        overlay.release(105, 2);
        overlay.release(7, 2);
        overlay.trim();
        assert!(overlay.is_empty());
    }

    #[test]
    fn a_far_id_does_not_stretch_the_window() {
        let mut overlay = Overlay::default();
        overlay.set(1, 1, true, Some(Slot::Deleted), None);
        overlay.set(1 + 2 * MAX_GAP, 1, true, Some(Slot::Deleted), None);
        assert_eq!(overlay.window.len(), 1);
        assert!(overlay.get(1 + 2 * MAX_GAP).is_some());
    }
}
