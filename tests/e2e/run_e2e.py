#!/usr/bin/env python3
"""End to end: the two Lambda binaries, as deployed, on a local AWS (moto) and Lambda's runtime
API (`cargo lambda watch`), fed a folder of CloudTrail log files; the insights they publish to
EventBridge, captured through a rule -> SQS queue, written as JSON lines.

    run_e2e.py --data DIR --out FILE [--step 15m] [--release] [--chaos SEED]
               [--principal-insights] [--principal-warmup-hours HOURS]

DIR holds log files in CloudTrail's S3 layout (`AWSLogs/<account>/CloudTrail/<region>/...`, as
`trailsight simulate` writes them); its files become the objects of a bucket, under the same keys.

Phases (each one timed):
 1. build: `cargo lambda build` of trailsight-ingest and trailsight-detect, `cargo build` of the
    trailsight CLI;
 2. moto on a free loopback port; `trailsight setup` creates the table (infra/table.json), the
    bucket and the queue with its EventBridge rule (source `trailsight`, default bus);
 3. upload: DIR's files to the bucket;
 4. `cargo lambda watch --only-lambda-apis` serves the runtime API; two ingest bootstraps (so
    invocations really run concurrently) and one detect bootstrap poll it, with the functions'
    environment (TRAILSIGHT_TABLE, AWS_ENDPOINT_URL, test credentials, no instance metadata);
 5. ingest: every object's S3 notification delivered twice, by four threads, so duplicates often
    run at the same time, POSTed to the runtime API's invoke endpoint (what `cargo lambda invoke`
    does): once wrapped in SQS records, at most 10 per invocation (TriggerMode sqs), messages
    reported in `batchItemFailures` redelivered as SQS would; once as the S3 event itself, one
    file per invocation (TriggerMode s3, the default: S3 invokes ingest asynchronously), a failed
    invocation retried as Lambda would, at most three attempts;
 6. detect: scheduled events from the first delivery minute to the last, every STEP, and one at
    exactly the last delivery minute (where `trailsight replay` runs its last evaluation);
 7. capture: the queue's events; their `detail` records, deduplicated by eventID, sorted like
    replay's output (eventTime, Start before End, key), one JSON line each, to FILE. The archive
    files the detect function wrote to the bucket must hold the same records, and Security Hub
    one finding per insight, as its last record left it (the plain run imports findings).

Fault mode: `run_e2e.py --data DIR --out FILE --chaos SEED` (`make e2e ... CHAOS=SEED`). The same
functions, with faults drawn from SEED (tests/e2e/chaos.py), and ingest and detect interleaved as
in production: before each scheduled detect run, the notifications due by its `time` are delivered
(twice, as above). It first runs `trailsight replay` over DIR, and fails unless what was published
equals it (below).
 (a) kills: each bootstrap polls the runtime API through a tap that SIGKILLs it during an
     invocation: at the hand-out, after a random delay (anywhere in the handler: between two
     conditional puts, between the state's save and the publish...), or at the response (all the
     work done, the answer lost); the tap fails the invocation as Lambda does when a runtime exits
     (`Runtime.ExitError`) and starts a new bootstrap. 4% of ingest deliveries (first attempts),
     whose notifications come again as Lambda would (the SQS batch made visible again, the S3
     event retried), and 8% of detect runs, continued by the next scheduled run;
 (b) delays: a delivery outage of 60 to 150 minutes (every file delivered in it arrives together
     at its end, up to 2.5 hours late, with the first file delivered after it), placed over one
     of replay's spikes when one fits whole inside it, so that the spike is found in late data;
     and 3% of the files, one by one, 1 to 6 hours late, after detect runs have judged their
     minutes;
 (c) dead letters: 4 notifications (of the last 40 hours, inside the 48-hour late window at the
     end) delivered only as S3 events whose three attempts are all killed at the hand-out; they go
     to a dead-letter list, redriven after the last scheduled run;
 (d) EventBridge: detect reaches AWS through tests/eventbridge_fault_proxy.py, which refuses the
     first entry (`FailedEntryCount`, `InternalFailure`) of the next 8 PutEvents calls, armed
     before the first run and once more when used up: with the publisher's 4 attempts per call, a
     record fails in at most 2 runs per window, short of the 5 that send it to the dead letters.
Then detect runs at the last delivery minute until a run leaves nothing undelivered. The run
fails if a record was dead-lettered or a part arrived beyond the late window.

What "equal" means. Every published record (deduplicated by eventID: a run killed between publish
and save is repeated with the same IDs) has replay's series, state and eventTime, replay has no
other, and each Start and End share a sharedEventID; where no late file (outage, delayed,
dead-lettered) held an event of the record's series (a call of its API; for an error-rate series,
an error of the API with its code), the whole record is replay's, eventID and sharedEventID
included (both are derived from content). The others are compared on series, state and eventTime only: a baseline that
learned minutes late holds the same counts, but its decayed top callers, user agents and error
codes (attributions) and hour-of-day sums were folded in another order.
Some late deliveries cannot give replay's insights, and the plan keeps clear of them rather than
hiding them:
 - a spike whose files come back in several pieces is reported from the first piece
   (docs/DETECTION.md): an outage holds a spike whole or none of it (25 minutes clear either
   side), single late files never touch one;
 - a late file that leaves a hole in an API's activity while the files around it arrive looks
   exactly like a silence: no late file takes away calls that would leave an API silent for 25
   minutes and over twice its longest gap so far (a drop needs 30 minutes and 2.5 times);
 - the gap a detect run sees across a hole is kept in the baseline's rhythm (the longest gap of
   each day) and late data does not shorten it, so a later drop of that API starts later or not
   at all: late files never widen the gaps of an API replay reports a drop for, neither one by
   one nor at the outage's start (files delivered just before it hold calls later than some of
   those it holds back: a file holds 15 minutes), and the outage arrives before any file
   delivered after it is judged;
 - a drop's onset (through the 3-hour hold) and its end are kept clear of late files.
What is random is the plan (which files, which invocations, which kill point); when exactly a
delayed kill lands varies from run to run, and the result must not depend on it. The figures
printed (kills, redeliveries, refused entries, late data judged, from the runs' log lines) are
the run's own.

moto, `cargo lambda watch`, the bootstraps and their environment, and stopping everything
started here on exit whatever happens, are tests/harness/lambda_host.py's. Tools come from the
project's venv (.venv/bin first on PATH: cargo-lambda, moto_server, boto3). Environment:
CARGO_TARGET_DIR.
"""

import argparse
import calendar
import collections
import concurrent.futures
import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import chaos  # noqa: E402
from harness.lambda_host import (  # noqa: E402
    DETECT, INGEST, REGION, ROOT, CargoLambdaWatch, Host, aws_env, cargo_lambda_build, listening_port,
    build_dir, require_tools, run, run_main, step, target_dir, tools_env,
)

TABLE = "trailsight-e2e"
# moto's account: detect imports findings under its default product.
PRODUCT_ARN = f"arn:aws:securityhub:{REGION}:123456789012:product/123456789012/default"
BUCKET = "trailsight-e2e-trail"
QUEUE = "trailsight-e2e-insights"
LOG_NAME = re.compile(r"^(\d+)_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json(\.gz)?$")

TIMINGS = []


def log(message):
    print(message, flush=True)


class Phase:
    """Times a phase and prints it."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        step(self.name)
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        elapsed = time.monotonic() - self.start
        TIMINGS.append((self.name, elapsed))
        log(f"    {self.name}: {elapsed:.1f}s")
        return False


def proxy_control(base, path, method="GET"):
    request = urllib.request.Request(base + path, data=b"" if method == "POST" else None, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_lines(work, function):
    """The fields of the run-summary log lines (`outcome` completed) of a function's bootstraps."""
    lines = []
    for path in sorted(work.glob(f"{function}-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"outcome":"completed"' not in line:
                continue
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                continue
            if "late_cells" in fields:
                lines.append(fields)
    return lines


def parse_step(text):
    match = re.fullmatch(r"(\d+)([mh]?)", text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected minutes such as 15m, 5 or 1h")
    return int(match.group(1)) * (60 if match.group(2) == "h" else 1)


def delivery_minute(key):
    """The delivery time in a CloudTrail log file's name, as epoch minutes; None otherwise."""
    match = LOG_NAME.match(key.rsplit("/", 1)[-1])
    if not match or "/CloudTrail/" not in "/" + key:
        return None
    stamp = time.strptime(match.group(3), "%Y%m%dT%H%MZ")
    return calendar.timegm(stamp) // 60


def iso_minute(minute, seconds=0):
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60)) + f"{seconds:02d}Z"


def s3_record(key, size, minute):
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": iso_minute(minute) if minute is not None else "1970-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:regionalDeliverySession"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper()},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "trailsight",
            "bucket": {
                "name": BUCKET,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": f"arn:aws:s3:::{BUCKET}",
            },
            "object": {
                # S3 notifications URL-encode keys, with '+' for spaces.
                "key": urllib.parse.quote_plus(key, safe="/"),
                "size": size,
                "eTag": hashlib.md5(key.encode()).hexdigest(),
                "sequencer": uuid.uuid4().hex[:18].upper(),
            },
        },
    }


def sqs_record(body):
    text = json.dumps(body)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": uuid.uuid4().hex,
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:trailsight-ingest",
        "awsRegion": REGION,
    }


class Invoker:
    """Invokes through the runtime API's invoke endpoint, as `cargo lambda invoke` does, once the
    bootstraps are known to be alive."""

    def __init__(self, api, exited, plans=None):
        self.api = api
        self.exited = exited  # () -> the exit status (or None) of each function bootstrap
        self.plans = plans  # chaos.KillPlans in the fault mode

    def check(self):
        """Fails at once if a function's process died (an invocation would wait for it forever)."""
        for status in self.exited():
            if status is not None:
                raise RuntimeError(f"a function bootstrap exited with status {status}")

    def invoke(self, function, event, timeout=300, kill=None):
        """POSTs `event`; in the fault mode, `kill` is where its bootstrap dies (chaos.KillPlans)."""
        self.check()
        if self.plans is not None:
            self.plans.register(event, kill)
        return self.api.invoke(function, event, timeout)


def sort_key(record):
    details = record["insightDetails"]
    error = details.get("errorCode")
    return (
        record["eventTime"],
        details["state"] == "End",
        record["recipientAccountId"],
        record["awsRegion"],
        details["eventSource"],
        details["eventName"],
        error is not None,
        error or "",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--step", default="15m", type=parse_step, help="detect schedule (15m)")
    parser.add_argument("--release", action="store_true", help="build with --release")
    parser.add_argument("--ingest-instances", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="ingest delivery threads")
    parser.add_argument("--principal-insights", action="store_true",
                        help="per-principal insights on both functions (and the fault mode's replay)")
    parser.add_argument("--principal-warmup-hours", type=int, metavar="HOURS",
                        help="the detect function's TRAILSIGHT_PRINCIPAL_WARMUP_HOURS (and replay's)")
    parser.add_argument("--chaos", type=int, metavar="SEED",
                        help="the fault mode (see above), its randomness seeded with SEED")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: {args.data} is not a folder")
    require_tools("cargo-lambda", "moto_server", "python")
    with Host(prefix="trailsight-e2e-") as host:
        return e2e(args, host)


def e2e(args, host):
    chaos_mode = args.chaos is not None
    kill_stats = collections.Counter()
    profile = "release" if args.release else "debug"
    base_env = tools_env()
    work = host.work
    total_start = time.monotonic()

    files = sorted(p for p in args.data.rglob("*") if p.is_file())
    objects = []
    for path in files:
        key = path.relative_to(args.data).as_posix()
        objects.append((key, path, delivery_minute(key)))
    deliveries = sorted(m for _, _, m in objects if m is not None)
    if not deliveries:
        raise SystemExit(f"error: no CloudTrail log files (by name) under {args.data}")
    first, last = deliveries[0], deliveries[-1]
    log(f"{len(objects)} files, {len(deliveries)} log files delivered {iso_minute(first)} .. {iso_minute(last)}")

    with Phase("build"):
        flags = ["--release"] if args.release else []
        bootstraps = cargo_lambda_build([INGEST, DETECT], flags)
        if args.release:
            run(["cargo", "build", "--quiet", "-p", "trailsight-cli", *flags], what="cargo build")
        else:
            # The debug command as `make test`'s unit step builds it: the same package selection
            # resolves the same features, so nothing is compiled again.
            run(["cargo", "test", "--quiet", "--workspace", "--exclude", "trailsight-integration",
                 "--no-run"], what="cargo test --no-run")
        cli = build_dir(profile) / "trailsight"

    replay_records = []
    if chaos_mode:
        with Phase("trailsight replay (what the fault mode must publish)"):
            replayed = subprocess.run([str(cli), "replay", *principal_flags(args), str(args.data)],
                                      cwd=ROOT, env=base_env,
                                      stdout=subprocess.PIPE)
            if replayed.returncode != 0:
                raise SystemExit(f"error: trailsight replay failed (status {replayed.returncode})")
            replay_records = [json.loads(line) for line in replayed.stdout.decode().splitlines() if line.strip()]
            log(f"    {len(replay_records)} records")

    with Phase("moto and trailsight setup"):
        moto = host.moto()
        endpoint = moto.endpoint
        # The CLI's environment: this one, its AWS settings moto's.
        env = {k: v for k, v in base_env.items() if k != "AWS_PROFILE"}
        env.update(aws_env(endpoint))
        run([str(cli), "setup", "--table", TABLE, "--bucket", BUCKET, "--queue", QUEUE], env=env, what="trailsight setup")
        s3 = moto.client("s3")
        sqs = moto.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]

    with Phase("upload"):
        def upload(item):
            key, path, _ = item
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, objects))
        log(f"    {len(objects)} objects in s3://{BUCKET}")

    with Phase("runtime API and function bootstraps"):
        api = CargoLambdaWatch(host)
        eventbridge_proxy = None
        if chaos_mode:
            # Detect reaches AWS through the EventBridge fault proxy (armed by the plan).
            proxy = host.start([sys.executable, str(ROOT / "tests" / "eventbridge_fault_proxy.py"), "--port", "0",
                                "--upstream", endpoint, "--fail-calls", "0"], "eventbridge-proxy.log")
            eventbridge_proxy = f"http://127.0.0.1:{listening_port(work / 'eventbridge-proxy.log', proxy)}"
        instances = [(INGEST, i) for i in range(max(1, args.ingest_instances))]
        instances.append((DETECT, 0))
        plans = chaos.KillPlans() if chaos_mode else None
        taps = []
        functions = []
        starts = collections.Counter()

        def spawn(name, i, runtime_api):
            """Bootstrap `i` of `name`, polling `runtime_api` (the function's own route of the
            emulator, or a tap in front of it); its log <name>-<i>.<restarts>.log."""
            extra = {"TRAILSIGHT_TABLE": TABLE}
            if args.principal_insights:
                extra["TRAILSIGHT_PRINCIPAL_INSIGHTS"] = "true"
            if args.principal_warmup_hours is not None and name == DETECT:
                extra["TRAILSIGHT_PRINCIPAL_WARMUP_HOURS"] = str(args.principal_warmup_hours)
            endpoint_ = endpoint
            if name == DETECT:
                # The archive in the trail's own bucket: ingest must never read it.
                extra["TRAILSIGHT_ARCHIVE_BUCKET"] = BUCKET
                if not chaos_mode:
                    # Security Hub findings (the plain run: the fault mode's proxy would refuse
                    # imports too, and its plan counts EventBridge's refusals only).
                    extra["TRAILSIGHT_SECURITY_HUB_PRODUCT_ARN"] = PRODUCT_ARN
                endpoint_ = eventbridge_proxy or endpoint
            log_name = f"{name}-{i}.{starts[(name, i)]}.log"
            starts[(name, i)] += 1
            return host.start_bootstrap(bootstraps[name], name, runtime_api, log=log_name, memory=256,
                                        endpoint=endpoint_, extra=extra)

        for name, i in instances:
            if chaos_mode:
                tap = chaos.RuntimeTap(
                    name, api.runtime_api(name), plans,
                    lambda runtime_api, n=name, k=i: spawn(n, k, runtime_api), kill_stats)
                tap.start()
                taps.append(tap)
            else:
                functions.append(spawn(name, i, api.runtime_api(name)))
        if chaos_mode:
            exited = lambda: [t.exited() for t in taps]  # noqa: E731
        else:
            exited = lambda: [p.poll() for p in functions]  # noqa: E731
        invoker = Invoker(api, exited, plans)
        time.sleep(0.5)
        invoker.check()

    counters = collections.Counter()
    lock = threading.Lock()

    def deliver(delivery):
        mode, payload, kill = delivery
        if mode == "s3":
            return deliver_direct(payload, kill)
        pending = payload
        for receive in range(5):
            fresh = [dict(m, messageId=str(uuid.uuid4())) for m in pending]
            status, body = invoker.invoke("trailsight-ingest", {"Records": fresh},
                                          kill=kill if receive == 0 else None)
            with lock:
                counters["invocations"] += 1
            try:
                answer = json.loads(body) if status == 200 else {"errorType": f"HTTP {status}"}
            except ValueError:
                answer = {"errorType": "unreadable response"}
            if "errorType" in answer:
                # The invocation failed: SQS makes the whole batch visible again.
                failed = {m["messageId"] for m in fresh}
            else:
                failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
            if not failed:
                return
            with lock:
                counters["redelivered"] += len(failed)
            pending = [m for m, f in zip(pending, fresh) if f["messageId"] in failed]
            time.sleep(0.2)
        raise RuntimeError(f"{len(pending)} notifications still failing after 5 deliveries: {body[:500]!r}")

    def deliver_direct(event, kill=None, attempts=3):
        """An asynchronous S3 invocation, retried as Lambda does; False when it ends in the
        dead-letter queue (only `kill` plans may send it there)."""
        kills = list(kill) if isinstance(kill, list) else [kill]
        for attempt in range(attempts):
            status, body = invoker.invoke("trailsight-ingest", event,
                                          kill=kills[attempt] if attempt < len(kills) else None)
            with lock:
                counters["invocations"] += 1
            try:
                failed = status != 200 or "errorType" in json.loads(body)
            except ValueError:
                failed = True
            if not failed:
                return True
            with lock:
                counters["retried"] += 1
            time.sleep(0.2)
        if isinstance(kill, list):
            return False
        raise RuntimeError(f"a direct S3 event still failing after 3 attempts: {body[:500]!r}")

    def deliveries_of(items, kill_for=lambda: None):
        """Each notification twice: in SQS batches of at most 10, and right behind each batch its
        files' S3 events one by one, so that the two deliveries of a file often run at once."""
        events = [{"Records": [s3_record(key, path.stat().st_size, minute)]} for key, path, minute in items]
        batches = [[sqs_record(e) for e in events[i:i + 10]] for i in range(0, len(events), 10)]
        return [
            d for i, batch in enumerate(batches)
            for d in [("sqs", batch, kill_for())] + [("s3", e, kill_for()) for e in events[10 * i:10 * i + len(batch)]]
        ], len(events), len(batches)

    def run_deliveries(deliveries):
        with concurrent.futures.ThreadPoolExecutor(max(1, args.threads)) as pool:
            for future in concurrent.futures.as_completed([pool.submit(deliver, d) for d in deliveries]):
                future.result()

    ordered = sorted(objects, key=lambda o: (o[2] if o[2] is not None else -1, o[0]))
    times = list(range(first, last, args.step))
    times.append(last)

    def schedule_event(minute):
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": iso_minute(minute, 0),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:123456789012:rule/trailsight-detect-tick"],
            "detail": {},
        }

    totals = collections.Counter()

    def note_summary(summary):
        totals["published"] += summary.get("published", 0)

    if not chaos_mode:
        with Phase("ingest (every notification twice, concurrently)"):
            deliveries, notified, batches = deliveries_of(ordered)
            run_deliveries(deliveries)
            log(f"    {notified} notifications, delivered twice (in {batches} SQS batches and "
                f"one by one as S3 events): {counters['invocations']} invocations, "
                f"{counters['redelivered']} SQS messages redelivered, {counters['retried']} direct events retried")

        with Phase("detect (scheduled events)"):
            for n, minute in enumerate(times):
                event = schedule_event(minute)
                status, body = invoker.invoke("trailsight-detect", event)
                if status != 200:
                    raise RuntimeError(f"detect at {event['time']} failed: HTTP {status}: {body[:500]!r}")
                summary = json.loads(body)
                note_summary(summary)
                if (n + 1) % 100 == 0 or n + 1 == len(times):
                    log(f"    {n + 1}/{len(times)} runs, at {event['time']}: {summary.get('series')} series, "
                        f"{totals['published']} records published, lag {summary.get('lag_minutes')} min")
    else:
        with Phase(f"chaos (seed {args.chaos}): ingest and detect interleaved, with faults"):
            rng = random.Random(args.chaos)
            arrival, dead, _, late_calls, description = chaos.plan_arrivals(
                rng, objects, replay_records, last)
            for line in description:
                log(f"    plan: {line}")
            pending = sorted(ordered, key=lambda o: (arrival.get(o[0], -1), o[0]))
            dead_events = []

            def ingest_kill():
                if rng.random() >= 0.04:
                    return None
                return rng.choice([("handout",), ("delay", rng.uniform(0.0, 0.15)), ("response",)])

            failed_runs, n = 0, 0
            for n, minute in enumerate(times):
                due = []
                while pending and arrival.get(pending[0][0], -1) <= minute:
                    due.append(pending.pop(0))
                doomed = [o for o in due if o[0] in dead]
                due = [o for o in due if o[0] not in dead]
                deliveries, notified, _ = deliveries_of(due, ingest_kill)
                for key, path, d in doomed:
                    event = {"Records": [s3_record(key, path.stat().st_size, d)]}
                    deliveries.append(("dead", event, [("handout",)] * 3))
                with concurrent.futures.ThreadPoolExecutor(max(1, args.threads)) as pool:
                    futures = {pool.submit(deliver_direct, d[1], d[2]) if d[0] == "dead" else pool.submit(deliver, d): d
                               for d in deliveries}
                    for future in concurrent.futures.as_completed(futures):
                        if future.result() is False:
                            dead_events.append(futures[future][1])
                counters["notifications"] += notified + len(doomed)
                if counters["eventbridge windows"] < 2:
                    # EventBridge refuses the first entry of the next 8 PutEvents calls (armed
                    # before the first run, and again once used up): with the publisher's 4
                    # attempts per call, a record fails in at most 2 runs per window, 4 in all,
                    # short of the 5 runs that send it to the dead letters.
                    stats = proxy_control(eventbridge_proxy, "/__proxy/stats")
                    if stats["remaining"] == 0:
                        proxy_control(eventbridge_proxy, "/__proxy/fail?n=8", method="POST")
                        counters["eventbridge windows"] += 1
                kill = None
                if rng.random() < 0.08:
                    kill = rng.choice([("handout",), ("delay", rng.uniform(0.0, 0.4)), ("response",)])
                event = schedule_event(minute)
                status, body = invoker.invoke("trailsight-detect", event, kill=kill)
                summary = json.loads(body) if status == 200 else {}
                if status != 200 or "errorType" in summary:
                    failed_runs += 1
                else:
                    note_summary(summary)
                if (n + 1) % 100 == 0 or n + 1 == len(times):
                    log(f"    {n + 1}/{len(times)} runs, at {event['time']}: {counters['notifications']} "
                        f"notifications, {failed_runs} runs failed, lag {summary.get('lag_minutes')} min")
            if pending:
                deliveries, notified, _ = deliveries_of(pending)
                run_deliveries(deliveries)
                counters["notifications"] += notified
                log(f"    {notified} notifications arrived after the last scheduled run")
            log(f"    dead-letter redrive: {len(dead_events)} notifications")
            for event in dead_events:
                if not deliver_direct(event):
                    raise RuntimeError("a redriven notification failed")
            # Final runs (the faults are over) until the outbox is drained.
            for attempt in range(10):
                status, body = invoker.invoke("trailsight-detect", schedule_event(last))
                summary = json.loads(body) if status == 200 else {}
                if status == 200 and "errorType" not in summary:
                    note_summary(summary)
                    if summary.get("undelivered", 0) == 0:
                        break
                else:
                    failed_runs += 1
            else:
                raise RuntimeError("the outbox was not drained after 10 final detect runs")
            eb = proxy_control(eventbridge_proxy, "/__proxy/stats")
            counters["eventbridge refused"] = eb["failed_entries"]
            log(f"    {counters['notifications']} notifications: {counters['invocations']} ingest invocations, "
                f"{counters['redelivered']} SQS messages redelivered, {counters['retried']} direct events retried")
            log(f"    detect: {len(times)} scheduled and {attempt + 1} final runs, {failed_runs} failed "
                f"(killed or not delivered); EventBridge refused {eb['failed_entries']} entries "
                f"in {counters['eventbridge windows']} windows")
            log("    kills: " + (", ".join(f"{k} {v}" for k, v in sorted(kill_stats.items())) or "none"))
            # From the runs' log lines: a run whose answer was lost (killed at the response, or
            # failed for a record EventBridge refused) logged what it saved.
            runs = run_lines(work, "trailsight-detect")
            late = collections.Counter()
            for fields in runs:
                for field in ("late_cells", "late_events", "late_spikes", "late_beyond_window", "dead_lettered"):
                    late[field] += fields.get(field, 0)
                late["late_max_minutes"] = max(late["late_max_minutes"], fields.get("late_max_minutes", 0))
            log(f"    late data judged ({len(runs)} runs saved): {late['late_cells']} cells, {late['late_events']} "
                f"events, the oldest {late['late_max_minutes']} min late, {late['late_spikes']} spikes in it; "
                f"{late['late_beyond_window']} hour partitions beyond the window; "
                f"{late['dead_lettered']} records dead-lettered")
            if late["dead_lettered"] or late["late_beyond_window"]:
                raise RuntimeError("the faults were meant to stay short of the dead letters and the late window")
    published = totals["published"]

    with Phase("capture"):
        events, empty = [], 0
        while empty < 2:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                empty += 1
                continue
            empty = 0
            for message in messages:
                events.append(json.loads(message["Body"]))
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        records, seen, duplicates = [], {}, 0
        for event in events:
            record = event["detail"]
            # The service's detail-type for its two types, Trailsight's own for the per-principal
            # ones (a rule written for the managed service never matches those).
            principal = record.get("insightDetails", {}).get("insightType", "").startswith("Principal")
            detail_type = "Trailsight Principal Insight" if principal else "AWS Insight via CloudTrail"
            if event.get("source") != "trailsight" or event.get("detail-type") != detail_type:
                raise RuntimeError(f"unexpected event {event.get('source')!r} {event.get('detail-type')!r} "
                                   f"for {record.get('insightDetails', {}).get('insightType')}")
            if record["eventID"] in seen:
                # A repeat (a run killed between publish and save) is the same record: identifiers
                # are derived from content, so a different record under one eventID is a bug.
                if seen[record["eventID"]] != record:
                    raise RuntimeError(f"two different records share the eventID {record['eventID']}")
                duplicates += 1
                continue
            seen[record["eventID"]] = record
            records.append(record)
        records.sort(key=sort_key)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as out:
            for record in records:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        log(f"    {len(events)} events, {len(records)} records ({duplicates} repeats of an eventID) -> {args.out}")
        if not chaos_mode and published != len(events):
            raise RuntimeError(f"detect reported {published} records published, the queue got {len(events)}")

        archived = {}
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix="AWSLogs/"):
            for item in page.get("Contents", []):
                folder = "/Trailsight-Insight/" if "/Trailsight-Insight/" in item["Key"] else "/CloudTrail-Insight/"
                if folder in item["Key"]:
                    body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    for record in json.loads(gzip.decompress(body))["Records"]:
                        principal = record["insightDetails"]["insightType"].startswith("Principal")
                        if principal != (folder == "/Trailsight-Insight/"):
                            raise RuntimeError(f"{record['insightDetails']['insightType']} in {item['Key']}")
                        archived[record["eventID"]] = record
        if set(archived) != set(seen):
            raise RuntimeError(f"the archive holds {len(archived)} records, EventBridge got {len(seen)}")
        log(f"    archive: the same {len(archived)} records in s3://{BUCKET}/AWSLogs/*/"
            f"{{CloudTrail,Trailsight}}-Insight/")
        if not chaos_mode:
            check_findings(moto.client("securityhub"), records)
        if chaos_mode:
            full, keys_only = chaos.compare(replay_records, records, list(late_calls.values()))
            log(f"    equal to replay: {len(records)} records; {full} compared whole (identifiers included), "
                f"{keys_only} on series, state and eventTime (late files held events of their series' API)")

    # The CLI's view of the state the functions left.
    run([str(cli), "insights", "--table", TABLE, "--since", "1d", "--open"], env=env, what="trailsight insights")

    total = time.monotonic() - total_start
    log("timings: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in TIMINGS) + f"; total {total:.1f}s")
    return 0


def principal_flags(args):
    """`trailsight replay`'s flags for the functions' principal settings."""
    flags = ["--principal-insights"] if args.principal_insights else []
    if args.principal_warmup_hours is not None:
        flags += ["--principal-warmup-hours", str(args.principal_warmup_hours)]
    return flags


def check_findings(securityhub, records):
    """Security Hub holds one finding per insight (Id: its sharedEventID), as its last record left
    it: the End's state and time once it ended, the workflow status the Start set."""
    findings, token = [], None
    while True:
        page = securityhub.get_findings(MaxResults=100, **({"NextToken": token} if token else {}))
        findings += page["Findings"]
        token = page.get("NextToken")
        if not token:
            break
    last = {}
    for record in records:
        last[record["sharedEventID"]] = record
    by_id = {f["Id"]: f for f in findings}
    if len(findings) != len(by_id) or set(by_id) != set(last):
        raise RuntimeError(f"Security Hub holds {len(findings)} findings for {len(last)} insights")
    for shared, record in last.items():
        finding = by_id[shared]
        state = finding.get("ProductFields", {}).get("trailsight/state")
        if state != record["insightDetails"]["state"] or finding.get("UpdatedAt") != record["eventTime"]:
            raise RuntimeError(f"finding {shared}: state {state} at {finding.get('UpdatedAt')}, "
                               f"its last record is {record['insightDetails']['state']} at {record['eventTime']}")
        if finding.get("Workflow", {}).get("Status") != "NEW" or finding.get("RecordState") != "ACTIVE":
            raise RuntimeError(f"finding {shared}: workflow {finding.get('Workflow')}, {finding.get('RecordState')}")
    labels = collections.Counter(f["Severity"]["Label"] for f in findings)
    log(f"    security hub: {len(findings)} findings, one per insight, as their last record left them "
        f"(severity {dict(sorted(labels.items()))})")


if __name__ == "__main__":
    run_main(main)
