"""Execution environments for every runtime kind (:mod:`.runtimes`): which class a runtime gets
(:func:`environment_class`) and the two beside the Python worker's :class:`~.environment.Environment`:

- :class:`NodeEnvironment` (``nodejs18.x`` ... ``nodejs24.x``): a pre-started ``node`` process running the shim
  (:class:`~.node_process.NodeProcess`, taken from the executor's :class:`~.node_spares.SparePool`), given its
  function in an INIT frame;
- :class:`CustomEnvironment` (``provided.al2``, ``provided.al2023``): the function's ``bootstrap`` and the Runtime
  API served for it (:class:`~.runtime_api.CustomRuntime`).

Both are ``Environment`` subclasses: the same state machine, pool bookkeeping (warm reuse, idle expiry, max
lifetime, provisioned concurrency, /tmp kept across a reset) and executor code paths (limiter, logs, metrics) as the
Python worker, with their own ``launch`` (Init), ``invoke`` and ``stop``; a Node.js environment also takes
``send`` / ``outcome`` / ``fault`` as the Python worker's does, so ``Executor.submit`` runs a warm one without a
task. Their processes start through the executor's zygote (:mod:`.runtime_process`): own process group, killed with
the environment, parent-death signal, reaped by the zygote. Outcomes are the same :class:`~.environment.RawOutcome`
values; a process found dead before an invocation reached it is ``Kind.STALE`` (the executor retries on a new
environment), as for Python.

Init Duration, measured as AWS defines it (runtime start plus function init, ending when the runtime asks for its
first event; https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib):
for Node, the pre-started process's boot (spawn to HELLO, measured when it was made) plus its function's Init
(INIT frame to READY); for a custom runtime, bootstrap start to its first ``/next``; never a synthetic number.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from edge.invocation.execution import isolation
from edge.invocation.execution.environment import Environment, EnvState, Kind, RawOutcome, Waiter, platform_error
from edge.invocation.execution.node_dist import NodeInstallError, major_of_runtime
from edge.invocation.execution.node_process import NodeLaunch, NodeProcess, NodeStartError, init_config
from edge.invocation.execution.runtime_api import CustomConfig, CustomRuntime
from edge.invocation.execution.runtime_process import RuntimeChild, ZygoteProcess
from edge.invocation.execution.runtimes import CUSTOM, NODE, PYTHON, custom_version, runtime_kind
from edge.invocation.execution.worker_setup import RuntimeHost
from edge.invocation.runtime import protocol

__all__ = ["CustomEnvironment", "NodeEnvironment", "environment_class"]


def environment_class(runtime: str) -> type[Environment]:
    """The environment class that runs ``runtime`` (the registry refuses to invoke runtimes without one)."""
    kind = runtime_kind(runtime)
    if kind == NODE:
        return NodeEnvironment
    if kind == CUSTOM:
        return CustomEnvironment
    if kind == PYTHON:
        return Environment
    raise ValueError(f"runtime {runtime} is not executed by this build")


class _ProcessEnvironment(Environment):
    """What Node and custom environments share: a :class:`~.runtime_process.RuntimeChild` whose exit marks the
    environment dead, and its stop."""

    _child: RuntimeChild | None = None  # the runtime's process, once started

    def _watch(self, child: RuntimeChild) -> None:
        self._child = child
        self.pid = child.pid
        child.on_exit(lambda: self._on_child_exit(child))

    def _on_child_exit(self, child: RuntimeChild) -> None:
        self.exit_status = child.status
        self.exit_at = child.exit_at
        self.discard = True
        self._exited.set()

    def _kill(self) -> None:
        if self._child is not None:
            self._child.kill()

    def read_dead_output(self) -> bytes:
        return b""  # a fault's output comes back in its RawOutcome

    def _stale(self, raw: RawOutcome, sent_at: float) -> bool:
        """The process had died while idle, before this invocation was sent (the caller retries elsewhere)."""
        return raw.kind is Kind.EXIT and self.exit_at is not None and self.exit_at < sent_at

    def _runtime_alive(self) -> bool:
        raise NotImplementedError

    def _died_before(self, raw: RawOutcome, sent_at: float) -> bool:
        """Whether ``raw`` says the process was already gone when the invocation was sent."""
        return self._stale(raw, sent_at)

    def _finished(self, raw: RawOutcome, sent_at: float) -> RawOutcome:
        """The outcome of an invocation sent at ``sent_at``: STALE (never reused; the caller retries elsewhere) when
        ``raw`` says the process was already gone then, else ``raw`` after :meth:`_after`."""
        if self._died_before(raw, sent_at):
            self.discard = True
            return _stale_outcome()
        return self._after(raw)

    def _after(self, raw: RawOutcome) -> RawOutcome:
        if raw.reset:
            self.discard = True
            self.wipe_tmp = raw.error_type == "Runtime.EphemeralStorageExceeded"
        if raw.max_rss_kb:
            self.peak_rss_kb = raw.max_rss_kb
        return raw

    async def _stop_process(self, graceful: bool) -> None:
        raise NotImplementedError

    async def stop(self, *, graceful: bool) -> None:
        """Stop the process (graceful: the runtime's own shutdown, SIGKILL after 2 s; else SIGKILL at once)."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        if self.state is not EnvState.STOPPING:
            self._transition(EnvState.STOPPING)
        try:
            await self._stop_process(graceful)
        finally:
            self._transition(EnvState.STOPPED)
            self._stopped.set()


_STALE = object()  # what NodeEnvironment.send gives the waiter of an invocation sent to a dead process


def _stale_outcome() -> RawOutcome:
    return RawOutcome(kind=Kind.STALE, payload=b"", error_type=None, duration_ms=0.0, max_rss_kb=0, output=b"",
                      reset=True)


class NodeEnvironment(_ProcessEnvironment):
    """A Node.js execution environment (see the module docstring)."""

    proc: NodeProcess | None = None
    runtime_version = "nodejs"  # "nodejs:20.18.0" once its process is known

    async def launch(self, host: RuntimeHost, init_timeout_s: float) -> None:
        spec = self.spec
        major = major_of_runtime(spec.runtime)
        assert major is not None, spec.runtime
        environment = dict(spec.environment)
        t0 = time.perf_counter()
        try:
            proc = await host.spares.take(NodeLaunch.for_function(major, spec.memory_mb, environment,
                                                                  layers=bool(spec.layer_dirs)))
        except NodeStartError as e:  # node itself did not come up: AWS's bootstrap would exit the same way
            self._start_failed(e.output, e.status, e.timed_out, t0)
            return
        except NodeInstallError as e:
            self._start_failed(f"edgelab: {e}\n".encode(), 127 << 8, False, t0)
            return
        except BaseException:
            self.discard = True
            raise
        self.proc = proc
        self.runtime_version = f"nodejs:{proc.node_version}"
        assert proc.proc is not None
        self._watch(proc.proc)
        sb, tmp_path, check_mb = isolation.env_sandbox(
            host.zygote.isolation, keep=[str(spec.code_dir), *map(str, spec.layer_dirs)], tmp_dir=self.tmp_dir,
            tmp_mb=spec.ephemeral_storage_mb, memory_mb=spec.memory_mb)
        if sb is not None and isinstance(proc.proc, ZygoteProcess):  # its code, layers and /tmp, in its namespace
            try:
                problem = await host.zygote.attach(proc.proc.key, sb)
            except BaseException:
                self.discard = True
                proc.proc.kill()
                raise
            if problem:
                proc.proc.kill()
                self._start_failed(f"edgelab: cannot set up the environment's sandbox: {problem}\n".encode(),
                                   127 << 8, False, t0)
                return
        cfg = init_config(runtime=spec.runtime, handler=spec.handler, task_root=spec.code_dir,
                          layer_dirs=spec.layer_dirs, memory_mb=spec.memory_mb, tmp_dir=Path(tmp_path),
                          tmp_quota_mb=check_mb, function_name=self.function_name,
                          version=spec.version, log_group=self.log_group, log_stream=self.log_stream,
                          init_type=self.init_type, region=self.region, environment=environment,
                          node_bin=proc.dist.binary, credentials=host.credentials)
        try:
            res = await proc.init(cfg, init_timeout_s)
        except BaseException:
            self.discard = True
            proc.proc.kill()
            raise
        self.init_duration_ms = proc.boot_ms + res.init_ms
        if res.ok and self.state is EnvState.STARTING:
            self.init_output = res.output
            self.peak_rss_kb = res.rss_kb
            self._transition(EnvState.READY)
            return
        self.discard = True
        failure = res.failure or RawOutcome(kind=Kind.EXIT, payload=b"", error_type="Runtime.ExitError",
                                            duration_ms=res.init_ms, max_rss_kb=0, output=res.output, reset=True)
        failure.duration_ms = self.init_duration_ms
        self.init_failure = failure
        if failure.kind is Kind.EXIT:
            self.exit_status = proc.proc.status

    def _start_failed(self, output: bytes, status: int | None, timed_out: bool, t0: float) -> None:
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.discard = True
        self.exit_status = status
        self.init_duration_ms = elapsed
        kind, etype = (Kind.TIMEOUT, "Sandbox.Timedout") if timed_out else (Kind.EXIT, "Runtime.ExitError")
        self.init_failure = RawOutcome(kind=kind, payload=b"", error_type=etype, duration_ms=elapsed, max_rss_kb=0,
                                       output=output, reset=True)

    def _runtime_alive(self) -> bool:
        proc = self.proc
        return proc is not None and proc.proc is not None and proc.proc.alive

    # Invocations as the Python worker's (Environment.invoke: send, then outcome or fault around a future): send
    # writes the frame now and the waiter gets the answer from the channel's data_received, so Executor.submit runs
    # a warm Node function with no task.
    def send(self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None,
             fn_override: str | None, budget_s: float | None, log: tuple[list[str] | None, float | None] | None,
             trace: str | None, waiter: Waiter) -> None:
        proc = self.proc
        self._sent_at = time.monotonic()
        if proc is None or not self._runtime_alive():  # died while idle: STALE (fault), the caller retries
            self._loop.call_soon(waiter.set_result, _STALE)
            return
        self.invocations += 1
        proc.send(request_id, payload, invoked_arn=invoked_arn, timeout_s=self.spec.timeout_s,
                  client_context=client_context, fn_override=fn_override, log=log, budget_s=budget_s, trace=trace,
                  waiter=waiter)

    def outcome(self, got: protocol.Frame, log: tuple[list[str] | None, float | None] | None) -> RawOutcome:
        assert self.proc is not None
        return self._after(self.proc.outcome(got, log))

    async def fault(self, got: object, request_id: str) -> RawOutcome:
        if got is _STALE or self.proc is None:
            self.discard = True
            return _stale_outcome()
        return self._finished(await self.proc.fault(got, request_id, self.spec.timeout_s), self._sent_at)

    def _died_before(self, raw: RawOutcome, sent_at: float) -> bool:
        proc = self.proc  # an exit the core caused (OOM, a kill) is this invocation's fault, not a stale process
        return self._stale(raw, sent_at) and proc is not None and proc.oom_rss_kb is None \
            and proc.killed_rss_kb is None

    async def _stop_process(self, graceful: bool) -> None:
        if self.proc is not None:
            await self.proc.stop(graceful=graceful)


class CustomEnvironment(_ProcessEnvironment):
    """A custom runtime's execution environment (see the module docstring). Its invocations never carry a log
    record: the executor formats START/END/REPORT around the bootstrap's output."""

    runtime: CustomRuntime | None = None
    sends = False  # invocations go through :meth:`invoke` only (``Executor.submit`` runs it in a task)

    async def launch(self, host: RuntimeHost, init_timeout_s: float) -> None:
        spec = self.spec
        self.runtime_version = custom_version(spec.runtime)  # the declared OS-only runtime and the host OS
        cfg = CustomConfig(runtime=spec.runtime, handler=spec.handler, task_root=spec.code_dir, tmp_dir=self.tmp_dir,
                           function_name=self.function_name, log_group=self.log_group, log_stream=self.log_stream,
                           layer_dirs=spec.layer_dirs, memory_mb=spec.memory_mb,
                           tmp_quota_mb=spec.ephemeral_storage_mb, version=spec.version, region=self.region,
                           init_type=self.init_type, environment=spec.environment, credentials=host.credentials)
        self.runtime = rt = CustomRuntime(cfg, zygote=host.zygote)
        try:
            res = await rt.start(init_timeout_s)
        except BaseException:
            self.discard = True
            await rt.stop(graceful=False)
            raise
        if rt.proc is not None:
            self._watch(rt.proc)
        self.init_duration_ms = res.init_ms
        if res.ok and self.state is EnvState.STARTING:
            self.init_output = res.output
            self.peak_rss_kb = res.rss_kb
            self._transition(EnvState.READY)
            return
        self.discard = True
        self.init_failure = res.failure
        if rt.proc is not None and res.failure is not None and res.failure.kind is Kind.EXIT:
            self.exit_status = rt.proc.status

    def init_error_payload(self, failure: RawOutcome, request_id: str) -> bytes:
        """AWS names the invocation in a ``Runtime.InvalidEntrypoint`` message; Init ran before there was one."""
        if failure.error_type == "Runtime.InvalidEntrypoint":
            message = str(orjson.loads(failure.payload).get("errorMessage", ""))
            return platform_error("Runtime.InvalidEntrypoint", request_id, message.split(" Error: ", 1)[-1])
        return failure.payload

    async def invoke(self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None,
                     fn_override: str | None, budget_s: float | None = None,
                     log: tuple[list[str] | None, float | None] | None = None,
                     trace: str | None = None) -> RawOutcome:
        """One invocation on the runtime's process (:meth:`_send`); a process that had died while idle answers
        STALE (the caller retries elsewhere), a cancelled one is never reused."""
        if not self._runtime_alive():
            return _stale_outcome()
        self.invocations += 1
        sent_at = time.monotonic()
        try:
            raw = await self._send(request_id, payload, invoked_arn, client_context, fn_override, budget_s, log,
                                   trace)
        except BaseException:
            self.discard = True  # cancelled mid-invocation: the process is still busy, never reuse it
            raise
        return self._finished(raw, sent_at)

    def _runtime_alive(self) -> bool:
        rt = self.runtime
        return rt is not None and rt.proc is not None and rt.proc.alive

    async def _send(self, request_id: str, payload: bytes, invoked_arn: str, client_context: str | None,
                    fn_override: str | None, budget_s: float | None,
                    log: tuple[list[str] | None, float | None] | None, trace: str | None) -> RawOutcome:
        assert self.runtime is not None  # no log record, no display name: the bootstrap formats nothing of it
        return await self.runtime.invoke(request_id, payload, invoked_arn=invoked_arn,
                                         timeout_s=self.spec.timeout_s, client_context=client_context,
                                         budget_s=budget_s, trace=trace)

    def _died_before(self, raw: RawOutcome, sent_at: float) -> bool:
        return raw.kind is Kind.STALE or self._stale(raw, sent_at)

    async def _stop_process(self, graceful: bool) -> None:
        if self.runtime is not None:
            await self.runtime.stop(graceful=graceful)
