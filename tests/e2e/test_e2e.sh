#!/usr/bin/env bash
# The e2e run (tests/e2e/run_e2e.py: the Lambda binaries on moto and `cargo lambda watch`) on a
# small simulated scenario must publish exactly what `trailsight replay` prints for the same files,
# eventID and sharedEventID included (derived from content, docs/DETECTION.md "Records"). Both
# sides use the detector's defaults.
# Then the fault mode (run_e2e.py --chaos) on the same files: bootstraps killed during invocations,
# an outage over a spike and single files hours late, dead letters redriven at the end,
# EventBridge refusing entries; run_e2e.py itself checks that what was published still equals
# replay (see its docstring for what "equal" means when files are late).
#
#   tests/e2e/test_e2e.sh        (needs `make tools`; part of `make test`)
#
# Environment: CARGO_TARGET_DIR (default <repo>/target), E2E_CHAOS_SEED (default 1; the fault
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
TRAILSIGHT="$TARGET_DIR/debug/trailsight"

# Three days of one region: the burst and the throttling storm on day 2 and the gap on day 3 give
# insights of both directions and both types, after the detector's default 24-hour warm-up.
step "trailsight simulate (3 days, us-east-1, iam-burst@1d6h, throttling-storm@1d15h, maintenance-gap@2d2h)"
"$TRAILSIGHT" simulate --out "$WORK/data" --days 3 --regions us-east-1 \
  --inject iam-burst@1d6h --inject throttling-storm@1d15h --inject maintenance-gap@2d2h

step "trailsight replay"
"$TRAILSIGHT" replay "$WORK/data" >"$WORK/replay.jsonl"

step "run_e2e.py"
"$PYTHON" "$ROOT/tests/e2e/run_e2e.py" --data "$WORK/data" --out "$WORK/e2e.jsonl" --step 15m

step "comparing the published records with replay's"
"$PYTHON" - "$WORK/replay.jsonl" "$WORK/e2e.jsonl" <<'PY'
import json, sys, uuid

def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]

replay, e2e = load(sys.argv[1]), load(sys.argv[2])
starts = [r for r in e2e if r["insightDetails"]["state"] == "Start"]
if not starts or len(starts) == len(e2e):
    sys.exit(f"FAIL: the scenario should give Start and End records, got {len(e2e)} records")
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
print(f"    ok: {len(e2e)} records ({len(starts)} insights), identical to replay, identifiers included")
PY
step "run_e2e.py --chaos ${E2E_CHAOS_SEED:-1} (faults; checks its records against replay itself)"
"$PYTHON" "$ROOT/tests/e2e/run_e2e.py" --data "$WORK/data" --out "$WORK/chaos.jsonl" --step 15m \
  --chaos "${E2E_CHAOS_SEED:-1}"

step "test_e2e: passed"
