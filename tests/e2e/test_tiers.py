"""Tiers with real Lambda@Edge workers (in this process's loop: a regional edge cache node and two POPs on
127.0.0.1, the production invocation core): the origin-facing functions run once per origin fetch, at the tier that
calls the origin, never at a POP whose miss the tier answers; what a POP does when its REC is gone; the tier port
refuses viewers; the viewer's conditionals and ranges are answered by the POP from the object the tier sent."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.server.pop import PopState, RunningPop, start_pop
from edge.cdn.tiers import port_file_name
from edge.cdn.tiers.server import RunningTier, start_tier
from edge.cdn.tiers.upstream import TierUpstream
from tests.cdn.scripted_origin import pop_settings_for
from tests.e2e.conftest import (
    DIST_DOMAIN,
    DIST_ID,
    OR,
    ORS,
    EdgeStack,
    assoc,
    behavior_config,
    distribution_config,
    fn_events,
    with_associations,
)

TAG = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    if "response" in cf:
        cf["response"]["headers"]["x-origin-response"] = [{"key": "X-Origin-Response", "value": "ran"}]
        return cf["response"]
    request = cf["request"]
    request["headers"]["x-origin-request"] = [{"key": "X-Origin-Request", "value": "ran"}]
    return request
"""


@dataclass
class Tiered:
    """A REC node (with the trigger runner) and two POPs of its region (with the same runner: their viewer side)."""

    edge: EdgeStack
    run_dir: Path
    tier: RunningTier | None = None
    pops: list[RunningPop] = field(default_factory=list)

    def url(self, i: int, path: str) -> str:
        return f"http://127.0.0.1:{self.pops[i].port}{path}"


@pytest.fixture
async def tiered(edge: EdgeStack, tmp_path: Path) -> AsyncIterator[Tiered]:
    await edge.function("tag", TAG)
    edge.origin.script("/obj", body=b"0123456789", headers={"Cache-Control": "max-age=300", "ETag": '"v1"'})
    base = with_associations(behavior_config(), [assoc(OR, "tag"), assoc(ORS, "tag")])
    config = {"Distribution": {"Id": DIST_ID, "DomainName": DIST_DOMAIN,
                               "DistributionConfig": distribution_config(default=base)["DistributionConfig"]}}
    await edge.start(config=config)  # the EdgeStack's POP: its trigger runner is the one the tier uses
    assert edge.runner is not None and edge.pop is not None
    pop, settings = pop_settings_for(edge.origin)
    dist = load_distribution(config, settings)
    t = Tiered(edge, tmp_path / "run")
    upstream = TierUpstream(t.run_dir, "us-east-1", stream_threshold=1 << 20)
    node = dataclasses.replace(pop, name="REC-USE1")
    t.tier = await start_tier(PopState(node, dist, settings, triggers=edge.runner, upstream=upstream),
                              port_file=t.run_dir / port_file_name("us-east-1"))
    try:
        for name in ("IAD", "BOS"):
            t.pops.append(await start_pop(dataclasses.replace(pop, name=name), dist, settings, triggers=edge.runner,
                                          port=0, upstream=TierUpstream(t.run_dir, "us-east-1",
                                                                         stream_threshold=1 << 20)))
        yield t
    finally:
        for p in t.pops:
            await p.stop()
        if t.tier is not None:
            await t.tier.stop()


async def test_origin_facing_functions_run_once_at_the_tier_that_calls_the_origin(tiered: Tiered) -> None:
    """IAD's miss: the REC calls the origin and runs both functions; BOS's miss: the REC's hit, no function; the
    viewers' validators and ranges answered by the POPs; then the REC goes away and BOS calls the origin itself."""
    origin = tiered.edge.origin
    async with aiohttp.ClientSession() as s:
        async with s.get(tiered.url(0, "/obj")) as r:
            assert r.status == 200 and await r.read() == b"0123456789"
            assert r.headers["X-Cache"] == "Miss from cloudfront"
            assert r.headers["X-Origin-Response"] == "ran"  # origin-response ran at the tier, stored there and here
            assert fn_events(r.headers) == ["origin-request", "origin-response"]
            assert 'cdn-upstream-layer;desc="REC"' in r.headers["Server-Timing"]
        async with s.get(tiered.url(1, "/obj")) as r:  # BOS: the REC's hit, no function runs anywhere
            assert r.headers["X-Cache"] == "Hit from cloudfront" and fn_events(r.headers) == []
            assert r.headers["X-Origin-Response"] == "ran" and 'cdn-hit-layer;desc="REC"' in r.headers["Server-Timing"]
        async with s.get(tiered.url(1, "/obj"), headers={"If-None-Match": '"v1"'}) as r:
            assert r.status == 304  # answered by BOS from its copy
        async with s.get(tiered.url(0, "/obj"), headers={"Range": "bytes=2-4"}) as r:
            assert r.status == 206 and await r.read() == b"234"
    assert origin.hits["/obj"] == 1
    assert origin.requests["/obj"][0].header("X-Origin-Request") == "ran"  # origin-request ran once, at the tier
    assert tiered.tier is not None
    stats = tiered.tier.state.stats_snapshot()
    assert (stats["requests"], stats["hits"], stats["misses"], stats["origin_fetches"]) == (2, 1, 1, 1)
    bos = tiered.pops[1].state.stats_snapshot()
    assert (bos["tier_fetches"], bos["tier_hits"]) == (1, 1)

    # the tier port answers POPs only
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{tiered.tier.port}/obj") as r:
        assert r.status == 400 and "regional edge cache" in await r.text()

    # a POP whose regional edge cache is gone (its port file goes with it) calls the origin itself
    await tiered.tier.stop()
    tiered.tier = None
    async with aiohttp.ClientSession() as s, s.get(tiered.url(1, "/other")) as r:
        assert r.status == 404 and r.headers["X-Cache"] == "Error from cloudfront"  # not scripted at the origin
        assert fn_events(r.headers) == ["origin-request", "origin-response"]
        assert "cdn-upstream-layer" not in r.headers["Server-Timing"]
    assert origin.hits["/other"] == 1 and origin.hits["/obj"] == 1
    assert tiered.pops[1].state.stats_snapshot()["upstream"] == {"region": "us-east-1", "hops": 2, "unavailable": 1}  # refused: not counted as answered
