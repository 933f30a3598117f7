"""The realistic cold-start model (pure figures) and the executor's StartShaper (with a stand-in environment)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.invocation.execution.coldstart import BASE_INIT_MS, ColdStartModel, StartShaper, package_bytes
from edge.invocation.models import FunctionSpec, Shaping


def test_medians_follow_runtime_memory_and_package_size() -> None:
    m = ColdStartModel()
    assert m.median_ms("python3.12", 128, 0) == BASE_INIT_MS["python"] == 180.0
    assert m.median_ms("nodejs20.x", 128, 0) == 160.0 and m.median_ms("provided.al2023", 128, 0) == 60.0
    assert m.median_ms("python3.12", 1769, 0) == pytest.approx(180.0 * (128 / 1769) ** 0.25)
    assert m.median_ms("python3.12", 10240, 0) == m.median_ms("python3.12", 1769, 0)  # past one vCPU: no gain
    assert m.median_ms("python3.12", 512, 0) < m.median_ms("python3.12", 256, 0) < m.median_ms("python3.12", 128, 0)
    assert m.median_ms("python3.12", 128, 5_000_000) == pytest.approx(180.0 + 5 * 8.0)


def test_jitter_is_lognormal_around_one_and_reproducible() -> None:
    a, b = ColdStartModel(seed=1), ColdStartModel(seed=2)
    draws = [a.jitter("f", "1", n) for n in range(2000)]
    assert draws == [ColdStartModel(seed=1).jitter("f", "1", n) for n in range(2000)]
    assert draws != [b.jitter("f", "1", n) for n in range(2000)]
    logs = sorted(math.log(x) for x in draws)
    assert abs(logs[1000]) < 0.04 and 0.2 < (logs[1682] - logs[318]) / 2 < 0.3  # median ~1, sigma ~0.25
    assert a.delay_ms("python3.12", 128, 0, "f", "1", 3) == pytest.approx(180.0 * draws[3])


def test_package_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_bytes(b"1" * 100)
    (tmp_path / "y").write_bytes(b"2" * 23)
    assert package_bytes([tmp_path, tmp_path / "missing"]) == 123


def _spec(tmp_path: Path) -> FunctionSpec:
    (tmp_path / "index.py").write_bytes(b"x" * 1000)
    return FunctionSpec(function_name="f", version="1", revision="r", runtime="nodejs20.x", handler="index.h",
                        code_dir=tmp_path, memory_mb=256)


async def test_after_init_adds_the_model_and_the_fault_to_init(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    model = ColdStartModel(seed=5)
    shaper = StartShaper(model=model)
    env = SimpleNamespace(init_failure=None, init_duration_ms=10.0)
    shaped = await shaper.after_init(env, spec, Shaping(fault="cold-start", cold=True, extra_init_ms=20.0))  # type: ignore[arg-type]
    expected = model.delay_ms("nodejs20.x", 256, 1000, "f", "1", 0)
    assert shaped == Shaping(fault="cold-start", cold=True, extra_init_ms=20.0, model_ms=expected)
    assert env.init_duration_ms == pytest.approx(10.0 + expected + 20.0)
    env2 = SimpleNamespace(init_failure=None, init_duration_ms=10.0)
    second = await shaper.after_init(env2, spec, None)  # type: ignore[arg-type]
    assert second == Shaping(model_ms=model.delay_ms("nodejs20.x", 256, 1000, "f", "1", 1))  # the next draw


async def test_shaper_without_model_or_faults() -> None:
    shaper = StartShaper()
    assert not shaper.active
    env = SimpleNamespace(init_failure=None, init_duration_ms=10.0)
    spec = FunctionSpec(function_name="f", version="1", revision="r", runtime="python3.12", handler="i.h",
                        code_dir=Path("/nonexistent"))
    assert shaper.admit(spec) is None
    assert await shaper.after_init(env, spec, None) is None and env.init_duration_ms == 10.0  # type: ignore[arg-type]
    failed = SimpleNamespace(init_failure=object(), init_duration_ms=10.0)
    verdict = Shaping(fault="cold-start", cold=True, extra_init_ms=50.0)
    assert await shaper.after_init(failed, spec, verdict) is verdict and failed.init_duration_ms == 10.0  # type: ignore[arg-type]
