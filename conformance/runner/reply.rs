//! A reply as the server sent it: decoded by `redis-protocol` with the
//! decoder of the connection's protocol, then turned into a [`Value`] that
//! also keeps what the decoder folds away, the kind of each null (`_`,
//! `$-1` or `*-1`).

use std::sync::OnceLock;

use redis_protocol::resp2::types::OwnedFrame as Frame2;
use redis_protocol::resp3::types::{OwnedFrame as Frame3, Resp3Frame, VerbatimStringFormat};

use crate::text::show;

/// One reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+…`
    Simple(Vec<u8>),
    /// `-…`
    Error(Vec<u8>),
    /// `:…`
    Int(i64),
    /// `$…`
    Bulk(Vec<u8>),
    /// `=…` (RESP3): format and text.
    Verbatim(String, Vec<u8>),
    /// A null, by its type byte: `_` (RESP3), `$` or `*` (RESP2).
    Null(u8),
    /// `*…`
    Array(Vec<Value>),
    /// `~…` (RESP3)
    Set(Vec<Value>),
    /// `%…` (RESP3), pairs in the order sent.
    Map(Vec<(Value, Value)>),
    /// Something Quern never sends (a double, a push, attributes…).
    Other(String),
}

/// Decodes the reply at the front of `buf`, in protocol `proto`: the value
/// and the bytes it took, or `None` until all of it has arrived.
pub fn decode(buf: &[u8], proto: u8) -> Result<Option<(Value, usize)>, String> {
    let mut walk = Walk { raw: buf, pos: 0 };
    let decoded = if proto == 2 {
        redis_protocol::resp2::decode::decode(buf).map(|f| f.map(|(f, n)| (from_resp2(f, &mut walk), n)))
    } else {
        redis_protocol::resp3::decode::complete::decode(buf)
            .map(|f| f.map(|(f, n)| (from_resp3(f, &mut walk), n)))
    };
    decoded.map_err(|e| {
        format!(
            "undecodable RESP{proto} reply ({e}): {}",
            show(&buf[..buf.len().min(200)])
        )
    })
}

/// Follows the frame through the raw bytes, to read what the decoded
/// frame no longer says: the type byte of each null, and the order of a
/// map's pairs.
struct Walk<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Walk<'_> {
    /// Reads a frame's first line, and the payload of a length-prefixed
    /// string: the type byte and the length the line gives, if any.
    fn header(&mut self) -> (u8, Option<usize>) {
        let start = self.pos;
        let kind = self.raw.get(start).copied().unwrap_or(0);
        let end = self.raw[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(self.raw.len(), |i| start + i + 2);
        self.pos = end;
        let len = std::str::from_utf8(self.raw.get(start + 1..end.saturating_sub(2)).unwrap_or_default())
            .ok()
            .and_then(|n| n.parse::<usize>().ok());
        if let (b'$' | b'=' | b'!', Some(len)) = (kind, len) {
            self.pos += len + 2;
        }
        (kind, len)
    }
}

/// Whether this version of redis-protocol hands a map's pairs back in
/// reverse (6.0 builds maps by popping pairs off the end): learnt once
/// from a map whose order is known.
fn maps_reversed() -> bool {
    static REVERSED: OnceLock<bool> = OnceLock::new();
    *REVERSED.get_or_init(|| {
        let probe = b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:2\r\n";
        match redis_protocol::resp3::decode::complete::decode(probe) {
            Ok(Some((Frame3::Map { data, .. }, _))) => data
                .keys()
                .next()
                .is_some_and(|k| matches!(k, Frame3::BlobString { data, .. } if data == b"b")),
            _ => false,
        }
    })
}

fn from_resp2(frame: Frame2, walk: &mut Walk<'_>) -> Value {
    let (kind, _) = walk.header();
    match frame {
        Frame2::SimpleString(s) => Value::Simple(s),
        Frame2::Error(e) => Value::Error(e.into_bytes()),
        Frame2::Integer(i) => Value::Int(i),
        Frame2::BulkString(b) => Value::Bulk(b),
        Frame2::Null => Value::Null(kind),
        Frame2::Array(items) => Value::Array(items.into_iter().map(|f| from_resp2(f, walk)).collect()),
    }
}

fn from_resp3(frame: Frame3, walk: &mut Walk<'_>) -> Value {
    if frame.attributes().is_some_and(|a| !a.is_empty()) {
        return Value::Other(format!("a frame with attributes: {frame:?}"));
    }
    let (kind, len) = walk.header();
    match frame {
        Frame3::SimpleString { data, .. } => Value::Simple(data),
        Frame3::SimpleError { data, .. } => Value::Error(data.into_bytes()),
        Frame3::Number { data, .. } => Value::Int(data),
        Frame3::BlobString { data, .. } => Value::Bulk(data),
        Frame3::VerbatimString { data, format, .. } => {
            let format = match format {
                VerbatimStringFormat::Text => "txt",
                VerbatimStringFormat::Markdown => "mkd",
            };
            Value::Verbatim(format.into(), data)
        }
        Frame3::Null => Value::Null(kind),
        Frame3::Array { data, .. } => Value::Array(data.into_iter().map(|f| from_resp3(f, walk)).collect()),
        // A set or map with a repeated member lost it in decoding.
        Frame3::Set { data, .. } if len != Some(data.len()) => {
            Value::Other(format!("a set of {len:?} members, some repeated: {data:?}"))
        }
        Frame3::Map { data, .. } if len != Some(data.len()) => {
            Value::Other(format!("a map of {len:?} pairs, some keys repeated: {data:?}"))
        }
        Frame3::Set { data, .. } => Value::Set(data.into_iter().map(|f| from_resp3(f, walk)).collect()),
        Frame3::Map { data, .. } => {
            let mut pairs: Vec<(Frame3, Frame3)> = data.into_iter().collect();
            if maps_reversed() {
                pairs.reverse();
            }
            Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| {
                        let k = from_resp3(k, walk);
                        (k, from_resp3(v, walk))
                    })
                    .collect(),
            )
        }
        other => Value::Other(format!("{other:?}")),
    }
}

impl std::fmt::Display for Value {
    /// The value in case-file notation, long strings shortened.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |f: &mut std::fmt::Formatter<'_>, open: &str, items: &[Value], close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        match self {
            Value::Simple(s) => write!(f, "+{}", String::from_utf8_lossy(s)),
            Value::Error(e) => write!(f, "-{}", String::from_utf8_lossy(e)),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bulk(b) => f.write_str(&show(b)),
            Value::Verbatim(format, b) => write!(f, "={format} {}", show(b)),
            Value::Null(b'_') => f.write_str("_"),
            Value::Null(kind) => write!(f, "{}-1", char::from(*kind)),
            Value::Array(items) => list(f, "[", items, "]"),
            Value::Set(items) => list(f, "~[", items, "]"),
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Other(what) => write!(f, "<{what}>"),
        }
    }
}

/// Checks the decoding against frames whose value is known: the order of
/// a map's pairs, and the kind of each null, which the decoder loses.
pub fn self_check() -> Result<(), String> {
    let bulk = |s: &str| Value::Bulk(s.as_bytes().to_vec());
    let table: [(&[u8], u8, Value); 3] = [
        (
            b"%3\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n_\r\n$1\r\nc\r\n=7\r\ntxt:abc\r\n",
            3,
            Value::Map(vec![
                (bulk("b"), Value::Int(1)),
                (bulk("a"), Value::Null(b'_')),
                (bulk("c"), Value::Verbatim("txt".into(), b"abc".to_vec())),
            ]),
        ),
        (
            b"*4\r\n$-1\r\n*-1\r\n$2\r\n\r\n\r\n*1\r\n$-1\r\n",
            2,
            Value::Array(vec![
                Value::Null(b'$'),
                Value::Null(b'*'),
                bulk("\r\n"),
                Value::Array(vec![Value::Null(b'$')]),
            ]),
        ),
        (
            b"~2\r\n+x\r\n_\r\n",
            3,
            Value::Set(vec![Value::Simple(b"x".to_vec()), Value::Null(b'_')]),
        ),
    ];
    for (wire, proto, want) in table {
        match decode(wire, proto)? {
            Some((got, used)) if got == want && used == wire.len() => {}
            other => return Err(format!("{} decoded as {other:?}", show(wire))),
        }
    }
    Ok(())
}
