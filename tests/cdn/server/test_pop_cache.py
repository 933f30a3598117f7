"""Integration tests through a real POP (127.0.0.1:0) against a ScriptedOrigin: caching behaviour.

Hit/miss/X-Cache/Age, TTLs (fake clock), revalidation (RefreshHit), stale-while-revalidate, stale-if-error,
error caching, HEAD from GET, ranges, collapsing, streaming, invalidation, independent POP caches.
"""

from __future__ import annotations

import asyncio
import re
from email.utils import formatdate

import aiohttp
from aiohttp import web

from tests.cdn.scripted_origin import FakeClock, PopHarness, ScriptedOrigin, behavior_config, distribution_config

CF_ID = re.compile(r"^[A-Za-z0-9_-]{54}==$")
VIA = re.compile(r"^1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)$")


async def test_miss_then_hit_with_cloudfront_headers() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"hello", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"})
        async with PopHarness(origin, distribution_config()) as pop:
            s1, h1, b1 = await pop.get("/a")
            s2, h2, b2 = await pop.get("/a")
    assert (s1, b1, s2, b2) == (200, b"hello", 200, b"hello")
    assert h1["X-Cache"] == "Miss from cloudfront" and "Age" not in h1
    assert h2["X-Cache"] == "Hit from cloudfront" and h2["Age"] == "0"
    assert origin.hits["/a"] == 1
    for h in (h1, h2):
        assert VIA.match(h["Via"]) and CF_ID.match(h["X-Amz-Cf-Id"])
        assert re.match(r"^TST\d{2}-C1$", h["X-Amz-Cf-Pop"])
    assert h1["Via"] == h2["Via"] and h1["X-Amz-Cf-Pop"] == h2["X-Amz-Cf-Pop"]
    assert h1["X-Amz-Cf-Id"] != h2["X-Amz-Cf-Id"]
    assert re.match(r"^cdn-cache;desc=MISS, edge;dur=[\d.]+, origin;dur=[\d.]+$", h1["Server-Timing"])
    assert re.match(r"^cdn-cache;desc=HIT, edge;dur=[\d.]+$", h2["Server-Timing"])


async def test_ttl_expiry_and_age_with_fake_clock() -> None:
    clock = FakeClock()
    async with ScriptedOrigin() as origin:
        origin.script("/t", body=b"x", headers={"Cache-Control": "max-age=10"})
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/t")
            clock.advance(7)
            _, h, _ = await pop.get("/t")
            assert h["X-Cache"] == "Hit from cloudfront" and h["Age"] == "7"
            clock.advance(4)  # age 11 > 10: expired, no validator -> full refetch
            _, h, _ = await pop.get("/t")
            assert h["X-Cache"] == "Miss from cloudfront"
    assert origin.hits["/t"] == 2


async def test_default_ttl_min_ttl_and_no_store() -> None:
    clock = FakeClock()
    dist = distribution_config(default=behavior_config(default_ttl=5),
                               behaviors=[behavior_config("/min/*", min_ttl=30)])
    async with ScriptedOrigin() as origin:
        origin.script("/plain", body=b"p")  # no Cache-Control: DefaultTTL applies
        origin.script("/nostore", body=b"n", headers={"Cache-Control": "no-store"})
        origin.script("/private", body=b"v", headers={"Cache-Control": "private, max-age=60"})
        origin.script("/min/ns", body=b"m", headers={"Cache-Control": "no-store"})  # MinTTL 30 overrides
        async with PopHarness(origin, dist, clock=clock) as pop:
            for path in ("/plain", "/nostore", "/private", "/min/ns"):
                await pop.get(path)
                await pop.get(path)
            clock.advance(6)
            await pop.get("/plain")
            await pop.get("/min/ns")
    assert origin.hits == {"/plain": 2, "/nostore": 2, "/private": 2, "/min/ns": 1}


async def test_revalidation_gives_refresh_hit() -> None:
    clock = FakeClock()

    async def etagged(request: web.Request, n: int) -> web.Response:
        # the origin's Date follows the fake clock, as a real origin's would follow real time
        headers = {"ETag": '"v1"', "Cache-Control": "max-age=10", "Date": formatdate(clock.now, usegmt=True)}
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=b"body-v1", headers=headers)

    async with ScriptedOrigin() as origin:
        origin.script("/e", handler=etagged)
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/e", headers={"If-None-Match": '"zzz"'})
            clock.advance(11)
            s, h, b = await pop.get("/e")
            assert (s, b, h["X-Cache"]) == (200, b"body-v1", "RefreshHit from cloudfront")
            s, h, b = await pop.get("/e")  # freshened for another 10 s
            assert (s, h["X-Cache"]) == (200, "Hit from cloudfront")
            # a viewer conditional request matching the entry gets a 304 from the edge
            s, h, b = await pop.get("/e", headers={"If-None-Match": '"v1"'})
            assert (s, b) == (304, b"")
    assert origin.hits["/e"] == 2
    first, second = origin.requests["/e"]
    assert first.header("If-None-Match") is None  # the viewer's validator is not used for the cache fill
    assert second.header("If-None-Match") == '"v1"'


async def test_last_modified_revalidation() -> None:
    clock = FakeClock()
    lm = "Mon, 02 Nov 2026 10:00:00 GMT"

    async def handler(request: web.Request, n: int) -> web.Response:
        if request.headers.get("If-Modified-Since") == lm:
            return web.Response(status=304, headers={"Cache-Control": "max-age=5"})
        return web.Response(body=b"lm", headers={"Last-Modified": lm, "Cache-Control": "max-age=5"})

    async with ScriptedOrigin() as origin:
        origin.script("/lm", handler=handler)
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/lm")
            clock.advance(6)
            _, h, b = await pop.get("/lm")
    assert (h["X-Cache"], b) == ("RefreshHit from cloudfront", b"lm")


async def test_stale_while_revalidate_refreshes_in_background() -> None:
    clock = FakeClock()
    async with ScriptedOrigin(clock) as origin:
        async def versioned(request: web.Request, n: int) -> web.Response:
            return web.Response(body=f"v{n}".encode(), headers={"Cache-Control": "max-age=2, stale-while-revalidate=60"})

        origin.script("/swr", handler=versioned)
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/swr")
            clock.advance(5)
            _, h, b = await pop.get("/swr")
            assert (b, h["X-Cache"], h["Age"]) == (b"v1", "Hit from cloudfront", "5")  # stale, served at once
            for _ in range(100):  # the POP-owned background task refetches
                if origin.hits["/swr"] == 2 and not len(pop.state.ctx.background):
                    break
                await asyncio.sleep(0.01)
            _, h, b = await pop.get("/swr")
            assert (b, h["X-Cache"]) == (b"v2", "Hit from cloudfront")
            assert pop.state.ctx.stats.background_refreshes == 1


async def test_background_refresh_still_running_is_cancelled_when_the_pop_stops() -> None:
    clock = FakeClock()
    release = asyncio.Event()

    async def stalls_the_second_time(request: web.Request, n: int) -> web.Response:
        if n > 1:
            await asyncio.wait_for(release.wait(), 10)
        return web.Response(body=b"s", headers={"Cache-Control": "max-age=2, stale-while-revalidate=60"})

    async with ScriptedOrigin(clock) as origin:
        origin.script("/slow", handler=stalls_the_second_time)
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/slow")
            clock.advance(5)
            _, h, _ = await pop.get("/slow")  # stale: served at once; a refresh starts and waits on the origin
            assert h["X-Cache"] == "Hit from cloudfront"
            for _ in range(200):
                if origin.hits["/slow"] == 2:
                    break
                await asyncio.sleep(0.01)
            owner = pop.state.ctx.background
            assert origin.hits["/slow"] == 2 and len(owner) == 1
        assert owner.closed and len(owner) == 0  # cancelled and awaited when the POP stopped
        release.set()


async def test_stale_if_error_when_origin_down_and_on_5xx() -> None:
    clock = FakeClock()
    origin = await ScriptedOrigin().start()
    origin.script("/s", body=b"good", headers={"Cache-Control": "max-age=1"})
    origin.script("/f", body=b"fine", headers={"Cache-Control": "max-age=1"})
    try:
        async with PopHarness(origin, distribution_config(), clock=clock) as pop:
            await pop.get("/s")
            await pop.get("/f")
            clock.advance(5)
            origin.script("/f", status=503, body=b"down")
            s, h, b = await pop.get("/f")  # origin 5xx + expired entry -> stale copy
            assert (s, b) == (200, b"fine")
            await origin.stop()  # connection refused from now on
            s, h, b = await pop.get("/s")
            assert (s, b, h["X-Cache"]) == (200, b"good", "Hit from cloudfront")
            assert pop.state.ctx.stats.stale_served == 2
    finally:
        await origin.stop()


async def test_origin_down_gives_502_page_and_error_is_cached() -> None:
    clock = FakeClock()
    origin = await ScriptedOrigin().start()
    await origin.stop()
    async with PopHarness(origin, distribution_config(), clock=clock, error_ttl=10) as pop:
        s, h, b = await pop.get("/x")
        assert s == 502
        assert h["X-Cache"] == "Error from cloudfront" and h["Server"] == "CloudFront"
        assert h["Content-Type"].startswith("text/html")
        text = b.decode("latin-1")
        assert "<H1>502 ERROR</H1>" in text and "The request could not be satisfied." in text
        assert f"Request ID: {h['X-Amz-Cf-Id']}" in text
        s2, h2, b2 = await pop.get("/x")  # cached for the error caching minimum TTL
        assert (s2, h2["X-Cache"]) == (502, "Error from cloudfront")
        assert f"Request ID: {h2['X-Amz-Cf-Id']}".encode() in b2  # re-stamped for this request
        s3, h3, b3 = await pop.get("/x", headers={"Range": "bytes=0-10", "If-Match": '"x"'})  # via serve_entry
        assert (s3, h3["X-Cache"]) == (502, "Error from cloudfront")
        assert f"Request ID: {h3['X-Amz-Cf-Id']}".encode() in b3
        assert pop.state.ctx.stats.origin_fetches == 1
        clock.advance(11)
        await pop.get("/x")
        assert pop.state.ctx.stats.origin_fetches == 2


async def test_origin_timeout_gives_504() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/slow", body=b"late", delay=1.3)
        async with PopHarness(origin, distribution_config(read_timeout=1)) as pop:
            s, h, b = await pop.get("/slow")
    assert s == 504 and h["X-Cache"] == "Error from cloudfront" and b"<H1>504 ERROR</H1>" in b


async def test_error_status_cached_for_error_ttl() -> None:
    clock = FakeClock()
    async with ScriptedOrigin() as origin:
        origin.script("/e500", status=500, body=b"boom")
        origin.script("/e403", status=403, body=b"no")  # 403 without max-age: not cached
        async with PopHarness(origin, distribution_config(), clock=clock, error_ttl=10) as pop:
            for _ in range(2):
                s, h, _ = await pop.get("/e500")
                assert (s, h["X-Cache"]) == (500, "Error from cloudfront")
                await pop.get("/e403")
            clock.advance(11)
            await pop.get("/e500")
    assert origin.hits == {"/e500": 2, "/e403": 2}


async def test_custom_error_response_page_and_code() -> None:
    errors = [{"ErrorCode": 404, "ResponsePagePath": "/errors/404.html", "ResponseCode": "200",
               "ErrorCachingMinTTL": 30},
              {"ErrorCode": 502, "ResponsePagePath": "/errors/missing.html", "ResponseCode": "502"}]
    async with ScriptedOrigin() as origin:
        origin.script("/errors/404.html", body=b"<p>custom not found</p>", headers={"Cache-Control": "max-age=60"})
        origin.script("/gone", status=404, body=b"plain 404")
        origin.script("/bad", status=502, body=b"bad gateway")
        async with PopHarness(origin, distribution_config(errors=errors)) as pop:
            s, h, b = await pop.get("/gone")
            assert (s, b, h["X-Cache"]) == (200, b"<p>custom not found</p>", "Error from cloudfront")
            s, h, b = await pop.get("/gone")  # the 404 and the page are both cached now
            assert (s, b) == (200, b"<p>custom not found</p>")
            s, h, b = await pop.get("/bad")  # the page itself is missing: its own status reaches the viewer
            assert s == 404
    assert origin.hits["/gone"] == 1 and origin.hits["/errors/404.html"] == 1


async def test_custom_error_page_is_fetched_without_the_viewers_preconditions() -> None:
    errors = [{"ErrorCode": 404, "ResponsePagePath": "/errors/404.html", "ResponseCode": "404"}]
    async with ScriptedOrigin() as origin:
        origin.script("/errors/404.html", body=b"custom", headers={"Cache-Control": "max-age=60", "ETag": '"p"'})
        async with PopHarness(origin, distribution_config(errors=errors)) as pop:
            s, _h, b = await pop.get("/nope", headers={"If-Match": '"other"', "If-Unmodified-Since":
                                                       "Mon, 02 Nov 2026 10:00:00 GMT", "Range": "bytes=0-1"})
    assert (s, b) == (404, b"custom")
    page = origin.requests["/errors/404.html"][0]
    assert [page.header(n) for n in ("If-Match", "If-Unmodified-Since", "Range")] == [None, None, None]


async def test_if_match_on_a_hit_serves_the_stored_response() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/m", body=b"mmm", headers={"Cache-Control": "max-age=60", "ETag": '"m"',
                                                  "Content-Type": "text/plain"})
        async with PopHarness(origin, distribution_config()) as pop:
            await pop.get("/m")
            plain = await pop.get("/m")
            conditional = await pop.get("/m", headers={"If-Match": '"m"', "If-Unmodified-Since":
                                                       "Mon, 02 Nov 2026 10:00:00 GMT"})
    drop = ("X-Amz-Cf-Id", "Server-Timing", "Date")
    assert conditional[0] == plain[0] == 200 and conditional[2] == plain[2] == b"mmm"
    assert [(k, v) for k, v in conditional[1].items() if k not in drop] == [
        (k, v) for k, v in plain[1].items() if k not in drop]
    assert origin.hits["/m"] == 1


async def test_head_served_from_get_entry_and_ranges() -> None:
    body = bytes(range(256)) * 4
    async with ScriptedOrigin() as origin:
        origin.script("/obj", body=body, headers={"Cache-Control": "max-age=60", "ETag": '"o"'})
        async with PopHarness(origin, distribution_config()) as pop:
            s, h, b = await pop.get("/obj", headers={"Range": "bytes=0-3"})  # miss: full object fetched
            assert (s, b, h["Content-Range"]) == (206, body[:4], "bytes 0-3/1024")
            s, h, b = await pop.request("HEAD", "/obj")
            assert (s, b, h["Content-Length"], h["X-Cache"]) == (200, b"", "1024", "Hit from cloudfront")
            s, h, b = await pop.get("/obj", headers={"Range": "bytes=-10"})
            assert (s, b, h["X-Cache"]) == (206, body[-10:], "Hit from cloudfront")
            s, h, b = await pop.get("/obj", headers={"Range": "bytes=5000-"})
            assert (s, h["Content-Range"]) == (416, "bytes */1024")
            s, h, b = await pop.get("/obj", headers={"Range": "bytes=9-3"})  # malformed: whole object
            assert (s, b) == (200, body)
    assert origin.hits["/obj"] == 1
    assert origin.requests["/obj"][0].header("Range") is None


async def test_head_miss_fills_cache_for_get() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/h", body=b"0123456789", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, distribution_config()) as pop:
            s, h, b = await pop.request("HEAD", "/h")
            assert (s, b, h["Content-Length"]) == (200, b"", "10")
            s, h, b = await pop.get("/h")
            assert (b, h["X-Cache"]) == (b"0123456789", "Hit from cloudfront")
    assert origin.requests["/h"][0].method == "GET"


async def test_concurrent_misses_collapse_into_one_origin_request() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/c", body=b"once", headers={"Cache-Control": "max-age=60"}, delay=0.3)
        async with PopHarness(origin, distribution_config()) as pop:
            results = await asyncio.gather(*(pop.get("/c") for _ in range(20)))
    assert origin.hits["/c"] == 1
    assert all(s == 200 and b == b"once" for s, _, b in results)
    xc = sorted(h["X-Cache"] for _, h, _ in results)
    assert xc.count("Miss from cloudfront") == 1 and xc.count("Hit from cloudfront") == 19


async def test_large_body_streamed_through_not_cached() -> None:
    big = bytes(range(256)) * 1024  # 256 KiB > 64 KiB threshold
    async with ScriptedOrigin() as origin:
        origin.script("/big", body=big, headers={"Cache-Control": "max-age=60"})
        origin.script("/chunked", body=big, headers={"Cache-Control": "max-age=60"}, chunked=True)
        async with PopHarness(origin, distribution_config(), max_object_bytes=64 * 1024) as pop:
            for path in ("/big", "/chunked", "/big"):
                s, h, b = await pop.get(path)
                assert (s, len(b), b == big, h["X-Cache"]) == (200, len(big), True, "Miss from cloudfront")
            s, h, b = await pop.request("HEAD", "/big")
            assert (s, b) == (200, b"")
            assert pop.state.ctx.stats.streamed >= 3
            assert len(pop.state.ctx.store) == 0
    assert origin.hits["/big"] == 3


async def test_invalidation_through_admin_socket(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sock = str(tmp_path / "pop.sock")
    async with ScriptedOrigin() as origin:
        for p in ("/img/a.png", "/img/b.png", "/index.html"):
            origin.script(p, body=p.encode(), headers={"Cache-Control": "max-age=600"})
        async with PopHarness(origin, distribution_config(), admin_socket=sock) as pop:
            for p in ("/img/a.png", "/img/b.png", "/index.html", "/img/a.png?v=2"):
                await pop.get(p)
            conn = aiohttp.UnixConnector(path=sock)
            async with aiohttp.ClientSession(connector=conn) as admin:
                async with admin.post("http://pop/invalidate", json={"paths": ["/img/*"]}) as r:
                    assert (r.status, await r.json()) == (200, {"invalidated": 3, "paths": ["/img/*"]})
                async with admin.post("http://pop/invalidate", json={"paths": ["img"]}) as r:
                    assert r.status == 400 and "must be a string starting with '/'" in (await r.json())["error"]
                _, h, _ = await pop.get("/index.html")
                assert h["X-Cache"] == "Hit from cloudfront"
                _, h, _ = await pop.get("/img/a.png")
                assert h["X-Cache"] == "Miss from cloudfront"
                async with admin.get("http://pop/stats") as r:
                    stats = await r.json()
                    assert stats["invalidated_objects"] == 3 and stats["cache"]["entries"] == 2
                async with admin.post("http://pop/reset", json={}) as r:
                    assert (await r.json()) == {"cleared": 2}
                async with admin.get("http://pop/health") as r:
                    assert (await r.json())["status"] == "ok"


async def test_two_pops_have_independent_caches() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/shared", body=b"s", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, distribution_config(), name="IAD") as a, \
                PopHarness(origin, distribution_config(), name="FRA") as b:
            _, h1, _ = await a.get("/shared")
            _, h2, _ = await a.get("/shared")
            _, h3, _ = await b.get("/shared")
            assert [h["X-Cache"] for h in (h1, h2, h3)] == ["Miss from cloudfront", "Hit from cloudfront",
                                                           "Miss from cloudfront"]
            assert h1["X-Amz-Cf-Pop"].startswith("IAD") and h3["X-Amz-Cf-Pop"].startswith("FRA")
            assert h1["Via"] != h3["Via"]
    assert origin.hits["/shared"] == 2


async def test_query_string_and_vary_in_cache_key() -> None:
    dist = distribution_config(default=behavior_config(query_string=True, headers=("Accept-Language",)))
    async with ScriptedOrigin() as origin:
        async def lang(request: web.Request, n: int) -> web.Response:
            return web.Response(body=request.headers.get("Accept-Language", "none").encode(),
                                headers={"Cache-Control": "max-age=60", "Vary": "Accept-Language"})

        origin.script("/q", handler=lang)
        async with PopHarness(origin, dist) as pop:
            assert (await pop.get("/q?a=1&b=2"))[2] == b"none"
            await pop.get("/q?b=2&a=1")  # parameter order matters
            assert (await pop.get("/q?a=1&b=2"))[1]["X-Cache"] == "Hit from cloudfront"
            assert (await pop.get("/q", headers={"Accept-Language": "de"}))[2] == b"de"
            assert (await pop.get("/q", headers={"Accept-Language": "fr"}))[2] == b"fr"
            _, h, b = await pop.get("/q", headers={"Accept-Language": "de"})
            assert (b, h["X-Cache"]) == (b"de", "Hit from cloudfront")
    assert origin.hits["/q"] == 4


async def test_options_cached_separately_when_in_cached_methods() -> None:
    three = ("GET", "HEAD", "OPTIONS")
    dist = distribution_config(default=behavior_config(methods=three, cached=three),
                               behaviors=[behavior_config("/nc/*", methods=three)])
    async with ScriptedOrigin() as origin:
        async def by_method(request: web.Request, n: int) -> web.Response:
            return web.Response(body=request.method.encode(), headers={"Cache-Control": "max-age=60"})

        origin.script("/o", handler=by_method)
        origin.script("/nc/o", handler=by_method)
        async with PopHarness(origin, dist) as pop:
            for _ in range(2):
                assert (await pop.request("OPTIONS", "/o"))[2] == b"OPTIONS"
                assert (await pop.get("/o"))[2] == b"GET"
                await pop.request("OPTIONS", "/nc/o")  # OPTIONS not in CachedMethods there: always forwarded
    assert [r.method for r in origin.requests["/o"]] == ["OPTIONS", "GET"]
    assert [r.method for r in origin.requests["/nc/o"]] == ["OPTIONS", "OPTIONS"]
