"""The fault mode of the end-to-end run (`run_e2e.py --chaos SEED`): its plan and its machinery.

- `RuntimeTap`: an HTTP proxy between one function bootstrap and Lambda's runtime API (`cargo
  lambda watch`: tests/harness/lambda_host.py's CargoLambdaWatch). It passes everything through,
  and kills the bootstrap with SIGKILL during an invocation when the plan says so: at the
  hand-out (before the bootstrap sees the event), after a delay (anywhere in the handler), or at
  the response (all the work done, the answer lost).
  It then reports the invocation failed as Lambda does when a runtime exits (`Runtime.ExitError`)
  and starts the bootstrap again, so the caller sees a failed invocation and retries it.
- `KillPlans`: which invocation is killed where, registered by the caller before it invokes,
  looked up by the tap from the event it hands out.
- `plan_arrivals`: when each file's notification arrives (outages, isolated delays, dead letters),
  chosen so that the published insights can honestly be expected to equal replay's (see
  run_e2e.py's docstring).
- `compare`: published records against replay's.

Standard library only (and tests/harness/lambda_host.py, for its HTTP plumbing).
"""

import bisect
import calendar
import collections
import gzip
import hashlib
import http.client
import json
import os
import signal
import threading
import time
import urllib.parse

from harness.lambda_host import RUNTIME, read_body, serve_http

# Detector defaults the plan keeps clear of (shared/src/config.rs, docs/DETECTION.md).
SETTLE = 20
COOLDOWN = 10
MIN_GAP = 30  # a silence shorter than this is never a drop
DROP_HOLD = 180
LATE_WINDOW = 48 * 60
WARMUP = 24 * 60
FILE_SPAN = 15  # a CloudTrail file holds records of the 15 minutes before its delivery


STATS_LOCK = threading.Lock()


def event_digest(body):
    """The identity of an invocation's event, whatever its JSON formatting."""
    return hashlib.sha256(json.dumps(json.loads(body), sort_keys=True).encode()).hexdigest()


class KillPlans:
    """Kill points by event digest, one per registered invocation: None (no kill),
    ("handout",), ("delay", seconds) or ("response",)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.plans = collections.defaultdict(collections.deque)

    def register(self, event, point):
        if point is None:
            return
        with self.lock:
            self.plans[event_digest(json.dumps(event))].append(point)

    def take(self, body):
        try:
            digest = event_digest(body)
        except ValueError:
            return None
        with self.lock:
            queue = self.plans.get(digest)
            return queue.popleft() if queue else None


class RuntimeTap:
    """A runtime-API proxy for one bootstrap process, which it starts, kills and restarts.
    `upstream`: the runtime API it stands in front of, as a bootstrap's AWS_LAMBDA_RUNTIME_API
    (`http://host:port/<base path>`); the tap's own is `runtime_api`, without a base path."""

    def __init__(self, name, upstream, plans, spawn, stats):
        self.name = name
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_address = (parsed.hostname, parsed.port)
        self.upstream_base = parsed.path.rstrip("/")
        self.plans = plans
        self.spawn = spawn  # (the tap's runtime API) -> a new bootstrap process polling it
        self.stats = stats  # a Counter shared by the taps, under STATS_LOCK
        self.lock = threading.Lock()
        self.process = None
        self.invocations = {}  # request id -> "running" | "kill-at-response" | "responded" | "killed"
        self.server = serve_http(self.handle)
        self.runtime_api = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        with self.lock:
            self.process = self.spawn(self.runtime_api)

    def upstream(self, method, path, body=b"", headers=None):
        connection = http.client.HTTPConnection(*self.upstream_address, timeout=None)
        try:
            connection.request(method, self.upstream_base + path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), response.getheaders()
        finally:
            connection.close()

    def handle(self, request):
        body = read_body(request)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")}
        path = request.path
        if path.endswith("/response") and "/invocation/" in path:
            request_id = path.rsplit("/", 2)[-2]
            with self.lock:
                if self.invocations.get(request_id) == "killed":
                    return  # a dead process's last words
                kill = self.invocations.get(request_id) == "kill-at-response"
                if not kill:
                    self.invocations[request_id] = "responded"
            if kill:
                self.kill(request_id, "response")
                return
        for attempt in range(100):
            try:
                status, data, answer_headers = self.upstream(request.command, path, body, headers)
                break
            except (http.client.HTTPException, OSError):
                # The runtime API dropped a long poll: poll again (anything else fails the call).
                if not path.endswith("/invocation/next"):
                    request.send_error(502)
                    return
                time.sleep(0.05)
        else:
            request.send_error(502)
            return
        if path.endswith("/invocation/next") and status == 200:
            request_id = dict((k.lower(), v) for k, v in answer_headers).get("lambda-runtime-aws-request-id")
            point = self.plans.take(data)
            if point and point[0] == "handout":
                with self.lock:
                    self.invocations[request_id] = "running"
                self.kill(request_id, "handout")
                return
            with self.lock:
                self.invocations[request_id] = "kill-at-response" if point and point[0] == "response" else "running"
            if point and point[0] == "delay":
                threading.Timer(point[1], self.kill, (request_id, "delay")).start()
        request.send_response(status)
        for k, v in answer_headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                request.send_header(k, v)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def kill(self, request_id, where):
        """SIGKILLs the bootstrap if `request_id` is still running, fails the invocation as
        Lambda does for a runtime that exited, and starts a new bootstrap."""
        with self.lock:
            if self.invocations.get(request_id) not in ("running", "kill-at-response"):
                with STATS_LOCK:
                    self.stats[f"{self.name}: kill came after the response ({where})"] += 1
                return
            self.invocations[request_id] = "killed"
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            error = json.dumps({"errorType": "Runtime.ExitError",
                                "errorMessage": "RequestId: %s Error: Runtime exited with error: signal: killed" % request_id})
            self.upstream(
                "POST",
                f"{RUNTIME}/invocation/{request_id}/error",
                error.encode(),
                {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": "Runtime.ExitError"},
            )
            self.process = self.spawn(self.runtime_api)
            with STATS_LOCK:
                self.stats[f"{self.name}: killed at {where}"] += 1

    def exited(self):
        """The exit status of the bootstrap if it died on its own, else None. Read under the lock
        that a kill holds until the replacement runs: a bootstrap this tap is killing is not
        mistaken for one that crashed."""
        with self.lock:
            return self.process.poll()

    def close(self):
        self.server.shutdown()


# --- The plan -------------------------------------------------------------------------------

def _minute(stamp):
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) // 60


def read_cells(path):
    """(source, name) -> set of event minutes, for one log file; and (source, name, errorCode)
    -> the same for its errors, under the key "errors"."""
    cells = collections.defaultdict(set)
    errors = collections.defaultdict(set)
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as handle:
        records = json.load(handle).get("Records", [])
    for record in records:
        try:
            minute = _minute(record["eventTime"])
        except (KeyError, ValueError):
            continue
        cells[(record.get("eventSource"), record.get("eventName"))].add(minute)
        if record.get("errorCode"):
            errors[(record.get("eventSource"), record.get("eventName"), record["errorCode"])].add(minute)
    return cells, errors


def episodes(replay):
    """Replay's insights as (series, kind, start, end) in minutes; end None when still open."""
    by_id = {}
    for record in replay:
        details = record["insightDetails"]
        series = series_of(record)
        entry = by_id.setdefault(record["sharedEventID"], {"series": series})
        if details["state"] == "Start":
            entry["start"] = _minute(record["eventTime"])
            average = details["insightContext"]["statistics"]["insight"]["average"]
            entry["kind"] = "drop" if average == 0 else "spike"
        else:
            entry["end"] = _minute(record["eventTime"])
    return [(e["series"], e.get("kind", "spike"), e["start"], e.get("end")) for e in by_id.values() if "start" in e]


def series_of(record):
    details = record["insightDetails"]
    return (record["recipientAccountId"], record["awsRegion"], details["eventSource"],
            details["eventName"], details["insightType"], details.get("errorCode"))


def plan_arrivals(rng, objects, replay, last):
    """Arrival minute per key, the dead-lettered keys, the late keys, what each late file holds
    (its APIs and (API, errorCode)s), and a description of the plan.

    `objects`: (key, path, delivery minute or None). Late files are kept apart from replay's
    insights (a spike is delayed whole or not at all; a drop's onset and end are never delayed)
    and never leave a hole of `MIN_GAP` minutes in any API's activity while the files around it
    arrive (a hole is indistinguishable from a silence: see the docstring of run_e2e.py)."""
    logs = sorted((o for o in objects if o[2] is not None), key=lambda o: (o[2], o[0]))
    first = logs[0][2]
    arrival = {key: minute for key, _, minute in logs}
    read = {key: read_cells(path) for key, path, _ in logs}
    cells = {key: apis for key, (apis, _) in read.items()}
    errors = {key: errs for key, (_, errs) in read.items()}
    span = {}
    for key, _, d in logs:
        minutes = [m for ms in cells[key].values() for m in ms] or [d]
        span[key] = (min(minutes), max(minutes))
    warm = first + WARMUP + 60
    eps = episodes(replay)
    spikes = [(s, e if e is not None else last) for _, kind, s, e in eps if kind == "spike"]
    # Event-time spans no late file may touch.
    guarded = [(s - 25, e + COOLDOWN + 25) for s, e in spikes]
    for _, kind, s, e in eps:
        if kind == "drop":
            guarded.append((s - 45, s + DROP_HOLD + 30))
            if e is not None:
                guarded.append((e - 30, e + 30))

    dropping = {(series[2], series[3]) for series, kind, _, _ in eps if kind == "drop"}

    def touches(lo, hi, spans):
        return any(lo <= b and a <= hi for a, b in spans)

    # Activity left without a file: the silence it would open must not look like a drop (under
    # MIN_GAP or twice the API's longest gap so far, with 5 minutes of margin) nor, for an API
    # that drops, be longer than its longest gap so far.
    seen = collections.Counter()
    for c in cells.values():
        for api, minutes in c.items():
            for m in minutes:
                seen[(api, m)] += 1
    active = collections.defaultdict(list)
    for (api, m) in seen:
        active[api].append(m)
    longest = {}
    for api, minutes in active.items():
        minutes.sort()
        running, prefix = 0, []
        for i, m in enumerate(minutes):
            running = max(running, m - minutes[i - 1]) if i else 0
            prefix.append(running)
        longest[api] = prefix

    def outage_widens(t, length):
        """Whether an outage [t, t + length) leaves an API replay reports a drop for a gap, seen
        before the outage's files arrive, longer than its longest so far: at its start, files
        delivered before it hold calls later than some of those held back (a file holds 15
        minutes)."""
        for api in dropping:
            on_time = collections.Counter()
            for key, _, d in logs:
                if not t <= d < t + length:
                    for m in cells[key].get(api, ()):
                        on_time[m] += 1
            minutes = active[api]
            previous = None
            for i, m in enumerate(minutes):
                if m >= t + length - SETTLE:
                    break
                if not on_time[m]:
                    continue
                if previous is not None and m - previous > longest[api][i]:
                    return True
                previous = m
        return False

    late_keys, description = set(), []
    # 1. A delivery outage: every file delivered in [T, T + L) arrives together at its end, with
    #    (not after) the first file delivered after it. Placed over a spike when there is one it
    #    can hold whole.
    outage = None
    for attempt in range(200):
        length = rng.randint(60, 150)
        if spikes and attempt < 100:
            s, e = rng.choice(spikes)
            lo_t, hi_t = e + COOLDOWN + 25 + FILE_SPAN - length, s - 25
            if lo_t > hi_t:
                continue
            t = rng.randint(lo_t, hi_t)
            others = [(a, b) for a, b in guarded if not (a >= t and b <= t + length - FILE_SPAN)]
        else:
            if last - length - 60 <= warm:
                break
            t = rng.randint(warm, last - length - 60)
            others = guarded
        if t < warm or t + length > last - 30 or touches(t - FILE_SPAN, t + length, others):
            continue
        if outage_widens(t, length):
            continue
        outage = (t, length, 0)
        break
    outage_files = []
    if outage:
        t, length, extra = outage
        for key, _, d in logs:
            if t <= d < t + length:
                arrival[key] = t + length + extra
                outage_files.append(key)
                late_keys.add(key)
        description.append(
            f"outage {iso(t)} .. {iso(t + length)}: {len(outage_files)} files arrive together at "
            f"{iso(t + length + extra)} ({length + extra} min after the first was due)")

    def opens_hole(key):
        for api, minutes in cells[key].items():
            only = sorted(m for m in minutes if seen[(api, m)] == 1)
            if not only:
                continue
            all_m = active[api]
            lo = bisect.bisect_left(all_m, only[0])
            hi = bisect.bisect_right(all_m, only[-1])
            if lo == 0 or hi == len(all_m):
                continue
            # Not beyond the API's longest gap so far either: the gap a detect run sees before
            # the file arrives is kept in the baseline's rhythm, which late data does not
            # correct (see run_e2e.py's docstring).
            # (A longer usual gap only makes a drop later or none, so this holds for the APIs
            # of replay's drops.)
            silence = all_m[hi] - all_m[lo - 1]
            usual = longest[api][lo - 1]
            if (silence >= MIN_GAP - 5 and silence > 2 * usual - 5) or (api in dropping and silence > usual):
                return True
        return False

    taken = [(outage[0] - 60, outage[0] + outage[1] + 60)] if outage else []

    def candidates(lo):
        out = []
        for key, _, d in logs:
            a, b = span[key]
            if d < lo or d > last - 60 or touches(a - 5, b + 5, guarded) or opens_hole(key):
                continue
            out.append((key, d))
        return out

    # 2. Dead letters: notifications whose three attempts fail, redriven after the last
    #    scheduled run (so within the late window of the end).
    dead = []
    pool = candidates(max(warm, last - LATE_WINDOW + 8 * 60))
    rng.shuffle(pool)
    for key, d in pool:
        if len(dead) >= 4:
            break
        if touches(d, d, taken):
            continue
        dead.append(key)
        late_keys.add(key)
        taken.append((d - 60, d + 60))
    description.append(f"{len(dead)} notifications fail three times, to the dead letters, redriven at the end")
    # 3. Isolated delays: single notifications 1 to 6 hours late (asynchronous retries).
    delayed = []
    share = 0.03
    pool = candidates(warm)
    rng.shuffle(pool)
    want = max(3, int(len(logs) * share))
    for key, d in pool:
        if len(delayed) >= want:
            break
        if touches(d, d, taken):
            continue
        delay = rng.randint(60, 360)
        arrival[key] = d + delay
        delayed.append(key)
        late_keys.add(key)
        taken.append((d - 60, d + 60))
    description.append(f"{len(delayed)} notifications delayed 1 to 6 hours, one by one")

    calls = {key: (set(cells[key]), set(errors[key])) for key in late_keys}
    return arrival, set(dead), late_keys, calls, description


def iso(minute):
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(minute * 60))


# --- The comparison -------------------------------------------------------------------------

def compare(replay, published, late_calls):
    """Checks `published` (deduplicated by eventID) against `replay`: each insight's Start and End
    sharing one sharedEventID, the same (series, state, eventTime) for every record,
    and the same record, eventID and sharedEventID included, for every series of which no late file held an
    event: a call of the API for a call-rate series, an error of the API with that code for an
    error-rate series. `late_calls`: per late file, the APIs and (API, errorCode)s it holds. Returns (full, keys_only) counts; raises
    RuntimeError with the differences otherwise."""
    def ident(record):
        return series_of(record) + (record["insightDetails"]["state"], record["eventTime"])

    a = sorted(ident(r) for r in replay)
    b = sorted(ident(r) for r in published)
    if a != b:
        missing = [x for x in a if x not in b]
        extra = [x for x in b if x not in a]
        raise RuntimeError(f"published insights differ from replay's: missing {missing}, extra {extra}")
    pairs = collections.defaultdict(list)
    for record in published:
        pairs[record["sharedEventID"]].append(record["insightDetails"]["state"])
    if any(sorted(states, reverse=True) not in (["Start"], ["Start", "End"]) for states in pairs.values()):
        raise RuntimeError(f"Start/End records do not pair by sharedEventID: {dict(pairs)}")
    touched = set()
    for apis, errors in late_calls:
        touched.update(apis)
        touched.update(errors)
    by_ident = {ident(r): r for r in published}
    full = keys_only = 0
    for record in replay:
        series = series_of(record)
        error = series[5]
        if (series[2], series[3]) + ((error,) if error else ()) in touched:
            keys_only += 1
            continue
        mine = by_ident[ident(record)]
        if mine != record:
            raise RuntimeError(
                f"a record untouched by late files differs:\n  replay {json.dumps(record)}\n"
                f"  e2e    {json.dumps(mine)}")
        full += 1
    return full, keys_only
