//! CPU time of a process (the server's, or the bench's own) from
//! `/proc/PID/stat`, so that a run can say what each operation cost the
//! server and whether the bench itself was the bottleneck.
//!
//! Linux only; elsewhere the readings are simply absent.

use std::fs;

/// `AT_CLKTCK` in the auxiliary vector: the unit of utime and stime.
const AT_CLKTCK: u64 = 17;
/// The tick rate Linux has used on every common platform, if the
/// auxiliary vector cannot be read.
const DEFAULT_TICKS: u64 = 100;

/// User plus system CPU seconds used so far by `pid` (all its threads),
/// or by this process when `pid` is `None`.
pub fn seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let ticks = parse_stat(&fs::read_to_string(path).ok()?)?;
    Some(ticks as f64 / ticks_per_second() as f64)
}

/// utime + stime, in clock ticks, from the text of a `stat` file.
fn parse_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself, so fields are counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock tick rate, from `/proc/self/auxv` (reading it there
/// avoids calling `sysconf` through unsafe FFI).
fn ticks_per_second() -> u64 {
    let Ok(auxv) = fs::read("/proc/self/auxv") else {
        return DEFAULT_TICKS;
    };
    let word = std::mem::size_of::<usize>();
    let mut pairs = auxv.chunks_exact(2 * word);
    pairs
        .find_map(|pair| {
            let (key, value) = pair.split_at(word);
            (read_word(key) == AT_CLKTCK).then(|| read_word(value))
        })
        .filter(|&ticks| ticks > 0)
        .unwrap_or(DEFAULT_TICKS)
}

fn read_word(bytes: &[u8]) -> u64 {
    let mut buf = [0; 8];
    if cfg!(target_endian = "little") {
        buf[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(buf)
    } else {
        buf[8 - bytes.len()..].copy_from_slice(bytes);
        u64::from_be_bytes(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(325));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let used = seconds(None).expect("own CPU time");
            assert!(used >= 0.0);
            assert!(ticks_per_second() > 0);
        }
    }
}
