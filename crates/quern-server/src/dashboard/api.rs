//! The JSON API behind the pages. Reads use the engine and store
//! functions the inspection commands use (QSTATS, QPEEK, QDLQ LIST, QGET,
//! QSCAN's walk over the queues); actions run the engine operations of
//! QPAUSE, QRESUME, QDLQ REQUEUE and QDLQ PURGE through [`Shards::apply`]
//! and answer once the store has committed them, so what the page reports
//! done is durable.
//!
//! Unlike QPAUSE, an action on a queue that does not exist does not
//! create it: the dashboard only acts on queues it has shown, so an
//! unknown one is a stale page or a wrong link, and gets 404.
//!
//! [`Shards::apply`]: crate::shards::Shards::apply

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use quern_engine::{Engine, JobId, Millis, QueueId, QueueStats, State};
use quern_store::Ticket;
use serde::Serialize;

use super::request::{job_id, which, ApiError, Query, QueueName};
use super::text::{contains_ignoring_case, Name, Preview};
use super::{
    DEFAULT_JOBS_LISTED, DEFAULT_QUEUES_PER_PAGE, DETAIL_BYTES, MAX_BODY_BYTES, MAX_FILTER_BYTES,
    MAX_JOBS_LISTED, MAX_QUEUES_PER_PAGE, PREVIEW_BYTES,
};
use crate::http::Loaded;
use crate::inspect;
use crate::server::Server;
use crate::shards::now_ms;

/// A queue's jobs by state and its counters: QSTATS's fields.
#[derive(Debug, Serialize)]
struct Stats {
    waiting: u64,
    delayed: u64,
    active: u64,
    blocked: u64,
    dead: u64,
    paused: bool,
    pushed: u64,
    acked: u64,
    failed: u64,
    retried: u64,
    dead_total: u64,
    expired_leases: u64,
    oldest_waiting_age_ms: u64,
}

impl From<QueueStats> for Stats {
    fn from(s: QueueStats) -> Stats {
        Stats {
            waiting: s.waiting,
            delayed: s.delayed,
            active: s.active,
            blocked: s.blocked,
            dead: s.dead,
            paused: s.paused,
            pushed: s.counters.pushed,
            acked: s.counters.acked,
            failed: s.counters.failed,
            retried: s.counters.retried,
            dead_total: s.counters.dead,
            expired_leases: s.counters.expired_leases,
            oldest_waiting_age_ms: s.oldest_waiting_age_ms,
        }
    }
}

/// One row of the queues page.
#[derive(Debug, Serialize)]
struct QueueRow {
    #[serde(flatten)]
    name: Name,
    stats: Stats,
}

/// `GET /api/queues`: one page of the queues.
#[derive(Debug, Serialize)]
struct QueuesPage {
    /// The server's clock when it read them, Unix ms: the pages compute
    /// rates from counters read at two of these.
    now_ms: Millis,
    /// Queues matching the filter, on every page.
    total: usize,
    offset: u64,
    limit: u64,
    /// Those on this page, in creation order.
    queues: Vec<QueueRow>,
}

/// A waiting job on a queue's page.
#[derive(Debug, Serialize)]
struct WaitingRow {
    id: JobId,
    priority: i64,
    /// The attempt a pull would give it now.
    attempt: u32,
    /// Time since its push.
    age_ms: u64,
    payload: Preview,
}

/// A dead job on a queue's page.
#[derive(Debug, Serialize)]
struct DeadRow {
    id: JobId,
    /// Its last delivery.
    attempt: u32,
    payload: Preview,
    last_error: Option<Preview>,
}

/// `GET /api/queues/{name}`.
#[derive(Debug, Serialize)]
struct QueuePage {
    now_ms: Millis,
    #[serde(flatten)]
    name: Name,
    stats: Stats,
    /// The next waiting jobs, in the order a pull takes them.
    waiting_jobs: Vec<WaitingRow>,
    /// The first dead jobs, lowest id first.
    dead_jobs: Vec<DeadRow>,
}

/// `GET /api/queues/{name}/jobs/{id}`: QGET's fields.
#[derive(Debug, Serialize)]
struct JobPage {
    id: JobId,
    queue: Name,
    state: &'static str,
    payload: Preview,
    priority: i64,
    attempt: u32,
    retries: u32,
    backoff: u32,
    lease: u32,
    created_at: Millis,
    ready_at: Option<Millis>,
    lease_until: Option<Millis>,
    last_error: Option<Preview>,
}

/// A JSON response.
fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("cannot encode the answer: {e}"),
        }
        .into_response(),
    }
}

fn no_queue(name: &[u8]) -> ApiError {
    ApiError::not_found(format!("no queue '{}'", Name::of(name).name))
}

/// `GET /api/queues?filter=&offset=&limit=`: the queues whose name
/// contains `filter` (ignoring ASCII case), in creation order, `limit`
/// of them from `offset`.
pub async fn queues(Loaded(server): Loaded, uri: Uri) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query(), &["filter", "offset", "limit"])?;
    let limit = query.number("limit", DEFAULT_QUEUES_PER_PAGE, 1, MAX_QUEUES_PER_PAGE)?;
    let offset = query.number("offset", 0, 0, u64::from(u32::MAX))?;
    let filter = query.text("filter").unwrap_or_default().as_bytes();
    if filter.len() > MAX_FILTER_BYTES {
        return Err(ApiError::bad_request(format!(
            "filter must be at most {MAX_FILTER_BYTES} bytes"
        )));
    }
    // As QSCAN walks them: every shard's queues, then in creation order.
    let mut found: Vec<(QueueId, Bytes)> = Vec::new();
    server.shards.each(|engine| {
        found.extend(
            engine
                .queues()
                .filter(|(_, name, _)| contains_ignoring_case(name, filter))
                .map(|(id, name, _)| (id, name.clone())),
        );
    });
    found.sort_unstable_by_key(|(id, _)| *id);
    let total = found.len();
    let queues = found
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .filter_map(|(_, name)| {
            // Gone since the walk (QDEL): left out.
            let stats = server
                .shards
                .read(&name, |engine, now| engine.stats(&name, now))?;
            Some(QueueRow {
                name: Name::of(&name),
                stats: stats.into(),
            })
        })
        .collect();
    Ok(json(&QueuesPage {
        now_ms: now_ms(),
        total,
        offset,
        limit,
        queues,
    }))
}

/// `GET /api/queues/{name}?waiting=&dead=`: the queue's stats, its next
/// `waiting` waiting jobs and its first `dead` dead jobs.
pub async fn queue(
    Loaded(server): Loaded,
    QueueName(name): QueueName,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query(), &["waiting", "dead"])?;
    let waiting = query.number("waiting", DEFAULT_JOBS_LISTED, 0, MAX_JOBS_LISTED)? as usize;
    let dead = query.number("dead", DEFAULT_JOBS_LISTED, 0, MAX_JOBS_LISTED)? as usize;
    let stats = server
        .shards
        .read(&name, |engine, now| engine.stats(&name, now))
        .ok_or_else(|| no_queue(&name))?;
    let waiting_jobs = inspect::waiting_jobs(&server, &name, waiting).map_err(ApiError::store)?;
    let dead_jobs = inspect::dead_jobs(&server, &name, dead).map_err(ApiError::store)?;
    let now = now_ms();
    Ok(json(&QueuePage {
        now_ms: now,
        name: Name::of(&name),
        stats: stats.into(),
        waiting_jobs: waiting_jobs
            .into_iter()
            .map(|job| WaitingRow {
                id: job.id,
                priority: job.priority,
                attempt: job.attempt,
                age_ms: now.saturating_sub(job.created_at),
                payload: Preview::of(&job.payload, PREVIEW_BYTES),
            })
            .collect(),
        dead_jobs: dead_jobs
            .into_iter()
            .map(|job| DeadRow {
                id: job.id,
                attempt: job.attempt,
                payload: Preview::of(&job.payload, PREVIEW_BYTES),
                last_error: job.last_error.map(|e| Preview::of(&e, PREVIEW_BYTES)),
            })
            .collect(),
    }))
}

/// `GET /api/queues/{name}/jobs/{id}`: one job in any state, as QGET.
pub async fn job(Loaded(server): Loaded, QueueName(name): QueueName, uri: Uri) -> Result<Response, ApiError> {
    // The id is the path's last segment; axum's `Path` would refuse the
    // whole path when the queue name is not UTF-8.
    let id = job_id(uri.path().rsplit('/').next().unwrap_or_default())?;
    let detail = inspect::job(&server, &name, id)
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::not_found(format!("no job {id} in queue '{}'", Name::of(&name).name)))?;
    let record = detail.record;
    let when = |state: State| (record.state == state).then_some(record.deadline);
    Ok(json(&JobPage {
        id,
        queue: Name::of(&name),
        state: record.state.name(),
        payload: Preview::of(&detail.payload, DETAIL_BYTES),
        priority: record.spec.priority,
        attempt: record.attempt,
        retries: record.spec.retries,
        backoff: record.spec.backoff_ms,
        lease: record.spec.lease_ms,
        created_at: record.created_at,
        ready_at: when(State::Delayed),
        lease_until: when(State::Active),
        last_error: detail.last_error.map(|e| Preview::of(&e, DETAIL_BYTES)),
    }))
}

/// Runs `op` on the engine holding `queue` if the queue exists, and waits
/// until the store has committed what it changed. `None`: no such queue.
async fn act<R>(
    server: &Arc<Server>,
    queue: &[u8],
    op: impl FnOnce(&mut Engine, Millis) -> R,
) -> Result<R, ApiError> {
    let (result, ticket): (Option<R>, Ticket) = server.shards.apply(queue, |engine, now| {
        // Checked under the same lock as the change: no QDEL slips between.
        engine.stats(queue, now).is_some().then(|| op(engine, now))
    });
    server.store.committed(ticket).await.map_err(ApiError::store)?;
    result.ok_or_else(|| no_queue(queue))
}

/// `POST /api/queues/{name}/pause`: QPAUSE.
pub async fn pause(Loaded(server): Loaded, QueueName(name): QueueName) -> Result<Response, ApiError> {
    act(&server, &name, |engine, _| engine.pause(&name)).await?;
    Ok(json(&serde_json::json!({ "paused": true })))
}

/// `POST /api/queues/{name}/resume`: QRESUME.
pub async fn resume(Loaded(server): Loaded, QueueName(name): QueueName) -> Result<Response, ApiError> {
    act(&server, &name, |engine, now| engine.resume(&name, now)).await?;
    Ok(json(&serde_json::json!({ "paused": false })))
}

/// `POST /api/queues/{name}/dead/requeue` with `{"ids": […]}` or
/// `{"all": true}`: QDLQ REQUEUE. Answers how many were requeued.
pub async fn requeue_dead(
    Loaded(server): Loaded,
    QueueName(name): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let which = which(&read_body(body)?)?;
    let n = act(&server, &name, |engine, now| {
        engine.requeue_dead(&name, which.ids(), now)
    })
    .await?;
    Ok(json(&serde_json::json!({ "requeued": n })))
}

/// `POST /api/queues/{name}/dead/purge` with `{"ids": […]}` or
/// `{"all": true}`: QDLQ PURGE. Answers how many were deleted.
pub async fn purge_dead(
    Loaded(server): Loaded,
    QueueName(name): QueueName,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let which = which(&read_body(body)?)?;
    let n = act(&server, &name, |engine, _| engine.purge_dead(&name, which.ids())).await?;
    Ok(json(&serde_json::json!({ "purged": n })))
}

/// Any other `/api/…` path.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no API route {}", uri.path()))
}

/// The body, or why it could not be read.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is too large: at most {MAX_BODY_BYTES} bytes")
        } else {
            rejection.body_text()
        };
        ApiError { status, message }
    })
}
