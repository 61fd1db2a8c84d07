//! The waiting jobs of one priority level, in id order, stored in chunks.
//!
//! One contiguous deque would double its buffer as a backlog grows: at ten
//! million jobs that is a 240 MB copy under the shard's lock (a stall every
//! client sees), and the allocator keeps the old buffers, so a backlog
//! costs twice its size. Chunks of a fixed size never move once filled and
//! are freed as they drain, so a waiting job costs its 24 bytes plus a
//! pointer per chunk, and no push ever copies more than one chunk.

use std::collections::VecDeque;

use crate::queue::Ready;
use crate::types::JobId;

/// Jobs per chunk: as many as fill 32 KiB (an allocator size class, so
/// nothing is lost to rounding), small enough to split cheaply, large enough
/// that the chunk index is a rounding error.
const CHUNK: usize = (32 << 10) / std::mem::size_of::<Ready>();

/// Waiting jobs in id order. Every chunk is non-empty and holds at most
/// [`CHUNK`] jobs; ids rise across chunks.
#[derive(Debug, Default)]
pub(crate) struct ReadyList {
    chunks: VecDeque<VecDeque<Ready>>,
    len: usize,
}

impl ReadyList {
    /// Jobs in the list (the queue keeps the count it reports).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The job with the lowest id.
    pub fn front(&self) -> Option<&Ready> {
        self.chunks.front().and_then(VecDeque::front)
    }

    /// Takes the job with the lowest id.
    pub fn pop_front(&mut self) -> Option<Ready> {
        let chunk = self.chunks.front_mut()?;
        let job = chunk.pop_front();
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        self.len -= 1;
        job
    }

    /// Adds a job at its id's place: appended when it is the newest (a
    /// push), else inserted, which is near the front for a job coming back
    /// (a retry, a requeue).
    pub fn insert(&mut self, job: Ready) {
        self.len += 1;
        match self.chunks.back_mut() {
            Some(last) if last.back().is_some_and(|newest| newest.id < job.id) => {
                if last.len() < CHUNK {
                    last.push_back(job);
                } else {
                    self.chunks.push_back(new_chunk(job));
                }
                return;
            }
            Some(_) => {}
            None => {
                self.chunks.push_back(new_chunk(job));
                return;
            }
        }
        // The chunk that takes it: the last one whose first id is lower.
        let at = self
            .chunks
            .partition_point(|chunk| chunk[0].id < job.id)
            .saturating_sub(1);
        let chunk = &mut self.chunks[at];
        if chunk.len() == CHUNK {
            // Full: move its upper half to a chunk of its own.
            let upper = chunk.split_off(CHUNK / 2);
            let goes_up = upper[0].id < job.id;
            self.chunks.insert(at + 1, upper);
            let chunk = &mut self.chunks[at + usize::from(goes_up)];
            let place = chunk.partition_point(|x| x.id < job.id);
            chunk.insert(place, job);
            return;
        }
        let place = chunk.partition_point(|x| x.id < job.id);
        chunk.insert(place, job);
    }

    /// Where job `id` is: its chunk and its place in the chunk.
    fn find(&self, id: JobId) -> Option<(usize, usize)> {
        let at = self
            .chunks
            .partition_point(|chunk| chunk[0].id <= id)
            .checked_sub(1)?;
        let place = self.chunks[at].binary_search_by_key(&id, |job| job.id).ok()?;
        Some((at, place))
    }

    /// Job `id`, if it is here.
    pub fn get(&self, id: JobId) -> Option<Ready> {
        let (at, place) = self.find(id)?;
        Some(self.chunks[at][place])
    }

    /// Takes job `id` out, if it is here.
    pub fn remove(&mut self, id: JobId) -> Option<Ready> {
        let (at, place) = self.find(id)?;
        let job = self.chunks[at].remove(place);
        if self.chunks[at].is_empty() {
            self.chunks.remove(at);
        }
        self.len -= 1;
        job
    }

    /// The jobs in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Ready> + '_ {
        self.chunks.iter().flatten()
    }

    /// Takes every job, in id order.
    pub fn into_iter(self) -> impl Iterator<Item = Ready> {
        self.chunks.into_iter().flatten()
    }
}

/// A chunk holding `job`, with room for a whole chunk so it never grows.
fn new_chunk(job: Ready) -> VecDeque<Ready> {
    let mut chunk = VecDeque::with_capacity(CHUNK);
    chunk.push_back(job);
    chunk
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn ready(id: JobId) -> Ready {
        Ready {
            id,
            created_at: id,
            spec: 0,
            attempt: 0,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(JobId),
        PopFront,
        Remove(JobId),
    }

    fn op() -> impl Strategy<Value = Op> {
        // A narrow id range makes collisions with present ids common, and
        // runs of ascending inserts (pushes) fill and split chunks.
        prop_oneof![
            4 => (0..6000u64).prop_map(Op::Insert),
            1 => Just(Op::PopFront),
            1 => (0..6000u64).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The chunked list behaves as a sorted set of ids.
        #[test]
        fn behaves_as_a_sorted_set(start in 0..3000u64, pushes in 0..5000usize, ops in prop::collection::vec(op(), 0..400)) {
            let mut list = ReadyList::default();
            let mut model = BTreeSet::new();
            for id in start..start + pushes as u64 {
                list.insert(ready(id));
                model.insert(id);
            }
            for op in ops {
                match op {
                    Op::Insert(id) if !model.contains(&id) => {
                        list.insert(ready(id));
                        model.insert(id);
                    }
                    Op::Insert(_) => {}
                    Op::PopFront => prop_assert_eq!(list.pop_front().map(|j| j.id), model.pop_first()),
                    Op::Remove(id) => prop_assert_eq!(list.remove(id).map(|j| j.id), model.take(&id)),
                }
                prop_assert_eq!(list.len(), model.len());
            }
            prop_assert!(list.iter().map(|j| j.id).eq(model.iter().copied()));
            prop_assert_eq!(list.front().map(|j| j.id), model.first().copied());
            for id in [start, start + 1, start + pushes as u64 / 2, 6001] {
                prop_assert_eq!(list.get(id).map(|j| j.id), model.get(&id).copied());
            }
            prop_assert!(list.chunks.iter().all(|c| !c.is_empty() && c.len() <= CHUNK));
        }
    }

    #[test]
    fn a_backlog_fills_its_chunks() {
        let mut list = ReadyList::default();
        for id in 1..=10 * CHUNK as u64 {
            list.insert(ready(id));
        }
        assert_eq!(list.chunks.len(), 10);
        // A retry near the front splits a full chunk instead of growing it.
        list.pop_front();
        list.insert(ready(1));
        list.remove(5);
        list.insert(ready(5));
        assert_eq!(list.chunks.len(), 10);
        list.insert(ready(0));
        assert_eq!(list.chunks.len(), 11);
        assert!(list.chunks.iter().all(|c| c.capacity() <= CHUNK));
    }
}
