//! Expected replies: parsed from the text after `=>`, matched against a
//! [`Value`] in the protocol of the connection that received it.
//!
//! Maps, sets, verbatim strings and `nil`/`nilarray` are written once and
//! matched in either protocol, by the rules of docs/commands.md: a map is
//! a flat field/value array in RESP2, a set an array, a verbatim string a
//! bulk string, and the nulls `$-1`/`*-1` in RESP2 are `_` in RESP3. The
//! exact forms (`_`, `$-1`, `*-1`) match only themselves.

use std::fmt;

use crate::reply::Value;
use crate::text::{glob, show, show_raw, Cursor};

/// An expected reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// `?`: anything.
    Any,
    /// `+text`
    Simple(Text),
    /// `-text`
    Error(Text),
    /// `:5`, `5`, `-5`, `:?` (any), `:1..10` (inclusive).
    Int(i64, i64),
    /// `"text"`, `g"glob"`, `$?`, or a bare word.
    Bulk(Text),
    /// `=txt "text"`: a verbatim string in RESP3, a bulk string in RESP2.
    Verbatim(String, Text),
    /// `_`, `$-1`, `*-1`: exactly that null.
    Null(u8),
    /// `nil`: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// `nilarray`: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    /// `[a, b]`; with `...` last, more elements may follow.
    Array(Vec<Pattern>, bool),
    /// `~[a, b]`: a set in RESP3, an array in RESP2.
    Set(Vec<Pattern>, bool),
    /// `{k: v}`: a map in RESP3, a flat `[k, v, …]` array in RESP2.
    Map(Vec<(Pattern, Pattern)>, bool),
}

/// The bytes of a string reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    Exact(Vec<u8>),
    /// `*` stands for any run of bytes.
    Glob(Vec<u8>),
    Any,
}

impl Text {
    fn matches(&self, bytes: &[u8]) -> bool {
        match self {
            Text::Exact(e) => e == bytes,
            Text::Glob(g) => glob(g, bytes),
            Text::Any => true,
        }
    }
}

/// Where a reply differs from the pattern.
#[derive(Debug)]
pub struct Mismatch {
    /// Where in the reply: `[2]`, `{waiting}`… Empty for the whole reply.
    pub path: String,
    pub expected: String,
    pub got: String,
    /// Where two long strings differ.
    pub detail: Option<String>,
}

/// Parses the text after `=>`.
pub fn parse(text: &str) -> Result<Pattern, String> {
    let mut c = Cursor::new(text);
    let pattern = one(&mut c, true)?;
    if !c.at_end() {
        return Err(format!(
            "unexpected text after the reply: {}",
            String::from_utf8_lossy(c.rest())
        ));
    }
    Ok(pattern)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'|' | b'/' | b'@')
}

/// True when the pattern ends here: the line's end or a delimiter.
fn ends(c: &Cursor<'_>) -> bool {
    c.peek()
        .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}' | b':'))
}

fn one(c: &mut Cursor<'_>, top: bool) -> Result<Pattern, String> {
    c.skip_ws();
    let Some(first) = c.peek() else {
        return Err("a reply is missing".into());
    };
    let pattern = match first {
        // `-` then a digit is a negative integer: an error starts with a code.
        b'-' if c.peek2().is_some_and(|b| b.is_ascii_digit()) => integer(c)?,
        b'+' | b'-' => {
            c.bump();
            let text = line_text(c, top)?;
            if first == b'+' {
                Pattern::Simple(text)
            } else {
                Pattern::Error(text)
            }
        }
        b':' => {
            c.bump();
            if c.eat("?") {
                Pattern::Int(i64::MIN, i64::MAX)
            } else {
                integer(c)?
            }
        }
        b'0'..=b'9' => integer(c)?,
        b'"' | b'\'' => Pattern::Bulk(Text::Exact(c.quoted()?)),
        b'g' if c.peek2() == Some(b'"') => {
            c.bump();
            Pattern::Bulk(Text::Glob(c.quoted()?))
        }
        b'$' if c.eat("$?") => Pattern::Bulk(Text::Any),
        b'$' if c.eat("$-1") => Pattern::Null(b'$'),
        b'*' if c.eat("*-1") => Pattern::Null(b'*'),
        b'_' if c.eat("_") => Pattern::Null(b'_'),
        b'?' if c.eat("?") => Pattern::Any,
        b'[' => {
            c.bump();
            let (items, more) = list(c, b']')?;
            Pattern::Array(items, more)
        }
        b'~' if c.eat("~[") => {
            let (items, more) = list(c, b']')?;
            Pattern::Set(items, more)
        }
        b'{' => {
            c.bump();
            map(c)?
        }
        b'=' => {
            c.bump();
            let format = c.take_while(|b| b.is_ascii_alphanumeric());
            if format.len() != 3 {
                return Err("a verbatim string is written =txt \"text\"".into());
            }
            let format = String::from_utf8_lossy(format).into_owned();
            c.skip_ws();
            let text = match c.peek() {
                Some(b'?') => {
                    c.bump();
                    Text::Any
                }
                Some(b'g') => {
                    c.bump();
                    Text::Glob(c.quoted()?)
                }
                _ => Text::Exact(c.quoted()?),
            };
            Pattern::Verbatim(format, text)
        }
        b if b.is_ascii_alphabetic() => match c.take_while(is_word_byte) {
            b"nil" => Pattern::Nil,
            b"nilarray" => Pattern::NilArray,
            word => Pattern::Bulk(Text::Exact(word.to_vec())),
        },
        other => return Err(format!("cannot read a reply at '{}'", char::from(other))),
    };
    if !ends(c) {
        return Err(format!(
            "unexpected '{}' after {pattern}",
            char::from(c.peek().unwrap_or(b' '))
        ));
    }
    Ok(pattern)
}

/// The text of `+…` or `-…`: quoted (exact), or bare up to the end of the
/// line (at the top) or of the element, where `*` is a wildcard.
fn line_text(c: &mut Cursor<'_>, top: bool) -> Result<Text, String> {
    if c.peek() == Some(b'"') {
        return Ok(Text::Exact(c.quoted()?));
    }
    let raw = if top {
        c.rest()
    } else {
        c.take_while(|b| !matches!(b, b',' | b']' | b'}')).trim_ascii()
    };
    Ok(if raw.contains(&b'*') {
        Text::Glob(raw.to_vec())
    } else {
        Text::Exact(raw.to_vec())
    })
}

fn integer(c: &mut Cursor<'_>) -> Result<Pattern, String> {
    let read = |c: &mut Cursor<'_>| -> Result<i64, String> {
        let negative = c.eat("-");
        let digits = c.take_while(|b| b.is_ascii_digit());
        let n: i64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or("expected an integer")?;
        Ok(if negative { -n } else { n })
    };
    let low = read(c)?;
    let high = if c.eat("..") { read(c)? } else { low };
    Ok(Pattern::Int(low, high))
}

/// Elements up to `close`; true when `...` ends them.
fn list(c: &mut Cursor<'_>, close: u8) -> Result<(Vec<Pattern>, bool), String> {
    let mut items = Vec::new();
    c.skip_ws();
    if c.peek() == Some(close) {
        c.bump();
        return Ok((items, false));
    }
    loop {
        c.skip_ws();
        if c.eat("...") {
            return closing(c, close).map(|()| (items, true));
        }
        items.push(one(c, false)?);
        c.skip_ws();
        match c.bump() {
            Some(b',') => {}
            Some(b) if b == close => return Ok((items, false)),
            _ => return Err(format!("expected ',' or '{}'", char::from(close))),
        }
    }
}

fn closing(c: &mut Cursor<'_>, close: u8) -> Result<(), String> {
    c.skip_ws();
    if c.bump() == Some(close) {
        Ok(())
    } else {
        Err(format!("'...' must be last, before '{}'", char::from(close)))
    }
}

fn map(c: &mut Cursor<'_>) -> Result<Pattern, String> {
    let mut pairs = Vec::new();
    c.skip_ws();
    if c.eat("}") {
        return Ok(Pattern::Map(pairs, false));
    }
    loop {
        c.skip_ws();
        if c.eat("...") {
            return closing(c, b'}').map(|()| Pattern::Map(pairs, true));
        }
        let key = one(c, false)?;
        c.skip_ws();
        if !c.eat(":") {
            return Err(format!("expected ':' after the key {key}"));
        }
        let value = one(c, false)?;
        pairs.push((key, value));
        c.skip_ws();
        match c.bump() {
            Some(b',') => {}
            Some(b'}') => return Ok(Pattern::Map(pairs, false)),
            _ => return Err("expected ',' or '}'".into()),
        }
    }
}

impl Pattern {
    /// Checks `value`, received on a connection speaking RESP`proto`.
    pub fn check(&self, value: &Value, proto: u8) -> Result<(), Mismatch> {
        self.check_at(value, proto, "")
    }

    fn check_at(&self, value: &Value, proto: u8, path: &str) -> Result<(), Mismatch> {
        let resp3 = proto == 3;
        let ok = match (self, value) {
            (Pattern::Any, _) => true,
            (Pattern::Simple(t), Value::Simple(s)) => t.matches(s),
            (Pattern::Error(t), Value::Error(e)) => t.matches(e),
            (Pattern::Int(low, high), Value::Int(i)) => low <= i && i <= high,
            (Pattern::Bulk(t), Value::Bulk(b)) => t.matches(b),
            (Pattern::Verbatim(f, t), Value::Verbatim(vf, b)) if resp3 => f == vf && t.matches(b),
            (Pattern::Verbatim(_, t), Value::Bulk(b)) if !resp3 => t.matches(b),
            (Pattern::Null(kind), Value::Null(got)) => kind == got,
            (Pattern::Nil, Value::Null(got)) => *got == if resp3 { b'_' } else { b'$' },
            (Pattern::NilArray, Value::Null(got)) => *got == if resp3 { b'_' } else { b'*' },
            (Pattern::Array(items, more), Value::Array(values)) => {
                return check_list(self, items, *more, values, value, proto, path)
            }
            (Pattern::Set(items, more), Value::Set(values)) if resp3 => {
                return check_list(self, items, *more, values, value, proto, path)
            }
            (Pattern::Set(items, more), Value::Array(values)) if !resp3 => {
                return check_list(self, items, *more, values, value, proto, path)
            }
            (Pattern::Map(pairs, more), Value::Map(got)) if resp3 => {
                if got.len() < pairs.len() || (!more && got.len() != pairs.len()) {
                    return Err(mismatch(path, self, value));
                }
                for ((pk, pv), (k, v)) in pairs.iter().zip(got) {
                    pk.check_at(k, proto, path)?;
                    pv.check_at(v, proto, &format!("{path}{{{}}}", key_name(k)))?;
                }
                return Ok(());
            }
            (Pattern::Map(pairs, more), Value::Array(got)) if !resp3 => {
                if got.len() < 2 * pairs.len() || (!more && got.len() != 2 * pairs.len()) {
                    return Err(mismatch(path, self, value));
                }
                for ((pk, pv), kv) in pairs.iter().zip(got.chunks(2)) {
                    pk.check_at(&kv[0], proto, path)?;
                    pv.check_at(&kv[1], proto, &format!("{path}{{{}}}", key_name(&kv[0])))?;
                }
                return Ok(());
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let mut m = mismatch(path, self, value);
        let text = match self {
            Pattern::Simple(t) | Pattern::Error(t) | Pattern::Bulk(t) | Pattern::Verbatim(_, t) => Some(t),
            _ => None,
        };
        if let (Some(text), Value::Simple(g) | Value::Error(g) | Value::Bulk(g) | Value::Verbatim(_, g)) =
            (text, value)
        {
            m.detail = match text {
                Text::Exact(e) => difference(e, g),
                Text::Glob(p) => glob_difference(p, g),
                Text::Any => None,
            };
        }
        Err(m)
    }
}

/// Where a long string stops following a glob, for a message: the first
/// literal part of the pattern that is not where it should be.
fn glob_difference(pattern: &[u8], got: &[u8]) -> Option<String> {
    let parts: Vec<&[u8]> = pattern.split(|&b| b == b'*').collect();
    let first = parts[0];
    if !got.starts_with(first) {
        let at = first.iter().zip(got).take_while(|(a, b)| a == b).count();
        let window = |b: &[u8]| show_raw(&b[at..b.len().min(at + 40)]);
        return Some(format!(
            "they differ from byte {at}: expected \"{}\" got \"{}\"",
            window(first),
            window(got)
        ));
    }
    let mut at = first.len();
    for part in parts[1..].iter().filter(|p| !p.is_empty()) {
        match got[at..].windows(part.len()).position(|w| w == *part) {
            Some(found) => at += found + part.len(),
            None => {
                return Some(format!(
                    "\"{}\" is not found after byte {at}, which starts \"{}\"",
                    show_raw(part),
                    show_raw(&got[at..got.len().min(at + 40)])
                ))
            }
        }
    }
    None
}

/// Where two long strings part, for a message.
fn difference(expected: &[u8], got: &[u8]) -> Option<String> {
    const SHORT: usize = 60;
    if expected.len().max(got.len()) <= SHORT {
        return None;
    }
    let at = expected.iter().zip(got).take_while(|(a, b)| a == b).count();
    let window = |b: &[u8]| show_raw(&b[at..b.len().min(at + 40)]);
    Some(format!(
        "they differ from byte {at}: expected \"{}\" got \"{}\" ({} and {} bytes long)",
        window(expected),
        window(got),
        expected.len(),
        got.len()
    ))
}

fn check_list(
    pattern: &Pattern,
    items: &[Pattern],
    more: bool,
    values: &[Value],
    whole: &Value,
    proto: u8,
    path: &str,
) -> Result<(), Mismatch> {
    if values.len() < items.len() || (!more && values.len() != items.len()) {
        return Err(mismatch(path, pattern, whole));
    }
    for (i, (item, value)) in items.iter().zip(values).enumerate() {
        item.check_at(value, proto, &format!("{path}[{i}]"))?;
    }
    Ok(())
}

fn key_name(key: &Value) -> String {
    match key {
        Value::Bulk(b) | Value::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

fn mismatch(path: &str, pattern: &Pattern, value: &Value) -> Mismatch {
    Mismatch {
        path: path.to_owned(),
        expected: pattern.to_string(),
        got: value.to_string(),
        detail: None,
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Text::Exact(e) => f.write_str(&show(e)),
            Text::Glob(g) => write!(f, "g\"{}\"", show_raw(g)),
            Text::Any => f.write_str("?"),
        }
    }
}

impl fmt::Display for Pattern {
    /// The pattern in case-file notation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, open: &str, items: &[Pattern], more: bool| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            if more {
                f.write_str(if items.is_empty() { "..." } else { ", ..." })?;
            }
            f.write_str("]")
        };
        let line = |f: &mut fmt::Formatter<'_>, sign: char, t: &Text| match t {
            Text::Exact(e) if e.iter().all(|b| (0x20..0x7f).contains(b)) => {
                write!(f, "{sign}{}", String::from_utf8_lossy(e))
            }
            Text::Glob(g) => write!(f, "{sign}{}", String::from_utf8_lossy(g)),
            other => write!(f, "{sign}{other}"),
        };
        match self {
            Pattern::Any => f.write_str("?"),
            Pattern::Simple(t) => line(f, '+', t),
            Pattern::Error(t) => line(f, '-', t),
            Pattern::Int(i64::MIN, i64::MAX) => f.write_str(":?"),
            Pattern::Int(low, high) if low == high => write!(f, "{low}"),
            Pattern::Int(low, high) => write!(f, ":{low}..{high}"),
            Pattern::Bulk(Text::Any) => f.write_str("$?"),
            Pattern::Bulk(t) => write!(f, "{t}"),
            Pattern::Verbatim(format, t) => write!(f, "={format} {t}"),
            Pattern::Null(b'_') => f.write_str("_"),
            Pattern::Null(kind) => write!(f, "{}-1", char::from(*kind)),
            Pattern::Nil => f.write_str("nil"),
            Pattern::NilArray => f.write_str("nilarray"),
            Pattern::Array(items, more) => list(f, "[", items, *more),
            Pattern::Set(items, more) => list(f, "~[", items, *more),
            Pattern::Map(pairs, more) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                if *more {
                    f.write_str(if pairs.is_empty() { "..." } else { ", ..." })?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Checks the notation against replies whose verdict is known, so that a
/// change to the runner cannot quietly make every case pass.
pub fn self_check() -> Result<(), String> {
    use Value::{Array, Bulk, Error, Int, Map, Null, Set, Simple, Verbatim};
    let bulk = |s: &str| Bulk(s.as_bytes().to_vec());
    let table = [
        ("+OK", Simple(b"OK".to_vec()), 2, true),
        ("+OK", bulk("OK"), 2, false),
        ("OK", bulk("OK"), 3, true),
        (
            "-ERR unknown*",
            Error(b"ERR unknown command 'X'".to_vec()),
            3,
            true,
        ),
        ("-ERR x", Error(b"ERR xy".to_vec()), 2, false),
        ("5", Int(5), 2, true),
        ("-5", Int(-5), 2, true),
        (
            "[-5, -ERR x]",
            Array(vec![Int(-5), Error(b"ERR x".to_vec())]),
            2,
            true,
        ),
        (":-5", Int(-5), 2, true),
        (":1..3", Int(4), 2, false),
        (":?", bulk("1"), 2, false),
        ("\"a\\r\\n\\x00\"", bulk("a\r\n\0"), 2, true),
        ("\"ab\"*3", bulk("ababab"), 2, true),
        ("\"ab\"*3", bulk("abab"), 2, false),
        ("nil", Null(b'$'), 2, true),
        ("nil", Null(b'*'), 2, false),
        ("nil", Null(b'_'), 3, true),
        ("nilarray", Null(b'*'), 2, true),
        ("nilarray", Null(b'$'), 2, false),
        ("_", Null(b'$'), 2, false),
        ("$-1", Null(b'_'), 3, false),
        ("{a: 1}", Array(vec![bulk("a"), Int(1)]), 2, true),
        ("{a: 1}", Array(vec![bulk("a"), Int(1)]), 3, false),
        ("{a: 1}", Map(vec![(bulk("a"), Int(2))]), 3, false),
        (
            "{a: 1, ...}",
            Map(vec![(bulk("a"), Int(1)), (bulk("b"), Int(2))]),
            3,
            true,
        ),
        ("[1, ...]", Array(vec![Int(1)]), 2, true),
        ("[1]", Array(vec![Int(1), Int(2)]), 2, false),
        ("[]", Array(vec![]), 3, true),
        ("~[x]", Set(vec![Simple(b"x".to_vec())]), 3, false),
        ("~[+x]", Array(vec![Simple(b"x".to_vec())]), 2, true),
        ("~[+x]", Array(vec![Simple(b"x".to_vec())]), 3, false),
        (
            "=txt g\"# Server*\"",
            Verbatim("txt".into(), b"# Server\r\n".to_vec()),
            3,
            true,
        ),
        ("=txt g\"# Server*\"", bulk("# Server\r\n"), 2, true),
        ("=txt ?", bulk("x"), 3, false),
        ("?", Null(b'*'), 2, true),
    ];
    for (text, value, proto, verdict) in table {
        let pattern = parse(text).map_err(|e| format!("{text}: {e}"))?;
        if pattern.check(&value, proto).is_ok() != verdict {
            return Err(format!(
                "{text} {} {value} in RESP{proto}",
                if verdict {
                    "should match"
                } else {
                    "should not match"
                }
            ));
        }
    }
    Ok(())
}
