"""The one way edgelab starts background tasks: a :class:`TaskOwner` per component.

``asyncio.create_task`` keeps only a weak reference to its task and nobody awaits it unless somebody was told
to: a task started that way can be garbage-collected mid-flight, outlive the component that started it, or fail
without a word. Every long-lived component therefore owns its tasks through a ``TaskOwner``, which

- keeps a strong reference to each task until it ends, and names it;
- optionally keys tasks (at most one running per key: e.g. one background refresh per cache key) and bounds
  how many may run at once (``spawn`` declines, and closes the coroutine, past the limit);
- logs a task's failure with its traceback when it ends (a failure is never lost), and calls an optional
  ``on_error`` hook;
- waits, without cancelling, for its tasks to finish in :meth:`join` (bounded: a shutdown grace period, after
  which the caller decides);
- cancels and awaits every task in :meth:`aclose` (idempotent; nothing can be spawned afterwards), bounded by
  a timeout so that a task that refuses to stop cannot hang shutdown.

The raw ``asyncio.create_task`` / ``asyncio.ensure_future`` are banned elsewhere by ruff (``TID251`` in
``pyproject.toml``); ``asyncio.TaskGroup`` (structured: awaited where it is opened) stays allowed.

:func:`wait_set` is how those tasks wait for an :class:`asyncio.Event` with a timeout (not ``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar

__all__ = ["TaskOwner", "wait_set"]

T = TypeVar("T")

log = logging.getLogger("edgelab.tasks")

_PRUNE_MIN = 64  # the smallest set of tasks at which finished ``answers_errors`` tasks are dropped


class TaskOwner:
    """Owns the background tasks of one component (see the module docstring)."""

    __slots__ = ("_closed", "_keys", "_limit", "_on_error", "_prune_at", "_tasks", "name")

    def __init__(self, name: str, *, limit: int | None = None,
                 on_error: Callable[[asyncio.Task[Any], BaseException], None] | None = None) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keys: dict[Hashable, asyncio.Task[Any]] = {}
        self._limit = limit
        self._closed = False
        self._on_error = on_error
        self._prune_at = _PRUNE_MIN  # size of _tasks at which finished answers_errors tasks are dropped

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None, key: Hashable | None = None,
              answers_errors: bool = False) -> asyncio.Task[T] | None:
        """Run ``coro`` as a task owned here; None (and ``coro`` closed, never run) when the owner is closed, a
        task with the same ``key`` is still running, or ``limit`` tasks are running.

        ``answers_errors`` (not with ``key``): ``coro`` deals with its own failures (the POP's per-request tasks
        answer the viewer whatever happens), so the task gets no done callback: the owner forgets it once it is
        done, lazily, whenever its set of tasks has doubled (amortised; ``len``, ``join`` and the ``limit`` count
        only running tasks). A done callback is ~8k instructions per task (scheduled as its own event-loop handle;
        ``python -m bench.pop_path``: a triggered cache hit 329.9k -> 326.7k). Should such a task fail all the
        same, asyncio reports it ("Task exception was never retrieved")."""
        if (self._closed or (key is not None and key in self._keys)
                or (self._limit is not None and len(self._tasks) >= self._limit and self._prune() >= self._limit)):
            coro.close()
            return None
        label = f"{self.name}:{name or (repr(key) if key is not None else getattr(coro, '__name__', 'task'))}"
        task = asyncio.get_running_loop().create_task(coro, name=label[:160])
        tasks = self._tasks
        if answers_errors and key is None:
            if len(tasks) >= self._prune_at:
                self._prune_at = max(_PRUNE_MIN, 2 * self._prune())
            tasks.add(task)
            return task
        tasks.add(task)
        if key is None:
            task.add_done_callback(self._done)
        else:
            self._keys[key] = task
            task.add_done_callback(lambda t: self._done(t, key))
        return task

    def _prune(self) -> int:
        """Drop the finished tasks (those spawned with ``answers_errors``); the number still running."""
        self._tasks = {t for t in self._tasks if not t.done()}
        return len(self._tasks)

    def _done(self, task: asyncio.Task[Any], key: Hashable | None = None) -> None:
        self._tasks.discard(task)
        if key is not None and self._keys.get(key) is task:
            del self._keys[key]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("task %s failed", task.get_name(), exc_info=exc)
        if self._on_error is not None:
            self._on_error(task, exc)

    def __len__(self) -> int:
        return self._prune()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    @property
    def closed(self) -> bool:
        return self._closed

    async def join(self, timeout: float | None) -> bool:
        """Wait until this owner runs no task (tasks spawned meanwhile included), at most ``timeout`` seconds
        (None: no bound); True when it got there, False when time ran out. Cancels nothing and does not close
        the owner: a grace period before :meth:`aclose`. A task of this owner cannot join it (it would wait for
        itself): RuntimeError."""
        if asyncio.current_task() in self._tasks:
            raise RuntimeError(f"a task of {self.name} cannot join its own owner")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._prune():
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(list(self._tasks), timeout=left)
        return True

    async def aclose(self, timeout: float | None = 10.0) -> None:
        """Refuse new tasks, cancel the running ones and wait for them (at most ``timeout`` seconds: a task that
        is still running then is logged and left to the event loop's shutdown)."""
        self._closed = True
        self._prune()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.error("task %s did not stop within %s s of its cancellation", task.get_name(), timeout)


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass (None: no limit); True if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives just as the awaited
    future completes (gh-86296), so a task cancelled in that instant keeps running, and whoever awaits it
    after cancelling (a ``close()``) waits forever. ``asyncio.timeout`` tells the two cancellations apart."""
    if timeout is None:
        await event.wait()
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
