//! The client side of RESP2: commands are encoded as arrays of bulk strings
//! into a reusable buffer, and replies are decoded from the front of the
//! read buffer, borrowing from it instead of copying.
//!
//! Only RESP2 is understood. The bench never sends HELLO, so a RESP3 type
//! on the wire means the stream is broken, and it is reported as such.

use std::fmt;

/// Longest bulk string or array a reply may claim. Bench replies are jobs
/// of a few KB; a larger claim is a corrupt stream, not a large reply.
pub const MAX_LEN: usize = 512 * 1024 * 1024;
/// Longest header or simple-string line. Without it, a server that never
/// sends CRLF would make the read buffer grow without end.
pub const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of arrays. The decoder recurses, so a hostile depth
/// would otherwise overflow the stack.
pub const MAX_DEPTH: usize = 32;

/// One decoded reply; strings borrow from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`
    Simple(&'a [u8]),
    /// `-ERR …`, the whole line after the `-`.
    Error(&'a [u8]),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(&'a [u8]),
    /// `$-1` or `*-1`: RESP2 has two spellings of nothing.
    Null,
    /// `*2\r\n…`, possibly nested.
    Array(Vec<Reply<'a>>),
}

/// The reply stream cannot be decoded; the connection is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Appends one command, as an array of bulk strings, to `buf`.
pub fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.push(b'*');
    push_decimal(buf, args.len() as u64);
    buf.extend_from_slice(b"\r\n");
    for arg in args {
        buf.push(b'$');
        push_decimal(buf, arg.len() as u64);
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Writes `n` in decimal into `out` and returns the digits: job ids are
/// formatted once per ack, and going through `fmt` would allocate.
pub fn decimal(n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    let mut n = n;
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &out[i..]
}

fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0; 20];
    buf.extend_from_slice(decimal(n, &mut digits));
}

/// Decodes the first reply in `buf`: `Ok(None)` while it is incomplete,
/// else the reply and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    let mut pos = 0;
    Ok(value(buf, &mut pos, 0)?.map(|reply| (reply, pos)))
}

fn value<'a>(buf: &'a [u8], pos: &mut usize, depth: usize) -> Result<Option<Reply<'a>>, ProtocolError> {
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(line) = line(buf, pos)? else {
        return Ok(None);
    };
    let reply = match kind {
        b'+' => Reply::Simple(line),
        b'-' => Reply::Error(line),
        b':' => Reply::Integer(integer(line)?),
        b'$' => {
            let Some(len) = length(line)? else {
                return Ok(Some(Reply::Null));
            };
            let end = *pos + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF".into()));
            }
            let bulk = &buf[*pos..end];
            *pos = end + 2;
            Reply::Bulk(bulk)
        }
        b'*' => {
            let Some(len) = length(line)? else {
                return Ok(Some(Reply::Null));
            };
            if depth >= MAX_DEPTH {
                return Err(ProtocolError(format!("arrays nested deeper than {MAX_DEPTH}")));
            }
            // Every element takes at least 3 bytes, so a claimed length is
            // trusted only as far as the bytes already received back it.
            let mut items = Vec::with_capacity(len.min((buf.len() - *pos) / 3));
            for _ in 0..len {
                match value(buf, pos, depth + 1)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            Reply::Array(items)
        }
        other => {
            return Err(ProtocolError(format!(
                "unexpected reply type byte {:?}",
                char::from(other)
            )))
        }
    };
    Ok(Some(reply))
}

/// The line starting at `pos`, without its CRLF; advances `pos` past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ProtocolError> {
    let rest = &buf[*pos..];
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        if rest.len() > MAX_LINE {
            return Err(ProtocolError(format!("line longer than {MAX_LINE} bytes")));
        }
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => {
            *pos += cr + 2;
            Ok(Some(&rest[..cr]))
        }
        Some(_) => Err(ProtocolError("CR not followed by LF".into())),
    }
}

fn integer(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError(format!("bad integer {:?}", String::from_utf8_lossy(line))))
}

/// A bulk or array length: `None` for -1 (null).
fn length(line: &[u8]) -> Result<Option<usize>, ProtocolError> {
    match integer(line)? {
        -1 => Ok(None),
        n if n < 0 || n as u64 > MAX_LEN as u64 => Err(ProtocolError(format!("bad length {n}"))),
        n => Ok(Some(n as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Reply<'_> {
        let (reply, used) = decode(input).expect("valid").expect("complete");
        assert_eq!(used, input.len(), "the reply uses the whole input");
        reply
    }

    #[test]
    fn encodes_an_array_of_bulk_strings() {
        let mut buf = Vec::new();
        encode(&mut buf, &[b"QPUSH", b"bench:0", b""]);
        assert_eq!(buf, b"*3\r\n$5\r\nQPUSH\r\n$7\r\nbench:0\r\n$0\r\n\r\n");
        // The buffer is appended to, so one write carries a whole pipeline.
        encode(&mut buf, &[b"PING"]);
        assert!(buf.ends_with(b"*1\r\n$4\r\nPING\r\n"));
    }

    #[test]
    fn formats_decimals() {
        let mut out = [0; 20];
        assert_eq!(decimal(0, &mut out), b"0");
        assert_eq!(decimal(9_007_199_254_740_991, &mut out), b"9007199254740991");
        assert_eq!(decimal(u64::MAX, &mut out), b"18446744073709551615");
    }

    #[test]
    fn decodes_each_type() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Simple(b"OK"));
        assert_eq!(whole(b"-ERR no\r\n"), Reply::Error(b"ERR no"));
        assert_eq!(whole(b":-12\r\n"), Reply::Integer(-12));
        assert_eq!(whole(b"$5\r\na\r\nbc\r\n"), Reply::Bulk(b"a\r\nbc"));
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(b""));
        assert_eq!(whole(b"$-1\r\n"), Reply::Null);
        assert_eq!(whole(b"*-1\r\n"), Reply::Null);
        assert_eq!(whole(b"*0\r\n"), Reply::Array(vec![]));
    }

    #[test]
    fn decodes_a_pull_reply_and_a_stream_reply() {
        let pull = b"*1\r\n*4\r\n$7\r\nbench:0\r\n:17\r\n$3\r\nabc\r\n:1\r\n";
        assert_eq!(
            whole(pull),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Bulk(b"bench:0"),
                Reply::Integer(17),
                Reply::Bulk(b"abc"),
                Reply::Integer(1),
            ])])
        );
        let stream = b"*1\r\n*2\r\n$1\r\nq\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\np\r\n$1\r\nx\r\n";
        assert_eq!(
            whole(stream),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Bulk(b"q"),
                Reply::Array(vec![Reply::Array(vec![
                    Reply::Bulk(b"1-0"),
                    Reply::Array(vec![Reply::Bulk(b"p"), Reply::Bulk(b"x")]),
                ])]),
            ])])
        );
    }

    #[test]
    fn decodes_replies_one_after_another() {
        let input = b":1\r\n+OK\r\n$-1\r\n";
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some((reply, used)) = decode(&input[pos..]).unwrap() {
            got.push(reply);
            pos += used;
        }
        assert_eq!(pos, input.len());
        assert_eq!(got, [Reply::Integer(1), Reply::Simple(b"OK"), Reply::Null]);
    }

    /// A reply cut anywhere is incomplete, never an error or a wrong reply,
    /// and the whole of it decodes once the rest arrives.
    #[test]
    fn a_reply_split_at_every_byte() {
        let input: &[u8] =
            b"*3\r\n*4\r\n$7\r\nbench:0\r\n:17\r\n$4\r\nab\r\n\r\n:1\r\n$-1\r\n*2\r\n-ERR x\r\n+OK\r\n";
        let expected = whole(input);
        for cut in 0..input.len() {
            assert_eq!(decode(&input[..cut]), Ok(None), "cut at {cut}");
        }
        // The same, replaying a read buffer that grows one byte at a time.
        let mut buf = Vec::new();
        for (i, &byte) in input.iter().enumerate() {
            buf.push(byte);
            let done = decode(&buf).unwrap();
            assert_eq!(done.is_some(), i == input.len() - 1, "after byte {i}");
        }
        assert_eq!(decode(&buf).unwrap(), Some((expected, input.len())));
    }

    #[test]
    fn rejects_broken_streams() {
        for bad in [
            &b"%1\r\n"[..],
            b"_\r\n",
            b"?\r\n",
            b":12a\r\n",
            b":\r\n",
            b"$-2\r\n",
            b"*-5\r\n",
            b"$3\r\nabcXY",
            b"+OK\rX",
            b"$99999999999\r\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn caps_lines_and_nesting() {
        let long = vec![b'a'; MAX_LINE + 2];
        let mut line = b"+".to_vec();
        line.extend_from_slice(&long);
        assert!(decode(&line).is_err());

        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(decode(&deep).is_err());
        let mut ok = b"*1\r\n".repeat(MAX_DEPTH);
        ok.extend_from_slice(b":1\r\n");
        assert!(decode(&ok).unwrap().is_some());
    }

    #[test]
    fn a_claimed_length_allocates_nothing_up_front() {
        // A huge claimed array with nothing behind it is just incomplete.
        assert_eq!(decode(b"*100000000\r\n"), Ok(None));
    }
}
