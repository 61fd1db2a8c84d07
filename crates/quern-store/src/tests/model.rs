//! The store against its reference model, the engine itself: whatever a
//! random sequence of operations leaves in the engine, committing its
//! changes and loading them back after a restart gives the same engine.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use quern_engine::{
    Change, Engine, FailMode, FailOptions, Ids, JobId, JobRecord, JobSpec, Millis, PushOptions, QueueId,
    QueueRecord,
};

use super::{config, load_engine, reopen};
use crate::{Fsync, Store};

const QUEUES: [&[u8]; 3] = [b"alpha", b"beta", b"gamma"];

/// One engine operation, with its arguments still abstract: `pick` chooses
/// among the ids pushed so far, and a `queue` of `None` means that job's own
/// queue, so that most operations hit a real job.
#[derive(Clone, Debug)]
enum Op {
    Push {
        queue: usize,
        priority: i64,
        delay: Option<u64>,
        retries: u32,
        backoff_ms: u32,
        lease_ms: u32,
    },
    PushMany {
        queue: usize,
        count: usize,
    },
    Pull {
        queue: usize,
        count: u32,
        lease_ms: Option<u32>,
    },
    PullOrBlock {
        queue: usize,
        count: u32,
        token: u64,
    },
    Unblock {
        token: u64,
    },
    Ack {
        queue: Option<usize>,
        pick: Index,
    },
    Fail {
        queue: Option<usize>,
        pick: Index,
        mode: FailMode,
        error: bool,
        retry_in: Option<u64>,
    },
    Touch {
        queue: Option<usize>,
        pick: Index,
        lease_ms: Option<u32>,
    },
    Tick {
        step: u64,
    },
    Cancel {
        queue: Option<usize>,
        pick: Index,
    },
    Pause {
        queue: usize,
    },
    Resume {
        queue: usize,
    },
    Requeue {
        queue: usize,
        pick: Option<Index>,
    },
    Purge {
        queue: usize,
        pick: Option<Index>,
    },
    DeleteQueue {
        queue: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let queue = 0..QUEUES.len();
    // Mostly the picked job's own queue; sometimes another, to be refused.
    let job_queue = prop::option::weighted(0.2, queue.clone());
    let mode = prop_oneof![
        Just(FailMode::Retry),
        Just(FailMode::Fatal),
        Just(FailMode::Silent)
    ];
    prop_oneof![
        6 => (queue.clone(), -2i64..3, prop::option::weighted(0.3, 1u64..3_000), 0u32..3, 0u32..500, 1u32..3_000)
            .prop_map(|(queue, priority, delay, retries, backoff_ms, lease_ms)| Op::Push {
                queue, priority, delay, retries, backoff_ms, lease_ms
            }),
        1 => (queue.clone(), 1usize..4).prop_map(|(queue, count)| Op::PushMany { queue, count }),
        5 => (queue.clone(), 1u32..4, prop::option::of(1u32..3_000))
            .prop_map(|(queue, count, lease_ms)| Op::Pull { queue, count, lease_ms }),
        1 => (queue.clone(), 1u32..3, 0u64..4)
            .prop_map(|(queue, count, token)| Op::PullOrBlock { queue, count, token }),
        1 => (0u64..4).prop_map(|token| Op::Unblock { token }),
        3 => (job_queue.clone(), any::<Index>()).prop_map(|(queue, pick)| Op::Ack { queue, pick }),
        3 => (job_queue.clone(), any::<Index>(), mode, any::<bool>(), prop::option::of(0u64..2_000))
            .prop_map(|(queue, pick, mode, error, retry_in)| Op::Fail { queue, pick, mode, error, retry_in }),
        1 => (job_queue.clone(), any::<Index>(), prop::option::of(1u32..3_000))
            .prop_map(|(queue, pick, lease_ms)| Op::Touch { queue, pick, lease_ms }),
        3 => (0u64..4_000).prop_map(|step| Op::Tick { step }),
        1 => (job_queue, any::<Index>()).prop_map(|(queue, pick)| Op::Cancel { queue, pick }),
        1 => queue.clone().prop_map(|queue| Op::Pause { queue }),
        1 => queue.clone().prop_map(|queue| Op::Resume { queue }),
        1 => (queue.clone(), prop::option::of(any::<Index>()))
            .prop_map(|(queue, pick)| Op::Requeue { queue, pick }),
        1 => (queue.clone(), prop::option::of(any::<Index>())).prop_map(|(queue, pick)| Op::Purge { queue, pick }),
        1 => queue.prop_map(|queue| Op::DeleteQueue { queue }),
    ]
}

/// What running the operations produced, indexed by how many have run.
struct Run {
    /// The changes of each operation: one submission each.
    submissions: Vec<Vec<Change>>,
    /// The engine's records after `k` operations (`[0]` is empty).
    snapshots: Vec<(Vec<QueueRecord>, Vec<JobRecord>)>,
    /// The id counters after `k` operations.
    counters: Vec<(JobId, QueueId)>,
    /// Every payload pushed.
    payloads: HashMap<JobId, Bytes>,
}

/// Runs `ops` on a fresh engine; `bulk` deletes every deleted queue's
/// jobs in bulk, however few.
fn run(ops: &[Op], bulk: bool) -> Run {
    let ids = Arc::new(Ids::default());
    let mut engine = Engine::new(Arc::clone(&ids));
    if bulk {
        engine.set_bulk_delete_above(0);
    }
    let mut now: Millis = 1_700_000_000_000;
    let mut pushed: Vec<JobId> = Vec::new();
    let mut payloads = HashMap::new();
    let mut r = Run {
        submissions: Vec::new(),
        snapshots: vec![engine.snapshot()],
        counters: vec![(ids.peek_job(), ids.peek_queue())],
        payloads: HashMap::new(),
    };
    // The queue each id was pushed to.
    let mut home: HashMap<JobId, usize> = HashMap::new();
    let pick = |pushed: &[JobId], index: &Index| if pushed.is_empty() { 1 } else { *index.get(pushed) };
    let target = |home: &HashMap<JobId, usize>, queue: &Option<usize>, id: JobId| {
        QUEUES[queue.or_else(|| home.get(&id).copied()).unwrap_or(0)]
    };
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Push {
                queue,
                priority,
                delay,
                retries,
                backoff_ms,
                lease_ms,
            } => {
                let opts = PushOptions {
                    spec: JobSpec {
                        priority: *priority,
                        retries: *retries,
                        backoff_ms: *backoff_ms,
                        lease_ms: *lease_ms,
                    },
                    ready_at: delay.map(|d| now + d),
                };
                let payload = Bytes::from(format!("payload of op {n}"));
                let id = engine.push(QUEUES[*queue], payload.clone(), &opts, now).unwrap();
                payloads.insert(id, payload);
                pushed.push(id);
                home.insert(id, *queue);
            }
            Op::PushMany { queue, count } => {
                let list: Vec<Bytes> = (0..*count).map(|i| Bytes::from(format!("op {n} #{i}"))).collect();
                let first = engine
                    .push_many(QUEUES[*queue], list.clone(), &PushOptions::default(), now)
                    .unwrap();
                for (id, payload) in (first..).zip(list) {
                    payloads.insert(id, payload);
                    pushed.push(id);
                    home.insert(id, *queue);
                }
            }
            Op::Pull {
                queue,
                count,
                lease_ms,
            } => {
                engine.pull(QUEUES[*queue], *count, *lease_ms, now);
            }
            Op::PullOrBlock { queue, count, token } => {
                engine.pull_or_block(QUEUES[*queue], *count, None, *token, now);
            }
            Op::Unblock { token } => engine.unblock(*token),
            Op::Ack { queue, pick: index } => {
                let id = pick(&pushed, index);
                let _ = engine.ack(target(&home, queue, id), &[id], None);
            }
            Op::Fail {
                queue,
                pick: index,
                mode,
                error,
                retry_in,
            } => {
                let opts = FailOptions {
                    error: error.then(|| Bytes::from(format!("error of op {n}"))),
                    retry_in: *retry_in,
                    mode: *mode,
                    attempt: None,
                };
                let id = pick(&pushed, index);
                let _ = engine.fail(target(&home, queue, id), id, &opts, now);
            }
            Op::Touch {
                queue,
                pick: index,
                lease_ms,
            } => {
                let id = pick(&pushed, index);
                let _ = engine.touch(target(&home, queue, id), id, *lease_ms, None, now);
            }
            Op::Tick { step } => {
                now += step;
                engine.tick(now);
            }
            Op::Cancel { queue, pick: index } => {
                let id = pick(&pushed, index);
                engine.cancel(target(&home, queue, id), &[id]);
            }
            Op::Pause { queue } => engine.pause(QUEUES[*queue]),
            Op::Resume { queue } => engine.resume(QUEUES[*queue], now),
            Op::Requeue { queue, pick: index } => {
                let chosen = index.as_ref().map(|i| vec![pick(&pushed, i)]);
                engine.requeue_dead(QUEUES[*queue], chosen.as_deref(), now);
            }
            Op::Purge { queue, pick: index } => {
                let chosen = index.as_ref().map(|i| vec![pick(&pushed, i)]);
                engine.purge_dead(QUEUES[*queue], chosen.as_deref());
            }
            Op::DeleteQueue { queue } => {
                engine.delete_queue(QUEUES[*queue]);
            }
        }
        // Deliveries to blocked pullers are the server's business; their
        // changes are already in the change list.
        engine.take_deliveries();
        let mut changes = Vec::new();
        engine.take_changes(&mut changes);
        r.submissions.push(changes);
        r.snapshots.push(engine.snapshot());
        r.counters.push((ids.peek_job(), ids.peek_queue()));
    }
    r.payloads = payloads;
    r
}

/// The last error of each job after `submissions`, as the changes say.
fn errors_after(submissions: &[Vec<Change>]) -> HashMap<JobId, Bytes> {
    let mut errors = HashMap::new();
    for change in submissions.iter().flatten() {
        match change {
            Change::SetError { id, error } => {
                errors.insert(*id, error.clone());
            }
            Change::DeleteJob(id) => {
                errors.remove(id);
            }
            _ => {}
        }
    }
    errors
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_prefix_of_commits_restores_the_engine(
        ops in prop::collection::vec(op(), 1..60),
        cut in any::<Index>(),
        bulk in any::<bool>(),
    ) {
        let r = run(&ops, bulk);
        let k = cut.index(r.submissions.len() + 1);

        let dir = tempfile::tempdir().unwrap();
        // Durability is not what is tested here: skip the per-commit sync.
        let store = Store::open(&config(dir.path(), Fsync::No)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for submission in &r.submissions[..k] {
            let mut changes = submission.clone();
            let ticket = store.submit(&mut changes);
            runtime.block_on(store.committed(ticket)).unwrap();
        }
        prop_assert_eq!(store.stats().pending, 0);
        let store = reopen(store, Fsync::No);
        let (engine, loaded) = load_engine(&store);

        prop_assert_eq!(engine.snapshot(), r.snapshots[k].clone());
        prop_assert_eq!((loaded.next_job, loaded.next_queue), r.counters[k]);

        // Every id handed out so far: live jobs keep their payload and last
        // error, deleted ones leave nothing behind.
        let all: Vec<JobId> = (1..loaded.next_job).collect();
        let live: HashSet<JobId> = r.snapshots[k].1.iter().map(|j| j.id).collect();
        let errors = errors_after(&r.submissions[..k]);
        let expected: Vec<Option<Bytes>> =
            all.iter().map(|id| live.contains(id).then(|| r.payloads[id].clone())).collect();
        prop_assert_eq!(store.payloads(&all).unwrap(), expected);
        let expected: Vec<Option<Bytes>> =
            all.iter().map(|id| errors.get(id).filter(|_| live.contains(id)).cloned()).collect();
        prop_assert_eq!(store.last_errors(&all).unwrap(), expected);
    }
}
