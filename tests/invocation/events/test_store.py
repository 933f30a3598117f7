"""The durable event store and its group committer: batching, failure propagation, claims and releases."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.invocation.events.model import AsyncSettings, Condition, EventInvokeConfig, decide
from edge.invocation.events.store import AsyncStore, Count, Delete, GroupCommitter, Insert, Retry
from edge.invocation.registry.core import Registry


async def test_concurrent_submits_share_transactions() -> None:
    batches: list[int] = []
    gate = threading.Event()

    def apply(items: list[int]) -> None:
        gate.wait(1)  # the first batch is slow: the others pile up behind it
        batches.append(len(items))

    committer: GroupCommitter[int] = GroupCommitter(apply, name="t")
    committer.start()
    tasks = [asyncio.create_task(committer.submit(i)) for i in range(200)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(*tasks)
    await committer.close()
    assert sum(batches) == 200 and len(batches) <= 3


async def test_a_failed_batch_fails_every_caller_and_the_next_batch_works() -> None:
    calls: list[list[int]] = []

    def apply(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise OSError("disk full")

    committer: GroupCommitter[int] = GroupCommitter(apply, name="t")
    committer.start()
    with pytest.raises(OSError, match="disk full"):
        await committer.submit(1)
    await committer.submit(2)
    await committer.close()
    with pytest.raises(RuntimeError, match="not running"):
        await committer.submit(3)


async def test_close_never_hangs_on_a_committer_that_cannot_drain() -> None:
    """A committer whose batches never finish (or whose task died) must not hang shutdown: close() gives up
    after its timeout and fails what is left."""
    release = threading.Event()

    def apply(items: list[int]) -> None:
        release.wait(5)  # stuck (the thread is let go at the end of the test)

    committer: GroupCommitter[int] = GroupCommitter(apply, name="t")
    committer.start()
    first = asyncio.create_task(committer.submit(1))
    await asyncio.sleep(0.05)  # batch 1 is in the thread; item 2 waits behind it
    second = asyncio.create_task(committer.submit(2))
    await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await committer.close(timeout_s=0.2)
    assert time.monotonic() - t0 < 2.0
    for task in (first, second):
        with pytest.raises(RuntimeError, match="stopped before committing"):
            await task
    release.set()


def test_claims_releases_and_counters(tmp_path: Path) -> None:
    registry = Registry(tmp_path)  # creates the schema, as in every process
    now = [1000.0]
    store = AsyncStore(tmp_path / "registry.db", clock=lambda: now[0])
    try:
        store.apply([Insert("a", "fn", None, b"{}", 1000.0), Insert("b", "fn", "live", b"{}", 1000.0, due_at=1005.0)])
        [a] = store.claim_due(10)
        assert a.request_id == "a" and store.claim_due(10) == []  # claimed; b not due yet
        assert store.queue_depth()["fn"] == {"depth": 2, "in_flight": 1, "oldest_age_s": 0.0}
        assert store.release_all() == 1 and [e.request_id for e in store.claim_due(10)] == ["a"]
        store.apply([Retry(a.id, 1002.0, 1, 0, "$LATEST", b"err"), Count("fn", "retried")])
        now[0] = 1006.0
        events = store.claim_due(10)
        assert [(e.request_id, e.attempts, e.last_error) for e in events] == [("a", 1, b"err"), ("b", 0, None)]
        store.apply([Delete(e.id) for e in events] + [Count("fn", "delivered", 2)])
        stats = store.stats()["fn"]
        assert (stats["received"], stats["retried"], stats["delivered"]) == (2, 1, 2)
        assert store.queue_depth() == {}
    finally:
        store.close()
        registry.close()


def test_async_commits_do_not_move_the_registry_change_feed(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    other = Registry(tmp_path)  # another process's view
    store = AsyncStore(tmp_path / "registry.db")
    try:
        token = other.db.data_version()
        store.apply([Insert("x", "fn", None, b"{}", time.time())])
        assert other.db.data_version() == token  # no cache invalidation for event traffic
        with registry.db.write() as cur:
            cur.execute("INSERT INTO settings(key, value) VALUES ('k', 'v')")
        assert other.db.data_version() != token  # a registry write is a change
    finally:
        store.close()
        other.close()
        registry.close()


@given(outcome=st.sampled_from(["ok", "function_error", "throttled"]), attempts=st.integers(0, 5),
       throttles=st.integers(0, 40), age=st.floats(0, 30_000), max_retry=st.integers(0, 2),
       max_age=st.integers(60, 21_600), scale=st.sampled_from([0.001, 1.0]))
def test_decisions_are_total_and_respect_the_limits(outcome: str, attempts: int, throttles: int, age: float,
                                                   max_retry: int, max_age: int, scale: float) -> None:
    cfg = EventInvokeConfig("fn", "$LATEST", max_retry=max_retry, max_age=max_age)
    now = 1_000_000.0
    d = decide(outcome=outcome, attempts=attempts, throttles=throttles, received_at=now - age, now=now, cfg=cfg,
               settings=AsyncSettings(retry_backoff_scale=scale))
    assert (d.retry_at is None) != (d.condition is None)  # exactly one: retry later or a final condition
    if d.retry_at is not None:
        assert now < d.retry_at and d.retry_at - (now - age) <= max_age
        assert outcome != "ok" and (outcome == "throttled" or attempts <= max_retry)
    elif outcome == "ok":
        assert d.condition is Condition.SUCCESS
    elif outcome == "function_error" and d.condition is Condition.RETRIES_EXHAUSTED:
        assert attempts > max_retry
