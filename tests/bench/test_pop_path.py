"""bench.pop_path's in-process driver serves every case through a real POP (what callgrind then counts): a hit, a
hit behind the viewer-request association (its function's result applied: the Server-Timing entry says it ran), a
pass-through and distinct-key misses."""

from __future__ import annotations

import pytest

from bench.pop_path import CASES, drive


@pytest.mark.parametrize("case", CASES)
async def test_each_case_is_served_as_it_says(case: str) -> None:
    head = await drive(case, 3)
    x_cache = "Hit from cloudfront" if case in ("hit", "trigger-hit") else "Miss from cloudfront"
    assert f"\r\nX-Cache: {x_cache}\r\n" in head
    assert ('fn-viewer-request;desc="bench-add-header:1 warm"' in head) == (case == "trigger-hit")
