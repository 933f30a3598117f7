"""``PopContext``: everything the pipeline steps share for one POP (built once by ``edge.cdn.server.pop.PopState``),
and ``BackgroundTasks``, the owner of the POP's background refreshes (stale-while-revalidate)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any

from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.policy import PolicyOptions
from edge.cdn.cache.store import CacheStore
from edge.cdn.config.distribution import Distribution
from edge.cdn.config.plan import BehaviorPlan, DistributionPlan
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.origin.client import OriginClient
from edge.cdn.responses import PopIdentity
from edge.cdn.stats import PopStats
from edge.cdn.steps import Exchange, Step, TriggerCall, TriggerRunner

log = logging.getLogger("edgelab.pop")


class BackgroundTasks:
    """Owns the POP's background tasks: at most one per key, strong references kept, cancelled and awaited
    by ``aclose()`` (called from the POP app's cleanup_ctx). Failures are logged, never lost."""

    def __init__(self, limit: int = 1024) -> None:
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._limit = limit
        self._closed = False

    def spawn(self, key: Hashable, coro: Coroutine[Any, Any, None]) -> bool:
        """Start ``coro`` unless a task for ``key`` is running, the owner is closed, or at the limit."""
        if self._closed or key in self._tasks or len(self._tasks) >= self._limit:
            coro.close()
            return False
        task = asyncio.get_running_loop().create_task(coro, name=f"pop-bg:{key!r}"[:120])
        self._tasks[key] = task
        task.add_done_callback(lambda t, k=key: self._done(k, t))
        return True

    def _done(self, key: Hashable, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task %r failed: %r", key, task.exception())

    def __len__(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()


@dataclass(slots=True)
class PopContext:
    """The shared, long-lived dependencies of one POP's pipeline; ``plans`` is the distribution as compiled when
    the POP loaded it (``edge.cdn.config.plan``)."""

    plans: DistributionPlan
    identity: PopIdentity
    store: CacheStore
    coalescer: Coalescer
    origin: OriginClient
    stats: PopStats
    options: PolicyOptions
    background: BackgroundTasks
    triggers: TriggerRunner | None = None
    clock: Callable[[], float] = time.time  # epoch seconds (cache ages); injectable for tests

    @property
    def distribution(self) -> Distribution:
        return self.plans.distribution

    def match(self, path: str) -> BehaviorPlan:
        """The plan of the cache behavior selected for the URI path ``path``."""
        return self.plans.match(path)

    def run_hook(self, ex: Exchange, step: Step, request: EdgeRequest,
                 response: EdgeResponse | None = None) -> Awaitable[EdgeRequest | EdgeResponse]:
        """Run the function associated with ``step`` (the pipeline checked ``step in ex.plan.hooks``); errors
        propagate as LambdaError. Returns the runner's coroutine itself (awaited by the caller)."""
        plan = ex.plan
        assert self.triggers is not None and plan is not None
        return self.triggers.run(TriggerCall(
            event_type=step, distribution=self.distribution, behavior=plan.behavior, association=plan.hooks[step],
            request_id=ex.request_id, request=request, response=response, timing=ex.timing))
