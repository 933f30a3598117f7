"""The zygote's spare (edge.invocation.runtime.zygote): a child forked ahead, in groups and a mount namespace it
prepared, that becomes the next environment; a forked environment (no spare) gets the same sandbox."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.invocation.fixtures.support import alive, body, call, children_of, code_dir, make_spec, running_executor

VIEW = '''import os


def handler(event, context):
    cgroups = dict(line.split(":", 2)[1:] for line in open("/proc/self/cgroup").read().splitlines())
    mounts = sorted(line.split()[4] for line in open("/proc/self/mountinfo").read().splitlines())
    return {"pid": os.getpid(), "uid": os.getuid(), "cg": cgroups.get("memory"), "pids_cg": cgroups.get("pids"),
            "mounts": mounts, "tmp": os.statvfs(os.environ["TMPDIR"]).f_blocks * os.statvfs("/tmp").f_frsize,
            "state": sorted(os.listdir(os.environ["STATE"])) if "STATE" in os.environ else None}
'''

needs_sandbox = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox (uid, cgroups, mounts) needs root")


async def _wait(pred: Callable[[], object], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def _exists(path: Path) -> bool:
    return path.exists()


def _spares(zygote_pid: int, envs: set[int]) -> list[int]:
    return [p for p in children_of(zygote_pid) if p not in envs and alive(p)]


def _normalise(mounts: list[str]) -> list[str]:
    """Mount points but the environments' /tmp (each namespace also holds unreachable copies of the /tmp of the
    environments that existed when it was made)."""
    return sorted({m for m in mounts if "/sandboxes/" not in m})


@needs_sandbox
async def test_an_environment_is_the_spare_in_groups_named_after_it_and_a_new_spare_waits(tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    (code / "view.py").write_text(VIEW)
    async with running_executor(tmp_path) as ex:
        if not ex.isolation.get("cg"):
            pytest.skip("no writable cgroup v1 hierarchy here")
        zygote = ex._zygote.pid
        assert zygote is not None
        await _wait(lambda: len(_spares(zygote, set())) == 1)
        spare = _spares(zygote, set())[0]
        out = body(await call(ex, make_spec(code, "view.handler")))
        env = ex.environments()[0]
        assert out["pid"] == spare == env.pid  # the spare became the environment
        assert out["uid"] != 0
        assert out["cg"].endswith("/" + env.env_id) and out["pids_cg"].endswith("/" + env.env_id)
        await _wait(lambda: len(_spares(zygote, {spare})) == 1)  # the next one
        assert not _exists(Path(ex.isolation["cg"]["memory"]) / "spare.0")  # renamed: it is the environment's


@needs_sandbox
async def test_a_spare_killed_while_waiting_the_next_environment_is_forked_with_the_same_sandbox(
        tmp_path: Path) -> None:
    code = code_dir(tmp_path)
    (code / "view.py").write_text(VIEW)
    async with running_executor(tmp_path) as ex:
        zygote = ex._zygote.pid
        assert zygote is not None
        state = (("STATE", str(tmp_path / "state")),)
        first = body(await call(ex, make_spec(code, "view.handler", name="a", environment=state)))
        await _wait(lambda: len(_spares(zygote, {first["pid"]})) == 1)
        spare = _spares(zygote, {first["pid"]})[0]
        os.kill(spare, signal.SIGKILL)
        await _wait(lambda: spare not in children_of(zygote))  # reaped, its groups released
        cg = ex.isolation.get("cg")
        if cg:
            await _wait(lambda: not any(Path(cg["memory"]).glob("spare.*")) or
                        _spares(zygote, {first["pid"]}) != [])
        second = body(await call(ex, make_spec(code, "view.handler", name="b", environment=state)))
        second_env = next(e for e in ex.environments() if e.spec.function_name == "b").env_id
        assert second["pid"] != spare and second["uid"] not in (0, first["uid"])
        if cg:
            assert second["cg"].endswith("/" + second_env)
        # the forked environment sees exactly what the spare's did (/tmp: the same quota)
        assert _normalise(second["mounts"]) == _normalise(first["mounts"])
        assert second["tmp"] == first["tmp"]
        # of the state dir, only the way to the environment's own /tmp (when it lives there) is there
        assert second["state"] == first["state"] and set(first["state"]) <= {"sandboxes"}
