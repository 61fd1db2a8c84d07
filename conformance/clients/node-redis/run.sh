#!/usr/bin/env bash
# node-redis v4 and the latest node-redis, both installed into this folder's
# node_modules from package-lock.json (v4 under the npm alias "redis4"),
# through the conformance scenarios (the contract: conformance/README.md).
# Each variant prints its own SUITE line.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >&2
status=0
node suite.js 4 || status=1          # node-redis@4: RESP2 only
node suite.js latest || status=1     # latest, its defaults: RESP3 (HELLO 3)
node suite.js latest 2 || status=1   # latest with RESP: 2
exit $status
