//! What each workload sends to each target, and how a pulled job is read
//! back from its reply so that it can be acknowledged.
//!
//! The three targets do the same job-queue work in their own idiom:
//!
//! | step          | quern               | redis-list                             | redis-stream                                  |
//! |---------------|---------------------|----------------------------------------|-----------------------------------------------|
//! | push          | `QPUSH q p`         | `LPUSH q p`                            | `XADD q * p p`                                |
//! | pull          | `QPULL q`           | `LMOVE q q:processing RIGHT LEFT`      | `XREADGROUP GROUP g c<n> COUNT 1 STREAMS q >` |
//! | blocking pull | `QPULL q BLOCK 100` | `BLMOVE q q:processing RIGHT LEFT 0.1` | `XREADGROUP … COUNT 1 BLOCK 100 STREAMS q >`  |
//! | ack           | `QACK q id`         | `LREM q:processing 1 p`                | `XACK q g id`                                 |
//! | flush         | `QDEL q`            | `DEL q q:processing`                   | `DEL q`                                       |
//!
//! The cycle workload stamps each payload with its push time, so that a
//! worker on another connection can tell how long the job took end to end.

use serde::Serialize;

use crate::resp::{self, Reply};

/// The server and the data structure the jobs live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Quern's Q-commands.
    Quern,
    /// A Redis list, with a processing list per queue (the reliable-queue
    /// pattern: LMOVE, then LREM once done).
    RedisList,
    /// A Redis stream with one consumer group.
    RedisStream,
}

impl Target {
    /// The name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Quern => "quern",
            Target::RedisList => "redis-list",
            Target::RedisStream => "redis-stream",
        }
    }
}

/// What the connections do during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Every connection pushes.
    Push,
    /// A preloaded queue is pulled (and acknowledged) by every connection.
    Pull,
    /// Producers push while workers pull and acknowledge.
    Cycle,
}

impl Workload {
    /// The name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Push => "push",
            Workload::Pull => "pull",
            Workload::Cycle => "cycle",
        }
    }
}

/// The consumer group of the redis-stream target.
pub const GROUP: &[u8] = b"g";
/// How long a blocking pull waits for a job, in ms (and in seconds for
/// BLMOVE): short enough that a stopping run is not held up by it.
pub const BLOCK_MS: &[u8] = b"100";
const BLOCK_SECONDS: &[u8] = b"0.1";

/// The keys of one bench queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// `{prefix}:{index}`: the queue, list or stream.
    pub name: Vec<u8>,
    /// `{name}:processing`: the redis-list target's in-flight list.
    pub processing: Vec<u8>,
}

impl Queue {
    /// The queue number `index` under `prefix`.
    pub fn new(prefix: &str, index: usize) -> Queue {
        let name = format!("{prefix}:{index}").into_bytes();
        let mut processing = name.clone();
        processing.extend_from_slice(b":processing");
        Queue { name, processing }
    }
}

/// Appends the commands that empty `queue` before a run.
pub fn flush(target: Target, buf: &mut Vec<u8>, queue: &Queue) {
    match target {
        Target::Quern => resp::encode(buf, &[b"QDEL", &queue.name]),
        Target::RedisList => resp::encode(buf, &[b"DEL", &queue.name, &queue.processing]),
        Target::RedisStream => resp::encode(buf, &[b"DEL", &queue.name]),
    }
}

/// Appends the command that creates the stream's consumer group, reading
/// from the start so that preloaded entries are delivered. Its
/// `-BUSYGROUP` error (the group exists) is expected and harmless.
pub fn create_group(buf: &mut Vec<u8>, queue: &Queue) {
    resp::encode(
        buf,
        &[b"XGROUP", b"CREATE", &queue.name, GROUP, b"0", b"MKSTREAM"],
    );
}

/// Appends the command that tells how many jobs wait in `queue`.
pub fn length(target: Target, buf: &mut Vec<u8>, queue: &Queue) {
    match target {
        Target::Quern => resp::encode(buf, &[b"QLEN", &queue.name]),
        Target::RedisList => resp::encode(buf, &[b"LLEN", &queue.name]),
        Target::RedisStream => resp::encode(buf, &[b"XLEN", &queue.name]),
    }
}

/// Appends one push of `payload`.
pub fn push(target: Target, buf: &mut Vec<u8>, queue: &Queue, payload: &[u8]) {
    match target {
        Target::Quern => resp::encode(buf, &[b"QPUSH", &queue.name, payload]),
        Target::RedisList => resp::encode(buf, &[b"LPUSH", &queue.name, payload]),
        Target::RedisStream => resp::encode(buf, &[b"XADD", &queue.name, b"*", b"p", payload]),
    }
}

/// Appends one pull of one job; `consumer` names the connection in the
/// stream's group, and `block` makes it wait for a job instead of
/// answering null at once.
pub fn pull(target: Target, buf: &mut Vec<u8>, queue: &Queue, consumer: &[u8], block: bool) {
    let q = &queue.name[..];
    match (target, block) {
        (Target::Quern, false) => resp::encode(buf, &[b"QPULL", q]),
        (Target::Quern, true) => resp::encode(buf, &[b"QPULL", q, b"BLOCK", BLOCK_MS]),
        (Target::RedisList, false) => resp::encode(buf, &[b"LMOVE", q, &queue.processing, b"RIGHT", b"LEFT"]),
        (Target::RedisList, true) => resp::encode(
            buf,
            &[b"BLMOVE", q, &queue.processing, b"RIGHT", b"LEFT", BLOCK_SECONDS],
        ),
        (Target::RedisStream, false) => resp::encode(
            buf,
            &[
                b"XREADGROUP",
                b"GROUP",
                GROUP,
                consumer,
                b"COUNT",
                b"1",
                b"STREAMS",
                q,
                b">",
            ],
        ),
        (Target::RedisStream, true) => resp::encode(
            buf,
            &[
                b"XREADGROUP",
                b"GROUP",
                GROUP,
                consumer,
                b"COUNT",
                b"1",
                b"BLOCK",
                BLOCK_MS,
                b"STREAMS",
                q,
                b">",
            ],
        ),
    }
}

/// A job as read from a pull's reply, borrowing from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulled<'a> {
    /// What the ack names the job by.
    pub id: JobId<'a>,
    /// The job's payload.
    pub payload: &'a [u8],
}

/// How a target names a pulled job when acknowledging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobId<'a> {
    /// Quern's integer id.
    Number(u64),
    /// A stream entry id such as `1700000000000-0`.
    Text(&'a [u8]),
    /// A list element has no id: LREM names it by its payload.
    Payload,
}

/// Reads the job out of a pull's (non-error) reply: `Ok(None)` when the
/// queue had none, `Err` when the reply has a shape the target never sends.
pub fn pulled<'a>(target: Target, reply: &Reply<'a>) -> Result<Option<Pulled<'a>>, String> {
    let shape = || format!("unexpected {} pull reply: {reply:?}", target.name());
    match (target, reply) {
        (_, Reply::Null) => Ok(None),
        (Target::Quern, Reply::Array(jobs)) => {
            let Some(job) = jobs.first() else {
                return Ok(None);
            };
            let Reply::Array(fields) = job else {
                return Err(shape());
            };
            let id = match fields.get(1) {
                Some(Reply::Integer(id)) if *id > 0 => *id as u64,
                Some(Reply::Bulk(text)) => std::str::from_utf8(text)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(shape)?,
                _ => return Err(shape()),
            };
            let Some(Reply::Bulk(payload)) = fields.get(2) else {
                return Err(shape());
            };
            Ok(Some(Pulled {
                id: JobId::Number(id),
                payload,
            }))
        }
        (Target::RedisList, Reply::Bulk(payload)) => Ok(Some(Pulled {
            id: JobId::Payload,
            payload,
        })),
        (Target::RedisStream, Reply::Array(streams)) => {
            // [[stream, [[entry-id, [field, value, …]], …]]]
            let Some(Reply::Array(stream)) = streams.first() else {
                return Ok(None);
            };
            let Some(Reply::Array(entries)) = stream.get(1) else {
                return Err(shape());
            };
            let Some(Reply::Array(entry)) = entries.first() else {
                return Ok(None);
            };
            let Some(Reply::Bulk(id)) = entry.first() else {
                return Err(shape());
            };
            let payload = match entry.get(1) {
                Some(Reply::Array(fields)) => match fields.get(1) {
                    Some(Reply::Bulk(payload)) => *payload,
                    _ => return Err(shape()),
                },
                // An entry deleted while pending comes back without fields.
                Some(Reply::Null) => &[],
                _ => return Err(shape()),
            };
            Ok(Some(Pulled {
                id: JobId::Text(id),
                payload,
            }))
        }
        _ => Err(shape()),
    }
}

/// Appends the acknowledgement of a job that `pulled` read.
pub fn ack(target: Target, buf: &mut Vec<u8>, queue: &Queue, job: &Pulled<'_>) {
    let mut digits = [0; 20];
    let id: &[u8] = match job.id {
        JobId::Number(n) => resp::decimal(n, &mut digits),
        JobId::Text(text) => text,
        JobId::Payload => job.payload,
    };
    match target {
        Target::Quern => resp::encode(buf, &[b"QACK", &queue.name, id]),
        Target::RedisList => resp::encode(buf, &[b"LREM", &queue.processing, b"1", id]),
        Target::RedisStream => resp::encode(buf, &[b"XACK", &queue.name, GROUP, id]),
    }
}

/// Bytes of the push-time stamp at the start of a cycle payload.
pub const STAMP_LEN: usize = 16;
/// What fills a payload after its stamp (or all of it outside cycle).
const FILL: u8 = b'x';

/// A payload of `size` bytes with no stamp.
pub fn plain_payload(size: usize) -> Vec<u8> {
    vec![FILL; size]
}

/// Writes `nanos` (time since the run's start) as 16 lowercase hex digits
/// over the start of `payload`, which must be at least [`STAMP_LEN`] long.
/// Hex keeps it fixed-width and cheap both ways.
pub fn stamp(payload: &mut [u8], nanos: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in payload[..STAMP_LEN].iter_mut().enumerate() {
        let shift = 4 * (STAMP_LEN - 1 - i);
        *byte = HEX[((nanos >> shift) & 0xf) as usize];
    }
}

/// The push time stamped on `payload`, if it has a valid stamp.
pub fn read_stamp(payload: &[u8]) -> Option<u64> {
    let digits = payload.get(..STAMP_LEN)?;
    let mut nanos = 0u64;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        nanos = nanos << 4 | u64::from(nibble);
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(build: impl FnOnce(&mut Vec<u8>)) -> Vec<Vec<u8>> {
        let mut buf = Vec::new();
        build(&mut buf);
        let (reply, used) = resp::decode(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        let Reply::Array(args) = reply else {
            panic!("not an array")
        };
        args.into_iter()
            .map(|a| match a {
                Reply::Bulk(b) => b.to_vec(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect()
    }

    fn words(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn commands_per_target() {
        let q = Queue::new("bench", 3);
        assert_eq!(q.name, b"bench:3");
        assert_eq!(q.processing, b"bench:3:processing");

        let push = |t| one(|b| push(t, b, &q, b"P"));
        assert_eq!(push(Target::Quern), words("QPUSH bench:3 P"));
        assert_eq!(push(Target::RedisList), words("LPUSH bench:3 P"));
        assert_eq!(push(Target::RedisStream), words("XADD bench:3 * p P"));

        let pull = |t, block| one(|b| pull(t, b, &q, b"c7", block));
        assert_eq!(pull(Target::Quern, false), words("QPULL bench:3"));
        assert_eq!(pull(Target::Quern, true), words("QPULL bench:3 BLOCK 100"));
        assert_eq!(
            pull(Target::RedisList, false),
            words("LMOVE bench:3 bench:3:processing RIGHT LEFT")
        );
        assert_eq!(
            pull(Target::RedisList, true),
            words("BLMOVE bench:3 bench:3:processing RIGHT LEFT 0.1")
        );
        assert_eq!(
            pull(Target::RedisStream, false),
            words("XREADGROUP GROUP g c7 COUNT 1 STREAMS bench:3 >")
        );
        assert_eq!(
            pull(Target::RedisStream, true),
            words("XREADGROUP GROUP g c7 COUNT 1 BLOCK 100 STREAMS bench:3 >")
        );

        let job = |id| Pulled { id, payload: b"P" };
        let ack = |t, id| one(|b| ack(t, b, &q, &job(id)));
        assert_eq!(ack(Target::Quern, JobId::Number(42)), words("QACK bench:3 42"));
        assert_eq!(
            ack(Target::RedisList, JobId::Payload),
            words("LREM bench:3:processing 1 P")
        );
        assert_eq!(
            ack(Target::RedisStream, JobId::Text(b"5-1")),
            words("XACK bench:3 g 5-1")
        );

        assert_eq!(one(|b| flush(Target::Quern, b, &q)), words("QDEL bench:3"));
        assert_eq!(
            one(|b| flush(Target::RedisList, b, &q)),
            words("DEL bench:3 bench:3:processing")
        );
        assert_eq!(
            one(|b| create_group(b, &q)),
            words("XGROUP CREATE bench:3 g 0 MKSTREAM")
        );
    }

    fn decoded(bytes: &[u8]) -> Reply<'_> {
        resp::decode(bytes).unwrap().unwrap().0
    }

    #[test]
    fn reads_pulled_jobs() {
        let quern = decoded(b"*1\r\n*4\r\n$1\r\nq\r\n:17\r\n$3\r\nabc\r\n:1\r\n");
        assert_eq!(
            pulled(Target::Quern, &quern),
            Ok(Some(Pulled {
                id: JobId::Number(17),
                payload: b"abc"
            }))
        );
        assert_eq!(pulled(Target::Quern, &Reply::Null), Ok(None));
        assert_eq!(pulled(Target::Quern, &Reply::Array(vec![])), Ok(None));
        assert!(pulled(Target::Quern, &Reply::Integer(1)).is_err());

        assert_eq!(
            pulled(Target::RedisList, &Reply::Bulk(b"abc")),
            Ok(Some(Pulled {
                id: JobId::Payload,
                payload: b"abc"
            }))
        );
        assert_eq!(pulled(Target::RedisList, &Reply::Null), Ok(None));

        let stream =
            decoded(b"*1\r\n*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\np\r\n$3\r\nabc\r\n");
        assert_eq!(
            pulled(Target::RedisStream, &stream),
            Ok(Some(Pulled {
                id: JobId::Text(b"1-0"),
                payload: b"abc"
            }))
        );
        assert_eq!(pulled(Target::RedisStream, &Reply::Null), Ok(None));
        let none = decoded(b"*1\r\n*2\r\n$1\r\nq\r\n*0\r\n");
        assert_eq!(pulled(Target::RedisStream, &none), Ok(None));
    }

    #[test]
    fn stamps_round_trip() {
        for nanos in [0, 1, 0xabc, 5_000_000_000, u64::MAX] {
            let mut payload = plain_payload(100);
            stamp(&mut payload, nanos);
            assert_eq!(read_stamp(&payload), Some(nanos));
            assert!(
                payload[STAMP_LEN..].iter().all(|&b| b == FILL),
                "the padding is kept"
            );
        }
        let mut exact = plain_payload(STAMP_LEN);
        stamp(&mut exact, 0x0123_4567_89ab_cdef);
        assert_eq!(exact, b"0123456789abcdef");
        assert_eq!(read_stamp(b"0123456789ABCDEF"), Some(0x0123_4567_89ab_cdef));
    }

    #[test]
    fn rejects_bad_stamps() {
        assert_eq!(read_stamp(b"0123"), None, "too short");
        assert_eq!(read_stamp(&plain_payload(100)), None, "no stamp");
        assert_eq!(read_stamp(b"0123456789abcdeg"), None);
    }
}
