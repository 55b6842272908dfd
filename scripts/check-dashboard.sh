#!/usr/bin/env bash
# The dashboard's browser test (scripts/check-dashboard.py) in Debian's Chromium, installed here when missing,
# driven by Playwright for Python from its own venv (Playwright's own browser download is not used). Screenshots
# of every page go to target/dashboard-screenshots, kept there when a check fails.
#
#   scripts/check-dashboard.sh [BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-target/release/handoffrail}")

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
venv=target/dashboard-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check playwright==1.65.3
shots=target/dashboard-screenshots
rm -rf "$shots"
"$venv/bin/python" scripts/check-dashboard.py "$binary" "$shots"
