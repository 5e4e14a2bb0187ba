#!/usr/bin/env bash
# Installs everything the gateway and its test suite need on a fresh Debian machine:
# Debian packages (Samba, Caddy, nginx, Chromium for the real-server tests), a virtualenv in
# .venv with the project and its test extras. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv curl samba smbclient caddy nginx chromium chromium-driver)
if [ "${1:-}" = "--runtime-only" ]; then
  APT_PACKAGES=(python3 python3-venv)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras="test"
[ "${1:-}" = "--runtime-only" ] && extras="all"
.venv/bin/python -m pip install -q -e ".[$extras]"
if [ "$extras" = "test" ]; then
  # the example third-party plugin, installed as a separate distribution like a user would
  .venv/bin/python -m pip install -q -e examples/gateway-zipstore
fi
