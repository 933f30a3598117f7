"""The executor running Node.js and custom-runtime functions (edge/invocation/execution/backends.py) with real
processes started through the zygote: cold/warm reuse, INIT_START naming the real version, Init Duration (spare
boot + function init), init errors, faults (timeout, exit, crash while idle, output flood), provisioned
concurrency, idle expiry, concurrency, and nothing left running afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.invocation.execution import runtimes
from edge.invocation.execution.backends import CustomEnvironment, NodeEnvironment
from edge.invocation.execution.executor import Executor
from edge.invocation.execution.logs import LogStore
from edge.invocation.models import FunctionSpec, InvocationResult, Outcome
from tests.invocation.execution.test_node_process import wait_group_gone
from tests.invocation.execution.test_runtime_api import BASH_BOOTSTRAP, BASH_FUNCTION, py_bootstrap
from tests.invocation.fixtures.node_support import dist, write_files
from tests.invocation.fixtures.support import alive, body, call, code_dir, options, running_executor
from tests.invocation.fixtures.support import call as _call

pytestmark = pytest.mark.timeout(120)


def node_spec(tmp_path: Path, files: dict[str, str | bytes], *, runtime: str = "nodejs20.x", name: str = "nfn",
              handler: str = "index.handler", revision: str = "r1", **kwargs: object) -> FunctionSpec:
    code = write_files(tmp_path / f"code-{name}-{revision}", files)
    return FunctionSpec(function_name=name, version="$LATEST", revision=revision, runtime=runtime, handler=handler,
                        code_dir=code, **kwargs)  # type: ignore[arg-type]


def messages(ex_logs: LogStore, group: str, request_id: str | None = None) -> list[str]:
    return [str(e["message"]) for e in ex_logs.read(group, request_id=request_id)]


async def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    """Whether process ``pid`` (any process, not only a group leader) is gone or a zombie within the time."""
    for _ in range(int(timeout_s / 0.02)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return not alive(pid)


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


async def test_node_cold_warm_logs_metrics_and_nothing_left_after_close(tmp_path: Path) -> None:
    src = ("let calls = 0; console.log('init ran');\n"
           "exports.handler = async (event, context) => { calls += 1; console.log('got', event.k);\n"
           "  return { calls, pid: process.pid, name: context.functionName, v: process.version,\n"
           "           child: require('child_process').spawn('sleep', ['300']).pid }; };")
    spec = node_spec(tmp_path, {"index.js": src})
    async with running_executor(tmp_path) as ex:
        first = await call(ex, spec, {"k": 1}, want_log_tail=True)
        second = await call(ex, spec, {"k": 2}, want_log_tail=True)
        assert first.outcome is Outcome.OK and second.outcome is Outcome.OK, first.payload
        b1, b2 = body(first), body(second)
        assert (b1["calls"], b2["calls"]) == (1, 2) and b1["pid"] == b2["pid"] and b1["name"] == "nfn"
        assert b1["v"] == f"v{dist(20).version}"
        assert first.cold_start and not second.cold_start and second.init_duration_ms is None
        (env,) = ex.environments()
        assert isinstance(env, NodeEnvironment) and env.proc is not None
        assert parent_of(b1["pid"]) == ex._zygote.pid  # forked and exec'd by the zygote, not the core
        # Init Duration = the process's boot (spawn -> HELLO) + the function's Init, both measured
        assert first.init_duration_ms is not None and first.init_duration_ms >= env.proc.boot_ms > 0
        assert f"INIT_START Runtime Version: nodejs:{dist(20).version}\t" in first.log_tail
        assert "\tINFO\tinit ran" in first.log_tail and f"Init Duration: {first.init_duration_ms:.2f} ms" in first.log_tail
        assert "INIT_START" not in second.log_tail and "\tINFO\tgot 2" in second.log_tail
        await ex.logs.flush()
        stored = messages(ex.logs, "/aws/lambda/nfn")
        assert [m.split(" ", 1)[0] for m in stored if m.split(" ", 1)[0] in ("INIT_START", "START", "END", "REPORT")] \
            == ["INIT_START", "START", "END", "REPORT", "START", "END", "REPORT"]
        m = ex.metrics.snapshot()["us-east-1"]["nfn"]["$LATEST"]
        assert m["invocations"] == 2 and m["cold_starts"] == 1 and m["init_duration_ms"]["count"] == 1
        node_pid, children = b1["pid"], [b1["child"], b2["child"]]
        spare_pids = [p.pid for procs in ex.spares._spares.values() for p in procs]
        slots = ex._slots
        assert slots.is_dir() and any(slots.iterdir())
    for pid in [node_pid, *spare_pids]:
        assert await wait_group_gone(pid), f"process group {pid} survived Executor.close"
    for pid in children:
        assert await wait_gone(pid), f"process {pid} (started by the function) survived Executor.close"
    assert not slots.exists()


@pytest.mark.parametrize(("files", "handler", "etype"), [
    ({"index.js": "exports.handler = async () => 1;"}, "missing.handler", "Runtime.ImportModuleError"),
    ({"index.js": "exports.other = async () => 1;"}, "index.handler", "Runtime.HandlerNotFound"),
    ({"index.js": "exports.handler = async () => 1;"}, "nodot", "Runtime.MalformedHandlerName"),
])
async def test_node_init_errors_reach_the_response_and_the_logs(tmp_path: Path, files: dict[str, str],
                                                                handler: str, etype: str) -> None:
    spec = node_spec(tmp_path, files, handler=handler)
    async with running_executor(tmp_path) as ex:
        for _ in range(2):  # the environment is discarded: the next invocation is a new Init, failing again
            res = await call(ex, spec, {}, want_log_tail=True)
            assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type == etype
            err = body(res)
            assert err["errorType"] == etype and "trace" in err and "requestId" not in err
            assert "INIT_REPORT Init Duration: " in res.log_tail and f"Error Type: {etype}" in res.log_tail
            assert f"Status: error\tError Type: {etype}" in res.log_tail.splitlines()[-1]
            assert "\tundefined\tERROR\tUncaught Exception \t" in res.log_tail
        assert not ex.environments() or all(e.discard for e in ex.environments())


async def submitted(ex: Executor, spec: FunctionSpec, event: Any = None, **kwargs: Any) -> InvocationResult:
    """``call`` through ``Executor.submit`` (a warm Node environment takes the frame at once: no task); ``done``
    must not run inside ``submit``."""
    got: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
    ex.submit(spec, b"" if event is None else json.dumps(event).encode(), options(spec, **kwargs), got.set_result)
    assert not got.done()
    return await asyncio.wait_for(got, 30.0)


async def test_a_warm_node_function_is_submitted_without_a_task(tmp_path: Path) -> None:
    spec = node_spec(tmp_path, {"index.js": "let n = 0;\nexports.handler = async () => ({ n: ++n, pid: process.pid });"})
    async with running_executor(tmp_path) as ex:
        tasks: list[str] = []
        invoke_then = ex.invoke_then

        def counted(*args: Any, **kwargs: Any) -> Any:
            tasks.append("invoke")
            return invoke_then(*args, **kwargs)

        ex.invoke_then = counted  # type: ignore[method-assign]  # counts the executor's tasks
        cold = await submitted(ex, spec, {})
        assert cold.cold_start and tasks == ["invoke"]  # a cold start runs in the executor's task
        for n in (2, 3):
            warm = await submitted(ex, spec, {}, want_log_tail=True)
            assert body(warm) == {"n": n, "pid": body(cold)["pid"]} and not warm.cold_start
            assert f"REPORT RequestId: {warm.request_id}" in warm.log_tail
        assert tasks == ["invoke"]  # the warm ones did not
        m = ex.metrics.snapshot()["us-east-1"]["nfn"]["$LATEST"]
        assert m["invocations"] == 3 and m["cold_starts"] == 1


@pytest.mark.parametrize("via", ["invoke", "submit"])
async def test_node_faults_replace_the_environment_and_leave_nothing(tmp_path: Path, via: str) -> None:
    call = _call if via == "invoke" else submitted
    src = ("exports.handler = async (event) => {\n"
           "  if (event.op === 'hang') { require('child_process').spawn('sleep', ['300']); await new Promise(() => {}); }\n"
           "  if (event.op === 'exit') process.exit(3);\n"
           "  if (event.op === 'crash') setImmediate(() => { throw new Error('async crash'); });\n"
           "  if (event.op === 'flood') { const line = 'x'.repeat(1023) + '\\n'; for (let i = 0; i < 3000; i++) process.stdout.write(line); }\n"
           "  return { pid: process.pid };\n"
           "};")
    spec = node_spec(tmp_path, {"index.js": src}, timeout_s=1.0)
    async with running_executor(tmp_path) as ex:
        pid = body(await call(ex, spec, {}))["pid"]
        res = await call(ex, spec, {"op": "hang"}, want_log_tail=True)
        assert res.error_type == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in res.log_tail
        assert await wait_group_gone(pid)  # the process group, the sleep child included
        res = await call(ex, spec, {"op": "exit"})
        assert res.error_type == "Runtime.ExitError" and body(res)["errorMessage"].endswith(
            "Runtime exited with error: exit status 3")
        res = await call(ex, spec, {"op": "flood"}, want_log_tail=True)
        assert res.outcome is Outcome.OK and "bytes of function output truncated" in res.log_tail
        pid = body(res)["pid"]
        # killed while idle: the next invocation is retried on a new environment (the caller sees no error)
        os.kill(pid, signal.SIGKILL)
        assert await wait_group_gone(pid)
        await asyncio.sleep(0.1)
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and res.cold_start and body(res)["pid"] != pid
        pid = body(res)["pid"]
        res = await call(ex, spec, {"op": "crash"})  # an uncaught exception after the handler returned
        assert res.outcome is Outcome.OK
        assert await wait_group_gone(pid)  # 3.x runtime: exit(129) after logging it
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and res.cold_start
        m = ex.metrics.snapshot()["us-east-1"]["nfn"]["$LATEST"]
        assert m["errors"] == 2


async def test_node_concurrency_provisioned_and_idle_expiry(tmp_path: Path) -> None:
    src = "exports.handler = async (e) => { await new Promise((r) => setTimeout(r, e.ms || 0)); return process.pid; };"
    spec = node_spec(tmp_path, {"index.js": src}, runtime="nodejs22.x")
    async with running_executor(tmp_path, idle_ttl_s=0.6, reaper_interval_s=0.1) as ex:
        a, b = await asyncio.gather(call(ex, spec, {"ms": 300}), call(ex, spec, {"ms": 300}))
        assert body(a) != body(b) and a.cold_start and b.cold_start  # two environments at once
        pids = [body(a), body(b)]
        for pid in pids:  # idle expiry stops them
            assert await wait_group_gone(pid, 10.0)
        await ex.set_provisioned(spec, 1)
        for _ in range(200):
            if ex.provisioned_status(spec)[1] == "READY":
                break
            await asyncio.sleep(0.05)
        assert ex.provisioned_status(spec)[:2] == (1, "READY")
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and not res.cold_start
        (env,) = ex.environments()
        assert env.init_type == "provisioned-concurrency" and body(res) == env.pid
        await ex.logs.flush()
        assert any(m.startswith("INIT_START Runtime Version: nodejs:22.") for m in messages(ex.logs, "/aws/lambda/nfn"))
        await ex.set_provisioned(spec, 0)


async def test_custom_runtime_through_the_executor(tmp_path: Path) -> None:
    spec = node_spec(tmp_path, {"bootstrap": BASH_BOOTSTRAP, "function.sh": BASH_FUNCTION},
                     runtime="provided.al2023", name="cfn", handler="function.handler")
    (spec.code_dir / "bootstrap").chmod(0o755)
    missing = node_spec(tmp_path, {"other": "x"}, runtime="provided.al2", name="nobootstrap", handler="x.y")
    async with running_executor(tmp_path) as ex:
        first = await call(ex, spec, {"a": 1}, want_log_tail=True)
        second = await call(ex, spec, {"a": 2}, want_log_tail=True, request_id="rid-2")
        assert first.outcome is Outcome.OK and first.payload == b"Echoing request: '{\"a\": 1}'", first.payload
        assert first.cold_start and not second.cold_start and first.init_duration_ms is not None
        (env,) = ex.environments()
        assert isinstance(env, CustomEnvironment)
        assert re.search(r"INIT_START Runtime Version: provided:al2023 \(.+\)\t", first.log_tail)
        tail = second.log_tail.splitlines()
        # the bootstrap's stderr (after, possibly, the {"status":"OK"} curl printed once the previous answer was in)
        assert tail[0] == "START RequestId: rid-2 Version: $LATEST" and tail[1].endswith('{"a": 2}')
        assert tail[-2] == "END RequestId: rid-2" and tail[-1].startswith("REPORT RequestId: rid-2\t")
        bad = await call(ex, missing, {}, request_id="rid-3")
        assert bad.error_type == "Runtime.InvalidEntrypoint"
        assert body(bad)["errorMessage"] == (
            f"RequestId: rid-3 Error: Couldn't find valid bootstrap(s): [{missing.code_dir}/bootstrap]")
        pid = env.pid
    assert await wait_group_gone(pid)


async def test_python_declaring_another_version_runs_honestly_with_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = f"python3.{sys.version_info.minor}"
    newer = f"python3.{sys.version_info.minor + 1}"
    spec = FunctionSpec(function_name="pyfn", version="$LATEST", revision="r1", runtime=newer,
                        handler="basic.counter", code_dir=code_dir(tmp_path))
    caplog.set_level(logging.WARNING, logger="edgelab.invocation.runtimes")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {}, want_log_tail=True)
        await ex.reset()
        again = await call(ex, spec, {}, want_log_tail=True)
    v = sys.version_info
    for r in (res, again):
        assert r.outcome is Outcome.OK and r.cold_start
        assert f"INIT_START Runtime Version: python:{v.major}.{v.minor}.{v.micro}\t" in r.log_tail
    warnings = [rec.getMessage() for rec in caplog.records if "declares a newer Python" in rec.getMessage()]
    assert len(warnings) == 1 and newer in warnings[0] and f"runs on {v.major}.{v.minor}.{v.micro}" in warnings[0]
    assert runtimes.python_mismatch(host) is None
    assert "older" in (runtimes.python_mismatch("python3.9") or "")
    assert not alive(body(res)["pid"])


async def test_custom_runtime_faults_replace_the_environment_and_leave_nothing(tmp_path: Path) -> None:
    boot = py_bootstrap(
        "import subprocess, time\nwhile True:\n    s, h, b = api('GET', '/invocation/next')\n"
        "    ev = json.loads(b); rid = h['Lambda-Runtime-Aws-Request-Id']\n"
        "    if ev.get('op') == 'hang':\n        subprocess.Popen(['sleep', '300']); time.sleep(300)\n"
        "    if ev.get('op') == 'exit':\n        sys.exit(4)\n"
        "    if ev.get('op') == 'flood':\n        sys.stdout.write(('y' * 1023 + '\\n') * 3000); sys.stdout.flush()\n"
        "    api('POST', f'/invocation/{rid}/response', json.dumps({'pid': os.getpid()}))\n")
    spec = node_spec(tmp_path, {"bootstrap": boot}, runtime="provided.al2023", name="cfault", handler="x.y",
                     timeout_s=1.0)
    (spec.code_dir / "bootstrap").chmod(0o755)
    async with running_executor(tmp_path) as ex:
        pid = body(await call(ex, spec, {}))["pid"]
        res = await call(ex, spec, {"op": "hang"}, want_log_tail=True)
        assert res.error_type == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in res.log_tail
        assert await wait_group_gone(pid)  # the bootstrap's group, its sleep child included
        res = await call(ex, spec, {"op": "exit"})
        assert res.error_type == "Runtime.ExitError" and body(res)["errorMessage"].endswith("exit status 4")
        res = await call(ex, spec, {"op": "flood"}, want_log_tail=True)
        assert res.outcome is Outcome.OK and res.cold_start and "bytes of function output truncated" in res.log_tail
        pid = body(res)["pid"]
        os.kill(pid, signal.SIGKILL)  # dies while idle: the next invocation runs on a new environment
        assert await wait_group_gone(pid)
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and res.cold_start and body(res)["pid"] != pid
        pid = body(res)["pid"]
    assert await wait_group_gone(pid)


async def test_slot_folders_of_killed_executors_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "state" / "node-slots"
    dead = root / "999999999-deadbeef" / "0123"  # a pid that cannot exist: its core was killed
    dead.mkdir(parents=True)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("x")
    (dead / "task").symlink_to(kept)
    alive_one = root / f"{os.getppid()}-cafe"  # a running process's folder is kept
    alive_one.mkdir()
    async with running_executor(tmp_path) as ex:
        assert not (root / "999999999-deadbeef").exists() and alive_one.is_dir() and ex._slots.is_dir()
    assert (kept / "file").read_text() == "x"  # the link was removed, never followed


async def test_node_tmp_survives_a_reset_and_is_wiped_past_its_quota(tmp_path: Path) -> None:
    """runtimes.md row 23: /tmp is kept across a reset (timeout), as AWS; past the quota it is wiped."""
    src = ("const fs = require('fs'), path = require('path'), os = require('os');\n"
           "exports.handler = async (e) => {\n"
           "  const f = path.join(os.tmpdir(), 'note');\n"
           "  if (e.op === 'write') fs.writeFileSync(f, 'kept');\n"
           "  if (e.op === 'hang') await new Promise((r) => setTimeout(r, 10000));\n"
           "  if (e.op === 'fill') for (let i = 0; i < 3; i++) fs.writeFileSync(f + i, Buffer.alloc(400 << 10));\n"
           "  return { note: fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : null, pid: process.pid };\n"
           "};")
    spec = node_spec(tmp_path, {"index.js": src}, timeout_s=1.0, ephemeral_storage_mb=1)
    async with running_executor(tmp_path) as ex:
        first = body(await call(ex, spec, {"op": "write"}))
        assert first["note"] == "kept"
        assert (await call(ex, spec, {"op": "hang"})).error_type == "Sandbox.Timedout"
        again = body(await call(ex, spec, {}))
        assert again["note"] == "kept" and again["pid"] != first["pid"]  # a new process, the same /tmp
        res = await call(ex, spec, {"op": "fill"})
        if ex.isolation.get("tmpfs"):  # /tmp is a file system of the quota's size: ENOSPC, as AWS
            assert res.error_type == "Error" and "ENOSPC" in body(res)["errorMessage"]
            assert body(await call(ex, spec, {}))["note"] == "kept"  # no reset: the environment stays
        else:
            assert res.error_type == "Runtime.EphemeralStorageExceeded"
            assert body(await call(ex, spec, {}))["note"] is None  # reset with /tmp wiped


@pytest.mark.parametrize(("runtime", "files", "handler"), [
    ("nodejs20.x", {"index.js": "exports.handler = async () => require('child_process').spawn('sleep', ['300']).pid;"},
     "index.handler"),
    ("python3.11", {"app.py": "import subprocess\ndef handler(e, c):\n    return subprocess.Popen(['sleep', '300']).pid\n"},
     "app.handler"),
])
async def test_what_a_function_started_dies_with_a_graceful_stop(tmp_path: Path, runtime: str,
                                                                 files: dict[str, str], handler: str) -> None:
    """A retired (or idle-expired) environment stops gracefully: its runtime exits on its own; the zygote then kills
    the rest of its process group before reaping it, so a child the function left running does not survive."""
    spec = node_spec(tmp_path, files, runtime=runtime, handler=handler)
    async with running_executor(tmp_path) as ex:
        child = body(await call(ex, spec, {}))
        assert alive(child)
        await ex.retire(spec.function_name)
        assert await wait_gone(child)


async def test_unbounded_output_floods_end_at_the_timeout_and_leave_nothing(tmp_path: Path) -> None:
    """Issue 12 item 5: a runtime flooding stdout without end (Node's raw stdout, console.log, a custom runtime's
    bootstrap) fails the invocation, its environment is replaced (group gone) and 1 MiB of the output is kept.
    How it ends depends on the flood's speed: the timeout (AWS's outcome), or a write failing with EFBIG once
    ~512 MB were written (the /tmp file-size limit also caps the output memfd; its pages are freed as it grows),
    or, for Node.js, the RSS of V8's own garbage passing MemorySize."""
    src = ("exports.handler = async (event) => {\n"
           "  const s = 'z'.repeat(65535);\n"
           "  if (event.op === 'raw') for (;;) process.stdout.write(s + '\\n');\n"
           "  if (event.op === 'console') for (;;) console.log(s);\n"
           "  return { pid: process.pid };\n};")
    boot = py_bootstrap("while True:\n    s, h, b = api('GET', '/invocation/next')\n"
                        "    if json.loads(b).get('op'):\n        while True: sys.stdout.write('w' * 65535 + '\\n')\n"
                        "    api('POST', f\"/invocation/{h['Lambda-Runtime-Aws-Request-Id']}/response\",\n"
                        "        json.dumps({'pid': os.getpid()}))\n")
    nspec = node_spec(tmp_path, {"index.js": src}, timeout_s=1.0)
    cspec = node_spec(tmp_path, {"bootstrap": boot}, runtime="provided.al2023", name="cflood", handler="x.y",
                      timeout_s=1.0)
    (cspec.code_dir / "bootstrap").chmod(0o755)
    async with running_executor(tmp_path) as ex:
        for spec, op in ((nspec, "raw"), (nspec, "console"), (cspec, "raw")):
            pid = body(await call(ex, spec, {}))["pid"]
            res = await call(ex, spec, {"op": op}, want_log_tail=True)
            assert res.outcome is Outcome.FUNCTION_ERROR and res.error_type in (
                "Sandbox.Timedout", "Runtime.ExitError", "Runtime.OutOfMemory"), (res.error_type, body(res))
            assert await wait_group_gone(pid)
            await ex.logs.flush()
            stored = "".join(messages(ex.logs, f"/aws/lambda/{spec.function_name}", res.request_id))
            assert "bytes of function output truncated" in stored and len(stored) < 2 << 20  # 1 MiB kept
            res = await call(ex, spec, {})
            assert res.outcome is Outcome.OK and res.cold_start and body(res)["pid"] != pid
            pid = body(res)["pid"]
    assert await wait_group_gone(pid)


FLOOD_PY = """import os, sys, time
def handler(event, context):
    if event.get("op"):
        for _ in range(1024):
            sys.stdout.write("p" * 65535 + "\\n")
        sys.stdout.flush()
        time.sleep(1.5)
    return {"pid": os.getpid()}
"""
FLOOD_NODE = """exports.handler = async (event) => {
  if (event.op) {
    const s = 'n'.repeat(65535) + '\\n';
    for (let i = 0; i < 1024; i++) process.stdout.write(s);
    await new Promise((r) => setTimeout(r, 1500));
  }
  return { pid: process.pid };
};"""
FLOOD_BOOT = ("import time\nwhile True:\n    s, h, b = api('GET', '/invocation/next')\n"
              "    if json.loads(b).get('op'):\n"
              "        for _ in range(1024): sys.stdout.write('c' * 65535 + '\\n')\n"
              "        sys.stdout.flush(); time.sleep(1.5)\n"
              "    api('POST', f\"/invocation/{h['Lambda-Runtime-Aws-Request-Id']}/response\",\n"
              "        json.dumps({'pid': os.getpid()}))\n")


@pytest.mark.parametrize("runtime", ["python3.11", "nodejs20.x", "provided.al2023"])
async def test_a_flood_of_output_holds_bounded_host_memory(tmp_path: Path, runtime: str) -> None:
    """64 MiB written to stdout in one invocation: while it still runs, the output memfd (seen through
    /proc/<pid>/fd/1) has the full size but at most ~2 MiB of pages (the rest freed), and the log keeps the
    first 1 MiB and the exact count of the rest."""
    files: dict[str, str | bytes] = (
        {"index.py": FLOOD_PY} if runtime.startswith("python") else
        {"index.js": FLOOD_NODE} if runtime.startswith("nodejs") else {"bootstrap": py_bootstrap(FLOOD_BOOT)})
    spec = node_spec(tmp_path, files, runtime=runtime, name="flood", handler="index.handler", timeout_s=10.0)
    if "bootstrap" in files:
        (spec.code_dir / "bootstrap").chmod(0o755)
    async with running_executor(tmp_path) as ex:
        pid = body(await call(ex, spec, {}))["pid"]
        running = asyncio.ensure_future(call(ex, spec, {"op": 1}))
        seen = None
        for _ in range(300):  # bounded: 3 s
            st = os.stat(f"/proc/{pid}/fd/1")
            if st.st_size >= 64 << 20 and st.st_blocks * 512 <= 3 << 20:
                seen = st
                break
            await asyncio.sleep(0.01)
        res = await running
        assert seen is not None, "the flood's pages were never freed while the invocation ran"
        assert res.outcome is Outcome.OK and body(res)["pid"] == pid
        await ex.logs.flush()
        stored = "".join(messages(ex.logs, "/aws/lambda/flood", res.request_id))
        assert f"[edgelab] {(64 << 20) - (1 << 20)} bytes of function output truncated" in stored
