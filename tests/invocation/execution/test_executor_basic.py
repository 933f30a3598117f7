"""Executor with real worker processes: cold/warm, context, environment variables, layers, /tmp, logs."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from edge.invocation.execution.logs import LogStore
from edge.invocation.models import Outcome
from tests.invocation.fixtures.support import body, call, code_dir, make_spec, running_executor

REPORT_RE = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)\tDuration: \d+\.\d{2} ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
    r"Max Memory Used: \d+ MB\t(?:Init Duration: \d+\.\d{2} ms\t)?$")


async def test_cold_then_warm_module_code_runs_once(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.counter")
    async with running_executor(tmp_path) as ex:
        first = await call(ex, spec, {}, want_log_tail=True)
        second = await call(ex, spec, {}, want_log_tail=True)
        assert first.outcome is Outcome.OK and second.outcome is Outcome.OK
        assert first.cold_start and not second.cold_start
        assert first.init_duration_ms is not None and first.init_duration_ms > 0
        assert second.init_duration_ms is None
        b1, b2 = body(first), body(second)
        assert (b1["calls"], b2["calls"]) == (1, 2)
        assert b1["init_count"] == b2["init_count"] == 1 and b1["pid"] == b2["pid"]
        assert "INIT_START Runtime Version: python:3.11" in first.log_tail
        assert "module init ran" in first.log_tail and "module init ran" not in second.log_tail
        assert "Init Duration:" in first.log_tail and "Init Duration:" not in second.log_tail
        assert "INIT_START" not in second.log_tail
        report = next(ln for ln in second.log_tail.splitlines() if ln.startswith("REPORT"))
        assert REPORT_RE.match(report), report
        m = ex.metrics.snapshot()["us-east-1"]["fn"]["$LATEST"]
        assert m["invocations"] == 2 and m["cold_starts"] == 1 and m["errors"] == 0
        assert m["init_duration_ms"]["count"] == 1 and m["duration_ms"]["count"] == 2
        # the cold start alone: its Duration, and Init Duration + Duration (what the caller waited)
        assert m["cold_duration_ms"]["count"] == m["cold_latency_ms"]["count"] == 1
        assert m["cold_duration_ms"]["sum"] == round(first.duration_ms, 3)
        assert m["cold_latency_ms"]["sum"] == round(first.duration_ms + first.init_duration_ms, 3)
        assert m["concurrent_executions"] == {"current": 0, "max": 1}
        assert "us-east-1/fn:$LATEST idle=1 live=1 {'READY': 1}" in repr(ex)
        (env,) = ex.environments()
        assert "state=READY type=on-demand" in repr(env) and "invocations=2" in repr(env)


async def test_context_fields(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.ctx", timeout_s=5.0)
    cc = json.dumps({"custom": {"k": "v"}, "env": {"e": 1}, "client": {"app_title": "demo"}})
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, request_id="req-ctx-1", invoked_arn=spec.arn + ":live", client_context=cc)
        c = body(res)
        assert c["aws_request_id"] == "req-ctx-1"
        assert c["function_name"] == "fn" and c["function_version"] == "$LATEST"
        assert c["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn:live"
        assert c["memory_limit_in_mb"] == "128"
        assert c["log_group_name"] == "/aws/lambda/fn"
        assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", c["log_stream_name"])
        assert c["identity"] == [None, None]
        assert c["client_context"] == {"custom": {"k": "v"}, "env": {"e": 1}, "app_title": "demo"}
        assert 4000 < c["remaining"] <= 5000
        # Lambda@Edge style presentation: display name and log group overrides, other region
        res = await call(ex, spec, {}, region="eu-central-1", display_name="us-east-1.fn",
                         log_group="/aws/lambda/us-east-1.fn")
        c = body(res)
        assert res.cold_start  # a separate regional pool
        assert c["function_name"] == "us-east-1.fn" and c["log_group_name"] == "/aws/lambda/us-east-1.fn"
        assert c["client_context"] is None


async def test_environment_variables_and_paths(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    spec = make_spec(code, "basic.env", memory_mb=256,
                     environment=(("GREETING", "hi"), ("AWS_REGION", "user-cannot-override"), ("LANG", "C")))
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, region="ap-northeast-1")
        data = body(res)
        env = data["environ"]
        assert env["GREETING"] == "hi" and env["LANG"] == "C"
        assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "ap-northeast-1"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn" and env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
        assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fn"
        assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith(env["AWS_LAMBDA_LOG_STREAM_NAME"][-32:])
        assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
        assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert env["_HANDLER"] == "basic.env" and env["LAMBDA_TASK_ROOT"] == str(code)
        assert env["LAMBDA_RUNTIME_DIR"] and env["TZ"] == ":UTC"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            assert env[key]
        assert data["cwd"] == str(code) and data["sys_path"][0] == str(code)
        assert not any("site-packages" in p and ".venv" in p for p in data["sys_path"])
        assert env["TMPDIR"] == data["tempdir"] and data["tempdir"].startswith(str(tmp_path / "state"))


async def test_layers_on_sys_path_in_attach_order(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    layer1, layer2 = tmp_path / "layer1", tmp_path / "layer2"
    (layer1 / "python").mkdir(parents=True)
    (layer1 / "python" / "shared.py").write_text("WHO = 'layer1'\n")
    (layer1 / "python" / "only1.py").write_text("X = 1\n")
    site = layer2 / "python" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "shared.py").write_text("WHO = 'layer2'\n")
    (code / "uses_layers.py").write_text(
        "import shared, only1\n\ndef handler(event, context):\n    return [shared.WHO, only1.X]\n")
    spec = make_spec(code, "uses_layers.handler", layer_dirs=(layer1, layer2))
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK, res.payload
        assert body(res) == ["layer2", 1]  # the later layer overrides the earlier one


async def test_tmp_is_per_environment_and_persists_while_warm(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.tmp_write")
    sleeper = make_spec(code_dir(tmp_path), "basic.sleep", name="sleeper")
    async with running_executor(tmp_path) as ex:
        a = body(await call(ex, spec, {"text": "hello"}))
        b = body(await call(ex, spec, {}))
        assert a["tempdir"] == b["tempdir"] and b["exists"] and b["files"] == ["marker.txt"]
        # two concurrent invocations -> two environments, two private temp dirs
        r1, r2 = await asyncio.gather(call(ex, sleeper, {"seconds": 0.3}), call(ex, sleeper, {"seconds": 0.3}))
        assert body(r1)["pid"] != body(r2)["pid"]
        envs = [e for e in ex.environments() if e.spec.handler == "basic.sleep"]
        assert len({e.tmp_dir for e in envs}) == 2


async def test_logs_captured_stored_and_read_back(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.logging_demo")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, request_id="req-log-1", want_log_tail=True)
        await call(ex, spec, {}, request_id="req-log-2")
        assert res.outcome is Outcome.OK
        await ex.logs.flush()
        events = ex.logs.read("/aws/lambda/fn", request_id="req-log-1")
        messages = [e["message"] for e in events]
        assert messages[0].startswith("INIT_START") and "module init ran" in messages
        start = messages.index("START RequestId: req-log-1 Version: $LATEST")
        assert "printed line" in messages and "to stderr" in messages and "raw fd write" in messages
        assert "via context.log" in messages
        warn = [m for m in messages if m.startswith("[WARNING]")]
        assert len(warn) == 1 and re.fullmatch(
            r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-log-1\twarned\rsecond line", warn[0])
        assert not any("not shown" in m for m in messages)
        assert messages[-2] == "END RequestId: req-log-1" and REPORT_RE.match(messages[-1])
        assert start > 0
        # another process (a fresh store over the same directory) reads the same events
        other = LogStore(tmp_path / "state" / "logs")
        assert [e["message"] for e in other.read("/aws/lambda/fn", request_id="req-log-1")] == messages
        stream = events[0]["stream"]
        assert other.streams("/aws/lambda/fn") == [stream]
        tail = other.read("/aws/lambda/fn", stream=stream, tail=2)
        assert [e["message"].split("\t")[0] for e in tail] == ["END RequestId: req-log-2",
                                                                "REPORT RequestId: req-log-2"]
        assert other.read("/aws/lambda/fn", since=events[-1]["timestamp"] + 10_000) == []
        assert len(res.log_tail.encode()) <= 4096 and res.log_tail.endswith("\t\n")


async def test_log_tail_is_last_4kb(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.big_output")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {"lines": 400}, want_log_tail=True)
        assert res.outcome is Outcome.OK
        assert 4000 <= len(res.log_tail.encode()) <= 4096
        assert res.log_tail.rstrip("\n").split("\n")[-1].startswith("REPORT RequestId:")
        assert "line 00399" in res.log_tail and "line 00000" not in res.log_tail
