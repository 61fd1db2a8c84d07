"""A Quern worker with redis-py: pull, handle, ack, or fail with the error.

Long jobs keep their lease with QTOUCH. On SIGTERM the worker stops pulling
and hands an unfinished job back with QFAIL ... SILENT (the attempt is not
counted), then exits.

    REDIS_URL=redis://localhost:6379 python worker.py
"""

import json
import os
import signal
import threading
import time

import redis

URL = os.environ.get("REDIS_URL", "redis://localhost:6379")
QUEUE = os.environ.get("QUEUE", "emails")
LEASE_MS = 30_000

commands = redis.Redis.from_url(URL)
# Blocking pulls get a connection of their own, so they never hold up acks.
puller = redis.Redis.from_url(URL, socket_timeout=None)
stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
signal.signal(signal.SIGINT, lambda *_: stopping.set())


def handle(payload):
    """Your work goes here. Raise to fail the job."""
    job = json.loads(payload)
    if job.get("fail"):
        raise RuntimeError(f"cannot handle {job}")
    time.sleep(job.get("seconds", 0))


def run(queue, job_id, payload, attempt):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(error=capture(handle, payload)), daemon=True)
    thread.start()
    last_touch = time.monotonic()
    while thread.is_alive():
        if stopping.is_set():
            # Not finished: back to the queue for another worker, unattempted.
            commands.execute_command("QFAIL", queue, job_id, "SILENT", "ATTEMPT", attempt)
            return
        if time.monotonic() - last_touch > LEASE_MS / 3000:
            commands.execute_command("QTOUCH", queue, job_id, "ATTEMPT", attempt)
            last_touch = time.monotonic()
        thread.join(0.1)
    if outcome["error"] is None:
        commands.execute_command("QACK", queue, job_id, "ATTEMPT", attempt)
    else:
        state = commands.execute_command("QFAIL", queue, job_id, "ERROR", str(outcome["error"]), "ATTEMPT", attempt)
        print(f"job {job_id} failed ({outcome['error']}): now {state.decode()}", flush=True)


def capture(function, *args):
    try:
        function(*args)
        return None
    except Exception as e:  # noqa: BLE001 - any error fails the job
        return e


while not stopping.is_set():
    jobs = puller.execute_command("QPULL", QUEUE, "BLOCK", 1000, "LEASE", LEASE_MS)
    for queue, job_id, payload, attempt in jobs or []:
        run(queue, job_id, payload, attempt)
print("worker stopped", flush=True)
