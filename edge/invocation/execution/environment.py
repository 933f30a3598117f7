"""One execution environment (a forked worker process serving one invocation at a time), seen from the core.

State machine (``EnvState``; every change goes through :meth:`Environment._transition`, which raises
:class:`InvalidState` naming the current state)::

    STARTING --ready--> READY <--release-- BUSY
        |                 |  --acquire-->   |
        +----------+------+-----------------+
                   v
               STOPPING --> STOPPED

An environment is discarded (never reused) after a timeout, a crash, an OOM kill, an Init failure, an oversized
response, or a cancelled invocation (the worker would still be running the handler). Platform error records
(``Sandbox.Timedout``, ``Runtime.ExitError``, ``Runtime.OutOfMemory``) are built here; handler and Init error
records come from the worker unchanged.
"""

from __future__ import annotations

import asyncio
import enum
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from edge.invocation.execution.runtimes import python_version, warn_python_mismatch
from edge.invocation.execution.worker_setup import RuntimeHost, worker_config
from edge.invocation.execution.zygote_client import ZygoteClient
from edge.invocation.models import FunctionSpec
from edge.invocation.runtime import protocol


class EnvState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    STOPPED = "stopped"


_ALLOWED: dict[EnvState, frozenset[EnvState]] = {
    EnvState.STARTING: frozenset({EnvState.READY, EnvState.STOPPING}),
    EnvState.READY: frozenset({EnvState.BUSY, EnvState.STOPPING}),
    EnvState.BUSY: frozenset({EnvState.READY, EnvState.STOPPING}),
    EnvState.STOPPING: frozenset({EnvState.STOPPED}),
    EnvState.STOPPED: frozenset(),
}


class InvalidState(RuntimeError):
    """An environment was asked to make a transition its current state does not allow (a core bug)."""


class Kind(enum.Enum):
    OK = "ok"
    ERROR = "error"  # handler exception / marshal error / oversized response / tmp quota (error record payload)
    INIT_ERROR = "init_error"
    TIMEOUT = "timeout"
    EXIT = "exit"
    OOM = "oom"
    STALE = "stale"  # the worker had died (while idle) before this invocation was sent: retry elsewhere


# The members every warm invocation compares against, bound once (read by the pool and the executor too). On
# Python 3.11 reading a member through its class (``EnvState.READY``) runs the attribute lookup through
# EnumType.__getattr__'s slot wrapper: ~1,100 instructions (~180 ns) per read, and a warm invocation made nine of
# them (~10k instructions, ~8 % of the core's share: callgrind, warm Executor.invoke calls; 3.12 dropped that hook).
ENV_READY, ENV_BUSY = EnvState.READY, EnvState.BUSY
KIND_OK, KIND_ERROR = Kind.OK, Kind.ERROR


@dataclass(slots=True)
class RawOutcome:
    """What one invocation (or Init) produced, before logs and metrics are attached."""

    kind: Kind
    payload: bytes
    error_type: str | None
    duration_ms: float
    max_rss_kb: int
    output: bytes  # the function's stdout/stderr for this invocation (b"" when the worker sent ``record``)
    reset: bool  # the environment must be discarded
    record: bytes | None = None  # the invocation's log record, formatted by the worker (see Environment.invoke)


_TIMER_SLACK_S = 0.001  # libuv timers have millisecond resolution: a timer may fire up to 1 ms early
_LOST = object()
_TIMED_OUT = object()


class Waiter(Protocol):
    """What waits for an environment's answer: an ``asyncio.Future``, or an object with the same two methods that
    acts on the answer at once (``Executor.submit``: no task, no future)."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...


# Environment.invoke's ``log`` for a warm invocation: the worker formats its record
WORKER_LOG: tuple[list[str] | None, float | None] = (None, None)

_SIGNAL_NAMES: dict[int, str] = {  # Go's os.ProcessState wording, which is what AWS prints
    signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction", signal.SIGINT: "interrupt", signal.SIGHUP: "hangup",
    signal.SIGPIPE: "broken pipe", signal.SIGQUIT: "quit", signal.SIGUSR1: "user defined signal 1",
    signal.SIGUSR2: "user defined signal 2", signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGXCPU: "CPU time limit exceeded", signal.SIGALRM: "alarm clock",
}


def describe_exit(status: int | None) -> str:
    """AWS's Runtime.ExitError wording for a raw wait status."""
    if status is None:
        return "Runtime exited without providing a reason"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = _SIGNAL_NAMES.get(sig, f"signal {sig}")
        return f"Runtime exited with error: signal: {name}"
    code = os.WEXITSTATUS(status)
    return "Runtime exited without providing a reason" if code == 0 else (
        f"Runtime exited with error: exit status {code}")


def platform_error(error_type: str, request_id: str, message: str) -> bytes:
    return orjson.dumps({"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"})


class _Channel(asyncio.Protocol):
    """The core end of the socketpair: hands each complete frame (:class:`protocol.FrameReader`) to the
    environment."""

    __slots__ = ("env", "reader", "transport")

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.reader = protocol.FrameReader(env._on_frame)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports: no asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        frame = self.reader.whole(data)  # the common case, without the reader's callback (see FrameReader)
        if frame is None:
            self.reader.reassemble(data)
        else:
            self.env._on_frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.env._on_lost()


class Environment:
    """A worker process plus its bookkeeping. Created STARTING; :meth:`launch` (or :meth:`start`) runs Init.

    The Python worker's environment, and the base of the other runtimes' (``backends.NodeEnvironment``,
    ``backends.CustomEnvironment``), which override :meth:`launch`, :meth:`invoke` and :meth:`stop`."""

    runtime_version = python_version()  # INIT_START's "Runtime Version" (runtimes.py: what really runs)
    sends = True  # :meth:`send` / :meth:`outcome` / :meth:`fault` run an invocation (the other runtimes: only invoke)

    def __init__(self, *, env_id: str, spec: FunctionSpec, region: str, init_type: str, tmp_dir: Path,
                 log_group: str, log_stream: str, function_name: str, zygote: ZygoteClient) -> None:
        self.env_id = env_id
        self.spec = spec
        self.region = region
        self.init_type = init_type
        self.tmp_dir = tmp_dir
        self.log_group = log_group
        self.log_stream = log_stream
        self.function_name = function_name
        self.state = EnvState.STARTING
        self.pid: int | None = None
        self.created = time.monotonic()
        self.last_used = self.created
        self.invocations = 0
        self.init_duration_ms: float | None = None
        self.init_output = b""
        self.init_failure: RawOutcome | None = None
        self.cold_pending = True  # the next invocation reports the cold start (on-demand only)
        self.exit_status: int | None = None
        self.exit_at: float | None = None  # CLOCK_MONOTONIC time the zygote reaped the worker
        self.discard = False  # set when the environment must not be reused
        self.wipe_tmp = False
        self.retired = False
        self.oom_rss_kb: int | None = None
        self.peak_rss_kb = 0  # last peak RSS the worker reported (for REPORT lines after a crash/timeout)
        self._zygote = zygote
        self._transport: asyncio.Transport | None = None
        self._waiter: Waiter | None = None
        self._exited = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._memfd = -1
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None  # see _arm_deadline
        self._deadline = 0.0
        self._sent_at = 0.0  # time.monotonic() when the invocation in flight was sent

    def __repr__(self) -> str:
        return (f"<Environment {self.env_id[:8]} {self.spec.function_name}:{self.spec.version} {self.region} "
                f"state={self.state.name} type={self.init_type} pid={self.pid} invocations={self.invocations}>")

    def _transition(self, to: EnvState) -> None:
        if to not in _ALLOWED[self.state]:
            raise InvalidState(f"{self!r}: cannot go from {self.state.name} to {to.name}")
        self.state = to

    # -- worker events -----------------------------------------------------------------------------------
    def _on_frame(self, frame: protocol.Frame) -> None:
        if frame[0]["t"] == protocol.K_OOM:
            self.oom_rss_kb = int(frame[0].get("rss", 0))
            return
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(frame)

    def _on_lost(self) -> None:
        self.discard = True
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(_LOST)

    def _on_exit(self, status: int | None, at: float | None) -> None:
        self.exit_status = status
        self.exit_at = at
        self.discard = True
        self._exited.set()
        # The zygote's report can overtake the worker's last frame (another socket). The channel's EOF resolves
        # the waiter after that frame; this fallback only matters if something else still holds the socket.
        self._loop.call_later(0.05, self._on_lost_fallback)

    def _on_lost_fallback(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(_LOST)

    @staticmethod
    def _expire(w: asyncio.Future) -> None:
        if not w.done():
            w.set_result(_TIMED_OUT)

    def _arm_deadline(self, deadline: float) -> None:
        """Make the invocation in flight time out at ``deadline`` (loop clock).

        One timer per environment instead of one per invocation: an armed timer that fires no later than the
        deadline is kept (it re-arms itself for the deadline of whatever is in flight when it fires), so a
        stream of short invocations costs no timer work at all."""
        self._deadline = deadline
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        w = self._waiter
        if w is None or w.done():
            return  # nothing in flight: the next invocation arms a fresh timer
        if self._loop.time() + _TIMER_SLACK_S >= self._deadline:
            w.set_result(_TIMED_OUT)
        else:  # armed for an earlier invocation's deadline
            self._timer = self._loop.call_at(self._deadline, self._on_deadline)

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def launch(self, host: RuntimeHost, init_timeout_s: float) -> None:
        """Start this environment's process with what ``host`` (its executor) provides, and run Init."""
        warn_python_mismatch(self.spec.function_name, self.spec.runtime)
        await self.start(worker_config(self, runtime_dir=host.runtime_dir, project_root=host.project_root,
                                       credentials=host.credentials, iso=host.zygote.isolation), init_timeout_s)

    def init_error_payload(self, failure: RawOutcome, request_id: str) -> bytes:
        """The Invoke payload of a failed Init's ``Kind.INIT_ERROR`` (the runtime's error record as it is)."""
        return failure.payload

    async def start(self, cfg: dict, init_timeout_s: float) -> None:
        """Fork the worker and run Init. On failure ``init_failure`` is set and the process is gone."""
        core, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._memfd = os.memfd_create(f"lambda-{self.env_id[:8]}", os.MFD_CLOEXEC)
        t0 = time.perf_counter()
        try:
            core.setblocking(False)
            transport, _ = await self._loop.create_unix_connection(lambda: _Channel(self), sock=core)
            self._transport = transport
            self._waiter = w = self._loop.create_future()
            timer = self._loop.call_later(init_timeout_s, self._expire, w)
            try:
                self.pid = await self._zygote.spawn(self.env_id, cfg, child.fileno(), self._memfd, self._on_exit)
                child.close()
                got = await w
            finally:
                timer.cancel()
                child.close()
                self._waiter = None
        except BaseException:
            self.discard = True
            self._kill()
            raise
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.init_duration_ms = elapsed
        if isinstance(got, tuple) and got[0]["t"] == protocol.K_READY and self.state is EnvState.STARTING:
            self.init_output = got[2]
            self.peak_rss_kb = int(got[0].get("rss", 0))
            self._transition(EnvState.READY)
            return
        self.discard = True
        if isinstance(got, tuple):  # K_INIT_ERROR: the worker exits by itself
            err = orjson.loads(got[1])
            self.init_failure = RawOutcome(
                kind=Kind.INIT_ERROR,
                payload=got[1],
                error_type=str(err.get("errorType")),
                duration_ms=elapsed,
                max_rss_kb=int(got[0].get("rss", 0)),
                output=got[2],
                reset=True,
            )
            return
        self._kill()
        output = self.read_dead_output()
        if got is _TIMED_OUT:
            self.init_failure = RawOutcome(
                kind=Kind.TIMEOUT,
                payload=b"",
                error_type="Sandbox.Timedout",
                duration_ms=elapsed,
                max_rss_kb=0,
                output=output,
                reset=True,
            )
        else:
            await self.wait_exit(2.0)
            self.init_failure = RawOutcome(
                kind=Kind.EXIT,
                payload=b"",
                error_type="Runtime.ExitError",
                duration_ms=elapsed,
                max_rss_kb=0,
                output=output,
                reset=True,
            )

    def read_dead_output(self) -> bytes:
        """Output the worker wrote but never reported (it died mid-invocation); read from our memfd copy."""
        if self._memfd < 0:
            return b""
        try:
            pos = os.lseek(self._memfd, 0, os.SEEK_CUR)
            return os.pread(self._memfd, min(pos, 1 << 20), 0) if pos else b""
        except OSError:
            return b""

    async def wait_exit(self, timeout_s: float) -> int | None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._exited.wait()
        except TimeoutError:
            pass
        return self.exit_status

    # the two transitions of every warm invocation: the allowed ones checked by identity, without _transition's
    # table (hashing Enum members is a Python-level __hash__ call on 3.11)
    def mark_busy(self) -> None:
        if self.state is ENV_READY:
            self.state = ENV_BUSY
        else:
            self._transition(ENV_BUSY)

    def mark_ready(self) -> None:
        if self.state is ENV_BUSY:
            self.state = ENV_READY
        else:
            self._transition(ENV_READY)
        self.last_used = time.monotonic()

    # -- invoke ------------------------------------------------------------------------------------------
    async def invoke(self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None,
                     fn_override: str | None, budget_s: float | None = None,
                     log: tuple[list[str] | None, float | None] | None = None,
                     trace: str | None = None) -> RawOutcome:
        """Run one invocation on this (BUSY) environment. Faults are values; ``reset`` says discard it.
        ``budget_s`` is the time left when part of the function timeout was already spent (suppressed Init).

        ``log``: None to get the function's raw output back (``RawOutcome.output``, for the caller to format);
        ``(lines before START or None, Init Duration ms or None)`` (``WORKER_LOG`` for a warm invocation) to
        have the worker format the invocation's whole log record (``RawOutcome.record``) when it completes. A
        fault (timeout, crash, OOM) never has a record: the caller formats what happened.

        The same two halves as a caller without a coroutine uses (``Executor.submit``): :meth:`send`, then
        :meth:`outcome` of what the waiter got (or :meth:`fault`)."""
        w = self._loop.create_future()
        self.send(request_id, payload, invoked_arn, client_context, fn_override, budget_s, log, trace, w)
        try:
            got = await w
        except BaseException:
            self.discard = True  # cancelled mid-invocation: the worker is still busy, never reuse it
            raise
        finally:
            self._waiter = None
        if type(got) is tuple:
            return self.outcome(got, log)
        return await self.fault(got, request_id)

    def send(self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None,
             fn_override: str | None, budget_s: float | None, log: tuple[list[str] | None, float | None] | None,
             trace: str | None, waiter: Waiter) -> None:
        """Send one invocation to this (BUSY) environment (see :meth:`invoke` for the arguments). ``waiter`` gets,
        through ``set_result`` from the event loop (never from inside this call), the worker's answer (a frame: a
        tuple, for :meth:`outcome`) or a fault (anything else, for :meth:`fault`): the deadline passed, the channel
        was lost; either of those two forgets the waiter."""
        budget = self.spec.timeout_s if budget_s is None else budget_s
        fields = {"t": protocol.K_INVOKE, "id": request_id, "dl": int((time.time() + budget) * 1000), "arn": invoked_arn}
        if client_context is not None:  # cc, fn only when set: two nulls cost the worker's loads ~1.3k instructions
            fields["cc"] = client_context
        if fn_override is not None:
            fields["fn"] = fn_override
        if trace is not None:  # the worker sets _X_AMZN_TRACE_ID for this invocation
            fields["tr"] = trace
        if log is not None:
            fields["lg"] = 1
            if log is not WORKER_LOG:
                fields["pre"], fields["init"] = log
        self.invocations += 1
        self._waiter = waiter
        deadline = self._deadline = self._loop.time() + budget
        timer = self._timer
        if timer is None or timer.when() > deadline:  # _arm_deadline's work, when there is any
            self._arm_deadline(deadline)
        self._sent_at = time.monotonic()
        transport = self._transport
        if transport is None or transport.is_closing():
            self._loop.call_soon(self._on_lost)
        else:
            transport.writelines(protocol.encode(fields, payload))  # one writev of header, meta, payload

    def outcome(self, got: protocol.Frame, log: tuple[list[str] | None, float | None] | None) -> RawOutcome:
        """The outcome of a completed invocation from the worker's answer frame (``log`` as given to :meth:`send`)."""
        self._waiter = None  # answered: the waiter (and what it holds) is not kept while the environment is idle
        m = got[0]
        self.peak_rss_kb = m["rss"]
        # the frame's log part: the raw output, or the record the worker formatted (``log`` given)
        output, record = (got[2], None) if log is None else (b"", got[2])
        # RawOutcome's fields positionally (kind, payload, error_type, duration_ms, max_rss_kb, output, reset,
        # record): the one construction per completed invocation; keywords to a class go through a kwargs
        # dict on Python 3.11, ~4k more instructions per invocation (callgrind, python -m bench core --prepared)
        if m["t"] == protocol.K_RESULT:
            return RawOutcome(KIND_OK, got[1], None, m["d"], m["rss"], output, False, record)
        reset = bool(m.get("reset"))
        if reset:
            self.discard = True
            self.wipe_tmp = m["et"] == "Runtime.EphemeralStorageExceeded"
        return RawOutcome(KIND_ERROR, got[1], m["et"], m["d"], m["rss"], output, reset, record)

    async def fault(self, got: object, request_id: str) -> RawOutcome:
        """The outcome of an invocation the worker never answered (``got``: what the waiter got instead of a
        frame): a timeout, a crash, an OOM kill, or STALE when the worker had died before it was sent."""
        self._waiter = None
        return await self._fault(got, request_id, self.spec.timeout_s, (time.monotonic() - self._sent_at) * 1000.0,
                                 self._sent_at)

    async def _fault(self, got: object, request_id: str, timeout: float, elapsed: float,
                     sent_at: float) -> RawOutcome:
        self.discard = True
        if got is _TIMED_OUT:
            self._kill()
            return RawOutcome(kind=Kind.TIMEOUT, error_type="Sandbox.Timedout", duration_ms=timeout * 1000.0,
                              payload=platform_error("Sandbox.Timedout", request_id,
                                                     f"Task timed out after {timeout:.2f} seconds"),
                              max_rss_kb=self.peak_rss_kb, output=self.read_dead_output(), reset=True)
        status = await self.wait_exit(2.0)
        if self.exit_at is not None and self.exit_at < sent_at and self.oom_rss_kb is None:
            return RawOutcome(
                kind=Kind.STALE, payload=b"", error_type=None, duration_ms=0.0, max_rss_kb=0, output=b"", reset=True
            )
        output = self.read_dead_output()
        mem_kb = self.spec.memory_mb * 1024
        if self.oom_rss_kb is not None:
            return RawOutcome(
                kind=Kind.OOM,
                payload=platform_error("Runtime.OutOfMemory", request_id, "Runtime exited with error: signal: killed"),
                error_type="Runtime.OutOfMemory",
                duration_ms=elapsed,
                max_rss_kb=max(self.oom_rss_kb, mem_kb),
                output=output,
                reset=True,
            )
        return RawOutcome(
            kind=Kind.EXIT,
            payload=platform_error("Runtime.ExitError", request_id, describe_exit(status)),
            error_type="Runtime.ExitError",
            duration_ms=elapsed,
            max_rss_kb=self.peak_rss_kb,
            output=output,
            reset=True,
        )

    # -- shutdown ----------------------------------------------------------------------------------------
    def _kill(self) -> None:
        self._zygote.kill(self.env_id)

    async def stop(self, *, graceful: bool) -> None:
        """Stop the worker: EOF first when graceful (it exits on its own), SIGKILL after 2 s or at once."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.state is not EnvState.STOPPING:
            self._transition(EnvState.STOPPING)
        if self._transport is not None:
            self._transport.close()
        if self.pid is not None and not self._exited.is_set():
            if not graceful:
                self._kill()
            if await self.wait_exit(2.0) is None and not self._exited.is_set():
                self._kill()
                await self.wait_exit(2.0)
        if self._memfd >= 0:
            os.close(self._memfd)
            self._memfd = -1
        self._transition(EnvState.STOPPED)
        self._stopped.set()
