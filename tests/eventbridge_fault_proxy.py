#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the detect integration tests: it stands in front of moto and
makes EventBridge's PutEvents fail partially, the way the real service does (HTTP 200 with
`FailedEntryCount` and an `ErrorCode` on the failed entries), then forwards everything else.
(A copy of tests/fault_proxy.py's structure, for EventBridge instead of DynamoDB.)

    eventbridge_fault_proxy.py --port 0 --upstream http://127.0.0.1:5000 --fail-calls 1 [--error-code InternalFailure]

prints `listening on <port>` once ready (port 0 picks a free one). While it has failing calls
left, a PutEvents call has its FIRST entry refused: that entry is not forwarded, and the answer
carries `{"ErrorCode": "<code>", "ErrorMessage": ...}` in its place with `FailedEntryCount` 1; the
other entries go to moto and their results are passed back in order. Control, on the same port:
    GET  /__proxy/stats            {"put_events": n, "failed_entries": f, "forwarded": m, "remaining": r}
    POST /__proxy/fail?n=<count>   resets the failing calls left (-1: fail every PutEvents call)

Standard library only, so it runs with any python3 (the tests use the project's venv).
"""

import argparse
import http.client
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}

PUT_EVENTS = "AWSEvents.PutEvents"


class State:
    def __init__(self, upstream, fail_calls, error_code):
        parsed = urllib.parse.urlsplit(upstream)
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.remaining = fail_calls
        self.error_code = error_code
        self.put_events = 0
        self.failed_entries = 0
        self.forwarded = 0
        self.lock = threading.Lock()

    def take_failure(self):
        with self.lock:
            self.put_events += 1
            if self.remaining == 0:
                return False
            if self.remaining > 0:
                self.remaining -= 1
            self.failed_entries += 1
            return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self):
        state = self.state
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__proxy/fail":
            with state.lock:
                state.remaining = int(urllib.parse.parse_qs(url.query).get("n", ["0"])[0])
        with state.lock:
            stats = {
                "put_events": state.put_events,
                "failed_entries": state.failed_entries,
                "forwarded": state.forwarded,
                "remaining": state.remaining,
            }
        self.reply(200, json.dumps(stats).encode(), [("Content-Type", "application/json")])

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(self.state.host, self.state.port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            with self.state.lock:
                self.state.forwarded += 1
            return response.status, data, kept
        finally:
            connection.close()

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
        self.reply(
            200,
            answer,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-RequestId", "PARTIAL000000000000000000000000000000"),
            ],
        )

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            return self.control()
        if self.headers.get("X-Amz-Target", "") == PUT_EVENTS and self.state.take_failure():
            return self.partial_failure(body)
        status, data, headers = self.forward(body)
        self.reply(status, data, headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--fail-calls", type=int, default=1)
    parser.add_argument("--error-code", default="InternalFailure")
    args = parser.parse_args()
    Handler.state = State(args.upstream, args.fail_calls, args.error_code)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
