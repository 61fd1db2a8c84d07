//! The connected clients, as CLIENT LIST, CLIENT KILL and INFO see them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

/// What other connections may see of a client, and its kill switch.
#[derive(Debug)]
pub struct ClientHandle {
    /// CLIENT ID: unique for the server's run.
    pub id: u64,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Our address on that connection.
    pub laddr: SocketAddr,
    /// When it connected.
    pub connected: Instant,
    /// Set by CLIENT KILL or shutdown; the connection closes.
    pub kill: CancellationToken,
    names: Mutex<Names>,
    /// ms since `connected` of the last command.
    last_active_ms: AtomicU64,
    /// RESP version (2 or 3).
    resp: AtomicU8,
    /// Inside a blocking pull.
    blocked: AtomicBool,
}

#[derive(Clone, Debug, Default)]
struct Names {
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    last_command: &'static str,
}

impl ClientHandle {
    /// CLIENT SETNAME (empty clears it).
    pub fn set_name(&self, name: Option<Bytes>) {
        self.names().name = name.filter(|n| !n.is_empty());
    }

    /// CLIENT GETNAME.
    pub fn name(&self) -> Option<Bytes> {
        self.names().name.clone()
    }

    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub fn set_lib(&self, name: Option<Bytes>, version: Option<Bytes>) {
        let mut names = self.names();
        if name.is_some() {
            names.lib_name = name;
        }
        if version.is_some() {
            names.lib_ver = version;
        }
    }

    /// Records a command, received at `now`, for CLIENT LIST's `cmd` and
    /// `idle`.
    pub fn touch(&self, command: &'static str, now: Instant) {
        self.names().last_command = command;
        let ms = now.saturating_duration_since(self.connected).as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// Records the protocol version after HELLO.
    pub fn set_resp(&self, version: u8) {
        self.resp.store(version, Ordering::Relaxed);
    }

    /// Marks the client as inside (or out of) a blocking pull.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The client's line in CLIENT LIST / CLIENT INFO, in Redis's format.
    pub fn info_line(&self) -> String {
        let names = self.names().clone();
        let age = self.connected.elapsed();
        let idle_ms = (age.as_millis() as u64).saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let flags = if self.blocked.load(Ordering::Relaxed) {
            "b"
        } else {
            "N"
        };
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 \
             multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 \
             tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            text(&names.name),
            age.as_secs(),
            idle_ms / 1000,
            flags,
            if names.last_command.is_empty() {
                "NULL"
            } else {
                names.last_command
            },
            self.resp.load(Ordering::Relaxed),
            text(&names.lib_name),
            text(&names.lib_ver),
        )
    }
}

/// Every connected client.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    connected: DashMap<u64, Arc<ClientHandle>>,
    /// Connections accepted since start.
    pub total_received: AtomicU64,
    /// Connections refused by maxclients.
    pub rejected: AtomicU64,
}

impl Clients {
    /// Registers a new connection.
    pub fn add(&self, addr: SocketAddr, laddr: SocketAddr, kill: CancellationToken) -> Arc<ClientHandle> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.total_received.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            connected: Instant::now(),
            kill,
            names: Mutex::new(Names::default()),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            blocked: AtomicBool::new(false),
        });
        self.connected.insert(id, handle.clone());
        handle
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        self.connected.remove(&id);
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.connected.len()
    }

    /// True when none is connected.
    pub fn is_empty(&self) -> bool {
        self.connected.is_empty()
    }

    /// Every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self.connected.iter().map(|e| e.value().clone()).collect();
        all.sort_by_key(|c| c.id);
        all
    }
}
