//! [`RunMap`]: an ordered map for keys that mostly arrive in order, the
//! engine's table of leased, delayed and dead jobs and its timers.
//!
//! Every pull adds a job to both and every ack takes it out again, so
//! they are on the hot path. B-trees keep any order, but a backlog of
//! jobs pulled and not yet acked grows them by freshly allocated nodes:
//! inserting into the two took a seventh of a pull's CPU in profiles. Yet
//! these keys mostly come in order. Jobs are pulled in the order they were
//! pushed, so their ids rise; and `now` only moves on, so every lease of
//! one length set later ends later, as does every delay of one length.
//! So the entries are kept in a few sorted runs, each appended at its back
//! and drained from its front; a key that extends no run (more lease
//! lengths in use than runs, a retried job, the clock stepped back) goes
//! to a B-tree.
//!
//! A run is a deque of fixed-size chunks: growing it never copies what it
//! holds, as doubling one big buffer would, holding up the shard. A removed
//! entry is marked where it is and dropped once it reaches the front; a
//! chunk that is mostly marked is compacted, so that a run holds at most
//! about four entries for every one still in it.

use std::collections::{BTreeMap, VecDeque};

/// Entries a chunk holds.
const CHUNK: usize = 2048;

/// Runs kept at most: one for each lease length and delay in use, for a
/// few of them.
const MAX_RUNS: usize = 8;

/// An ordered map of `K` to `V`.
#[derive(Debug)]
pub(crate) struct RunMap<K, V> {
    runs: Vec<Run<K, V>>,
    /// Entries that extended no run.
    others: BTreeMap<K, V>,
    len: usize,
    /// The room of the last chunk emptied, for the next one: a job pulled
    /// and acked at once would otherwise allocate a chunk for itself.
    spare: Vec<Entry<K, V>>,
}

/// Entries in increasing key order, over chunks that are never empty (a
/// run may have none); the first entry of the first chunk is never marked
/// removed.
#[derive(Debug)]
struct Run<K, V> {
    chunks: VecDeque<Chunk<K, V>>,
}

/// `entries[head..]`, in key order; those before `head` are gone.
#[derive(Debug)]
struct Chunk<K, V> {
    entries: Vec<Entry<K, V>>,
    head: usize,
    /// Entries from `head` not marked removed.
    live: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry<K, V> {
    key: K,
    value: V,
    removed: bool,
}

impl<K, V> Default for RunMap<K, V> {
    fn default() -> Self {
        RunMap {
            runs: Vec::new(),
            others: BTreeMap::new(),
            len: 0,
            spare: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V: Copy> RunMap<K, V> {
    /// Entries in the map.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Sets `key` to `value`, replacing what it had.
    pub fn insert(&mut self, key: K, value: V) {
        // A key past every run's end, as a new lease's is, is not looked
        // for in the runs: no binary search on the way in.
        if let Some(old) = self.get_mut(&key) {
            *old = value;
            return;
        }
        self.len += 1;
        // The run this extends most closely: of those ending before it,
        // the one that ends last. Runs so sort themselves by lease length:
        // a 30 s lease does not land behind an hour's delay while its own
        // run is there to take it.
        // An empty run takes any key, when no other does.
        let closest = self
            .runs
            .iter_mut()
            .filter(|run| run.last().is_none_or(|last| last < key))
            .max_by_key(|run| run.last());
        if let Some(run) = closest {
            run.push(key, value, &mut self.spare);
        } else if self.runs.len() < MAX_RUNS {
            let mut run = Run {
                chunks: VecDeque::new(),
            };
            run.push(key, value, &mut self.spare);
            self.runs.push(run);
        } else {
            self.others.insert(key, value);
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        match self.position(key) {
            Some((run, chunk, i)) => Some(&self.runs[run].chunks[chunk].entries[i].value),
            None => self.others.get(key),
        }
    }

    /// The value of `key`, to change it in place.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.position(key) {
            Some((run, chunk, i)) => Some(&mut self.runs[run].chunks[chunk].entries[i].value),
            None => self.others.get_mut(key),
        }
    }

    /// Takes `key` out; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let value = match self.position(key) {
            Some((run, chunk, i)) => {
                // A run left empty stays, for the next key.
                self.runs[run].remove(chunk, i, &mut self.spare)
            }
            None => self.others.remove(key)?,
        };
        self.len -= 1;
        Some(value)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(K, V)> {
        let fronts = self.runs.iter().filter_map(Run::first);
        let other = self.others.first_key_value().map(|(k, v)| (*k, *v));
        fronts.chain(other).min_by_key(|&(key, _)| key)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (K, V)> + '_ {
        let chunks = self.runs.iter().flat_map(|run| run.chunks.iter());
        let entries = chunks.flat_map(|chunk| chunk.entries[chunk.head..].iter());
        let in_runs = entries.filter(|e| !e.removed).map(|e| (e.key, e.value));
        in_runs.chain(self.others.iter().map(|(k, v)| (*k, *v)))
    }

    /// Where `key` is in the runs: run, chunk, entry.
    fn position(&self, key: &K) -> Option<(usize, usize, usize)> {
        self.runs
            .iter()
            .enumerate()
            .find_map(|(r, run)| run.find(key).map(|(chunk, i)| (r, chunk, i)))
    }
}

impl<K: Ord + Copy, V: Copy> Run<K, V> {
    fn first(&self) -> Option<(K, V)> {
        let entry = self.chunks.front()?.first();
        Some((entry.key, entry.value))
    }

    fn last(&self) -> Option<K> {
        Some(self.chunks.back()?.last())
    }

    /// Where `key` is, unless it is marked removed: chunk, entry.
    fn find(&self, key: &K) -> Option<(usize, usize)> {
        let front = self.chunks.front()?;
        let first = front.first().key;
        if *key == first {
            // The oldest lease, acked or run out: the usual case.
            return Some((0, front.head));
        }
        if *key < first || *key > self.last()? {
            return None;
        }
        let chunk = self.chunks.partition_point(|chunk| chunk.last() < *key);
        let Chunk { entries, head, .. } = &self.chunks[chunk];
        let i = head + entries[*head..].partition_point(|e| e.key < *key);
        (entries[i].key == *key && !entries[i].removed).then_some((chunk, i))
    }

    /// Appends an entry whose key comes after every key in the run; a new
    /// chunk takes the room in `spare`, if any.
    fn push(&mut self, key: K, value: V, spare: &mut Vec<Entry<K, V>>) {
        if self
            .chunks
            .back()
            .is_none_or(|chunk| chunk.entries.len() >= CHUNK)
        {
            let entries = match spare.capacity() {
                CHUNK => std::mem::take(spare),
                _ => Vec::with_capacity(CHUNK),
            };
            self.chunks.push_back(Chunk {
                entries,
                head: 0,
                live: 0,
            });
        }
        let chunk = self.chunks.back_mut().expect("just ensured");
        chunk.entries.push(Entry {
            key,
            value,
            removed: false,
        });
        chunk.live += 1;
    }

    /// Marks entry `i` of chunk `at` removed and tidies the chunk; returns
    /// its value. The room of a chunk emptied goes to `spare`.
    fn remove(&mut self, at: usize, i: usize, spare: &mut Vec<Entry<K, V>>) -> V {
        let chunk = &mut self.chunks[at];
        let entry = &mut chunk.entries[i];
        entry.removed = true;
        let value = entry.value;
        chunk.live -= 1;
        if chunk.live == 0 {
            let emptied = self.chunks.remove(at).expect("chunk exists");
            keep_spare(spare, emptied.entries);
        } else if chunk.live * 4 <= chunk.entries.len() - chunk.head {
            // Mostly marked: keep only what is left, and give back the room.
            chunk.entries.drain(..chunk.head);
            chunk.entries.retain(|e| !e.removed);
            chunk.entries.shrink_to_fit();
            chunk.head = 0;
        }
        self.drop_removed_front(spare);
        value
    }

    /// Drops marked entries from the front, so that the first is not.
    fn drop_removed_front(&mut self, spare: &mut Vec<Entry<K, V>>) {
        while let Some(chunk) = self.chunks.front_mut() {
            while chunk.head < chunk.entries.len() && chunk.entries[chunk.head].removed {
                chunk.head += 1;
            }
            if chunk.head < chunk.entries.len() {
                return;
            }
            let emptied = self.chunks.pop_front().expect("chunk exists");
            keep_spare(spare, emptied.entries);
        }
    }
}

/// Keeps the room of an emptied chunk for the next, if it is a whole
/// chunk's (a compacted chunk's is smaller).
fn keep_spare<K, V>(spare: &mut Vec<Entry<K, V>>, mut entries: Vec<Entry<K, V>>) {
    if entries.capacity() == CHUNK {
        entries.clear();
        *spare = entries;
    }
}

impl<K: Copy, V> Chunk<K, V> {
    fn first(&self) -> &Entry<K, V> {
        &self.entries[self.head]
    }

    fn last(&self) -> K {
        self.entries.last().expect("a chunk is never empty").key
    }
}

impl<K: Ord + Copy, V: Copy> std::ops::Index<&K> for RunMap<K, V> {
    type Output = V;

    fn index(&self, key: &K) -> &V {
        self.get(key).expect("key in the map")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Timers = RunMap<(u64, u64), u32>;

    /// Entries the runs hold, marked removed or not.
    fn held(map: &Timers) -> usize {
        let chunks = map.runs.iter().flat_map(|run| run.chunks.iter());
        chunks.map(|chunk| chunk.entries.len() - chunk.head).sum()
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A deadline `span` after the clock, for a new job.
        Set { span: u64 },
        /// Sets again the `n`th key held (modulo how many are).
        Reset { n: usize, value: u32 },
        /// Removes the `n`th key held.
        Remove { n: usize },
        /// The clock moves on by `by` (back, when negative); due keys are
        /// taken earliest first, as the engine's timer does.
        Tick { by: i64 },
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            // Few lengths, as leases and delays are, and now and then any.
            4 => prop_oneof![Just(0), Just(5), Just(30), Just(1000)].prop_map(|span| Op::Set { span }),
            1 => (0..2000u64).prop_map(|span| Op::Set { span }),
            1 => (any::<usize>(), any::<u32>()).prop_map(|(n, value)| Op::Reset { n, value }),
            3 => any::<usize>().prop_map(|n| Op::Remove { n }),
            1 => (-20..200i64).prop_map(|by| Op::Tick { by }),
        ]
    }

    fn nth(model: &BTreeMap<(u64, u64), u32>, n: usize) -> Option<(u64, u64)> {
        (!model.is_empty()).then(|| *model.keys().nth(n % model.len()).expect("in range"))
    }

    proptest! {
        /// Against a B-tree map of the same entries: the same first entry
        /// at every step, the same values, the same answer to every
        /// remove, the same entries at the end.
        #[test]
        fn keeps_what_a_btree_map_keeps(ops in proptest::collection::vec(any_op(), 1..600)) {
            let mut map = Timers::default();
            let mut model = BTreeMap::new();
            let (mut now, mut next_id) = (1_000u64, 1u64);
            for op in ops {
                match op {
                    Op::Set { span } => {
                        let key = (now + span, next_id);
                        map.insert(key, next_id as u32);
                        model.insert(key, next_id as u32);
                        next_id += 1;
                    }
                    Op::Reset { n, value } => {
                        if let Some(key) = nth(&model, n) {
                            map.insert(key, value);
                            model.insert(key, value);
                        }
                    }
                    Op::Remove { n } => {
                        let key = nth(&model, n).unwrap_or((now, next_id));
                        prop_assert_eq!(map.remove(&key), model.remove(&key));
                        // Removing twice finds nothing.
                        prop_assert_eq!(map.remove(&key), None);
                        prop_assert_eq!(map.get(&key), None);
                    }
                    Op::Tick { by } => {
                        now = now.saturating_add_signed(by);
                        while let Some(first) = map.first().filter(|&((at, _), _)| at <= now) {
                            prop_assert_eq!(Some(first), model.pop_first());
                            prop_assert_eq!(map.remove(&first.0), Some(first.1));
                        }
                    }
                }
                prop_assert_eq!(map.first(), model.first_key_value().map(|(k, v)| (*k, *v)));
                prop_assert_eq!(map.len(), model.len());
            }
            for (key, value) in &model {
                prop_assert_eq!(map.get(key), Some(value));
            }
            let mut all: Vec<_> = map.iter().collect();
            all.sort_unstable();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn keys_of_one_lease_length_stay_in_one_run() {
        let mut map = Timers::default();
        for now in 0..3 * CHUNK as u64 {
            map.insert((now + 30_000, now), 0);
            map.insert((now + 3_600_000, now + 1_000_000), 0);
        }
        assert_eq!(map.runs.len(), 2);
        assert!(map.others.is_empty());
        assert_eq!(map.first(), Some(((30_000, 0), 0)));
    }

    #[test]
    fn keys_that_extend_no_run_go_to_the_btree() {
        let mut map = Timers::default();
        let count = 2 * MAX_RUNS as u64;
        for id in 0..count {
            // Each before the last: none extends a run.
            map.insert((1_000 - id, id), 0);
        }
        assert_eq!(map.runs.len(), MAX_RUNS);
        assert_eq!(map.others.len(), MAX_RUNS);
        assert_eq!(map.first(), Some(((1_000 - (count - 1), count - 1), 0)));
    }

    #[test]
    fn removed_entries_give_their_room_back() {
        let mut map = Timers::default();
        let count = 8 * CHUNK as u64;
        for id in 0..count {
            map.insert((id, id), 0);
        }
        // The first stays (a straggler holding the front); of the rest,
        // all but one in a hundred are removed.
        for id in (1..count).filter(|id| id % 100 != 0) {
            assert_eq!(map.remove(&(id, id)), Some(0));
        }
        let left = 1 + (1..count).filter(|id| id % 100 == 0).count();
        assert_eq!(map.iter().count(), left);
        assert!(held(&map) <= 4 * left, "{} entries held for {left}", held(&map));
        // Chunks with nothing left are dropped whole: the straggler's
        // chunk is all that is held.
        for id in (1..count).filter(|id| id % 100 == 0) {
            assert_eq!(map.remove(&(id, id)), Some(0));
        }
        assert!(held(&map) <= 4, "{} entries held for 1", held(&map));
        assert_eq!(map.runs[0].chunks.len(), 1);
        assert_eq!(map.first(), Some(((0, 0), 0)));
    }

    #[test]
    fn a_key_taken_out_at_once_leaves_its_chunk_for_the_next() {
        let mut map = Timers::default();
        map.insert((1, 1), 0);
        let room = map.runs[0].chunks[0].entries.as_ptr();
        assert_eq!(map.remove(&(1, 1)), Some(0));
        assert!(map.runs[0].chunks.is_empty());
        assert_eq!(map.spare.capacity(), CHUNK);
        map.insert((2, 2), 0);
        assert_eq!(
            map.runs[0].chunks[0].entries.as_ptr(),
            room,
            "the same room, not a new chunk"
        );
        assert_eq!(map.spare.capacity(), 0);
    }
}
