"""Custom runtimes (``provided.al2023``, ``provided.al2``): an executable ``bootstrap`` per execution environment
and the Lambda Runtime API (2018-06-01) served to it on 127.0.0.1.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html (endpoints, headers, replies),
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html (bootstrap from the package or a layer),
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html (init, invoke, reset, shutdown).

:class:`RuntimeApi` is one environment's API server (aiohttp's low-level server: TCP_NODELAY on, chunked bodies and
any content type accepted, as the bash tutorial's ``curl -d`` and Node's ``http`` need):

- ``GET  /2018-06-01/runtime/invocation/next``: long poll; 200 with the event and ``Lambda-Runtime-Aws-Request-Id``,
  ``-Deadline-Ms``, ``-Invoked-Function-Arn``, ``-Trace-Id``, ``-Client-Context`` (when given); the first call
  ends Init. A call while an invocation is unanswered (or a second concurrent poll): 403 InvalidStateTransition.
- ``POST .../invocation/{id}/response``: 202 ``{"status":"OK"}``; an id that is not the one in flight: 400
  InvalidRequestID; a second answer to the same invocation: 403 InvalidStateTransition; a body over 6,291,556
  bytes: 413 RequestEntityTooLarge, and the invocation fails with ``Function.ResponseSizeTooLarge``.
- ``POST .../invocation/{id}/error``: 202; the body is returned to the caller as is (real clients send no
  ``Lambda-Runtime-Function-Error-Type`` header here: the type is read from the body, else the header).
- ``POST /2018-06-01/runtime/init/error``: 202 during Init (the body, typed by the header, is the Init error);
  403 InvalidStateTransition afterwards.

:class:`CustomRuntime` is the environment: it finds ``bootstrap`` (``<task root>/bootstrap``, then each layer's,
later layers first, as they would overwrite earlier ones in /opt), refuses it as AWS does
(``Runtime.InvalidEntrypoint``: missing, not executable, a shebang interpreter that does not exist, e.g. a CRLF
line end), starts it with ``AWS_LAMBDA_RUNTIME_API`` pointing at its server (a :class:`ChildProcess`: own process
group, parent-death signal, memfd output; through the zygote when one is given) and turns what happens into the same ``RawOutcome`` values as the
Python worker's environment: the bootstrap exiting (``Runtime.ExitError``, "exit status N" or "without providing a
reason"), hanging past the timeout (``Sandbox.Timedout``, process group killed), RSS past MemorySize
(``Runtime.OutOfMemory``), /tmp past its quota (``Runtime.EphemeralStorageExceeded``). The bootstrap's output is
the function's output; the core formats START/END/REPORT for it (``RawOutcome.record`` is always None).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.web_server import Server

from edge.invocation.execution import isolation
from edge.invocation.execution.environment import Kind, RawOutcome, describe_exit, platform_error
from edge.invocation.execution.node_process import InitResult
from edge.invocation.execution.runtime_process import ChildProcess, MemoryWatch, RuntimeChild, ZygoteProcess
from edge.invocation.execution.worker_setup import Credentials
from edge.invocation.execution.zygote_client import ZygoteClient
from edge.invocation.runtime.tmpwatch import TmpWatch

PREFIX = "/2018-06-01/runtime"
RESPONSE_LIMIT = 6_291_556
_JSON = "application/json"
_OK = orjson.dumps({"status": "OK"})


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"errorMessage": message, "errorType": error_type}),
                        content_type=_JSON)


def trace_header() -> str:
    """An X-Ray trace header of AWS's form (``Root=1-<epoch hex>-<96 bits>;Parent=<64 bits>;Sampled=0``)."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    headers: dict[str, str]
    result: asyncio.Future  # ("response" | "error" | "too_large", body, error type header or None)
    sent: bool = False  # handed to the runtime by a /next


@dataclass(slots=True)
class RuntimeApi:
    """One environment's Runtime API server (see the module docstring)."""

    port: int = 0
    ready: bool = False  # the first /next arrived: Init is over
    init_error: tuple[str | None, bytes] | None = None  # (error type header, body) of /init/error
    # resolved with "ready", "init_error" (or, by the environment, "exit") when Init ends
    init_done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    _server: asyncio.base_events.Server | None = None
    _web: Server | None = None
    _poll: asyncio.Future | None = None  # the pending /next, waiting for an invocation
    _queued: Invocation | None = None  # an invocation given before the runtime polled
    _current: Invocation | None = None
    _answered: set[str] = field(default_factory=set)

    async def start(self) -> int:
        self._web = Server(self._handle, access_log=None)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._poll is not None and not self._poll.done():
            self._poll.cancel()
        if self._server is not None:
            self._server.close()
            if self._web is not None:
                await self._web.shutdown(0.5)
            await self._server.wait_closed()
            self._server = None

    # -- the core's side ------------------------------------------------------------------------------------
    def deliver(self, inv: Invocation) -> None:
        """Hand an invocation to the runtime (now if it is polling, else on its next poll)."""
        self._current = inv
        poll = self._poll
        if poll is not None and not poll.done():
            poll.set_result(inv)
        else:
            self._queued = inv

    # -- HTTP -------------------------------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == f"{PREFIX}/invocation/next" and method == "GET":
            return await self._next()
        if path == f"{PREFIX}/init/error" and method == "POST":
            return await self._init_error(request)
        if path.startswith(f"{PREFIX}/invocation/") and method == "POST":
            rid, _, kind = path[len(PREFIX) + 12:].rpartition("/")
            if kind in ("response", "error") and rid and "/" not in rid:
                return await self._answer(request, rid, kind)
        return _error(404, "InvalidRequest", f"Unknown Runtime API call: {method} {path}")

    async def _next(self) -> web.StreamResponse:
        cur = self._current
        if (self._poll is not None and not self._poll.done()) or (cur is not None and cur.sent and not cur.result.done()):
            return _error(403, "InvalidStateTransition", "State transition from Invoke to Next is not allowed: the "
                          "current invocation has not been answered")
        if not self.ready:
            self.ready = True
            if not self.init_done.done():
                self.init_done.set_result("ready")
        if self._queued is not None:
            inv, self._queued = self._queued, None
        else:
            self._poll = asyncio.get_running_loop().create_future()
            try:
                inv = await self._poll
            finally:
                self._poll = None
        inv.sent = True
        return web.Response(body=inv.payload, headers=inv.headers)

    async def _answer(self, request: web.BaseRequest, rid: str, kind: str) -> web.StreamResponse:
        inv = self._current
        if inv is None or inv.request_id != rid:
            if rid in self._answered:
                return _error(403, "InvalidStateTransition", f"Invocation {rid} has already been answered")
            return _error(400, "InvalidRequestID", "Invalid request ID")
        if inv.result.done():
            return _error(403, "InvalidStateTransition", f"Invocation {rid} has already been answered")
        body = await _read_limited(request, RESPONSE_LIMIT)
        self._answered.add(rid)
        if body is None:
            inv.result.set_result(("too_large", b"", None))
            return _error(413, "RequestEntityTooLarge",
                          f"Exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).")
        inv.result.set_result((kind, body, request.headers.get("Lambda-Runtime-Function-Error-Type")))
        return web.Response(status=202, body=_OK, content_type=_JSON)

    async def _init_error(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.ready:
            return _error(403, "InvalidStateTransition", "State transition from Ready to InitError is not allowed")
        body = await _read_limited(request, RESPONSE_LIMIT) or b""
        self.init_error = (request.headers.get("Lambda-Runtime-Function-Error-Type"), body)
        if not self.init_done.done():
            self.init_done.set_result("init_error")
        return web.Response(status=202, body=_OK, content_type=_JSON)


async def _read_limited(request: web.BaseRequest, limit: int) -> bytes | None:
    """The whole body (chunked or not), or None past ``limit`` bytes (the rest is drained)."""
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size <= limit:
            parts.append(chunk)
    return b"".join(parts) if size <= limit else None


def error_payload(body: bytes, header_type: str | None) -> tuple[bytes, str]:
    """The Invoke payload and errorType for an /error or /init/error body."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        etype = obj.get("errorType") if isinstance(obj.get("errorType"), str) else header_type
        if etype and "errorType" not in obj:
            obj = {"errorType": etype, **obj}
            body = orjson.dumps(obj)
        return body, etype or "Unhandled"
    etype = header_type or "Unhandled"
    return orjson.dumps({"errorType": etype, "errorMessage": body.decode("utf-8", "replace")}), etype


# -- the environment --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CustomConfig:
    runtime: str  # provided.al2023 / provided.al2
    handler: str
    task_root: Path
    tmp_dir: Path
    function_name: str
    log_group: str
    log_stream: str
    layer_dirs: tuple[Path, ...] = ()
    memory_mb: int = 128
    tmp_quota_mb: int = 512
    version: str = "$LATEST"
    region: str = "us-east-1"
    init_type: str = "on-demand"
    environment: tuple[tuple[str, str], ...] = ()
    credentials: Credentials = field(default_factory=Credentials)


def bootstrap_candidates(cfg: CustomConfig) -> list[Path]:
    return [cfg.task_root / "bootstrap", *(d / "bootstrap" for d in reversed(cfg.layer_dirs))]


def check_bootstrap(cfg: CustomConfig) -> tuple[Path | None, str | None]:
    """(the bootstrap to run, None) or (None, AWS's InvalidEntrypoint message without the RequestId prefix)."""
    candidates = bootstrap_candidates(cfg)
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return None, f"Couldn't find valid bootstrap(s): [{' '.join(map(str, candidates))}]"
    if not os.access(found, os.X_OK):
        return None, f"fork/exec {found}: permission denied"
    with open(found, "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):
        interp = head[2:].split(b"\n", 1)[0].strip(b" \t").split(b" ", 1)[0]
        if not os.access(interp, os.X_OK):  # e.g. "/bin/bash\r" from a CRLF file
            return None, f"fork/exec {found}: no such file or directory"
    return found, None


def runtime_env(cfg: CustomConfig, api_port: int) -> dict[str, str]:
    """The environment of a ``provided.*`` runtime (recorded on AWS; runtimes.md §4): no AWS_EXECUTION_ENV, no
    NODE_PATH; ``AWS_LAMBDA_RUNTIME_API`` is this environment's server (AWS: 169.254.100.1:9001 on al2023,
    127.0.0.1:9001 on al2; a port per environment here)."""
    layers = list(reversed(cfg.layer_dirs))
    variables = {
        "LANG": "en_US.UTF-8",
        "PATH": ":".join(["/usr/local/bin", "/usr/bin/", "/bin", *(f"{d}/bin" for d in layers)]),
        "LD_LIBRARY_PATH": ":".join(["/lib64", "/usr/lib64", str(cfg.task_root), f"{cfg.task_root}/lib",
                                     *(f"{d}/lib" for d in layers)]),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    variables.update(dict(cfg.environment))
    c = cfg.credentials
    variables.update({
        "_HANDLER": cfg.handler, "LAMBDA_TASK_ROOT": str(cfg.task_root), "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api_port}", "AWS_LAMBDA_FUNCTION_NAME": cfg.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": cfg.version, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": cfg.log_group, "AWS_LAMBDA_LOG_STREAM_NAME": cfg.log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": cfg.init_type, "AWS_REGION": cfg.region,
        "AWS_DEFAULT_REGION": cfg.region, "AWS_ACCESS_KEY_ID": c.access_key_id,
        "AWS_SECRET_ACCESS_KEY": c.secret_access_key, "AWS_SESSION_TOKEN": c.session_token, "TZ": ":UTC",
        "TMPDIR": str(cfg.tmp_dir),
    })
    return variables


class CustomRuntime:
    """One ``provided.*`` execution environment: its bootstrap process and its Runtime API server."""

    def __init__(self, cfg: CustomConfig, zygote: ZygoteClient | None = None) -> None:
        self.cfg = cfg
        self.api = RuntimeApi()
        self.zygote = zygote  # start the bootstrap through it (the executor's), else directly (runtime_process)
        self.proc: RuntimeChild | None = None
        self.peak_rss_kb = 0
        self._tmp_watch: TmpWatch | None = None
        self._check_tmp_mb = cfg.tmp_quota_mb  # 0 when a tmpfs /tmp enforces the quota itself
        self._pending: asyncio.Future | None = None  # the result of the invocation in flight
        self._loop = asyncio.get_running_loop()

    def _on_exit(self) -> None:
        _settle(self.api.init_done, "exit")
        if self._pending is not None:  # a little later: an answer sent just before exiting arrives first
            self._loop.call_later(0.05, _settle, self._pending, ("exit", b"", None))

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    async def start(self, init_timeout_s: float, request_id: str = "") -> InitResult:
        """Find and start the bootstrap; Init ends at its first ``/next`` (Init Duration: start -> that call)."""
        t0 = time.perf_counter()
        bootstrap, problem = check_bootstrap(self.cfg)
        if bootstrap is None:
            payload = platform_error("Runtime.InvalidEntrypoint", request_id, problem or "")
            fail = RawOutcome(Kind.INIT_ERROR, payload, "Runtime.InvalidEntrypoint", 0.0, 0, b"", True)
            return InitResult(False, fail, 0.0, None, b"", 0)
        port = await self.api.start()
        if self.zygote is not None:  # in its sandbox (isolation.py): /tmp a tmpfs at the quota where available
            cfg = self.cfg
            sb, tmp_path, self._check_tmp_mb = isolation.env_sandbox(
                self.zygote.isolation, keep=[str(cfg.task_root), *map(str, cfg.layer_dirs)], tmp_dir=cfg.tmp_dir,
                tmp_mb=cfg.tmp_quota_mb, memory_mb=cfg.memory_mb)
            env = runtime_env(dataclasses.replace(cfg, tmp_dir=Path(tmp_path)), port)
            self.proc = await ZygoteProcess.start(self.zygote, [str(bootstrap)], env=env,
                                                  cwd=str(self.cfg.task_root), name="bootstrap", sb=sb)
        else:
            self.proc = await ChildProcess.start([str(bootstrap)], env=runtime_env(self.cfg, port),
                                                 cwd=str(self.cfg.task_root), name="bootstrap")
        if self._check_tmp_mb:
            self.proc.set_file_size_limit(self._check_tmp_mb * 1024 * 1024)
        init_done = self.api.init_done
        self.proc.on_exit(self._on_exit)
        try:
            async with asyncio.timeout(init_timeout_s):
                outcome = await asyncio.shield(init_done)
        except TimeoutError:
            outcome = "timeout"
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.peak_rss_kb = self.proc.peak_rss_kb()
        if outcome == "ready" and not self._check_tmp_mb:
            return InitResult(True, None, elapsed, None, self.proc.take_output(), self.peak_rss_kb)
        if outcome == "ready":
            self._tmp_watch = TmpWatch(str(self.cfg.tmp_dir), ctypes.CDLL(None, use_errno=True))
            return InitResult(True, None, elapsed, None, self.proc.take_output(), self.peak_rss_kb)
        if outcome == "init_error" and self.api.init_error is not None:
            payload, etype = error_payload(self.api.init_error[1], self.api.init_error[0])
            await self.proc.wait(2.0)  # the runtime normally exits after /init/error
            self.proc.kill()
            fail = RawOutcome(Kind.INIT_ERROR, payload, etype, elapsed, self.peak_rss_kb, self.proc.take_output(), True)
            return InitResult(False, fail, elapsed, None, fail.output, self.peak_rss_kb)
        self.proc.kill()
        status = await self.proc.wait(2.0)
        output = self.proc.take_output()
        if outcome == "timeout":
            fail = RawOutcome(Kind.TIMEOUT, b"", "Sandbox.Timedout", elapsed, self.peak_rss_kb, output, True)
        else:
            fail = RawOutcome(Kind.EXIT, platform_error("Runtime.ExitError", request_id, describe_exit(status)),
                              "Runtime.ExitError", elapsed, self.peak_rss_kb, output, True)
        return InitResult(False, fail, elapsed, None, output, self.peak_rss_kb)

    async def invoke(self, request_id: str, payload: bytes, *, invoked_arn: str, timeout_s: float,
                     client_context: str | None = None, budget_s: float | None = None,
                     trace: str | None = None) -> RawOutcome:
        """One invocation through the Runtime API. ``trace``: the invocation's X-Ray trace header (the caller's
        ``X-Amzn-Trace-Id`` or an Active tracing header), sent as ``Lambda-Runtime-Trace-Id``; without one a fresh
        non-sampled header, as the Runtime API always carries one
        (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-next)."""
        assert self.proc is not None
        if not self.proc.alive:  # it died while idle: nothing was sent, the caller retries on a new environment
            return RawOutcome(Kind.STALE, b"", None, 0.0, 0, b"", True)
        budget = timeout_s if budget_s is None else budget_s
        deadline_ms = int((time.time() + budget) * 1000)
        headers = {"Lambda-Runtime-Aws-Request-Id": request_id, "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                   "Lambda-Runtime-Invoked-Function-Arn": invoked_arn, "Lambda-Runtime-Trace-Id": trace or trace_header(),
                   "Content-Type": _JSON}
        if client_context:
            headers["Lambda-Runtime-Client-Context"] = client_context
        result: asyncio.Future = self._loop.create_future()
        inv = Invocation(request_id, payload or b"{}", headers, result)
        self._pending = result
        watch = MemoryWatch(self.proc, self.cfg.memory_mb * 1024)
        t0 = time.perf_counter()
        self.api.deliver(inv)
        watch.arm()
        try:
            async with asyncio.timeout(budget):
                kind, body, etype = await result
        except TimeoutError:
            kind, body, etype = "timeout", b"", None
        finally:
            watch.disarm()
            self._pending = None
        duration = (time.perf_counter() - t0) * 1000.0
        self.peak_rss_kb = max(self.peak_rss_kb, self.proc.peak_rss_kb())
        if kind == "response" or kind == "error":
            out, reset = Kind.OK if kind == "response" else Kind.ERROR, False
            err = None
            if kind == "error":
                body, err = error_payload(body, etype)
            usage = self._tmp_watch.usage() if self._tmp_watch is not None else 0
            quota = self.cfg.tmp_quota_mb * 1024 * 1024
            if usage > quota:
                out, err, reset = Kind.ERROR, "Runtime.EphemeralStorageExceeded", True
                body = orjson.dumps({"errorType": err, "errorMessage": (
                    f"RequestId: {request_id} Error: /tmp usage {usage / 1048576:.1f} MB exceeds the ephemeral "
                    f"storage size of {self.cfg.tmp_quota_mb} MB; the environment was reset and /tmp wiped")})
            return RawOutcome(out, body, err, duration, self.peak_rss_kb, self.proc.take_output(), reset)
        if kind == "too_large":
            self.proc.kill()
            return RawOutcome(Kind.ERROR, orjson.dumps({
                "errorMessage": f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} "
                                "bytes).", "errorType": "Function.ResponseSizeTooLarge"}),
                "Function.ResponseSizeTooLarge", duration, self.peak_rss_kb, self.proc.take_output(), True)
        if kind == "timeout":
            self.proc.kill()
            await self.proc.wait(2.0)
            return RawOutcome(Kind.TIMEOUT, platform_error("Sandbox.Timedout", request_id,
                              f"Task timed out after {timeout_s:.2f} seconds"), "Sandbox.Timedout",
                              timeout_s * 1000.0, self.peak_rss_kb, self.proc.take_output(), True)
        status = await self.proc.wait(2.0)
        output = self.proc.take_output()
        if watch.killed_rss_kb is not None:
            return RawOutcome(Kind.OOM, platform_error("Runtime.OutOfMemory", request_id,
                              "Runtime exited with error: signal: killed"), "Runtime.OutOfMemory", duration,
                              max(watch.killed_rss_kb, self.cfg.memory_mb * 1024), output, True)
        return RawOutcome(Kind.EXIT, platform_error("Runtime.ExitError", request_id, describe_exit(status)),
                          "Runtime.ExitError", duration, self.peak_rss_kb, output, True)

    async def stop(self, *, graceful: bool) -> None:
        """SIGTERM and up to 2 s (AWS's shutdown budget) when graceful, then SIGKILL; the server closes."""
        if self.proc is not None:
            await self.proc.stop(2.0 if graceful else 0.0)
        if self._tmp_watch is not None:
            self._tmp_watch.close()
            self._tmp_watch = None
        await self.api.close()


def _settle(fut: asyncio.Future, value: object) -> None:
    """Resolve ``fut`` unless something else did first (the runtime's answer can race its own exit)."""
    if not fut.done():
        fut.set_result(value)
