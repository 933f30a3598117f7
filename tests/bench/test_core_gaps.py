"""``python -m bench core --gaps``: the warm round trip back to back, after a busy gap and after an idle one (a real
executor and worker; no timing is asserted, only that each mode ran its round trips and reports a median)."""

from __future__ import annotations

import time

from bench import core_bench


async def test_gaps_measure_each_mode_with_its_gap(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sleeps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(core_bench.time, "sleep", sleep)
    p50 = await core_bench.gaps_loop(40, 150, block=20)
    assert list(p50) == ["back to back", "busy gap", "idle gap"]
    assert all(0 < value < 1_000_000 for value in p50.values())
    assert sleeps == [150e-6] * 40  # the idle gap only, two blocks of 20
