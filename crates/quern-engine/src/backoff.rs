//! How long a failed job waits before its next attempt.

use crate::types::JobId;

/// No retry waits longer than a day, however large BACKOFF and the attempt.
pub const MAX_BACKOFF_MS: u64 = 24 * 60 * 60 * 1000;

/// The wait before retry number `retry` (1 for the first retry):
/// `base_ms · 2^(retry-1)`, spread by ±10% so that jobs which failed
/// together do not all return together, and never more than
/// [`MAX_BACKOFF_MS`].
///
/// The jitter comes from a hash of the job id and the retry number, not
/// from a random source, so the engine stays deterministic: replaying the
/// same commands gives the same deadlines.
pub fn retry_delay(base_ms: u32, retry: u32, id: JobId) -> u64 {
    let doublings = retry.saturating_sub(1).min(40);
    let raw = u64::from(base_ms)
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF_MS);
    let spread = raw / 10;
    if spread == 0 {
        return raw;
    }
    let noise = mix(id ^ (u64::from(retry) << 56)) % (2 * spread + 1);
    (raw - spread + noise).min(MAX_BACKOFF_MS)
}

/// SplitMix64's finaliser: a cheap, well-spread hash of one integer.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_ten_percent() {
        for retry in 1..=6u32 {
            let expected = 1000u64 << (retry - 1);
            for id in 1..200 {
                let d = retry_delay(1000, retry, id);
                assert!(
                    d >= expected * 9 / 10 && d <= expected * 11 / 10,
                    "{d} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn is_capped_and_never_overflows() {
        for id in 0..100 {
            assert!(retry_delay(u32::MAX, u32::MAX, id) <= MAX_BACKOFF_MS);
        }
        assert_eq!(retry_delay(0, 5, 7), 0);
    }

    #[test]
    fn jitter_differs_between_jobs() {
        let delays: std::collections::HashSet<u64> = (1..50).map(|id| retry_delay(1000, 1, id)).collect();
        assert!(delays.len() > 10);
    }
}
