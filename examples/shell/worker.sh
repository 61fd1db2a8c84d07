#!/usr/bin/env bash
# A Quern worker with redis-cli. Each job's payload (one line, e.g. JSON)
# goes to HANDLER on stdin: exit 0 acks the job; otherwise the job fails
# with the handler's last line of stderr as its error. While the handler
# runs the lease is renewed; on SIGTERM the job is handed back unattempted.
#   QUEUE=emails HANDLER=./send-email ./worker.sh
set -uo pipefail
queue=${QUEUE:-emails}
handler=${HANDLER:?set HANDLER to a command that reads the payload on stdin}
lease_ms=30000
cli() { redis-cli -p "${PORT:-6379}" "$@"; }
stopping=0
trap 'stopping=1' TERM INT
# Job control: each handler runs in a process group of its own, so stopping
# it stops whatever it started too.
set -m

while [ "$stopping" = 0 ]; do
  # One job: queue, id, payload, attempt on four lines (nothing on timeout).
  mapfile -t job < <(cli QPULL "$queue" BLOCK 1000 LEASE "$lease_ms")
  [ "${#job[@]}" -eq 4 ] || continue
  id=${job[1]} attempt=${job[3]}
  errors=$(mktemp)
  $handler <<<"${job[2]}" 2>"$errors" &
  running=$!
  touched=$SECONDS
  while kill -0 "$running" 2>/dev/null; do
    if [ "$stopping" = 1 ]; then
      kill -- "-$running" 2>/dev/null
      wait "$running" 2>/dev/null
      cli QFAIL "$queue" "$id" SILENT ATTEMPT "$attempt" >/dev/null
      rm -f "$errors"
      exit 0
    fi
    if (( SECONDS - touched >= lease_ms / 3000 )); then
      cli QTOUCH "$queue" "$id" ATTEMPT "$attempt" >/dev/null
      touched=$SECONDS
    fi
    sleep 0.1
  done
  if wait "$running"; then
    cli QACK "$queue" "$id" ATTEMPT "$attempt" >/dev/null
  else
    error=$(tail -n 1 "$errors")
    echo "job $id failed (${error:-exit status}): now $(cli QFAIL "$queue" "$id" ERROR "${error:-failed}" ATTEMPT "$attempt")"
  fi
  rm -f "$errors"
done
echo "worker stopped"
