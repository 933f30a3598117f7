"""The execution side of the invocation core: run a :class:`FunctionSpec` with AWS Lambda semantics.

One :class:`Executor` per process serves any number of regions; each region (``InvokeOptions.region``) has its
own pools and its own :class:`ConcurrencyLimiter`. It owns: the zygote (fork server), the environment pool and
its stop tasks, the log store and its flusher, a reaper task (idle expiry, max lifetime) and a provisioner task
(each component's tasks through an :class:`edge.tasks.TaskOwner`).

An invocation is composed of two leases (architecture convention 3), in :meth:`Executor.invoke`::

    lease = limiter.acquire(...)            # or a THROTTLED result
    try:                                    # (``with lease:`` and pool.acquire(...) written out: see ``invoke``)
        env = pool.checkout(...)            # warm env, or a new one: pool.start_new(env) runs Init (cold start)
        try:
            raw = await env.invoke(...)     # (an environment whose Init failed: await self._failed_init(...))
            result = invocation_result(...)      # its record stored, metrics, the result value (faults: _unfinished)
        finally:
            pool.checkin(...)               # idle again, or stopped when it must be discarded
    finally:
        lease.release()

One implementation serves warm and cold environments (:meth:`Executor.invoke`); an environment found
dead before the invocation reached it is replaced, at most three times. Function failures and throttles are values
(:class:`InvocationResult`), never exceptions.

Runtimes (``runtimes.py``): each environment is an :class:`Environment` of its runtime's kind
(``backends.environment_class``): the zygote's forked Python worker for ``python3.x``, a pre-started Node.js process
(from :attr:`Executor.spares`, started through the zygote) for ``nodejs18.x``-``nodejs24.x``, the function's
``bootstrap`` over the Runtime API for ``provided.*``. Everything above (leases, pools, warm reuse, expiry,
provisioned concurrency, logs, metrics) is the same for all three. A Node.js major that is not installed is
installed on first use in a thread (:attr:`Executor.node_installs`, :meth:`runtime_state`).

Notes for callers (the registry/service side):

- Pool identity is ``(options.region, spec.pool_key, display name, log group)``: anything that changes what runs
  (code, handler, memory, timeout, env vars, layers) must change ``spec.revision``.
- ``spec.code_dir`` is the task root (cwd and ``sys.path[0]``); each ``spec.layer_dirs`` entry is an extracted
  layer zip root: ``<layer>/python/lib/<spec.runtime>/site-packages`` and ``<layer>/python`` go on ``sys.path``
  (later layers first, so they override earlier ones); ``<layer>/bin`` goes on PATH, ``<layer>/lib`` on
  LD_LIBRARY_PATH. The venv's site-packages are not visible to functions (stdlib only, as a bare runtime).
- Reserved concurrency: ``configure_concurrency`` is authoritative (full map, every region); a non-None
  ``reserved_concurrency`` passed to ``invoke`` also updates it for that function; None keeps the map's value.
- Provisioned concurrency: ``set_provisioned`` returns at once; poll ``provisioned_status``. Those environments
  serve invocations without a display name whose region/log group match the ones given to ``set_provisioned``.
- /tmp: ``TMPDIR`` and ``tempfile.tempdir`` point at a per-environment directory under
  ``<state_dir>/sandboxes/``; it survives a reset (timeout/crash/OOM) like AWS. Quota ``ephemeral_storage_mb``:
  one file may not grow past it (``OSError(EFBIG)``), and when the directory's total exceeds it after an
  invocation, that invocation fails with ``Runtime.EphemeralStorageExceeded`` and the environment is reset with
  its /tmp wiped (the worker re-walks the directory only when inotify saw a change, or at least once a second:
  writes through a shared mmap are caught by that periodic walk). Code writing to the literal path ``/tmp`` is
  not redirected (no mount namespaces).
- Memory: RSS above ``memory_mb`` (peak RSS after each invocation, and sampled every 10 ms once an invocation has
  run for 50 ms) kills the environment: ``Runtime.OutOfMemory`` / "Runtime exited with error: signal: killed"
  (AWS reports the same message; older AWS and most guides show errorType ``Runtime.ExitError`` for it).
- Init longer than ``init_timeout_s`` (10 s): as AWS, Init is retried inside the invoke ("suppressed init"),
  bounded by the function timeout (``Sandbox.Timedout`` "Task timed out after N.00 seconds" if it does not fit).
- Logs are readable from any process via ``LogStore(<state_dir>/logs).read(...)``; ``Executor.logs`` also sees
  events not yet flushed (flushes happen every ``log_flush_interval_s``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge.invocation.execution import isolation, node_dist
from edge.invocation.execution import logs as logfmt
from edge.invocation.execution.backends import environment_class
from edge.invocation.execution.coldstart import StartShaper
from edge.invocation.execution.environment import (
    WORKER_LOG,
    Environment,
    Kind,
    RawOutcome,
    describe_exit,
    platform_error,
)
from edge.invocation.execution.limiter import ConcurrencyLimiter, Lease
from edge.invocation.execution.logs import LogStore
from edge.invocation.execution.metrics import FunctionMetrics, Metrics
from edge.invocation.execution.node_dist import major_of_runtime
from edge.invocation.execution.node_spares import NodeInstalls, SparePool
from edge.invocation.execution.outcomes import (
    fault_lines,
    init_failure,
    init_lines,
    invocation_result,
    platform_failure,
)
from edge.invocation.execution.pool import ON_DEMAND, RUNTIME_DIR, EnvironmentPool, PoolId, PoolSettings
from edge.invocation.execution.shared_limiter import make_limiter
from edge.invocation.execution.submission import STOPPED, Route, Submission, bug_failure, count_start, deliver
from edge.invocation.execution.worker_setup import Credentials, RuntimeHost
from edge.invocation.execution.zygote_client import PROJECT_ROOT, ZygoteClient, ZygoteError
from edge.invocation.models import (
    ACTIVE,
    INIT_TIMEOUT_S,
    FunctionSpec,
    InvocationResult,
    InvokeOptions,
    Outcome,
    RuntimeState,
    ThrottleReason,
)
from edge.tasks import TaskOwner

__all__ = ["Executor", "ExecutorSettings", "Route"]

log = logging.getLogger("edgelab.invocation.executor")
_OK, _FUNCTION_ERROR = Outcome.OK, Outcome.FUNCTION_ERROR  # read per invocation: see environment.ENV_READY's note


@dataclass(frozen=True)
class ExecutorSettings:
    state_dir: Path
    idle_ttl_s: float = 600.0  # idle on-demand environments are stopped after this (LocalStack's default)
    account_concurrency: int = 1000  # per region, as AWS
    max_lifetime_s: float | None = None  # environments older than this are retired when idle
    init_timeout_s: float = INIT_TIMEOUT_S  # on-demand Init cap
    provisioned_init_timeout_s: float = 130.0  # provisioned Init cap: max(this, function timeout)
    reaper_interval_s: float | None = None  # default: min(idle_ttl_s / 4, 30 s)
    max_concurrent_starts: int = 16  # simultaneous cold starts (forks + Init) per executor
    log_flush_interval_s: float = 0.05
    logs_dir: Path | None = None  # default <state_dir>/logs; a stack gives each region its own (logs/<region>)
    credentials: Credentials = field(default_factory=Credentials.generate)
    install_runtimes: bool = True  # install a missing Node.js major on first use (False: Failed, naming the command)
    node_spares_per_key: int = 1  # pre-started Node processes kept ready per launch key that was asked for
    # where the regions' concurrency is shared with the stack's other processes (execution/shared_limiter);
    # None: this executor counts its own
    concurrency_dir: Path | None = None
    # warm environments kept per executor (idle + busy), by count and by the sum of their MemorySize: past either,
    # a cold start retires idle ones, least recently used first (busy and provisioned ones are never retired)
    max_warm_environments: int | None = 256
    max_warm_memory_mb: int | None = 16384


def _raise_fd_limit(want: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _prepare_slots(slots: Path) -> None:
    """Create this executor's Node slot folder; remove those of executors whose process is gone (killed: they
    could not clean up). Folders are named ``<pid>-<random>``; a recycled pid only delays a removal."""
    slots.mkdir(parents=True, exist_ok=True)
    for other in slots.parent.iterdir():
        pid = other.name.split("-", 1)[0]
        if other != slots and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(other, ignore_errors=True)


def _prepare_sandboxes(own: Path) -> None:
    """Create this executor's sandbox folder (each environment's /tmp lives under it); remove those of executors
    whose process is gone, unmounting their /tmp tmpfs first, and their empty cgroups."""
    own.mkdir(parents=True, exist_ok=True)
    isolation.cleanup_sandboxes(own.parent, own)
    isolation.cleanup_orphans()


class Executor:
    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.logs = LogStore(settings.logs_dir or settings.state_dir / "logs",
                             flush_interval_s=settings.log_flush_interval_s)
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this executor's folders (slots, sandboxes) and cgroups
        self._sandboxes = settings.state_dir / "sandboxes" / tag
        self._zygote = ZygoteClient(isolation=isolation.plan(
            settings.state_dir, [PROJECT_ROOT, str(node_dist.runtimes_root())]))
        self.isolation_line = ""  # what is in force, said once at start (isolation.describe)
        self._account_limit = settings.account_concurrency
        self._reserved: dict[str, int] = {}
        self._limiters: dict[str, ConcurrencyLimiter] = {}
        self._routes: dict[tuple[str, tuple[str, str, str], str | None, str | None], Route] = {}  # see route()
        # Node.js: the installed majors (installing missing ones in the background) and pre-started processes,
        # started through the zygote, each with a slot directory under this process's own folder
        self.node_installs = NodeInstalls(install=settings.install_runtimes)
        self._slots = settings.state_dir / "node-slots" / tag
        self.spares = SparePool(per_key=settings.node_spares_per_key, installs=self.node_installs,
                                zygote=self._zygote, slots_root=self._slots)
        host = RuntimeHost(zygote=self._zygote, credentials=settings.credentials, runtime_dir=RUNTIME_DIR,
                           project_root=PROJECT_ROOT, spares=self.spares)
        self._pool = EnvironmentPool(
            PoolSettings(state_dir=settings.state_dir, idle_ttl_s=settings.idle_ttl_s,
                         max_lifetime_s=settings.max_lifetime_s, init_timeout_s=settings.init_timeout_s,
                         provisioned_init_timeout_s=settings.provisioned_init_timeout_s,
                         max_concurrent_starts=settings.max_concurrent_starts, sandboxes=self._sandboxes,
                         max_warm_environments=settings.max_warm_environments,
                         max_warm_memory_mb=settings.max_warm_memory_mb),
            host, self.logs, self._on_provisioned, self._wake_provisioner)
        self.tasks = TaskOwner("edgelab-executor")  # the reaper, the provisioner, submissions that must wait (submit)
        self._provision_wanted: asyncio.Event | None = None
        self._closed = False
        # chaos faults and the realistic cold-start model (coldstart.py); None: neither, one check per invocation
        self.shaper: StartShaper | None = None

    @property
    def isolation(self) -> dict:
        """What isolates this executor's environments (see :mod:`.isolation`; :attr:`isolation_line` words it)."""
        return self._zygote.isolation or self._zygote.isolation_plan

    def __repr__(self) -> str:
        return f"<Executor regions={sorted(self._limiters)} {self._pool!r} {self._zygote!r}>"

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the log flusher, the zygote, the reaper and the provisioner."""
        _raise_fd_limit()  # two descriptors per environment: 1000 concurrent environments need more than 1024
        await asyncio.to_thread(_prepare_slots, self._slots)
        await asyncio.to_thread(_prepare_sandboxes, self._sandboxes)
        await self.logs.start()
        await self._zygote.start()
        self.isolation_line = isolation.describe(self.isolation)
        log.info("%s", self.isolation_line)
        self._provision_wanted = asyncio.Event()
        interval = self.settings.reaper_interval_s or min(self.settings.idle_ttl_s / 4, 30.0)
        self.tasks.spawn(self._reaper(max(interval, 0.01)), name="reaper")
        self.tasks.spawn(self._provisioner(), name="provisioner")

    async def close(self) -> None:
        """Kill and reap every worker and the zygote; flush the logs. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.tasks.aclose()
        await self._pool.close()
        await self.spares.close()
        await self.node_installs.close()
        await self._zygote.close()
        for lim in self._limiters.values():
            lim.close()
        await asyncio.to_thread(shutil.rmtree, self._slots, True)
        await asyncio.to_thread(isolation.remove_sandboxes, [self._sandboxes])
        await asyncio.to_thread(isolation.remove_cgroup_parents, self._zygote.isolation_plan.get("cg"))
        await self.logs.close()

    async def _reaper(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._pool.expire()
                self.spares.expire(self.settings.idle_ttl_s)
            except Exception:  # a bug here must not stop expiry for the life of the process
                log.exception("environment reaper failed")
            if self._provision_wanted is not None:
                self._provision_wanted.set()  # re-fill provisioned pools that lost an environment

    async def _provisioner(self) -> None:
        assert self._provision_wanted is not None
        while True:
            await self._provision_wanted.wait()
            self._provision_wanted.clear()
            try:
                await self._pool.provision()
            except Exception:  # keep the provisioner alive; the next wake-up retries
                log.exception("provisioned concurrency update failed")

    # -- runtimes ------------------------------------------------------------------------------------------
    def runtime_state(self, runtime: str) -> RuntimeState:
        """Whether this process can run ``runtime`` now (Active), is getting it ready (Pending: a Node.js major
        being installed, which this call starts if nobody has) or could not (Failed, with the reason)."""
        major = major_of_runtime(runtime)
        return ACTIVE if major is None else self.node_installs.state(major)

    async def check_runtime(self, runtime: str) -> RuntimeState:
        """:meth:`runtime_state` once this process has looked on disk (a thread hop, the first time per major)."""
        major = major_of_runtime(runtime)
        return ACTIVE if major is None else await self.node_installs.check(major)

    # -- concurrency ---------------------------------------------------------------------------------------
    def _limiter(self, region: str) -> ConcurrencyLimiter:
        lim = self._limiters.get(region)
        if lim is None:
            lim = self._limiters[region] = make_limiter(self.settings.concurrency_dir, region, self._account_limit,
                                                        self._reserved)
        return lim

    def configure_concurrency(self, *, account_limit: int, reserved: Mapping[str, int]) -> None:
        """Set the account limit (per region) and every function's reserved concurrency, in every region."""
        self._account_limit = account_limit
        self._reserved = dict(reserved)
        for lim in self._limiters.values():
            lim.configure(account_limit=account_limit, reserved=reserved)

    def _wake_provisioner(self) -> None:
        if self._provision_wanted is not None:
            self._provision_wanted.set()

    def _on_provisioned(self, region: str, pool_key: tuple[str, str, str], allocated: int) -> None:
        self._limiter(region).set_provisioned(pool_key, allocated)

    # -- provisioned concurrency ---------------------------------------------------------------------------
    @staticmethod
    def _default_pool_id(spec: FunctionSpec, region: str | None, log_group: str | None) -> PoolId:
        return PoolId(region or spec.region, spec.pool_key, spec.function_name,
                      log_group or f"/aws/lambda/{spec.function_name}")

    async def set_provisioned(self, spec: FunctionSpec, count: int, *, region: str | None = None,
                              log_group: str | None = None) -> None:
        """Keep ``count`` environments of ``spec`` initialised ahead of traffic (0 removes). Returns at once;
        initialisation proceeds in the background (see :meth:`provisioned_status`).

        They serve invocations whose InvokeOptions have ``region`` (default ``spec.region``), no display name,
        and ``log_group`` (default ``/aws/lambda/<name>``): pass the same values the invocations will carry."""
        self._pool.set_target(self._default_pool_id(spec, region, log_group), spec, count)
        if self._provision_wanted is not None:
            self._provision_wanted.set()

    def provisioned_status(self, spec: FunctionSpec, *, region: str | None = None,
                           log_group: str | None = None) -> tuple[int, str, str | None]:
        """(allocated, "IN_PROGRESS" | "READY" | "FAILED", reason such as FUNCTION_ERROR_INIT_FAILURE)."""
        return self._pool.status(self._default_pool_id(spec, region, log_group))

    # -- retirement ----------------------------------------------------------------------------------------
    async def retire(self, function_name: str, keep: Collection[tuple[str, str, str]] = ()) -> None:
        """Stop idle environments of ``function_name`` whose pool_key is not in ``keep`` (busy ones stop when
        released), in every region; their provisioned concurrency is dropped."""
        keep_set = set(keep)
        await self._pool.retire(lambda p: p.pool_key[0] == function_name and p.pool_key not in keep_set)

    async def reset(self) -> None:
        """Retire every warm environment (the next invocations are cold); provisioned targets are kept and
        re-initialised."""
        await self._pool.retire(lambda p: True, keep_targets=True)
        if self._provision_wanted is not None:
            self._provision_wanted.set()

    def environments(self) -> list[Environment]:
        """Live environments (for admin/introspection and tests)."""
        return self._pool.environments()

    # -- invoke ------------------------------------------------------------------------------------------
    def route(self, spec: FunctionSpec, region: str, display_name: str | None, log_group: str | None) -> Route:
        """The :class:`Route` of invocations of ``spec`` whose InvokeOptions carry this region, display name and
        log group (the function as presented: name ``display_name or spec.function_name``, log group ``log_group or
        /aws/lambda/<that name>``). Remembered (4,096 kept) for callers passing invoke() none: building one is ~5k."""
        key = (region, spec.pool_key, display_name, log_group)
        route = self._routes.get(key)
        if route is None:
            name = display_name or spec.function_name
            route = Route(self._limiter(region), self.metrics.get(region, spec.function_name, spec.version),
                          PoolId(region, spec.pool_key, name, log_group or f"/aws/lambda/{name}"),
                          environment_class(spec.runtime).sends)
            if len(self._routes) >= 4096:  # bounded: cleared, then rebuilt as used
                self._routes.clear()
            self._routes[key] = route
        return route

    async def invoke(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions, *,
                     reserved_concurrency: int | None = None, route: Route | None = None) -> InvocationResult:
        """Run one synchronous invocation: a lease of the region's limiter (or a THROTTLED result), then a pooled
        environment (warm, or new after Init), then one attempt on it. ``reserved_concurrency`` (when not None)
        is the function's reserved concurrency and is remembered for the region; None keeps what
        configure_concurrency said. ``route``: ``self.route(spec, options.region, options.display_name,
        options.log_group)``, kept by a caller that invokes the same target repeatedly (else route()'s memo is read
        here: calling route() alone costs ~500 instructions)."""
        if route is None:
            route = (self._routes.get((options.region, spec.pool_key, options.display_name, options.log_group))
                     or self.route(spec, options.region, options.display_name, options.log_group))
        limiter, fm, pid = route.limiter, route.metrics, route.pool_id
        shaper = self.shaper
        verdict = None if shaper is None else shaper.admit(spec)
        if verdict is not None and verdict.throttle:  # a chaos throttle: the answer the limiter gives
            fm.throttles += 1
            return InvocationResult(outcome=Outcome.THROTTLED, payload=b"", request_id=options.request_id,
                                    executed_version=spec.version, throttle_reason=ThrottleReason.ACCOUNT,
                                    shaping=verdict)
        lease = limiter.acquire(spec.pool_key, reserved_concurrency)
        if not isinstance(lease, Lease):
            fm.throttles += 1
            return InvocationResult(outcome=Outcome.THROTTLED, payload=b"", request_id=options.request_id,
                                    executed_version=spec.version, throttle_reason=lease)
        # running until it ends, however it ends, the lease released in the same finally: not ``with lease, fm:``,
        # on 3.11 a ``with`` calls bound __enter__/__exit__ from C, ~2k instructions each (callgrind, warm invokes)
        count_start(fm, lease, limiter, spec)
        try:
            pool = self._pool
            try:
                for _ in range(3):
                    # pool.acquire()'s three steps, written out: its async context manager costs ~6k instructions
                    env, new = pool.checkout(pid, spec) if verdict is None else pool.checkout(pid, spec, verdict.cold)
                    try:
                        if new:
                            await pool.start_new(env)
                            if shaper is not None:
                                verdict = await shaper.after_init(env, spec, verdict)
                        # one attempt, warm or cold (awaited here, not in a coroutine of its own: ~1.5k instructions
                        # per invocation, callgrind); a completed invocation's log record, formatted by the worker
                        # (START, output, END, REPORT, after INIT_START and the Init output when cold), stored as is
                        result: InvocationResult | None
                        if env.init_failure is None:
                            cold = env.cold_pending
                            log = WORKER_LOG if not cold else (init_lines(env), env.init_duration_ms)
                            raw = await env.invoke(options.request_id, payload, options.invoked_arn,
                                                   options.client_context, options.display_name, None, log,
                                                   options.trace_id)
                            if raw.record is not None:
                                result = self.recorded(env, spec, options, fm, raw, cold, log[1], raw.record)
                            else:
                                result = self.unfinished(env, spec, options, fm, raw, cold, log[1])
                        else:
                            result = await self._failed_init(env, pid, spec, payload, options, fm)
                    finally:
                        pool.checkin(pid, env)
                    if result is not None:
                        if verdict is not None:
                            result.shaping = verdict
                        return result
                # three environments in a row were found dead: report the last one's failure
                return platform_failure(spec, options, fm, describe_exit(env.exit_status))
            except ZygoteError as e:
                return platform_failure(spec, options, fm, f"Runtime exited with error: {e}")
        finally:
            lease.release()
            fm.concurrent -= 1

    def submit(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions,
               done: Callable[[InvocationResult], object], *, reserved_concurrency: int | None = None,
               route: Route | None = None) -> None:
        """:meth:`invoke` for a caller that wants no coroutine: ``done(result)`` is called from the event loop,
        never from inside this call, once the invocation has ended (whatever happened: it raises nothing).

        When a warm environment that takes frames is free now (and no chaos shaper is applied) the frame is written
        here, and the worker's answer becomes the result inside the channel's ``data_received``
        (:class:`~.submission.Submission`): no task, no future, no coroutine (what a Lambda@Edge trigger on a cache hit costs
        the POP: ``python -m bench.pop_path``, README). Anything else - a throttle, a cold start, a fault to wait
        out (timeout, crash), a Node.js or custom runtime - runs :meth:`invoke` in a task of this executor's, which
        then calls ``done``. The same leases, pool, metrics and log records either way."""
        if route is None:
            route = self.route(spec, options.region, options.display_name, options.log_group)
        if self.shaper is None and route.sends:
            limiter = route.limiter
            lease = limiter.acquire(spec.pool_key, reserved_concurrency)
            if isinstance(lease, Lease):
                env = self._pool.checkout_warm(route.pool_id)
                if env is not None and env.init_failure is None:
                    fm = route.metrics
                    count_start(fm, lease, limiter, spec)
                    cold = env.cold_pending
                    log = WORKER_LOG if not cold else (init_lines(env), env.init_duration_ms)
                    env.send(options.request_id, payload, options.invoked_arn, options.client_context,
                             options.display_name, None, log, options.trace_id,
                             Submission(self, self._pool, env, spec, payload, options, route, lease, done, cold, log))
                    return
                if env is not None:
                    self._pool.checkin(route.pool_id, env)
                lease.release()
        if self.tasks.spawn(self.invoke_then(spec, payload, options, done, reserved_concurrency, route),
                             name="invoke", answers_errors=True) is None:  # closed: the executor is stopping
            asyncio.get_running_loop().call_soon(
                deliver, done, platform_failure(spec, options, route.metrics, STOPPED))

    async def invoke_then(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions,
                          done: Callable[[InvocationResult], object], reserved: int | None, route: Route) -> None:
        """:meth:`submit`'s task: :meth:`invoke`, then ``done`` (also when it fails or the executor stops)."""
        try:
            result = await self.invoke(spec, payload, options, reserved_concurrency=reserved, route=route)
        except asyncio.CancelledError:
            deliver(done, platform_failure(spec, options, route.metrics, STOPPED))
            raise
        except Exception as exc:  # a bug: the caller still gets an answer
            result = bug_failure(spec, options, route.metrics, exc)
        deliver(done, result)

    def recorded(self, env: Environment, spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                 raw: RawOutcome, cold: bool, init_ms: float | None, record: bytes) -> InvocationResult:
        """The result of an invocation the worker completed (its log ``record`` formatted by the worker)."""
        env.cold_pending = False
        self.logs.append_record(env.log_group, env.log_stream, record)
        return invocation_result(spec, options, fm, raw, cold, init_ms, record)

    def unfinished(self, env: Environment, spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                   raw: RawOutcome, cold: bool, init_ms: float | None) -> InvocationResult | None:
        """The result of an attempt whose invocation did not complete (no record): a fault (timeout, crash, OOM),
        formatted here (:meth:`_finish`); None when the environment turned out to have died before the invocation
        reached it (the caller tries another). Init failures are :meth:`_failed_init`'s."""
        if raw.kind is Kind.STALE:
            return None
        env.cold_pending = False
        lines = init_lines(env) if cold else []
        lines.append(logfmt.start_line(options.request_id, spec.version))
        return self._finish(env, spec, options, fm, raw, lines, cold, init_ms)

    async def _failed_init(self, env: Environment, pid: PoolId, spec: FunctionSpec, payload: bytes,
                           options: InvokeOptions, fm: FunctionMetrics) -> InvocationResult:
        """The invocation given an environment whose Init failed: Init again inside it after an on-demand Init
        timeout (:meth:`_run_suppressed_init`), else the Init failure as its result."""
        failure = env.init_failure
        assert failure is not None
        if failure.kind is Kind.TIMEOUT and env.init_type == ON_DEMAND:
            return await self._run_suppressed_init(env, pid, spec, payload, options, fm)
        cold = env.cold_pending
        env.cold_pending = False
        lines = init_lines(env) if cold else []
        raw = init_failure(env, failure, options.request_id, lines)
        lines.append(logfmt.start_line(options.request_id, spec.version))
        return self._finish(env, spec, options, fm, raw, lines, cold, None)

    async def _run_suppressed_init(self, first: Environment, pid: PoolId, spec: FunctionSpec, payload: bytes,
                                   options: InvokeOptions, fm: FunctionMetrics) -> InvocationResult:
        """Init exceeded its cap: as AWS does, Init runs again inside the invoke, bounded by the function
        timeout; the Duration then includes it and no Init Duration is reported."""
        rid = options.request_id
        failed = first.init_failure
        assert failed is not None
        lines = [logfmt.init_start_line(first.runtime_version, first.region), *logfmt.output_lines(failed.output),
                 logfmt.init_report_line(failed.duration_ms, "timeout", None), logfmt.start_line(rid, spec.version)]
        t0 = time.perf_counter()
        async with self._pool.acquire(pid, spec, init_timeout_s=spec.timeout_s) as env:
            env.cold_pending = False  # its Init (if any) belongs to this invocation
            lines += logfmt.output_lines(env.init_output)
            spent = time.perf_counter() - t0
            again = env.init_failure
            if again is None:
                raw = await env.invoke(rid, payload, options.invoked_arn, options.client_context,
                                       options.display_name, budget_s=max(spec.timeout_s - spent, 0.001),
                                       trace=options.trace_id)
                if raw.kind is Kind.STALE:
                    raw = RawOutcome(kind=Kind.EXIT, error_type="Runtime.ExitError", duration_ms=0.0, max_rss_kb=0,
                                     payload=platform_error("Runtime.ExitError", rid, describe_exit(env.exit_status)),
                                     output=b"", reset=True)
                elif raw.kind is not Kind.TIMEOUT:
                    raw.duration_ms += spent * 1000.0
            elif again.kind is Kind.TIMEOUT:
                raw = RawOutcome(
                    kind=Kind.TIMEOUT,
                    payload=platform_error(
                        "Sandbox.Timedout", rid, f"Task timed out after {spec.timeout_s:.2f} seconds"
                    ),
                    error_type="Sandbox.Timedout",
                    duration_ms=spec.timeout_s * 1000.0,
                    max_rss_kb=0,
                    output=again.output,
                    reset=True,
                )
            else:
                raw = init_failure(env, again, rid, lines)
            return self._finish(env, spec, options, fm, raw, lines, True, None)

    def _finish(self, env: Environment, spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                raw: RawOutcome, lines: list[str], cold: bool, init_ms: float | None) -> InvocationResult:
        """Log lines (after START), logs, metrics and the result value of one invocation."""
        rid = options.request_id
        if raw.output:
            lines += logfmt.output_lines(raw.output)
        kind = raw.kind
        status = None if kind is Kind.OK or kind is Kind.ERROR else fault_lines(raw, rid, spec, lines)
        lines.append(logfmt.end_line(rid))
        mem_mb = spec.memory_mb if kind is Kind.OOM else logfmt.max_memory_used_mb(spec.memory_mb, raw.max_rss_kb)
        lines.append(logfmt.report_line(rid, raw.duration_ms, spec.memory_mb, mem_mb, init_ms, status,
                                        raw.error_type if status == "error" else None))
        self.logs.append(env.log_group, env.log_stream, lines, rid)
        return invocation_result(spec, options, fm, raw, cold, init_ms, lines, mem_mb)


