"""``Executor.submit``'s invocations on a warm environment, without a coroutine: :class:`Submission` is the
environment's waiter (``Environment.send``); the worker's answer finishes the invocation inside the channel's
``data_received``. Also the bookkeeping every invocation shares with ``Executor.invoke`` (:func:`count_start`) and the
one way a submitter's callback is called (:func:`deliver`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from edge.invocation.execution.environment import Environment
from edge.invocation.execution.limiter import ConcurrencyLimiter, Lease
from edge.invocation.execution.metrics import FunctionMetrics
from edge.invocation.execution.outcomes import platform_failure
from edge.invocation.models import FunctionSpec, InvocationResult, InvokeOptions

if TYPE_CHECKING:
    from edge.invocation.execution.environment import RawOutcome
    from edge.invocation.execution.pool import EnvironmentPool, PoolId
    from edge.tasks import TaskOwner

__all__ = ["STOPPED", "Route", "Submission", "bug_failure", "count_start", "deliver"]

log = logging.getLogger("edgelab.invocation.executor")


@dataclass(frozen=True, slots=True)
class Route:
    """Where the invocations of one spec, presented one way in one region, are counted and run: the region's
    limiter, the (region, function, version) metrics and the pool. Fixed for the life of the executor:
    ``Executor.route`` builds it, a caller invoking the same target again and again keeps it."""

    limiter: ConcurrencyLimiter
    metrics: FunctionMetrics
    pool_id: PoolId
    sends: bool = True  # its environments take ``Environment.send`` (the zygote's Python workers)


class Core(Protocol):
    """What a :class:`Submission` needs of its executor (``Executor``)."""

    tasks: TaskOwner

    def recorded(self, env: Environment, spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                 raw: RawOutcome, cold: bool, init_ms: float | None, record: bytes) -> InvocationResult: ...

    def unfinished(self, env: Environment, spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics,
                   raw: RawOutcome, cold: bool, init_ms: float | None) -> InvocationResult | None: ...

    async def invoke_then(self, spec: FunctionSpec, payload: bytes, options: InvokeOptions,
                          done: Callable[[InvocationResult], object], reserved: int | None, route: Route) -> None: ...


STOPPED = "Runtime exited with error: the invocation core stopped"


def count_start(fm: FunctionMetrics, lease: Lease, limiter: ConcurrencyLimiter, spec: FunctionSpec) -> None:
    """The metrics of an invocation that got its lease (``fm.concurrent`` goes down again when it ends)."""
    fm.concurrent += 1
    if fm.concurrent > fm.max_concurrent:
        fm.max_concurrent = fm.concurrent
    fm.invocations += 1
    if lease.provisioned:
        fm.provisioned_invocations += 1
    elif limiter.has_provisioned(spec.pool_key):
        fm.spillover_invocations += 1


def bug_failure(spec: FunctionSpec, options: InvokeOptions, fm: FunctionMetrics, exc: Exception) -> InvocationResult:
    """The answer a submitter gets when finishing its invocation failed on a bug (logged with its traceback: call it
    in the ``except``)."""
    log.exception("invocation of %s:%s failed", spec.function_name, spec.version)
    return platform_failure(spec, options, fm, f"Runtime exited with error: {exc!r}")


def deliver(done: Callable[[InvocationResult], object], result: InvocationResult) -> None:
    """Give ``result`` to a :meth:`Executor.submit` caller: whatever its callback raises is logged, not raised into
    the event loop's protocol callback or task that delivers it."""
    try:
        done(result)
    except Exception:
        log.exception("an invocation's completion callback failed")


class Submission:
    """The waiter of an invocation :meth:`Executor.submit` sent to a warm environment (``Environment.send``): the
    environment calls :meth:`set_result` with the worker's answer from its channel's ``data_received`` (or with a
    fault, from a timer or the channel's loss), which finishes the invocation there and then - the record stored,
    the metrics, the environment and the lease given back - and calls ``done``. A fault needs waiting (the worker's
    exit status): it finishes in a task of the executor's."""

    __slots__ = ("cold", "done_cb", "env", "executor", "finished", "lease", "log", "options", "payload", "pool",
                 "route", "spec")

    def __init__(self, executor: Core, pool: EnvironmentPool, env: Environment, spec: FunctionSpec, payload: bytes,
                 options: InvokeOptions, route: Route, lease: Lease, done: Callable[[InvocationResult], object],
                 cold: bool, log: tuple[list[str] | None, float | None]) -> None:
        self.executor = executor
        self.pool = pool
        self.env = env
        self.spec = spec
        self.payload = payload
        self.options = options
        self.route = route
        self.lease = lease
        self.done_cb = done
        self.cold = cold
        self.log = log
        self.finished = False

    def done(self) -> bool:
        return self.finished

    def set_result(self, got: object) -> None:
        self.finished = True
        env = self.env
        if type(got) is not tuple:
            if not self.executor.tasks.spawn(self._after_fault(got), name="invoke-fault", answers_errors=True):
                self._end(platform_failure(self.spec, self.options, self.route.metrics, STOPPED))
            return
        raw = env.outcome(got, self.log)
        record = raw.record
        assert record is not None  # a completed invocation, sent with ``log``: the worker formatted its record
        self._end(self.executor.recorded(env, self.spec, self.options, self.route.metrics, raw, self.cold,
                                          self.log[1], record))

    def _end(self, result: InvocationResult | None) -> None:
        """Give the environment and the lease back, then the result to the caller."""
        route = self.route
        self.pool.checkin(route.pool_id, self.env)
        self.lease.release()
        route.metrics.concurrent -= 1
        if result is not None:
            deliver(self.done_cb, result)

    async def _after_fault(self, got: object) -> None:
        """A fault (timeout, crash, OOM, channel lost): its outcome once the worker's end is known; an environment
        that had died before the invocation reached it (STALE) is replaced through :meth:`Executor.invoke`."""
        executor, spec, options = self.executor, self.spec, self.options
        result: InvocationResult | None = None
        try:
            raw = await self.env.fault(got, options.request_id)
            result = executor.unfinished(self.env, spec, options, self.route.metrics, raw, self.cold, self.log[1])
        except asyncio.CancelledError:
            result = platform_failure(spec, options, self.route.metrics, STOPPED)
            raise
        except Exception as exc:  # a bug: the caller still gets an answer
            result = bug_failure(spec, options, self.route.metrics, exc)
        finally:
            self._end(result)
        if result is None:  # STALE: another environment runs it
            await executor.invoke_then(spec, self.payload, options, self.done_cb, None, self.route)
