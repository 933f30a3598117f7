"""A tier node and two POPs on 127.0.0.1 (no functions): stale-while-revalidate at the REC refreshes from the REC
itself toward the origin (never back into the REC), and a REC's origin failure reaches the POP as CloudFront's error
(cached by the POP per the error caching TTL, with the POP's own custom error page)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.server.pop import PopState, RunningPop, start_pop
from edge.cdn.tiers import port_file_name
from edge.cdn.tiers.server import RunningTier, start_tier
from edge.cdn.tiers.upstream import TierUpstream
from tests.cdn.scripted_origin import FakeClock, ScriptedOrigin, behavior_config, distribution_config, pop_settings_for


@dataclasses.dataclass
class Nodes:
    origin: ScriptedOrigin
    clock: FakeClock
    tier: RunningTier
    pops: list[RunningPop]

    def url(self, i: int, path: str) -> str:
        return f"http://127.0.0.1:{self.pops[i].port}{path}"


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    clock = FakeClock()
    origin = await ScriptedOrigin(clock=clock).start()
    pop, settings = pop_settings_for(origin)
    config = distribution_config(default=behavior_config())
    config["DistributionConfig"]["CustomErrorResponses"] = {"Quantity": 1, "Items": [
        {"ErrorCode": 502, "ResponsePagePath": "/sorry.html", "ResponseCode": "503", "ErrorCachingMinTTL": 30}]}
    dist = load_distribution(config, settings)
    run = tmp_path / "run"
    node = dataclasses.replace(pop, name="REC-USE1")
    tier = await start_tier(PopState(node, dist, settings, clock=clock,
                                     upstream=TierUpstream(run, "us-east-1", stream_threshold=1 << 20)),
                            port_file=run / port_file_name("us-east-1"))
    pops = [await start_pop(dataclasses.replace(pop, name=n), dist, settings, port=0, clock=clock,
                            upstream=TierUpstream(run, "us-east-1", stream_threshold=1 << 20)) for n in ("IAD", "BOS")]
    try:
        yield Nodes(origin, clock, tier, pops)
    finally:
        for p in pops:
            await p.stop()
        await tier.stop()
        await origin.stop()


async def test_stale_while_revalidate_at_the_rec_refreshes_toward_the_origin(nodes: Nodes) -> None:
    nodes.origin.script("/swr", body=b"v", headers={"Cache-Control": "max-age=10, stale-while-revalidate=600"})
    async with aiohttp.ClientSession() as s:
        async with s.get(nodes.url(0, "/swr")) as r:
            assert r.headers["X-Cache"] == "Miss from cloudfront"
        nodes.clock.advance(60)  # stale everywhere, within stale-while-revalidate
        async with s.get(nodes.url(1, "/swr")) as r:  # BOS's miss: the REC serves its stale copy, refreshes
            assert r.headers["X-Cache"] == "Hit from cloudfront" and await r.read() == b"v"
            assert 'cdn-hit-layer;desc="REC"' in r.headers["Server-Timing"]
        for _ in range(100):  # the REC's background refresh reaches the origin (bounded wait)
            if nodes.origin.hits["/swr"] == 2:
                break
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert nodes.origin.hits["/swr"] == 2  # once: the refresh did not loop back into the REC
    assert nodes.tier.state.stats_snapshot()["background_refreshes"] == 1


async def test_an_origin_failure_at_the_rec_is_the_pops_error_and_custom_page(nodes: Nodes) -> None:
    nodes.origin.script("/sorry.html", body=b"sorry", headers={"Cache-Control": "max-age=60"})
    async with aiohttp.ClientSession() as s:
        async with s.get(nodes.url(0, "/down")) as r:  # not scripted: the origin answers 404 (no-store)
            assert r.status == 404 and r.headers["X-Cache"] == "Error from cloudfront"
        async with s.get(nodes.url(0, "/sorry.html")) as r:  # the custom error page, now in IAD's cache
            assert r.status == 200
        await nodes.origin.stop()  # the origin is gone: the REC answers 502, IAD applies its custom error response
        async with s.get(nodes.url(0, "/gone")) as r:
            assert (r.status, await r.read()) == (503, b"sorry")
    tier = nodes.tier.state.stats_snapshot()
    assert tier["origin_errors"] == 1 and tier["by_status"].get("502") == 1


async def test_concurrent_misses_of_two_pops_collapse_at_the_rec(nodes: Nodes) -> None:
    """Each tier collapses its misses (request collapsing per tier): two POPs missing at once, one origin request."""
    nodes.origin.script("/slow", body=b"s", headers={"Cache-Control": "max-age=60"}, delay=0.3)
    async with aiohttp.ClientSession() as s:

        async def get(i: int) -> tuple[int, str, bool]:
            async with s.get(nodes.url(i, "/slow")) as r:
                return r.status, r.headers["X-Cache"], 'cdn-hit-layer;desc="REC"' in r.headers["Server-Timing"]

        answers = await asyncio.gather(get(0), get(1))
    assert sorted(answers) == [(200, "Hit from cloudfront", True), (200, "Miss from cloudfront", False)]
    assert nodes.origin.hits["/slow"] == 1
    assert nodes.tier.state.stats_snapshot()["collapsed"] == 1
