#!/usr/bin/env bash
# The console's browser test: headless Debian Chromium, driven by playwright-core from
# tests/browser (Node's built-in test runner), against `herald dev` and a receiver on 127.0.0.1.
# Installs Chromium when it is missing (CI runs as root on Debian), installs the locked npm
# packages, builds herald, then runs the test. Screenshots and herald's log: test-output/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CHROMIUM_BIN=${CHROMIUM_BIN:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM_BIN" ]; then
  echo "== installing Debian's chromium =="
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends chromium
fi
export CHROMIUM_BIN

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are needed for the browser test (Node 20 or newer)" >&2
  exit 1
fi

echo "== npm ci (tests/browser) =="
(cd tests/browser && npm ci --no-audit --no-fund)

echo "== cargo build --locked --bin herald =="
cargo build --locked --bin herald
export HERALD_BIN=${HERALD_BIN:-$ROOT/target/debug/herald}

echo "== browser test (node --test) =="
mkdir -p test-output/browser
cd tests/browser
node --test
