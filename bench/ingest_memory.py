#!/usr/bin/env python3
"""Peak memory of the ingest bootstrap on large and hostile log files (`make ingest-memory`).

The release `bootstrap` that `make build` deploys runs under the minimal Lambda Runtime API that
bench/cold_start.py uses too (tests/harness/lambda_host.py's LocalRuntimeApi), with the environment
infra/template.yaml gives it (128 MB), against a moto server on a loopback port (S3 and DynamoDB,
as the integration tests use). Each case is one fresh process and one direct S3 notification of
one object (LocalRuntimeApi.cold_start); the peak RSS (VmHWM) is read once the runtime asks for
its next event, after it answered. Cases:
- big: a CloudTrail log file of about 48 MB gzip (inside the deployed limits: 50 MB compressed,
  512 MiB inflated, 500,000 records), records of about 1 KB with the varied fields real ones have
  (IDs, request IDs, addresses, keys), 20 APIs over 15 minutes;
- series: about 1 MB gzip of 100,000 small records, each of its own API: 100,000 distinct series,
  over the per-file cap (TRAILSIGHT_MAX_SERIES_PER_FILE, 10,000): the rest go to the overflow series;
- series-uncapped: the same file with the cap raised to 1,000,000, for comparison (not deployed).

The answer is checked (no failure) and the summary log line is reported (files, records,
overflow). Files are generated once into --work and reused. Needs the venv (boto3, moto_server).
Prints one JSON object and writes it to --out.
Usage: ingest_memory.py [--out out/bench/ingest_memory.json] [--work out/bench/ingest-memory]
"""
import argparse
import gzip
import json
import random
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from harness.lambda_host import INGEST, TEMPLATE_ENV, Host, LocalRuntimeApi, lambda_env  # noqa: E402

BUCKET, TABLE = "trailsight-logs", "trailsight"
KEY = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T1405Z_{}.json.gz"
def hexes(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def big_file(path, target_gzip_bytes):
    """Records of about 1 KB, varied as real ones are, until the gzip reaches its target size."""
    rng = random.Random(1)
    apis = [("ec2.amazonaws.com", f"RunInstances{i}") for i in range(10)] + \
           [("iam.amazonaws.com", f"CreateRole{i}") for i in range(10)]
    agents = ["aws-cli/2.15.0 Python/3.11", "Boto3/1.34.0 Python/3.12", "aws-sdk-go-v2/1.24.0",
              "console.amazonaws.com", "terraform-provider-aws/5.31.0"]
    records = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
        gz.write(b'{"Records":[')
        while raw.tell() < target_gzip_bytes:
            chunk = []
            for _ in range(2000):
                source, name = apis[rng.randrange(len(apis))]
                user = rng.randrange(40)
                record = {
                    "eventVersion": "1.09",
                    "userIdentity": {
                        "type": "AssumedRole", "principalId": f"AROA{hexes(rng, 16).upper()}:s{user}",
                        "arn": f"arn:aws:sts::111122223333:assumed-role/role{user}/s{user}",
                        "accountId": "111122223333", "accessKeyId": f"ASIA{hexes(rng, 16).upper()}",
                        "sessionContext": {"attributes": {"creationDate": "2026-03-02T13:59:01Z",
                                                          "mfaAuthenticated": "false"}},
                    },
                    "eventTime": f"2026-03-02T14:{rng.randrange(15):02d}:{rng.randrange(60):02d}Z",
                    "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
                    "sourceIPAddress": f"{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                    "userAgent": agents[rng.randrange(len(agents))],
                    "requestParameters": {"clientToken": str(uuid.UUID(int=rng.getrandbits(128))),
                                          "tagSpecificationSet": {"items": [{"key": "run", "value": hexes(rng, 24)}]}},
                    "responseElements": {"requestId": str(uuid.UUID(int=rng.getrandbits(128))),
                                         "instanceId": f"i-{hexes(rng, 17)}", "reservationId": f"r-{hexes(rng, 17)}"},
                    "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
                    "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
                    "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
                    "recipientAccountId": "111122223333", "eventCategory": "Management",
                    "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                   "clientProvidedHostHeader": f"{source.split('.')[0]}.us-east-1.amazonaws.com"},
                }
                if rng.random() < 0.02:
                    record["errorCode"] = "Client.UnauthorizedOperation"
                chunk.append(json.dumps(record, separators=(",", ":")))
            gz.write((("," if records else "") + ",".join(chunk)).encode())
            records += len(chunk)
        gz.write(b"]}")
    return records


def series_file(path, series):
    """`series` small records, each of its own API (its own call-rate series), in one minute."""
    with gzip.open(path, "wt", compresslevel=6) as gz:
        gz.write('{"Records":[')
        gz.write(",".join(
            f'{{"eventVersion":"1.09","eventID":"e{i}","eventTime":"2026-03-02T14:05:{i % 60:02d}Z",'
            f'"eventSource":"ec2.amazonaws.com","eventName":"Api{i}","awsRegion":"us-east-1",'
            f'"recipientAccountId":"111122223333","readOnly":false,'
            f'"userIdentity":{{"arn":"arn:aws:iam::111122223333:user/u{i % 40}"}},"userAgent":"aws-cli/2"}}'
            for i in range(series)))
        gz.write("]}")
    return series


def s3_event(key, etag):
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-03-02T14:06:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET},
               "object": {"key": key, "eTag": etag}},
    }]}


def summary_line(log_path):
    for line in Path(log_path).read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        fields = entry.get("fields", {}) if isinstance(entry, dict) else {}
        if fields.get("message") == "Invocation done.":
            return {k: v for k, v in fields.items() if k != "message"}
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out/bench/ingest_memory.json"))
    parser.add_argument("--work", default=str(ROOT / "out/bench/ingest-memory"))
    parser.add_argument("--binary", default=str(ROOT / "build/lambda/trailsight-ingest/bootstrap"))
    args = parser.parse_args()

    binary = Path(args.binary)
    if not binary.exists():
        sys.exit(f"ingest_memory: {binary} missing: run `make build` first")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    big = work / "big.json.gz"
    if not big.exists():
        print("ingest_memory: generating a 48 MB gzip log file", file=sys.stderr)
        (work / "big.records").write_text(str(big_file(big, 48_000_000)))
    template = TEMPLATE_ENV[INGEST]  # infra/template.yaml's IngestFunction (MemorySize 128)
    files["big"] = (big, int((work / "big.records").read_text()), template)
    many = work / "series.json.gz"
    if not many.exists():
        series_file(many, 100_000)
    files["series"] = (many, 100_000, template)
    files["series-uncapped"] = (many, 100_000, {**template, "TRAILSIGHT_MAX_SERIES_PER_FILE": "1000000"})

    report = {"binary": str(binary.relative_to(ROOT)) if binary.is_relative_to(ROOT) else str(binary),
              "memory_mb": 128, "cases": {}}
    with Host(work=work) as host:
        moto = host.moto()
        api = LocalRuntimeApi(INGEST)
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for i, (case, (path, records, env_extra)) in enumerate(files.items()):
            name = f"{TABLE}-{i}"
            moto.create_table(name)
            key = KEY.format(f"{case}{i:04d}".ljust(16, "x")[:16])
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())["ETag"].strip('"')
            env = lambda_env(INGEST, api.runtime_api(), host.home, binary.parent, memory=128,
                             endpoint=moto.endpoint, extra={**env_extra, "TRAILSIGHT_TABLE": name})
            log_path = work / f"{case}.log"
            with open(log_path, "wb") as log:
                run = api.cold_start(host, [str(binary)], env, s3_event(key, etag), log, timeout=300)
            ok = run["answer_kind"] == "response" and run["answer"] == {"batchItemFailures": []}
            report["cases"][case] = {
                "compressed_mb": round(path.stat().st_size / 1e6, 1),
                "records": records,
                "max_series_per_file": int(env_extra["TRAILSIGHT_MAX_SERIES_PER_FILE"]),
                "rss_peak_mb": round(run["rss_peak_kb"] / 1024, 1) if run["rss_peak_kb"] else None,
                "rss_init_mb": round(run["rss_init_kb"] / 1024, 1) if run["rss_init_kb"] else None,
                "invoke_ms": run["invoke_ms"],
                "answered": ok,
                "summary": summary_line(log_path),
            }
            if not ok:
                report["cases"][case]["answer"] = run["answer"]
        api.close()
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    failed = [c for c, r in report["cases"].items() if not r["answered"]]
    if failed:
        sys.exit(f"ingest_memory: {failed} did not answer as expected (logs in {work})")


if __name__ == "__main__":
    main()
