//! One TCP connection to the server, with its write buffer (a whole
//! pipeline goes out in one write) and its read buffer (replies are
//! decoded in place, in the order their requests were sent).

use std::io;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::{self, ProtocolError, Reply};
use crate::Error;

/// How much room a read asks for: enough for hundreds of small replies,
/// so a pipelined connection drains its socket in one call.
const READ_CHUNK: usize = 64 * 1024;

/// A connection and its buffers.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet decoded.
    rbuf: BytesMut,
    /// Commands encoded and not yet written.
    pub wbuf: Vec<u8>,
}

impl Conn {
    /// Connects with Nagle's algorithm off: requests are already batched
    /// per write, and delaying them would only add latency.
    pub async fn connect(host: &str, port: u16) -> Result<Conn, Error> {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| Error::Setup(format!("cannot connect to {host}:{port}: {e}")))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(READ_CHUNK),
        })
    }

    /// Writes whatever was encoded into `wbuf`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Waits for at least one reply, then hands every complete reply
    /// received so far to `each`, with the time they were read and the
    /// write buffer (for follow-up commands such as acks). Returns how
    /// many replies were handled.
    pub async fn replies<F>(&mut self, mut each: F) -> Result<usize, Error>
    where
        F: FnMut(Reply<'_>, Instant, &mut Vec<u8>) -> Result<(), Error>,
    {
        let mut now = Instant::now();
        loop {
            let mut used = 0;
            let mut handled = 0;
            while let Some((reply, len)) = resp::decode(&self.rbuf[used..])? {
                used += len;
                handled += 1;
                each(reply, now, &mut self.wbuf)?;
            }
            self.rbuf.advance(used);
            if handled > 0 {
                return Ok(handled);
            }
            self.rbuf.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                )));
            }
            now = Instant::now();
        }
    }

    /// Sends one command and maps its reply with `f`: for setup and
    /// checks, where the reply must outlive the read buffer's borrow.
    pub async fn command<T>(&mut self, args: &[&[u8]], f: impl FnOnce(Reply<'_>) -> T) -> Result<T, Error> {
        resp::encode(&mut self.wbuf, args);
        self.call(f).await
    }

    /// Writes what `wbuf` holds (exactly one command) and maps its reply.
    pub async fn call<T>(&mut self, f: impl FnOnce(Reply<'_>) -> T) -> Result<T, Error> {
        self.flush().await?;
        let mut f = Some(f);
        let mut out = None;
        self.replies(|reply, _, _| {
            match f.take() {
                Some(f) => out = Some(f(reply)),
                None => return Err(ProtocolError("more replies than commands".into()).into()),
            }
            Ok(())
        })
        .await?;
        out.ok_or_else(|| ProtocolError("no reply".into()).into())
    }
}
