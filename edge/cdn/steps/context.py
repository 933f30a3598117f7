"""``PopContext``: everything the pipeline steps share for one POP (built once by ``make_pop_app``), and
``BackgroundTasks``, the owner of the POP's background refreshes (stale-while-revalidate)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any

from edge.cdn.config.behaviors import match_behavior
from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.policy import PolicyOptions, StoreContext
from edge.cdn.cache.store import CacheStore
from edge.cdn.config.distribution import Behavior, Distribution, OriginSpec
from edge.cdn.models import EdgeRequest, EdgeResponse, Origin
from edge.cdn.origin.client import OriginClient
from edge.cdn.responses import PopIdentity
from edge.cdn.stats import PopStats
from edge.cdn.steps import Exchange, Step, TriggerCall, TriggerRunner
from edge.cdn.steps.viewer_headers import wanted

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
    """The shared, long-lived dependencies of one POP's pipeline."""

    distribution: Distribution
    identity: PopIdentity
    store: CacheStore
    coalescer: Coalescer
    origin: OriginClient
    stats: PopStats
    options: PolicyOptions
    background: BackgroundTasks
    triggers: TriggerRunner | None = None
    clock: Callable[[], float] = time.time  # epoch seconds (cache ages); injectable for tests
    store_contexts: dict[int, StoreContext] = field(default_factory=dict)  # by id(behavior)
    edge_origins: dict[str, Origin] = field(default_factory=dict)  # by origin id

    viewer_headers: dict[int, tuple[str, ...]] = field(default_factory=dict)  # by id(behavior)
    forwarding: dict[int, Any] = field(default_factory=dict)  # by id(behavior): steps.origin_request.ForwardingPlan
    matched: dict[str, Behavior] = field(default_factory=dict)  # URI path -> behavior (``match``)
    matched_limit: int = 4096

    def viewer_header_names(self, behavior: Behavior) -> tuple[str, ...]:
        """CloudFront-generated viewer headers the behavior's policies select (computed once per behavior)."""
        names = self.viewer_headers.get(id(behavior))
        if names is None:
            names = self.viewer_headers[id(behavior)] = wanted(behavior)
        return names

    def edge_origin(self, spec: OriginSpec) -> Origin:
        """The Lambda@Edge origin record of ``spec`` (built once per origin)."""
        origin = self.edge_origins.get(spec.id)
        if origin is None:
            origin = self.edge_origins[spec.id] = spec.to_edge_origin()
        return origin

    def match(self, path: str) -> Behavior:
        """``match_behavior`` for ``path``, memoised (bounded: cleared when ``matched_limit`` paths are held)."""
        behavior = self.matched.get(path)
        if behavior is None:
            behavior = match_behavior(self.distribution, path)
            if len(self.matched) >= self.matched_limit:
                self.matched.clear()
            self.matched[path] = behavior
        return behavior

    def forwarding_plan(self, behavior: Behavior) -> Any:
        """What ``behavior`` forwards to the origin (``steps.origin_request.ForwardingPlan``, once per behavior)."""
        plan = self.forwarding.get(id(behavior))
        if plan is None:
            from edge.cdn.steps.origin_request import ForwardingPlan

            plan = self.forwarding[id(behavior)] = ForwardingPlan(behavior)
        return plan

    def store_context(self, behavior: Behavior) -> StoreContext:
        ctx = self.store_contexts.get(id(behavior))
        if ctx is None:
            ctx = self.store_contexts[id(behavior)] = StoreContext.for_behavior(self.distribution, behavior)
        return ctx

    def hooked(self, behavior: Behavior, step: Step) -> bool:
        return self.triggers is not None and self.triggers.associated(behavior, step)

    def run_hook(self, ex: Exchange, step: Step, request: EdgeRequest,
                 response: EdgeResponse | None = None) -> Awaitable[EdgeRequest | EdgeResponse]:
        """Run the trigger of ``step`` (the caller checked ``hooked``); errors propagate as LambdaError.
        Returns the runner's coroutine itself (awaited by the caller: no extra coroutine frame per hook)."""
        assert self.triggers is not None and ex.behavior is not None
        return self.triggers.run(TriggerCall(step, self.distribution, ex.behavior, ex.request_id, request, response,
                                             ex.timing))

