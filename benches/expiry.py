#!/usr/bin/env python3
"""What a mass lease expiry costs the other clients of its queue's shard.

Starts a fresh `quern`, pushes --jobs jobs to one queue, leases them all
(QPULL COUNT 10000) with leases that run out at the same moment, as when a
whole fleet of workers dies, then asks QLEN of the same queue every
millisecond while the server puts the jobs back. Prints the slowest QLEN
and how long until every job was waiting again.

    benches/expiry.py --quern target/release/quern --jobs 500000
"""
import argparse
import os
import tempfile
import time

from memory import Conn, Server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 10_000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quern", default=os.path.join(ROOT, "target", "release", "quern"))
    ap.add_argument("--jobs", type=int, default=500_000)
    args = ap.parse_args()
    jobs = args.jobs - args.jobs % BATCH
    with tempfile.TemporaryDirectory() as data:
        server = Server(args.quern, data, "always")
        try:
            conn = server.conn
            payloads = [b"x" * 100] * BATCH
            for _ in range(jobs // BATCH):
                conn.call("QMPUSH", "fleet", str(BATCH), *payloads)
            # Leases sized so that every one runs out at `expiry`, 2 s
            # after the estimated end of the pulls.
            started = time.time()
            conn.call("QPULL", "fleet", "COUNT", str(BATCH), "LEASE", "60000")
            per_pull = time.time() - started
            expiry = time.time() + per_pull * (jobs // BATCH) * 1.5 + 2
            for _ in range(jobs // BATCH - 1):
                lease_ms = int((expiry - time.time()) * 1000)
                conn.call("QPULL", "fleet", "COUNT", str(BATCH), "LEASE", str(lease_ms))
            # The first batch keeps its long lease: the rest all expire together.
            expected = jobs - BATCH
            assert int(conn.call("QLEN", "fleet")) == 0

            slowest = 0.0
            back_at = None
            probe = Conn(server.port)
            while time.time() < expiry - 0.5:
                time.sleep(0.01)
            while back_at is None or time.time() < back_at + 0.5:
                t = time.perf_counter()
                waiting = int(probe.call("QLEN", "fleet"))
                slowest = max(slowest, time.perf_counter() - t)
                if back_at is None and waiting >= expected:
                    back_at = time.time()
                if time.time() > expiry + 30:
                    raise SystemExit("the leases did not come back within 30 s")
                time.sleep(0.001)
        finally:
            server.stop()
    print(f"{expected} leases ran out together; all were waiting again "
          f"{(back_at - expiry) * 1000:.0f} ms after their deadline; "
          f"the slowest QLEN of the same queue meanwhile took {slowest * 1000:.1f} ms")


if __name__ == "__main__":
    main()
