//! What the pull commands share: leasing from queues in order, and the
//! reply that carries jobs to a worker.

use bytes::Bytes;
use quern_engine::Pulled;

use super::Ctx;
use crate::error::CmdError;
use crate::resp::Reply;
use crate::server::Server;

/// Leases up to `count` jobs from the first of `queues` that has any.
/// The leases are committed after the reply (SPEC §2): losing one only
/// delivers the job again.
pub fn pull_first(
    ctx: &Ctx<'_>,
    queues: &[Bytes],
    count: u32,
    lease_ms: Option<u32>,
) -> Option<(Bytes, Vec<Pulled>)> {
    queues.iter().find_map(|queue| {
        let jobs = ctx
            .server
            .shards
            .apply_unawaited(queue, |engine, now| engine.pull(queue, count, lease_ms, now));
        (!jobs.is_empty()).then(|| (queue.clone(), jobs))
    })
}

/// `[[queue, id, payload, attempt], ...]`, or a null array for no jobs.
/// A job whose payload is gone by this read is left out (QDEL after the
/// lease); one of a big queue may still be delivered, since the store
/// deletes a big queue's payloads in bulk, a little after the queue.
pub fn jobs_reply(server: &Server, queue: &Bytes, jobs: &[Pulled]) -> Result<Reply, CmdError> {
    if jobs.is_empty() {
        return Ok(Reply::NullArray);
    }
    let ids: Vec<u64> = jobs.iter().map(|j| j.id).collect();
    let payloads = server.store.payloads(&ids)?;
    let items: Vec<Reply> = jobs
        .iter()
        .zip(payloads)
        .filter_map(|(job, payload)| {
            Some(Reply::Array(vec![
                Reply::Bulk(queue.clone()),
                Reply::Int(job.id as i64),
                Reply::Bulk(payload?),
                Reply::Int(i64::from(job.attempt)),
            ]))
        })
        .collect();
    Ok(if items.is_empty() {
        Reply::NullArray
    } else {
        Reply::Array(items)
    })
}
