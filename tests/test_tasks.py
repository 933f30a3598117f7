"""edge.tasks.TaskOwner: strong references, keys, limits, failures logged, bounded close."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from edge.tasks import TaskOwner, wait_set


async def test_spawned_tasks_are_kept_and_named() -> None:
    owner = TaskOwner("pop-bg")
    done = asyncio.Event()

    async def work() -> int:
        await done.wait()
        return 7

    task = owner.spawn(work(), name="refresh")
    assert task is not None and task.get_name() == "pop-bg:refresh" and len(owner) == 1
    gc.collect()  # only the owner holds it: it must survive a collection
    done.set()
    assert await task == 7
    await asyncio.sleep(0)
    assert len(owner) == 0


async def test_one_task_per_key_and_the_limit() -> None:
    owner = TaskOwner("x", limit=2)
    gate = asyncio.Event()
    first = owner.spawn(gate.wait(), key="k")
    assert first is not None and "k" in owner
    dup = gate.wait()
    assert owner.spawn(dup, key="k") is None
    assert dup.cr_frame is None  # closed, never run (no "never awaited" warning)
    assert owner.spawn(gate.wait()) is not None
    assert owner.spawn(gate.wait()) is None  # at the limit
    gate.set()
    await asyncio.sleep(0.01)
    assert len(owner) == 0 and "k" not in owner
    assert owner.spawn(gate.wait(), key="k") is not None  # the key is free again
    await owner.aclose()


async def test_failures_are_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[BaseException] = []
    owner = TaskOwner("delivery", on_error=lambda task, exc: seen.append(exc))

    async def boom() -> None:
        raise ValueError("broken")

    caplog.set_level(logging.ERROR, logger="edgelab.tasks")
    owner.spawn(boom(), name="one")
    await asyncio.sleep(0.01)
    assert [type(e) for e in seen] == [ValueError]
    assert "task delivery:one failed" in caplog.text and "broken" in caplog.text


async def test_aclose_cancels_waits_and_refuses_new_tasks() -> None:
    owner = TaskOwner("x")
    stopped = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(True)

    owner.spawn(forever())
    owner.spawn(forever())
    await asyncio.sleep(0)  # both started (a task cancelled before its first step never runs its body)
    await owner.aclose()
    assert stopped == [True, True] and len(owner) == 0 and owner.closed
    late = forever()
    assert owner.spawn(late) is None
    await owner.aclose()  # idempotent


async def test_aclose_is_bounded_when_a_task_will_not_stop(caplog: pytest.LogCaptureFixture) -> None:
    owner = TaskOwner("stubborn")
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # refuses to stop

    task = owner.spawn(stubborn())
    await asyncio.sleep(0)
    caplog.set_level(logging.ERROR, logger="edgelab.tasks")
    await asyncio.wait_for(owner.aclose(timeout=0.05), 2)
    assert "did not stop" in caplog.text
    release.set()
    assert task is not None
    await task


async def test_join_waits_for_every_task_without_cancelling_them() -> None:
    owner = TaskOwner("deliveries")
    gates = [asyncio.Event() for _ in range(3)]
    finished: list[int] = []

    async def work(i: int) -> None:
        await gates[i].wait()
        finished.append(i)
        if i == 0:  # a task spawned while the owner is being joined is waited for too
            owner.spawn(work(2), name="late")

    owner.spawn(work(0), name="0")
    owner.spawn(work(1), name="1")
    joined = asyncio.get_running_loop().create_task(owner.join(None))
    for gate in gates:
        await asyncio.sleep(0.01)
        assert not joined.done()  # still running: nothing was cancelled to get there
        gate.set()
    assert await asyncio.wait_for(joined, 5) is True
    assert finished == [0, 1, 2] and len(owner) == 0
    assert await owner.join(0) is True  # nothing running: at once, even with no time left
    assert not owner.closed and owner.spawn(asyncio.sleep(0)) is not None  # joining does not close
    await owner.aclose()


async def test_join_gives_up_at_the_timeout_and_leaves_the_tasks_running() -> None:
    owner = TaskOwner("stoppers")
    release = asyncio.Event()
    task = owner.spawn(release.wait(), name="stuck")
    assert task is not None
    assert await owner.join(0) is False
    assert await asyncio.wait_for(owner.join(0.05), 5) is False
    assert not task.done() and len(owner) == 1  # cancelling is the caller's decision (aclose)
    release.set()
    assert await asyncio.wait_for(owner.join(5), 5) is True
    await owner.aclose()


async def test_join_counts_a_failed_task_as_finished(caplog: pytest.LogCaptureFixture) -> None:
    owner = TaskOwner("x")

    async def boom() -> None:
        raise ValueError("broken")

    caplog.set_level(logging.ERROR, logger="edgelab.tasks")
    owner.spawn(boom(), name="boom")
    assert await asyncio.wait_for(owner.join(5), 5) is True
    assert "task x:boom failed" in caplog.text  # the failure is still logged by the owner, not raised by join


async def test_a_task_cannot_join_its_own_owner() -> None:
    owner = TaskOwner("self")

    async def joins_itself() -> bool:
        return await owner.join(1)

    task = owner.spawn(joins_itself())
    assert task is not None
    with pytest.raises(RuntimeError, match="cannot join its own owner"):
        await task


async def test_tasks_that_answer_their_own_errors_are_kept_while_running_and_forgotten_once_done() -> None:
    import weakref

    owner = TaskOwner("pop-viewers", limit=3)
    gate = asyncio.Event()
    running = owner.spawn(gate.wait(), name="viewer", answers_errors=True)
    assert running is not None and len(owner) == 1
    ref = weakref.ref(running)
    del running
    gc.collect()  # only the owner holds it while it runs
    assert ref() is not None
    gate.set()
    await asyncio.sleep(0)
    assert len(owner) == 0  # done: not counted, not waited for
    assert await owner.join(1.0)
    # finished ones do not count against the limit, and the owner lets go of them as it spawns more
    for _ in range(200):
        assert owner.spawn(asyncio.sleep(0), answers_errors=True) is not None
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    gc.collect()
    assert ref() is None
    gate.clear()
    blocked = [owner.spawn(gate.wait(), answers_errors=True) for _ in range(3)]
    assert owner.spawn(asyncio.sleep(0), answers_errors=True) is None  # three running: the limit
    await owner.aclose()
    assert all(t is not None and t.done() for t in blocked) and len(owner) == 0


async def test_wait_set_never_swallows_a_cancellation() -> None:
    """The delivery and event-source loops wait on an Event with a timeout. A cancel arriving in the same loop
    iteration as the event being set must stop them (asyncio.wait_for on Python 3.11 swallows it, and the
    close() awaiting the loop then hangs: seen as a 120 s teardown timeout)."""
    for _ in range(50):
        event = asyncio.Event()

        async def loop_forever(event: asyncio.Event = event) -> None:
            while True:
                await wait_set(event, 0.05)
                event.clear()

        task = asyncio.create_task(loop_forever())
        await asyncio.sleep(0)
        event.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert task in done and task.cancelled()
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True and await wait_set(event, None) is True
