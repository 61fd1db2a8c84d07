//! The pages and their CSS and JavaScript, embedded in the binary. Each
//! page is static: its script reads the JSON API and draws from it.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::request::{ApiError, QueueName};

const HTML: &str = "text/html; charset=utf-8";

/// Name, media type and content of every file under `/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "overview.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/overview.js"),
    ),
    (
        "queue.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/queue.js"),
    ),
    ("favicon.svg", "image/svg+xml", include_str!("assets/favicon.svg")),
];

/// `GET /`: the queues.
pub async fn overview() -> Response {
    ([(header::CONTENT_TYPE, HTML)], include_str!("assets/index.html")).into_response()
}

/// `GET /queues/{name}`: one queue. The name is checked here so that a
/// bad link says so at once; the page's script reads it from its URL.
pub async fn queue(_name: QueueName) -> Response {
    ([(header::CONTENT_TYPE, HTML)], include_str!("assets/queue.html")).into_response()
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, media_type, content)) => ([(header::CONTENT_TYPE, *media_type)], *content).into_response(),
        None => ApiError::not_found(format!("no asset '{file}'")).into_response(),
    }
}
