#!/usr/bin/env python3
"""The disk's own bound on durable writes: how long one flush takes.

With fsync always, no reply to a write can come sooner than one flush of
the write-ahead log, and one connection that waits for each reply can make
at most 1 / (flush time) writes a second, whatever the server. This
measures that floor on the file system under test, the way the log writes:
a small record written over a pre-zeroed file (so no file-system metadata
changes), then fdatasync. Also the same write appended to a growing file,
which costs more, for comparison.

    benches/disk.py [--dir DIR] [--seconds 3] [--bytes 4096]

Prints one line per mode: flushes/s, the latency percentiles in us, and
the CPU one write and flush costs this process (user + system), which a
server pays whatever the flush carries.
"""
import argparse
import os
import resource
import statistics
import tempfile
import time


def measure(path, seconds, size, append):
    block = b"x" * size
    span = 64 << 20
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if not append:
            zeros = b"\0" * (1 << 20)
            for _ in range(span // len(zeros)):
                os.write(fd, zeros)
            os.fsync(fd)
        lat = []
        cpu_before = cpu_seconds()
        offset = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            os.pwrite(fd, block, offset)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
            offset += size
            if not append and offset + size > span:
                offset = 0
        return lat, (cpu_seconds() - cpu_before) / len(lat) * 1e6
    finally:
        os.close(fd)
        os.unlink(path)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="a directory on the disk to measure (default: the temp dir)")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--bytes", type=int, default=4096)
    a = ap.parse_args()
    print(f"{'mode':<22} {'flushes/s':>10} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'max us':>8} {'cpu us':>7}")
    for mode, append in (("overwrite+fdatasync", False), ("append+fdatasync", True)):
        with tempfile.NamedTemporaryFile(dir=a.dir, delete=False) as f:
            path = f.name
        lat, cpu = measure(path, a.seconds, a.bytes, append)
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))]
        rate = len(lat) / (sum(lat) / 1e6)
        print(f"{mode:<22} {rate:>10,.0f} {statistics.median(lat):>8.0f} {q(0.99):>8.0f} {q(0.999):>9.0f} {lat[-1]:>8.0f} {cpu:>7.1f}")


if __name__ == "__main__":
    main()
