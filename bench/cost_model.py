#!/usr/bin/env python3
"""Monthly AWS cost of Trailsight vs CloudTrail Insights, from the figures `make bench` measured.

Usage: cost_model.py [BENCH_OUT_DIR]  (reads ingest.json, detector.json, deltas.json there)
Prints a Markdown table per workload. Prices: us-east-1 as published (the contract's section 6).
Assumptions are named below; every other number comes from the benchmark files."""
import json
import math
import os
import sys

PRICE = {
    "cti_per_event_per_type": 0.35 / 100_000,
    "lambda_gb_s": 0.0000133334,  # arm64
    "lambda_request": 0.20 / 1e6,
    "ddb_wru": 0.625 / 1e6,
    "ddb_rru": 0.125 / 1e6,
    "ddb_storage_gb": 0.25,
    "s3_get": 0.0004 / 1000,
    "cw_metric": 0.30,
    "cw_put": 0.01 / 1000,
    "eventbridge_event": 1.00 / 1e6,
}
DAYS = 30
RUNS_PER_MONTH = DAYS * 24 * 12  # detect every 5 minutes (the template's default)
# Assumptions (not measured here):
LAMBDA_VCPU_AT_128MB = 128 / 1769  # Lambda gives one vCPU at 1,769 MB, proportionally below
FILE_OVERHEAD_S = 0.08  # S3 GET + DynamoDB round trips per file, billed while waiting
RECORDS_PER_FILE = {1e6: 1_000, 50e6: 5_000, 500e6: 5_000}
WRITE_SHARE = 0.10
ERROR_SHARE = 0.02  # management events carrying an errorCode
INSIGHT_RECORDS_PER_MONTH = 200
METRICS = 7  # InsightsStarted/Active x 2 types, SeriesEvaluated, DetectorLagMinutes, RunErrors
WORKLOADS = [(1e6, 2_000), (50e6, 20_000), (500e6, 200_000)]


def load(directory, name):
    with open(os.path.join(directory, name)) as f:
        text = f.read()
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")] if name == "detector.json" else json.loads(text)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "out/bench"
    ingest = load(directory, "ingest.json")
    detector = {d["series"]: d for d in load(directory, "detector.json")}
    deltas = load(directory, "deltas.json")
    events_per_s_core = ingest["events_per_s_fold"]
    bytes_per_cell = deltas["stored_bytes_per_cell"]
    cells_per_counted_event = deltas["cells_per_counted_event"]
    state_bytes_per_series = max(d["state_gzip_kb"] * 1024 / d["series"] for d in detector.values()) * 3  # x3: real attribution strings
    print(f"Measured: fold {events_per_s_core:,.0f} events/s per core; {bytes_per_cell:.1f} stored bytes per cell; "
          f"{cells_per_counted_event:.3f} cells per counted event; state {state_bytes_per_series:.0f} B per series (x3 margin)\n")
    for events_per_day, series in WORKLOADS:
        month_events = events_per_day * DAYS
        files = events_per_day / RECORDS_PER_FILE[events_per_day] * DAYS
        counted = month_events * (WRITE_SHARE + ERROR_SHARE)
        # Cells: at most one per series and minute.
        cells = min(counted * cells_per_counted_event, series * 1440 * DAYS)
        stored_kb = cells * bytes_per_cell / 1024
        seconds = files * FILE_OVERHEAD_S + month_events / (events_per_s_core * LAMBDA_VCPU_AT_128MB)
        items = {}
        items["Lambda ingest (128 MB)"] = seconds * 0.125 * PRICE["lambda_gb_s"] + files / 5 * PRICE["lambda_request"]
        state_kb = series * state_bytes_per_series / 1024
        detect_seconds = RUNS_PER_MONTH * (0.2 + series * 5 * 1.2e-6 + state_kb / 20_000)
        items["Lambda detect (512 MB)"] = detect_seconds * 0.5 * PRICE["lambda_gb_s"] + RUNS_PER_MONTH * PRICE["lambda_request"]
        # Writes: each part rounds up to whole KB; one marker per file.
        parts = max(files, stored_kb / 300)
        items["DynamoDB writes (ingest)"] = (stored_kb + parts * 0.5 + files) * PRICE["ddb_wru"]
        items["DynamoDB reads (ingest markers)"] = files * PRICE["ddb_rru"]
        # Detect: reads ~1.5 hours of deltas per run (eventually consistent, 8 KB per unit), loads
        # the state (consistent, 4 KB per unit) and saves it once or twice (1 KB per unit).
        hour_kb = stored_kb / (DAYS * 24)
        items["DynamoDB reads (detect)"] = RUNS_PER_MONTH * (1.5 * hour_kb / 8 + state_kb / 4) * PRICE["ddb_rru"]
        items["DynamoDB writes (detect state)"] = RUNS_PER_MONTH * 1.05 * math.ceil(state_kb) * PRICE["ddb_wru"]
        items["DynamoDB storage (35 days of deltas)"] = stored_kb * 35 / DAYS / 1024 / 1024 * PRICE["ddb_storage_gb"]
        items["S3 GET (log files)"] = files * PRICE["s3_get"]
        items["EventBridge events"] = INSIGHT_RECORDS_PER_MONTH * PRICE["eventbridge_event"]
        items["CloudWatch metrics"] = METRICS * PRICE["cw_metric"] + RUNS_PER_MONTH * PRICE["cw_put"]
        total = sum(items.values())
        cti = month_events * (WRITE_SHARE + 1.0) * PRICE["cti_per_event_per_type"]
        print(f"### {events_per_day / 1e6:g}M management events per day, {series:,} series\n")
        print("| item | $/month |\n|---|---|")
        for name, cost in items.items():
            print(f"| {name} | {cost:,.2f} |")
        print(f"| **Trailsight total** | **{total:,.2f}** |")
        print(f"| CloudTrail Insights, both types | {cti:,.2f} |")
        print(f"| Trailsight / Insights | {100 * total / cti:.2f} % |\n")


if __name__ == "__main__":
    main()
