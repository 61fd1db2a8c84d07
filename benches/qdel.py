#!/usr/bin/env python3
"""What deleting a big queue costs everyone else.

Starts a fresh `quern`, fills one queue with `quern-bench` (push, pipeline
16, 50 connections, for --fill seconds), waits until the store has
committed it, then sends `QDEL` while another connection pushes to another
queue every 5 ms. Prints how long the QDEL took and the slowest of those
pushes, and how long the store took to delete the jobs from disk after
the reply (`store_bulk_deletes` back to 0 in INFO). With --load, 100 more connections push to a third queue at full
speed (pipeline 16) from the moment the QDEL answers, and their slowest
push is printed too: the log then fills while LMDB deletes.

    benches/qdel.py --quern target/release/quern --fill 5
    benches/qdel.py --quern target/release/quern --fill 5 --load
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time

from memory import Conn, Server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "quern-bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quern", default=os.path.join(ROOT, "target", "release", "quern"))
    ap.add_argument("--fill", type=float, default=5, help="seconds of pushing before the QDEL")
    ap.add_argument("--after", type=float, default=3, help="seconds of probing after the QDEL answers")
    ap.add_argument("--load", action="store_true", help="push at full speed elsewhere after the QDEL")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        server = Server(args.quern, data, "always")
        try:
            subprocess.run(
                [BENCH, "--port", str(server.port), "--workload", "push", "--pipeline", "16",
                 "--clients", "50", "--duration", str(args.fill)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            server.settle()
            jobs = int(server.conn.call("QLEN", "bench:0"))

            stop = threading.Event()
            slowest = [0.0]

            def probe():
                conn = Conn(server.port)
                while not stop.is_set():
                    started = time.perf_counter()
                    conn.call("QPUSH", "other", "x")
                    slowest[0] = max(slowest[0], time.perf_counter() - started)
                    time.sleep(0.005)

            prober = threading.Thread(target=probe)
            prober.start()
            time.sleep(0.5)
            started = time.perf_counter()
            deleted = int(server.conn.call("QDEL", "bench:0"))
            took = time.perf_counter() - started
            on_disk = [None]

            def watch_disk():
                conn = Conn(server.port)
                while not stop.is_set():
                    info = conn.call("INFO", "persistence").decode()
                    if "store_bulk_deletes:0" in info.split():
                        on_disk[0] = time.perf_counter() - started
                        return
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch_disk)
            watcher.start()
            loaded = None
            if args.load:
                loaded = json.loads(subprocess.run(
                    [BENCH, "--port", str(server.port), "--workload", "push", "--pipeline", "16",
                     "--clients", "100", "--prefix", "load", "--duration", str(args.after),
                     "--warmup", "0", "--json"],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout)
            else:
                time.sleep(args.after)
            stop.set()
            prober.join()
            watcher.join()
        finally:
            server.stop()
    print(f"QDEL of {deleted} jobs (QLEN said {jobs}) took {took * 1000:.0f} ms; "
          f"the slowest push to another queue meanwhile took {slowest[0] * 1000:.0f} ms")
    if on_disk[0] is None:
        print(f"the jobs were still being deleted from disk {args.after:.0f} s after the QDEL")
    else:
        print(f"the jobs were deleted from disk {on_disk[0] * 1000:.0f} ms after the QDEL was sent")
    if loaded:
        print(f"100 connections pushing at full speed after it: {loaded['ops_per_s']:.0f} pushes/s, "
              f"p99 {loaded['p99_ms']:.1f} ms, slowest {loaded['max_ms']:.0f} ms")


if __name__ == "__main__":
    main()
