//! Checking a password given by a client (RESP `AUTH`, the dashboard's
//! HTTP Basic auth) against `requirepass`.

/// Whether `given` is `expected`, compared without an early exit, so that
/// the time taken does not tell how much of a guess was right. (The
/// length still shows; it is not the secret.)
pub fn matches(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && expected.iter().zip(given).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_bytes_match() {
        assert!(matches(b"s3cret", b"s3cret"));
        assert!(!matches(b"s3cret", b"s3cres"));
        assert!(!matches(b"s3cret", b"s3cre"));
        assert!(!matches(b"s3cret", b"s3cret!"));
        assert!(!matches(b"s3cret", b""));
        assert!(matches(b"", b""));
    }
}
