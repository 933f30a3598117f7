"""Process hygiene: workers and the zygote die with the executor's process; a dead zygote is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from edge.invocation.models import Outcome
from tests.invocation.fixtures.support import alive, body, call, code_dir, make_spec, running_executor

ROOT = Path(__file__).resolve().parents[3]


async def _wait_dead(pids: list[int], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while any(alive(p) for p in pids):
        assert loop.time() < end, f"still alive: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.05)


async def test_everything_dies_with_the_executor_process(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from pathlib import Path
        from edge.invocation.execution.executor import Executor, ExecutorSettings
        from edge.invocation.models import FunctionSpec, InvokeOptions
        async def main():
            ex = Executor(ExecutorSettings(state_dir=Path({str(tmp_path / 'state')!r})))
            await ex.start()
            spec = FunctionSpec("fn", "$LATEST", "r", "python3.11", "basic.counter", Path({str(code)!r}))
            await ex.invoke(spec, b"{{}}", InvokeOptions(request_id="r", invoked_arn=spec.arn))
            print(ex._zygote.pid, *[e.pid for e in ex.environments()], flush=True)
            os._exit(0)  # die without close(): no cleanup at all
        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=ROOT,
                                                stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await proc.communicate()
    pids = [int(x) for x in out.split()]
    assert len(pids) == 2, out
    await _wait_dead(pids)


async def test_dead_zygote_is_replaced(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.counter")
    async with running_executor(tmp_path) as ex:
        first = await call(ex, spec, {})
        old_zygote, worker = ex._zygote.pid, body(first)["pid"]
        assert old_zygote is not None
        (env,) = ex.environments()
        os.kill(old_zygote, signal.SIGKILL)
        await _wait_dead([worker])  # PR_SET_PDEATHSIG: the worker follows its zygote
        for _ in range(100):
            if env.discard:
                break
            await asyncio.sleep(0.02)
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and res.cold_start, res.payload
        assert ex._zygote.pid != old_zygote


async def test_output_is_capped_per_invocation(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.big_output")
    async with running_executor(tmp_path) as ex:
        res = await call(ex, spec, {"lines": 30_000}, want_log_tail=True)  # ~1.5 MB of output
        assert res.outcome is Outcome.OK
        assert "bytes of function output truncated" in res.log_tail


async def test_env_dying_while_idle_is_replaced(tmp_path: Path) -> None:
    spec = make_spec(code_dir(tmp_path), "basic.tmp_write")
    async with running_executor(tmp_path) as ex:
        first = body(await call(ex, spec, {"text": "survives"}))
        os.kill(first["pid"], signal.SIGKILL)
        for _ in range(250):  # reaped by the zygote (gone from /proc); the core may not have noticed yet
            if not os.path.exists(f"/proc/{first['pid']}"):  # noqa: ASYNC240 - blocking on purpose, as below
                break
            time.sleep(0.002)  # noqa: ASYNC251 - deliberately blocking: the core must not process the EOF before the call
        res = await call(ex, spec, {})
        assert res.outcome is Outcome.OK and res.cold_start
        assert body(res)["pid"] != first["pid"] and body(res)["files"] == ["marker.txt"]
        assert len(ex.environments()) == 1
