//! One client connection: read requests, run them in order, write the
//! replies.
//!
//! Pipelining is the normal case: every request already read is run
//! before anything is written, and the replies go out in one write. A
//! write command's reply waits for the store's commit (with `fsync
//! always`), so one commit covers the whole pipeline, and the commit of
//! other connections' writes too. Replies are written only once every
//! change they report is committed. The payloads of consecutive pulls are
//! read from the store together, before the next other command runs.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quern_engine::Pulled;
use quern_store::Ticket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::blocking::{BlockedPull, PullRequest, Registered};
use crate::clients::ClientHandle;
use crate::commands::{execute, jobs_replies, jobs_reply, reads_payloads_later, Ctx, Outcome, Session};
use crate::config::OUTPUT_FLUSH_BYTES;
use crate::resp::{encode, Protocol, Reply, RequestReader};
use crate::server::Server;
use crate::stats::Tally;

/// Bytes read from the socket at a time, at least.
const READ_CHUNK: usize = 16 << 10;

/// Jobs of pipelined pulls whose payloads are read together, at most.
const PULLED_READ_TOGETHER: usize = 64;

/// Replies waiting to be written, and the commit they wait for.
struct Output {
    buf: BytesMut,
    /// The latest store ticket a buffered reply depends on.
    ticket: Option<Ticket>,
    /// Pulls whose replies come next, waiting to have their payloads read
    /// together: a pipeline of pulls opens one read transaction.
    pulls: Vec<(Bytes, Vec<Pulled>, Protocol)>,
    /// Jobs in `pulls`.
    pulled: usize,
}

impl Output {
    fn push(&mut self, server: &Server, reply: Reply, protocol: Protocol) {
        self.write_pulls(server);
        encode(&mut self.buf, reply, protocol);
    }

    fn push_jobs(&mut self, server: &Server, queue: Bytes, jobs: Vec<Pulled>, protocol: Protocol) {
        self.pulled += jobs.len();
        self.pulls.push((queue, jobs, protocol));
        if self.pulled >= PULLED_READ_TOGETHER {
            self.write_pulls(server);
        }
    }

    /// Reads the payloads of the pulls waiting, and writes their replies.
    fn write_pulls(&mut self, server: &Server) {
        if self.pulls.is_empty() {
            return;
        }
        let pulls = self.pulls.iter().map(|(queue, jobs, _)| (queue, jobs.as_slice()));
        let replies = jobs_replies(server, pulls);
        for ((_, _, protocol), reply) in self.pulls.drain(..).zip(replies) {
            encode(&mut self.buf, reply, protocol);
        }
        self.pulled = 0;
    }

    fn after(&mut self, ticket: Ticket) {
        self.ticket = Some(self.ticket.map_or(ticket, |t| t.max(ticket)));
    }

    /// Waits for the commit, then writes. An error means the replies must
    /// not be sent (the store failed) or the client is gone. The runs of
    /// the commands replied to are counted first, so that a client that
    /// has a reply sees its command in INFO and the metrics.
    async fn flush(
        &mut self,
        server: &Server,
        socket: &mut OwnedWriteHalf,
        tally: &mut Tally,
    ) -> std::io::Result<()> {
        self.write_pulls(server);
        server.stats.flush(tally);
        if let Some(ticket) = self.ticket.take() {
            server
                .store
                .committed(ticket)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        if !self.buf.is_empty() {
            socket.write_all(&self.buf).await?;
            server.stats.wrote(self.buf.len());
            self.buf.clear();
        }
        Ok(())
    }
}

/// Serves one connection until it closes, is killed, or the server stops.
/// `handle` is the client's registration, made in accept order.
pub async fn serve(server: Arc<Server>, stream: TcpStream, handle: Arc<ClientHandle>) {
    let _ = stream.set_nodelay(true);
    let id = handle.id;
    let mut session = Session {
        protocol: Protocol::Resp2,
        authed: server.settings.requirepass().is_none(),
        handle,
        tally: Tally::default(),
    };
    let (mut socket_in, mut socket_out) = stream.into_split();
    let _ = run(&server, &mut socket_in, &mut socket_out, &mut session).await;
    // Runs whose replies could not be written count too.
    server.stats.flush(&mut session.tally);
    // Unlisted before the socket closes: a client that saw the close finds
    // the connection gone from CLIENT LIST and INFO.
    server.clients.remove(id);
    drop((socket_in, socket_out));
}

async fn run(
    server: &Arc<Server>,
    socket_in: &mut OwnedReadHalf,
    socket_out: &mut OwnedWriteHalf,
    session: &mut Session,
) -> std::io::Result<()> {
    let mut reader = RequestReader::default();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Output {
        buf: BytesMut::with_capacity(READ_CHUNK),
        ticket: None,
        pulls: Vec::new(),
        pulled: 0,
    };
    let kill = session.handle.kill.clone();
    loop {
        // Run every complete request in the buffer.
        loop {
            let limits = server.settings.request_limits();
            let argv = match reader.next(&mut input, &limits) {
                Ok(Some(argv)) => argv,
                Ok(None) => break,
                Err(e) => {
                    out.push(server, Reply::error(format!("ERR {}", e.0)), session.protocol);
                    out.flush(server, socket_out, &mut session.tally).await?;
                    return Ok(());
                }
            };
            if !reads_payloads_later(&argv[0]) {
                out.write_pulls(server);
            }
            let outcome = execute(&mut Ctx { server, session }, argv);
            match outcome {
                Outcome::Reply(reply) => out.push(server, reply, session.protocol),
                Outcome::Jobs(queue, jobs) => out.push_jobs(server, queue, jobs, session.protocol),
                Outcome::Durable(reply, ticket) => {
                    out.push(server, reply, session.protocol);
                    out.after(ticket);
                }
                Outcome::Block(request) => {
                    // Earlier replies go out before the wait.
                    out.flush(server, socket_out, &mut session.tally).await?;
                    let reply = block(server, session, request, socket_in, &mut input).await;
                    match reply {
                        Some(reply) => out.push(server, reply, session.protocol),
                        None => return Ok(()),
                    }
                }
                Outcome::Close(reply) => {
                    out.push(server, reply, session.protocol);
                    out.flush(server, socket_out, &mut session.tally).await?;
                    return Ok(());
                }
                Outcome::Shutdown => {
                    out.flush(server, socket_out, &mut session.tally).await?;
                    tracing::info!(
                        client = session.handle.id,
                        "stopping: SHUTDOWN; finishing in-flight work"
                    );
                    server.shutdown.cancel();
                    return Ok(());
                }
            }
            if out.buf.len() >= OUTPUT_FLUSH_BYTES {
                out.flush(server, socket_out, &mut session.tally).await?;
            }
        }
        out.flush(server, socket_out, &mut session.tally).await?;
        input.reserve(READ_CHUNK);
        tokio::select! {
            // Requests already read were all run above: stopping here
            // leaves nothing half done.
            _ = kill.cancelled() => return Ok(()),
            read = socket_in.read_buf(&mut input) => {
                match read? {
                    0 => return Ok(()),
                    n => server.stats.read(n),
                }
            }
        }
    }
}

/// Waits for a blocked pull to be served, time out, or end with the
/// connection. Returns the reply, or `None` to close the connection.
async fn block(
    server: &Arc<Server>,
    session: &Session,
    request: PullRequest,
    socket_in: &mut OwnedReadHalf,
    input: &mut BytesMut,
) -> Option<Reply> {
    let reply = |queue, jobs: Vec<_>| {
        jobs_reply(server, &queue, &jobs).unwrap_or_else(|e| Reply::Error(e.to_string()))
    };
    let mut pull = match BlockedPull::register(&server.shards, &server.waiters, &request) {
        Registered::Served(queue, jobs) => return Some(reply(queue, jobs)),
        Registered::Waiting(pull) => pull,
    };
    session.handle.set_blocked(true);
    let timeout = async {
        match request.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let kill = session.handle.kill.clone();
    let max_input = server.settings.request_limits().max_request;
    let outcome = loop {
        tokio::select! {
            // In this order: a client that is gone must not be handed jobs,
            // so its hang-up wins over a hand-off that arrived with it.
            biased;
            // Dropping `pull` puts back anything handed over meanwhile.
            _ = kill.cancelled() => break None,
            // Watch the socket to notice a client that hangs up; what it
            // sends meanwhile waits in the buffer, up to one request's worth.
            read = socket_in.read_buf(input), if input.len() < max_input => match read {
                Ok(0) | Err(_) => break None,
                Ok(n) => server.stats.read(n),
            },
            served = pull.served() => break Some(served),
            // Timed out; a hand-off that raced with the timer still counts.
            _ = &mut timeout => break Some(pull.cancel()),
        }
    };
    session.handle.set_blocked(false);
    let delivery = match outcome {
        None => return None,
        Some(None) => return Some(Reply::NullArray),
        Some(Some(delivery)) => delivery,
    };
    // The hang-up may have reached us just after the hand-off: look once
    // more before the jobs go to a socket nobody reads.
    match socket_in.try_read_buf(input) {
        Ok(0) => {
            server.shards.apply(&delivery.queue, |engine, now| {
                engine.release(&delivery.queue, &delivery.jobs, now)
            });
            return None;
        }
        Ok(n) => server.stats.read(n),
        Err(_) => {}
    }
    Some(reply(delivery.queue, delivery.jobs))
}
