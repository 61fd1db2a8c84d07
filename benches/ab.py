#!/usr/bin/env python3
"""Two Quern builds (or one build with two environments) taking turns
under the same load: the way to tell what one change did on a noisy
machine, where two full comparison runs differ by more than most changes.

Each repetition starts A, then B, each on a fresh data directory, runs
`quern-bench` against it with the arguments after `--`, and stops it.
Prints every run, then the medians of throughput and of the server's CPU
per 1,000 operations.

    benches/ab.py /tmp/quern-before target/release/quern --reps 5 -- --workload push --pipeline 16 --duration 3
    benches/ab.py target/release/quern target/release/quern --env-b TOKIO_WORKER_THREADS=1 -- --pipeline 1
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from memory import Server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "quern-bench")


def env_pairs(pairs):
    return dict(p.split("=", 1) for p in pairs)


def run(binary, env, bench_args):
    with tempfile.TemporaryDirectory() as data:
        server = Server(binary, data, "always", env=env)
        try:
            out = subprocess.run(
                [BENCH, "--port", str(server.port), "--server-pid", str(server.proc.pid), "--json", *bench_args],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            server.stop()
    return json.loads(out)


def main():
    argv = sys.argv[1:]
    bench_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="the first server binary")
    ap.add_argument("b", help="the second server binary (may be the same)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--env-a", action="append", default=[], metavar="K=V")
    ap.add_argument("--env-b", action="append", default=[], metavar="K=V")
    args = ap.parse_args(own)
    sides = [("A", args.a, env_pairs(args.env_a)), ("B", args.b, env_pairs(args.env_b))]
    results = {"A": [], "B": []}
    for rep in range(1, args.reps + 1):
        for name, binary, env in sides:
            r = run(binary, env, bench_args)
            results[name].append(r)
            print(
                f"{name} rep {rep}: {r['ops_per_s']:>10.0f} ops/s  "
                f"{r['server_cpu_ms_per_1k_ops']:6.2f} ms CPU per 1k  p50 {r['p50_ms']} p99 {r['p99_ms']} ms",
                flush=True,
            )
    for name, _, _ in sides:
        rs = results[name]
        print(
            f"{name} median: {statistics.median(r['ops_per_s'] for r in rs):.0f} ops/s, "
            f"{statistics.median(r['server_cpu_ms_per_1k_ops'] for r in rs):.2f} ms CPU per 1k"
        )


if __name__ == "__main__":
    main()
