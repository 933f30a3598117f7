"""``Executor.submit``: an invocation without a coroutine. A warm environment answers from its channel's
data_received (no task); a cold start, a throttle or a fault goes through ``invoke`` in the executor's task and
still calls ``done`` once, with the same results, metrics and log records as ``invoke``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from edge.invocation.execution.executor import Executor
from edge.invocation.models import FunctionSpec, InvocationResult, Outcome
from tests.invocation.fixtures.support import body, call, code_dir, make_spec, options, running_executor


async def _submit(ex: Executor, spec: FunctionSpec, event: Any, **kwargs: Any) -> tuple[InvocationResult, bool]:
    """(the result ``done`` got, whether ``done`` ran before ``submit`` returned: it must not)."""
    got: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
    reserved = kwargs.pop("reserved_concurrency", None)
    ex.submit(spec, json.dumps(event).encode(), options(spec, **kwargs), got.set_result,
              reserved_concurrency=reserved)
    early = got.done()
    return await asyncio.wait_for(got, 10.0), early


async def test_warm_and_cold_submissions_answer_like_invoke(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.counter")
    async with running_executor(tmp_path) as ex:
        cold, early = await _submit(ex, spec, {})  # no environment yet: Init in the executor's task
        assert not early and cold.outcome is Outcome.OK and cold.cold_start and cold.init_duration_ms
        tasks_before = len(asyncio.all_tasks())
        warm, early = await _submit(ex, spec, {})
        assert not early and warm.outcome is Outcome.OK and not warm.cold_start
        assert body(warm)["calls"] == 2 and body(warm)["pid"] == body(cold)["pid"]  # the same warm environment
        assert len(asyncio.all_tasks()) == tasks_before  # a warm submission starts no task
        third = await call(ex, spec, {})  # invoke() finds it idle again
        assert body(third)["calls"] == 3
        fm = ex.metrics.get("us-east-1", "fn", "$LATEST")
        assert (fm.invocations, fm.cold_starts, fm.concurrent, fm.errors) == (3, 1, 0, 0)
        await ex.logs.flush()
        text = "\n".join(e["message"] for e in ex.logs.read("/aws/lambda/fn"))
        for r in (cold, warm, third):  # every invocation's START / END / REPORT, however it ran
            assert f"START RequestId: {r.request_id}" in text and f"REPORT RequestId: {r.request_id}" in text


async def test_a_function_error_and_a_throttle_are_results(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, "faults.raise_error")
    async with running_executor(tmp_path) as ex:
        await _submit(ex, spec, {})
        failed, _ = await _submit(ex, spec, {})  # warm: the handler's error record
        assert failed.outcome is Outcome.FUNCTION_ERROR and json.loads(failed.payload)["errorType"]
        throttled, early = await _submit(ex, make_spec(code, "basic.echo", name="zero"), {}, reserved_concurrency=0)
        assert not early and throttled.outcome is Outcome.THROTTLED


async def test_a_timeout_on_a_warm_environment_is_answered_and_the_environment_replaced(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.sleep", timeout_s=0.5)
    async with running_executor(tmp_path) as ex:
        first, _ = await _submit(ex, spec, {"seconds": 0.0})
        timed_out, _ = await _submit(ex, spec, {"seconds": 5})  # warm, sent at once; the deadline fires
        assert timed_out.outcome is Outcome.FUNCTION_ERROR and timed_out.error_type == "Sandbox.Timedout"
        again, _ = await _submit(ex, spec, {"seconds": 0.0})
        assert again.outcome is Outcome.OK and again.cold_start  # the timed-out environment was discarded
        assert body(again)["pid"] != body(first)["pid"]
        assert ex.metrics.get("us-east-1", "fn", "$LATEST").concurrent == 0


async def test_a_closed_executor_still_answers(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.echo")
    async with running_executor(tmp_path) as ex:
        pass
    result, early = await _submit(ex, spec, {})
    assert not early and result.outcome is Outcome.FUNCTION_ERROR and result.error_type == "Runtime.ExitError"
