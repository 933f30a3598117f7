"""Pools: provisioned concurrency, idle expiry, max lifetime, retire/reset, close() reaping every process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.invocation.execution.environment import EnvState
from edge.invocation.models import Outcome
from tests.invocation.fixtures.support import alive, body, call, children_of, code_dir, make_spec, running_executor


async def _wait(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


async def test_provisioned_concurrency(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, "basic.env", version="1")
    async with running_executor(tmp_path) as ex:
        await ex.set_provisioned(spec, 2)
        assert ex.provisioned_status(spec)[1] in ("IN_PROGRESS", "READY")
        await _wait(lambda: ex.provisioned_status(spec) == (2, "READY", None))
        envs = ex.environments()
        assert len(envs) == 2 and all(e.init_type == "provisioned-concurrency" for e in envs)
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and not res.cold_start and res.init_duration_ms is None
        assert body(res)["environ"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
        # three concurrent calls: two provisioned, one spillover on-demand (cold)
        sleeper = make_spec(code, "basic.sleep", name="p", version="1")
        await ex.set_provisioned(sleeper, 2)
        await _wait(lambda: ex.provisioned_status(sleeper)[1] == "READY")
        results = await asyncio.gather(*[call(ex, sleeper, {"seconds": 0.2}) for _ in range(3)])
        assert sorted(r.cold_start for r in results) == [False, False, True]
        m = ex.metrics.snapshot()["us-east-1"]["p"]["1"]
        assert m["provisioned_invocations"] == 2 and m["spillover_invocations"] == 1
        # init logs of provisioned environments are written at provisioning time
        await ex.logs.flush()
        assert any(e["message"].startswith("INIT_START") for e in ex.logs.read("/aws/lambda/fn"))
        await ex.set_provisioned(spec, 0)
        await _wait(lambda: len([e for e in ex.environments() if e.spec.function_name == "fn"]) == 0)
        assert ex.provisioned_status(spec) == (0, "READY", None)


async def test_provisioned_init_failure(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "init_raises.handler", version="1")
    async with running_executor(tmp_path) as ex:
        await ex.set_provisioned(spec, 1)
        await _wait(lambda: ex.provisioned_status(spec)[1] == "FAILED")
        assert ex.provisioned_status(spec) == (0, "FAILED", "FUNCTION_ERROR_INIT_FAILURE")


async def test_idle_expiry_and_max_lifetime(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.counter")
    async with running_executor(tmp_path, idle_ttl_s=0.3, reaper_interval_s=0.05) as ex:
        first = await call(ex, spec, {})
        pid = body(first)["pid"]
        await _wait(lambda: not ex.environments())
        await _wait(lambda: not alive(pid))
        assert (await call(ex, spec, {})).cold_start
    async with running_executor(tmp_path, max_lifetime_s=0.2, reaper_interval_s=0.05) as ex:
        await call(ex, spec, {})
        await asyncio.sleep(0.3)
        assert (await call(ex, spec, {})).cold_start  # too old: retired on release/reap


async def test_retire_and_reset(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    v1 = make_spec(code, "basic.counter", revision="r1")
    v2 = make_spec(code, "basic.counter", revision="r2")
    other = make_spec(code, "basic.counter", name="other")
    slow = make_spec(code, "basic.sleep", name="slow")
    async with running_executor(tmp_path) as ex:
        for spec in (v1, v2, other):
            await call(ex, spec, {})
        await ex.retire("fn", keep=[v2.pool_key])
        await _wait(lambda: {(e.spec.function_name, e.spec.revision) for e in ex.environments()}
                    == {("fn", "r2"), ("other", "r1")})
        assert not (await call(ex, v2, {})).cold_start
        # a busy environment retires when released
        task = asyncio.ensure_future(call(ex, slow, {"seconds": 0.3}))
        await _wait(lambda: any(e.state is EnvState.BUSY for e in ex.environments()))
        await ex.reset()
        assert [e.spec.function_name for e in ex.environments()] == ["slow"]
        assert (await task).outcome is Outcome.OK
        await _wait(lambda: not ex.environments())
        assert (await call(ex, other, {})).cold_start
        assert "EnvironmentPool" in repr(ex)


async def test_close_reaps_every_process(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, "basic.sleep")
    async with running_executor(tmp_path) as ex:
        await asyncio.gather(*[call(ex, spec, {"seconds": 0.05}) for _ in range(3)])
        busy = asyncio.ensure_future(call(ex, spec, {"seconds": 5}))
        await _wait(lambda: any(e.state is EnvState.BUSY for e in ex.environments()))
        zygote_pid = ex._zygote.pid
        assert zygote_pid is not None
        pids = [e.pid for e in ex.environments()]
        kids = children_of(zygote_pid)  # the environments and the zygote's spare (forked ahead for a cold start)
        assert len(pids) == 3 and set(pids) <= set(kids) and len(kids) <= 4
        await ex.close()
        res = await busy
        assert res.outcome is Outcome.FUNCTION_ERROR  # killed by close()
    assert not alive(zygote_pid) and not any(alive(p) for p in kids)
    assert zygote_pid not in children_of(__import__("os").getpid())


async def test_crashed_provisioned_environment_is_replaced(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    (code / "maybe_crash.py").write_text(
        "import os\n\ndef handler(event, context):\n    if event.get('crash'):\n        os._exit(1)\n"
        "    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n")
    spec = make_spec(code, "maybe_crash.handler", version="3")
    async with running_executor(tmp_path) as ex:  # default reaper interval (30 s): refill must not wait for it
        await ex.set_provisioned(spec, 1)
        await _wait(lambda: ex.provisioned_status(spec) == (1, "READY", None))
        assert (await call(ex, spec, {"crash": True})).error_type == "Runtime.ExitError"
        await _wait(lambda: ex.provisioned_status(spec) == (1, "READY", None)
                    and all(not e.discard for e in ex.environments()))
        res = await call(ex, spec, {})
        assert not res.cold_start and body(res) == "provisioned-concurrency"


async def test_warm_environments_are_capped_least_recently_used_first(tmp_path: Path) -> None:
    """Past the count cap a cold start retires the least recently used idle environment; by memory likewise."""
    code = code_dir(tmp_path)
    specs = [make_spec(code, "basic.counter", name=f"f{i}") for i in range(3)]
    async with running_executor(tmp_path, max_warm_environments=2) as ex:
        pids = [body(await call(ex, s, {}))["pid"] for s in specs[:2]]
        assert not (await call(ex, specs[0], {})).cold_start  # f0 is now the most recently used
        await call(ex, specs[2], {})  # a third environment: f1 (least recently used) goes
        await _wait(lambda: not alive(pids[1]))
        assert alive(pids[0]) and sorted(e.spec.function_name for e in ex.environments()) == ["f0", "f2"]
    big = [make_spec(code, "basic.counter", name=f"m{i}", memory_mb=512) for i in range(2)]
    async with running_executor(tmp_path, max_warm_memory_mb=1000) as ex:
        first = body(await call(ex, big[0], {}))["pid"]
        await call(ex, big[1], {})
        await _wait(lambda: not alive(first))
        assert [e.spec.function_name for e in ex.environments()] == ["m1"]
