#!/usr/bin/env python3
"""Heap per waiting job, a backlog under a memory cap, and restart time.

For each backlog size: start a fresh `quern` (fsync always, the default,
unless --fsync says otherwise), push that many 100-byte
jobs with pipelined QMPUSH, wait until the store has committed them, and
read the server's RssAnon (its heap: LMDB's file pages are not anonymous
memory). Then stop it, start it again on the same data and time how long it
takes until it answers PING (it binds its port only once every job is
loaded), and read RssAnon once more: the heap of a server that holds the
backlog and nothing else.

With --cap-mib, the server runs in a cgroup (v2 `memory.max`, or v1
`memory.limit_in_bytes`) so a backlog whose payloads are larger than the
cap shows that payloads live on disk; RssAnon is sampled as the backlog
grows (--every), which gives the curve.

    benches/memory.py --quern target/release/quern --jobs 1000000 --jobs 10000000
    benches/memory.py --jobs 50000000 --cap-mib 2048 --every 5000000

Prints a table, and one JSON object per backlog with --json.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BATCH = 1000  # jobs per QMPUSH
DEPTH = 16  # QMPUSH commands in flight


def payload(size):
    p = b'{"id":1,"type":"email.send","to":"user1@example.com","attempt":0,"ts":1700000000123,"pad":""}'
    return p[:-2] + b"x" * max(0, size - len(p)) + b'"}'


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """Just enough RESP2 to push and to read INFO."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind in (b"+", b":"):
            return rest
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.sock.sendall(command(*args))
        return self.reply()


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cap:
    """A memory cgroup for the server, v2 or v1, removed at the end."""

    def __init__(self, mib):
        self.limit = mib << 20
        for root, limit_file in (("/sys/fs/cgroup", "memory.max"), ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")):
            if os.path.exists(os.path.join(root, limit_file)) or os.path.exists(os.path.join(root, "cgroup.controllers")):
                path = os.path.join(root, f"quern-bench-{os.getpid()}")
                try:
                    os.mkdir(path)
                    with open(os.path.join(path, limit_file), "w") as f:
                        f.write(str(self.limit))
                except OSError:
                    continue
                self.path, self.limit_file = path, limit_file
                return
        raise SystemExit("--cap-mib: no writable memory cgroup here (v2 memory.max or v1 memory.limit_in_bytes)")

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


class Server:
    def __init__(self, binary, data, fsync, cap=None, env=None):
        self.port = free_port()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--http", "127.0.0.1:0", "--dir", data, "--fsync", fsync],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if cap:
            cap.add(self.proc.pid)
        # The port is bound only after every stored job is loaded.
        deadline = time.monotonic() + 600
        while True:
            try:
                self.conn = Conn(self.port)
                self.conn.call("PING")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"quern did not start: {self.proc.stderr.read()}")
                time.sleep(0.005)
        self.ready_s = time.monotonic() - self.started

    def rss(self):
        return rss_anon_kib(self.proc.pid) * 1024

    def settle(self):
        """Waits until every change is committed."""
        while True:
            info = self.conn.call("INFO", "persistence").decode()
            pending = [l for l in info.splitlines() if l.startswith("store_pending:")]
            if pending and pending[0].split(":")[1].strip() == "0":
                return
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        return self.proc.stderr.read()


def load(server, jobs, size, every, on_sample):
    body = payload(size)
    queue = b"backlog"
    sent = 0
    inflight = 0
    next_sample = every
    while sent < jobs or inflight:
        while inflight < DEPTH and sent < jobs:
            n = min(BATCH, jobs - sent)
            server.conn.sock.sendall(command(b"QMPUSH", queue, n, *([body] * n)))
            sent += n
            inflight += 1
        server.conn.reply()
        inflight -= 1
        if every and sent >= next_sample:
            on_sample(sent)
            next_sample += every


def measure(binary, jobs, size, fsync, cap_mib, every):
    data = tempfile.mkdtemp(prefix="quern-memory-")
    cap = Cap(cap_mib) if cap_mib else None
    try:
        server = Server(binary, data, fsync, cap)
        time.sleep(0.2)
        base = server.rss()
        curve = []
        t0 = time.monotonic()
        load(server, jobs, size, every, lambda n: curve.append((n, server.rss())))
        server.settle()
        load_s = time.monotonic() - t0
        loaded = server.rss()
        qlen = int(server.conn.call("QLEN", "backlog"))
        assert qlen == jobs, f"QLEN {qlen} after pushing {jobs}"
        server.stop()
        disk = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))

        # The baseline for the restarted server: an empty one started alike.
        empty_data = tempfile.mkdtemp(prefix="quern-memory-empty-")
        empty = Server(binary, empty_data, fsync)
        time.sleep(0.2)
        empty_rss = empty.rss()
        empty.stop()
        shutil.rmtree(empty_data, ignore_errors=True)

        again = Server(binary, data, fsync, cap)
        time.sleep(0.2)
        restarted = again.rss()
        qlen_again = int(again.conn.call("QLEN", "backlog"))
        log = again.stop()
        assert qlen_again == jobs, f"QLEN {qlen_again} after restart"
        return {
            "jobs": jobs,
            "payload_bytes": size,
            "fsync": fsync,
            "cap_mib": cap_mib,
            "load_s": round(load_s, 2),
            "load_jobs_per_s": round(jobs / load_s),
            "rss_anon_empty_mib": round(base / 2**20, 1),
            "rss_anon_loaded_mib": round(loaded / 2**20, 1),
            "heap_bytes_per_job_loaded": round((loaded - base) / jobs, 1),
            "rss_anon_restarted_mib": round(restarted / 2**20, 1),
            "heap_bytes_per_job_restarted": round((restarted - empty_rss) / jobs, 1),
            "restart_ready_s": round(again.ready_s, 3),
            "data_on_disk_mib": round(disk / 2**20),
            "curve": [{"jobs": n, "rss_anon_mib": round(r / 2**20, 1)} for n, r in curve],
            "server_log": log.strip().splitlines()[:1],
        }
    finally:
        if cap:
            cap.remove()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quern", default="target/release/quern")
    ap.add_argument("--jobs", type=int, action="append", help="backlog size (repeatable); default 1M")
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--fsync", default="always", choices=["always", "everysec", "no"])
    ap.add_argument("--cap-mib", type=int, default=0, help="run the server under this memory cap")
    ap.add_argument("--every", type=int, default=0, help="sample RssAnon every this many jobs")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = [measure(a.quern, n, a.payload, a.fsync, a.cap_mib, a.every) for n in (a.jobs or [1_000_000])]
    if a.json:
        for r in results:
            print(json.dumps(r))
        return
    print(f"{'jobs':>11} {'heap B/job':>10} {'after restart':>13} {'restart s':>9} {'load jobs/s':>11} {'disk MiB':>8} {'cap MiB':>7}")
    for r in results:
        print(
            f"{r['jobs']:>11,} {r['heap_bytes_per_job_loaded']:>10} {r['heap_bytes_per_job_restarted']:>13} "
            f"{r['restart_ready_s']:>9} {r['load_jobs_per_s']:>11,} {r['data_on_disk_mib']:>8} {r['cap_mib'] or '-':>7}"
        )
        for point in r["curve"]:
            print(f"{'':>11} at {point['jobs']:>11,} jobs: RssAnon {point['rss_anon_mib']} MiB")


if __name__ == "__main__":
    sys.exit(main())
