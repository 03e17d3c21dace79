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

Standard library only, so it runs with any python3 (the tests use the project's venv); the
proxy machinery it shares with tests/eventbridge_fault_proxy.py is tests/proxy_base.py.
"""

import argparse
import json
import sys

from proxy_base import Counters, ProxyHandler, query_int, serve

THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate exceeded",
    }
).encode()


class State(Counters):
    def __init__(self, upstream, throttle, per_operation):
        super().__init__(upstream)
        self.budget = throttle
        self.per_operation = per_operation
        self.remaining = {}
        self.throttled = 0

    def set_budget(self, count):
        with self.lock:
            self.budget = count
            self.remaining = {}

    def left(self):
        if self.per_operation:
            return dict(self.remaining)
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


class Handler(ProxyHandler):
    def control(self, url):
        state = self.state
        if url.path == "/__proxy/throttle":
            state.set_budget(query_int(url, "n"))
        with state.lock:
            return {"throttled": state.throttled, "forwarded": state.forwarded, "remaining": state.left()}

    def fault(self, body):
        target = self.headers.get("X-Amz-Target", "")
        if not (target.startswith("DynamoDB_") and self.state.take_throttle(target)):
            return False
        self.reply(
            400,
            THROTTLE_BODY,
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-RequestId", "THROTTLED0000000000000000000000000000000000000000000"),
            ],
        )
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--throttle", type=int, default=0)
    parser.add_argument("--per-operation", action="store_true")
    args = parser.parse_args()
    return serve(Handler, State(args.upstream, args.throttle, args.per_operation), args.port)


if __name__ == "__main__":
    sys.exit(main())
