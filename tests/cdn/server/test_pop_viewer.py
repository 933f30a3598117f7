"""Integration tests through a real POP: viewer input handling and what the origin receives.

413/400 for bad input (and a small raw-socket fuzz: the POP keeps serving), 403 refusals (methods, GET with
body, disabled distribution), DefaultRootObject, origin header handling (X-Forwarded-For, Via, hop-by-hop,
custom headers, OriginPath, Host, User-Agent), pass-through of uncached methods with bodies.
"""

from __future__ import annotations

import asyncio
import random

import orjson

from tests.cdn.scripted_origin import ORIGIN_DOMAIN, PopHarness, ScriptedOrigin, behavior_config, distribution_config

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


async def _raw(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
                    if b"\r\n\r\n" in b"".join(chunks):
                        break
        except TimeoutError:
            pass
        return b"".join(chunks)
    finally:
        writer.close()


async def test_oversize_url_and_headers_get_413() -> None:
    async with ScriptedOrigin() as origin, PopHarness(origin, distribution_config()) as pop:
        s, h, b = await pop.get("/" + "a" * 9000)
        assert (s, h["X-Cache"]) == (413, "Error from cloudfront") and b"<H1>413 ERROR</H1>" in b
        s, h, _ = await pop.get("/ok", headers={f"X-Big-{i}": "v" * 1000 for i in range(25)})
        assert s == 413
        s, _, _ = await pop.get("/" + "a" * 8000)  # under the limit: reaches the origin (404 there)
        assert s == 404
        assert pop.state.ctx.stats.bad_requests == 2
    assert origin.hits.total() == 1


async def test_malformed_requests_and_fuzz_do_not_break_the_pop() -> None:
    rng = random.Random(1234)
    async with ScriptedOrigin() as origin:
        origin.script("/alive", body=b"yes", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, distribution_config()) as pop:
            reply = await _raw(pop.port, b"GARBAGE\r\n\r\n")
            assert reply[:12] in (b"HTTP/1.1 400", b"HTTP/1.0 400"), reply[:80]
            reply = await _raw(pop.port, b"GET http://evil.example/x HTTP/1.1\r\nHost: a\r\n\r\n")
            assert reply[:12] in (b"HTTP/1.1 400", b"HTTP/1.0 400"), reply[:80]
            reply = await _raw(pop.port, b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
            assert reply[:12] in (b"HTTP/1.1 400", b"HTTP/1.0 400"), reply[:80]
            for _ in range(30):
                junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
                await _raw(pop.port, rng.choice([b"", b"GET /", b"GET / HTTP/1.1\r\n"]) + junk + b"\r\n\r\n", 0.3)
            s, _, b = await pop.get("/alive")
    assert (s, b) == (200, b"yes")


async def test_refusals_methods_get_body_disabled_distribution() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"a")
        async with PopHarness(origin, distribution_config()) as pop:
            s, h, b = await pop.request("POST", "/a", data=b"x=1")
            assert (s, h["X-Cache"]) == (403, "Error from cloudfront")
            assert b"not configured to allow the HTTP request method" in b
            s, _, _ = await pop.request("DELETE", "/a")
            assert s == 403
            s, h, b = await pop.request("GET", "/a", data=b"body-in-a-get")
            assert s == 403 and h["Server"] == "CloudFront"
        async with PopHarness(origin, distribution_config(enabled=False)) as pop:
            s, h, b = await pop.get("/a")
            assert (s, h["X-Cache"]) == (403, "Error from cloudfront")
    assert origin.hits.total() == 0


async def test_default_root_object_only_for_slash() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/index.html", body=b"home", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, distribution_config(root="index.html")) as pop:
            s, _, b = await pop.get("/")
            assert (s, b) == (200, b"home")
            s, _, _ = await pop.get("/dir/")
            assert s == 404
    assert origin.hits["/index.html"] == 1 and origin.hits["/dir/"] == 1


async def test_origin_sees_cloudfront_shaped_request() -> None:
    dist = distribution_config(origin_path="/prefix", custom_headers={"X-Origin-Secret": "s3cr3t"})
    async with ScriptedOrigin() as origin:
        origin.script("/prefix/p", body=b"p", headers={"Cache-Control": "no-store"})
        async with PopHarness(origin, dist) as pop:
            await pop.get("/p?q=1", headers={
                "X-Forwarded-For": "203.0.113.7", "Via": "1.1 corporate-proxy", "Connection": "X-Hop, keep-alive",
                "X-Hop": "secret", "Keep-Alive": "timeout=5", "TE": "trailers", "Upgrade": "h2c",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==", "X-Custom": "kept", "Cookie": "a=1",
                "Accept-Language": "de", "User-Agent": "curl/8", "X-Edge-Debug": "1",
                "If-None-Match": '"viewer"'})
            via = pop.state.identity.via
    seen = origin.requests["/prefix/p"][0]
    assert seen.query == "q=1"
    assert seen.header("Host") == ORIGIN_DOMAIN
    assert seen.header("User-Agent") == "Amazon CloudFront"
    assert seen.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1"
    assert seen.header("Via") == f"1.1 corporate-proxy, {via}"
    assert seen.header("X-Origin-Secret") == "s3cr3t"
    assert seen.header("X-Custom") == "kept"
    assert seen.header("X-Amz-Cf-Id") is not None
    for gone in ("X-Hop", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "Cookie", "Accept-Language",
                 "X-Edge-Debug", "If-None-Match"):
        assert seen.header(gone) is None, gone
    assert (seen.header("Connection") or "keep-alive").lower() == "keep-alive"


async def test_pass_through_post_with_body_and_forwarded_headers() -> None:
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED, methods=ALL_METHODS,
                                                       origin_request_policy=ALL_VIEWER_EXCEPT_HOST))
    async with ScriptedOrigin() as origin:
        async def echo(request, n):  # type: ignore[no-untyped-def]
            from aiohttp import web

            return web.json_response({"body": (await request.read()).decode(), "n": n})

        origin.script("/api", handler=echo)
        async with PopHarness(origin, dist) as pop:
            s, h, b = await pop.request("POST", "/api", data=b'{"x": 1}',
                                        headers={"Cookie": "sid=1", "Accept-Language": "fr"})
            assert (s, h["X-Cache"]) == (200, "Miss from cloudfront")
            assert orjson.loads(b) == {"body": '{"x": 1}', "n": 1}
            s, h, b = await pop.get("/api")  # CachingDisabled: every request reaches the origin
            assert orjson.loads(b)["n"] == 2 and h["X-Cache"] == "Miss from cloudfront"
    first = origin.requests["/api"][0]
    assert first.method == "POST" and first.header("Cookie") == "sid=1" and first.header("Accept-Language") == "fr"
    assert first.header("Host") == ORIGIN_DOMAIN  # AllViewerExceptHostHeader


async def test_origin_latency_is_simulated() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/l", body=b"l", headers={"Cache-Control": "no-store"})
        async with PopHarness(origin, distribution_config(), latency_ms=150) as pop:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await pop.get("/l")
            elapsed = loop.time() - t0
    assert elapsed >= 0.15


async def test_pass_through_head_and_304_have_no_body() -> None:
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED))
    async with ScriptedOrigin() as origin:
        origin.script("/h", body=b"0123456789", headers={"ETag": '"e"'})
        origin.script("/nm", status=304, headers={"ETag": '"e"'})
        async with PopHarness(origin, dist) as pop:
            s, h, b = await pop.request("HEAD", "/h")
            assert (s, b, h["Content-Length"], h["X-Cache"]) == (200, b"", "10", "Miss from cloudfront")
            s, h, b = await pop.get("/nm", headers={"If-None-Match": '"e"'})
            assert (s, b) == (304, b"")
    assert origin.requests["/h"][0].method == "HEAD"
    assert origin.requests["/nm"][0].header("If-None-Match") == '"e"'  # pass-through keeps viewer validators


async def test_set_cookie_only_reaches_the_viewer_when_cookies_are_forwarded() -> None:
    dist = distribution_config(behaviors=[behavior_config("/fwd/*", cookies="all")])
    async with ScriptedOrigin() as origin:
        for p in ("/plain", "/fwd/x"):
            origin.script(p, body=b"c", headers={"Set-Cookie": "sid=42; Path=/", "Cache-Control": "private"})
        async with PopHarness(origin, dist) as pop:
            _, h1, _ = await pop.get("/plain")
            _, h2, _ = await pop.get("/fwd/x", headers={"Cookie": "a=1"})
    assert "Set-Cookie" not in h1 and h2["Set-Cookie"] == "sid=42; Path=/"
    assert origin.requests["/fwd/x"][0].header("Cookie") == "a=1"


async def test_run_pop_serves_until_stopped_and_cleans_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import aiohttp

    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.server.pop import run_pop
    from tests.cdn.scripted_origin import pop_settings_for

    sock = tmp_path / "admin.sock"
    async with ScriptedOrigin() as origin:
        pop, settings = pop_settings_for(origin)
        stop = asyncio.Event()
        task = asyncio.create_task(run_pop(pop, load_distribution(distribution_config(), settings), settings,
                                           admin_socket=sock, stop=stop))
        for _ in range(200):
            if sock.exists():
                break
            await asyncio.sleep(0.01)
        async with (aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as admin,
                    admin.get("http://pop/health") as r):
            assert (await r.json())["pop_code"].startswith("TST")
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not sock.exists()
