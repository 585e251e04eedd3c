#!/usr/bin/env bash
# Runs every test of Herald on a fresh machine: installs what the tests need (Python tools in a
# venv: the moto AWS emulator, SAM CLI, cfn-lint, cargo-lambda, openapi-spec-validator and the
# Schemathesis API fuzzer), then runs them. The Rust tests that
# need AWS start moto themselves from the venv. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
export SAM_CLI_TELEMETRY=0

echo "== tools: Python venv at .venv =="
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  'moto[server]==5.2.5' 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0' 'cargo-lambda==1.9.2' \
  'openapi-spec-validator==0.9.0' 'schemathesis==4.32.5'
export HERALD_MOTO_SERVER="$VENV/bin/moto_server"
export PATH="$VENV/bin:$PATH"

echo "== template.yaml: cfn-lint, sam validate --lint, sam validate, invariants =="
cfn-lint template.yaml
sam validate --lint --region us-east-1
sam validate --region us-east-1
"$VENV/bin/python" tests/template/check_template.py

echo "== unit, contract and integration tests (cargo test --workspace) =="
cargo test --workspace --all-targets --locked

echo "== the four functions under cargo lambda watch, invoked with events/ =="
VENV="$VENV" ./scripts/lambda-invoke-test.sh

echo "== the API against its OpenAPI document (openapi-spec-validator, Schemathesis) =="
VENV="$VENV" ./scripts/api-fuzz.sh

echo "== console in a real browser (headless Chromium) =="
./scripts/browser-test.sh
