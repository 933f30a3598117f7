"""Environment state machine, exit-status wording, worker configuration (no processes)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from edge.invocation.execution.environment import (
    Environment,
    EnvState,
    InvalidState,
    describe_exit,
)
from edge.invocation.execution.worker_setup import Credentials, layer_paths, worker_config
from edge.invocation.execution.zygote_client import ZygoteClient
from tests.invocation.fixtures.support import make_spec


def _env(tmp_path: Path, **spec_kwargs: object) -> Environment:
    spec = make_spec(tmp_path, "app.handler", **spec_kwargs)  # type: ignore[arg-type]
    return Environment(env_id="ab" * 16, spec=spec, region="eu-central-1", init_type="on-demand",
                       tmp_dir=tmp_path / "tmp", log_group="/aws/lambda/fn", log_stream="s",
                       function_name="fn", zygote=ZygoteClient())


async def test_transitions_are_checked_and_visible_in_repr(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert env.state is EnvState.STARTING and "state=STARTING" in repr(env)
    with pytest.raises(InvalidState, match="STARTING to BUSY"):
        env.mark_busy()
    env._transition(EnvState.READY)
    env.mark_busy()
    assert "state=BUSY" in repr(env)
    with pytest.raises(InvalidState):
        env.mark_busy()
    env.mark_ready()
    await env.stop(graceful=True)  # no process was ever started
    assert env.state is EnvState.STOPPED
    with pytest.raises(InvalidState):
        env._transition(EnvState.READY)


def test_describe_exit() -> None:
    assert describe_exit(None) == "Runtime exited without providing a reason"
    assert describe_exit(0) == "Runtime exited without providing a reason"
    assert describe_exit(127 << 8) == "Runtime exited with error: exit status 127"
    assert describe_exit(signal.SIGKILL) == "Runtime exited with error: signal: killed"
    assert describe_exit(signal.SIGSEGV) == "Runtime exited with error: signal: segmentation fault"
    assert os.WIFSIGNALED(signal.SIGABRT) and describe_exit(signal.SIGABRT).endswith("signal: aborted")


async def test_worker_config_reserved_variables_win(tmp_path: Path) -> None:
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    env = _env(tmp_path, layer_dirs=(l1, l2), memory_mb=512,
               environment=(("AWS_REGION", "nope"), ("_HANDLER", "x.y"), ("MINE", "1")))
    cfg = worker_config(env, runtime_dir="/rt", project_root="/proj", credentials=Credentials())
    v = cfg["env"]
    assert v["AWS_REGION"] == "eu-central-1" and v["_HANDLER"] == "app.handler" and v["MINE"] == "1"
    assert v["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512" and v["TZ"] == ":UTC"
    assert v["PATH"].startswith(f"{l2}/bin:{l1}/bin:")
    assert cfg["paths"] == layer_paths(env.spec) == [
        f"{l2}/python/lib/python3.11/site-packages", f"{l2}/python",
        f"{l1}/python/lib/python3.11/site-packages", f"{l1}/python"]
    assert cfg["tmp_quota_mb"] == 512 and cfg["tmp"] == str(tmp_path / "tmp")
