"""Keeps one process's executor in line with the shared registry (the change-feed consumer).

A poll task (owned here through a :class:`~edge.tasks.TaskOwner`, started/stopped by :class:`~edge.invocation.service.facade.LambdaService`) reads
``PRAGMA data_version`` in a worker thread when the registry's files were written (an inotify
:class:`~edge.inotify.DatabaseWatch` on the loop: at once, then at most once per ``poll_interval_s``), and every
:data:`~edge.inotify.FALLBACK_POLL_S` in any case; where inotify is unavailable, every ``poll_interval_s`` as before. An idle
process no longer wakes a thread ten times a second, and a loaded POP no longer hands its GIL to one (measured in
:mod:`edge.inotify`). When the registry changed (another process committed, or this one did: the cache
generation moved) it reconciles:

1. ``executor.configure_concurrency(account_limit=..., reserved={function: n})``
2. provisioned concurrency: ``executor.set_provisioned(spec, n)`` for every config whose target version or
   count changed, ``set_provisioned(old_spec, 0)`` for configs that disappeared or moved away;
3. retirement: ``executor.retire(function, keep=current pool keys)`` for every function whose set of pool keys
   changed (a ``$LATEST`` update yields a new key; deleted functions/versions keep nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from edge.inotify import DatabaseWatch
from edge.invocation.models import FunctionSpec, InvocationResult, InvokeOptions, RuntimeState
from edge.invocation.registry.core import Registry
from edge.tasks import TaskOwner, wait_set

if TYPE_CHECKING:
    from edge.invocation.execution.logs import LogStore
    from edge.invocation.execution.metrics import Metrics

__all__ = ["ExecutorLike", "ExecutorSync"]

log = logging.getLogger("edgelab.invocation.sync")
PoolKey = tuple[str, str, str]


class ExecutorLike(Protocol):
    """The part of ``edge.invocation.execution.executor.Executor`` the service relies on, and that the nodes
    reach through ``LambdaService.executor`` (``reset``, ``metrics``, ``logs``: the admin endpoints)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def invoke(
        self, spec: FunctionSpec, payload: bytes, options: InvokeOptions, *, reserved_concurrency: int | None = None,
        route: Any = None,
    ) -> InvocationResult: ...
    def route(self, spec: FunctionSpec, region: str, display_name: str | None, log_group: str | None) -> Any: ...
    def configure_concurrency(self, *, account_limit: int, reserved: Mapping[str, int]) -> None: ...
    async def set_provisioned(self, spec: FunctionSpec, count: int, *, region: str | None = None) -> None: ...
    def provisioned_status(self, spec: FunctionSpec, *, region: str | None = None) -> tuple[int, str, str | None]: ...
    async def retire(self, function_name: str, keep: Collection[PoolKey] = ()) -> None: ...
    def runtime_state(self, runtime: str) -> RuntimeState: ...
    async def check_runtime(self, runtime: str) -> RuntimeState: ...
    async def reset(self) -> None: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def logs(self) -> LogStore: ...


class ExecutorSync:
    def __init__(
        self, registry: Registry, executor: ExecutorLike | None, account_limit: int, poll_interval_s: float, region: str
    ) -> None:
        self.registry = registry
        self.region = region  # the executing region: provisioned environments are kept warm here
        self.executor = executor
        self.account_limit = account_limit
        self._tasks = TaskOwner("edgelab-registry-sync")
        self._applied_generation = -1
        self._provisioned: dict[PoolKey, tuple[FunctionSpec, int]] = {}
        self._keys: dict[str, frozenset[PoolKey]] = {}
        self._specs: dict[tuple[str, str], FunctionSpec] = {}
        self._lock = asyncio.Lock()  # the poll task and direct callers (after a write) must not interleave
        self._watch = DatabaseWatch(registry.db.path, poll_interval_s)

    async def start(self) -> None:
        await self.reconcile()
        self._watch.open()
        self._tasks.spawn(self._poll_loop(), name="poll")

    async def close(self) -> None:
        await self._tasks.aclose()
        self._watch.close()

    async def _poll_loop(self) -> None:
        while True:
            await wait_set(self._watch.written, self._watch.timeout)
            self._watch.written.clear()  # before the poll: a write during it wakes the next round
            try:
                await asyncio.to_thread(self.registry.cache.poll)
                if self.registry.cache.generation != self._applied_generation:
                    await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep polling: a transient SQLite error must not stop the change feed
                log.exception("registry change-feed reconcile failed")

    async def reconcile(self) -> None:
        """Apply the registry's current concurrency settings and retire stale environments."""
        async with self._lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        generation = self.registry.cache.generation
        reserved = await asyncio.to_thread(self.registry.concurrency.reserved_map)
        provisioned = await asyncio.to_thread(self.registry.concurrency.list_provisioned)
        records = await asyncio.to_thread(self.registry.list_functions, all_versions=True)
        self._specs = {(r.function_name, r.version): self.registry.spec_of(r) for r in records}
        self._applied_generation = generation
        if self.executor is None:
            return
        self.executor.configure_concurrency(account_limit=self.account_limit, reserved=reserved)
        await self._apply_provisioned({
            self._specs[(rec.function_name, version)].pool_key: (self._specs[(rec.function_name, version)], rec.requested)
            for rec, version in provisioned
            if (rec.function_name, version) in self._specs
        })  # fmt: skip
        await self._retire()

    async def _apply_provisioned(self, desired: dict[PoolKey, tuple[FunctionSpec, int]]) -> None:
        assert self.executor is not None
        for key, (spec, _count) in list(self._provisioned.items()):
            if key not in desired:
                await self.executor.set_provisioned(spec, 0, region=self.region)
        for key, (spec, count) in desired.items():
            if self._provisioned.get(key, (None, 0))[1] != count:
                await self.executor.set_provisioned(spec, count, region=self.region)
        self._provisioned = desired

    async def _retire(self) -> None:
        assert self.executor is not None
        current: dict[str, set[PoolKey]] = {}
        for spec in self._specs.values():
            current.setdefault(spec.function_name, set()).add(spec.pool_key)
        for name in set(self._keys) | set(current):
            keep = frozenset(current.get(name, ()))
            # also for names not seen before: a function created and updated between two polls may already
            # have environments of its first revision
            if self._keys.get(name) != keep:
                await self.executor.retire(name, keep=keep)
        self._keys = {name: frozenset(keys) for name, keys in current.items()}

    def provisioned_status(self, function_name: str, version: str) -> tuple[int, str, str | None]:
        spec = self._specs.get((function_name, version))
        if self.executor is None or spec is None or spec.pool_key not in self._provisioned:
            return 0, "IN_PROGRESS", None
        return self.executor.provisioned_status(spec, region=self.region)
