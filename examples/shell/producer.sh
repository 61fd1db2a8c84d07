#!/usr/bin/env bash
# Pushes one job per argument to a Quern queue with redis-cli.
#   QUEUE=emails ./producer.sh '{"to":"ada@example.com"}' ...
set -euo pipefail
for payload in "$@"; do
  echo "pushed job $(redis-cli -p "${PORT:-6379}" QPUSH "${QUEUE:-emails}" "$payload" RETRIES 3)"
done
