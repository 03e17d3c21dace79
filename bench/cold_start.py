#!/usr/bin/env python3
"""Lambda cold start of the deployed bootstraps, measured locally (`make cold-start`).

Serves a minimal Lambda Runtime API on a loopback port and starts each function's release
`bootstrap` (from `make build`, as deployed) against it, with the environment Lambda and
infra/template.yaml give it and dummy credentials. Per fresh process it times, as Lambda defines
them: Init Duration = process start -> first GET .../invocation/next; Duration = event handed out
-> its POST .../response (or .../error); and reads the peak RSS (VmHWM) at the first /next and once
the runtime asks for the next event, before it is killed. Events that need no AWS call:
- ingest: an SQS-wrapped S3 `s3:TestEvent`, which it ignores (answer: no batchItemFailures);
- detect: every run reads the detector state from DynamoDB, so its only AWS-free answer is the
  bad-event error path (a scheduled event whose `time` is not a timestamp: Trailsight.BadEvent).
Also measured: ingest's init with no CA roots to parse (SSL_CERT_FILE = an empty file), to show
what the SDK's HTTPS client costs at init; and a floor, curl's process start -> its GET of /next.

A local process start is not a Lambda cold start (no microVM, no code download or unzip); this is
the part the binary controls. Standard library only. Prints one JSON object and writes it to --out.
Usage: cold_start.py [--runs 20] [--out out/bench/cold_start.json] [--build]
"""
import argparse
import http.server
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NEXT = "/2018-06-01/runtime/invocation/next"
MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def functions():
    """(name, memory MB, environment, event, check of the answer), as infra/template.yaml deploys
    them with its parameters' defaults."""
    sqs_test = json.loads((ROOT / "functions/ingest/testdata/sqs-s3-test-event.json").read_text())
    bad_tick = json.loads((ROOT / "functions/detect/testdata/scheduled-event.json").read_text())
    bad_tick["time"] = "not a time"
    return [
        ("trailsight-ingest", 128, {
            "TRAILSIGHT_TABLE": "trailsight",
            "TRAILSIGHT_MAX_COMPRESSED_BYTES": "52428800",
            "TRAILSIGHT_MAX_DECOMPRESSED_BYTES": "536870912",
            "TRAILSIGHT_MAX_RECORDS": "500000",
            "TRAILSIGHT_MAX_SERIES_PER_FILE": "10000",
            "TRAILSIGHT_INCLUDE_READ_APIS": "false",
            "TRAILSIGHT_INCLUDE_DATA_EVENTS": "false",
            "TRAILSIGHT_METRIC_NAMESPACE": "Trailsight",
        }, sqs_test, lambda kind, body: kind == "response" and body == {"batchItemFailures": []}),
        ("trailsight-detect", 512, {
            "TRAILSIGHT_TABLE": "trailsight",
            "TRAILSIGHT_EVENT_BUS": "default",
            "TRAILSIGHT_EVENT_SOURCE": "trailsight",
            "TRAILSIGHT_DETAIL_TYPE": "AWS Insight via CloudTrail",
            "TRAILSIGHT_METRIC_NAMESPACE": "Trailsight",
            "TRAILSIGHT_ARCHIVE_BUCKET": "",
            "TRAILSIGHT_ARCHIVE_PREFIX": "",
            "TRAILSIGHT_SENSITIVITY": "medium",
            "TRAILSIGHT_MIN_CALLS": "5",
            "TRAILSIGHT_SETTLE_MINUTES": "20",
            "TRAILSIGHT_MAX_CATCHUP_MINUTES": "11520",
            "TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS": "false",
            "TRAILSIGHT_API_ALLOW": "",
            "TRAILSIGHT_API_DENY": "",
        }, bad_tick, lambda kind, body: kind == "error" and body.get("errorType") == "Trailsight.BadEvent"),
    ]


def lambda_env(name, memory, api, home, task_root, extra):
    """What Lambda sets for a provided.al2023 function, with dummy credentials, an empty HOME (no
    profile files) and no instance metadata, so that nothing at init can reach AWS."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC", "HOME": home,
        "LAMBDA_TASK_ROOT": task_root, "_HANDLER": "bootstrap",
        "AWS_LAMBDA_RUNTIME_API": api, "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}", "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true",
        "RUST_LOG": "info", **extra,
    }


def vm_hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None


class Run:
    """One process and its one invocation, as the Runtime API sees them."""

    def __init__(self, name, event):
        self.name, self.event = name, json.dumps(event).encode()
        self.request_id = str(uuid.uuid4())
        self.pid = None
        self.started = threading.Event()  # pid known
        self.idle = threading.Event()  # the runtime asked for a second event (or gave up)
        self.killed = threading.Event()
        self.t_next = self.t_event = self.t_answer = None
        self.rss_init_kb = None
        self.kind = self.answer = None
        self.nexts = 0


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        now = time.perf_counter_ns()
        run = self.server.run
        if self.path != NEXT:
            return self.send(404, b'{"errorMessage": "unknown path"}')
        run.nexts += 1
        if run.nexts > 1:  # done with the event: Lambda would freeze the process here
            run.idle.set()
            run.killed.wait(30)
            self.close_connection = True
            return
        run.t_next = now
        run.started.wait(5)
        run.rss_init_kb = vm_hwm_kb(run.pid)
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{run.name}"
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", run.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 120_000)),
            ("Lambda-Runtime-Invoked-Function-Arn", arn),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
        ]
        run.t_event = time.perf_counter_ns()
        self.send(200, run.event, headers)

    def do_POST(self):
        now = time.perf_counter_ns()
        run = self.server.run
        body = self.body()
        base = "/2018-06-01/runtime"
        if self.path == f"{base}/invocation/{run.request_id}/response":
            run.kind = "response"
        elif self.path == f"{base}/invocation/{run.request_id}/error":
            run.kind = "error"
        elif self.path == f"{base}/init/error":
            run.kind = "init_error"
            run.idle.set()
        else:
            return self.send(404, b'{"errorMessage": "unknown path"}')
        run.t_answer = now
        try:
            run.answer = json.loads(body or b"null")
        except ValueError:
            run.answer = body.decode(errors="replace")
        self.send(202, b'{"status": "OK"}')


def measure(server, argv, env, name, event, log, invoke=True, timeout=30):
    """Starts argv fresh; returns its timings (ms) and memory (KB)."""
    run = server.run = Run(name, event)
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(argv, env=env, cwd=env.get("LAMBDA_TASK_ROOT"),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    run.pid = proc.pid
    run.started.set()
    deadline = time.monotonic() + timeout
    while not run.idle.is_set() and proc.poll() is None and time.monotonic() < deadline:
        run.idle.wait(0.01)
    rss_peak = vm_hwm_kb(proc.pid) if proc.poll() is None else None
    proc.kill()
    proc.wait()
    run.killed.set()
    ms = lambda a, b: None if a is None or b is None else round((b - a) / 1e6, 3)
    result = {"init_ms": ms(t0, run.t_next), "rss_init_kb": run.rss_init_kb}
    if invoke:
        result.update(invoke_ms=ms(run.t_event, run.t_answer), first_answer_ms=ms(t0, run.t_answer),
                      rss_peak_kb=rss_peak, answer_kind=run.kind, answer=run.answer)
    return result


def summary(values):
    """First run apart (the one that may pay for a cold page cache), then median/p90 of the rest."""
    rest = sorted(v for v in values[1:] if v is not None)
    if values[0] is None or not rest:
        return None
    return {"first": values[0], "median": round(statistics.median(rest), 3),
            "p90": rest[math.ceil(0.9 * len(rest)) - 1], "min": rest[0], "max": rest[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="fresh processes per function")
    parser.add_argument("--out", default=str(ROOT / "out/bench/cold_start.json"))
    parser.add_argument("--build", action="store_true", help="run `make build` even if built")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 (the first run is reported apart)")

    fns = functions()
    missing = [n for n, *_ in fns if not (BUILD / "lambda" / n / "bootstrap").exists()]
    if args.build or missing:
        print("cold_start: make build", file=sys.stderr)
        subprocess.run(["make", "-C", str(ROOT), "build"], check=True, stdout=sys.stderr)
    arch = (BUILD / "lambda/ARCH").read_text().strip()
    host = MACHINES.get(platform.machine(), platform.machine())
    if arch != host:
        sys.exit(f"cold_start: build/lambda holds {arch} bootstraps; this host is {host}: "
                 f"run `make build ARCH={host}` first")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_address[1]}"
    load_before = os.getloadavg()
    report = {"arch": arch, "runs": args.runs, "cpus": os.cpu_count(),
              "kernel": platform.release(), "functions": {}}
    keys = ("init_ms", "invoke_ms", "first_answer_ms", "rss_init_kb", "rss_peak_kb")

    with tempfile.TemporaryDirectory() as home:
        def repeat(argv, env, name, event, check=None):
            """args.runs fresh processes; stops at the first that does not answer as expected."""
            log_path = Path(home) / f"{name}.log"
            runs = []
            with open(log_path, "wb") as log:
                for i in range(args.runs):
                    run = measure(server, argv, env, name, event, log, invoke=check is not None)
                    if run["init_ms"] is None or (check and not check(run["answer_kind"], run["answer"])):
                        log.flush()
                        sys.exit(f"cold_start: {name} run {i + 1}: unexpected {run!r}\n"
                                 f"--- its log:\n{log_path.read_text(errors='replace')[-3000:]}")
                    runs.append(run)
            print(f"cold_start: {name}: {args.runs} runs", file=sys.stderr)
            return {key: summary([r[key] for r in runs]) for key in keys if key in runs[0]}, runs[0]

        for name, memory, extra, event, check in fns:
            task_root = BUILD / "lambda" / name
            bootstrap = task_root / "bootstrap"
            env = lambda_env(name, memory, api, home, str(task_root), extra)
            stats, first = repeat([str(bootstrap)], env, name, event, check)
            report["functions"][name] = {
                "memory_mb": memory,
                "bootstrap_bytes": bootstrap.stat().st_size,
                "zip_bytes": (BUILD / f"{name}.zip").stat().st_size,
                "event": "SQS-wrapped s3:TestEvent (ignored)" if "ingest" in name
                else "scheduled event with a bad time (Trailsight.BadEvent error path)",
                "answer": {"kind": first["answer_kind"], "body": first["answer"]},
                **stats,
            }
            if "ingest" in name:  # where init goes: the SDK's HTTPS client parses the CA roots
                empty = Path(home) / "no-roots.pem"
                empty.write_text("")
                env = {**env, "SSL_CERT_FILE": str(empty)}
                report["ingest_without_ca_roots"] = repeat(
                    [str(bootstrap)], env, name + "-no-ca-roots", event, check)[0]

        curl = shutil.which("curl")
        if curl:  # the floor: a small C program's start and one GET of /next, same machine, same run
            argv = [curl, "-s", "-o", "/dev/null", f"http://{api}{NEXT}"]
            report["floor_curl"] = repeat(argv, {"PATH": "/usr/bin:/bin"}, "curl", {})[0]
    server.shutdown()
    report["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]

    text = json.dumps(report, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
