"""The demo origin app: its deliberate cache semantics, the hit counter and the echo endpoint."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from origin.app import make_app


async def _client(aiohttp_client) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(make_app())


async def test_index_and_static_with_validators(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    c = await _client(aiohttp_client)
    r = await c.get("/")
    assert r.status == 200 and "edgelab demo origin" in await r.text()
    r = await c.get("/static/about.html")
    etag, lm = r.headers["ETag"], r.headers["Last-Modified"]
    assert r.headers["Cache-Control"] == "max-age=3600" and r.content_type == "text/html"
    assert (await c.get("/static/about.html", headers={"If-None-Match": etag})).status == 304
    assert (await c.get("/static/about.html", headers={"If-Modified-Since": lm})).status == 304
    assert (await c.get("/static/nope.html")).status == 404
    assert (await c.get("/static/errors/404.html")).status == 200


async def test_cache_directive_endpoints(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    c = await _client(aiohttp_client)
    assert (await c.get("/cache/max-age/30")).headers["Cache-Control"] == "max-age=30"
    assert (await c.get("/cache/s-maxage/60")).headers["Cache-Control"] == "max-age=0, s-maxage=60"
    for d in ("private", "no-store", "no-cache"):
        assert (await c.get(f"/cache/{d}")).headers["Cache-Control"] == d
    assert "stale-while-revalidate=30" in (await c.get("/cache/swr")).headers["Cache-Control"]
    assert "Expires" in (await c.get("/cache/expires/10")).headers
    r = await c.get("/cache/etag?v=7")
    assert r.headers["ETag"] == '"v-7"'
    assert (await c.get("/cache/etag?v=7", headers={"If-None-Match": '"v-7"'})).status == 304
    r = await c.get("/cache/last-modified")
    assert (await c.get("/cache/last-modified", headers={"If-Modified-Since": r.headers["Last-Modified"]})).status == 304
    assert (await c.get("/cache/max-age/abc")).status == 400


async def test_vary_status_cookie_slow_large(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    c = await _client(aiohttp_client)
    r = await c.get("/vary/lang", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert await r.text() == "Hallo\n" and r.headers["Vary"] == "Accept-Language"
    r = await c.get("/status/418?cc=max-age=5")
    assert r.status == 418 and r.headers["Cache-Control"] == "max-age=5"
    assert (await c.get("/status/700")).status == 400
    assert (await c.post("/status/503")).status == 503
    assert "session=" in (await c.get("/cookie")).headers["Set-Cookie"]
    r = await c.get("/slow?delay=0.05")
    assert r.status == 200 and (await c.get("/slow?delay=-1")).status == 400
    r = await c.get("/large?size=300000")
    body = await r.read()
    assert len(body) == 300000 and r.headers["Content-Length"] == "300000" and body[:3] == b"\x00\x01\x02"


async def test_echo_and_hit_counter(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    c = await _client(aiohttp_client)
    r = await c.post("/echo/x?a=1&b=2", data=b"payload", headers={"X-Test": "yes"})
    data = await r.json()
    assert data["method"] == "POST" and data["path"] == "/echo/x" and data["query"] == "a=1&b=2"
    assert data["body"] == "payload" and ["X-Test", "yes"] in data["headers"]
    await c.get("/api/time")
    r = await c.get("/api/time")
    assert r.headers["X-Origin-Hit"] == "2" and (await r.json())["hits"] == 2
    hits = await (await c.get("/__hits")).json()
    assert hits == {"/echo/x": 1, "/api/time": 2}
    assert (await (await c.post("/__hits/reset")).json()) == {"reset": True}
    assert await (await c.get("/__hits")).json() == {}
    assert (await c.get("/__health")).status == 200
