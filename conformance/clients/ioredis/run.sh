#!/usr/bin/env bash
# ioredis, installed into this folder's node_modules from package-lock.json,
# through the conformance scenarios (the contract: conformance/README.md).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >&2
exec node suite.js
