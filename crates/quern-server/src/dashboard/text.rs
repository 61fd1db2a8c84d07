//! Bytes shown as text. Queue names, payloads and error messages are any
//! bytes; the API turns them into JSON strings a page can show as they
//! are (the pages set them as text, never as HTML), and tells when it had
//! to escape something.

use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

/// What a URL path segment keeps as it is: RFC 3986's unreserved
/// characters. Everything else, `/` included, is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A queue name, for showing and for building URLs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Name {
    /// The name as text (see [`shown`]).
    pub name: String,
    /// Its bytes percent-encoded: the `{name}` of the dashboard's URLs.
    pub encoded: String,
    /// Whether it is not plain UTF-8 text, so `name` has escapes.
    pub binary: bool,
}

impl Name {
    /// The forms of queue name `bytes`.
    pub fn of(bytes: &[u8]) -> Name {
        let (name, binary) = shown(bytes);
        let encoded = percent_encoding::percent_encode(bytes, SEGMENT).to_string();
        Name {
            name,
            encoded,
            binary,
        }
    }
}

/// The start of a payload or an error message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// The first bytes as text (see [`shown`]).
    pub text: String,
    /// The whole length, in bytes.
    pub bytes: usize,
    /// Whether `text` shows only the start.
    pub truncated: bool,
    /// Whether it is not plain UTF-8 text, so `text` has escapes.
    pub binary: bool,
}

impl Preview {
    /// The first `limit` bytes of `bytes`, shown as text. The cut moves
    /// back to the start of a UTF-8 character rather than split one.
    pub fn of(bytes: &[u8], limit: usize) -> Preview {
        let mut cut = bytes.len().min(limit);
        if cut < bytes.len() {
            // At most 3 bytes back: a UTF-8 character has at most 3
            // continuation bytes.
            let start = cut.saturating_sub(3);
            if let Some(at) = (start..=cut).rev().find(|&i| !is_continuation(bytes[i])) {
                cut = at.max(1);
            }
        }
        let (text, binary) = shown(&bytes[..cut]);
        Preview {
            text,
            bytes: bytes.len(),
            truncated: cut < bytes.len(),
            binary,
        }
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// `bytes` as text, and whether it was binary. UTF-8 is kept as it is,
/// except line breaks and tabs, which become `\n`, `\r` and `\t` (a list
/// shows one line per job). Other control characters become `\u{…}` and
/// bytes that are not UTF-8 become `\xNN`; either makes it binary.
pub fn shown(bytes: &[u8]) -> (String, bool) {
    let mut out = String::with_capacity(bytes.len());
    let mut binary = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    binary = true;
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            binary = true;
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    (out, binary)
}

/// Whether `name` contains `filter`, ignoring ASCII case.
pub fn contains_ignoring_case(name: &[u8], filter: &[u8]) -> bool {
    filter.is_empty() || name.windows(filter.len()).any(|w| w.eq_ignore_ascii_case(filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text() {
        assert_eq!(
            shown(br#"{"to":"ann@example.com"}"#),
            (r#"{"to":"ann@example.com"}"#.into(), false)
        );
        assert_eq!(shown("café ☕".as_bytes()), ("café ☕".into(), false));
        assert_eq!(shown(b"a\nb\tc"), ("a\\nb\\tc".into(), false));
        assert_eq!(shown(b"<script>"), ("<script>".into(), false));
    }

    #[test]
    fn binary_is_escaped_and_flagged() {
        assert_eq!(shown(b"\xff\x00ab"), ("\\xff\\u{0}ab".into(), true));
        assert_eq!(shown(b"ok\x1b[0m"), ("ok\\u{1b}[0m".into(), true));
    }

    #[test]
    fn a_preview_is_cut_between_characters() {
        let p = Preview::of(b"hello", 200);
        assert_eq!(
            (p.text.as_str(), p.bytes, p.truncated, p.binary),
            ("hello", 5, false, false)
        );
        // "é" is 2 bytes: a cut after 2 bytes of "aé" would split it.
        let p = Preview::of("aéb".as_bytes(), 2);
        assert_eq!((p.text.as_str(), p.truncated, p.binary), ("a", true, false));
        let p = Preview::of("aéb".as_bytes(), 3);
        assert_eq!((p.text.as_str(), p.truncated), ("aé", true));
        let p = Preview::of(&[0xffu8; 300], 200);
        assert_eq!(
            (p.text.len(), p.bytes, p.truncated, p.binary),
            (800, 300, true, true)
        );
        let p = Preview::of(&[0x80u8; 10], 4);
        assert!(!p.text.is_empty() && p.truncated && p.binary);
    }

    #[test]
    fn names_carry_their_url_form() {
        let n = Name::of(b"emails");
        assert_eq!(
            (n.name.as_str(), n.encoded.as_str(), n.binary),
            ("emails", "emails", false)
        );
        let n = Name::of(b"a/b?c#%");
        assert_eq!(n.encoded, "a%2Fb%3Fc%23%25");
        let n = Name::of(b"q\xff");
        assert_eq!(
            (n.name.as_str(), n.encoded.as_str(), n.binary),
            ("q\\xff", "q%FF", true)
        );
    }

    #[test]
    fn filters_ignore_ascii_case() {
        assert!(contains_ignoring_case(b"Emails-EU", b"mails-eu"));
        assert!(contains_ignoring_case(b"x", b""));
        assert!(!contains_ignoring_case(b"sms", b"mail"));
        assert!(!contains_ignoring_case(b"a", b"ab"));
    }
}
