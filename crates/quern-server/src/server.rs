//! The server: its shared state, start-up (open the store, rebuild the
//! engines), the accept loop and an orderly shutdown.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::shards::Shards;

/// Counters for INFO.
#[derive(Debug, Default)]
pub struct Stats {
    commands: AtomicU64,
}

impl Stats {
    /// Counts one command.
    pub fn count_command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands run since start.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }
}

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
    /// Counters.
    pub stats: Stats,
    /// Backups (BGSAVE).
    pub backups: Backups,
    /// Cancelled to stop the server (SIGTERM, SHUTDOWN).
    pub shutdown: CancellationToken,
    /// When it started.
    pub started: Instant,
    /// The address it listens on.
    pub addr: SocketAddr,
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
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(why) => write!(f, "invalid setting: {why}"),
            StartError::Store(e) => write!(f, "cannot open the store: {e}"),
            StartError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A server that has loaded its data and bound its port, not yet serving.
#[derive(Debug)]
pub struct Bound {
    server: Arc<Server>,
    listener: TcpListener,
    /// Jobs loaded from the store.
    pub jobs_loaded: u64,
}

impl Bound {
    /// The shared state (for the address, and to stop it).
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }
}

/// Opens the store, rebuilds every queue from it and binds the port.
pub async fn bind(config: Config) -> Result<Bound, StartError> {
    config.validate().map_err(|e| StartError::Config(e.to_string()))?;
    let store = Store::open(&StoreConfig {
        dir: config.dir.clone(),
        fsync: config.fsync,
        ..StoreConfig::default()
    })
    .map_err(StartError::Store)?;
    let ids = Arc::new(Ids::default());
    let waiters = Arc::new(Waiters::default());
    let shards = Arc::new(Shards::new(
        config.shards,
        ids.clone(),
        store.clone(),
        waiters.clone(),
    ));
    let jobs_loaded = restore(&store, &shards)?;

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
    });
    Ok(Bound {
        server,
        listener,
        jobs_loaded,
    })
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
        let Bound { server, listener, .. } = self;
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
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap_or(Err(StoreError::Closed))
    }
}
