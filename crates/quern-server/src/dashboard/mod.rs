//! The dashboard, served by the HTTP listener at `/`: every queue with its
//! jobs by state and its rates, and each queue's page with its next jobs
//! and its dead-letter queue, where an operator can requeue or purge dead
//! jobs and pause or resume the queue.
//!
//! The pages are plain HTML, CSS and JavaScript embedded in the binary
//! (`assets/`): nothing to build, nothing fetched from elsewhere. They
//! draw themselves from a JSON API:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the queues page |
//! | `GET /queues/{name}` | a queue's page |
//! | `GET /assets/{file}` | the pages' CSS and JavaScript |
//! | `GET /api/queues?filter=&offset=&limit=` | a page of queues, with their stats |
//! | `GET /api/queues/{name}?waiting=&dead=` | one queue: stats, next waiting jobs, dead jobs |
//! | `GET /api/queues/{name}/jobs/{id}` | one job, as QGET shows it |
//! | `POST /api/queues/{name}/pause`, `…/resume` | QPAUSE, QRESUME |
//! | `POST /api/queues/{name}/dead/requeue`, `…/dead/purge` | QDLQ REQUEUE, QDLQ PURGE; body `{"ids":[…]}` or `{"all":true}` |
//!
//! `{name}` is the queue name's bytes, percent-encoded: a name is any
//! bytes, not necessarily UTF-8. Reads and actions go through the same
//! engine and store functions as the RESP commands, and an action answers
//! only once its change is committed, as a RESP write does with `fsync
//! always`. Every list is bounded (the limits below).
//!
//! Every route here is behind [`guard`]: HTTP Basic auth when the server
//! has a password, and a custom header on every action against
//! cross-site requests.

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;

use crate::http::HttpState;

mod api;
mod guard;
mod pages;
mod request;
mod text;

/// Queues on one page of `GET /api/queues` when the request does not say.
const DEFAULT_QUEUES_PER_PAGE: u64 = 50;
/// Most queues on one page of `GET /api/queues`.
const MAX_QUEUES_PER_PAGE: u64 = 500;
/// Waiting and dead jobs listed on a queue's page when the request does
/// not say.
const DEFAULT_JOBS_LISTED: u64 = 20;
/// Most waiting (or dead) jobs listed on a queue's page.
const MAX_JOBS_LISTED: u64 = 200;
/// Most ids in one requeue or purge.
const MAX_IDS_PER_ACTION: usize = 1000;
/// Largest request body: an action's JSON, with room for its ids.
const MAX_BODY_BYTES: usize = 64 << 10;
/// Bytes of a payload or an error shown in a list; the rest is cut.
const PREVIEW_BYTES: usize = 200;
/// Bytes of a payload or an error shown for one job.
const DETAIL_BYTES: usize = 16 << 10;
/// Longest queue filter, in bytes: no name is longer.
const MAX_FILTER_BYTES: usize = crate::config::MAX_QUEUE_NAME;

/// The dashboard's routes, to merge into the HTTP listener's router.
/// `state` is the listener's own, for the guard.
pub fn router(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/queues/{name}", get(pages::queue))
        .route("/assets/{file}", get(pages::asset))
        .route("/api/queues", get(api::queues))
        .route("/api/queues/{name}", get(api::queue))
        .route("/api/queues/{name}/jobs/{id}", get(api::job))
        .route("/api/queues/{name}/pause", post(api::pause))
        .route("/api/queues/{name}/resume", post(api::resume))
        .route("/api/queues/{name}/dead/requeue", post(api::requeue_dead))
        .route("/api/queues/{name}/dead/purge", post(api::purge_dead))
        // An unknown API path answers in JSON like the rest of the API.
        .route("/api/{*rest}", any(api::not_found))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(state, guard::guard))
}
