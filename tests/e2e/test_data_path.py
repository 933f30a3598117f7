"""Issue 14, the data path exactly as CloudFront, item by item through a real POP (``start_pop`` on 127.0.0.1:0) and
a real origin: what a user or an attacker sees with curl. The items that need a Lambda@Edge function are in
``test_data_path_functions.py``."""

from __future__ import annotations

import pytest

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config

HIT, MISS = "Hit from cloudfront", "Miss from cloudfront"


# --- item 1: 3xx caching -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "cached"), [(301, True), (302, True), (303, True), (307, False), (308, False)])
async def test_redirects_without_cache_control(status: int, cached: bool) -> None:
    """CloudFront caches 3xx by the behavior's TTLs; 307 and 308 only with a Cache-Control header."""
    async with ScriptedOrigin() as origin:
        origin.script("/r", status=status, headers={"Location": "/elsewhere"})
        origin.script("/cc", status=status, headers={"Location": "/elsewhere", "Cache-Control": "max-age=60"})
        async with PopHarness(origin, distribution_config(default=behavior_config(default_ttl=300))) as pop:
            first = await pop.get("/r")
            second = await pop.get("/r")
            with_cc = [await pop.get("/cc") for _ in range(2)]
    assert [first[0], second[0]] == [status, status] and second[1]["Location"] == "/elsewhere"
    assert first[1]["X-Cache"] == MISS
    assert second[1]["X-Cache"] == (HIT if cached else MISS)
    assert origin.hits["/r"] == (1 if cached else 2)
    assert [h["X-Cache"] for _, h, _ in with_cc] == [MISS, HIT] and origin.hits["/cc"] == 1
