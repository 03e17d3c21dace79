#!/usr/bin/env bash
# The e2e run (tests/e2e/run_e2e.py: the Lambda binaries on moto and `cargo lambda watch`) on a
# small simulated scenario must publish exactly what `trailsight replay` prints for the same files,
# eventID and sharedEventID included (derived from content, docs/DETECTION.md "Records"). Both
# sides use the detector's defaults, with per-principal insights on (a 24-hour principal warm-up),
# and the functions also archive the records and import them into Security Hub.
# At the same time, the fault mode (run_e2e.py --chaos) on the same files: bootstraps killed during invocations,
# an outage over a spike and single files hours late, dead letters redriven at the end,
# EventBridge refusing entries; run_e2e.py itself checks that what was published still equals
# replay (see its docstring for what "equal" means when files are late).
#
#   tests/e2e/test_e2e.sh        (needs `make tools`; part of `make test`)
#
# Environment: CARGO_TARGET_DIR (default <repo>/target), CARGO_BUILD_TARGET (as cargo reads it), E2E_CHAOS_SEED (default 1; the fault
# mode's plan is a function of it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="$ROOT/.venv/bin/python"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[ -x "$PYTHON" ] || { echo "error: $PYTHON is missing: run 'make tools' first" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { echo "==> $*"; }

# The command as `make test`'s unit step builds it (the same package selection, so the same
# features: nothing is compiled again; `cargo build -p trailsight-cli` would rebuild it).
step "cargo test --workspace --exclude trailsight-integration --no-run (the trailsight command)"
(cd "$ROOT" && cargo test --quiet --workspace --exclude trailsight-integration --no-run)
# `make test` builds for the host triple, named (CARGO_BUILD_TARGET: see the Makefile).
TRAILSIGHT="$TARGET_DIR/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug/trailsight"

# Three days of one region: the burst and the throttling storm on day 2 and the gap on day 3 give
# insights of both directions and both types, after the detector's default 24-hour warm-up.
step "trailsight simulate (3 days, us-east-1, iam-burst@1d6h, throttling-storm@1d15h, maintenance-gap@2d2h)"
"$TRAILSIGHT" simulate --out "$WORK/data" --days 3 --regions us-east-1 \
  --inject iam-burst@1d6h --inject throttling-storm@1d15h --inject maintenance-gap@2d2h

# The plain run with per-principal insights on (both functions and replay), and a 24-hour
# principal warm-up so that the 3-day scenario has some (the throttling storm's callers); the
# fault mode with the defaults (no principal insights).
PRINCIPAL_FLAGS=(--principal-insights --principal-warmup-hours 24)
step "trailsight replay ${PRINCIPAL_FLAGS[*]}"
"$TRAILSIGHT" replay "${PRINCIPAL_FLAGS[@]}" "$WORK/data" >"$WORK/replay.jsonl"

# The two runs are independent (each its own moto, runtime API, bootstraps and temporary folders)
# and run at once: the fault mode spends most of its time waiting on single invocations, the
# plain run keeps both cores busy. Each writes its own log, printed when both are done. The
# functions are built first, once, so that the two runs do not wait on each other's build.
step "cargo lambda build (trailsight-ingest, trailsight-detect)"
"$PYTHON" - "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests")
from harness.lambda_host import DETECT, INGEST, cargo_lambda_build
cargo_lambda_build([INGEST, DETECT])
PY

step "run_e2e.py, and run_e2e.py --chaos ${E2E_CHAOS_SEED:-1} (faults; checks its records against replay itself), at once"
"$PYTHON" "$ROOT/tests/e2e/run_e2e.py" --data "$WORK/data" --out "$WORK/e2e.jsonl" --step 15m \
  "${PRINCIPAL_FLAGS[@]}" >"$WORK/plain.log" 2>&1 &
plain=$!
"$PYTHON" "$ROOT/tests/e2e/run_e2e.py" --data "$WORK/data" --out "$WORK/chaos.jsonl" --step 15m \
  --chaos "${E2E_CHAOS_SEED:-1}" >"$WORK/chaos.log" 2>&1 &
chaos=$!
plain_status=0; wait "$plain" || plain_status=$?
chaos_status=0; wait "$chaos" || chaos_status=$?
step "run_e2e.py (exit status $plain_status)"
cat "$WORK/plain.log"
step "run_e2e.py --chaos ${E2E_CHAOS_SEED:-1} (exit status $chaos_status)"
cat "$WORK/chaos.log"
[ "$plain_status" -eq 0 ] || { echo "FAIL: run_e2e.py exited with $plain_status" >&2; exit 1; }
[ "$chaos_status" -eq 0 ] || { echo "FAIL: run_e2e.py --chaos exited with $chaos_status" >&2; exit 1; }

step "comparing the published records with replay's"
"$PYTHON" - "$WORK/replay.jsonl" "$WORK/e2e.jsonl" <<'PY'
import json, sys, uuid

def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]

replay, e2e = load(sys.argv[1]), load(sys.argv[2])
starts = [r for r in e2e if r["insightDetails"]["state"] == "Start"]
if not starts or len(starts) == len(e2e):
    sys.exit(f"FAIL: the scenario should give Start and End records, got {len(e2e)} records")
principal = [r for r in starts if r["insightDetails"]["insightType"].startswith("Principal")]
if not principal or len(principal) == len(starts):
    sys.exit(f"FAIL: the scenario should give per-principal and account insights, got {len(principal)} "
             f"per-principal of {len(starts)}")
if e2e != replay:
    for i, (a, b) in enumerate(zip(replay, e2e)):
        if a != b:
            print(f"first difference at record {i}:\n  replay {json.dumps(a)}\n  e2e    {json.dumps(b)}")
            break
    sys.exit(f"FAIL: e2e published {len(e2e)} records, replay printed {len(replay)}; they differ")
# Identifiers (equal to replay's, checked above): version-5 UUIDs, each eventID once, each
# insight's Start and End sharing one sharedEventID.
ids = [r["eventID"] for r in e2e]
if len(set(ids)) != len(ids):
    sys.exit("FAIL: an eventID repeats")
pairs = {}
for r in e2e:
    if uuid.UUID(r["eventID"]).version != 5 or uuid.UUID(r["sharedEventID"]).version != 5:
        sys.exit(f"FAIL: identifiers are not version-5 UUIDs: {r['eventID']} {r['sharedEventID']}")
    pairs.setdefault(r["sharedEventID"], []).append(r["insightDetails"]["state"])
if any(states not in (["Start"], ["Start", "End"]) for states in pairs.values()):
    sys.exit(f"FAIL: Start/End records do not pair by sharedEventID: {pairs}")
print(f"    ok: {len(e2e)} records ({len(starts)} insights, {len(principal)} per-principal), "
      "identical to replay, identifiers included")
PY
step "test_e2e: passed"
