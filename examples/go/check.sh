#!/usr/bin/env bash
# Builds the Go producer and worker offline (Debian's Go and redigo), runs
# them against QUERN_PORT and checks what they did: jobs acked, a failing job
# dead with its error, a long job kept with QTOUCH past its lease, and on
# SIGTERM that job handed back with its attempt count unchanged, exit 0.
set -euo pipefail
cd "$(dirname "$0")"

packages=(golang-go golang-github-gomodule-redigo-dev)
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
    { "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
fi
# GOPATH mode against the packaged source in /usr/share/gocode: no module
# proxy, no download, a build cache of this folder's own.
export GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOENV=off GOCACHE=$PWD/.cache/go-build
go build -o .cache/bin/producer ./producer
go build -o .cache/bin/worker ./worker

export REDIS_URL=redis://127.0.0.1:$QUERN_PORT QUEUE=example:go:$$
cli() { redis-cli -p "$QUERN_PORT" "$@"; }
value() { grep -A1 -x "$1" | tail -1; } # a field's value in a RESP2 field/value list
stat() { cli QSTATS "$QUEUE" | value "$1"; }
job() { cli QGET "$QUEUE" "$1" | value "$2"; }
fail() { echo "go example: $*" >&2; exit 1; }
wait_for() { # field value
  for _ in $(seq 200); do [ "$(stat "$1")" = "$2" ] && return; sleep 0.05; done
  fail "timed out waiting for $1 = $2 (is $(stat "$1"))"
}

.cache/bin/producer '{"n": 1}' '{"n": 2}' '{"n": 3}'
failing=$(cli QPUSH "$QUEUE" '{"fail": true}' RETRIES 0)
# A short lease, so that the long job below outlives it unless QTOUCH renews it.
LEASE_MS=1500 .cache/bin/worker &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT
wait_for acked 3
wait_for dead 1
cli QDLQ LIST "$QUEUE" | grep -q "cannot handle" || fail "no 'cannot handle' error in QDLQ LIST"
[ "$(cli QDLQ LIST "$QUEUE" | sed -n 2p)" = "$failing" ] || fail "job $failing is not the dead one"

long=$(cli QPUSH "$QUEUE" '{"seconds": 60}')
wait_for active 1
sleep 3 # twice the lease: only QTOUCH keeps it active
[ "$(job "$long" state)" = active ] || fail "job $long lost its lease"
[ "$(job "$long" attempt)" = 1 ] || fail "job $long was delivered again"
[ "$(stat expired_leases)" = 0 ] || fail "a lease ran out"

kill -TERM "$worker"
status=0; wait "$worker" || status=$?
trap - EXIT
[ "$status" = 0 ] || fail "the worker exited $status on SIGTERM"
wait_for waiting 1
wait_for active 0
# Handed back with SILENT: no failed attempt counted (only the failing job's),
# and the next delivery is still attempt 1.
[ "$(stat failed)" = 1 ] || fail "failed is $(stat failed), not 1"
[ "$(cli QPEEK "$QUEUE" | sed -n '2p;4p' | paste -sd' ')" = "$long 1" ] || fail "QPEEK: $(cli QPEEK "$QUEUE" | paste -sd' ')"
echo "go example: ok"
