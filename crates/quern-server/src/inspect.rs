//! Jobs read together with what the store keeps beside them (payload,
//! last error): what the inspection commands (QGET, QDLQ LIST) and the
//! dashboard share, so that both show the same jobs the same way.
//!
//! Each read takes the job list from the engine under its shard's lock,
//! then reads payloads and errors from the store after the lock is
//! released. A job deleted in between (QACK, QDEL, a purge) has no payload
//! by then: it is left out, never shown half. (A QDEL of a big queue
//! deletes its payloads in bulk, a little later; a job shown meanwhile is
//! shown whole, as it was when listed.)

use bytes::Bytes;
use quern_engine::{JobId, JobRecord, Millis};
use quern_store::StoreError;

use crate::server::Server;

/// A dead job, as QDLQ LIST shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadJob {
    /// The job's id.
    pub id: JobId,
    /// The number of its last delivery.
    pub attempt: u32,
    /// Its payload.
    pub payload: Bytes,
    /// The message of its last QFAIL … ERROR, if one gave any.
    pub last_error: Option<Bytes>,
}

/// A waiting job, in the order QPEEK and QPULL see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingJob {
    /// The job's id.
    pub id: JobId,
    /// The attempt a pull would give it now (as QPEEK shows it).
    pub attempt: u32,
    /// Its PRIORITY.
    pub priority: i64,
    /// When it was pushed, Unix ms.
    pub created_at: Millis,
    /// Its payload.
    pub payload: Bytes,
}

/// One job in any state, as QGET shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDetail {
    /// What the engine knows of it.
    pub record: JobRecord,
    /// Its payload.
    pub payload: Bytes,
    /// The message of its last QFAIL … ERROR, if any.
    pub last_error: Option<Bytes>,
}

/// The first `count` dead jobs of `queue`, lowest id first (QDLQ LIST).
pub fn dead_jobs(server: &Server, queue: &[u8], count: usize) -> Result<Vec<DeadJob>, StoreError> {
    let jobs = server.shards.read(queue, |engine, _| engine.dead(queue, count));
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let payloads = server.store.payloads(&ids)?;
    let errors = server.store.last_errors(&ids)?;
    Ok(jobs
        .iter()
        .zip(payloads)
        .zip(errors)
        .filter_map(|((job, payload), last_error)| {
            Some(DeadJob {
                id: job.id,
                attempt: job.attempt,
                payload: payload?,
                last_error,
            })
        })
        .collect())
}

/// The next `count` waiting jobs of `queue`, in the order a pull would
/// hand them out (QPEEK's order), with their priority and push time.
pub fn waiting_jobs(server: &Server, queue: &[u8], count: usize) -> Result<Vec<WaitingJob>, StoreError> {
    let jobs: Vec<(JobId, u32, Option<JobRecord>)> = server.shards.read(queue, |engine, _| {
        engine
            .peek(queue, count)
            .into_iter()
            .map(|next| (next.id, next.attempt, engine.job(queue, next.id)))
            .collect()
    });
    let ids: Vec<JobId> = jobs.iter().map(|(id, ..)| *id).collect();
    let payloads = server.store.payloads(&ids)?;
    Ok(jobs
        .into_iter()
        .zip(payloads)
        .filter_map(|((id, attempt, record), payload)| {
            let record = record?;
            Some(WaitingJob {
                id,
                attempt,
                priority: record.spec.priority,
                created_at: record.created_at,
                payload: payload?,
            })
        })
        .collect())
}

/// Job `id` of `queue` in any state (QGET); `None` when the queue has no
/// such job, or it was deleted while being read.
pub fn job(server: &Server, queue: &[u8], id: JobId) -> Result<Option<JobDetail>, StoreError> {
    let Some(record) = server.shards.read(queue, |engine, _| engine.job(queue, id)) else {
        return Ok(None);
    };
    let Some(payload) = server.store.payloads(&[id])?.pop().flatten() else {
        return Ok(None);
    };
    let last_error = server.store.last_error(id)?;
    Ok(Some(JobDetail {
        record,
        payload,
        last_error,
    }))
}
