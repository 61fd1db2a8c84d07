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
    let payloads = server
        .store
        .payloads(&jobs.iter().map(|j| j.id).collect::<Vec<_>>())?;
    Ok(jobs_with_payloads(queue, jobs, &mut payloads.into_iter()))
}

/// The replies to several pulls, as [`jobs_reply`], their payloads read
/// together: a pipeline of pulls costs one read transaction, not one
/// each. A store error is every pull's reply.
pub fn jobs_replies<'a>(
    server: &Server,
    pulls: impl Iterator<Item = (&'a Bytes, &'a [Pulled])> + Clone,
) -> Vec<Reply> {
    let ids: Vec<u64> = pulls
        .clone()
        .flat_map(|(_, jobs)| jobs.iter().map(|j| j.id))
        .collect();
    match server.store.payloads(&ids) {
        Ok(payloads) => {
            let mut payloads = payloads.into_iter();
            pulls
                .map(|(queue, jobs)| jobs_with_payloads(queue, jobs, &mut payloads))
                .collect()
        }
        Err(e) => {
            let error = Reply::Error(CmdError::from(e).to_string());
            pulls.map(|_| error.clone()).collect()
        }
    }
}

/// The reply for `jobs`, taking their payloads, in order, from `payloads`.
fn jobs_with_payloads(
    queue: &Bytes,
    jobs: &[Pulled],
    payloads: &mut impl Iterator<Item = Option<Bytes>>,
) -> Reply {
    // `zip` asks `jobs` first, so it takes no payload past the last job.
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
    if items.is_empty() {
        Reply::NullArray
    } else {
        Reply::Array(items)
    }
}
