//! The words of a case file: bare words, `"double-quoted"` strings with
//! escapes, `'single-quoted'` strings taken as they are, and a repeat
//! suffix (`"x"*1048576`) for large payloads.

use std::fmt::Write as _;

/// A position in one line of a case file.
#[derive(Debug)]
pub struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    pub fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.text.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// The byte after the next one.
    pub fn peek2(&self) -> Option<u8> {
        self.text.get(self.pos + 1).copied()
    }

    pub fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `prefix` if the text continues with it.
    pub fn eat(&mut self, prefix: &str) -> bool {
        let found = self.text[self.pos..].starts_with(prefix.as_bytes());
        if found {
            self.pos += prefix.len();
        }
        found
    }

    /// What is left, whitespace trimmed.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.text[self.pos..].trim_ascii();
        self.pos = self.text.len();
        rest
    }

    pub fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// The quoted string at the cursor (`"…"` or `'…'`), with its repeat
    /// suffix applied.
    pub fn quoted(&mut self) -> Result<Vec<u8>, String> {
        let quote = self.bump().filter(|&q| q == b'"' || q == b'\'');
        let Some(quote) = quote else {
            return Err("expected a quoted string".into());
        };
        let mut out = Vec::new();
        loop {
            let c = self.bump().ok_or("unterminated string")?;
            if c == quote {
                break;
            }
            if c != b'\\' || quote == b'\'' {
                out.push(c);
                continue;
            }
            let escaped = self.bump().ok_or("unterminated string")?;
            out.push(match escaped {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'0' => 0,
                b'\\' | b'"' | b'\'' => escaped,
                b'x' => {
                    let hex = self.text.get(self.pos..self.pos + 2).unwrap_or_default();
                    let byte = std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or("\\x needs two hex digits")?;
                    self.pos += 2;
                    byte
                }
                other => return Err(format!("unknown escape \\{}", char::from(other))),
            });
        }
        if self.peek() == Some(b'*') && self.peek2().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            let digits = self.take_while(|b| b.is_ascii_digit());
            let times: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .filter(|&n| n <= 1 << 30)
                .ok_or("repeat count too large")?;
            out = out.repeat(times);
        }
        Ok(out)
    }
}

/// Splits a request line into its words.
pub fn words(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut c = Cursor::new(line);
    let mut out = Vec::new();
    while !c.at_end() {
        let word = match c.peek() {
            Some(b'"' | b'\'') => {
                let word = c.quoted()?;
                if c.peek().is_some_and(|b| !b.is_ascii_whitespace()) {
                    return Err("a quoted word must be followed by a space".into());
                }
                word
            }
            _ => c.take_while(|b| !b.is_ascii_whitespace()).to_vec(),
        };
        out.push(word);
    }
    Ok(out)
}

/// A request as a RESP array of bulk strings, as every client sends it.
pub fn encode_request(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for arg in argv {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Bytes for a message: printable ASCII as is, the rest escaped, long
/// runs shortened.
pub fn show(bytes: &[u8]) -> String {
    const LIMIT: usize = 80;
    if bytes.len() > LIMIT && bytes.iter().all(|&b| b == bytes[0]) {
        return format!("\"{}\"*{}", show_raw(&bytes[..1]), bytes.len());
    }
    if bytes.len() > LIMIT {
        return format!("\"{}…\"({} bytes)", show_raw(&bytes[..LIMIT]), bytes.len());
    }
    format!("\"{}\"", show_raw(bytes))
}

/// Escapes bytes as a case file writes them inside `"…"`.
pub fn show_raw(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Matches `text` against `pattern`, where `*` stands for any run of
/// bytes.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}
