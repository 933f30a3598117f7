"""The durable asynchronous-event queue: tables ``async_events``, ``async_stats`` and the local queues' messages,
in the registry's SQLite file (``registry.db``), through a connection of its own.

The connection does not bump the registry's change feed (``Database(track_changes=False)``): thousands of
event commits per second must not invalidate every process's function cache.

Writes are *operations* (:class:`Insert`, :class:`Delete`, :class:`Retry`, :class:`Message`, :class:`Count`)
applied in order inside one transaction by :meth:`AsyncStore.apply`; :class:`GroupCommitter` gathers the
operations of concurrent callers into one transaction (group commit) and answers each caller after that
commit. All methods of :class:`AsyncStore` block: async callers use ``asyncio.to_thread`` (the committer does).

Delivery claims events by setting ``lease_until`` (> 0 = in flight). Exactly one process delivers (the control
process); at its start :meth:`AsyncStore.release_all` returns events left in flight by a crash to the queue,
so they are delivered again (at-least-once, as AWS).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from edge.invocation.registry.db import Database
from edge.tasks import TaskOwner

__all__ = [
    "STAT_NAMES",
    "AsyncStore",
    "Count",
    "Delete",
    "GroupCommitter",
    "Insert",
    "Message",
    "Retry",
    "StoredEvent",
]

log = logging.getLogger("edgelab.invocation.async")

STAT_NAMES = (
    "received", "delivered", "retried", "throttled", "failed", "expired", "dead_lettered", "failure_destination",
    "success_destination", "destination_failures", "loop_dropped", "dropped_no_function",
)


@dataclass(frozen=True, slots=True)
class Insert:
    request_id: str
    function_name: str
    qualifier: str | None
    payload: bytes
    received_at: float
    depth: int = 0
    due_at: float | None = None  # default: received_at


@dataclass(frozen=True, slots=True)
class Delete:
    event_id: int


@dataclass(frozen=True, slots=True)
class Retry:
    event_id: int
    due_at: float
    attempts: int
    throttles: int
    last_version: str | None = None
    last_error: bytes | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """Send to a local queue; a missing queue is counted as ``destination_failures`` of ``function_name``."""

    queue: str
    body: str
    attributes: dict[str, Any]
    function_name: str = ""


@dataclass(frozen=True, slots=True)
class Count:
    function_name: str
    name: str
    n: int = 1


Op = Insert | Delete | Retry | Message | Count


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    request_id: str
    function_name: str
    qualifier: str | None
    payload: bytes
    received_at: float
    attempts: int
    throttles: int
    depth: int
    last_version: str | None
    last_error: bytes | None


_EVENT_COLS = "id, request_id, function_name, qualifier, payload, received_at, attempts, throttles, depth, last_version, last_error"


class AsyncStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.db = Database(path, track_changes=False)
        # an accepted event must survive an OS crash too, not only a kill -9: fsync the WAL at every commit
        # (group commit keeps that to one fsync per batch of concurrent requests)
        self.db.execute_pragma("synchronous=FULL")
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    # -- writes ------------------------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` in one transaction (all or nothing)."""
        counts: Counter[tuple[str, str]] = Counter()
        inserts: list[tuple[Any, ...]] = []
        with self.db.write() as cur:
            for op in ops:
                if isinstance(op, Insert):
                    inserts.append((op.request_id, op.function_name, op.qualifier, op.payload, op.received_at,
                                    op.received_at if op.due_at is None else op.due_at, op.depth))
                    counts[(op.function_name, "received")] += 1
                elif isinstance(op, Delete):
                    cur.execute("DELETE FROM async_events WHERE id=?", (op.event_id,))
                elif isinstance(op, Retry):
                    cur.execute(
                        "UPDATE async_events SET due_at=?, attempts=?, throttles=?, lease_until=0, last_version=?, "
                        "last_error=? WHERE id=?",
                        (op.due_at, op.attempts, op.throttles, op.last_version, op.last_error, op.event_id),
                    )
                elif isinstance(op, Message):
                    if not self._send(cur, op.queue, op.body, op.attributes):
                        counts[(op.function_name, "destination_failures")] += 1
                        log.error("queue %s does not exist (any more): a message from %s was not delivered",
                                  op.queue, op.function_name or "?")
                else:
                    counts[(op.function_name, op.name)] += op.n
            if inserts:
                cur.executemany(
                    "INSERT INTO async_events(request_id, function_name, qualifier, payload, received_at, due_at, depth)"
                    " VALUES (?,?,?,?,?,?,?)", inserts,
                )
            if counts:
                cur.executemany(
                    "INSERT INTO async_stats(function_name, name, value) VALUES (?,?,?) "
                    "ON CONFLICT(function_name, name) DO UPDATE SET value = value + excluded.value",
                    [(fn, name, n) for (fn, name), n in counts.items()],
                )

    def _send(self, cur: sqlite3.Cursor, queue: str, body: str, attributes: dict[str, Any]) -> bool:
        if cur.execute("SELECT 1 FROM queues WHERE name=?", (queue,)).fetchone() is None:
            return False
        now = self.clock()
        row = cur.execute("SELECT attributes FROM queue_attributes WHERE queue=?", (queue,)).fetchone()
        delay = float(orjson.loads(row[0]).get("DelaySeconds", 0)) if row else 0.0  # the queue's DelaySeconds
        cur.execute(
            "INSERT INTO queue_messages(queue, message_id, body, attributes, sent_at, visible_at) VALUES (?,?,?,?,?,?)",
            (queue, str(uuid.uuid4()), body, orjson.dumps(attributes).decode(), now, now + delay),
        )
        return True

    # -- delivery ----------------------------------------------------------------------------------------

    def release_all(self) -> int:
        """Return every in-flight event to the queue (the deliverer starts; earlier claims died with it)."""
        with self.db.write() as cur:
            cur.execute("UPDATE async_events SET lease_until=0 WHERE lease_until>0")
            return cur.rowcount

    def claim_due(self, limit: int) -> list[StoredEvent]:
        """Mark up to ``limit`` due, unclaimed events in flight and return them (oldest due first)."""
        now = self.clock()
        with self.db.read() as cur:  # idle polls must not take the database write lock
            if cur.execute("SELECT 1 FROM async_events WHERE lease_until=0 AND due_at<=? LIMIT 1", (now,)).fetchone() is None:
                return []
        with self.db.write() as cur:
            rows = cur.execute(
                f"UPDATE async_events SET lease_until=? WHERE id IN (SELECT id FROM async_events "
                f"WHERE lease_until=0 AND due_at<=? ORDER BY due_at, id LIMIT ?) RETURNING {_EVENT_COLS}",
                (now, now, limit),
            ).fetchall()
        return sorted((StoredEvent(*r) for r in rows), key=lambda e: e.id)

    def next_due(self) -> float | None:
        with self.db.read() as cur:
            row = cur.execute("SELECT MIN(due_at) FROM async_events WHERE lease_until=0").fetchone()
        return None if row[0] is None else float(row[0])

    # -- observability -----------------------------------------------------------------------------------

    def queue_depth(self) -> dict[str, dict[str, Any]]:
        """Per function: events queued (pending + in flight), in flight, age of the oldest (s)."""
        now = self.clock()
        with self.db.read() as cur:
            rows = cur.execute(
                "SELECT function_name, COUNT(*), SUM(lease_until>0), MIN(received_at) FROM async_events "
                "GROUP BY function_name"
            ).fetchall()
        return {fn: {"depth": n, "in_flight": int(busy or 0), "oldest_age_s": round(max(now - oldest, 0.0), 3)}
                for fn, n, busy, oldest in rows}

    def stats(self) -> dict[str, dict[str, int]]:
        with self.db.read() as cur:
            rows = cur.execute("SELECT function_name, name, value FROM async_stats").fetchall()
        out: dict[str, dict[str, int]] = {}
        for fn, name, value in rows:
            out.setdefault(fn, dict.fromkeys(STAT_NAMES, 0))[name] = int(value)
        return out


T = TypeVar("T")


class GroupCommitter(Generic[T]):
    """Batches items submitted concurrently and applies each batch in one blocking call (a worker thread).

    ``submit`` / ``submit_many`` return after the batch holding the item(s) was applied (or raise what the apply
    raised); the items of one ``submit_many`` are always applied in the same batch. The committer task is owned
    here (a :class:`~edge.tasks.TaskOwner`, which logs it if it dies): :meth:`close` flushes what is pending,
    then cancels and awaits it.
    """

    def __init__(self, apply: Callable[[list[T]], None], *, name: str, max_batch: int = 2000) -> None:
        self._apply = apply
        self._name = name
        self._max_batch = max_batch  # items per batch (a submission is never split: it may exceed this)
        self._pending: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._tasks = TaskOwner(name)
        self._task: asyncio.Task[None] | None = None  # the committer (owned by _tasks), for its status
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = self._tasks.spawn(self._run(), name="committer")

    def submit(self, item: T) -> Coroutine[Any, Any, None]:
        """``submit_many((item,))`` (its coroutine: no frame of its own on the accept path)."""
        return self.submit_many((item,))

    async def submit_many(self, items: Sequence[T]) -> None:
        """Apply ``items`` (not changed until this returns) in one batch. One future per submission, not one per
        item gathered: a delivered event's outcome (two operations) costs 22k instructions instead of 60k
        (callgrind, 6,400 submissions from 64 tasks, a no-op apply)."""
        if not items:
            return
        if self._task is None or self._closing:
            raise RuntimeError(f"{self._name} is not running")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((items, fut))
        self._wake.set()
        await fut

    def _take_batch(self) -> list[tuple[Sequence[T], asyncio.Future[None]]]:
        """Whole submissions from the head of the queue, up to ``max_batch`` items (at least one submission)."""
        pending, limit = self._pending, self._max_batch
        n = count = 0
        for items, _ in pending:
            if n and count + len(items) > limit:
                break
            count += len(items)
            n += 1
        batch, self._pending = pending[:n], pending[n:]
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._take_batch()
                items = [item for submitted, _ in batch for item in submitted]
                try:
                    await asyncio.to_thread(self._apply, items)
                except asyncio.CancelledError:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(RuntimeError(f"{self._name} stopped before committing"))
                    raise
                except Exception as exc:  # every caller of the batch learns it was not stored
                    log.exception("%s: batch of %d failed", self._name, len(items))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Commit what is pending (for up to ``timeout_s``), then stop the task. Never hangs: if the committer
        has died or does not drain in time, what is left fails its callers instead."""
        self._closing = True
        task = self._task
        if task is None:
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout_s
        while self._pending and not task.done() and loop.time() < give_up:
            self._wake.set()
            await asyncio.sleep(0.005)
        await self._tasks.aclose()  # (a committer that died earlier was logged by the owner when it did)
        left, self._pending = self._pending, []
        if left:
            log.error("%s: %d item(s) not committed at close", self._name, sum(len(items) for items, _ in left))
        for _, fut in left:
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self._name} stopped before committing"))
        self._task = None
