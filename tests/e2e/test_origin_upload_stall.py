"""Item 4 of the data-path issue, the last unbounded origin wait: a request body sent through aiohttp (bodies over the
fast client's 64 KiB) to an origin that accepts the connection and never reads. Each piece of the body must leave
within the origin's response timeout, so the viewer gets CloudFront's 504 instead of waiting without end."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.cdn.scripted_origin import behavior_config, distribution_config


async def test_a_body_the_origin_never_reads_ends_in_504_after_the_response_timeout() -> None:
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server.pop import start_pop

    stalled: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stalled.append(writer)  # keep the connection open, read nothing

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pop = PopSettings("TST", "us-east-1", "127.0.0.1", 0)
    settings = Settings(pops=(pop,), origins={"app.test": OriginTarget(host="127.0.0.1", port=port)})
    cfg = distribution_config(default=behavior_config(
        methods=("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")))
    origin = cfg["DistributionConfig"]["Origins"]["Items"][0]
    origin["DomainName"] = "app.test"
    origin["CustomOriginConfig"]["OriginReadTimeout"] = 1
    running = await start_pop(pop, load_distribution(cfg, settings), settings, port=0)
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(30), session.post(
                f"http://127.0.0.1:{running.port}/upload", data=b"x" * (24 << 20),
                headers={"Content-Type": "application/octet-stream"}) as resp:
            status, x_cache = resp.status, resp.headers.get("X-Cache")
    finally:
        await running.stop()
        for writer in stalled:
            writer.close()
        server.close()
        await server.wait_closed()
    assert (status, x_cache) == (504, "Error from cloudfront")
    assert time.monotonic() - started < 20  # bounded: the response timeout per stalled piece, not forever
