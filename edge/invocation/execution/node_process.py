"""Node.js execution environments seen from the core: the ``node`` process running the shim
(:mod:`edge.invocation.runtime.node`), what is fixed when it starts, its configuration, and one invocation at a time.

A :class:`NodeProcess` is started *before* it knows its function (:meth:`NodeProcess.spawn`, a "spare": Node's
boot, ~40-70 ms, is paid ahead of time) and then given one (:meth:`NodeProcess.init`: the INIT frame; the shim
loads the handler). Node.js cannot be forked from a zygote like the Python worker (V8's and libuv's threads do not
survive ``fork``), so pre-started processes are the equivalent. What is fixed at start is the spare's
:class:`NodeLaunch`: the Node major, the V8 heap flags (from MemorySize), ``NODE_OPTIONS``, the experimental-feature
flags, ``AWS_LAMBDA_EXEC_WRAPPER`` and a ``NODE_PATH`` / ``LD_LIBRARY_PATH`` the user set; a spare only serves
functions with the same launch.

``NODE_PATH`` without Node's private ``Module._initPaths()``: CommonJS reads ``NODE_PATH`` once, when ``node``
starts, and a spare does not know its function yet. So every process gets a *slot*, a directory of its own, and
starts with ``NODE_PATH`` (and ``LD_LIBRARY_PATH``, which the dynamic loader also reads only at start) naming fixed
places inside it, in AWS's order (:func:`slot_paths`): ``<slot>/opt4 ... <slot>/opt0`` (one per attachable layer,
later layers first: a later layer overrides an earlier one, as it would overwrite it in /opt) and
``<slot>/task``. At INIT the core makes those entries symbolic links to the function's layers and task root
(:func:`link_slot`); entries for layers the function does not have stay absent, and Node skips missing folders. The
function sees the ``NODE_PATH`` that really applies. A user-set ``NODE_PATH`` is used as it is (as AWS's bootstrap
does) and keys the spare.

ES modules ignore ``NODE_PATH`` in plain Node.js but not on Lambda; the shim's resolve hook
(``runtime/node/esm_hooks.mjs``, ``module.register``) adds it. Registering it costs ~90 ms of the process's boot
(measured: boot p50 ~150 ms with it, ~55 ms without, Node 18-24), so it is part of the launch: only processes for
functions with layers or their own ``NODE_PATH`` register it (``esm_hook``), at boot, where a pre-started process
has paid it before the function's Init (a layered function's Init went from ~72 ms to ~5 ms).

The managed runtime's start-up, as reproduced here (AWS's ``/var/runtime/bootstrap`` for Node.js and
https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html, "Disabled experimental features";
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper for the wrapper):
``node --expose-gc --max-http-header-size 81920 --max-semi-space-size=M/20 --max-old-space-size=M-M/10 ...``
(the heap flags are left out on Node >= 20 when ``NODE_OPTIONS`` names either; Node 18's bootstrap always adds
them), ``--no-experimental-require-module`` on 20 and 22 and ``--no-experimental-detect-module`` on 22 unless
``NODE_OPTIONS`` carries the positive flag; a wrapper runs as ``wrapper node args...`` through ``sh -c 'exec'``,
so a missing one exits 127 and a non-executable one 126 (``Runtime.ExitError``, as AWS).

Outcomes are :class:`edge.invocation.execution.environment.RawOutcome` values, exactly as the Python worker's
environment produces them, so the executor formats logs and responses the same way for both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from edge.invocation.execution import isolation
from edge.invocation.execution.environment import (
    KIND_ERROR,
    KIND_OK,
    Kind,
    RawOutcome,
    Waiter,
    describe_exit,
    platform_error,
)
from edge.invocation.execution.node_dist import NodeDist
from edge.invocation.execution.runtime_process import (
    SAMPLE_EVERY_S,
    WATCH_AFTER_S,
    ChildProcess,
    RuntimeChild,
    ZygoteProcess,
)
from edge.invocation.execution.worker_setup import Credentials
from edge.invocation.execution.zygote_client import ZygoteClient
from edge.invocation.models import MAX_LAYERS
from edge.invocation.runtime import logformat, protocol
from edge.invocation.runtime.node import K_HELLO, K_INIT, NODE_RUNTIME_DIR, SHIM
from edge.invocation.runtime.protocol import CHANNEL_FD

BOOT_TIMEOUT_S = 10.0
_LOST = object()
_TIMED_OUT = object()
_SPAWN_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True, slots=True)
class NodeLaunch:
    """What a ``node`` process is started with, hence the key of its spare pool."""

    major: int
    memory_mb: int = 128
    node_options: str = ""  # the function's NODE_OPTIONS ("" when unset)
    exec_wrapper: str = ""  # the function's AWS_LAMBDA_EXEC_WRAPPER ("" when unset)
    node_path: str = ""  # the function's own NODE_PATH ("" when unset: the slot's, see slot_paths)
    library_path: str = ""  # the function's own LD_LIBRARY_PATH ("" when unset: the slot's)
    esm_hook: bool = False  # NODE_PATH resolution for ES modules (the function has layers or its own NODE_PATH)

    @classmethod
    def for_function(cls, major: int, memory_mb: int, environment: dict[str, str], *,
                     layers: bool = False) -> NodeLaunch:
        node_path = environment.get("NODE_PATH", "")
        return cls(major, memory_mb, environment.get("NODE_OPTIONS", ""),
                   environment.get("AWS_LAMBDA_EXEC_WRAPPER", ""), node_path,
                   environment.get("LD_LIBRARY_PATH", ""), layers or bool(node_path))

    def flags(self) -> list[str]:
        m, opts = self.memory_mb, self.node_options
        out = ["--expose-gc", "--max-http-header-size", "81920"]
        if self.major < 20 or not ("--max-semi-space-size" in opts or "--max-old-space-size" in opts):
            out += [f"--max-semi-space-size={m // 20}", f"--max-old-space-size={m - m // 10}"]
        if self.major in (20, 22) and "--experimental-require-module" not in opts.replace("--no-experimental", ""):
            out.append("--no-experimental-require-module")
        if self.major == 22 and "--experimental-detect-module" not in opts.replace("--no-experimental", ""):
            out.append("--no-experimental-detect-module")
        return out

    def argv(self, node: Path, channel_fd: int) -> list[str]:
        cmd = [str(node), *self.flags(), str(SHIM), str(channel_fd)]
        if self.exec_wrapper:
            return ["/bin/sh", "-c", 'exec "$@"', "sh", self.exec_wrapper, *cmd]
        return cmd

    def spawn_env(self, slot: Path) -> dict[str, str]:
        node_path, library_path = slot_paths(self.major, slot)
        node_path = self.node_path or node_path
        env = {"PATH": _SPAWN_PATH, "LANG": "en_US.UTF-8", "TZ": ":UTC",
               "NODE_PATH": node_path, "LD_LIBRARY_PATH": self.library_path or library_path}
        if self.esm_hook:  # the folders the shim's ES-module resolve hook searches: NODE_PATH but the runtime's
            env["EDGELAB_ESM_FOLDERS"] = ":".join(  # own and the task root (Node's resolver walks that one itself)
                d for d in node_path.split(":") if d and not d.startswith(str(NODE_RUNTIME_DIR))
                and d != str(slot / "task"))
        if self.node_options:
            env["NODE_OPTIONS"] = self.node_options
        return env


def slot_paths(major: int, slot: Path) -> tuple[str, str]:
    """(NODE_PATH, LD_LIBRARY_PATH) of a process whose slot is ``slot`` (see the module docstring).

    AWS's orders: NODE_PATH recorded on nodejs24.x, ``/opt/nodejs/node24/node_modules:/opt/nodejs/node_modules:
    /var/runtime/node_modules:/var/runtime:/var/task``; LD_LIBRARY_PATH ``/var/lang/lib:/lib64:/usr/lib64:
    /var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib``
    (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html#packaging-layers-paths,
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime). Layers
    are extracted separately here, not merged into one /opt, so each has its own slot entry; later layers first."""
    opts = [slot / f"opt{i}" for i in reversed(range(MAX_LAYERS))]
    node_path = [*(f"{o}/nodejs/node{major}/node_modules" for o in opts), *(f"{o}/nodejs/node_modules" for o in opts),
                 f"{NODE_RUNTIME_DIR}/node_modules", str(NODE_RUNTIME_DIR), str(slot / "task")]
    library_path = [str(NODE_RUNTIME_DIR), str(slot / "task"), f"{slot}/task/lib", *(f"{o}/lib" for o in opts)]
    return ":".join(node_path), ":".join(library_path)


def link_slot(slot: Path, task_root: Path | str, layer_dirs: list[str] | tuple[str, ...]) -> None:
    """Point ``slot``'s entries at a function's task root and layers (attach order; see :func:`slot_paths`).
    A few syscalls: done on the event loop, like the pool's mkdir of a sandbox."""
    if len(layer_dirs) > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS} layers, got {len(layer_dirs)}")
    slot.mkdir(parents=True, exist_ok=True)
    targets = {"task": str(task_root), **{f"opt{i}": str(d) for i, d in enumerate(layer_dirs)}}
    for name in ("task", *(f"opt{i}" for i in range(MAX_LAYERS))):
        link = slot / name
        if link.is_symlink():
            link.unlink()
        if name in targets:
            link.symlink_to(targets[name], target_is_directory=True)


def remove_slot(slot: Path) -> None:
    """Remove a slot (its links, never what they point to: rmtree does not follow symbolic links)."""
    shutil.rmtree(slot, ignore_errors=True)


def default_slots_root() -> Path:
    """Where slots go when the caller names no directory (tests, benchmarks): a per-user temp directory."""
    return Path(tempfile.gettempdir()) / f"edgelab-node-slots-{os.getuid()}"


def init_config(*, runtime: str, handler: str, task_root: Path, layer_dirs: list[Path] | tuple[Path, ...] = (),
                memory_mb: int = 128, tmp_dir: Path, tmp_quota_mb: int = 512, function_name: str,
                version: str = "$LATEST", log_group: str, log_stream: str, init_type: str = "on-demand",
                region: str = "us-east-1", environment: dict[str, str] | None = None, node_bin: Path,
                credentials: Credentials | None = None) -> dict:
    """The INIT frame's meta: the function's environment variables (defaults, then the user's, then the reserved
    ones, which always win; https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-
    envvars-runtime) and what the shim needs to load and run it."""
    creds = credentials or Credentials()
    layers = list(reversed(layer_dirs))
    variables: dict[str, str] = {
        "LANG": "en_US.UTF-8",
        "PATH": ":".join([str(node_bin.parent), "/usr/local/bin", "/usr/bin/", "/bin", *(f"{d}/bin" for d in layers)]),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    # NODE_PATH and LD_LIBRARY_PATH: the user's when set (as the managed bootstrap does), else the ones the process
    # started with (NodeProcess.init fills them in: they name its slot)
    variables.update(environment or {})
    variables.update({
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(NODE_RUNTIME_DIR),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "TZ": ":UTC",
        "TMPDIR": str(tmp_dir),
        "PWD": str(task_root),
    })
    return {"t": K_INIT, "env": variables, "task_root": str(task_root), "handler": handler, "runtime": runtime,
            "memory_mb": memory_mb, "tmp": str(tmp_dir), "tmp_quota_mb": tmp_quota_mb,
            "layers": [str(d) for d in layer_dirs]}


def init_start_line(node_version: str, region: str) -> str:
    """INIT_START naming the Node.js that really runs (``nodejs:20.18.0``), never a pretended AWS build number."""
    return logformat.init_start_line(f"nodejs:{node_version}", region)


_K_INVOKE, _K_RESULT, _K_OOM = protocol.K_INVOKE, protocol.K_RESULT, protocol.K_OOM
_TIMER_SLACK_S = 0.001  # libuv timers have millisecond resolution: a timer may fire up to 1 ms early


class _Channel(asyncio.Protocol):
    """The core's end of the socketpair: each complete frame (:class:`protocol.FrameReader`) goes to the process."""

    __slots__ = ("owner", "reader")

    def __init__(self, owner: NodeProcess) -> None:
        self.owner = owner
        self.reader = protocol.FrameReader(owner._on_frame)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._resolve(_LOST)


class NodeStartError(RuntimeError):
    """``node`` did not come up (a bad ``NODE_OPTIONS``, a missing exec wrapper...): what it wrote, how it ended."""

    def __init__(self, message: str, output: bytes, status: int | None, timed_out: bool) -> None:
        super().__init__(message)
        self.output = output
        self.status = status
        self.timed_out = timed_out


@dataclass(slots=True)
class InitResult:
    ok: bool
    failure: RawOutcome | None  # Kind.INIT_ERROR / TIMEOUT / EXIT when not ok
    init_ms: float  # the function's Init as the core saw it (INIT sent -> READY)
    function_init_ms: float | None  # the same, measured inside the shim (top-level await included)
    output: bytes  # Init output (console lines of module scope)
    rss_kb: int


class NodeProcess:
    """One ``node`` process running the shim; one invocation at a time (see the module docstring)."""

    def __init__(self, launch: NodeLaunch, dist: NodeDist, slot: Path) -> None:
        self.launch = launch
        self.dist = dist
        self.slot = slot  # see the module docstring
        self.proc: RuntimeChild | None = None
        self.boot_ms = 0.0  # spawn -> HELLO
        self.node_version = ""
        self.peak_rss_kb = 0
        self.oom_rss_kb: int | None = None  # from the shim's K_OOM frame
        self.killed_rss_kb: int | None = None  # the core's RSS watch killed it at this RSS
        self.memory_mb = launch.memory_mb
        self._timer: asyncio.TimerHandle | None = None
        self._sent_at = 0.0
        self._deadline = 0.0
        self._transport: asyncio.Transport | None = None
        self._waiter: Waiter | None = None  # a future (boot, init, invoke) or a Submission (send)
        self._loop = asyncio.get_running_loop()

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    @classmethod
    async def spawn(cls, launch: NodeLaunch, dist: NodeDist, *, boot_timeout_s: float = BOOT_TIMEOUT_S,
                    cwd: str = "/", zygote: ZygoteClient | None = None, slots_root: Path | None = None) -> NodeProcess:
        """Start ``node`` with the shim and wait for its HELLO (a spare, ready for :meth:`init`): through the
        ``zygote`` when given (what the executor does; see :mod:`.runtime_process`), else directly. Its slot is a
        new directory under ``slots_root`` (default :func:`default_slots_root`). Raises RuntimeError with the
        process's output if it does not start (e.g. a bad ``NODE_OPTIONS``), ZygoteError if the zygote cannot
        fork."""
        slot = (slots_root or default_slots_root()) / uuid.uuid4().hex
        slot.mkdir(parents=True)
        self = cls(launch, dist, slot)
        core, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        t0 = time.perf_counter()
        try:
            core.setblocking(False)
            self._transport, _ = await self._loop.create_unix_connection(lambda: _Channel(self), sock=core)
            self._waiter = w = self._loop.create_future()
            name = f"node{launch.major}"
            if zygote is not None:  # in a sandbox (isolation.py) whose function part is attached at INIT
                sb = isolation.spare_sandbox(zygote.isolation, memory_mb=launch.memory_mb,
                                             keep=[str(slot), str(NODE_RUNTIME_DIR), str(dist.binary.resolve().parent)])
                self.proc = await ZygoteProcess.start(zygote, launch.argv(dist.binary, CHANNEL_FD),
                                                      env=launch.spawn_env(slot), cwd=cwd, channel_fd=child.fileno(),
                                                      name=name, sb=sb)
            else:
                self.proc = await ChildProcess.start(launch.argv(dist.binary, child.fileno()),
                                                     env=launch.spawn_env(slot), cwd=cwd,
                                                     pass_fds=(child.fileno(),), name=name, tell_parent=True)
            child.close()
            self.proc.on_exit(self._lost_soon)
            got = await self._await(w, boot_timeout_s)
        except BaseException:
            child.close()
            await self.stop(graceful=False)
            raise
        if type(got) is not tuple or got[0].get("t") != K_HELLO:
            output = self.proc.output() if self.proc is not None else b""
            await self.stop(graceful=False)
            reason = "did not start in time" if got is _TIMED_OUT else describe_exit(self.proc.status if self.proc
                                                                                     else None)
            raise NodeStartError(f"Node.js {dist.version} ({' '.join(launch.flags())}) {reason}: "
                                 f"{output.decode('utf-8', 'replace').strip()[-2000:]}", output,
                                 self.proc.status if self.proc is not None else None, got is _TIMED_OUT)
        self.boot_ms = (time.perf_counter() - t0) * 1000.0
        self.node_version = str(got[0].get("v", "")).lstrip("v")
        self.peak_rss_kb = int(got[0].get("rss", 0))
        return self

    # -- frames -------------------------------------------------------------------------------------------------
    def _on_frame(self, frame: tuple[dict, bytes, bytes]) -> None:
        if frame[0]["t"] == _K_OOM:
            self.oom_rss_kb = int(frame[0].get("rss", 0))
            return
        self._resolve(frame)

    def _resolve(self, value: object) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(value)

    def _lost_soon(self) -> None:
        """The process exited: the waiter gets ``_LOST`` shortly after, unless a frame still in the channel (the
        last words of a process that answered, then exited) resolves it first."""
        self._loop.call_later(0.05, self._resolve, _LOST)

    async def _await(self, w: asyncio.Future, timeout_s: float) -> object:
        def expire() -> None:
            if not w.done():
                w.set_result(_TIMED_OUT)

        timer = self._loop.call_later(timeout_s, expire)
        try:
            return await w
        finally:
            timer.cancel()
            self._waiter = None

    def _send(self, meta: dict, body: bytes = b"") -> bool:
        t = self._transport
        if t is None or t.is_closing():
            return False
        t.writelines(protocol.encode(meta, body))
        return True

    # -- init and invoke ----------------------------------------------------------------------------------------
    async def init(self, cfg: dict, timeout_s: float) -> InitResult:
        """Give this (spare) process its function: its slot's links (see the module docstring), then the INIT
        frame. On failure the process is gone (or killed, on a timeout)."""
        assert self.proc is not None
        layers = cfg.get("layers") or []
        link_slot(self.slot, cfg["task_root"], layers)
        node_path, library_path = slot_paths(self.launch.major, self.slot)
        env = cfg["env"]
        env.setdefault("NODE_PATH", self.launch.node_path or node_path)
        env.setdefault("LD_LIBRARY_PATH", self.launch.library_path or library_path)
        self.memory_mb = int(cfg["memory_mb"])
        self.proc.set_file_size_limit(int(cfg.get("tmp_quota_mb") or 0) * 1024 * 1024)
        self._waiter = w = self._loop.create_future()
        t0 = time.perf_counter()
        if not self._send(cfg):
            w.set_result(_LOST)
        got = await self._await(w, timeout_s)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if type(got) is tuple and got[0]["t"] == protocol.K_READY:
            self.peak_rss_kb = int(got[0].get("rss", 0))
            return InitResult(True, None, elapsed, got[0].get("im"), got[2], self.peak_rss_kb)
        if type(got) is tuple and got[0]["t"] == protocol.K_INIT_ERROR:
            err = orjson.loads(got[1])
            fail = RawOutcome(Kind.INIT_ERROR, got[1], str(err.get("errorType")), elapsed,
                              int(got[0].get("rss", 0)), got[2], True)
            await self.proc.wait(2.0)
            return InitResult(False, fail, elapsed, None, got[2], fail.max_rss_kb)
        self.proc.kill()
        await self.proc.wait(2.0)
        output = self.proc.output()
        kind, etype = (Kind.TIMEOUT, "Sandbox.Timedout") if got is _TIMED_OUT else (Kind.EXIT, "Runtime.ExitError")
        return InitResult(False, RawOutcome(kind, b"", etype, elapsed, 0, output, True), elapsed, None, output, 0)

    # One timer per process, re-armed lazily (as Environment._arm_deadline): it fires at the earlier of the
    # in-flight invocation's deadline and the moment it turns WATCH_AFTER_S old; then it times the invocation out,
    # or samples the RSS (every SAMPLE_EVERY_S) and SIGKILLs the group past MemorySize. A stream of short
    # invocations costs no timer work: the armed timer fires at most once per WATCH_AFTER_S.
    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self._loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        w = self._waiter
        if w is None or w.done() or self.proc is None:
            return
        now = self._loop.time()
        if now + _TIMER_SLACK_S >= self._deadline:
            w.set_result(_TIMED_OUT)
            return
        if now - self._sent_at >= WATCH_AFTER_S - _TIMER_SLACK_S:
            self.proc.bound_output()
            rss = self.proc.rss_kb()
            if rss > self.memory_mb * 1024:
                self.killed_rss_kb = rss
                self.proc.kill()  # its exit resolves the waiter: an OOM outcome
                return
            nxt = now + SAMPLE_EVERY_S
        else:
            nxt = self._sent_at + WATCH_AFTER_S
        self._timer = self._loop.call_at(min(nxt, self._deadline), self._tick)

    def send(self, request_id: str, payload: bytes, *, invoked_arn: str, timeout_s: float,
             client_context: str | None, fn_override: str | None,
             log: tuple[list[str] | None, float | None] | None, budget_s: float | None, trace: str | None,
             waiter: Waiter) -> None:
        """Send one invocation (the first half of :meth:`invoke`, as ``Environment.send``): ``waiter`` gets, through
        ``set_result`` from the event loop (never from inside this call), the shim's answer frame (for
        :meth:`outcome`) or a fault (for :meth:`fault`): the deadline passed, the process was lost."""
        budget = timeout_s if budget_s is None else budget_s
        fields: dict = {"t": _K_INVOKE, "id": request_id, "dl": int((time.time() + budget) * 1000),
                        "arn": invoked_arn, "cc": client_context, "fn": fn_override}
        if trace is not None:
            fields["tr"] = trace
        if log is not None:
            fields["lg"] = 1
            if log[0] is not None or log[1] is not None:
                fields["pre"], fields["init"] = log
        loop = self._loop
        self._waiter = waiter
        self._sent_at = now = loop.time()
        self._deadline = now + budget
        self._arm(min(now + WATCH_AFTER_S, self._deadline))
        transport = self._transport
        if transport is None or transport.is_closing():
            loop.call_soon(self._resolve, _LOST)
        else:
            transport.writelines(protocol.encode(fields, payload))  # one writev of header, meta, payload

    def outcome(self, got: tuple[dict, bytes, bytes], log: tuple[list[str] | None, float | None] | None) -> RawOutcome:
        """The outcome of a completed invocation from the shim's answer frame (``log`` as given to :meth:`send`)."""
        self._waiter = None
        m = got[0]
        self.peak_rss_kb = m["rss"]
        output, record = (got[2], None) if log is None else (b"", got[2])
        if m["t"] == _K_RESULT:
            return RawOutcome(KIND_OK, got[1], None, m["d"], m["rss"], output, False, record)
        return RawOutcome(KIND_ERROR, got[1], m["et"], m["d"], m["rss"], output, bool(m.get("reset")), record)

    async def fault(self, got: object, request_id: str, timeout_s: float) -> RawOutcome:
        """The outcome of an invocation the shim never answered (``got``: what the waiter got instead of a frame)."""
        self._waiter = None
        return await self._fault(got, request_id, timeout_s, (self._loop.time() - self._sent_at) * 1000.0)

    async def invoke(self, request_id: str, payload: bytes, *, invoked_arn: str, timeout_s: float,
                     client_context: str | None = None, fn_override: str | None = None,
                     log: tuple[list[str] | None, float | None] | None = None,
                     budget_s: float | None = None, trace: str | None = None) -> RawOutcome:
        """One invocation (same contract as ``Environment.invoke``: faults are values, ``reset`` = discard):
        :meth:`send`, then :meth:`outcome` or :meth:`fault`. ``log``: None for the raw output, else ``(lines before
        START or None, Init Duration or None)`` to get the invocation's log record formatted by the shim.
        ``trace``: the invocation's X-Ray trace header, which the shim puts in ``process.env._X_AMZN_TRACE_ID`` for
        this invocation only (unset when None), as AWS's Node.js runtime interface client does with
        ``Lambda-Runtime-Trace-Id``."""
        assert self.proc is not None
        w = self._loop.create_future()
        self.send(request_id, payload, invoked_arn=invoked_arn, timeout_s=timeout_s, client_context=client_context,
                  fn_override=fn_override, log=log, budget_s=budget_s, trace=trace, waiter=w)
        try:
            got = await w
        finally:
            self._waiter = None
        if type(got) is tuple:
            return self.outcome(got, log)
        return await self.fault(got, request_id, timeout_s)

    async def _fault(self, got: object, request_id: str, timeout_s: float, elapsed: float) -> RawOutcome:
        proc = self.proc
        assert proc is not None
        if got is _TIMED_OUT:
            proc.kill()
            await proc.wait(2.0)
            return RawOutcome(Kind.TIMEOUT, platform_error("Sandbox.Timedout", request_id,
                              f"Task timed out after {timeout_s:.2f} seconds"), "Sandbox.Timedout",
                              timeout_s * 1000.0, self.peak_rss_kb, proc.take_output(), True)
        status = await proc.wait(2.0)
        output = proc.take_output()
        oom = self.oom_rss_kb if self.oom_rss_kb is not None else self.killed_rss_kb
        if oom is not None:
            return RawOutcome(Kind.OOM, platform_error("Runtime.OutOfMemory", request_id,
                              "Runtime exited with error: signal: killed"), "Runtime.OutOfMemory", elapsed,
                              max(oom, self.memory_mb * 1024), output, True)
        return RawOutcome(Kind.EXIT, platform_error("Runtime.ExitError", request_id, describe_exit(status)),
                          "Runtime.ExitError", elapsed, self.peak_rss_kb, output, True)

    # -- shutdown -----------------------------------------------------------------------------------------------
    async def stop(self, *, graceful: bool) -> None:
        """Graceful: close the channel (the shim exits by itself), SIGKILL after 2 s; else SIGKILL at once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self.proc is None:
            remove_slot(self.slot)
            return
        if graceful:
            await self.proc.wait(2.0)
        self.proc.kill()
        await self.proc.wait(5.0)
        self.proc.close()
        remove_slot(self.slot)

