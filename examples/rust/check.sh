#!/usr/bin/env bash
# Runs the Rust producer and worker against QUERN_PORT and checks what they
# did: jobs acked, a failing job dead, and on SIGTERM a long job handed back
# unattempted.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p quern-example
export REDIS_URL=redis://127.0.0.1:$QUERN_PORT QUEUE=example:rs
cli() { redis-cli -p "$QUERN_PORT" "$@"; }
field() { cli QSTATS "$QUEUE" | grep -A1 -x "$1" | tail -1; }
wait_for() { # field value
  for _ in $(seq 200); do [ "$(field "$1")" = "$2" ] && return; sleep 0.05; done
  echo "timed out waiting for $1 = $2 (is $(field "$1"))" >&2; exit 1
}

target/debug/producer '{"n": 1}' '{"n": 2}' '{"n": 3}'
cli QPUSH "$QUEUE" '{"fail": true}' RETRIES 0 >/dev/null
target/debug/worker &
worker=$!
wait_for acked 3
wait_for dead 1
cli QDLQ LIST "$QUEUE" | grep -q "cannot handle"

long=$(cli QPUSH "$QUEUE" '{"seconds": 60}')
wait_for active 1
kill -TERM "$worker"
wait "$worker"
wait_for waiting 1
[ "$(cli QPEEK "$QUEUE" | sed -n '2p;4p' | paste -sd' ')" = "$long 1" ]
echo "rust example: ok"
