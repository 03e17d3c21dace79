#!/usr/bin/env bash
# The ingest Lambda's real binary, invoked through the Lambda runtime API.
#
#   tests/lambda_invoke.sh            (from anywhere; needs `make tools` first)
#
# 1. `cargo lambda build` builds the function's `bootstrap` (the artifact that is deployed).
# 2. moto serves S3 and DynamoDB on a free loopback port; python (boto3, from moto's
#    dependencies in .venv) creates the bucket, the table (from infra/table.json) and a log object.
# 3. `cargo lambda watch --only-lambda-apis` serves the Lambda runtime API; the bootstrap runs
#    against it with the function's environment (TRAILSIGHT_TABLE, AWS_ENDPOINT_URL, test
#    credentials, no instance metadata).
# 4. `cargo lambda invoke trailsight-ingest` sends an SQS-wrapped S3 event, twice: the first answer
#    must have no batchItemFailures and leave a done marker and delta parts in the table; the
#    second must be a duplicate. The function's EMF metrics line is checked as well.
# Everything started here is stopped on exit, whatever happens.
#
# Environment: CARGO_TARGET_DIR (default <repo>/target), LAMBDA_BUILD_FLAGS (e.g. --release),
# VERBOSE=1 to print the function's log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_BIN="$ROOT/.venv/bin"
PYTHON="$VENV_BIN/python"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
FIXTURE="$ROOT/functions/ingest/testdata/sqs-s3-event.json"
DATASET="$ROOT/testdata/real/invictus-aws-attack-simulation"
BUCKET=trailsight-logs
TABLE=trailsight-invoke-test
# .venv/bin first: cargo-lambda, and zig through the ziglang wheel.
export PATH="$VENV_BIN:$PATH"

for tool in "$VENV_BIN/cargo-lambda" "$VENV_BIN/moto_server" "$PYTHON"; do
  [ -x "$tool" ] || { echo "error: $tool is missing: run 'make tools' first" >&2; exit 1; }
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ -d "$WORK" ]; then
    for log in "$WORK"/*.log; do
      [ -s "$log" ] && { echo "--- $(basename "$log") (last lines)" >&2; tail -n 30 "$log" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port, what, pid
  for _ in $(seq 1 300); do
    if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null; then
      return 0
    fi
    kill -0 "$3" 2>/dev/null || { echo "error: $2 exited before listening on port $1" >&2; return 1; }
    sleep 0.1
  done
  echo "error: $2 is not listening on port $1 after 30 s" >&2
  return 1
}

step() { echo "==> $*"; }

step "cargo lambda build --package trailsight-ingest ${LAMBDA_BUILD_FLAGS:-}"
start=$(date +%s)
# shellcheck disable=SC2086 # LAMBDA_BUILD_FLAGS is a list of flags
(cd "$ROOT" && cargo lambda build --package trailsight-ingest ${LAMBDA_BUILD_FLAGS:-} --quiet)
BOOTSTRAP="$TARGET_DIR/lambda/trailsight-ingest/bootstrap"
[ -x "$BOOTSTRAP" ] || { echo "error: $BOOTSTRAP was not built" >&2; exit 1; }
echo "    built in $(( $(date +%s) - start ))s: $BOOTSTRAP"

MOTO_PORT="$(free_port)"
step "moto on 127.0.0.1:$MOTO_PORT"
"$VENV_BIN/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
wait_for_port "$MOTO_PORT" moto "${PIDS[-1]}"
ENDPOINT="http://127.0.0.1:$MOTO_PORT"

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE

# The object the fixture names: a real log file of the invictus dataset.
KEY="$("$PYTHON" -c 'import json, sys
body = json.loads(json.load(open(sys.argv[1]))["Records"][0]["body"])
print(body["Records"][0]["s3"]["object"]["key"])' "$FIXTURE")"

step "bucket $BUCKET, table $TABLE, object $KEY"
"$PYTHON" - "$ENDPOINT" "$ROOT/infra/table.json" "$BUCKET" "$TABLE" "$DATASET/$KEY" "$KEY" <<'EOF'
import json, sys
import boto3
endpoint, table_json, bucket, table, path, key = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key=key, Body=open(path, "rb").read())
definition = json.load(open(table_json))
ddb = boto3.client("dynamodb", endpoint_url=endpoint)
create = {k: definition[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "SSESpecification") if k in definition}
ddb.create_table(TableName=table, **create)
ddb.get_waiter("table_exists").wait(TableName=table)
ttl = definition.get("TimeToLiveSpecification") or {"AttributeName": definition["TimeToLiveAttribute"], "Enabled": True}
ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
EOF

RT_PORT="$(free_port)"
step "Lambda runtime API (cargo lambda watch --only-lambda-apis) on 127.0.0.1:$RT_PORT"
(cd "$ROOT" && exec cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$RT_PORT") \
  >"$WORK/watch.log" 2>&1 &
PIDS+=($!)
wait_for_port "$RT_PORT" "cargo lambda watch" "${PIDS[-1]}"

step "the function's bootstrap, on that runtime API"
# The emulator routes `<api>/<function name>/2018-06-01/runtime/...` to that function's invokes.
env AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$RT_PORT/.rt/trailsight-ingest" \
  AWS_LAMBDA_FUNCTION_NAME=trailsight-ingest AWS_LAMBDA_FUNCTION_VERSION=1 \
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=INFO \
  AWS_ENDPOINT_URL="$ENDPOINT" TRAILSIGHT_TABLE="$TABLE" TRAILSIGHT_METRIC_NAMESPACE=Trailsight \
  TRAILSIGHT_METRICS=full \
  "$BOOTSTRAP" >"$WORK/function.log" 2>&1 &
PIDS+=($!)

invoke() { # output file
  (cd "$ROOT" && timeout 120 cargo lambda invoke trailsight-ingest --invoke-address 127.0.0.1 \
    --invoke-port "$RT_PORT" --data-file "$FIXTURE" --output-format json) >"$1" 2>"$WORK/invoke.log"
}

step "cargo lambda invoke trailsight-ingest --data-file ${FIXTURE#"$ROOT"/}"
invoke "$WORK/first.json"
echo "    response: $(tr -d ' \n' <"$WORK/first.json")"
step "the same notification again (a duplicate delivery)"
invoke "$WORK/second.json"
echo "    response: $(tr -d ' \n' <"$WORK/second.json")"

step "checking the responses, the table and the metrics"
"$PYTHON" - "$ENDPOINT" "$TABLE" "$BUCKET" "$KEY" "$WORK" <<'EOF'
import hashlib, json, sys
import boto3
endpoint, table, bucket, key, work = sys.argv[1:]

def fail(message):
    sys.exit(f"FAIL: {message}")

for name in ("first", "second"):
    response = json.load(open(f"{work}/{name}.json"))
    if response != {"batchItemFailures": []}:
        fail(f"{name} response {response!r}, expected no batchItemFailures")

ddb = boto3.client("dynamodb", endpoint_url=endpoint)
file_id = hashlib.sha256(f"{bucket}\n{key}".encode()).digest()[:12].hex()
marker = ddb.get_item(TableName=table, Key={"pk": {"S": f"F#{file_id}"}, "sk": {"S": "F"}}).get("Item")
if not marker or marker["status"]["S"] != "done":
    fail(f"no done marker for {key}: {marker!r}")
parts = [i for page in ddb.get_paginator("scan").paginate(TableName=table)
         for i in page["Items"] if i["pk"]["S"].startswith("D#")]
if not parts:
    fail("no delta parts in the table")
# A version's parts are named <file id>.<version digest>.<base>#<part> (docs/TABLE.md).
if any(not p["sk"]["S"].startswith(file_id + ".") for p in parts):
    fail("a delta part of another file: " + ", ".join(p["sk"]["S"] for p in parts))
if len({p["sk"]["S"].split("#")[0] for p in parts}) != 1:
    fail("the duplicate delivery wrote a second version's parts")

metrics = []
for line in open(f"{work}/function.log"):
    try:
        doc = json.loads(line)
    except ValueError:
        continue
    if isinstance(doc, dict) and "_aws" in doc:
        metrics.append(doc)
if len(metrics) != 2:
    fail(f"{len(metrics)} EMF lines in the function's log, expected one per invocation")
got = [(m["FilesIngested"], m["FilesSkipped"], m["FilesFailed"]) for m in metrics]
if got != [(1, 0, 0), (0, 1, 0)]:
    fail(f"metrics (ingested, skipped, failed) per invocation: {got}")
records = int(marker["records"]["N"])
if metrics[0]["RecordsIngested"] != records:
    fail(f"RecordsIngested {metrics[0]['RecordsIngested']} != marker records {records}")
print(f"    ok: marker done ({records} records), {len(parts)} delta part(s), metrics {got}")
EOF
[ "${VERBOSE:-}" = 1 ] && { echo "--- function log"; cat "$WORK/function.log"; }
step "lambda_invoke: passed"
