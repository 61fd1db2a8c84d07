//! The HTTP listener: `/metrics` (Prometheus text format), `/health` (the
//! process is alive), `/ready` (the server can take work), and the
//! dashboard's routes ([`crate::dashboard`]).
//!
//! It starts before the store opens, so that `/health` answers and
//! `/ready` says "loading" during a long load, and it stops after the
//! store's last commit, so that `/ready` says "stopping" meanwhile.
//!
//! Adding a route is one line in [`router`] and one handler. A handler
//! takes `State<HttpState>` for what is there from the start (the
//! lifecycle, readiness), or [`Loaded`] for the server itself, which
//! answers 503 by itself while the data loads. `/metrics`, `/health` and
//! `/ready` ask for no password, since probes and Prometheus have none to
//! give (the listener binds to 127.0.0.1 by default); a route that shows
//! or changes queue contents belongs in the dashboard's router, behind
//! its guard, which checks the server's `requirepass`.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::Lifecycle;
use crate::server::Server;

/// The media type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a stopping listener waits for open requests to finish.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// Where the server is in its life, and the server once it has loaded.
    pub lifecycle: Arc<Lifecycle>,
}

impl HttpState {
    /// The server, once it has loaded its data.
    pub fn server(&self) -> Option<&Arc<Server>> {
        self.lifecycle.server()
    }
}

/// Every route.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(crate::dashboard::router(state.clone()))
        .with_state(state)
}

/// The loaded server, for handlers that need it; a request that arrives
/// while the data loads gets 503 "loading" without reaching the handler.
#[derive(Debug)]
pub struct Loaded(pub Arc<Server>);

impl FromRequestParts<HttpState> for Loaded {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(_: &mut Parts, state: &HttpState) -> Result<Loaded, Self::Rejection> {
        state
            .server()
            .cloned()
            .map(Loaded)
            .ok_or((StatusCode::SERVICE_UNAVAILABLE, "loading\n"))
    }
}

/// `/metrics`: the Prometheus text. While the data loads, only what the
/// recorder holds; the queues and the store appear once loaded.
async fn metrics(State(state): State<HttpState>) -> Response {
    // The scrape locks each shard in turn and formats thousands of lines:
    // work for a blocking thread, not for a runtime worker.
    let rendered =
        tokio::task::spawn_blocking(move || crate::metrics::render(state.server().map(|s| &**s))).await;
    match rendered {
        Ok(text) => ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("scrape failed: {e}\n")).into_response(),
    }
}

/// `/health`: 200 while the process runs at all.
async fn health() -> &'static str {
    "ok\n"
}

/// `/ready`: 200 when the server can take work; 503 and why not.
async fn ready(State(state): State<HttpState>) -> (StatusCode, String) {
    match state.lifecycle.readiness().reason() {
        None => (StatusCode::OK, "ready\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// A running listener. Dropping it stops it without waiting.
#[derive(Debug)]
pub struct HttpListener {
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl HttpListener {
    /// Binds `addr` and serves [`router`] on it from a task of its own.
    pub async fn bind(addr: SocketAddr, state: HttpState) -> std::io::Result<HttpListener> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let serve = axum::serve(listener, router(state))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
        let task = tokio::spawn(async move {
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the HTTP listener failed");
            }
        });
        Ok(HttpListener {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on (the port chosen, when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, and lets requests in progress finish for a moment.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for HttpListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
