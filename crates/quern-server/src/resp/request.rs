//! Reading requests: RESP arrays of bulk strings, and inline commands.
//!
//! A request is read by a guard that trusts a client no further than
//! what has arrived: it reads each header once and remembers how far it
//! got (a large frame arriving in many reads costs linear time), accepts
//! only the shape a command has (one array of bulk strings, so nothing
//! nests and nothing recurses), and checks every claimed length against
//! the limits before waiting for the bytes. Nothing is ever allocated from
//! a length a client merely claims: the buffer only grows by what actually
//! arrives. Having validated the frame, the guard knows where every
//! argument is, so the arguments are slices of the frame itself: the
//! bytes are neither parsed a second time nor copied.

use bytes::{Bytes, BytesMut};

/// The longest length header we read: `$` or `*`, 20 digits, CRLF.
const MAX_HEADER: usize = 24;

/// Size limits on one request. Every one is named, bounded and documented
/// in docs/configuration.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest bulk string (so the largest payload a request can carry).
    pub max_bulk: usize,
    /// Most arguments in one request.
    pub max_args: usize,
    /// Longest request in bytes, all arguments together.
    pub max_request: usize,
    /// Longest inline command line.
    pub max_inline: usize,
}

/// A request that cannot be read. Its text is the error reply; the
/// connection is closed after sending it, since the stream can no longer
/// be trusted to be at a frame boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Where the guard is inside the frame at the front of the buffer.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Bytes of the frame validated so far.
    scanned: usize,
    /// Arguments the frame declares (`None` before its header is read).
    args: Option<usize>,
    /// Where each argument validated so far lies in the frame: its start
    /// and length. Kept between requests for its allocation.
    found: Vec<(usize, usize)>,
}

/// Splits a connection's input into requests.
#[derive(Debug, Default)]
pub struct RequestReader {
    progress: Progress,
}

impl RequestReader {
    /// The next complete request at the front of `buf`, consumed from it;
    /// `Ok(None)` when more bytes are needed. Empty requests (`*0`, a blank
    /// inline line) are skipped, as Redis does.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        limits: &RequestLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                match inline(buf, limits)? {
                    Some(args) if args.is_empty() => continue,
                    other => return Ok(other),
                }
            }
            if !self.scan(buf, limits)? {
                return Ok(None);
            }
            let frame = buf.split_to(self.progress.scanned).freeze();
            let args = self
                .progress
                .found
                .iter()
                .map(|&(start, len)| frame.slice(start..start + len))
                .collect::<Vec<_>>();
            self.progress.scanned = 0;
            self.progress.args = None;
            self.progress.found.clear();
            if args.is_empty() {
                // `*0` and `*-1`: nothing to run.
                continue;
            }
            return Ok(Some(args));
        }
    }

    /// Validates the frame at the front of `buf` as far as it has arrived;
    /// true once the whole frame is there.
    fn scan(&mut self, buf: &BytesMut, limits: &RequestLimits) -> Result<bool, ProtocolError> {
        let p = &mut self.progress;
        if p.args.is_none() {
            p.found.clear();
        }
        let args = match p.args {
            Some(n) => n,
            None => {
                let Some((n, used)) = header(buf, 0)? else {
                    return Ok(false);
                };
                if n > limits.max_args as i64 {
                    return Err(ProtocolError(format!(
                        "Protocol error: invalid multibulk length ({n} arguments; the limit is {})",
                        limits.max_args
                    )));
                }
                p.scanned = used;
                // `*-1` and `*0` are empty requests.
                let n = n.max(0) as usize;
                p.args = Some(n);
                n
            }
        };
        while p.found.len() < args {
            let at = p.scanned;
            let Some(&kind) = buf.get(at) else {
                return Ok(false);
            };
            if kind != b'$' {
                return Err(ProtocolError(format!(
                    "Protocol error: expected '$', got '{}'",
                    char::from(kind).escape_default()
                )));
            }
            let Some((len, used)) = header(buf, at)? else {
                return Ok(false);
            };
            if len < 0 || len as u64 > limits.max_bulk as u64 {
                return Err(ProtocolError(format!(
                    "Protocol error: invalid bulk length ({len}; the limit is {} bytes)",
                    limits.max_bulk
                )));
            }
            let end = at + used + len as usize + 2;
            if end > limits.max_request {
                return Err(ProtocolError(format!(
                    "Protocol error: request larger than {} bytes",
                    limits.max_request
                )));
            }
            if buf.len() < end {
                return Ok(false);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err(ProtocolError(
                    "Protocol error: bulk string not followed by CRLF".into(),
                ));
            }
            p.found.push((at + used, len as usize));
            p.scanned = end;
        }
        Ok(true)
    }
}

/// Parses the length header (`*n\r\n` or `$n\r\n`) at `at`: the number and
/// the header's length, or `None` until its CRLF arrives.
fn header(buf: &[u8], at: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let window = &buf[at..buf.len().min(at + MAX_HEADER)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if window.len() == MAX_HEADER {
            return Err(ProtocolError("Protocol error: length header too long".into()));
        }
        return Ok(None);
    };
    if cr + 1 >= window.len() {
        return Ok(None);
    }
    let n = parse_length(&window[1..cr]).filter(|_| window[cr + 1] == b'\n');
    match (n, window[0]) {
        (Some(n), _) => Ok(Some((n, cr + 2))),
        (None, b'*') => Err(ProtocolError("Protocol error: invalid multibulk length".into())),
        (None, _) => Err(ProtocolError("Protocol error: invalid bulk length".into())),
    }
}

/// A header's number: an optional `-` and decimal digits, as Redis reads
/// it (no `+`, no spaces); `None` when it is not one or overflows.
fn parse_length(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -n } else { n })
}

/// An inline command: one line, arguments split on spaces, with the
/// quoting redis-cli and telnet users expect ("…" with escapes, '…').
fn inline(buf: &mut BytesMut, limits: &RequestLimits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().take(limits.max_inline + 1).position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline {
            return Err(ProtocolError("Protocol error: too big inline request".into()));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let line = line.strip_suffix(b"\n").unwrap_or(&line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_inline(line)
        .map(Some)
        .ok_or_else(|| ProtocolError("Protocol error: unbalanced quotes in request".into()))
}

/// Splits an inline line into arguments; `None` for unbalanced quotes.
fn split_inline(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut arg = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    i += 1;
                    if c == quote {
                        break;
                    }
                    if c == b'\\' && quote == b'"' {
                        let &e = line.get(i)?;
                        i += 1;
                        arg.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'x' => match line.get(i..i + 2).and_then(|h| std::str::from_utf8(h).ok()) {
                                Some(hex) if u8::from_str_radix(hex, 16).is_ok() => {
                                    i += 2;
                                    u8::from_str_radix(hex, 16).ok()?
                                }
                                _ => b'x',
                            },
                            other => other,
                        });
                    } else if c == b'\\' && line.get(i) == Some(&b'\'') {
                        arg.push(b'\'');
                        i += 1;
                    } else {
                        arg.push(c);
                    }
                }
                // A closing quote must end the argument.
                if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return None;
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(arg));
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_bulk: 64,
        max_args: 8,
        max_request: 256,
        max_inline: 32,
    };

    fn read_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut reader = RequestReader::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = reader.next(&mut buf, &LIMITS)? {
            out.push(args);
        }
        Ok(out)
    }

    #[test]
    fn reads_pipelined_arrays_and_inline() {
        let got = read_all(b"*2\r\n$4\r\nECHO\r\n$3\r\na\r\n\r\nPING\r\n\r\n*0\r\nset 'a b' \"c\\x41\\n\"\n")
            .unwrap();
        let want: Vec<Vec<&[u8]>> = vec![
            vec![b"ECHO", b"a\r\n"],
            vec![b"PING"],
            vec![b"set", b"a b", b"cA\n"],
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|a| a.iter().map(|s| Bytes::copy_from_slice(s)).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_split_point_gives_the_same_requests() {
        let input = b"*3\r\n$5\r\nQPUSH\r\n$1\r\nq\r\n$0\r\n\r\nPING x\r\n*1\r\n$4\r\nPING\r\n";
        let whole = read_all(input).unwrap();
        for cut in 0..=input.len() {
            let mut reader = RequestReader::default();
            let mut buf = BytesMut::from(&input[..cut]);
            let mut got = Vec::new();
            while let Some(args) = reader.next(&mut buf, &LIMITS).unwrap() {
                got.push(args);
            }
            buf.extend_from_slice(&input[cut..]);
            while let Some(args) = reader.next(&mut buf, &LIMITS).unwrap() {
                got.push(args);
            }
            assert_eq!(got, whole, "split at {cut}");
        }
    }

    #[test]
    fn refuses_bad_shapes_and_claims_over_the_limits() {
        for bad in [
            &b"*1\r\n*1\r\n$1\r\na\r\n"[..], // nested array
            b"*100\r\n",                     // too many arguments
            b"*1\r\n$999999999\r\n",         // bulk over the limit, before its bytes
            b"*1\r\n$-5\r\n",
            b"*x\r\n",
            b"*1\r\n$3\r\nabcXY", // no CRLF after the bulk
            b"*99999999999999999999999999\r\n",
            b"\"unbalanced\n",
        ] {
            assert!(read_all(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(read_all(&[b'a'; 40]).is_err(), "inline line over the limit");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let input = b"*1\r\n".repeat(100_000);
        assert!(read_all(&input).is_err());
    }

    #[test]
    fn lengths_parse_as_redis_reads_them() {
        for (text, want) in [
            (&b"0"[..], Some(0)),
            (b"42", Some(42)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"9223372036854775808", None),
            (b"+1", None),
            (b"-", None),
            (b"", None),
            (b"1 ", None),
            (b"1x", None),
        ] {
            assert_eq!(parse_length(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn waits_for_more_without_consuming() {
        let mut reader = RequestReader::default();
        let input = b"*2\r\n$4\r\nECHO\r\n$10\r\nabc";
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(reader.next(&mut buf, &LIMITS).unwrap(), None);
        assert_eq!(buf.len(), input.len());
    }
}
