#!/usr/bin/env bash
# Runs the shell producer and worker against QUERN_PORT and checks what they
# did: jobs acked, a failing job dead, and on SIGTERM a long job handed back
# unattempted.
set -euo pipefail
cd "$(dirname "$0")"
export PORT=$QUERN_PORT QUEUE=example:sh HANDLER=./handler.sh
cli() { redis-cli -p "$QUERN_PORT" "$@"; }
field() { cli QSTATS "$QUEUE" | grep -A1 -x "$1" | tail -1; }
wait_for() { # field value
  for _ in $(seq 200); do [ "$(field "$1")" = "$2" ] && return; sleep 0.05; done
  echo "timed out waiting for $1 = $2 (is $(field "$1"))" >&2; exit 1
}

./producer.sh '{"n": 1}' '{"n": 2}' '{"n": 3}'
cli QPUSH "$QUEUE" '{"fail": true}' RETRIES 0 >/dev/null
./worker.sh &
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
echo "shell example: ok"
