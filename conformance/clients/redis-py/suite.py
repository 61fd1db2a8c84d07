"""The conformance scenarios through redis-py: the sync and asyncio clients,
with redis-py's default handshake and with protocol=2 and protocol=3.

Run by run.sh; the contract is in conformance/README.md.
"""

import asyncio
import os
import subprocess
import sys
import time

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff
from redis._parsers.commands import CommandsParser
from redis.retry import Retry

PORT = int(os.environ["QUERN_PORT"])
AUTH_PORT = int(os.environ["QUERN_AUTH_PORT"])
PASSWORD = os.environ["QUERN_PASSWORD"]
RESTART = os.environ["QUERN_RESTART"]


class Client:
    """One way of talking to the server: sync or asyncio, one protocol.
    Scenarios await its methods either way."""

    def __init__(self, mode, protocol, tag):
        self.mode, self.protocol, self.tag = mode, protocol, tag

    def make(self, **kwargs):
        if "retry" in kwargs and self.mode == "async":
            kwargs["retry"] = redis.asyncio.retry.Retry(NoBackoff(), 0)
        if self.protocol is not None:
            kwargs["protocol"] = self.protocol
        kwargs.setdefault("port", PORT)
        factory = redis.Redis if self.mode == "sync" else redis.asyncio.Redis
        return factory(**kwargs)

    async def do(self, client, *args):
        result = client.execute_command(*args)
        return await result if self.mode == "async" else result

    async def blocking(self, client, *args):
        """A blocking command, run without stalling the caller."""
        if self.mode == "async":
            return await client.execute_command(*args)
        return await asyncio.to_thread(client.execute_command, *args)

    async def pipeline(self, client, commands):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        result = pipe.execute()
        return await result if self.mode == "async" else result

    async def close(self, client):
        if self.mode == "async":
            await client.aclose()
        else:
            client.close()


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def as_dict(reply):
    """A map in RESP3, a flat field/value list in RESP2: both as a dict."""
    if isinstance(reply, list):
        reply = dict(zip(reply[::2], reply[1::2]))
    return {text(k): v for k, v in reply.items()}


async def blocked_count(c, client):
    info = await (client.info("clients") if c.mode == "async" else asyncio.to_thread(client.info, "clients"))
    return info["blocked_clients"]


async def scenarios(c):
    q = f"py:{c.tag}"
    r = c.make()

    async def connect():
        assert await (r.ping() if c.mode == "async" else asyncio.to_thread(r.ping))

    async def push_options():
        job = await c.do(r, "QPUSH", q + ":opt", "payload", "PRIORITY", 5, "RETRIES", 2, "BACKOFF", 100, "LEASE", 5000)
        fields = as_dict(await c.do(r, "QGET", q + ":opt", job))
        assert (fields["priority"], fields["retries"]) == (5, 2), fields

    async def mpush():
        ids = await c.do(r, "QMPUSH", q + ":m", 3, "a", "b", "c")
        assert len(ids) == 3 and ids[1] == ids[0] + 1 and ids[2] == ids[0] + 2, ids

    async def blocking_pull():
        worker = c.make()
        pull = asyncio.ensure_future(c.blocking(worker, "QPULL", q + ":b", "BLOCK", 5000))
        deadline = time.monotonic() + 5
        while await blocked_count(c, r) < 1:
            assert time.monotonic() < deadline, "the pull never blocked"
            await asyncio.sleep(0.01)
        job = await c.do(r, "QPUSH", q + ":b", "wake")
        jobs = await pull
        assert jobs[0][1] == job and jobs[0][2] == b"wake", jobs
        await c.close(worker)

    async def ack():
        await c.do(r, "QPUSH", q + ":a", "x")
        [[_, job, _, _]] = await c.do(r, "QPULL", q + ":a")
        assert await c.do(r, "QACK", q + ":a", job) == 1
        assert await c.do(r, "QACK", q + ":a", job) == 0

    async def fail_dead_requeue():
        job = await c.do(r, "QPUSH", q + ":d", "x", "RETRIES", 0)
        await c.do(r, "QPULL", q + ":d")
        assert text(await c.do(r, "QFAIL", q + ":d", job, "ERROR", "boom")) == "dead"
        listed = await c.do(r, "QDLQ", "LIST", q + ":d")
        assert listed[0][1] == job and listed[0][4] == b"boom", listed
        assert await c.do(r, "QDLQ", "REQUEUE", q + ":d", "ALL") == 1

    async def stats():
        await c.do(r, "QPUSH", q + ":s", "x")
        fields = as_dict(await c.do(r, "QSTATS", q + ":s"))
        assert (fields["waiting"], fields["pushed"]) == (1, 1), fields

    async def pipeline():
        ids = await c.pipeline(r, [("QPUSH", q + ":p", i) for i in range(1000)])
        assert len(ids) == 1000 and ids == sorted(ids) and len(set(ids)) == 1000, ids[:5]
        assert await c.do(r, "QLEN", q + ":p") == 1000

    async def error_type():
        try:
            await c.do(r, "QPUSH", q, "x", "PRIORITY", "high")
        except redis.ResponseError as e:
            assert "not an integer" in str(e), e
        else:
            raise AssertionError("no error")

    async def auth():
        # redis-py counts NOAUTH as a connection error and retries it with
        # backoff by default (as against Redis); once is enough here.
        anonymous = c.make(port=AUTH_PORT, retry=Retry(NoBackoff(), 0))
        try:
            await c.do(anonymous, "QLEN", q)
            raise AssertionError("a command without the password succeeded")
        except redis.AuthenticationError:
            pass  # redis-py raises this for NOAUTH
        finally:
            await c.close(anonymous)
        authed = c.make(port=AUTH_PORT, password=PASSWORD)
        assert await c.do(authed, "PING")
        await c.close(authed)

    async def reconnect():
        await c.do(r, "QMPUSH", q + ":r", 2, "a", "b")
        subprocess.run(RESTART, shell=True, check=True)
        # The client's next command finds its connection gone; redis-py
        # reconnects on the retry it makes by default.
        assert await c.do(r, "QLEN", q + ":r") == 2

    async def keys():
        # How redis-py's cluster client routes a command it does not know:
        # by the key positions COMMAND gives (or COMMAND GETKEYS).
        parser = CommandsParser(r)
        assert parser.get_keys(r, "QPUSH", q, "x") == [q]
        assert parser.get_keys(r, "QDLQ", "LIST", q) == [q]
        assert [text(k) for k in parser.get_keys(r, "QMPULL", "2", q, "other", "COUNT", "1")] == [q, "other"]

    steps = [connect, push_options, mpush, blocking_pull, ack, fail_dead_requeue, stats, pipeline, error_type, auth,
             reconnect]
    if c.mode == "sync":
        steps.append(keys)
    failed = 0
    for step in steps:
        try:
            await asyncio.wait_for(step(), timeout=20)
            print(f"PASS {step.__name__}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next scenario runs
            failed += 1
            print(f"FAIL {step.__name__} {type(e).__name__}: {e}".replace("\n", " "), flush=True)
    await c.close(r)
    return failed


def main():
    variants = [
        ("sync", None, "sync, default handshake"),
        ("sync", 2, "sync, protocol=2"),
        ("sync", 3, "sync, protocol=3"),
        ("async", 2, "asyncio, protocol=2"),
        ("async", 3, "asyncio, protocol=3"),
    ]
    failed = 0
    for mode, protocol, label in variants:
        print(f"SUITE redis-py@{redis.__version__} ({label})", flush=True)
        tag = f"{mode}{protocol or 'default'}"
        failed += asyncio.run(scenarios(Client(mode, protocol, tag)))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
