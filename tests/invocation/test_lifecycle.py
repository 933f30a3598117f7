"""edge.invocation.lifecycle.wait_idle: waits for an owner's tasks to finish, bounded, cancelling nothing."""

from __future__ import annotations

import asyncio

from edge.invocation.lifecycle import wait_idle
from edge.tasks import TaskOwner


async def test_wait_idle_returns_once_every_task_finished() -> None:
    owner = TaskOwner("t")
    done: list[int] = []

    async def work(i: int) -> None:
        await asyncio.sleep(0.02 * i)
        done.append(i)

    for i in range(3):
        owner.spawn(work(i), name=str(i))
    assert await wait_idle(owner, 5.0) is True
    assert sorted(done) == [0, 1, 2] and len(owner) == 0
    assert await wait_idle(owner, 0.0) is True  # nothing running: at once


async def test_wait_idle_gives_up_without_cancelling() -> None:
    owner = TaskOwner("t")
    release = asyncio.Event()
    task = owner.spawn(release.wait(), name="stuck")
    assert task is not None
    assert await wait_idle(owner, 0.05) is False
    assert not task.done()  # still running: closing the owner is the caller's decision
    release.set()
    assert await wait_idle(owner, 1.0) is True
    await owner.aclose()
