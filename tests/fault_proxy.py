#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the integration tests: it stands in front of moto and answers
DynamoDB requests with DynamoDB's throttling error while it has throttles left, then forwards.

    fault_proxy.py --port 0 --upstream http://127.0.0.1:5000 --throttle 10 [--per-operation]

prints `listening on <port>` once ready (port 0 picks a free one). With --per-operation, each
DynamoDB operation (GetItem, PutItem...) has its own budget of throttles, so that a test can
throttle every kind of request without any single request meeting more throttles than the SDK
has attempts. Control, on the same port:
    GET  /__proxy/stats               {"throttled": n, "forwarded": m, "remaining": r}
    POST /__proxy/throttle?n=<count>  resets the throttles left (-1: throttle every DynamoDB request)

Standard library only, so it runs with any python3 (the tests use the project's venv).
"""

import argparse
import http.client
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate exceeded",
    }
).encode()

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


class State:
    def __init__(self, upstream, throttle, per_operation):
        parsed = urllib.parse.urlsplit(upstream)
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.budget = throttle
        self.per_operation = per_operation
        self.remaining = {}
        self.throttled = 0
        self.forwarded = 0
        self.lock = threading.Lock()

    def set_budget(self, count):
        with self.lock:
            self.budget = count
            self.remaining = {}

    def left(self):
        if self.per_operation:
            return {op: n for op, n in self.remaining.items()}
        return self.remaining.get("*", self.budget)

    def take_throttle(self, operation):
        with self.lock:
            slot = operation if self.per_operation else "*"
            remaining = self.remaining.get(slot, self.budget)
            if remaining == 0:
                return False
            if remaining > 0:
                self.remaining[slot] = remaining - 1
            self.throttled += 1
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

    def control(self, body):
        state = self.state
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__proxy/throttle":
            state.set_budget(int(urllib.parse.parse_qs(url.query).get("n", ["0"])[0]))
        with state.lock:
            stats = {
                "throttled": state.throttled,
                "forwarded": state.forwarded,
                "remaining": state.left(),
            }
        self.reply(200, json.dumps(stats).encode(), [("Content-Type", "application/json")])

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            return self.control(body)
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("DynamoDB_") and self.state.take_throttle(target):
            return self.reply(
                400,
                THROTTLE_BODY,
                [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-RequestId", "THROTTLED0000000000000000000000000000000000000000000"),
                ],
            )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(self.state.host, self.state.port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            with self.state.lock:
                self.state.forwarded += 1
            self.reply(response.status, data, kept)
        finally:
            connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--throttle", type=int, default=0)
    parser.add_argument("--per-operation", action="store_true")
    args = parser.parse_args()
    Handler.state = State(args.upstream, args.throttle, args.per_operation)
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
