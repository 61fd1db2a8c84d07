//! The server: its shared state, start-up, the accept loop and an orderly
//! shutdown.
//!
//! Start-up has two steps, so that the HTTP listener answers while the
//! data loads: [`start`] checks the settings and starts the HTTP listener;
//! [`Starting::load`] opens the store, rebuilds the engines and binds the
//! RESP port. [`Bound::serve`] then serves until told to stop.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use quern_engine::{Ids, JobRecord, QueueId};
use quern_store::{Store, StoreConfig, StoreError};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backups::Backups;
use crate::blocking::Waiters;
use crate::clients::Clients;
use crate::config::{Config, Settings};
use crate::connection;
use crate::http::{HttpListener, HttpState};
use crate::lifecycle::Lifecycle;
use crate::metrics::{self, QueueMetrics, StoreMetrics};
use crate::shards::Shards;
use crate::stats::Stats;

/// Everything the connections share.
#[derive(Debug)]
pub struct Server {
    /// The settings the server started with.
    pub config: Config,
    /// The settings that may change while it runs.
    pub settings: Settings,
    /// The engines.
    pub shards: Arc<Shards>,
    /// The store.
    pub store: Arc<Store>,
    /// Blocked pullers.
    pub waiters: Arc<Waiters>,
    /// Connected clients.
    pub clients: Clients,
    /// Request counters: per command, bytes in and out.
    pub stats: Stats,
    /// Per-queue metrics: which queues have a label, push-to-ack times.
    pub queue_metrics: QueueMetrics,
    /// The store's commit histograms (recorded while metrics are on).
    pub store_metrics: Arc<StoreMetrics>,
    /// Backups (BGSAVE).
    pub backups: Backups,
    /// Cancelled to stop the server (SIGTERM, SHUTDOWN).
    pub shutdown: CancellationToken,
    /// When it started.
    pub started: Instant,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The address its HTTP listener listens on, when it has one.
    pub http_addr: Option<SocketAddr>,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// A setting is out of bounds.
    Config(String),
    /// The store could not be opened or read.
    Store(StoreError),
    /// The address could not be bound.
    Bind(SocketAddr, std::io::Error),
    /// The HTTP address could not be bound.
    Http(SocketAddr, std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(why) => write!(f, "invalid setting: {why}"),
            StartError::Store(e) => write!(f, "cannot open the store: {e}"),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Http(addr, e) => write!(f, "cannot listen for HTTP on {addr}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A server whose settings are checked and whose HTTP listener (when on)
/// answers, with its data not loaded yet.
#[derive(Debug)]
pub struct Starting {
    config: Config,
    lifecycle: Arc<Lifecycle>,
    http: Option<HttpListener>,
}

/// A server that has loaded its data and bound its port, not yet serving.
#[derive(Debug)]
pub struct Bound {
    server: Arc<Server>,
    listener: TcpListener,
    http: Option<HttpListener>,
    /// Jobs loaded from the store.
    pub jobs_loaded: u64,
}

impl Bound {
    /// The shared state (for the address, and to stop it).
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }
}

/// Checks the settings and starts the HTTP listener, when one is set.
pub async fn start(config: Config) -> Result<Starting, StartError> {
    config.validate().map_err(|e| StartError::Config(e.to_string()))?;
    let lifecycle = Arc::new(Lifecycle::default());
    let http = match config.http {
        None => None,
        Some(addr) => {
            // Before any metric handle is taken: one taken earlier would
            // stay a no-op.
            metrics::install();
            let state = HttpState {
                lifecycle: lifecycle.clone(),
            };
            let listener = HttpListener::bind(addr, state)
                .await
                .map_err(|e| StartError::Http(addr, e))?;
            Some(listener)
        }
    };
    Ok(Starting {
        config,
        lifecycle,
        http,
    })
}

/// [`start`], then [`Starting::load`], for a caller with nothing to do in
/// between.
pub async fn bind(config: Config) -> Result<Bound, StartError> {
    start(config).await?.load().await
}

impl Starting {
    /// The HTTP listener's address, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(HttpListener::addr)
    }

    /// Opens the store, rebuilds every queue from it and binds the port.
    pub async fn load(self) -> Result<Bound, StartError> {
        let Starting {
            config,
            lifecycle,
            http,
        } = self;
        let store_config = StoreConfig {
            dir: config.dir.clone(),
            fsync: config.fsync,
            ..StoreConfig::default()
        };
        let shard_count = config.shards;
        // Replaying the log and reading every job take seconds for a large
        // backlog: on a blocking thread, so that the runtime keeps
        // answering HTTP meanwhile.
        let loading = tokio::task::spawn_blocking(move || open_and_restore(&store_config, shard_count));
        let (store, shards, waiters, jobs_loaded) = match loading.await {
            Ok(loaded) => loaded?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(StartError::Store(StoreError::Closed)),
        };
        let store_metrics = Arc::new(StoreMetrics::default());
        if metrics::enabled() {
            store.observe(store_metrics.clone());
        }

        let requested = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(requested)
            .await
            .map_err(|e| StartError::Bind(requested, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(requested, e))?;
        let backups = Backups::new(Arc::clone(&store), &config.dir);
        let server = Arc::new(Server {
            settings: Settings::new(&config),
            queue_metrics: QueueMetrics::new(config.metrics_max_queues),
            store_metrics,
            config,
            shards,
            store,
            waiters,
            clients: Clients::default(),
            stats: Stats::default(),
            backups,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            addr,
            http_addr: http.as_ref().map(HttpListener::addr),
        });
        lifecycle.loaded(server.clone());
        Ok(Bound {
            server,
            listener,
            http,
            jobs_loaded,
        })
    }
}

/// What loading builds: the store, the engines, the blocked-puller
/// registry, and the number of jobs loaded.
type LoadedData = (Arc<Store>, Arc<Shards>, Arc<Waiters>, u64);

/// Opens the store and loads it into `shard_count` fresh engines.
fn open_and_restore(store_config: &StoreConfig, shard_count: usize) -> Result<LoadedData, StartError> {
    let store = Store::open(store_config).map_err(StartError::Store)?;
    let ids = Arc::new(Ids::default());
    let waiters = Arc::new(Waiters::default());
    let shards = Arc::new(Shards::new(shard_count, ids, store.clone(), waiters.clone()));
    let jobs = restore(&store, &shards)?;
    Ok((store, shards, waiters, jobs))
}

/// Jobs handed to a shard at a time while restoring: one lock per batch.
const RESTORE_BATCH: usize = 4096;

/// Loads every queue and job into its shard; returns the job count.
///
/// Two threads share the work: this one reads and decodes the store while
/// a second files the decoded jobs into the engines, so a large backlog
/// loads in about the time the slower half takes.
fn restore(store: &Store, shards: &Shards) -> Result<u64, StartError> {
    // Queues load before their jobs, so each job's shard is known from its
    // queue id, without hashing the queue's name per job.
    let shard_of: RefCell<foldhash::HashMap<QueueId, usize>> = RefCell::default();
    let mut batches: Vec<Vec<JobRecord>> = vec![Vec::new(); shards.len()];
    let mut jobs = 0;
    let (to_engines, batches_in) = std::sync::mpsc::sync_channel::<(usize, Vec<JobRecord>)>(16);
    let loaded = std::thread::scope(|scope| {
        scope.spawn(move || {
            for (index, batch) in batches_in {
                shards.restore_jobs(index, batch.into_iter());
            }
        });
        let loaded = store.load(
            |queue| {
                let index = shards.index(&queue.name);
                shard_of.borrow_mut().insert(queue.id, index);
                shards.restore_queue(index, queue);
            },
            |job| match shard_of.borrow().get(&job.queue) {
                Some(&index) => {
                    jobs += 1;
                    let batch = &mut batches[index];
                    batch.push(job);
                    if batch.len() == RESTORE_BATCH {
                        let full = std::mem::replace(batch, Vec::with_capacity(RESTORE_BATCH));
                        // The filing thread ends only when this sender drops.
                        let _ = to_engines.send((index, full));
                    }
                }
                // A job whose queue record is missing cannot be served;
                // the store's own checks make this unreachable.
                None => tracing::warn!(
                    job = job.id,
                    queue = job.queue,
                    "job names an unknown queue; skipped"
                ),
            },
        );
        for (index, batch) in batches.into_iter().enumerate() {
            let _ = to_engines.send((index, batch));
        }
        drop(to_engines);
        loaded
    })
    .map_err(StartError::Store)?;
    shards.ids().observe(
        loaded.next_job.saturating_sub(1),
        loaded.next_queue.saturating_sub(1),
    );
    Ok(jobs)
}

impl Bound {
    /// Serves until the server is told to stop, then finishes in-flight
    /// work, commits and returns.
    pub async fn serve(self) -> Result<(), StoreError> {
        let Bound {
            server,
            listener,
            http,
            ..
        } = self;
        let timers = server.shards.spawn_timers(server.shutdown.clone());
        let connections = TaskTracker::new();
        loop {
            tokio::select! {
                _ = server.shutdown.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if server.clients.len() >= server.settings.maxclients() {
                        server.clients.rejected.fetch_add(1, Ordering::Relaxed);
                        let mut stream = stream;
                        tokio::spawn(async move {
                            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                        });
                        continue;
                    }
                    // Registered here, in accept order, so client ids follow it.
                    let local = stream.local_addr().unwrap_or(server.addr);
                    let handle = server.clients.add(peer, local, server.shutdown.child_token());
                    let server = server.clone();
                    connections.spawn(async move { connection::serve(server, stream, handle).await });
                }
            }
        }
        drop(listener);
        // Connections see the same token: each finishes the requests it
        // has read, sends their replies and closes.
        connections.close();
        connections.wait().await;
        for timer in timers {
            let _ = timer.await;
        }
        let store = server.store.clone();
        let stopped = tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap_or(Err(StoreError::Closed));
        // Only now: until the last commit, /ready answers "stopping".
        if let Some(http) = http {
            http.stop().await;
        }
        stopped
    }
}
