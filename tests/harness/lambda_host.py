"""How Trailsight's harnesses run a Lambda bootstrap on this machine: one module for all of them
(tests/lambda_invoke.py, tests/e2e/run_e2e.py with tests/e2e/chaos.py, bench/cold_start.py,
bench/ingest_memory.py).

    with Host() as host:                      # a work folder; what it starts is stopped on exit
        moto = host.moto()                    # moto_server on a free loopback port
        moto.create_table("t")                # infra/table.json's key schema, billing, SSE, TTL
        api = CargoLambdaWatch(host)          # Lambda's runtime API (cargo lambda watch)
        host.start_bootstrap(bootstrap, "trailsight-ingest", api.runtime_api("trailsight-ingest"),
                             endpoint=moto.endpoint, extra={"TRAILSIGHT_TABLE": "t"})
        status, body = api.invoke("trailsight-ingest", event)

`Host` is a context manager: on the way out, whatever happens (an exception, SIGTERM, Ctrl-C), it
prints the last lines of each process's log if the block failed, stops every process it started
(its whole process group: `cargo lambda watch` runs cargo-lambda as a child), and removes its
temporary folders. `run_main(main)` runs a harness's main() and turns an exception into
`error: ...` and exit status 1.

Two runtime APIs, both giving the bootstrap's AWS_LAMBDA_RUNTIME_API as `runtime_api(function)`:
- `CargoLambdaWatch`: cargo-lambda's emulator (`cargo lambda watch --only-lambda-apis`), for any
  number of functions and bootstraps (it routes `/.rt/<function>/...`); invoked through its invoke
  endpoint (`invoke`, the request `cargo lambda invoke` sends) or by `cargo lambda invoke` itself
  (`cargo_invoke`). Used where the project tests functions.
- `LocalRuntimeApi`: one function's runtime API served in this process, as a Lambda sandbox serves
  it (AWS_LAMBDA_RUNTIME_API = host:port). It hands queued events out to the runtime's polls and
  times what Lambda reports; `cold_start()` starts a fresh bootstrap, invokes it once and returns
  Init Duration, Duration and peak RSS. Used by the benchmarks, which time the process itself.

The function's environment: `lambda_env()` is what Lambda sets (and nothing of the caller's
shell: an empty HOME, dummy credentials, no instance metadata), so nothing at init reaches AWS;
`TEMPLATE_MEMORY` and `TEMPLATE_ENV` are what infra/template.yaml adds with its defaults.

Standard library only (boto3, from the venv, is imported when a moto client is asked for).
"""

import collections
import fcntl
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
REGION = "us-east-1"
INGEST, DETECT = "trailsight-ingest", "trailsight-detect"
RUNTIME = "/2018-06-01/runtime"
NEXT = RUNTIME + "/invocation/next"

# infra/template.yaml's functions with its parameters' defaults: memory (MB) and the environment
# the benchmarks give them (the tests give the detector's defaults, like `trailsight replay`).
TEMPLATE_MEMORY = {INGEST: 128, DETECT: 512}
TEMPLATE_ENV = {
    INGEST: {
        "TRAILSIGHT_TABLE": "trailsight",
        "TRAILSIGHT_MAX_COMPRESSED_BYTES": "52428800",
        "TRAILSIGHT_MAX_DECOMPRESSED_BYTES": "536870912",
        "TRAILSIGHT_MAX_RECORDS": "500000",
        "TRAILSIGHT_MAX_SERIES_PER_FILE": "10000",
        "TRAILSIGHT_INCLUDE_READ_APIS": "false",
        "TRAILSIGHT_INCLUDE_DATA_EVENTS": "false",
        "TRAILSIGHT_PRINCIPAL_INSIGHTS": "false",
        "TRAILSIGHT_METRIC_NAMESPACE": "Trailsight",
        "TRAILSIGHT_METRICS": "basic",
    },
    DETECT: {
        "TRAILSIGHT_TABLE": "trailsight",
        "TRAILSIGHT_EVENT_BUS": "default",
        "TRAILSIGHT_EVENT_SOURCE": "trailsight",
        "TRAILSIGHT_DETAIL_TYPE": "AWS Insight via CloudTrail",
        "TRAILSIGHT_METRIC_NAMESPACE": "Trailsight",
        "TRAILSIGHT_METRICS": "basic",
        "TRAILSIGHT_ARCHIVE_BUCKET": "",
        "TRAILSIGHT_ARCHIVE_PREFIX": "",
        "TRAILSIGHT_SENSITIVITY": "medium",
        "TRAILSIGHT_MIN_CALLS": "5",
        "TRAILSIGHT_SETTLE_MINUTES": "20",
        "TRAILSIGHT_MAX_CATCHUP_MINUTES": "11520",
        "TRAILSIGHT_IGNORE_AWS_SERVICE_CALLERS": "false",
        "TRAILSIGHT_API_ALLOW": "",
        "TRAILSIGHT_API_DENY": "",
        "TRAILSIGHT_PRINCIPAL_INSIGHTS": "false",
    },
}


def step(message):
    print(f"==> {message}", flush=True)


# --- Ports, commands, the environment --------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(ready, what, process, seconds):
    """Polls `ready()` until it returns something other than None, and returns that; fails if
    `process` exits first, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = ready()
        if value is not None:
            return value
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited (status {process.returncode}) before it was ready")
        time.sleep(0.1)
    raise RuntimeError(f"{what} was not ready after {seconds}s")


def wait_for_port(port, what, process, seconds=120):
    """Returns once 127.0.0.1:`port` accepts connections."""
    def accepts():
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            return None

    wait_for(accepts, f"{what} (port {port})", process, seconds)


def listening_port(log_path, process, seconds=30):
    """The port a proxy printed (`listening on <port>`, tests/proxy_base.py) in its log."""
    def printed():
        match = re.search(r"listening on (\d+)", Path(log_path).read_text(errors="replace"))
        return int(match.group(1)) if match else None

    return wait_for(printed, Path(log_path).name, process, seconds)


def tools_env():
    """This environment with .venv/bin first on PATH: `cargo lambda` is the cargo-lambda wheel's
    binary, and it finds zig through the ziglang wheel there."""
    return {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}


def require_tools(*names):
    for name in names:
        if not (VENV_BIN / name).exists():
            raise RuntimeError(f"{VENV_BIN / name} is missing: run 'make tools' first")


def run(args, what=None, env=None, **kwargs):
    """Runs a command from the repository root (with the venv's tools); fails unless it exits 0."""
    result = subprocess.run(args, cwd=ROOT, env=env or tools_env(), **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{what or args[0]} failed (status {result.returncode})")
    return result


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")


def build_dir(profile):
    """Where cargo puts `profile`'s programs: under the target triple when CARGO_BUILD_TARGET names
    one (`make test` does, see the Makefile)."""
    return target_dir() / os.environ.get("CARGO_BUILD_TARGET", "") / profile


def cargo_lambda_build(functions, flags=()):
    """`cargo lambda build` of `functions`; their bootstraps, by name.

    The bootstraps run here, so they are linked by the host's own toolchain (`--compiler cargo`),
    not cross-linked with zig for Amazon Linux's glibc as `make build` does for deployment: the
    code compiled is the same, and the dependencies the test builds of `make test` compiled for
    the same target triple (CARGO_BUILD_TARGET) are reused, where zig's linker and C compiler
    would make cargo compile them all again."""
    # The binaries named too: without --bin, cargo lambda also moves every other binary of the
    # workspace it finds in the target directory into target/lambda/ (the `trailsight` command
    # the tests build in the same directory went missing under a running test).
    packages = [arg for name in functions for flag in ("--package", "--bin") for arg in (flag, name)]
    # One build at a time across processes (test_e2e.sh runs two e2e runs at once): cargo lambda
    # moves each binary into target/lambda/, and two builds at once race on that move.
    lock_path = target_dir() / "lambda.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(["cargo", "lambda", "build", "--quiet", "--compiler", "cargo", *packages, *flags],
            what="cargo lambda build")
    bootstraps = {name: target_dir() / "lambda" / name / "bootstrap" for name in functions}
    for path in bootstraps.values():
        if not path.exists():
            raise RuntimeError(f"{path} was not built")
    return bootstraps


def aws_env(endpoint=None):
    """Dummy credentials, the region, no instance metadata; and the endpoint of every service."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def lambda_env(name, runtime_api, home, task_root, memory=None, endpoint=None, extra=None):
    """What Lambda sets for a provided.al2023 function, with dummy credentials, an empty HOME (no
    profile files) and no instance metadata; then AWS_ENDPOINT_URL (when given) and `extra` (the
    function's own variables). `memory` defaults to the template's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC", "HOME": str(home),
        "LAMBDA_TASK_ROOT": str(task_root), "_HANDLER": "bootstrap",
        "AWS_LAMBDA_RUNTIME_API": runtime_api, "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory or TEMPLATE_MEMORY[name]),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}", "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "RUST_LOG": "info", **aws_env(endpoint), **(extra or {}),
    }


def vm_hwm_kb(pid):
    """A process's peak resident set (VmHWM), in KB; None once it is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --- Processes --------------------------------------------------------------------------------

class Host:
    """A work folder (a temporary one unless `work` is given), an empty HOME for the functions,
    and the processes started here: as a context manager, all stopped on exit."""

    def __init__(self, work=None, prefix="trailsight-"):
        self.temporary = work is None
        self.work = Path(tempfile.mkdtemp(prefix=prefix) if work is None else work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.home = Path(tempfile.mkdtemp(prefix=prefix + "home-"))
        self.processes = []  # (Popen, log path, in a process group of its own)
        self._sigterm = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _raise_exit)
        return self

    def __exit__(self, kind, value, _traceback):
        failed = kind is not None and not (kind is SystemExit and value.code in (None, 0))
        try:
            if failed:
                self.show_logs()
            self.stop_all()
        finally:
            if self._sigterm is not None:
                signal.signal(signal.SIGTERM, self._sigterm)
            shutil.rmtree(self.home, ignore_errors=True)
            if self.temporary:
                shutil.rmtree(self.work, ignore_errors=True)
        return False

    def start(self, args, log, env=None, cwd=ROOT, own_group=True):
        """Starts `args`, its output to `log` (a name in the work folder, a path, or an open
        file). In a session and process group of its own unless `own_group` is False: stopping it
        then stops whatever it started too (cargo runs cargo-lambda as a child)."""
        handle = log if hasattr(log, "write") else open(self.work / log, "wb")
        try:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=handle,
                                       stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=own_group)
        finally:
            if handle is not log:
                handle.close()  # the child has its own copy
        self.processes.append((process, Path(handle.name), own_group))
        return process

    def start_bootstrap(self, bootstrap, name, runtime_api, log=None, memory=None, endpoint=None, extra=None):
        """A function's bootstrap on `runtime_api`, with Lambda's environment (`lambda_env`),
        started in its folder as Lambda starts it in /var/task."""
        bootstrap = Path(bootstrap)
        env = lambda_env(name, runtime_api, self.home, bootstrap.parent, memory, endpoint, extra)
        return self.start([str(bootstrap)], log or f"{name}.log", env=env, cwd=bootstrap.parent)

    def moto(self):
        """moto_server (every AWS service moto has) on a free loopback port."""
        require_tools("moto_server")
        port = free_port()
        process = self.start([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], "moto.log")
        wait_for_port(port, "moto", process)
        return Moto(port, process)

    def stop_all(self):
        """SIGTERM to each process group still running (the last started first), then SIGKILL to
        any that has not exited 10 s later."""
        for process, _, group in reversed(self.processes):
            if process.poll() is None:
                _signal(process, group, signal.SIGTERM)
        for process, _, group in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal(process, group, signal.SIGKILL)
                process.wait()

    def show_logs(self, lines=30):
        """The last lines of each log, to stderr. A process restarted under the same name
        (`<name>.<n>.log`) shows its last log only."""
        latest = {}
        for _, path, _ in self.processes:
            latest[re.sub(r"\.\d+\.log$", "", path.name)] = path
        for path in latest.values():
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                print(f"--- {path.name} (last lines)", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def _signal(process, group, signum):
    try:
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


def run_main(main):
    """Runs a harness's main() and exits with its status: 1, after `error: <message>`, when it
    raises (RuntimeError, or SystemExit with a message); 130 on Ctrl-C."""
    try:
        status = main() or 0
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            status = 1
        else:
            status = exit_.code or 0
    except KeyboardInterrupt:
        status = 130
    except Exception as error:  # noqa: BLE001 - the harness's failure, reported
        print(f"error: {error}", file=sys.stderr)
        status = 1
    sys.exit(status)


class Moto:
    """A moto server: its endpoint, boto3 clients for it, and the table as infra/table.json
    defines it."""

    def __init__(self, port, process):
        self.port = port
        self.process = process
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self, service):
        import boto3  # from moto's dependencies in the venv

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")

    def create_table(self, name):
        definition = json.loads((ROOT / "infra" / "table.json").read_text())
        ddb = self.client("dynamodb")
        create = {k: definition[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "SSESpecification")
                  if k in definition}
        ddb.create_table(TableName=name, **create)
        ddb.get_waiter("table_exists").wait(TableName=name)
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=definition["TimeToLiveSpecification"])


# --- HTTP plumbing shared by the runtime APIs and the proxies ---------------------------------

def read_body(request):
    """A request's body (a BaseHTTPRequestHandler's), with a Content-Length or chunked."""
    if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


class QuietServer(http.server.ThreadingHTTPServer):
    """A threaded server that says nothing of a connection a killed bootstrap left half-open."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def serve_http(on_get, on_post=None):
    """Serves HTTP/1.1 (keep-alive, as Lambda runtimes use it) on a free loopback port, from a
    daemon thread: `on_get(request)` answers GETs, `on_post(request)` POSTs (by default on_get);
    `request` is the BaseHTTPRequestHandler."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            on_get(self)

        def do_POST(self):
            (on_post or on_get)(self)

    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- Runtime APIs -----------------------------------------------------------------------------

class CargoLambdaWatch:
    """Lambda's runtime API and invoke endpoint as cargo-lambda emulates them, on a free loopback
    port: `cargo lambda watch --only-lambda-apis` (no build, no process of its own: the bootstraps
    are started by the caller and poll `runtime_api(function)`)."""

    def __init__(self, host):
        require_tools("cargo-lambda")
        self.port = free_port()
        self.process = host.start(
            ["cargo", "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port)], "watch.log", env=tools_env())
        wait_for_port(self.port, "cargo lambda watch", self.process)

    def runtime_api(self, function):
        """The emulator routes `<api>/.rt/<function>/2018-06-01/runtime/...` to `function`'s
        invocations."""
        return f"http://127.0.0.1:{self.port}/.rt/{function}"

    def invoke(self, function, event, timeout=300):
        """POSTs `event` to the invoke endpoint (what `cargo lambda invoke` does); (status, body)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/{function}/invocations",
            data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def cargo_invoke(self, function, data_file, timeout=120):
        """`cargo lambda invoke <function> --data-file <data_file>`: its JSON answer."""
        try:
            result = subprocess.run(
                ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(self.port), "--data-file", str(data_file), "--output-format", "json"],
                cwd=ROOT, env=tools_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"cargo lambda invoke {function}: no answer after {timeout}s") from None
        if result.returncode != 0:
            raise RuntimeError(f"cargo lambda invoke {function} failed (status {result.returncode}):\n"
                               + result.stderr.decode(errors="replace")[-3000:])
        return json.loads(result.stdout)


class Invocation:
    """One event handed to the runtime, and its answer. Times are time.perf_counter_ns(): the
    arrival of the poll that took it (`t_next`), the hand-out, the arrival of the answer."""

    def __init__(self, event):
        self.request_id = str(uuid.uuid4())
        self.event = json.dumps(event).encode()
        self.t_next = self.t_handout = self.t_answer = None
        self.kind = None  # "response" or "error"
        self.answer = None
        self.done = threading.Event()


class LocalRuntimeApi:
    """One function's Lambda runtime API, served here on a free loopback port: queued invocations
    are handed out, in order, to the runtime's polls (`GET .../invocation/next`), which otherwise
    wait, as Lambda's do while the process is frozen."""

    def __init__(self, function, deadline_ms=120_000):
        self.function = function
        self.deadline_ms = deadline_ms
        self.cond = threading.Condition()
        self.queue = collections.deque()
        self.running = {}  # request id -> Invocation handed out and not answered
        self.polls = []  # arrival times of the current process's polls
        self.waiting = 0  # polls waiting for an event
        self.init_error = None
        self.generation = 0  # bumped by reset(): polls of an earlier process are let go
        self.on_poll = None  # (poll number) -> None, called before anything is handed out
        self.server = serve_http(self._next, self._answer)

    def runtime_api(self, function=None):
        """host:port, as Lambda gives it to its sandbox's runtime."""
        assert function in (None, self.function), function
        return f"127.0.0.1:{self.server.server_address[1]}"

    def submit(self, event):
        """Queues an invocation of `event`; returns it (wait on `.done`)."""
        invocation = Invocation(event)
        with self.cond:
            self.queue.append(invocation)
            self.cond.notify_all()
        return invocation

    def reset(self):
        """Forgets the last process: its polls, queued and unanswered invocations, init error; its
        waiting polls are let go."""
        with self.cond:
            self.generation += 1
            self.queue.clear()
            self.running.clear()
            self.polls = []
            self.init_error = None
            self.cond.notify_all()

    def idle(self):
        """The runtime waits for an event and none is queued or running (Lambda would freeze it),
        or it reported an init error."""
        with self.cond:
            return self.init_error is not None or (self.waiting > 0 and not self.queue and not self.running)

    def close(self):
        self.reset()
        self.server.shutdown()
        self.server.server_close()

    def cold_start(self, host, argv, env, event, log, timeout=30):
        """Starts `argv` fresh against this API with `event` waiting for it, lets it answer, reads
        its peak RSS once it polls again (or gives up), and kills it. Times in ms, memory in KB:
        init_ms (process start -> first poll: Lambda's Init Duration), rss_init_kb (at that
        poll), invoke_ms (hand-out -> answer: Duration), first_answer_ms, rss_peak_kb,
        answer_kind ("response", "error" or None) and answer."""
        self.reset()
        started, pid = threading.Event(), []

        def at_first_poll(n):
            if n == 1 and started.wait(5):
                rss_init.append(vm_hwm_kb(pid[0]))

        rss_init = []
        self.on_poll = at_first_poll
        invocation = self.submit(event)
        t0 = time.perf_counter_ns()
        # In the harness's own session, as the benchmarks always ran it: a session of its own
        # (setsid) also gives the process a scheduler autogroup of its own, and on a busy machine
        # that added 1 to 5 ms to a bootstrap's Init Duration (median of paired runs).
        process = host.start(argv, log, env=env, cwd=env.get("LAMBDA_TASK_ROOT", ROOT), own_group=False)
        pid.append(process.pid)
        started.set()
        deadline = time.monotonic() + timeout
        while not self.idle() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        rss_peak = vm_hwm_kb(process.pid) if process.poll() is None else None
        process.kill()
        process.wait()
        with self.cond:
            first_poll = self.polls[0] if self.polls else None
            init_error = self.init_error
        self.on_poll = None
        self.reset()

        def ms(a, b):
            return None if a is None or b is None else round((b - a) / 1e6, 3)

        kind, answer = invocation.kind, invocation.answer
        if kind is None and init_error is not None:
            kind, answer = "init_error", init_error
        return {
            "init_ms": ms(t0, first_poll), "rss_init_kb": rss_init[0] if rss_init else None,
            "invoke_ms": ms(invocation.t_handout, invocation.t_answer),
            "first_answer_ms": ms(t0, invocation.t_answer), "rss_peak_kb": rss_peak,
            "answer_kind": kind, "answer": answer,
        }

    # The server's side.
    def _send(self, request, status, body=b"", headers=()):
        request.send_response(status)
        for key, value in headers:
            request.send_header(key, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _next(self, request):
        now = time.perf_counter_ns()
        if request.path != NEXT:
            return self._send(request, 404, b'{"errorMessage": "unknown path"}')
        with self.cond:
            generation = self.generation
            self.polls.append(now)
            number = len(self.polls)
        if self.on_poll:
            self.on_poll(number)
        with self.cond:
            self.waiting += 1
            self.cond.notify_all()
            while not self.queue and self.generation == generation:
                self.cond.wait()
            self.waiting -= 1
            if self.generation != generation:  # the process is gone
                request.close_connection = True
                return None
            invocation = self.queue.popleft()
            self.running[invocation.request_id] = invocation
        invocation.t_next = now
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + self.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", f"arn:aws:lambda:{REGION}:123456789012:function:{self.function}"),
            ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
        ]
        invocation.t_handout = time.perf_counter_ns()
        return self._send(request, 200, invocation.event, headers)

    def _answer(self, request):
        now = time.perf_counter_ns()
        body = read_body(request)
        match = re.fullmatch(RUNTIME + r"/invocation/([^/]+)/(response|error)", request.path)
        try:
            answer = json.loads(body or b"null")
        except ValueError:
            answer = body.decode(errors="replace")
        with self.cond:
            if match and match.group(1) in self.running:
                invocation = self.running.pop(match.group(1))
                invocation.t_answer, invocation.kind, invocation.answer = now, match.group(2), answer
                invocation.done.set()
            elif request.path == RUNTIME + "/init/error":
                self.init_error = answer
            else:
                return self._send(request, 404, b'{"errorMessage": "unknown path"}')
            self.cond.notify_all()
        return self._send(request, 202, b'{"status": "OK"}')
