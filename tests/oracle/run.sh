#!/usr/bin/env bash
# The oracle over every real dataset in testdata/real (each folder alone and all together) and a
# simulated 9-day scenario: replay with the given binary, then recount every record's statistics
# and attributions from the raw logs (tests/oracle/oracle.py). Fails if any number differs.
#   tests/oracle/run.sh TRAILSIGHT_BINARY OUT_DIR
set -uo pipefail
BIN=${1:?trailsight binary}
OUT=${2:?output folder}
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ORACLE="$ROOT/tests/oracle/oracle.py"
REAL="$ROOT/testdata/real"
rm -rf "$OUT" && mkdir -p "$OUT"
failed=()
summary=()

# check NAME DATA [replay options...]: counting options are passed on to the oracle too.
check() {
    local name=$1 data=$2
    shift 2
    local dir="$OUT/$name" oracle_opts=()
    mkdir -p "$dir"
    for opt in "$@"; do
        case $opt in --include-read-apis | --ignore-aws-service-callers) oracle_opts+=("$opt") ;; esac
    done
    echo "== oracle: $name: trailsight replay $data $*"
    if ! "$BIN" replay "$data" "$@" >"$dir/records.jsonl" 2>"$dir/replay.log"; then
        cat "$dir/replay.log"
        failed+=("$name (replay failed)")
        return
    fi
    python3 "$ORACLE" "${oracle_opts[@]}" "$data" "$dir/records.jsonl" >"$dir/oracle.txt"
    local status=$?
    # Every difference is in oracle.txt; show the first ones and the summary.
    grep -v '^oracle:' "$dir/oracle.txt" | head -n 20
    grep '^oracle:' "$dir/oracle.txt"
    summary+=("$name: $(tail -n 1 "$dir/oracle.txt" | sed 's/^oracle: //')")
    [ $status -eq 0 ] || failed+=("$name")
}

# Each real dataset spans less than a day, so the default 24-hour warm-up reports nothing on a
# folder alone: they are replayed without warm-up. All of them together also with the defaults
# (the stratus records span years, so the warm-up passes), and with the counting options.
for data in "$REAL"/*/; do
    check "real-$(basename "$data")" "${data%/}" --warmup-hours 0
done
check real-all "$REAL"
check real-all-no-warmup "$REAL" --warmup-hours 0
check real-all-reads-no-services "$REAL" --warmup-hours 0 --include-read-apis --ignore-aws-service-callers

"$BIN" simulate --out "$OUT/sim-data" --days 9 --seed 1 >/dev/null || failed+=("simulate")
check sim-seed1 "$OUT/sim-data"
check sim-seed1-no-services "$OUT/sim-data" --ignore-aws-service-callers

echo "== oracle summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "oracle: differences or failures in: ${failed[*]} (all differences under $OUT/*/oracle.txt)"
    exit 1
fi
echo "oracle: zero differences"
