"""The demo distribution (deploy/demo/distribution.json) in front of the demo origin, through a real POP.

Lambda associations are stripped here (the functions are exercised by the e2e suite); this checks that the
distribution loads and that its behaviors, policies and custom error responses fit the origin's routes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import aiohttp
from aiohttp import web

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
from edge.cdn.server.pop import start_pop
from origin.app import make_app

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "distribution.json"


async def test_demo_distribution_against_demo_origin() -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    pop = PopSettings("IAD", "us-east-1", "127.0.0.1", 0)
    settings = Settings(pops=(pop,), origins={"origin.edgelab.local": OriginTarget(host="127.0.0.1", port=port)})
    dist = load_distribution(json.loads(DEMO.read_text()), settings)
    assert {a.function_name for b in dist.all_behaviors for a in b.lambda_associations} == {
        "edge-hello", "default-cache-control", "security-headers", "pretty-urls"}
    dist = dataclasses.replace(
        dist, default_behavior=dataclasses.replace(dist.default_behavior, lambda_associations=()),
        behaviors=tuple(dataclasses.replace(b, lambda_associations=()) for b in dist.behaviors))
    running = await start_pop(pop, dist, settings, port=0)
    base = f"http://127.0.0.1:{running.port}"
    try:
        async with aiohttp.ClientSession() as s:
            async def get(path: str, method: str = "GET", **kw: object) -> tuple[int, dict[str, str], bytes]:
                async with s.request(method, base + path, **kw) as r:  # type: ignore[arg-type]
                    return r.status, dict(r.headers), await r.read()

            st, h, b = await get("/")  # DefaultRootObject index.html
            assert st == 200 and b"edgelab demo origin" in b and h["X-Cache"] == "Miss from cloudfront"
            assert (await get("/"))[1]["X-Cache"] == "Hit from cloudfront"
            await get("/static/about.html")
            assert (await get("/static/about.html"))[1]["X-Cache"] == "Hit from cloudfront"
            t1 = (await get("/api/time"))[2]
            st, h, t2 = await get("/api/time")  # CachingDisabled
            assert h["X-Cache"] == "Miss from cloudfront" and t1 != t2
            st, h, b = await get("/no/such/page")  # 404 -> the custom error page, status kept
            assert st == 404 and b"Sorry, that page does not exist" in b
            st, _, b = await get("/echo", method="POST", data=b"hi")
            echoed = json.loads(b)
            assert st == 200 and echoed["body"] == "hi"
            assert ["X-Edgelab-Origin-Secret", "demo-secret"] in echoed["headers"]  # origin custom header
            st, h, _ = await get("/cache/no-store")
            assert (await get("/cache/no-store"))[1]["X-Cache"] == "Miss from cloudfront"
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/__hits") as r:
            hits = await r.json()
        assert hits["/index.html"] == 1 and hits["/api/time"] == 2 and hits["/static/errors/404.html"] == 1
    finally:
        await running.stop()
        await runner.cleanup()
