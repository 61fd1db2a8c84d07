//! The engine shards: queues spread by name over several engines, each
//! behind its own lock, so queues on different shards never contend.
//!
//! Every operation goes through [`Shards::apply`], which holds the shard's
//! lock while it runs the engine, hands jobs to blocked pullers, and
//! submits the changes to the store. Submitting under the lock keeps one
//! shard's changes in the order the engine made them.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quern_engine::{Change, Engine, Ids, JobRecord, Millis, QueueRecord};
use quern_store::{Store, Ticket};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::blocking::Waiters;

/// Jobs a shard's timer moves (delayed jobs come due, leases run out)
/// before it lets go of the shard's lock and yields: some milliseconds,
/// moving a job and handing its change to the store costing about 1.5 µs.
const TIMER_SLICE: usize = 10_000;

/// Wall-clock ms since the Unix epoch: the engine's `now`.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// One engine and what its timer needs.
#[derive(Debug)]
struct Shard {
    state: Mutex<ShardState>,
    /// Wakes the shard's timer task when a deadline earlier than the one
    /// it sleeps towards appears.
    wake: Notify,
    /// The deadline the timer task sleeps towards (`u64::MAX`: none).
    armed: AtomicU64,
}

#[derive(Debug)]
struct ShardState {
    engine: Engine,
    /// Reused buffer for the changes of one operation.
    scratch: Vec<Change>,
}

/// Every shard, the store their changes go to, and the blocked pullers
/// they serve.
#[derive(Debug)]
pub struct Shards {
    shards: Box<[Shard]>,
    ids: Arc<Ids>,
    store: Arc<Store>,
    waiters: Arc<Waiters>,
}

impl Shards {
    /// `count` empty shards.
    pub fn new(count: usize, ids: Arc<Ids>, store: Arc<Store>, waiters: Arc<Waiters>) -> Shards {
        let shards = (0..count.max(1))
            .map(|_| Shard {
                state: Mutex::new(ShardState {
                    engine: Engine::new(ids.clone()),
                    scratch: Vec::new(),
                }),
                wake: Notify::new(),
                armed: AtomicU64::new(u64::MAX),
            })
            .collect();
        Shards {
            shards,
            ids,
            store,
            waiters,
        }
    }

    /// The shard that holds `queue`. A fast fixed hash: it runs on every
    /// command, and a client that aims its queues at one shard only slows
    /// itself.
    pub fn index(&self, queue: &[u8]) -> usize {
        let hash = foldhash::fast::FixedState::default().hash_one(queue);
        (hash % self.shards.len() as u64) as usize
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, ShardState> {
        // A panic inside the engine is a bug; the state it left is still
        // the best there is, so keep serving rather than poison every queue.
        self.shards[index].state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `op` on the engine holding `queue`, then serves blocked pullers
    /// and submits the changes. Returns `op`'s result and the store ticket
    /// that makes it durable.
    pub fn apply<R>(&self, queue: &[u8], op: impl FnOnce(&mut Engine, Millis) -> R) -> (R, Ticket) {
        self.apply_as(queue, op, true)
    }

    /// As [`Shards::apply`], for an operation whose caller does not wait
    /// for its commit (a pull: SPEC §2 lets its lease be committed after
    /// the reply). Its changes may wait in the store's open batch for a
    /// while, see [`Store::submit_unawaited`].
    pub fn apply_unawaited<R>(&self, queue: &[u8], op: impl FnOnce(&mut Engine, Millis) -> R) -> R {
        self.apply_as(queue, op, false).0
    }

    fn apply_as<R>(
        &self,
        queue: &[u8],
        op: impl FnOnce(&mut Engine, Millis) -> R,
        awaited: bool,
    ) -> (R, Ticket) {
        let index = self.index(queue);
        let mut state = self.lock(index);
        let now = now_ms();
        let result = op(&mut state.engine, now);
        let ticket = self.settle(index, &mut state, now, awaited);
        (result, ticket)
    }

    /// Reads the engine holding `queue`; no change is possible.
    pub fn read<R>(&self, queue: &[u8], op: impl FnOnce(&Engine, Millis) -> R) -> R {
        let state = self.lock(self.index(queue));
        op(&state.engine, now_ms())
    }

    /// Runs `op` on every shard in turn (to gather, or to restore).
    pub fn each(&self, mut op: impl FnMut(&mut Engine)) {
        for index in 0..self.shards.len() {
            op(&mut self.lock(index).engine);
        }
    }

    /// Restores a queue's record into shard `index`. Used before serving.
    pub fn restore_queue(&self, index: usize, queue: QueueRecord) {
        self.lock(index).engine.restore_queue(queue);
    }

    /// Restores jobs, in id order, into shard `index`. Used before serving.
    pub fn restore_jobs(&self, index: usize, jobs: impl Iterator<Item = JobRecord>) {
        let engine = &mut self.lock(index).engine;
        for job in jobs {
            engine.restore_job(job);
        }
    }

    /// Shards there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// The shared id counters.
    pub fn ids(&self) -> &Arc<Ids> {
        &self.ids
    }

    /// Hands jobs to blocked pullers, submits the changes (for a caller
    /// that waits for their commit when `awaited`), and wakes the shard's
    /// timer when a deadline earlier than its own appeared.
    fn settle(&self, index: usize, state: &mut ShardState, now: Millis, awaited: bool) -> Ticket {
        let ShardState { engine, scratch } = state;
        // Handing a job to a puller that is already gone puts it back,
        // which may serve the next puller: repeat until none is left.
        loop {
            let deliveries = engine.take_deliveries();
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries {
                if let Err(undelivered) = self.waiters.hand(delivery) {
                    engine.release(&undelivered.queue, &undelivered.jobs, now);
                }
            }
        }
        engine.take_changes(scratch);
        let ticket = if awaited {
            self.store.submit(scratch)
        } else {
            self.store.submit_unawaited(scratch)
        };
        let shard = &self.shards[index];
        if let Some(next) = engine.next_deadline() {
            if next < shard.armed.load(Ordering::Acquire) {
                shard.armed.store(next, Ordering::Release);
                shard.wake.notify_one();
            }
        }
        ticket
    }

    /// Runs the timers of every shard until `stop`: each shard's task
    /// sleeps until its earliest deadline (or until woken by an earlier
    /// one), then moves what is due.
    pub fn spawn_timers(self: &Arc<Self>, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.shards.len())
            .map(|index| {
                let shards = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move { shards.run_timer(index, stop).await })
            })
            .collect()
    }

    async fn run_timer(&self, index: usize, stop: CancellationToken) {
        let shard = &self.shards[index];
        loop {
            let next = self.lock(index).engine.next_deadline();
            shard.armed.store(next.unwrap_or(u64::MAX), Ordering::Release);
            let sleep = match next {
                Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = shard.wake.notified() => continue,
                _ = tokio::time::sleep(sleep) => {}
            }
            // A slice at a time, the lock let go between slices, so that
            // a mass expiry does not hold up the shard's commands.
            loop {
                let more = {
                    let mut state = self.lock(index);
                    let now = now_ms();
                    let more = state.engine.tick_at_most(now, TIMER_SLICE);
                    // No one waits for what the timer moved: a restart
                    // finds the same deadlines passed and moves it again.
                    self.settle(index, &mut state, now, false);
                    more
                };
                if !more {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}
