//! Blocked pulls: QPULL/QMPULL with BLOCK when nothing is ready.
//!
//! A blocked puller registers a token with the engine of every queue it
//! waits on (in the same locked step that found the queue empty, so no
//! push slips between). The operation that makes a job ready hands it to
//! the first registered token, already leased, and the shard passes it on
//! through [`Waiters::hand`] to the waiting connection. The connection
//! waits on a oneshot channel: no polling, no CPU while it waits.
//!
//! A puller waiting on queues of several shards can be served by two of
//! them at once; the second hand-off finds the token gone and the shard
//! puts those jobs back (without counting an attempt). The same happens to
//! a hand-off that races with a timeout or a disconnect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use quern_engine::{Delivery, Pulled, WaiterToken};
use tokio::sync::oneshot;

use crate::shards::Shards;

/// The connections waiting for a hand-off, by token.
#[derive(Debug, Default)]
pub struct Waiters {
    next: AtomicU64,
    slots: DashMap<WaiterToken, oneshot::Sender<Delivery>>,
}

impl Waiters {
    /// Passes jobs to their puller; gives them back if it is gone.
    pub fn hand(&self, delivery: Delivery) -> Result<(), Delivery> {
        match self.slots.remove(&delivery.token) {
            Some((_, slot)) => slot.send(delivery),
            None => Err(delivery),
        }
    }

    /// Connections blocked right now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no connection is blocked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What a blocked pull asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// Queues to serve from, in order.
    pub queues: Vec<Bytes>,
    /// Jobs to take at most.
    pub count: u32,
    /// Lease override.
    pub lease_ms: Option<u32>,
    /// How long to wait; `None` waits until served.
    pub timeout: Option<Duration>,
}

/// A pull registered with the engines; unregisters itself when dropped,
/// putting back any jobs handed to it that it did not take.
#[derive(Debug)]
pub struct BlockedPull {
    shards: Arc<Shards>,
    waiters: Arc<Waiters>,
    token: WaiterToken,
    queues: Vec<Bytes>,
    receiver: Option<oneshot::Receiver<Delivery>>,
}

/// The result of registering: served at once, or waiting.
#[derive(Debug)]
pub enum Registered {
    /// A queue had jobs after all.
    Served(Bytes, Vec<Pulled>),
    /// Wait on this.
    Waiting(BlockedPull),
}

impl BlockedPull {
    /// Registers `request` with every queue's engine, each step looking
    /// for a ready job first.
    pub fn register(shards: &Arc<Shards>, waiters: &Arc<Waiters>, request: &PullRequest) -> Registered {
        let token = waiters.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        waiters.slots.insert(token, sender);
        let mut pull = BlockedPull {
            shards: shards.clone(),
            waiters: waiters.clone(),
            token,
            queues: Vec::with_capacity(request.queues.len()),
            receiver: Some(receiver),
        };
        for queue in &request.queues {
            let jobs = shards.apply_unawaited(queue, |engine, now| {
                engine.pull_or_block(queue, request.count, request.lease_ms, token, now)
            });
            pull.queues.push(queue.clone());
            if !jobs.is_empty() {
                return Registered::Served(queue.clone(), jobs);
            }
        }
        Registered::Waiting(pull)
    }

    /// Waits for a hand-off; `None` when the channel closed (never, while
    /// the pull is registered).
    pub async fn served(&mut self) -> Option<Delivery> {
        let receiver = self.receiver.as_mut()?;
        let delivery = receiver.await.ok();
        self.receiver = None;
        delivery
    }

    /// Stops waiting; returns a hand-off that arrived meanwhile.
    pub fn cancel(mut self) -> Option<Delivery> {
        self.unregister();
        self.receiver.take().and_then(|mut r| r.try_recv().ok())
    }

    fn unregister(&mut self) {
        self.waiters.slots.remove(&self.token);
        for queue in &self.queues {
            self.shards
                .apply_unawaited(queue, |engine, _| engine.unblock(self.token));
        }
        self.queues.clear();
    }
}

impl Drop for BlockedPull {
    fn drop(&mut self) {
        self.unregister();
        // Jobs handed over but never taken go back, unattempted.
        if let Some(delivery) = self.receiver.take().and_then(|mut r| r.try_recv().ok()) {
            self.shards.apply_unawaited(&delivery.queue, |engine, now| {
                engine.release(&delivery.queue, &delivery.jobs, now)
            });
        }
    }
}
