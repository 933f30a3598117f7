"""Fault injection with real worker processes: every failure is a value, the environment is replaced when AWS
would reset it, and the next invocation works; other functions are never affected."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from edge.invocation.models import Outcome
from tests.invocation.fixtures.support import alive, body, call, code_dir, make_spec, running_executor


async def _pid(ex, spec) -> int:
    res = await call(ex, spec, {})
    assert res.outcome is Outcome.OK, res.payload
    return body(res)["pid"]


async def test_handler_exception_record_and_env_kept(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, "faults.raise_error")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, request_id="req-err", want_log_tail=True)
        assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type == "ValueError"
        rec = body(res)
        assert list(rec) == ["errorMessage", "errorType", "requestId", "stackTrace"]
        assert rec["errorMessage"] == "bad thing happened" and rec["requestId"] == "req-err"
        assert len(rec["stackTrace"]) == 1  # runtime frames trimmed: only the user's frame
        assert rec["stackTrace"][0].startswith(f'  File "{code}/faults.py", line ')
        assert 'raise ValueError("bad thing happened")' in rec["stackTrace"][0]
        assert "[ERROR] ValueError: bad thing happened\rTraceback (most recent call last):\r" in res.log_tail
        pids = {e.pid for e in ex.environments()}
        again = await call(ex, spec, {})
        assert not again.cold_start and {e.pid for e in ex.environments()} == pids  # not reset, as awslambdaric


@pytest.mark.parametrize(("handler", "error_type", "message"), [
    ("nomod.handler", "Runtime.ImportModuleError", "Unable to import module 'nomod': No module named 'nomod'"),
    ("basic.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'basic'"),
    ("nodot", "Runtime.MalformedHandlerName",
     "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)"),
    ("syntax_bad.handler", "Runtime.UserCodeSyntaxError", None),
    ("init_raises.handler", "RuntimeError", "init exploded"),
])
async def test_init_errors(tmp_path: Path, handler: str, error_type: str, message: str | None) -> None:
    spec = make_spec(code_dir(tmp_path), handler)
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, request_id="req-init", want_log_tail=True)
        assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type == error_type, res.payload
        rec = body(res)
        assert rec["errorType"] == error_type and rec["requestId"] == ""
        if message is not None:
            assert rec["errorMessage"] == message
        if error_type == "RuntimeError":
            assert any("init_raises.py" in frame for frame in rec["stackTrace"])
            assert "init starting" in res.log_tail
        if error_type == "Runtime.UserCodeSyntaxError":
            assert rec["errorMessage"].startswith("Syntax error in module 'syntax_bad'")
        assert res.cold_start
        assert "INIT_REPORT Init Duration:" in res.log_tail and "Status: error" in res.log_tail
        assert f"[ERROR] {error_type}" in res.log_tail
        for _ in range(50):
            if not ex.environments():
                break
            await asyncio.sleep(0.02)
        assert ex.environments() == []  # discarded
        res2 = await call(ex, spec, {})
        assert res2.error_type == error_type and res2.cold_start  # every attempt re-runs Init


async def test_init_exit_and_init_timeout(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    (code / "slowish_init.py").write_text(
        "import time\nprint('init begins')\ntime.sleep(0.4)\n\ndef handler(event, context):\n    return 'ok'\n")
    async with running_executor(tmp_path, init_timeout_s=0.2) as ex:
        res = await call(ex, make_spec(code, "init_exits.handler", name="exits"), {}, request_id="r1")
        assert res.error_type == "Runtime.ExitError"
        assert body(res)["errorMessage"] == "RequestId: r1 Error: Runtime exited with error: exit status 4"
        # Init over its cap is retried inside the invoke under the function timeout ("suppressed init")
        res = await call(ex, make_spec(code, "slowish_init.handler", name="slowish", timeout_s=3), {},
                         request_id="r2", want_log_tail=True)
        assert res.outcome is Outcome.OK and body(res) == "ok", res.payload
        assert res.cold_start and res.init_duration_ms is None and res.duration_ms >= 400
        assert "Phase: init\tStatus: timeout" in res.log_tail
        assert "Init Duration: " not in res.log_tail.rsplit("REPORT RequestId", 1)[1]
        assert res.log_tail.count("init begins") == 2
        # ... and when it does not fit in the function timeout either, the invocation times out
        res = await call(ex, make_spec(code, "slow_init.handler", name="slow", timeout_s=0.5), {}, request_id="r3")
        assert res.error_type == "Sandbox.Timedout"
        assert body(res)["errorMessage"] == "RequestId: r3 Error: Task timed out after 0.50 seconds"
        await asyncio.sleep(0.1)
        assert not [e for e in ex.environments() if e.spec.function_name == "slow" and not e.discard]


async def test_timeout_replaces_env_and_keeps_tmp(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    (code / "slow.py").write_text(
        "import os, tempfile, time\n"
        "def handler(event, context):\n"
        "    open(os.path.join(tempfile.gettempdir(), 'kept'), 'w').write('x')\n"
        "    if event.get('sleep'):\n"
        "        print('sleeping'); time.sleep(10)\n"
        "    return {'pid': os.getpid(), 'files': os.listdir(tempfile.gettempdir())}\n")
    spec = make_spec(code, "slow.handler", timeout_s=0.5)
    async with running_executor(tmp_path) as ex:
        pid = await _pid(ex, spec)
        res = await call(ex, spec, {"sleep": True}, request_id="req-to", want_log_tail=True)
        assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type == "Sandbox.Timedout"
        assert res.payload == (b'{"errorType":"Sandbox.Timedout","errorMessage":'
                               b'"RequestId: req-to Error: Task timed out after 0.50 seconds"}')
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z req-to Task timed out after 0.50 seconds",
                         res.log_tail)
        assert "sleeping" in res.log_tail and "Status: timeout" in res.log_tail
        assert 500 <= res.duration_ms < 600
        nxt = await call(ex, spec, {})
        assert nxt.outcome is Outcome.OK and nxt.cold_start and body(nxt)["pid"] != pid
        assert body(nxt)["files"] == ["kept"]  # /tmp survives the reset
        for _ in range(100):
            if not alive(pid):
                break
            await asyncio.sleep(0.02)
        assert not alive(pid)


async def test_each_invocation_gets_its_own_full_timeout(tmp_path: Path) -> None:
    """The environment's deadline timer outlives short invocations: a later invocation must still get its whole
    timeout (not what was left of an earlier one's), and must time out on time."""
    spec = make_spec(code_dir(tmp_path), "basic.sleep", timeout_s=0.6)
    async with running_executor(tmp_path) as ex:
        first = await call(ex, spec, {"seconds": 0})
        assert first.outcome is Outcome.OK
        await asyncio.sleep(0.35)  # the first invocation's deadline is now 0.25 s away
        second = await call(ex, spec, {"seconds": 0.45})
        assert second.outcome is Outcome.OK and body(second)["pid"] == body(first)["pid"], second.payload
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        third = await call(ex, spec, {"seconds": 5})
        elapsed = loop.time() - t0
        assert third.error_type == "Sandbox.Timedout"
        assert 0.59 <= elapsed < 1.5, elapsed


async def test_busy_loop_timeout(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "faults.busy_timeout", timeout_s=0.3)
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {})
        assert res.error_type == "Sandbox.Timedout"


@pytest.mark.parametrize(("handler", "event", "reason"), [
    ("faults.exit_zero", {}, "Runtime exited without providing a reason"),
    ("faults.exit_code", {"code": 3}, "Runtime exited with error: exit status 3"),
    ("faults.os_exit", {"code": 2}, "Runtime exited with error: exit status 2"),
    ("faults.kill_self", {}, "Runtime exited with error: signal: killed"),
    ("faults.segfault", {}, "Runtime exited with error: signal: segmentation fault"),
])
async def test_runtime_exit(tmp_path: Path, handler: str, event: dict, reason: str) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, handler)
    ok = make_spec(code, "basic.counter", name="ok")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, event, request_id="req-x", want_log_tail=True)
        assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type == "Runtime.ExitError"
        assert body(res) == {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: req-x Error: {reason}"}
        if handler == "faults.exit_zero":
            assert "about to exit" in res.log_tail
        assert (await call(ex, ok, {})).outcome is Outcome.OK
        again = await call(ex, spec, event)
        assert again.error_type == "Runtime.ExitError" and again.cold_start  # replaced, not reused


async def test_out_of_memory(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    async with running_executor(tmp_path) as ex:
        for handler in ("faults.oom", "faults.oom_fast"):
            spec = make_spec(code, handler, name=handler.replace(".", "-"), memory_mb=128, timeout_s=10)
            res = await call(ex, spec, {}, request_id="req-oom", want_log_tail=True)
            assert res.error_type == "Runtime.OutOfMemory", res.payload
            assert body(res) == {"errorType": "Runtime.OutOfMemory",
                                 "errorMessage": "RequestId: req-oom Error: Runtime exited with error: signal: killed"}
            assert res.max_memory_used_mb == 128 and "Max Memory Used: 128 MB" in res.log_tail
        spec = make_spec(code, "basic.counter", name="faults-oom", memory_mb=128)
        assert (await call(ex, spec, {})).outcome is Outcome.OK


async def test_response_too_large_and_marshal_error(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    async with running_executor(tmp_path) as ex:
        res = await call(ex, make_spec(code, "faults.too_large", name="big"), {})
        assert res.error_type == "Function.ResponseSizeTooLarge"
        assert body(res) == {"errorMessage": "Response payload size exceeded maximum allowed payload size "
                                             "(6291556 bytes).", "errorType": "Function.ResponseSizeTooLarge"}
        res = await call(ex, make_spec(code, "faults.not_serialisable", name="marshal"), {}, request_id="rq")
        assert res.error_type == "Runtime.MarshalError"
        assert body(res) == {"errorMessage": "Unable to marshal response: Object of type datetime is not JSON "
                                             "serializable", "errorType": "Runtime.MarshalError",
                             "requestId": "rq", "stackTrace": []}
        big = make_spec(code, "basic.echo", name="echo")
        payload = {"data": "z" * 5_000_000}
        res = await call(ex, big, payload)  # a large payload both ways through the socketpair
        assert res.outcome is Outcome.OK and body(res) == payload


async def test_crashing_function_does_not_affect_others(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    crash = make_spec(code, "faults.kill_self", name="crash")
    good = make_spec(code, "basic.sleep", name="good")
    async with running_executor(tmp_path) as ex:
        results = await asyncio.gather(*[call(ex, crash, {}) for _ in range(3)],
                                       *[call(ex, good, {"seconds": 0.05}) for _ in range(3)])
        assert [r.error_type for r in results[:3]] == ["Runtime.ExitError"] * 3
        assert all(r.outcome is Outcome.OK for r in results[3:])
        m = ex.metrics.snapshot()["us-east-1"]
        assert m["crash"]["$LATEST"]["errors"] == 3 and m["good"]["$LATEST"]["errors"] == 0


async def test_tmp_quota_is_a_file_system_of_that_size(tmp_path: Path) -> None:
    """With isolation in force /tmp is a tmpfs of exactly EphemeralStorage: ENOSPC at the quota, as on AWS, and
    the environment stays warm."""
    spec = make_spec(code_dir(tmp_path), "basic.tmp_write", ephemeral_storage_mb=1)
    async with running_executor(tmp_path) as ex:
        if not ex.isolation.get("tmpfs"):
            pytest.skip(f"no tmpfs /tmp here: {ex.isolation_line}")
        res = await call(ex, spec, {"name": "one", "size": 2 * 1024 * 1024})
        assert body(res)["error"] == 28  # ENOSPC
        first = await call(ex, spec, {"name": "a", "size": 700 * 1024})
        assert first.outcome is Outcome.OK
        over = await call(ex, spec, {"name": "b", "size": 700 * 1024})
        assert body(over)["error"] == 28 and not over.cold_start
        assert body(await call(ex, spec, {}))["files"] == ["a"]


async def test_tmp_quota_checked_after_the_invocation_without_isolation(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELAB_ISOLATION", "off")
    spec = make_spec(code_dir(tmp_path), "basic.tmp_write", ephemeral_storage_mb=1)
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {"name": "one", "size": 2 * 1024 * 1024})
        assert body(res)["error"] == 27  # EFBIG: a single file may not exceed the quota
        first = await call(ex, spec, {"name": "a", "size": 700 * 1024})
        assert first.outcome is Outcome.OK
        over = await call(ex, spec, {"name": "b", "size": 700 * 1024}, request_id="rq")
        assert over.error_type == "Runtime.EphemeralStorageExceeded"
        assert body(over)["errorMessage"].startswith("RequestId: rq Error: /tmp usage")
        nxt = await call(ex, spec, {})
        assert nxt.cold_start and body(nxt)["files"] == []  # reset, and the over-quota /tmp was wiped


async def test_cancelled_invocation_discards_env(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.sleep", timeout_s=5)
    async with running_executor(tmp_path) as ex:
        task = asyncio.ensure_future(call(ex, spec, {"seconds": 3}))
        await asyncio.sleep(0.3)
        pid = ex.environments()[0].pid
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        res = await call(ex, spec, {"seconds": 0})
        assert res.outcome is Outcome.OK and res.cold_start and body(res)["pid"] != pid
        snap = ex.metrics.snapshot()["us-east-1"]["fn"]["$LATEST"]
        assert snap["concurrent_executions"]["current"] == 0
