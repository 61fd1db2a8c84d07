#!/usr/bin/env bash
# redis-cli (Debian's redis-tools) through the conformance scenarios, plus
# its interactive hints (from COMMAND DOCS), RESP3 with -3 and --pipe.
set -uo pipefail
cd "$(dirname "$0")"
command -v redis-cli >/dev/null || { echo "FAIL connect redis-cli is not installed"; exit 1; }
echo "SUITE redis-cli@$(redis-cli --version | cut -d' ' -f2)"
cli() { redis-cli -p "$QUERN_PORT" "$@"; }
failed=0
check() { # scenario command...: PASS when the command succeeds
  local name=$1; shift
  local why
  if why=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name ${why//$'\n'/ }"; failed=1; fi
}
want() { # wanted got
  [ "$1" = "$2" ] || { echo "wanted '$1', got '$2'"; return 1; }
}

connect() { want PONG "$(cli PING)" && want "proto 3" "$(cli -3 HELLO 3 | grep "^proto ")"; }

push_options() {
  local id; id=$(cli QPUSH cli:opt payload PRIORITY 5 RETRIES 2 BACKOFF 100 LEASE 5000)
  [[ $id =~ ^[0-9]+$ ]] || { echo "id: $id"; return 1; }
  want "priority 5" "$(cli QGET cli:opt "$id" | grep -A1 -x priority | paste -sd' ')" &&
    want "retries 2" "$(cli QGET cli:opt "$id" | grep -A1 -x retries | paste -sd' ')"
}

mpush() {
  local ids; ids=($(cli QMPUSH cli:m 3 a b c))
  [ ${#ids[@]} = 3 ] && want $((ids[0] + 2)) "${ids[2]}"
}

blocking_pull() {
  local out; out=$(mktemp)
  cli QPULL cli:b BLOCK 5000 >"$out" &
  local bg=$!
  for _ in $(seq 250); do cli INFO clients | grep -q '^blocked_clients:1' && break; sleep 0.02; done
  local id; id=$(cli QPUSH cli:b wake)
  wait "$bg"
  want "cli:b $id wake 1" "$(paste -sd' ' "$out")"
  local rc=$?; rm -f "$out"; return $rc
}

ack() {
  cli QPUSH cli:a x >/dev/null
  local id; id=$(cli QPULL cli:a | sed -n 2p)
  want 1 "$(cli QACK cli:a "$id")" && want 0 "$(cli QACK cli:a "$id")"
}

fail_dead_requeue() {
  local id; id=$(cli QPUSH cli:d x RETRIES 0)
  cli QPULL cli:d >/dev/null
  want dead "$(cli QFAIL cli:d "$id" ERROR boom)" &&
    want boom "$(cli QDLQ LIST cli:d | sed -n 5p)" &&
    want 1 "$(cli QDLQ REQUEUE cli:d ALL)"
}

stats() {
  cli QPUSH cli:s x >/dev/null
  want "waiting 1" "$(cli QSTATS cli:s | head -2 | paste -sd' ')" &&
    want '1# "waiting" => (integer) 1' "$(cli --no-raw -3 QSTATS cli:s | head -1 | sed 's/^ *//')"
}

pipeline() {
  local result
  result=$(for i in $(seq 1000); do printf '*3\r\n$5\r\nQPUSH\r\n$5\r\ncli:p\r\n$%d\r\n%s\r\n' "${#i}" "$i"; done | cli --pipe)
  [[ $result == *"errors: 0, replies: 1000"* ]] || { echo "$result"; return 1; }
  want 1000 "$(cli QLEN cli:p)"
}

error_type() {
  want "(error) ERR value is not an integer or out of range" "$(cli --no-raw QPUSH cli:e x PRIORITY high)"
}

auth() {
  local no; no=$(redis-cli -p "$QUERN_AUTH_PORT" QLEN cli:x)
  [[ $no == NOAUTH* ]] || { echo "without a password: $no"; return 1; }
  want PONG "$(redis-cli -p "$QUERN_AUTH_PORT" -a "$QUERN_PASSWORD" --no-auth-warning PING)"
}

reconnect() { python3 interactive.py reconnect "$QUERN_PORT" "$QUERN_RESTART"; }
hints() { python3 interactive.py hints "$QUERN_PORT"; }

for scenario in connect push_options mpush blocking_pull ack fail_dead_requeue stats pipeline error_type auth \
  reconnect hints; do
  check "$scenario" "$scenario"
done
exit $failed
