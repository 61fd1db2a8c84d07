//! Replies, and their encoding in RESP2 or RESP3.
//!
//! Commands build a [`Reply`] without knowing the connection's protocol;
//! [`encode`] writes it in the connection's version, its scalars through
//! `redis-protocol`'s encoder. A map is a RESP3 map, or a flat field/value
//! array in RESP2; a null is `_` in RESP3, `$-1` or `*-1` in RESP2. No
//! attribute is ever sent: several clients lose their place in the stream
//! on one.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BorrowedFrame as Frame2;
use redis_protocol::resp3::types::{BorrowedFrame as Frame3, VerbatimStringFormat};

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
    match protocol {
        // redis-protocol's RESP2 frames have one null, `$-1`; a blocking
        // pull that times out answers `*-1`, as BLPOP does.
        Protocol::Resp2 if reply == Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
        _ => encode_value(out, &reply, protocol),
    }
}

/// An aggregate is written as its header, then its elements one by one;
/// each scalar goes through redis-protocol's encoder as a frame that
/// borrows the reply's bytes. No tree of frames is built, so a reply costs
/// no allocation on its way out.
///
/// Bulk strings and integers, the bulk of every pull's reply, are written
/// here directly (the same bytes in both protocols): the crate's encoder
/// first works out a frame's length through floating-point logarithms,
/// then zero-fills the room and writes into it, which cost a pull about
/// 8% of its CPU. The tests hold both ways to the same bytes.
fn encode_value(out: &mut BytesMut, reply: &Reply, protocol: Protocol) {
    match (reply, protocol) {
        (Reply::Bulk(data), _) => {
            header(out, b'$', data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        (Reply::Int(i), _) => {
            out.extend_from_slice(b":");
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        (Reply::Array(items), _) | (Reply::Set(items), Protocol::Resp2) => {
            header(out, b'*', items.len());
            items.iter().for_each(|item| encode_value(out, item, protocol));
        }
        (Reply::Set(items), Protocol::Resp3) => {
            header(out, b'~', items.len());
            items.iter().for_each(|item| encode_value(out, item, protocol));
        }
        (Reply::Map(pairs), _) => {
            match protocol {
                Protocol::Resp2 => header(out, b'*', pairs.len() * 2),
                Protocol::Resp3 => header(out, b'%', pairs.len()),
            }
            for (key, value) in pairs {
                encode_value(out, key, protocol);
                encode_value(out, value, protocol);
            }
        }
        (scalar, Protocol::Resp2) => scalar_resp2(out, scalar),
        (scalar, Protocol::Resp3) => scalar_resp3(out, scalar),
    }
}

/// An aggregate's header: its type byte and length.
fn header(out: &mut BytesMut, kind: u8, len: usize) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn scalar_resp2(out: &mut BytesMut, reply: &Reply) {
    let line;
    let frame = match reply {
        Reply::Ok => Frame2::SimpleString(b"OK"),
        Reply::Status(s) => Frame2::SimpleString(s.as_bytes()),
        Reply::Error(e) => {
            line = error_line(e);
            Frame2::Error(&line)
        }
        Reply::Text(t) => Frame2::BulkString(t.as_bytes()),
        Reply::Null | Reply::NullArray => Frame2::Null,
        Reply::Int(_) | Reply::Bulk(_) | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => {
            unreachable!("written by encode_value")
        }
    };
    // Encoding a frame we built ourselves cannot fail: its lengths are real.
    let result = redis_protocol::resp2::encode::extend_encode_borrowed(out, &frame, false);
    debug_assert!(result.is_ok(), "encoding failed: {result:?}");
}

fn scalar_resp3(out: &mut BytesMut, reply: &Reply) {
    let line;
    let frame = match reply {
        Reply::Ok => Frame3::SimpleString {
            data: b"OK",
            attributes: None,
        },
        Reply::Status(s) => Frame3::SimpleString {
            data: s.as_bytes(),
            attributes: None,
        },
        Reply::Error(e) => {
            line = error_line(e);
            Frame3::SimpleError {
                data: &line,
                attributes: None,
            }
        }
        Reply::Text(t) => Frame3::VerbatimString {
            data: t.as_bytes(),
            format: VerbatimStringFormat::Text,
            attributes: None,
        },
        Reply::Null | Reply::NullArray => Frame3::Null,
        Reply::Int(_) | Reply::Bulk(_) | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => {
            unreachable!("written by encode_value")
        }
    };
    let result = redis_protocol::resp3::encode::complete::extend_encode_borrowed(out, &frame, false);
    debug_assert!(result.is_ok(), "encoding failed: {result:?}");
}

/// An error is one line: a CR or LF would end it early and desynchronise
/// the client.
fn error_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\r', '\n']) {
        Cow::Owned(text.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use redis_protocol::resp2::types::BytesFrame as Tree2;
    use redis_protocol::resp3::types::{BytesFrame as Tree3, FrameMap, FrameSet};

    use super::*;

    /// `reply` as a tree of redis-protocol's frames, which the crate then
    /// encodes whole: the oracle for `encode`.
    fn tree2(reply: &Reply) -> Tree2 {
        match reply {
            Reply::Ok => Tree2::SimpleString(Bytes::from_static(b"OK")),
            Reply::Status(s) => Tree2::SimpleString(Bytes::from_static(s.as_bytes())),
            Reply::Error(e) => Tree2::Error(error_line(e).into_owned().into()),
            Reply::Int(i) => Tree2::Integer(*i),
            Reply::Bulk(b) => Tree2::BulkString(b.clone()),
            Reply::Text(t) => Tree2::BulkString(Bytes::from(t.clone())),
            Reply::Null | Reply::NullArray => Tree2::Null,
            Reply::Array(items) | Reply::Set(items) => Tree2::Array(items.iter().map(tree2).collect()),
            Reply::Map(pairs) => Tree2::Array(pairs.iter().flat_map(|(k, v)| [tree2(k), tree2(v)]).collect()),
        }
    }

    fn tree3(reply: &Reply) -> Tree3 {
        let attributes = None;
        match reply {
            Reply::Ok => Tree3::SimpleString {
                data: Bytes::from_static(b"OK"),
                attributes,
            },
            Reply::Status(s) => Tree3::SimpleString {
                data: Bytes::from_static(s.as_bytes()),
                attributes,
            },
            Reply::Error(e) => Tree3::SimpleError {
                data: error_line(e).into_owned().into(),
                attributes,
            },
            Reply::Int(i) => Tree3::Number { data: *i, attributes },
            Reply::Bulk(b) => Tree3::BlobString {
                data: b.clone(),
                attributes,
            },
            Reply::Text(t) => Tree3::VerbatimString {
                data: Bytes::from(t.clone()),
                format: VerbatimStringFormat::Text,
                attributes,
            },
            Reply::Null | Reply::NullArray => Tree3::Null,
            Reply::Array(items) => Tree3::Array {
                data: items.iter().map(tree3).collect(),
                attributes,
            },
            Reply::Set(items) => Tree3::Set {
                data: items.iter().map(tree3).collect::<FrameSet<_>>(),
                attributes,
            },
            Reply::Map(pairs) => Tree3::Map {
                data: pairs
                    .iter()
                    .map(|(k, v)| (tree3(k), tree3(v)))
                    .collect::<FrameMap<_, _>>(),
                attributes,
            },
        }
    }

    /// Any reply a command could build: maps with distinct keys and sets
    /// of distinct members, as commands build them.
    fn any_reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            Just(Reply::Ok),
            Just(Reply::Status("QUEUED")),
            any::<String>().prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Int),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Reply::Bulk(Bytes::from(b))),
            any::<String>().prop_map(Reply::Text),
            Just(Reply::Null),
        ];
        leaf.prop_recursive(3, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Reply::Array),
                proptest::collection::vec(inner, 0..5).prop_map(|values| {
                    let keyed = values.into_iter().enumerate();
                    Reply::Map(keyed.map(|(i, v)| (Reply::bulk(format!("k{i}")), v)).collect())
                }),
                proptest::collection::btree_set(any::<i64>(), 0..5)
                    .prop_map(|members| Reply::Set(members.into_iter().map(Reply::Int).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn encodes_as_redis_protocol_encodes_a_whole_tree(reply in any_reply()) {
            let mut ours = BytesMut::new();
            let mut theirs = BytesMut::new();
            encode(&mut ours, reply.clone(), Protocol::Resp2);
            redis_protocol::resp2::encode::extend_encode(&mut theirs, &tree2(&reply), false).unwrap();
            prop_assert_eq!(&ours, &theirs);

            ours.clear();
            theirs.clear();
            encode(&mut ours, reply.clone(), Protocol::Resp3);
            redis_protocol::resp3::encode::complete::extend_encode(&mut theirs, &tree3(&reply), false)
                .unwrap();
            prop_assert_eq!(&ours, &theirs);
        }
    }

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
