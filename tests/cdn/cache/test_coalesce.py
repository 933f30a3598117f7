"""Coalescer: one factory run per key for concurrent callers; errors shared; leader cancellation handled."""

from __future__ import annotations

import asyncio

import pytest

from edge.cdn.cache.coalesce import Coalescer


class Origin:
    """A scripted origin: each fetch waits on a gate, counts calls, returns or raises as scripted."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self) -> str:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            raise self.fail
        return f"body-{self.calls}"


async def wait_for_waiters(c: Coalescer[str], key: str, n: int) -> None:
    for _ in range(1000):
        if c.waiters(key) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {c.waiters(key)} waiters")


async def test_concurrent_callers_share_one_fetch() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    tasks = [asyncio.create_task(c.run("k", o.fetch)) for _ in range(10)]
    await wait_for_waiters(c, "k", 9)
    o.gate.set()
    results = await asyncio.gather(*tasks)
    assert o.calls == 1 and {r for r, _ in results} == {"body-1"}
    assert sum(leader for _, leader in results) == 1
    assert len(c) == 0 and c.waiters("k") == 0


async def test_different_keys_do_not_collapse() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    o.gate.set()
    await asyncio.gather(c.run("a", o.fetch), c.run("b", o.fetch))
    assert o.calls == 2


async def test_sequential_calls_fetch_again() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    o.gate.set()
    assert (await c.run("k", o.fetch))[1] and (await c.run("k", o.fetch))[1]
    assert o.calls == 2


async def test_failure_propagates_to_all() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    o.fail = ConnectionResetError("origin reset")
    tasks = [asyncio.create_task(c.run("k", o.fetch)) for _ in range(5)]
    await wait_for_waiters(c, "k", 4)
    o.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results) and o.calls == 1
    assert len(c) == 0


async def test_leader_cancellation_hands_over() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    leader = asyncio.create_task(c.run("k", o.fetch))
    await asyncio.sleep(0)
    followers = [asyncio.create_task(c.run("k", o.fetch)) for _ in range(3)]
    await wait_for_waiters(c, "k", 3)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    # one follower takes over as leader and fetches again; the others follow it
    for _ in range(100):
        if o.calls == 2 and c.waiters("k") == 2:
            break
        await asyncio.sleep(0)
    assert o.calls == 2 and c.waiters("k") == 2
    o.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    assert {r for r, _ in results} == {"body-2"} and sum(leader for _, leader in results) == 1
    assert len(c) == 0


async def test_follower_cancellation_does_not_disturb_others() -> None:
    c: Coalescer[str] = Coalescer()
    o = Origin()
    leader = asyncio.create_task(c.run("k", o.fetch))
    await asyncio.sleep(0)
    f1, f2 = (asyncio.create_task(c.run("k", o.fetch)) for _ in range(2))
    await wait_for_waiters(c, "k", 2)
    f1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await f1
    o.gate.set()
    assert (await leader) == ("body-1", True) and (await f2) == ("body-1", False)
    assert o.calls == 1 and c.waiters("k") == 0


async def test_no_unretrieved_exception_warning_without_followers(caplog: pytest.LogCaptureFixture) -> None:
    c: Coalescer[str] = Coalescer()

    async def boom() -> str:
        raise ValueError("x")

    with pytest.raises(ValueError):
        await c.run("k", boom)
    import gc
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
