#!/usr/bin/env bash
# redis-rs (the crate from crates.io, pinned by the workspace's Cargo.lock)
# through the conformance scenarios.
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build -q -p quern-conformance-redis-rs
# The version the lockfile pins, for the results table.
export REDIS_RS_VERSION=$(grep -A1 '^name = "redis"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
exec target/debug/redis-rs-suite
