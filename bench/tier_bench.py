"""The cost of one regional-edge-cache hop on a miss: CPU per request, POP -> origin vs POP -> REC -> origin.

    .venv/bin/python -m bench.tier_bench [--requests 400] [--rounds 5]

Everything runs in this process's event loop on 127.0.0.1 (an aiohttp origin answering 1 KB, a tier node from
``edge.cdn.tiers.server.start_tier``, two POPs from ``start_pop``: one without and one with a ``TierUpstream``), so
``time.process_time`` covers the client, the POP, the tier and the origin: the difference between the two modes is
what the hop costs (the tier's lookup, store and serving, the second HTTP exchange). Every request is a distinct
key (a miss at the POP and at the tier). Reported: the median over ``--rounds`` of CPU microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import CacheSettings, OriginTarget, PopSettings, Settings
from edge.cdn.server.pop import PopState, start_pop
from edge.cdn.tiers import port_file_name
from edge.cdn.tiers.server import start_tier
from edge.cdn.tiers.upstream import TierUpstream

BODY = b"x" * 1024
DOMAIN = "origin.bench"


def _config() -> dict[str, object]:
    return {"DistributionConfig": {
        "CallerReference": "tier-bench", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": DOMAIN, "CustomOriginConfig": {
            "HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                                 "Compress": False}}}


async def _origin() -> tuple[web.AppRunner, int]:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=BODY, headers={"Cache-Control": "max-age=600", "Content-Type": "text/plain"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


async def _round(session: aiohttp.ClientSession, url: str, prefix: str, n: int) -> float:
    started = time.process_time()
    for i in range(n):
        async with session.get(f"{url}/{prefix}/{i}") as r:
            await r.read()
            assert r.status == 200
    return (time.process_time() - started) / n * 1e6


async def main(requests: int, rounds: int) -> None:
    origin_runner, port = await _origin()
    run_dir = Path(tempfile.mkdtemp(prefix="tier-bench-"))
    pop = PopSettings("BEN", "us-east-1", port=0)
    settings = Settings(pops=(pop,), origins={DOMAIN: OriginTarget(host="127.0.0.1", port=port)},
                        cache=CacheSettings(max_bytes=256 << 20))
    dist = load_distribution(_config(), settings)
    tier = await start_tier(PopState(PopSettings("REC-USE1", "us-east-1"), dist, settings,
                                     upstream=TierUpstream(run_dir, "us-east-1", stream_threshold=1 << 20)),
                            port_file=run_dir / port_file_name("us-east-1"))
    direct = await start_pop(pop, dist, settings, port=0)
    via_rec = await start_pop(pop, dist, settings, port=0,
                              upstream=TierUpstream(run_dir, "us-east-1", stream_threshold=1 << 20))
    results: dict[str, list[float]] = {"direct": [], "via REC": []}
    try:
        async with aiohttp.ClientSession() as session:
            for mode, running in (("direct", direct), ("via REC", via_rec)):  # warm up both paths
                await _round(session, f"http://127.0.0.1:{running.port}", f"warm-{mode.replace(' ', '')}", 50)
            for r in range(rounds):  # alternate the modes, so that machine noise hits both alike
                for mode, running in (("direct", direct), ("via REC", via_rec)):
                    url = f"http://127.0.0.1:{running.port}"
                    results[mode].append(await _round(session, url, f"r{r}-{mode.replace(' ', '')}", requests))
    finally:
        await via_rec.stop()
        await direct.stop()
        await tier.stop()
        await origin_runner.cleanup()
    for mode, values in results.items():
        print(f"{mode:8} {statistics.median(values):8.0f} us CPU per miss (median of {rounds} rounds of {requests}; "
              f"range {min(values):.0f} - {max(values):.0f})")
    hop = statistics.median(results["via REC"]) - statistics.median(results["direct"])
    print(f"one REC hop: +{hop:.0f} us CPU per miss (client, POP, tier and origin in one process)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="bench.tier_bench")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    asyncio.run(main(a.requests, a.rounds))
