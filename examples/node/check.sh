#!/usr/bin/env bash
# Runs the Node producer and worker (ioredis, installed locally from
# package-lock.json) against QUERN_PORT and checks what they did: jobs
# acked, failing jobs retried then dead with the handler's message, a long
# job kept alive by QTOUCH, and on SIGTERM a long job handed back with the
# same attempt number and the worker exiting 0.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >&2
export REDIS_URL=redis://127.0.0.1:$QUERN_PORT QUEUE=example:node
cli() { redis-cli -p "$QUERN_PORT" "$@"; }
field() { cli QSTATS "$QUEUE" | grep -A1 -x "$1" | tail -1; }
fail() { echo "node example: $*" >&2; exit 1; }
wait_for() { # field value
  for _ in $(seq 300); do [ "$(field "$1")" = "$2" ] && return; sleep 0.05; done
  fail "timed out waiting for $1 = $2 (is $(field "$1"))"
}
worker=
trap '[ -z "$worker" ] || kill "$worker" 2>/dev/null || true' EXIT

node producer.js '{"n": 1}' '{"n": 2}' '{"n": 3}'
RETRIES=0 node producer.js '{"fail": true}'   # dead on its first failure
RETRIES=1 node producer.js '{"fail": 2}'      # retried once (after ~1 s), then dead
# A short lease: the worker renews it every LEASE_MS/3 while a job runs.
LEASE_MS=1000 node worker.js &
worker=$!
wait_for acked 3
wait_for dead 2
[ "$(field failed)" = 3 ] && [ "$(field retried)" = 1 ] || fail "failed $(field failed), retried $(field retried)"
cli QDLQ LIST "$QUEUE" | grep -q 'cannot handle {"fail": true}' || fail "no handler message in the DLQ"

# Three seconds on a one-second lease: only QTOUCH keeps it.
LEASE=1000 node producer.js '{"seconds": 3}'
wait_for acked 4
[ "$(field expired_leases)" = 0 ] || fail "a lease ran out: QTOUCH did not renew it"

# SIGTERM while the worker holds a long job: the job goes back to waiting
# with its attempt not counted, and the worker exits 0.
long=$(cli QPUSH "$QUEUE" '{"seconds": 60}')
wait_for active 1
attempt=$(cli QGET "$QUEUE" "$long" | grep -A1 -x attempt | tail -1)
kill -TERM "$worker"
status=0; wait "$worker" || status=$?
worker=
[ "$status" = 0 ] || fail "the worker exited $status on SIGTERM"
wait_for waiting 1
[ "$(cli QPEEK "$QUEUE" | sed -n '2p;4p' | paste -sd' ')" = "$long $attempt" ] || fail "QPEEK: $(cli QPEEK "$QUEUE" | paste -sd' ')"
[ "$(field failed)" = 3 ] || fail "the handed-back job counted a failed attempt"
echo "node example: ok"
