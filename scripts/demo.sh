#!/usr/bin/env bash
# Sets up the gateway and serves a demo archive from the local disk on http://localhost:4000
# with the demo token "demo-token". Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --runtime-only
ARCHIVE="${DEMO_ARCHIVE:-demo-archive}"
# a fixed date, so the call ids in the README stay valid
[ -f "$ARCHIVE/demo.json" ] || .venv/bin/gateway demo "$ARCHIVE" --end 2026-03-09 --timezone UTC
exec .venv/bin/gateway serve --backend local --path "$ARCHIVE" --layout freepbx \
  --timezone UTC --token demo-token --bind-to localhost:4000 "$@"
