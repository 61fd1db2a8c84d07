//! The engine against a reference model: random command sequences with
//! random clock steps, every reply and the whole state compared after each
//! step. The model is deliberately naive (one list of jobs, linear scans)
//! so that it is obviously right.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use quern_engine::{
    retry_delay, Change, Counters, Engine, EngineError, FailMode, FailOptions, Ids, JobSpec, Pulled,
    PushOptions, State, BULK_DELETE_ABOVE,
};

const QUEUES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Op {
    Push {
        q: usize,
        priority: i64,
        delay: Option<u64>,
        retries: u32,
        backoff: u32,
        lease: u32,
    },
    Pull {
        q: usize,
        count: u32,
        lease: Option<u32>,
    },
    Ack {
        q: usize,
        pick: usize,
        attempt: Option<u32>,
    },
    Fail {
        q: usize,
        pick: usize,
        mode: u8,
        retry_in: Option<u64>,
        attempt: Option<u32>,
    },
    Touch {
        q: usize,
        pick: usize,
        lease: Option<u32>,
    },
    Cancel {
        q: usize,
        pick: usize,
    },
    Pause {
        q: usize,
    },
    Resume {
        q: usize,
    },
    Requeue {
        q: usize,
        all: bool,
        pick: usize,
    },
    Purge {
        q: usize,
        all: bool,
        pick: usize,
    },
    Delete {
        q: usize,
    },
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let q = 0..QUEUES.len();
    prop_oneof![
        4 => (q.clone(), -2i64..3, prop::option::of(0u64..300), 0u32..3, 0u32..200, 1u32..400)
            .prop_map(|(q, priority, delay, retries, backoff, lease)| Op::Push { q, priority, delay, retries, backoff, lease }),
        3 => (q.clone(), 1u32..4, prop::option::of(1u32..300)).prop_map(|(q, count, lease)| Op::Pull { q, count, lease }),
        2 => (q.clone(), any::<usize>(), prop::option::of(0u32..4)).prop_map(|(q, pick, attempt)| Op::Ack { q, pick, attempt }),
        2 => (q.clone(), any::<usize>(), 0u8..3, prop::option::of(0u64..200), prop::option::of(0u32..4))
            .prop_map(|(q, pick, mode, retry_in, attempt)| Op::Fail { q, pick, mode, retry_in, attempt }),
        1 => (q.clone(), any::<usize>(), prop::option::of(1u32..300)).prop_map(|(q, pick, lease)| Op::Touch { q, pick, lease }),
        1 => (q.clone(), any::<usize>()).prop_map(|(q, pick)| Op::Cancel { q, pick }),
        1 => q.clone().prop_map(|q| Op::Pause { q }),
        1 => q.clone().prop_map(|q| Op::Resume { q }),
        1 => (q.clone(), any::<bool>(), any::<usize>()).prop_map(|(q, all, pick)| Op::Requeue { q, all, pick }),
        1 => (q.clone(), any::<bool>(), any::<usize>()).prop_map(|(q, all, pick)| Op::Purge { q, all, pick }),
        1 => q.clone().prop_map(|q| Op::Delete { q }),
        3 => (0u64..250).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct MJob {
    queue: &'static str,
    state: State,
    spec: JobSpec,
    attempt: u32,
    created_at: u64,
    deadline: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct MQueue {
    paused: bool,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Model {
    jobs: BTreeMap<u64, MJob>,
    queues: BTreeMap<&'static str, MQueue>,
    next_id: u64,
}

impl Model {
    fn ids_in(&self, q: &str) -> Vec<u64> {
        self.jobs
            .iter()
            .filter(|(_, j)| j.queue == q)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Picks an id of queue `q` (or a made-up one) from a random index.
    fn pick(&self, q: &str, pick: usize) -> u64 {
        let ids = self.ids_in(q);
        if ids.is_empty() || pick.is_multiple_of(5) {
            return 1000 + pick as u64 % 7;
        }
        ids[pick % ids.len()]
    }

    fn counters(&mut self, q: &'static str) -> &mut Counters {
        &mut self.queues.get_mut(q).expect("queue").counters
    }

    fn push(&mut self, q: &'static str, spec: JobSpec, delay: Option<u64>, now: u64) -> u64 {
        self.queues.entry(q).or_default().counters.pushed += 1;
        let id = self.next_id;
        self.next_id += 1;
        let (state, deadline) = match delay {
            Some(d) if d > 0 => (State::Delayed, now + d),
            _ => (State::Waiting, 0),
        };
        self.jobs.insert(
            id,
            MJob {
                queue: q,
                state,
                spec,
                attempt: 0,
                created_at: now,
                deadline,
            },
        );
        id
    }

    fn pull(&mut self, q: &'static str, count: u32, lease: Option<u32>, now: u64) -> Vec<Pulled> {
        if self.queues.get(q).is_none_or(|m| m.paused) {
            return Vec::new();
        }
        let mut ready: Vec<(i64, u64)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.queue == q && j.state == State::Waiting)
            .map(|(&id, j)| (-j.spec.priority, id))
            .collect();
        ready.sort();
        ready
            .into_iter()
            .take(count as usize)
            .map(|(_, id)| {
                let j = self.jobs.get_mut(&id).expect("job");
                j.attempt += 1;
                j.state = State::Active;
                j.deadline = now + u64::from(lease.unwrap_or(j.spec.lease_ms));
                Pulled {
                    id,
                    attempt: j.attempt,
                }
            })
            .collect()
    }

    fn active(&self, q: &str, id: u64, attempt: Option<u32>) -> Result<MJob, EngineError> {
        let j = self
            .jobs
            .get(&id)
            .filter(|j| j.queue == q)
            .ok_or(EngineError::NoJob(id))?;
        match (j.state, attempt) {
            (State::Active, Some(a)) if a != j.attempt => Err(EngineError::LeaseLost(id)),
            (State::Active, _) => Ok(j.clone()),
            (_, Some(_)) => Err(EngineError::LeaseLost(id)),
            (_, None) => Err(EngineError::NoJob(id)),
        }
    }

    /// A failed attempt: dead, or back after `wait` ms (0: waiting now).
    fn failed(&mut self, id: u64, wait: Option<u64>, fatal: bool, now: u64) -> State {
        let j = self.jobs[&id].clone();
        self.counters(j.queue).failed += 1;
        let j = self.jobs.get_mut(&id).expect("job");
        if fatal || j.attempt > j.spec.retries {
            j.state = State::Dead;
            j.deadline = 0;
            let q = j.queue;
            self.counters(q).dead += 1;
            return State::Dead;
        }
        let wait = wait.unwrap_or_else(|| retry_delay(j.spec.backoff_ms, j.attempt, id));
        (j.state, j.deadline) = if wait == 0 {
            (State::Waiting, 0)
        } else {
            (State::Delayed, now + wait)
        };
        let (state, q) = (j.state, j.queue);
        self.counters(q).retried += 1;
        state
    }

    fn tick(&mut self, now: u64) {
        let due: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| matches!(j.state, State::Delayed | State::Active) && j.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let j = self.jobs[&id].clone();
            if j.state == State::Delayed {
                let j = self.jobs.get_mut(&id).expect("job");
                (j.state, j.deadline) = (State::Waiting, 0);
            } else {
                self.counters(j.queue).expired_leases += 1;
                self.failed(id, Some(0), false, now);
            }
        }
    }
}

fn check_same(engine: &Engine, model: &Model) {
    let (queues, jobs) = engine.snapshot();
    let names: BTreeMap<u32, &str> = queues
        .iter()
        .map(|q| {
            (
                q.id,
                QUEUES
                    .iter()
                    .find(|n| n.as_bytes() == q.name)
                    .copied()
                    .expect("known name"),
            )
        })
        .collect();
    let got_queues: BTreeMap<&str, MQueue> = queues
        .iter()
        .map(|q| {
            (
                names[&q.id],
                MQueue {
                    paused: q.paused,
                    counters: q.counters,
                },
            )
        })
        .collect();
    let want_queues: BTreeMap<&str, MQueue> = model.queues.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(got_queues, want_queues);
    let got_jobs: BTreeMap<u64, MJob> = jobs
        .iter()
        .map(|j| {
            (
                j.id,
                MJob {
                    queue: names[&j.queue],
                    state: j.state,
                    spec: j.spec,
                    attempt: j.attempt,
                    created_at: j.created_at,
                    deadline: j.deadline,
                },
            )
        })
        .collect();
    assert_eq!(got_jobs, model.jobs);
    for q in QUEUES {
        let waiting = model
            .jobs
            .values()
            .filter(|j| j.queue == q && j.state == State::Waiting)
            .count() as u64;
        assert_eq!(engine.len(q.as_bytes()), waiting, "QLEN {q}");
        let dead = model
            .jobs
            .values()
            .filter(|j| j.queue == q && j.state == State::Dead)
            .count() as u64;
        assert_eq!(engine.dead_len(q.as_bytes()), dead, "QDLQ LEN {q}");
    }
}

fn run(ops: Vec<Op>) {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    let mut model = Model {
        next_id: 1,
        ..Model::default()
    };
    let mut now = 1_000_000u64;
    let payload = Bytes::from_static(b"p");
    for op in ops {
        match op {
            Op::Push {
                q,
                priority,
                delay,
                retries,
                backoff,
                lease,
            } => {
                let spec = JobSpec {
                    priority,
                    retries,
                    backoff_ms: backoff,
                    lease_ms: lease,
                };
                let opts = PushOptions {
                    spec,
                    ready_at: delay.map(|d| now + d),
                };
                let id = engine
                    .push(QUEUES[q].as_bytes(), payload.clone(), &opts, now)
                    .unwrap();
                assert_eq!(id, model.push(QUEUES[q], spec, delay, now));
            }
            Op::Pull { q, count, lease } => {
                let got = engine.pull(QUEUES[q].as_bytes(), count, lease, now);
                assert_eq!(got, model.pull(QUEUES[q], count, lease, now), "pull");
            }
            Op::Ack { q, pick, attempt } => {
                let id = model.pick(QUEUES[q], pick);
                let want = match model.jobs.get(&id).filter(|j| j.queue == QUEUES[q]) {
                    None => Ok(0),
                    Some(_) => model.active(QUEUES[q], id, attempt).map(|j| {
                        model.jobs.remove(&id);
                        model.counters(j.queue).acked += 1;
                        1
                    }),
                };
                assert_eq!(engine.ack(QUEUES[q].as_bytes(), &[id], attempt), want, "ack {id}");
            }
            Op::Fail {
                q,
                pick,
                mode,
                retry_in,
                attempt,
            } => {
                let id = model.pick(QUEUES[q], pick);
                let mode = [FailMode::Retry, FailMode::Fatal, FailMode::Silent][mode as usize];
                let want = model.active(QUEUES[q], id, attempt).map(|_| match mode {
                    FailMode::Silent => {
                        let j = model.jobs.get_mut(&id).expect("job");
                        j.attempt -= 1;
                        (j.state, j.deadline) = match retry_in {
                            Some(ms) if ms > 0 => (State::Delayed, now + ms),
                            _ => (State::Waiting, 0),
                        };
                        j.state
                    }
                    FailMode::Fatal => model.failed(id, Some(0), true, now),
                    FailMode::Retry => model.failed(id, retry_in, false, now),
                });
                let opts = FailOptions {
                    error: None,
                    retry_in,
                    mode,
                    attempt,
                };
                assert_eq!(
                    engine.fail(QUEUES[q].as_bytes(), id, &opts, now),
                    want,
                    "fail {id}"
                );
            }
            Op::Touch { q, pick, lease } => {
                let id = model.pick(QUEUES[q], pick);
                let want = model.active(QUEUES[q], id, None).map(|j| {
                    let ms = u64::from(lease.unwrap_or(j.spec.lease_ms));
                    model.jobs.get_mut(&id).expect("job").deadline = now + ms;
                    ms
                });
                assert_eq!(
                    engine.touch(QUEUES[q].as_bytes(), id, lease, None, now),
                    want,
                    "touch {id}"
                );
            }
            Op::Cancel { q, pick } => {
                let id = model.pick(QUEUES[q], pick);
                let cancellable = model.jobs.get(&id).is_some_and(|j| {
                    j.queue == QUEUES[q] && matches!(j.state, State::Waiting | State::Delayed)
                });
                if cancellable {
                    model.jobs.remove(&id);
                }
                assert_eq!(engine.cancel(QUEUES[q].as_bytes(), &[id]), u64::from(cancellable));
            }
            Op::Pause { q } => {
                engine.pause(QUEUES[q].as_bytes());
                model.queues.entry(QUEUES[q]).or_default().paused = true;
            }
            Op::Resume { q } => {
                engine.resume(QUEUES[q].as_bytes(), now);
                if let Some(m) = model.queues.get_mut(QUEUES[q]) {
                    m.paused = false;
                }
            }
            Op::Requeue { q, all, pick } => {
                let id = model.pick(QUEUES[q], pick);
                let chosen: Vec<u64> = model
                    .jobs
                    .iter()
                    .filter(|(&jid, j)| j.queue == QUEUES[q] && j.state == State::Dead && (all || jid == id))
                    .map(|(&jid, _)| jid)
                    .collect();
                for jid in &chosen {
                    let j = model.jobs.get_mut(jid).expect("job");
                    (j.state, j.attempt, j.deadline) = (State::Waiting, 0, 0);
                }
                let ids = [id];
                let got = engine.requeue_dead(QUEUES[q].as_bytes(), (!all).then_some(&ids[..]), now);
                assert_eq!(got, chosen.len() as u64, "requeue");
            }
            Op::Purge { q, all, pick } => {
                let id = model.pick(QUEUES[q], pick);
                let before = model.jobs.len();
                model.jobs.retain(|&jid, j| {
                    !(j.queue == QUEUES[q] && j.state == State::Dead && (all || jid == id))
                });
                let ids = [id];
                let got = engine.purge_dead(QUEUES[q].as_bytes(), (!all).then_some(&ids[..]));
                assert_eq!(got, (before - model.jobs.len()) as u64, "purge");
            }
            Op::Delete { q } => {
                let before = model.jobs.len();
                model.jobs.retain(|_, j| j.queue != QUEUES[q]);
                model.queues.remove(QUEUES[q]);
                assert_eq!(
                    engine.delete_queue(QUEUES[q].as_bytes()),
                    (before - model.jobs.len()) as u64
                );
            }
            Op::Advance { ms } => {
                now += ms;
                engine.tick(now);
                model.tick(now);
            }
        }
        check_same(&engine, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}

#[test]
fn blocked_puller_is_served_first_come_first_served() {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    assert!(engine.pull_or_block(b"q", 1, None, 7, 0).is_empty());
    assert!(engine.pull_or_block(b"q", 2, Some(50), 8, 0).is_empty());
    let opts = PushOptions::default();
    let first = engine.push(b"q", Bytes::from_static(b"x"), &opts, 10).unwrap();
    let second = engine
        .push_many(b"q", vec![Bytes::new(), Bytes::new()], &opts, 10)
        .unwrap();
    let deliveries = engine.take_deliveries();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(
        (deliveries[0].token, deliveries[0].jobs.clone()),
        (
            7,
            vec![Pulled {
                id: first,
                attempt: 1
            }]
        )
    );
    assert_eq!(deliveries[1].token, 8);
    assert_eq!(
        deliveries[1].jobs.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![second, second + 1]
    );
    assert_eq!(
        engine.job(b"q", second).unwrap().deadline,
        60,
        "the puller's LEASE applies"
    );
    // Served pullers are gone: the next push waits.
    engine.push(b"q", Bytes::new(), &opts, 10).unwrap();
    assert!(engine.take_deliveries().is_empty());
    assert_eq!(engine.len(b"q"), 1);
}

#[test]
fn released_jobs_go_back_unattempted_to_the_next_puller() {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    engine.pull_or_block(b"q", 1, None, 1, 0);
    engine.pull_or_block(b"q", 1, None, 2, 0);
    let id = engine
        .push(b"q", Bytes::new(), &PushOptions::default(), 0)
        .unwrap();
    let first = engine.take_deliveries();
    assert_eq!(first[0].token, 1);
    // Puller 1 vanished: the job goes to puller 2 with attempt 1 again.
    engine.release(b"q", &first[0].jobs, 0);
    let second = engine.take_deliveries();
    assert_eq!(
        (second[0].token, second[0].jobs.clone()),
        (2, vec![Pulled { id, attempt: 1 }])
    );
}

#[test]
fn paused_queue_keeps_its_pullers_waiting() {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    engine.pause(b"q");
    engine.pull_or_block(b"q", 1, None, 1, 0);
    engine
        .push(b"q", Bytes::new(), &PushOptions::default(), 0)
        .unwrap();
    assert!(engine.take_deliveries().is_empty());
    engine.resume(b"q", 0);
    assert_eq!(engine.take_deliveries().len(), 1);
    engine.unblock(99);
    assert_eq!(engine.blocked_pullers(), 0);
}

#[test]
fn deliveries_are_counted_and_acks_report_push_times() {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    let opts = PushOptions::default();
    let early = engine.push(b"q", Bytes::new(), &opts, 100).unwrap();
    let late = engine.push(b"q", Bytes::new(), &opts, 250).unwrap();
    // A blocked puller served by a push counts as a delivery too.
    engine.pull_or_block(b"other", 1, None, 1, 0);
    engine.push(b"other", Bytes::new(), &opts, 300).unwrap();
    assert_eq!(engine.take_deliveries().len(), 1);
    let pulled = engine.pull(b"q", 5, None, 400);
    assert_eq!(pulled.len(), 2);
    assert_eq!(engine.stats(b"q", 400).unwrap().pulled, 2);
    assert_eq!(engine.stats(b"other", 400).unwrap().pulled, 1);

    let mut reported = Vec::new();
    let acked = engine.ack_timed(b"q", &[late, early, 999], None, |queue, created_at| {
        reported.push((queue, created_at))
    });
    assert_eq!(acked, Ok(2));
    let q = engine.queues().find(|(_, name, _)| &name[..] == b"q").unwrap().0;
    assert_eq!(reported, vec![(q, 250), (q, 100)], "in the order acked");
    // A job already gone is not acked again, and not reported.
    let again = engine.ack_timed(b"q", &[early], None, |_, _| panic!("nothing was acked"));
    assert_eq!(again, Ok(0));
}

/// A deleted queue's jobs are recorded one change each while few, and as
/// one bulk delete of their id range beyond that.
#[test]
fn a_big_queue_is_deleted_in_bulk() {
    for bulk_above in [BULK_DELETE_ABOVE, 2] {
        let mut engine = Engine::new(Arc::new(Ids::default()));
        engine.set_bulk_delete_above(bulk_above);
        let opts = PushOptions::default();
        let a1 = engine.push(b"a", Bytes::new(), &opts, 0).unwrap();
        let b1 = engine.push(b"b", Bytes::new(), &opts, 0).unwrap();
        let a2 = engine.push(b"a", Bytes::new(), &opts, 0).unwrap();
        // One of a's jobs is leased: QDEL takes active jobs too.
        engine.pull(b"a", 1, None, 0);
        let a3 = engine.push(b"a", Bytes::new(), &opts, 0).unwrap();
        engine.take_changes(&mut Vec::new());

        assert_eq!(engine.delete_queue(b"a"), 3);
        let mut changes = Vec::new();
        engine.take_changes(&mut changes);
        let qid = match changes.last() {
            Some(&Change::DeleteQueue(qid)) => qid,
            other => panic!("ends with {other:?}"),
        };
        let jobs = &changes[..changes.len() - 1];
        if bulk_above == BULK_DELETE_ABOVE {
            let mut deleted: Vec<_> = jobs
                .iter()
                .map(|c| match c {
                    Change::DeleteJob(id) => *id,
                    other => panic!("{other:?}"),
                })
                .collect();
            deleted.sort_unstable();
            assert_eq!(deleted, [a1, a2, a3]);
        } else {
            let bulk = Change::PurgeJobs {
                queue: qid,
                first: a1,
                last: a3,
            };
            assert_eq!(jobs, [bulk].as_slice());
        }
        assert!(b1 > a1 && b1 < a3, "b's job lies inside a's range");
        assert_eq!(engine.stats(b"b", 0).map(|s| s.waiting), Some(1));
    }
}

/// A tick can stop after a number of jobs and say whether more are due;
/// ticking on moves the rest, and nothing due later.
#[test]
fn a_tick_moves_no_more_than_it_is_allowed() {
    let mut engine = Engine::new(Arc::new(Ids::default()));
    let now = 1_000_000;
    let opts = PushOptions {
        spec: JobSpec {
            lease_ms: 100,
            retries: 3,
            ..JobSpec::default()
        },
        ready_at: None,
    };
    for i in 0..25 {
        engine
            .push(b"q", Bytes::from(format!("job {i}")), &opts, now)
            .unwrap();
    }
    engine
        .push(
            b"q",
            Bytes::from_static(b"late"),
            &PushOptions {
                ready_at: Some(now + 10_000),
                ..opts
            },
            now,
        )
        .unwrap();
    assert_eq!(engine.pull(b"q", 25, None, now).len(), 25);

    let due = now + 100;
    assert!(engine.tick_at_most(due, 10));
    assert_eq!(engine.len(b"q"), 10);
    assert!(engine.tick_at_most(due, 10));
    assert_eq!(engine.len(b"q"), 20);
    // The last 5 are due, the delayed job is not.
    assert!(!engine.tick_at_most(due, 10));
    assert_eq!(engine.len(b"q"), 25);
    assert_eq!(engine.stats(b"q", due).unwrap().counters.expired_leases, 25);
    assert!(!engine.tick_at_most(due, 10));
    assert_eq!(engine.next_deadline(), Some(now + 10_000));
}
