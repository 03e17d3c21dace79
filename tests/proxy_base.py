"""What the integration tests' fault-injecting proxies (tests/fault_proxy.py for DynamoDB,
tests/eventbridge_fault_proxy.py for EventBridge) share: an HTTP/1.1 proxy in front of moto that
forwards every request it does not fault, answers `/__proxy/...` control requests on the same
port, and prints `listening on <port>` once ready.

A proxy subclasses `Counters` (its upstream, lock and counts) and `ProxyHandler`, whose
`fault(body)` returns True when it has answered the request itself, and whose `control(url)`
applies a control request and returns the stats to answer with. Standard library only (and
tests/harness/lambda_host.py's `read_body`, the chunked-or-not body reader the harness's own HTTP
servers use).
"""

import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.lambda_host import read_body

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


class Counters:
    """The upstream to forward to, the lock guarding every count, and the forwarded count."""

    def __init__(self, upstream):
        parsed = urllib.parse.urlsplit(upstream)
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.forwarded = 0
        self.lock = threading.Lock()


def query_int(url, name, default=0):
    """An integer query parameter of a control request."""
    return int(urllib.parse.parse_qs(url.query).get(name, [str(default)])[0])


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # a Counters, set by serve()

    def log_message(self, *args):
        pass

    # What a proxy defines.
    def fault(self, body):
        """Answers the request itself (True) or lets it be forwarded (False)."""
        return False

    def control(self, url):
        """Applies a control request; returns the stats (a dict) to answer with."""
        return {"forwarded": self.state.forwarded}

    # The shared machinery.
    def read_body(self):
        return read_body(self)

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forward(self, body):
        """Sends the request (with `body`) upstream; returns (status, body, headers)."""
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

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            stats = self.control(urllib.parse.urlsplit(self.path))
            return self.reply(200, json.dumps(stats).encode(), [("Content-Type", "application/json")])
        if self.fault(body):
            return None
        status, data, headers = self.forward(body)
        return self.reply(status, data, headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any


def serve(handler, state, port):
    """Serves `handler` (a ProxyHandler subclass) with `state` on 127.0.0.1:`port` (0: a free
    one) until interrupted, after printing `listening on <port>`."""
    handler.state = state
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
