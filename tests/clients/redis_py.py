"""redis-py against a real quern: the README's tour, with redis-py's own
handshake (RESP3 by default in redis-py 8) and with protocol=2.

Usage: python redis_py.py path/to/quern
"""

import shutil
import subprocess
import sys
import tempfile
import threading

import redis


def start(binary, *args):
    data = tempfile.mkdtemp(prefix="quern-py-")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--dir", data, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    assert "Ready to accept connections" in line, line
    port = int(line.rsplit(":", 1)[1])
    return proc, port, data


def stop(proc, data):
    proc.terminate()
    assert proc.wait(timeout=30) == 0, "quern did not exit cleanly"
    shutil.rmtree(data)


def scenario(port, protocol):
    kwargs = {} if protocol is None else {"protocol": protocol}
    r = redis.Redis(port=port, **kwargs)
    assert r.ping()
    q = f"py-{protocol}"

    first = r.execute_command("QPUSH", q, b"a\r\nb\x00c", "PRIORITY", 1)
    second = r.execute_command("QPUSH", q, "plain")
    ids = r.execute_command("QMPUSH", q, 2, "m1", "m2")
    assert ids == [second + 1, second + 2], ids

    jobs = r.execute_command("QPULL", q)
    assert jobs == [[q.encode(), first, b"a\r\nb\x00c", 1]], jobs
    assert r.execute_command("QACK", q, first) == 1

    stats = r.execute_command("QSTATS", q)
    if isinstance(stats, list):  # RESP2: a flat field/value list
        stats = dict(zip(stats[::2], stats[1::2]))
    stats = {k.decode() if isinstance(k, bytes) else k: v for k, v in stats.items()}
    assert stats["waiting"] == 3 and stats["acked"] == 1, stats

    # A blocked pull on its own connection, woken by a push from another.
    got = {}
    worker = redis.Redis(port=port, **kwargs)
    t = threading.Thread(target=lambda: got.update(jobs=worker.execute_command("QPULL", q + ":b", "BLOCK", 0)))
    t.start()
    while r.info("clients")["blocked_clients"] < 1:
        pass
    woken = r.execute_command("QPUSH", q + ":b", "wake")
    t.join(timeout=10)
    assert got["jobs"][0][1] == woken, got

    # Fail to dead, then requeue.
    dead = r.execute_command("QPUSH", q + ":d", "x", "RETRIES", 0)
    r.execute_command("QPULL", q + ":d")
    assert r.execute_command("QFAIL", q + ":d", dead, "ERROR", "boom") in (b"dead", "dead")
    listed = r.execute_command("QDLQ", "LIST", q + ":d")
    assert listed[0][1] == dead and listed[0][4] == b"boom", listed
    assert r.execute_command("QDLQ", "REQUEUE", q + ":d", "ALL") == 1

    # Errors surface as redis-py's ResponseError.
    for bad in (("QPUSH", q, "x", "PRIORITY", "high"), ("QACK", q, 1, "ATTEMPT"), ("NOPE",)):
        try:
            r.execute_command(*bad)
        except redis.ResponseError:
            pass
        else:
            raise AssertionError(f"{bad} did not fail")

    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.execute_command("QPUSH", q + ":p", i)
    pushed = pipe.execute()
    assert pushed == sorted(pushed) and len(set(pushed)) == 1000
    assert r.execute_command("QLEN", q + ":p") == 1000


def main():
    binary = sys.argv[1]
    proc, port, data = start(binary)
    try:
        scenario(port, None)  # redis-py's default handshake
        scenario(port, 2)
        scenario(port, 3)
    finally:
        stop(proc, data)

    proc, port, data = start(binary, "--requirepass", "s3cret")
    try:
        try:
            redis.Redis(port=port).ping()
            raise AssertionError("ping without a password succeeded")
        except redis.AuthenticationError:
            pass
        assert redis.Redis(port=port, password="s3cret").ping()
        assert redis.Redis(port=port, password="s3cret", protocol=2).ping()
    finally:
        stop(proc, data)
    print(f"redis-py {redis.__version__}: ok")


if __name__ == "__main__":
    main()
