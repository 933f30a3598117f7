"""Node.js environments seen from the core (edge/invocation/execution/node_process.py + runtime_process.py): what
is fixed at start, spares, and faults (timeout, exit, crash, OOM, /tmp quota, output floods), each with real
``node`` processes; after a fault nothing of the environment is left running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.invocation.execution.environment import Kind
from edge.invocation.execution.node_process import (
    NodeLaunch,
    NodeProcess,
    init_config,
    init_start_line,
    link_slot,
    slot_paths,
)
from tests.invocation.fixtures.node_support import NodeFn, dist, payload

pytestmark = pytest.mark.timeout(90)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_group_gone(pgid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        await asyncio.sleep(0.02)
    return False


# -- launch flags (pure) ------------------------------------------------------------------------------------------
def test_launch_flags_follow_the_managed_bootstrap() -> None:
    assert NodeLaunch(18, 128).flags() == ["--expose-gc", "--max-http-header-size", "81920",
                                           "--max-semi-space-size=6", "--max-old-space-size=116"]
    assert NodeLaunch(20, 1024).flags()[3:] == ["--max-semi-space-size=51", "--max-old-space-size=922",
                                                "--no-experimental-require-module"]
    assert NodeLaunch(22, 128).flags()[-2:] == ["--no-experimental-require-module", "--no-experimental-detect-module"]
    assert NodeLaunch(24, 128).flags()[-1] == "--max-old-space-size=116"
    # the positive flag in NODE_OPTIONS re-enables the feature; a heap flag there replaces the computed ones
    opts = NodeLaunch(22, 128, "--experimental-require-module --max-old-space-size=64").flags()
    assert opts == ["--expose-gc", "--max-http-header-size", "81920", "--no-experimental-detect-module"]
    assert "--max-old-space-size=116" in NodeLaunch(18, 128, "--max-old-space-size=64").flags()
    assert NodeLaunch.for_function(20, 256, {"NODE_OPTIONS": "--x", "A": "b"}) == NodeLaunch(20, 256, "--x", "")
    assert NodeLaunch.for_function(20, 256, {"LD_LIBRARY_PATH": "/l"}) == NodeLaunch(20, 256, library_path="/l")
    # ES-module NODE_PATH resolution is registered at start, for functions that have layers (or a NODE_PATH)
    assert NodeLaunch.for_function(20, 128, {}, layers=True).esm_hook
    assert NodeLaunch.for_function(20, 128, {"NODE_PATH": "/x"}).esm_hook and not NodeLaunch(20).esm_hook
    slot = Path("/s")
    assert "EDGELAB_ESM_FOLDERS" not in NodeLaunch(20).spawn_env(slot)
    folders = NodeLaunch(20, esm_hook=True).spawn_env(slot)["EDGELAB_ESM_FOLDERS"].split(":")
    assert folders[0] == "/s/opt4/nodejs/node20/node_modules" and len(folders) == 10


def test_slot_paths_follow_aws_order_and_links_point_at_the_function(tmp_path: Path) -> None:
    slot = tmp_path / "slot"
    node_path, library_path = slot_paths(20, slot)
    parts = node_path.split(":")
    assert parts[:2] == [f"{slot}/opt4/nodejs/node20/node_modules", f"{slot}/opt3/nodejs/node20/node_modules"]
    assert parts[5:7] == [f"{slot}/opt4/nodejs/node_modules", f"{slot}/opt3/nodejs/node_modules"]
    assert parts[-1] == f"{slot}/task" and parts[-2].endswith("runtime/node") and len(parts) == 13
    assert library_path.split(":")[1:3] == [f"{slot}/task", f"{slot}/task/lib"]
    a, b, task, other = tmp_path / "a", tmp_path / "b", tmp_path / "task", tmp_path / "other"
    for d in (a, b, task, other):
        d.mkdir()
    link_slot(slot, task, [str(a), str(b)])  # attach order: b overrides a, so opt1 (b) comes first
    assert (slot / "task").resolve() == task and (slot / "opt0").resolve() == a and (slot / "opt1").resolve() == b
    assert not (slot / "opt2").exists()
    link_slot(slot, other, [str(b)])  # a slot re-linked for another function keeps nothing of the first
    assert (slot / "task").resolve() == other and (slot / "opt0").resolve() == b and not (slot / "opt1").exists()
    with pytest.raises(ValueError):
        link_slot(slot, task, [str(a)] * 6)
    assert init_start_line("20.18.0", "eu-west-1").startswith(
        "INIT_START Runtime Version: nodejs:20.18.0\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:")


def test_reserved_variables_win(tmp_path: Path) -> None:
    cfg = init_config(runtime="nodejs22.x", handler="index.handler", task_root=tmp_path, tmp_dir=tmp_path,
                      function_name="f", log_group="g", log_stream="s", node_bin=dist(22).binary,
                      environment={"AWS_REGION": "mars-1", "NODE_PATH": "/mine", "X": "1"})
    assert NodeLaunch.for_function(22, 128, {"NODE_PATH": "/mine"}).node_path == "/mine"  # it keys the spare
    env = cfg["env"]
    assert env["AWS_REGION"] == "us-east-1" and env["NODE_PATH"] == "/mine" and env["X"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128" and env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"


# -- spares ---------------------------------------------------------------------------------------------------------
async def test_a_spare_serves_a_function_given_later(tmp_path: Path) -> None:
    d = dist(20)
    spare = await NodeProcess.spawn(NodeLaunch(20, 128), d)
    try:
        assert spare.boot_ms > 0 and spare.node_version == d.version and spare.pid > 0
        (tmp_path / "index.js").write_text("exports.handler = async (e, c) => c.functionName;")
        cfg = init_config(runtime="nodejs20.x", handler="index.handler", task_root=tmp_path, tmp_dir=tmp_path,
                          function_name="late", log_group="g", log_stream="s", node_bin=d.binary)
        result = await spare.init(cfg, 10.0)
        assert result.ok and result.init_ms < 2000
        out = await spare.invoke("r", b"{}", invoked_arn="arn", timeout_s=3, fn_override="us-east-1.late")
        assert payload(out) == "us-east-1.late"
    finally:
        await spare.stop(graceful=True)
    assert spare.proc is not None and spare.proc.status == 0  # the channel closed: the shim exited by itself


async def test_bad_node_options_fail_the_start_with_nodes_message(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--definitely-not-a-flag"):
        await NodeProcess.spawn(NodeLaunch(20, 128, "--definitely-not-a-flag"), dist(20))


async def test_missing_exec_wrapper_exits_127(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exit status 127"):  # row 32
        await NodeProcess.spawn(NodeLaunch(20, 128, "", str(tmp_path / "missing")), dist(20))
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\nexport WRAPPED=yes\nexec "$@"\n')
    wrapper.chmod(0o755)
    src = "const w = process.env.WRAPPED;\nexports.handler = async () => w;"
    async with NodeFn(tmp_path, {"index.js": src}, environment={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}) as fn:
        assert payload(await fn.invoke({})) is None  # the wrapper ran, but INIT replaced the environment
        assert fn.proc and fn.proc.launch.exec_wrapper == str(wrapper)


# -- faults -------------------------------------------------------------------------------------------------------
async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    src = ("const cp = require('child_process');\n"
           "exports.handler = async () => { cp.spawn('sleep', ['300'], { stdio: 'ignore' });\n"
           "  await new Promise(() => setInterval(() => {}, 1000)); };")
    async with NodeFn(tmp_path, {"index.js": src}, timeout_s=1.0) as fn:
        assert fn.proc and fn.proc.proc
        pgid = fn.proc.pid
        out = await fn.invoke({}, request_id="slow")
        assert out.kind is Kind.TIMEOUT and out.reset and out.error_type == "Sandbox.Timedout"
        assert payload(out) == {"errorType": "Sandbox.Timedout",
                                "errorMessage": "RequestId: slow Error: Task timed out after 1.00 seconds"}
        assert await wait_group_gone(pgid)  # node and its `sleep` child


@pytest.mark.parametrize(("code", "message"), [(0, "Runtime exited without providing a reason"),
                                               (3, "Runtime exited with error: exit status 3")])
async def test_process_exit(tmp_path: Path, code: int, message: str) -> None:
    src = f"exports.handler = async () => {{ console.log('bye'); process.exit({code}); }};"
    async with NodeFn(tmp_path, {"index.js": src}) as fn:
        out = await fn.invoke({}, request_id="r")
        assert out.kind is Kind.EXIT and out.reset  # row 20
        assert payload(out) == {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: r Error: {message}"}
        assert out.output.endswith(b"\tINFO\tbye\n")


async def test_heap_limit_from_memory_size(tmp_path: Path) -> None:
    """Row 21: the V8 heap is capped at MemorySize - 10 %; filling it aborts Node (or the RSS watch kills it
    first, when the process's resident set passes MemorySize before the heap limit)."""
    src = "const keep = [];\nexports.handler = async () => { for (;;) keep.push({ a: Math.random(), b: [1, 2, 3] }); };"
    async with NodeFn(tmp_path, {"index.js": src}, timeout_s=30.0) as fn:
        out = await fn.invoke({})
        assert out.reset and out.kind in (Kind.EXIT, Kind.OOM), out
        if out.kind is Kind.EXIT:
            assert payload(out)["errorMessage"].endswith("signal: aborted")
            assert b"heap out of memory" in out.output


async def test_rss_past_memory_size_is_an_oom_kill(tmp_path: Path) -> None:
    src = ("const keep = [];\nexports.handler = async () => {\n"
           "  for (let i = 0; i < 400; i++) { keep.push(Buffer.alloc(1 << 20, 1)); await new Promise(r => setTimeout(r, 2)); }\n"
           "  return keep.length; };")
    async with NodeFn(tmp_path, {"index.js": src}, timeout_s=20.0) as fn:
        out = await fn.invoke({}, request_id="big")
        assert out.kind is Kind.OOM and out.reset  # row 22
        assert payload(out) == {"errorType": "Runtime.OutOfMemory",
                                "errorMessage": "RequestId: big Error: Runtime exited with error: signal: killed"}
        assert out.max_rss_kb >= 128 * 1024


async def test_tmp_quota(tmp_path: Path) -> None:
    src = ("const fs = require('fs'), os = require('os');\n"
           "exports.handler = async (e) => { const p = os.tmpdir() + '/' + e.name;\n"
           "  try { fs.writeFileSync(p, Buffer.alloc(e.size)); } catch (err) { fs.rmSync(p); return err.code; }\n"
           "  return 'written'; };")
    async with NodeFn(tmp_path, {"index.js": src}, tmp_quota_mb=1) as fn:
        assert payload(await fn.invoke({"name": "one", "size": 2 << 20})) == "EFBIG"  # one file: RLIMIT_FSIZE
        assert payload(await fn.invoke({"name": "a", "size": 600_000})) == "written"
        out = await fn.invoke({"name": "b", "size": 600_000}, request_id="q")  # the sum: checked after the invoke
        assert out.kind is Kind.ERROR and out.reset and out.error_type == "Runtime.EphemeralStorageExceeded"
        assert payload(out)["errorMessage"].startswith("RequestId: q Error: /tmp usage 1.")


async def test_output_flood_is_truncated_and_the_environment_survives(tmp_path: Path) -> None:
    src = "exports.handler = async () => { const s = 'y'.repeat(1023) + '\\n'; for (let i = 0; i < 3072; i++) process.stdout.write(s); return 'ok'; };"
    async with NodeFn(tmp_path, {"index.js": src}) as fn:
        out = await fn.invoke({})
        assert payload(out) == "ok" and len(out.output) < (1 << 20) + 200
        assert out.output.endswith(b"[edgelab] 2097152 bytes of function output truncated\n")
        assert payload(await fn.invoke({})) == "ok"


async def test_crash_with_a_signal(tmp_path: Path) -> None:
    src = "exports.handler = async () => { process.kill(process.pid, 'SIGSEGV'); await new Promise(() => setInterval(() => {}, 1000)); };"
    async with NodeFn(tmp_path, {"index.js": src}) as fn:
        assert fn.proc
        pgid = fn.proc.pid
        out = await fn.invoke({}, request_id="c")
        assert out.kind is Kind.EXIT
        assert payload(out)["errorMessage"] == "RequestId: c Error: Runtime exited with error: signal: segmentation fault"
        assert await wait_group_gone(pgid)


async def test_init_timeout_kills_the_process(tmp_path: Path) -> None:
    d = dist(20)
    (tmp_path / "index.mjs").write_text("await new Promise(r => setTimeout(r, 60000));\nexport const handler = 1;")
    proc = await NodeProcess.spawn(NodeLaunch(20), d)
    cfg = init_config(runtime="nodejs20.x", handler="index.handler", task_root=tmp_path, tmp_dir=tmp_path,
                      function_name="f", log_group="g", log_stream="s", node_bin=d.binary)
    result = await proc.init(cfg, 0.5)
    assert not result.ok and result.failure and result.failure.kind is Kind.TIMEOUT
    assert await wait_group_gone(proc.pid)
    await proc.stop(graceful=False)


def test_runtime_dies_with_the_core(tmp_path: Path) -> None:
    """SIGKILL the process that started a Node runtime: the parent-death signal takes the runtime along."""
    script = tmp_path / "core.py"
    script.write_text(
        "import asyncio, sys\nfrom pathlib import Path\n"
        "from edge.invocation.execution.node_process import NodeLaunch, NodeProcess\n"
        "from edge.invocation.execution.node_dist import find\n"
        "async def main():\n"
        f"    p = await NodeProcess.spawn(NodeLaunch(20), find(20), slots_root=Path({str(tmp_path / 'slots')!r}))\n"
        "    print(p.pid, flush=True)\n"
        "    await asyncio.sleep(300)\n"
        "asyncio.run(main())\n")
    core = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=str(Path(__file__).resolve().parents[3]))
    try:
        assert core.stdout is not None
        pid = int(core.stdout.readline())
        assert group_alive(pid)
        core.send_signal(signal.SIGKILL)
        core.wait(10)
        assert asyncio.run(wait_group_gone(pid)), "the Node runtime outlived its core"
    finally:
        core.kill()
        core.wait()


async def test_init_error_record_reaches_the_core_as_is(tmp_path: Path) -> None:
    async with NodeFn(tmp_path, {"index.js": "exports.handler = 1;"}) as fn:
        assert fn.init and fn.init.failure and fn.init.failure.reset
        assert json.loads(fn.init.failure.payload) == {
            "errorType": "Runtime.HandlerNotFound", "errorMessage": "index.handler is not a function",
            "trace": json.loads(fn.init.failure.payload)["trace"]}
        assert fn.init.failure.error_type == "Runtime.HandlerNotFound"
