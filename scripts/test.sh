#!/usr/bin/env bash
# Sets everything up (Debian packages, .venv) and runs the whole check: lint, format, types, tests.
# The test suite starts its own real servers (Samba, SeaweedFS, Caddy, Chromium) on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q "$@"
