#!/usr/bin/env python3
"""Lambda cold start of the deployed bootstraps, measured locally (`make cold-start`).

Serves a minimal Lambda Runtime API on a loopback port (tests/harness/lambda_host.py's
LocalRuntimeApi, in this process) and starts each function's release `bootstrap` (from `make
build`, as deployed) against it, with the environment Lambda and infra/template.yaml give it and
dummy credentials (lambda_host's lambda_env and TEMPLATE_ENV). Per fresh process it times, as Lambda defines
them: Init Duration = process start -> first GET .../invocation/next; Duration = event handed out
-> its POST .../response (or .../error); and reads the peak RSS (VmHWM) at the first /next and once
the runtime asks for the next event, before it is killed. Events that need no AWS call:
- ingest: an SQS-wrapped S3 `s3:TestEvent`, which it ignores (answer: no batchItemFailures);
- detect: every run reads the detector state from DynamoDB, so its only AWS-free answer is the
  bad-event error path (a scheduled event whose `time` is not a timestamp: Trailsight.BadEvent).
Also measured: ingest's init with no CA roots to parse (SSL_CERT_FILE = an empty file), to show
what the SDK's HTTPS client costs at init; and a floor, curl's process start -> its GET of /next.

A local process start is not a Lambda cold start (no microVM, no code download or unzip); this is
the part the binary controls. Standard library only (and tests/harness). Prints one JSON object
and writes it to --out.
Usage: cold_start.py [--runs 20] [--out out/bench/cold_start.json] [--build]
"""
import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from harness.lambda_host import (  # noqa: E402
    DETECT, INGEST, NEXT, TEMPLATE_ENV, TEMPLATE_MEMORY, Host, LocalRuntimeApi, lambda_env,
)

BUILD = ROOT / "build"
MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def functions():
    """(name, event, check of the answer) per function."""
    sqs_test = json.loads((ROOT / "functions/ingest/testdata/sqs-s3-test-event.json").read_text())
    bad_tick = json.loads((ROOT / "functions/detect/testdata/scheduled-event.json").read_text())
    bad_tick["time"] = "not a time"
    return [
        (INGEST, sqs_test, lambda kind, body: kind == "response" and body == {"batchItemFailures": []}),
        (DETECT, bad_tick, lambda kind, body: kind == "error" and body.get("errorType") == "Trailsight.BadEvent"),
    ]


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
    machine = MACHINES.get(platform.machine(), platform.machine())
    if arch != machine:
        sys.exit(f"cold_start: build/lambda holds {arch} bootstraps; this host is {machine}: "
                 f"run `make build ARCH={machine}` first")

    load_before = os.getloadavg()
    report = {"arch": arch, "runs": args.runs, "cpus": os.cpu_count(),
              "kernel": platform.release(), "functions": {}}
    keys = ("init_ms", "invoke_ms", "first_answer_ms", "rss_init_kb", "rss_peak_kb")

    with Host(prefix="trailsight-cold-start-") as host:
        def repeat(api, argv, env, name, event, check=None):
            """args.runs fresh processes; stops at the first that does not answer as expected."""
            log_path = host.work / f"{name}.log"
            runs = []
            with open(log_path, "wb") as log:
                for i in range(args.runs):
                    run = api.cold_start(host, argv, env, event, log)
                    if check is None:  # not a function: its start only
                        run = {key: run[key] for key in ("init_ms", "rss_init_kb")}
                    if run["init_ms"] is None or (check and not check(run["answer_kind"], run["answer"])):
                        log.flush()
                        sys.exit(f"cold_start: {name} run {i + 1}: unexpected {run!r}\n"
                                 f"--- its log:\n{log_path.read_text(errors='replace')[-3000:]}")
                    runs.append(run)
            print(f"cold_start: {name}: {args.runs} runs", file=sys.stderr)
            return {key: summary([r[key] for r in runs]) for key in keys if key in runs[0]}, runs[0]

        for name, event, check in fns:
            task_root = BUILD / "lambda" / name
            bootstrap = task_root / "bootstrap"
            api = LocalRuntimeApi(name)
            env = lambda_env(name, api.runtime_api(), host.home, task_root, extra=TEMPLATE_ENV[name])
            stats, first = repeat(api, [str(bootstrap)], env, name, event, check)
            report["functions"][name] = {
                "memory_mb": TEMPLATE_MEMORY[name],
                "bootstrap_bytes": bootstrap.stat().st_size,
                "zip_bytes": (BUILD / f"{name}.zip").stat().st_size,
                "event": "SQS-wrapped s3:TestEvent (ignored)" if "ingest" in name
                else "scheduled event with a bad time (Trailsight.BadEvent error path)",
                "answer": {"kind": first["answer_kind"], "body": first["answer"]},
                **stats,
            }
            if "ingest" in name:  # where init goes: the SDK's HTTPS client parses the CA roots
                empty = host.work / "no-roots.pem"
                empty.write_text("")
                env = {**env, "SSL_CERT_FILE": str(empty)}
                report["ingest_without_ca_roots"] = repeat(
                    api, [str(bootstrap)], env, name + "-no-ca-roots", event, check)[0]
            api.close()

        curl = shutil.which("curl")
        if curl:  # the floor: a small C program's start and one GET of /next, same machine, same run
            api = LocalRuntimeApi("curl")
            argv = [curl, "-s", "-o", "/dev/null", f"http://{api.runtime_api()}{NEXT}"]
            report["floor_curl"] = repeat(api, argv, {"PATH": "/usr/bin:/bin"}, "curl", {})[0]
            api.close()
    report["loadavg_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]

    text = json.dumps(report, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
