//! Job options, interned: a backlog pushed with the same options (the
//! usual case) shares one copy of them, so a job carries a 4-byte
//! [`SpecId`] instead of 24 bytes of options.

use std::collections::HashMap;

use crate::types::JobSpec;

/// An index into the engine's [`Specs`].
pub(crate) type SpecId = u32;

/// Every distinct [`JobSpec`] of the engine's live jobs, counted, so that
/// a spec no job uses any more is forgotten and its slot reused: clients
/// that vary LEASE or RETRIES per job cannot make the table grow for ever.
#[derive(Debug, Default)]
pub(crate) struct Specs {
    /// Spec and the number of live jobs using it; 0 marks a free slot.
    slots: Vec<(JobSpec, u64)>,
    /// Where each spec in use sits.
    index: HashMap<JobSpec, SpecId>,
    /// Free slots, reused before the table grows.
    free: Vec<SpecId>,
    /// The slot interned last; it may since have been freed or reused.
    last: Option<SpecId>,
}

impl Specs {
    /// The id of `spec`, counted `jobs` times more.
    pub fn intern(&mut self, spec: JobSpec, jobs: u64) -> SpecId {
        // Runs of jobs share their options: skip the hash for a repeat.
        if let Some(id) = self.last {
            let slot = &mut self.slots[id as usize];
            if slot.1 > 0 && slot.0 == spec {
                slot.1 += jobs;
                return id;
            }
        }
        let id = match self.index.get(&spec) {
            Some(&id) => id,
            None => {
                let id = match self.free.pop() {
                    Some(id) => {
                        self.slots[id as usize] = (spec, 0);
                        id
                    }
                    None => {
                        self.slots.push((spec, 0));
                        (self.slots.len() - 1) as SpecId
                    }
                };
                self.index.insert(spec, id);
                id
            }
        };
        self.slots[id as usize].1 += jobs;
        self.last = Some(id);
        id
    }

    /// The spec behind `id`.
    pub fn get(&self, id: SpecId) -> JobSpec {
        self.slots[id as usize].0
    }

    /// One job using `id` is gone.
    pub fn release(&mut self, id: SpecId) {
        let slot = &mut self.slots[id as usize];
        debug_assert!(slot.1 > 0, "spec {id} released more often than interned");
        slot.1 -= 1;
        if slot.1 == 0 {
            self.index.remove(&slot.0);
            self.free.push(id);
        }
    }

    /// Distinct specs in use.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_counted_and_reused() {
        let mut specs = Specs::default();
        let a = JobSpec::default();
        let b = JobSpec { lease_ms: 5, ..a };
        let ia = specs.intern(a, 2);
        let ib = specs.intern(b, 1);
        assert_ne!(ia, ib);
        assert_eq!(specs.intern(a, 1), ia);
        assert_eq!((specs.get(ia), specs.get(ib), specs.len()), (a, b, 2));
        specs.release(ib);
        assert_eq!(specs.len(), 1);
        // The freed slot serves the next new spec.
        let c = JobSpec { retries: 9, ..a };
        assert_eq!(specs.intern(c, 1), ib);
        // b's old slot now holds c: b must get a slot of its own.
        let ib2 = specs.intern(b, 1);
        assert_ne!(ib2, ib);
        assert_eq!((specs.get(ib2), specs.get(ib)), (b, c));
        specs.release(ib2);
        for _ in 0..3 {
            specs.release(ia);
        }
        assert_eq!(specs.len(), 1);
        assert_eq!(specs.get(ib), c);
    }
}
