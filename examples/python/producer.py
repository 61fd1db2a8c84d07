"""Pushes jobs to a Quern queue with redis-py: no SDK, just QPUSH.

    REDIS_URL=redis://localhost:6379 python producer.py '{"to": "ada@example.com"}' ...
"""

import os
import sys

import redis

r = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379"))
queue = os.environ.get("QUEUE", "emails")

for payload in sys.argv[1:]:
    # RETRIES: failed attempts retried before the job goes to the dead-letter
    # queue; LEASE: how long a worker may hold it before it comes back.
    job_id = r.execute_command("QPUSH", queue, payload, "RETRIES", 3, "LEASE", 30_000)
    print(f"pushed job {job_id}")
