"""A weighted alias (canary) associated with a trigger splits traffic between two versions in one POP;
counted from the Server-Timing ``desc`` of each response. Shifting the weight moves traffic live."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.e2e.conftest import VR, EdgeStack, assoc, fn_timings
from tests.e2e.test_triggers_live import GENERATE

N = 200


async def _versions(edge: EdgeStack, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        s, h, b = await edge.get("/x")
        t = fn_timings(h)
        assert s == 200 and len(t) == 1
        assert b == {"1": b"stable", "2": b"canary"}[t[0]["version"]]
        seen[t[0]["version"]] += 1
    return seen


async def test_weighted_alias_distributes_between_versions(edge: EdgeStack) -> None:
    await edge.function("ab", GENERATE.format(label="stable"))
    assert await edge.update("ab", GENERATE.format(label="canary")) == "2"
    control = await edge.control()
    await control.create_alias("ab", "live", "1", weights={"2": 0.3})
    await edge.start(associations=[assoc(VR, "ab", "live")], allow_unpublished=True)
    seen = await _versions(edge, N)
    # Binomial(200, 0.3): mean 60, sd 6.5; [30, 95] is beyond 4.5 sd either way
    assert 30 <= seen["2"] <= 95 and seen["1"] + seen["2"] == N, seen
    # promote the canary fully: within a second every request runs version 2
    await control.update_alias("ab", "live", function_version="2", weights={})
    await asyncio.sleep(1.0)
    assert await _versions(edge, 20) == Counter({"2": 20})
