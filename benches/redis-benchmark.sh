#!/usr/bin/env bash
# QPUSH on Quern against LPUSH on Redis 7, with the same load client
# (redis-benchmark), in one run, alternating servers; prints the median of
# RUNS runs per server and the ratios. Needs redis-server and
# redis-benchmark (Debian's redis-server package) and a release build:
#   cargo build --release -p quern && benches/redis-benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} CLIENTS=${CLIENTS:-50} N=${N:-50000} PIPE_N=${PIPE_N:-200000}
quern=target/release/quern
[ -x "$quern" ] || { echo "build first: cargo build --release -p quern" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.1; done; exit 1; }

qp=$(free_port); "$quern" --port "$qp" --http 127.0.0.1:0 --dir "$work/quern" >/dev/null 2>&1 & pids+=($!)
rp=$(free_port); redis-server --port "$rp" --save '' --appendonly no >/dev/null 2>&1 & pids+=($!)
ap=$(free_port); redis-server --port "$ap" --save '' --appendonly yes --appendfsync always --dir "$work" >/dev/null 2>&1 & pids+=($!)
for p in "$qp" "$rp" "$ap"; do wait_port "$p"; done

rate() { # port n pipeline command...
  local port=$1 n=$2 pipe=$3; shift 3
  redis-benchmark -p "$port" -c "$CLIENTS" -n "$n" -P "$pipe" -q "$@" 2>/dev/null \
    | grep -o '[0-9.]* requests per second' | cut -d' ' -f1
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

payload=$(head -c 100 /dev/zero | tr '\0' x)
printf '%-10s %14s %18s %18s %10s %10s\n' pipeline "quern always" "redis no persist" "redis aof always" "÷ no-pers" "÷ aof"
for pipe in 1 16; do
  n=$([ "$pipe" = 1 ] && echo "$N" || echo "$PIPE_N")
  : >"$work/q"; : >"$work/r"; : >"$work/a"
  for _ in $(seq "$RUNS"); do
    rate "$qp" "$n" "$pipe" QPUSH q "$payload" >>"$work/q"
    rate "$rp" "$n" "$pipe" LPUSH q "$payload" >>"$work/r"
    rate "$ap" "$n" "$pipe" LPUSH q "$payload" >>"$work/a"
  done
  q=$(median <"$work/q"); r=$(median <"$work/r"); a=$(median <"$work/a")
  awk -v p="$pipe" -v q="$q" -v r="$r" -v a="$a" \
    'BEGIN { printf "%-10s %14.0f %18.0f %18.0f %10.2f %10.2f\n", p, q, r, a, q / r, q / a }'
done
