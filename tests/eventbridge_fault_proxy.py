#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the detect integration tests: it stands in front of moto and
makes EventBridge's PutEvents fail partially, the way the real service does (HTTP 200 with
`FailedEntryCount` and an `ErrorCode` on the failed entries), and Security Hub's
BatchImportFindings likewise (HTTP 200 with `FailedCount` and the finding's `Id` in
`FailedFindings`), then forwards everything else.
(The proxy machinery it shares with tests/fault_proxy.py is tests/proxy_base.py.)

    eventbridge_fault_proxy.py --port 0 --upstream http://127.0.0.1:5000 --fail-calls 1 [--error-code InternalFailure]

prints `listening on <port>` once ready (port 0 picks a free one). While it has failing calls
left, a PutEvents call has its FIRST entry refused: that entry is not forwarded, and the answer
carries `{"ErrorCode": "<code>", "ErrorMessage": ...}` in its place with `FailedEntryCount` 1; the
other entries go to moto and their results are passed back in order. A BatchImportFindings call
(POST /findings/import) has its first finding refused the same way, listed in `FailedFindings`
with its Id; moto's answer for the others is merged in. Control, on the same port:
    GET  /__proxy/stats            {"put_events": n, "import_findings": i, "failed_entries": f,
                                    "forwarded": m, "remaining": r}
    POST /__proxy/fail?n=<count>   resets the failing calls left (-1: fail every call)

Standard library only, so it runs with any python3 (the tests use the project's venv).
"""

import argparse
import json
import sys

from proxy_base import Counters, ProxyHandler, query_int, serve

PUT_EVENTS = "AWSEvents.PutEvents"
IMPORT_FINDINGS = "/findings/import"


class State(Counters):
    def __init__(self, upstream, fail_calls, error_code):
        super().__init__(upstream)
        self.remaining = fail_calls
        self.error_code = error_code
        self.put_events = 0
        self.import_findings = 0
        self.failed_entries = 0

    def take_failure(self, findings=False):
        with self.lock:
            if findings:
                self.import_findings += 1
            else:
                self.put_events += 1
            if self.remaining == 0:
                return False
            if self.remaining > 0:
                self.remaining -= 1
            self.failed_entries += 1
            return True


class Handler(ProxyHandler):
    def control(self, url):
        state = self.state
        with state.lock:
            if url.path == "/__proxy/fail":
                state.remaining = query_int(url, "n")
            return {
                "put_events": state.put_events,
                "import_findings": state.import_findings,
                "failed_entries": state.failed_entries,
                "forwarded": state.forwarded,
                "remaining": state.remaining,
            }

    def fault(self, body):
        if self.command == "POST" and self.path.split("?")[0] == IMPORT_FINDINGS:
            if not self.state.take_failure(findings=True):
                return False
            self.findings_failure(body)
            return True
        if self.headers.get("X-Amz-Target", "") != PUT_EVENTS or not self.state.take_failure():
            return False
        self.partial_failure(body)
        return True

    def findings_failure(self, body):
        """BatchImportFindings with its first finding refused and the rest forwarded."""
        request = json.loads(body or b"{}")
        findings = request.get("Findings") or []
        first = findings[0] if findings else {}
        failed = [{
            "Id": first.get("Id", ""),
            "ErrorCode": self.state.error_code,
            "ErrorMessage": "Injected by eventbridge_fault_proxy.py",
        }]
        success = 0
        if len(findings) > 1:
            request["Findings"] = findings[1:]
            status, data, _ = self.forward(json.dumps(request).encode())
            if status != 200:
                return self.reply(status, data, [("Content-Type", "application/json")])
            upstream = json.loads(data)
            failed += upstream.get("FailedFindings", [])
            success = upstream.get("SuccessCount", 0)
        answer = {"FailedCount": len(failed), "SuccessCount": success, "FailedFindings": failed}
        return self.reply(
            200,
            json.dumps(answer).encode(),
            [("Content-Type", "application/json"), ("x-amzn-RequestId", "PARTIAL0000000000000000000000000000")],
        )

    def partial_failure(self, body):
        """PutEvents with its first entry refused and the rest forwarded."""
        request = json.loads(body or b"{}")
        entries = request.get("Entries") or []
        refused = {
            "ErrorCode": self.state.error_code,
            "ErrorMessage": "Injected by eventbridge_fault_proxy.py",
        }
        results, failed = [refused], 1
        if len(entries) > 1:
            request["Entries"] = entries[1:]
            status, data, _ = self.forward(json.dumps(request).encode())
            if status != 200:
                return self.reply(status, data, [("Content-Type", "application/x-amz-json-1.1")])
            upstream = json.loads(data)
            results += upstream.get("Entries", [])
            failed += upstream.get("FailedEntryCount", 0)
        answer = json.dumps({"FailedEntryCount": failed, "Entries": results}).encode()
        return self.reply(
            200,
            answer,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-RequestId", "PARTIAL000000000000000000000000000000"),
            ],
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--fail-calls", type=int, default=1)
    parser.add_argument("--error-code", default="InternalFailure")
    args = parser.parse_args()
    return serve(Handler, State(args.upstream, args.fail_calls, args.error_code), args.port)


if __name__ == "__main__":
    sys.exit(main())
