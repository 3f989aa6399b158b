#!/usr/bin/env bash
# The browser tests (npm run test:browser: test/browser/) drive a real Chromium with playwright-core. They
# use the distribution's browser, not a Playwright download: install Debian's `chromium` package
# when no Chromium is on the machine. Idempotent; needs root (or sudo) only when it installs.
set -euo pipefail

for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "chromium: $("$candidate" --version 2>/dev/null || echo "$candidate")"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing and apt-get is not available: install Chromium and set CHROMIUM_PATH" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "chromium is missing and installing it needs root: run apt-get install chromium as root" >&2
    exit 1
  fi
fi
echo "== installing chromium (Debian package) =="
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
chromium --version
