#!/usr/bin/env python3
"""What scheduling millions of jobs for later costs the pushes that do it.

Starts a fresh `quern` and pushes --jobs delayed jobs (an hour ahead) into
one queue, 10,000 per QMPUSH, timing each call. Prints the median and the
two slowest calls with their place: a structure that grows all at once
shows up as single slow calls at the sizes where it grows.

    benches/delayed.py --quern target/release/quern --jobs 2500000
"""
import argparse
import os
import statistics
import tempfile
import time

from memory import Server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 10_000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quern", default=os.path.join(ROOT, "target", "release", "quern"))
    ap.add_argument("--jobs", type=int, default=2_500_000)
    args = ap.parse_args()
    payloads = [b"x" * 100] * BATCH
    calls = []
    with tempfile.TemporaryDirectory() as data:
        server = Server(args.quern, data, "always")
        try:
            for _ in range(args.jobs // BATCH):
                started = time.perf_counter()
                server.conn.call("QMPUSH", "later", str(BATCH), *payloads, "DELAY", "3600000")
                calls.append(time.perf_counter() - started)
        finally:
            server.stop()
    slowest = sorted(range(len(calls)), key=lambda i: calls[i], reverse=True)[:2]
    print(f"{len(calls)} QMPUSH of {BATCH} delayed jobs: median {statistics.median(calls) * 1000:.1f} ms; "
          + ", ".join(f"{calls[i] * 1000:.0f} ms for jobs {i * BATCH:,} to {(i + 1) * BATCH:,}" for i in slowest))


if __name__ == "__main__":
    main()
