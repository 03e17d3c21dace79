#!/usr/bin/env python3
"""Monthly AWS cost of Trailsight as deployed by default vs CloudTrail Insights.

Usage: cost_model.py [BENCH_OUT_DIR]
Reads the figures `make bench` measured (ingest.json, detector.json, detector_run.json, deltas.json
in BENCH_OUT_DIR, default out/bench); when they are absent (a fresh checkout), the snapshot bench/cost_inputs.json.
Prints a Markdown table per workload. Prices: us-east-1 as published (the contract's section 6).

What is modelled is what infra/template.yaml deploys with its defaults: TriggerMode s3 (the bucket
invokes ingest directly, one file per invocation, no queue), the detector state's body in the S3
state bucket (one PUT and one GET per run, its head in DynamoDB), MetricsLevel basic (one custom
metric, and the freshness alarm's log metric filter), five alarms, no dashboard. The summary also gives the total with a queue (TriggerMode sqs). No free tier is counted (an account may have used it up).
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
    "s3_put": 0.005 / 1000,  # DELETE is free
    "s3_storage_gb": 0.023,
    "sqs_request": 0.40 / 1e6,
    "cw_metric": 0.30,  # per custom metric (name + dimensions) a month, EMF included
    "cw_put": 0.01 / 1000,  # PutMetricData requests
    "cw_alarm": 0.10,  # standard-resolution alarm, per metric
    "cw_dashboard": 3.00,  # beyond the account's first three
    "cw_logs_gb": 0.50,  # log ingestion
    "eventbridge_event": 1.00 / 1e6,
}
DAYS = 30
MINUTES = DAYS * 24 * 60
RUNS_PER_MONTH = DAYS * 24 * 12  # detect every 5 minutes (the template's default)
SAVES_PER_RUN = 1.05  # a run that publishes saves twice (outbox, then published)
# What the template deploys by default (MetricsLevel basic, Dashboard false); see docs/DEPLOY.md.
CUSTOM_METRICS = 1  # DetectorLagMinutes; ingest writes no EMF at basic
METRIC_PUTS_PER_RUN = 1  # detect's PutMetricData (basic: sent by completed runs)
# The freshness alarm's log metric filter makes one more custom metric (LogFilesIngested; no
# PutMetricData: CloudWatch Logs writes it).
LOG_FILTER_METRICS = 1
# DetectorLag (custom metric), IngestDeadLetters (AWS/SQS), IngestFreshness (the log filter's metric),
# IngestBacklog (AWS/Lambda AsyncEventAge, or the queue's oldest message), DetectErrors (AWS/Lambda
# Errors: a run that could not deliver insight records or reach its storage)
ALARMS = 5
DASHBOARDS = 0
# Assumptions (not measured here):
# Files noted in the arrival log (their first minute over 10 minutes old when written: a CloudTrail
# file spans about 5 minutes and is delivered about 5 minutes after, so many are): one UpdateItem each.
LATE_NOTED_SHARE = 0.5
LAMBDA_VCPU_AT_128MB = 128 / 1769  # Lambda gives one vCPU at 1,769 MB, proportionally below
MARKER_BYTES = 250  # a key marker item: keys, status, seq, one version tag and ETag, TTL
FILE_OVERHEAD_S = 0.08  # S3 GET + DynamoDB round trips per file, billed while waiting
RECORDS_PER_FILE = {1e6: 1_000, 50e6: 5_000, 500e6: 5_000}
# TriggerMode s3 (default): S3 sends one event per object, so one file per invocation. With a queue
# (sqs, sns-sqs, eventbridge): batches of up to 10 within a 20 s window, about 5 files on average.
FILES_PER_INGEST_INVOCATION = {"s3": 1, "sqs": 5}
WRITE_SHARE = 0.10
ERROR_SHARE = 0.02  # management events carrying an errorCode
INSIGHT_RECORDS_PER_MONTH = 200
# SQS: Lambda's pollers long-poll the queue (20 s) whether or not it holds messages; five pollers
# when idle is the usual figure, 3 receives a minute each. Per file: S3's send, plus receive and
# delete batched by up to 10.
SQS_IDLE_POLLERS = 5
SQS_REQUESTS_PER_FILE = 1 + 2 / FILES_PER_INGEST_INVOCATION["sqs"]
# Log bytes: ingest writes one line per file (~400 B) and one summary per invocation (~600 B),
# detect one summary per run (~600 B); Lambda adds START/END/REPORT (~500 B per invocation).
LOG_BYTES_PER_FILE = 400
LOG_BYTES_PER_INVOCATION = 600 + 500
WORKLOADS = [(1e6, 2_000), (50e6, 20_000), (500e6, 200_000)]
# Principal insights: the detector's default cap of principals per account (one account modelled).
MAX_PRINCIPALS_PER_ACCOUNT = 200
SNAPSHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cost_inputs.json")


def measured(directory):
    """(fold events/s per core, stored bytes per cell, cells per counted event, state gzip bytes
    per series, one detect run's CPU seconds per series, its peak MB per series) and where they
    came from. The per-series figures are taken at the largest size measured."""
    names = ("ingest.json", "detector.json", "detector_run.json", "deltas.json")
    if all(os.path.exists(os.path.join(directory, n)) for n in names):
        with open(os.path.join(directory, "ingest.json")) as f:
            ingest = json.load(f)
        with open(os.path.join(directory, "deltas.json")) as f:
            deltas = json.load(f)
        with open(os.path.join(directory, "detector.json")) as f:
            detector = [json.loads(line) for line in f if line.strip().startswith("{")]
        with open(os.path.join(directory, "detector_run.json")) as f:
            runs = [json.loads(line) for line in f if line.strip().startswith("{")]
        # The state as the store saves it in S3 (the run's own save); detector.json's figure is
        # the default level, what a table-only deployment stores.
        state = max(max(r["saved_gzip_kb"] * 1024 / r["series"] for r in runs),
                    max(d["state_gzip_kb"] * 1024 / d["series"] for d in detector))
        largest = max(runs, key=lambda r: r["series"])
        return (ingest["events_per_s_fold"], deltas["stored_bytes_per_cell"],
                deltas["cells_per_counted_event"], state, largest["run_seconds"] / largest["series"],
                largest["peak_rss_mb"] / largest["series"]), directory
    with open(SNAPSHOT) as f:
        snap = json.load(f)
    return (snap["events_per_s_fold"], snap["stored_bytes_per_cell"], snap["cells_per_counted_event"],
            snap["state_gzip_bytes_per_series"], snap["detect_run_seconds_per_series"],
            snap["detect_run_mb_per_series"]), os.path.relpath(SNAPSHOT)


def principal_measured(directory):
    """What principal insights change, from `make bench`'s principal.json (a 9-day scenario with
    principal cases, replayed and folded with and without the flag), else the snapshot's copy:
    (cells per management event and stored bytes per cell with the flag, principal series per
    account series, and the detector's time per series-minute with the flag over without)."""
    path = os.path.join(directory, "principal.json")
    if os.path.exists(path):
        with open(path) as f:
            p = json.load(f)
        source = directory
    else:
        with open(SNAPSHOT) as f:
            p = json.load(f)["principal"]
        source = os.path.relpath(SNAPSHOT)
    off, on = p["replay_off"]["detector"], p["replay_on"]["detector"]
    d_off, d_on = p["deltas_off"], p["deltas_on"]

    def per_series_minute(d):
        return d["detect_seconds"] / max(d["minutes_evaluated"], 1) / max(d["series"], 1)

    # What the flag adds to what ingest stores: the principal series' cells and their bytes.
    cells = d_on["cells"] - d_off["cells"]
    stored = d_on["cells"] * d_on["stored_bytes_per_cell"] - d_off["cells"] * d_off["stored_bytes_per_cell"]
    return {
        "cells_per_event": cells / max(d_on["records"], 1),
        "bytes_per_cell": stored / max(cells, 1),
        "principal_series_per_series": on["principal_series"] / max(off["series"], 1),
        "series_per_principal": on["principal_series"] / max(on["principals"], 1),
        "detect_cost_ratio": per_series_minute(on) / per_series_minute(off),
    }, source


def detect_memory_mb(series, mb_per_series):
    """The template's DetectMemorySize (512 by default), raised to the smallest of the usual sizes
    holding a run's measured peak, the Lambda runtime and the SDK clients (about 20 MB, make
    cold-start) and a quarter to spare."""
    need = 1.25 * (series * mb_per_series + 20)
    return next((m for m in (512, 1024, 2048, 4096, 10240) if m >= need), 10240)


def workload(events_per_day, series, inputs, trigger="s3", principal=None):
    (events_per_s_core, bytes_per_cell, cells_per_counted_event, state_gzip_per_series,
     run_seconds_per_series, run_mb_per_series) = inputs
    state_bytes_per_series = state_gzip_per_series * 3  # x3: real attribution strings
    month_events = events_per_day * DAYS
    files = events_per_day / RECORDS_PER_FILE[events_per_day] * DAYS
    invocations = files / FILES_PER_INGEST_INVOCATION[trigger]
    counted = month_events * (WRITE_SHARE + ERROR_SHARE)
    # Cells: at most one per series and minute.
    cells = min(counted * cells_per_counted_event, series * MINUTES)
    stored_kb = cells * bytes_per_cell / 1024
    if principal:
        # Principal insights (opt-in): every management event, read or write, also counts in
        # its caller's series (the principal and the API, the principal and the service, the
        # API over all principals): cells and bytes per event as measured, at most one cell per
        # series and minute. Principal series: as many per account series as measured, at most
        # the cap of principals per account times the series a principal measured. Judging them
        # costs more per series (more cells a minute); the state's bytes per series measured
        # the same with and without.
        principal_series = min(series * principal["principal_series_per_series"],
                               MAX_PRINCIPALS_PER_ACCOUNT * principal["series_per_principal"])
        principal_cells = min(month_events * principal["cells_per_event"], principal_series * MINUTES)
        stored_kb += principal_cells * principal["bytes_per_cell"] * principal.get("bytes_factor", 1) / 1024
        run_seconds_per_series = run_seconds_per_series * (
            series + principal_series * principal["detect_cost_ratio"]) / (series + principal_series)
        series = series + principal_series
    state_kb = series * state_bytes_per_series / 1024
    items = {}
    seconds = files * FILE_OVERHEAD_S + month_events / (events_per_s_core * LAMBDA_VCPU_AT_128MB)
    items["Lambda ingest (128 MB)"] = seconds * 0.125 * PRICE["lambda_gb_s"] + invocations * PRICE["lambda_request"]
    # A run: DynamoDB and S3 round trips (~0.2 s), then the measured load + evaluate + save, at
    # the memory size's share of a vCPU; the memory from the measured peak (DetectMemorySize).
    memory = detect_memory_mb(series, run_mb_per_series * 3)  # x3 like the state: real strings
    vcpu = min(memory / 1769, 1.0)
    detect_seconds = RUNS_PER_MONTH * (0.2 + series * run_seconds_per_series * 3 / vcpu)
    items[f"Lambda detect ({memory} MB)"] = (
        detect_seconds * memory / 1024 * PRICE["lambda_gb_s"] + RUNS_PER_MONTH * PRICE["lambda_request"])
    # Writes: each part rounds up to whole KB; two marker updates per file (the version's claim and
    # its commit, docs/TABLE.md). Reads: the marker twice (once consistent) and one consistent query
    # of the key's parts per hour the file touches (about 1.5), a unit each.
    parts = max(files, stored_kb / 300)
    items["DynamoDB writes (ingest)"] = (
        stored_kb + parts * 0.5 + 2 * files + LATE_NOTED_SHARE * files) * PRICE["ddb_wru"]
    items["DynamoDB reads (ingest markers)"] = 3.5 * files * PRICE["ddb_rru"]
    # Detect reads ~1.5 hours of deltas per run (consistent, 4 KB per unit), the state head and the
    # arrival log's two current hours (consistent, a unit each); late files make it read an hour
    # again now and then (not modelled). Each save is one conditional UpdateItem of the head.
    hour_kb = stored_kb / (DAYS * 24)
    items["DynamoDB reads (detect: deltas, state head, arrival log)"] = (
        RUNS_PER_MONTH * (1.5 * hour_kb / 4 + 3) * PRICE["ddb_rru"])
    items["DynamoDB writes (detect: state head)"] = RUNS_PER_MONTH * SAVES_PER_RUN * PRICE["ddb_wru"]
    # Key markers live 36 days (longer than parts), about 250 bytes each with DynamoDB's overhead.
    marker_kb = files / DAYS * 36 * MARKER_BYTES / 1024
    items["DynamoDB storage (35 days of deltas, 36 of markers)"] = (
        (stored_kb * 35 / DAYS + marker_kb) / 1024 / 1024 * PRICE["ddb_storage_gb"])
    # The state's body: one PUT per save, one GET per run, the previous version's DELETE (free);
    # one object stored.
    items["S3 detector state (PUT, GET, storage)"] = (
        RUNS_PER_MONTH * (SAVES_PER_RUN * PRICE["s3_put"] + PRICE["s3_get"])
        + state_kb / 1024 / 1024 * PRICE["s3_storage_gb"])
    items["S3 GET (log files)"] = files * PRICE["s3_get"]
    # TriggerMode s3: no queue; the dead-letter queue only receives failed events (none modelled).
    if trigger == "s3":
        items["SQS (TriggerMode s3: no queue to poll)"] = 0.0
    else:
        items["SQS (idle long polls, per-file requests)"] = (
            SQS_IDLE_POLLERS * 3 * MINUTES + files * SQS_REQUESTS_PER_FILE) * PRICE["sqs_request"]
    items["EventBridge events"] = INSIGHT_RECORDS_PER_MONTH * PRICE["eventbridge_event"]
    items[f"CloudWatch custom metrics ({CUSTOM_METRICS}, basic)"] = (
        CUSTOM_METRICS * PRICE["cw_metric"] + RUNS_PER_MONTH * METRIC_PUTS_PER_RUN * PRICE["cw_put"])
    items["CloudWatch log metric filter (LogFilesIngested, freshness)"] = LOG_FILTER_METRICS * PRICE["cw_metric"]
    items[f"CloudWatch alarms ({ALARMS})"] = ALARMS * PRICE["cw_alarm"]
    if principal:
        # The PrincipalsUntracked alarm and the log metric its filter makes.
        items["CloudWatch PrincipalsUntracked (log metric filter and alarm)"] = (
            PRICE["cw_metric"] + PRICE["cw_alarm"])
    items["CloudWatch dashboard (off by default)"] = DASHBOARDS * PRICE["cw_dashboard"]
    log_bytes = files * LOG_BYTES_PER_FILE + (invocations + RUNS_PER_MONTH) * LOG_BYTES_PER_INVOCATION
    items["CloudWatch Logs (function logs)"] = log_bytes / 1e9 * PRICE["cw_logs_gb"]
    cti = month_events * (WRITE_SHARE + 1.0) * PRICE["cti_per_event_per_type"]
    return items, cti


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "out/bench"
    inputs, source = measured(directory)
    (events_per_s_core, bytes_per_cell, cells_per_counted_event, state_gzip_per_series,
     run_seconds_per_series, run_mb_per_series) = inputs
    print(f"Measured (from {source}): fold {events_per_s_core:,.0f} events/s per core; {bytes_per_cell:.1f} stored "
          f"bytes per cell; {cells_per_counted_event:.3f} cells per counted event; state "
          f"{state_gzip_per_series * 3:.0f} B per series, a detect run {run_seconds_per_series * 3e6:.1f} "
          f"CPU-µs and {run_mb_per_series * 3e3:.2f} MB per 1,000 series (all x3 margin)\n")
    summary = []
    principal, principal_source = principal_measured(directory)
    for events_per_day, series in WORKLOADS:
        items, cti = workload(events_per_day, series, inputs)
        total = sum(items.values())
        queued = sum(workload(events_per_day, series, inputs, "sqs")[0].values())
        summary.append((events_per_day, series, total, cti, queued))
        print(f"### {events_per_day / 1e6:g}M management events per day, {series:,} series\n")
        print("| item | $/month |\n|---|---|")
        for name, cost in items.items():
            print(f"| {name} | {cost:,.2f} |")
        print(f"| **Trailsight total** | **{total:,.2f}** |")
        print(f"| CloudTrail Insights, both types | {cti:,.2f} |")
        print(f"| Trailsight / Insights | {100 * total / cti:.2f} % |\n")
    print("### Summary\n")
    print("| management events per day | series | Trailsight $/month | CloudTrail Insights $/month | ratio "
          "| with a queue (TriggerMode sqs) |")
    print("|---|---|---|---|---|---|")
    for events_per_day, series, total, cti, queued in summary:
        print(f"| {events_per_day / 1e6:g}M | {series:,} | {total:,.2f} | {cti:,.2f} | {100 * total / cti:.2f} % "
              f"| {queued:,.2f} ({100 * queued / cti:.2f} %) |")
    print(f"\n### With principal insights on (TRAILSIGHT_PRINCIPAL_INSIGHTS)\n")
    print(f"Measured (from {principal_source}): {principal['cells_per_event']:.2f} more stored cells per "
          f"management event (reads included) at {principal['bytes_per_cell']:.1f} bytes each; "
          f"{principal['principal_series_per_series']:.2f} principal series per account series, "
          f"{principal['series_per_principal']:.0f} per principal (at most {MAX_PRINCIPALS_PER_ACCOUNT} "
          f"principals per account); judging a series-minute costs {principal['detect_cost_ratio']:.1f} times "
          f"an account one's. Upper bound: a principal cell as large as an account cell "
          f"({bytes_per_cell:.1f} bytes), as it may be when it holds many calls.\n")
    print("| management events per day | series (account + principal) | Trailsight $/month | of which DynamoDB "
          "| CloudTrail Insights $/month | ratio | upper bound |")
    print("|---|---|---|---|---|---|---|")
    larger = dict(principal, bytes_factor=bytes_per_cell / principal["bytes_per_cell"])
    for events_per_day, series in WORKLOADS:
        items, cti = workload(events_per_day, series, inputs, principal=principal)
        total = sum(items.values())
        ddb = sum(v for k, v in items.items() if k.startswith("DynamoDB"))
        bound = sum(workload(events_per_day, series, inputs, principal=larger)[0].values())
        all_series = series + min(series * principal["principal_series_per_series"],
                                  MAX_PRINCIPALS_PER_ACCOUNT * principal["series_per_principal"])
        print(f"| {events_per_day / 1e6:g}M | {all_series:,.0f} | {total:,.2f} | {ddb:,.2f} | {cti:,.2f} "
              f"| {100 * total / cti:.2f} % | {bound:,.2f} ({100 * bound / cti:.2f} %) |")


if __name__ == "__main__":
    main()
