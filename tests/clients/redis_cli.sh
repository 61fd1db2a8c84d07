#!/usr/bin/env bash
# redis-cli against a real quern: commands as the README shows them, RESP3
# with -3, and a mass insert with --pipe.
# Usage: redis_cli.sh path/to/quern
set -euo pipefail
binary=$1
data=$(mktemp -d)
out=$(mktemp)
"$binary" --port 0 --dir "$data" >"$out" 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data" "$out"' EXIT
for _ in $(seq 100); do grep -q Ready "$out" && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out")
cli() { redis-cli -p "$port" "$@"; }
expect() { # expect <wanted> <command...>
  local want=$1; shift
  local got; got=$(cli "$@")
  [ "$got" = "$want" ] || { echo "redis-cli $*: wanted '$want', got '$got'" >&2; exit 1; }
}

expect 1 QPUSH emails '{"to":"ada@example.com"}'
expect 2 QPUSH emails '{"to":"urgent@example.com"}' PRIORITY 10
expect "$(printf 'emails\n2\n{"to":"urgent@example.com"}\n1')" QPULL emails
expect 1 QACK emails 2
expect "$(printf 'emails\n1\n{"to":"ada@example.com"}\n1')" QPULL emails LEASE 60000
expect delayed QFAIL emails 1 ERROR "smtp timeout"
[ "$(cli QSTATS emails | head -4 | paste -sd' ')" = "waiting 0 delayed 1" ] \
  || { echo "QSTATS: $(cli QSTATS emails | head -4)" >&2; exit 1; }
[ "$(cli --no-raw -3 QSTATS emails | head -1 | sed 's/^ *//')" = '1# "waiting" => (integer) 0' ] \
  || { echo "RESP3 QSTATS is not a map: $(cli --no-raw -3 QSTATS emails | head -1)" >&2; exit 1; }
expect "" QPULL empty BLOCK 100
cli COMMAND DOCS QPUSH | grep -q PRIORITY

# Mass insert: 10,000 pushes in RESP form through --pipe.
for i in $(seq 10000); do printf '*3\r\n$5\r\nQPUSH\r\n$4\r\nmass\r\n$%d\r\n%s\r\n' "${#i}" "$i"; done \
  | cli --pipe | grep -q "errors: 0, replies: 10000"
expect 10000 QLEN mass

cli SHUTDOWN || true
wait "$pid"
echo "redis-cli $(redis-cli --version | cut -d' ' -f2): ok"
