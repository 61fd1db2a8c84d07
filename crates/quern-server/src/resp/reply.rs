//! Replies, and their encoding in RESP2 or RESP3.
//!
//! Commands build a [`Reply`] without knowing the connection's protocol;
//! [`encode`] turns it into `redis-protocol` frames of the connection's
//! version. A map is a RESP3 map, or a flat field/value array in RESP2;
//! a null is `_` in RESP3, `$-1` or `*-1` in RESP2. No attribute is ever
//! sent: several clients lose their place in the stream on one.

use bytes::{Bytes, BytesMut};
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, FrameMap, VerbatimStringFormat};

/// The protocol a connection speaks (HELLO switches it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, every connection's start.
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// 2 or 3.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// A reply to one command.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status reply (`+…`).
    Status(&'static str),
    /// An error: its text starts with the error code (`ERR …`, `NOJOB …`).
    Error(String),
    /// An integer.
    Int(i64),
    /// A bulk (binary-safe) string.
    Bulk(Bytes),
    /// A long text: a verbatim string in RESP3 (as Redis sends INFO), a bulk
    /// string in RESP2.
    Text(String),
    /// A null: `$-1` in RESP2.
    Null,
    /// A null where an array was expected (QPULL timing out): `*-1` in RESP2.
    NullArray,
    /// An array.
    Array(Vec<Reply>),
    /// A map; in RESP2 a flat array of keys and values, in order.
    Map(Vec<(Reply, Reply)>),
    /// A set; an array in RESP2.
    Set(Vec<Reply>),
}

impl Reply {
    /// An error reply from its full text (code first).
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    /// A bulk string from a static or owned string.
    pub fn bulk(s: impl Into<Bytes>) -> Reply {
        Reply::Bulk(s.into())
    }

    /// A map whose keys are static names.
    pub fn fields(fields: Vec<(&'static str, Reply)>) -> Reply {
        Reply::Map(fields.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect())
    }

    /// A bulk string, or null.
    pub fn opt_bulk(value: Option<Bytes>) -> Reply {
        value.map_or(Reply::Null, Reply::Bulk)
    }
}

/// Appends `reply`, encoded for `protocol`, to `out`.
pub fn encode(out: &mut BytesMut, reply: Reply, protocol: Protocol) {
    // Encoding a frame we built ourselves cannot fail: its lengths are real.
    let result = match protocol {
        // redis-protocol's RESP2 frames have one null, `$-1`; a blocking
        // pull that times out answers `*-1`, as BLPOP does.
        Protocol::Resp2 if reply == Reply::NullArray => {
            out.extend_from_slice(b"*-1\r\n");
            Ok(5)
        }
        Protocol::Resp2 => redis_protocol::resp2::encode::extend_encode(out, &to_resp2(reply), false),
        Protocol::Resp3 => {
            redis_protocol::resp3::encode::complete::extend_encode(out, &to_resp3(reply), false)
        }
    };
    debug_assert!(result.is_ok(), "encoding failed: {result:?}");
}

fn error_text(text: String) -> Str {
    // An error is one line: a CR or LF would end it early and desynchronise
    // the client.
    let line = if text.contains(['\r', '\n']) {
        text.replace(['\r', '\n'], " ")
    } else {
        text
    };
    Str::from(line)
}

fn to_resp2(reply: Reply) -> Frame2 {
    match reply {
        Reply::Ok => Frame2::SimpleString(Bytes::from_static(b"OK")),
        Reply::Status(s) => Frame2::SimpleString(Bytes::from_static(s.as_bytes())),
        Reply::Error(e) => Frame2::Error(error_text(e)),
        Reply::Int(i) => Frame2::Integer(i),
        Reply::Bulk(b) => Frame2::BulkString(b),
        Reply::Text(t) => Frame2::BulkString(Bytes::from(t)),
        Reply::Null | Reply::NullArray => Frame2::Null,
        Reply::Array(items) | Reply::Set(items) => Frame2::Array(items.into_iter().map(to_resp2).collect()),
        Reply::Map(pairs) => Frame2::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_resp2(k), to_resp2(v)])
                .collect(),
        ),
    }
}

fn to_resp3(reply: Reply) -> Frame3 {
    match reply {
        Reply::Ok => Frame3::SimpleString {
            data: Bytes::from_static(b"OK"),
            attributes: None,
        },
        Reply::Status(s) => Frame3::SimpleString {
            data: Bytes::from_static(s.as_bytes()),
            attributes: None,
        },
        Reply::Error(e) => Frame3::SimpleError {
            data: error_text(e),
            attributes: None,
        },
        Reply::Int(i) => Frame3::Number {
            data: i,
            attributes: None,
        },
        Reply::Bulk(b) => Frame3::BlobString {
            data: b,
            attributes: None,
        },
        Reply::Text(t) => Frame3::VerbatimString {
            data: Bytes::from(t),
            format: VerbatimStringFormat::Text,
            attributes: None,
        },
        Reply::Null | Reply::NullArray => Frame3::Null,
        Reply::Array(items) => Frame3::Array {
            data: items.into_iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Set(items) => Frame3::Set {
            data: items.into_iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Map(pairs) => {
            let mut map = FrameMap::with_capacity(pairs.len());
            for (k, v) in pairs {
                map.insert(to_resp3(k), to_resp3(v));
            }
            Frame3::Map {
                data: map,
                attributes: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(reply: Reply, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(&mut out, reply, protocol);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn maps_flatten_in_resp2_and_keep_order_in_resp3() {
        let map = Reply::fields(vec![("b", Reply::Int(1)), ("a", Reply::Null)]);
        assert_eq!(
            enc(map.clone(), Protocol::Resp2),
            "*4\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n$-1\r\n"
        );
        assert_eq!(
            enc(map, Protocol::Resp3),
            "%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n_\r\n"
        );
    }

    #[test]
    fn nulls_errors_and_text() {
        assert_eq!(enc(Reply::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(Reply::NullArray, Protocol::Resp3), "_\r\n");
        assert_eq!(enc(Reply::error("ERR a\r\nb"), Protocol::Resp2), "-ERR a  b\r\n");
        assert_eq!(enc(Reply::Text("x".into()), Protocol::Resp3), "=5\r\ntxt:x\r\n");
        assert_eq!(enc(Reply::Text("x".into()), Protocol::Resp2), "$1\r\nx\r\n");
    }
}
