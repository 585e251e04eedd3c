#!/usr/bin/env bash
# `cargo lambda invoke` of the four functions on the fixtures in events/, through `cargo lambda
# watch` (the Lambda runtime API emulator), against the moto AWS emulator on 127.0.0.1.
#
#   1. moto_server on 127.0.0.1 at a free port; AWS_ENDPOINT_URL and fake credentials point at it.
#   2. `herald aws init` makes the table and the queues; its export lines are evaluated.
#   3. The fixtures' tenant and API key are registered (`herald tenants create --id`,
#      `herald keys import`), so the API fixtures authenticate.
#   4. `cargo lambda watch` serves the functions (debug builds, built here first so that the first
#      invoke does not wait for the compiler).
#   5. Each fixture is invoked and its answer checked, then the CloudWatch EMF lines each function
#      printed (tests/emf/check_emf.py). Prints "N passed, M failed"; exits non-zero on any
#      failure. moto and watch are stopped on every exit path.
#
# Called by scripts/test.sh after its venv step ($VENV/bin on PATH, HERALD_MOTO_SERVER set). Run
# alone, it installs moto and cargo-lambda into <workspace>/.venv the way test.sh does. Offline
# apart from that install: cargo must find the crates in its cache (or fetch them, as `cargo test`
# does). Logs are kept in target/lambda-invoke/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${VENV:-$ROOT/.venv}"
# The same pins as scripts/test.sh.
MOTO_PIN='moto[server]==5.2.5'
CARGO_LAMBDA_PIN='cargo-lambda==1.9.2'
# Bounds, in seconds.
MOTO_START_TIMEOUT=90
WATCH_START_TIMEOUT=120
# The first invoke of a function starts it (and compiles it if the pre-build missed something).
FIRST_INVOKE_TIMEOUT=600
INVOKE_TIMEOUT=120

say() { printf '== %s\n' "$*"; }
die() {
  printf 'lambda-invoke-test: %s\n' "$*" >&2
  exit 2
}

# ---- tools ------------------------------------------------------------------------------------

if [ -d "$VENV/bin" ]; then
  export PATH="$VENV/bin:$PATH"
fi
MOTO="${HERALD_MOTO_SERVER:-$VENV/bin/moto_server}"
if [ ! -x "$MOTO" ] || ! command -v cargo-lambda >/dev/null 2>&1; then
  say "tools: installing moto and cargo-lambda into $VENV (as scripts/test.sh does)"
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to create $VENV; or run scripts/test.sh"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "cannot create the venv $VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_PIN" "$CARGO_LAMBDA_PIN" ||
    die "cannot install $MOTO_PIN $CARGO_LAMBDA_PIN into $VENV (offline?); run scripts/test.sh on a machine with the package index"
  export PATH="$VENV/bin:$PATH"
  MOTO="${HERALD_MOTO_SERVER:-$VENV/bin/moto_server}"
fi
[ -x "$MOTO" ] || die "moto_server is not at $MOTO (HERALD_MOTO_SERVER or $VENV/bin/moto_server)"
command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda is not on PATH (nor in $VENV/bin)"
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 is needed to read the JSON answers"
for tool in curl setsid timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

LOGS="$ROOT/target/lambda-invoke"
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.json "$LOGS"/*.err
WORK=$(mktemp -d)

# ---- cleanup on every exit path ---------------------------------------------------------------

MOTO_PID=""
WATCH_PIDS=()
# Stops the process group led by $1 (started with setsid, so its children go too: watch's cargo
# and function processes): TERM, then KILL after 10 s.
stop_group() {
  local pid=$1
  [ -n "$pid" ] || return 0
  if ! kill -TERM -- "-$pid" 2>/dev/null; then
    # Not a group leader after all (setsid had to fork): stop the process itself.
    kill -TERM "$pid" 2>/dev/null || true
    return 0
  fi
  for _ in $(seq 1 50); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  # The reader of our output may be gone: keep stopping the servers anyway.
  trap '' PIPE
  for pid in "${WATCH_PIDS[@]}"; do
    stop_group "$pid"
  done
  stop_group "$MOTO_PID"
  wait 2>/dev/null || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- 1. moto ----------------------------------------------------------------------------------

start_moto() {
  local port=$1 deadline=$((SECONDS + MOTO_START_TIMEOUT))
  setsid "$MOTO" -H 127.0.0.1 -p "$port" >"$LOGS/moto.log" 2>&1 &
  MOTO_PID=$!
  while [ $SECONDS -lt $deadline ]; do
    if curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$port/moto-api/"; then
      return 0
    fi
    kill -0 "$MOTO_PID" 2>/dev/null || break
    sleep 0.2
  done
  stop_group "$MOTO_PID"
  MOTO_PID=""
  return 1
}

say "moto_server on 127.0.0.1"
MOTO_PORT=""
# A port taken between the probe and moto's bind makes moto exit: try another.
for _ in 1 2 3; do
  port=$(free_port)
  if start_moto "$port"; then
    MOTO_PORT=$port
    break
  fi
done
[ -n "$MOTO_PORT" ] || {
  tail -n 30 "$LOGS/moto.log" >&2 || true
  die "moto_server did not answer within ${MOTO_START_TIMEOUT}s (log: $LOGS/moto.log)"
}
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true
echo "moto at $AWS_ENDPOINT_URL"

# ---- 2. table and queues ----------------------------------------------------------------------

FUNCTIONS=(api ingest fanout deliver)
say "build: herald and the four functions (debug)"
cargo build --locked --bin herald
for function in "${FUNCTIONS[@]}"; do
  cargo build --locked -p "herald-function-$function"
done
HERALD="${CARGO_TARGET_DIR:-$ROOT/target}/debug/herald"

say "herald aws init"
exports=$("$HERALD" aws init --table herald-invoke --queue-prefix herald-invoke)
printf '%s\n' "$exports"
eval "$exports"
: "${HERALD_TABLE:?herald aws init printed no HERALD_TABLE}"
: "${HERALD_EVENTS_QUEUE_URL:?herald aws init printed no HERALD_EVENTS_QUEUE_URL}"
: "${HERALD_DELIVERIES_QUEUE_URL:?herald aws init printed no HERALD_DELIVERIES_QUEUE_URL}"

# ---- 3. the fixtures' tenant and key ----------------------------------------------------------

# Read from the fixtures themselves, so they stay the one source.
FIXTURE_KEY=$("$PY" -c '
import json, sys
auth = json.load(open(sys.argv[1]))["headers"]["authorization"]
print(auth.removeprefix("Bearer "))' events/api-list-subscriptions.json)
FIXTURE_TENANT=$("$PY" -c '
import json, sys
print(json.loads(json.load(open(sys.argv[1]))["Records"][0]["body"])["tenant_id"])' events/sqs-fanout.json)

say "register the fixtures' tenant $FIXTURE_TENANT and API key"
# The tenant's generated first key is not needed: it goes nowhere.
"$HERALD" tenants create --name "Fixture tenant" --id "$FIXTURE_TENANT" >/dev/null 2>"$LOGS/tenant.log" || {
  cat "$LOGS/tenant.log" >&2
  die "herald tenants create --id failed"
}
printf '%s\n' "$FIXTURE_KEY" >"$WORK/fixture.key"
"$HERALD" keys import --tenant "$FIXTURE_TENANT" --key-file "$WORK/fixture.key" --name fixtures

# ---- 4. cargo lambda watch --------------------------------------------------------------------

# The functions' environment, passed explicitly (whatever watch inherits or not).
cat >"$WORK/functions.env" <<EOF
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_REGION=$AWS_REGION
AWS_DEFAULT_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_EC2_METADATA_DISABLED=true
HERALD_TABLE=$HERALD_TABLE
HERALD_EVENTS_QUEUE_URL=$HERALD_EVENTS_QUEUE_URL
HERALD_DELIVERIES_QUEUE_URL=$HERALD_DELIVERIES_QUEUE_URL
RUST_LOG=info
EOF

# One watch per function, each scoped to its package: watch starts a function with `cargo run
# --bin <name>`, and in this workspace (whose root is the `herald` package) that finds only the
# root package's binaries unless `--package` says where the function is.
declare -A WATCH_PORT=()
for function in "${FUNCTIONS[@]}"; do
  port=$(free_port)
  WATCH_PORT[$function]=$port
  say "cargo lambda watch -p herald-function-$function on 127.0.0.1:$port"
  setsid cargo lambda watch --ignore-changes --locked -p "herald-function-$function" \
    --invoke-address 127.0.0.1 --invoke-port "$port" \
    --env-file "$WORK/functions.env" >"$LOGS/watch-$function.log" 2>&1 &
  WATCH_PIDS+=("$!")
done
deadline=$((SECONDS + WATCH_START_TIMEOUT))
for function in "${FUNCTIONS[@]}"; do
  # A TCP connect, not an HTTP request: watch takes any request to `/` as an invoke of its
  # default function.
  until (exec 3<>"/dev/tcp/127.0.0.1/${WATCH_PORT[$function]}") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$LOGS/watch-$function.log" >&2 || true
      die "cargo lambda watch ($function) did not listen within ${WATCH_START_TIMEOUT}s (log: $LOGS/watch-$function.log)"
    fi
    sleep 0.5
  done
done

# ---- 5. invokes -------------------------------------------------------------------------------

PASSED=0
FAILED=0
declare -A STARTED=() DEAD=()

# invoke FUNCTION FIXTURE LIMIT OUT ERR: `cargo lambda invoke`, bounded by LIMIT seconds, and cut
# short when the function's process exits instead of answering (watch then leaves the invoke
# waiting: a build error, a panic at init, a bad configuration).
invoke() {
  local function=$1 fixture=$2 limit=$3 out=$4 err=$5 log pid seen deadline
  log="$LOGS/watch-$function.log"
  : >"$out"
  : >"$err"
  if [ -n "${DEAD[$function]:-}" ]; then
    # watch does not start it again: the invoke would only wait.
    echo "the function exited at an earlier invoke (see $log)" >"$err"
    return 1
  fi
  seen=$(grep -c 'command exited' "$log" || true)
  cargo lambda invoke "$function" \
    --invoke-address 127.0.0.1 --invoke-port "${WATCH_PORT[$function]}" \
    --data-file "events/$fixture" --output-format json >"$out" 2>"$err" &
  pid=$!
  deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(grep -c 'command exited' "$log" || true)" -gt "$seen" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      DEAD[$function]=1
      printf 'the function exited without answering: %s\n' \
        "$(grep -v -e '^ *INFO' -e 'command exited' "$log" | tail -n 3 | tr '\n' ' ')" >>"$err"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      printf 'no answer within %ss\n' "$limit" >>"$err"
      return 1
    fi
    sleep 0.2
  done
  wait "$pid"
}

# check NAME FUNCTION FIXTURE CHECK: invokes FUNCTION on events/FIXTURE and evaluates CHECK, a
# Python expression over the helpers below that is falsy when the answer is right, else says what
# is wrong.
check() {
  local name=$1 function=$2 fixture=$3 assertion=$4 limit=$INVOKE_TIMEOUT out verdict
  [ -n "${STARTED[$function]:-}" ] || limit=$FIRST_INVOKE_TIMEOUT
  STARTED[$function]=1
  out="$LOGS/$name.json"
  if ! invoke "$function" "$fixture" "$limit" "$out" "$LOGS/$name.err"; then
    verdict="cargo lambda invoke failed: $(tr '\n' ' ' <"$LOGS/$name.err" | tail -c 600)"
  else
    verdict=$("$PY" - "$out" "$assertion" <<'PYEOF'
import base64, json, sys

def answer():
    with open(sys.argv[1]) as f:
        r = json.load(f)
    if not isinstance(r, dict):
        raise ValueError(f"the answer is not an object: {r!r}")
    return r

def status(code):
    """An API Gateway answer with this status code."""
    got = r.get("statusCode")
    return None if got == code else f"statusCode {got}, expected {code}"

def body():
    """The decoded JSON body of an API Gateway answer."""
    text = r.get("body") or ""
    if r.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return json.loads(text)

def body_has(field, test, what):
    value = body().get(field)
    return None if test(value) else f"body field {field!r} is {value!r}, expected {what}"

def failures(expected):
    """An SQS partial batch response reporting exactly these message ids."""
    got = r.get("batchItemFailures")
    if not isinstance(got, list):
        return f"no batchItemFailures list in {r!r}"
    ids = sorted(f.get("itemIdentifier") for f in got)
    return None if ids == sorted(expected) else f"batchItemFailures {ids}, expected {expected}"

try:
    r = answer()
    problem = eval(sys.argv[2])
except Exception as e:
    problem = f"{type(e).__name__}: {e}"
print(problem or "")
PYEOF
    )
  fi
  if [ -z "$verdict" ]; then
    PASSED=$((PASSED + 1))
    printf 'ok    %-24s %-8s events/%s\n' "$name" "$function" "$fixture"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %-24s %-8s events/%s: %s\n' "$name" "$function" "$fixture" "$verdict"
    printf '      answer: %s\n' "$(head -c 600 "$out" 2>/dev/null)"
  fi
}

say "cargo lambda invoke"
check api-healthz api api-healthz.json 'status(200)'
check api-list-subscriptions api api-list-subscriptions.json \
  'status(200) or body_has("data", lambda v: isinstance(v, list), "a list")'
check api-event-types api api-event-types.json \
  'status(200) or body_has("data", lambda v: isinstance(v, list) and len(v) > 0, "the catalog")'
check ingest-event ingest ingest-event.json \
  'status(202) or body_has("id", lambda v: str(v).startswith("evt_"), "an event id")'
check ingest-batch ingest ingest-batch.json \
  'status(200) or body_has("data", lambda v: [i["status"] for i in v] == ["accepted", "accepted", "rejected"], "accepted, accepted, rejected")'
check fanout fanout sqs-fanout.json 'failures([])'
# The events do not exist here (done); the unreadable body and the delivery message fail.
check fanout-batch fanout sqs-fanout-batch.json \
  'failures(["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"])'
# Its subscription does not exist: the delivery is given up (done), not failed.
check deliver deliver sqs-deliver.json 'failures([])'
# The delivery of an unknown subscription is given up (done); the unreadable body and the fan-out
# message (not the deliver function's kind) fail.
check deliver-mixed deliver sqs-deliver-mixed.json \
  'failures(["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"])'

# The metrics each function printed (CloudWatch EMF on stdout, in watch's log): valid lines, and
# the ones these invokes must have made.
emf() {
  local function=$1
  shift
  if out=$("$PY" tests/emf/check_emf.py "$LOGS/watch-$function.log" "$@" 2>&1); then
    PASSED=$((PASSED + 1))
    printf 'ok    emf-%-20s %s\n' "$function" "$(tail -n 1 <<<"$out")"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  emf-%-20s %s\n' "$function" "$(tr '\n' ' ' <<<"$out" | tail -c 600)"
  fi
}
say "CloudWatch metrics (EMF) printed by the functions"
emf ingest EventsAccepted:function=ingest
emf fanout QueueAge:function=fanout
# The fixtures' deliveries have no subscription here: given up, platform unknown.
emf deliver QueueAge:function=deliver Deliveries:function=deliver,outcome=failed,platform=unknown
emf api

echo "$PASSED passed, $FAILED failed"
if [ "$FAILED" -gt 0 ]; then
  echo "the functions' output (and watch's): $LOGS/watch-<function>.log"
  exit 1
fi
