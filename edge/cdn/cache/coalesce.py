"""Request collapsing: one origin fetch per cache key at a time (contract §5.3 "Request collapsing").

``await coalescer.run(key, factory)`` -> ``(result, leader)``. The first caller for ``key`` (the leader) awaits
``factory()`` itself - no extra task is created, so nothing can leak. Concurrent callers for the same key
(followers) wait for the leader's outcome:

* success: every follower gets the same result object (``leader=False``; the POP re-checks the cache and logs
  ``Hit`` for followers, ``Miss`` for the leader);
* failure: the same exception is raised in every follower;
* the leader is cancelled (its viewer went away): followers are woken with :class:`LeaderCancelled`
  internally and retry; the first to retry becomes the new leader and runs the factory again. The
  leader's cancellation propagates to the leader only.

A follower being cancelled never disturbs the leader or other followers (it waits on a shielded future).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Coalescer"]


class LeaderCancelled(Exception):
    """Internal: the leader of a flight was cancelled; followers retry."""


class Coalescer(Generic[T]):
    """Single-flight per key for async factories; one instance per POP (no module state)."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[T]] = {}
        self._waiting: dict[Hashable, int] = {}

    def in_flight(self, key: Hashable) -> bool:
        return key in self._flights

    def waiters(self, key: Hashable) -> int:
        """How many followers currently wait on ``key`` (for stats/tests)."""
        return self._waiting.get(key, 0)

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run ``factory`` once for all concurrent callers with this ``key``; returns ``(result, is_leader)``."""
        while True:
            fut = self._flights.get(key)
            if fut is None:
                return await self._lead(key, factory), True
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                return await asyncio.shield(fut), False
            except LeaderCancelled:
                continue  # the leader gave up: try to become the leader ourselves
            finally:
                left = self._waiting[key] - 1
                if left:
                    self._waiting[key] = left
                else:
                    del self._waiting[key]

    async def _lead(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume_exception)
        self._flights[key] = fut
        try:
            result = await factory()
        except Exception as exc:  # every failure is shared with the followers
            fut.set_exception(exc)
            raise
        except BaseException:  # cancellation (or interpreter exit): followers retry without us
            fut.set_exception(LeaderCancelled())
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            if self._flights.get(key) is fut:
                del self._flights[key]


def _consume_exception(fut: asyncio.Future[T]) -> None:
    """Mark the exception retrieved so a flight nobody followed does not log "never retrieved"."""
    if not fut.cancelled():
        fut.exception()
