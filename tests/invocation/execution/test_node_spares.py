"""Pre-started Node processes (edge/invocation/execution/node_spares.py) with real ``node`` processes: a miss
starts one on the spot and a replacement in the background, the next take is a hit, dead spares are skipped,
keys are bounded, close stops everything."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from edge.invocation.execution.node_process import NodeLaunch, init_config
from edge.invocation.execution.node_spares import SparePool
from tests.invocation.execution.test_node_process import wait_group_gone
from tests.invocation.fixtures.node_support import dist, payload

pytestmark = pytest.mark.timeout(60)


async def wait_ready(pool: SparePool, launch: NodeLaunch, count: int = 1, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pool.ready(launch) < count:
        assert time.monotonic() < deadline, f"no spare for {launch} after {timeout_s} s: {pool!r}"
        await asyncio.sleep(0.02)


async def test_take_miss_then_hit_and_the_spare_runs_a_function(tmp_path: Path) -> None:
    pool = SparePool(install=False)
    launch = NodeLaunch(20, 128)
    try:
        first = await pool.take(launch)
        assert (pool.hits, pool.misses) == (0, 1)
        await wait_ready(pool, launch)
        second = await pool.take(launch)
        assert (pool.hits, pool.misses) == (1, 1) and second.pid != first.pid
        (tmp_path / "index.js").write_text("exports.handler = async () => process.pid;")
        cfg = init_config(runtime="nodejs20.x", handler="index.handler", task_root=tmp_path, tmp_dir=tmp_path,
                          function_name="f", log_group="g", log_stream="s", node_bin=dist(20).binary)
        assert (await second.init(cfg, 10.0)).ok
        assert payload(await second.invoke("r", b"{}", invoked_arn="a", timeout_s=3)) == second.pid
        await first.stop(graceful=False)
        await second.stop(graceful=False)
    finally:
        await pool.close()


async def test_dead_spares_are_skipped_and_close_stops_everything() -> None:
    pool = SparePool(install=False)
    launch = NodeLaunch(22, 256)
    try:
        taken = await pool.take(launch)
        await taken.stop(graceful=False)
        await wait_ready(pool, launch)
        spare_pid = pool._spares[launch][0].pid
        os.kill(spare_pid, signal.SIGKILL)
        await wait_group_gone(spare_pid)
        await asyncio.sleep(0.05)  # the child watcher reaps it
        fresh = await pool.take(launch)
        assert fresh.pid != spare_pid and pool.misses == 2
        await fresh.stop(graceful=False)
        await wait_ready(pool, launch)
        waiting = pool._spares[launch][0].pid
    finally:
        await pool.close()
    assert await wait_group_gone(waiting)
    with pytest.raises(RuntimeError, match="closed"):
        await pool.take(launch)


async def test_keys_are_bounded() -> None:
    pool = SparePool(install=False, max_keys=1)
    a, b = NodeLaunch(20, 128), NodeLaunch(20, 512)
    try:
        taken = [await pool.take(a)]
        await wait_ready(pool, a)
        kept = pool._spares[a][0].pid
        taken.append(await pool.take(b))  # a is the least recently used key: its spare is stopped
        assert a not in pool._spares and b in pool._spares
        assert await wait_group_gone(kept)
        for proc in taken:
            await proc.stop(graceful=False)
    finally:
        await pool.close()


async def test_keys_nobody_asks_for_lose_their_spares() -> None:
    pool = SparePool(install=False)
    launch = NodeLaunch(20, 128)
    try:
        taken = await pool.take(launch)
        await wait_ready(pool, launch)
        spare = pool._spares[launch][0].pid
        assert pool.expire(60.0) == 0 and pool.ready(launch) == 1  # asked for recently: kept
        assert pool.expire(60.0, now=time.monotonic() + 61.0) == 1
        assert launch not in pool._spares and await wait_group_gone(spare)
        await taken.stop(graceful=False)
    finally:
        await pool.close()


async def test_a_launch_that_cannot_start_fails_the_take() -> None:
    pool = SparePool(install=False)
    try:
        with pytest.raises(RuntimeError, match="--not-a-node-flag"):
            await pool.take(NodeLaunch(20, 128, "--not-a-node-flag"))
    finally:
        await pool.close()
