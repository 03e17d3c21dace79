#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the integration tests: it stands in front of moto and answers
DynamoDB requests with DynamoDB's throttling error while it has throttles left, then forwards.

    fault_proxy.py --port 0 --upstream http://127.0.0.1:5000 --throttle 10 [--per-operation]

prints `listening on <port>` once ready (port 0 picks a free one). With --per-operation, each
DynamoDB operation (GetItem, PutItem...) has its own budget of throttles, so that a test can
throttle every kind of request without any single request meeting more throttles than the SDK
has attempts.

With --atomic-writes, DynamoDB requests are forwarded one at a time. moto's server handles
requests on several threads and its conditional writes are not atomic under concurrency (two
concurrent `attribute_not_exists` puts of one item can both succeed); DynamoDB guarantees that
one of them fails. Serialising gives the concurrent tests DynamoDB's guarantee, while the clients
still send their requests concurrently. The proxy also checks each PutItem's shape at request
level: the stats count every PutItem and those carrying a ConditionExpression, by key prefix.

Control, on the same port:
    GET  /__proxy/stats               {"throttled": n, "forwarded": m, "remaining": r,
                                       "puts": {"D#": n, ...}, "conditional_puts": {"D#": n, ...},
                                       "overlapping": k}
    POST /__proxy/throttle?n=<count>  resets the throttles left (-1: throttle every DynamoDB request)

Standard library only, so it runs with any python3 (the tests use the project's venv); the
proxy machinery it shares with tests/eventbridge_fault_proxy.py is tests/proxy_base.py.
"""

import argparse
import json
import sys
import threading

from proxy_base import Counters, ProxyHandler, query_int, serve

THROTTLE_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "message": "Rate exceeded",
    }
).encode()


class State(Counters):
    def __init__(self, upstream, throttle, per_operation, atomic_writes=False):
        super().__init__(upstream)
        self.atomic = threading.Lock() if atomic_writes else None
        self.puts = {}
        self.conditional_puts = {}
        self.in_flight = 0
        self.overlapping = 0
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
            return {
                "throttled": state.throttled,
                "forwarded": state.forwarded,
                "remaining": state.left(),
                "puts": dict(state.puts),
                "conditional_puts": dict(state.conditional_puts),
                "overlapping": state.overlapping,
            }

    def forward(self, body):
        target = self.headers.get("X-Amz-Target", "")
        if self.state.atomic is None or not target.startswith("DynamoDB_"):
            return super().forward(body)
        self.check_put(target, body)
        with self.state.lock:
            self.state.in_flight += 1
            if self.state.in_flight > 1:
                self.state.overlapping += 1
        try:
            with self.state.atomic:
                return super().forward(body)
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    def check_put(self, target, body):
        """Counts a PutItem by the prefix of its `pk` (`D#`, `F#`, `S`), and whether it is conditional."""
        if not target.endswith(".PutItem"):
            return
        try:
            request = json.loads(body or b"{}")
            pk = request["Item"]["pk"]["S"]
            condition = request.get("ConditionExpression", "")
        except (ValueError, KeyError, TypeError):
            pk, condition = "?", ""
        prefix = pk[:2] if "#" in pk[:2] else pk[:1]
        conditional = "attribute_not_exists" in condition
        with self.state.lock:
            self.state.puts[prefix] = self.state.puts.get(prefix, 0) + 1
            if conditional:
                self.state.conditional_puts[prefix] = self.state.conditional_puts.get(prefix, 0) + 1

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
    parser.add_argument("--atomic-writes", action="store_true")
    args = parser.parse_args()
    state = State(args.upstream, args.throttle, args.per_operation, args.atomic_writes)
    return serve(Handler, state, args.port)


if __name__ == "__main__":
    sys.exit(main())
