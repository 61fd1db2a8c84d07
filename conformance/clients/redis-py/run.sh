#!/usr/bin/env bash
# redis-py, installed into a local virtualenv, through the conformance scenarios.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/python suite.py
