#!/usr/bin/env python3
"""The ingest Lambda's real binary, invoked through the Lambda runtime API (`make lambda-invoke`).

    .venv/bin/python tests/lambda_invoke.py        (from anywhere; needs `make tools` first)

1. `cargo lambda build` builds the function's `bootstrap` (the artifact that is deployed).
2. moto serves S3 and DynamoDB on a free loopback port; boto3 (from moto's dependencies in .venv)
   creates the bucket, the table (from infra/table.json) and a log object.
3. `cargo lambda watch --only-lambda-apis` serves the Lambda runtime API; the bootstrap runs
   against it with Lambda's environment and the function's (TRAILSIGHT_TABLE, AWS_ENDPOINT_URL,
   test credentials, no instance metadata).
4. `cargo lambda invoke trailsight-ingest` sends an SQS-wrapped S3 event, twice: the first answer
   must have no batchItemFailures and leave a done marker and delta parts in the table; the
   second must be a duplicate. The function's EMF metrics line is checked as well.
Everything started here is stopped on exit, whatever happens (tests/harness/lambda_host.py).

Environment: CARGO_TARGET_DIR (default <repo>/target), LAMBDA_BUILD_FLAGS (e.g. --release),
VERBOSE=1 to print the function's log.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.lambda_host import (  # noqa: E402
    DETECT, INGEST, ROOT, CargoLambdaWatch, Host, cargo_lambda_build, require_tools, run_main, step,
)

FIXTURE = ROOT / "functions/ingest/testdata/sqs-s3-event.json"
DATASET = ROOT / "testdata/real/invictus-aws-attack-simulation"
BUCKET = "trailsight-logs"
TABLE = "trailsight-invoke-test"


def fail(message):
    raise SystemExit(f"FAIL: {message}")


def check(ddb, key, responses, function_log):
    """The answers, the table (a done marker, one version's delta parts) and the EMF lines."""
    for name, response in zip(("first", "second"), responses):
        if response != {"batchItemFailures": []}:
            fail(f"{name} response {response!r}, expected no batchItemFailures")

    file_id = hashlib.sha256(f"{BUCKET}\n{key}".encode()).digest()[:12].hex()
    marker = ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"F#{file_id}"}, "sk": {"S": "F"}}).get("Item")
    if not marker or marker["status"]["S"] != "done":
        fail(f"no done marker for {key}: {marker!r}")
    parts = [i for page in ddb.get_paginator("scan").paginate(TableName=TABLE)
             for i in page["Items"] if i["pk"]["S"].startswith("D#")]
    if not parts:
        fail("no delta parts in the table")
    # A version's parts are named <file id>.<version digest>.<base>#<part> (docs/TABLE.md).
    if any(not p["sk"]["S"].startswith(file_id + ".") for p in parts):
        fail("a delta part of another file: " + ", ".join(p["sk"]["S"] for p in parts))
    if len({p["sk"]["S"].split("#")[0] for p in parts}) != 1:
        fail("the duplicate delivery wrote a second version's parts")

    metrics = []
    for line in function_log.read_text(errors="replace").splitlines():
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


def main():
    require_tools("cargo-lambda", "moto_server", "python")
    flags = os.environ.get("LAMBDA_BUILD_FLAGS", "").split()
    step(f"cargo lambda build --package {INGEST} --package {DETECT} {' '.join(flags)}")
    start = time.monotonic()
    # Both functions, as the end-to-end run builds them: the same features as the test builds,
    # whose compiled dependencies are reused (building one function alone resolves others).
    bootstrap = cargo_lambda_build([INGEST, DETECT], flags)[INGEST]
    print(f"    built in {time.monotonic() - start:.0f}s: {bootstrap}")

    # The object the fixture names: a real log file of the invictus dataset.
    body = json.loads(json.loads(FIXTURE.read_text())["Records"][0]["body"])
    key = body["Records"][0]["s3"]["object"]["key"]

    with Host(prefix="trailsight-invoke-") as host:
        moto = host.moto()
        step(f"moto on 127.0.0.1:{moto.port}")
        step(f"bucket {BUCKET}, table {TABLE}, object {key}")
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=key, Body=(DATASET / key).read_bytes())
        moto.create_table(TABLE)

        api = CargoLambdaWatch(host)
        step(f"Lambda runtime API (cargo lambda watch --only-lambda-apis) on 127.0.0.1:{api.port}")
        step("the function's bootstrap, on that runtime API")
        host.start_bootstrap(bootstrap, INGEST, api.runtime_api(INGEST), memory=128, endpoint=moto.endpoint,
                             extra={"TRAILSIGHT_TABLE": TABLE, "TRAILSIGHT_METRIC_NAMESPACE": "Trailsight",
                                    "TRAILSIGHT_METRICS": "full"})

        step(f"cargo lambda invoke {INGEST} --data-file {FIXTURE.relative_to(ROOT)}")
        first = api.cargo_invoke(INGEST, FIXTURE)
        print(f"    response: {json.dumps(first, separators=(',', ':'))}")
        step("the same notification again (a duplicate delivery)")
        second = api.cargo_invoke(INGEST, FIXTURE)
        print(f"    response: {json.dumps(second, separators=(',', ':'))}")

        step("checking the responses, the table and the metrics")
        function_log = host.work / f"{INGEST}.log"
        check(moto.client("dynamodb"), key, [first, second], function_log)
        if os.environ.get("VERBOSE") == "1":
            print("--- function log")
            print(function_log.read_text(errors="replace"), end="")
    step("lambda_invoke: passed")


if __name__ == "__main__":
    run_main(main)
