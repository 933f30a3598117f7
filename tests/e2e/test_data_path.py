"""Issue 14, the data path exactly as CloudFront, item by item through a real POP (``start_pop`` on 127.0.0.1:0) and
a real origin: what a user or an attacker sees with curl. The items that need a Lambda@Edge function are in
``test_data_path_functions.py``."""

from __future__ import annotations

from dataclasses import replace

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


# --- items 2 and 3: what reaches the origin and the cache key ----------------------------------------------

USE_ORIGIN_CC_QS = "4cc15a8a-d715-48a4-82b8-cc0b614638fe"  # Managed-UseOriginCacheControlHeaders-QueryStrings
AMPLIFY = "2e54312d-136d-493c-8eb9-b001f22f67d2"  # Managed-Amplify: CloudFront-Viewer-Country in the key
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # Managed-AllViewer origin request policy


async def _echo(request, n):  # type: ignore[no-untyped-def]
    """The demo origin's /echo: the request headers it received, cacheable for a minute."""
    from aiohttp import web

    lines = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
    return web.Response(text=lines, headers={"Cache-Control": "max-age=60"})


async def test_unselected_viewer_headers_never_reach_the_origin_nor_poison_the_cache() -> None:
    """`curl -H 'X-Forwarded-Host: evil' .../echo/p?cc=max-age=60`, then the same URL without it: with a cache
    policy, CloudFront forwards the headers the policies select and nothing more, so "evil" reaches neither the
    origin nor, through it, the cached answer."""
    evil = {"X-Forwarded-Host": "evil", "X-Original-Url": "/admin", "Accept-Language": "de",
            "Authorization": "Bearer x", "Expect": "100-continue"}
    async with ScriptedOrigin() as origin:
        origin.script("/echo/p", handler=_echo)
        origin.script("/legacy/p", handler=_echo)
        dist = distribution_config(default=behavior_config(cache_policy=USE_ORIGIN_CC_QS),
                                   behaviors=[behavior_config("/legacy/*")])
        async with PopHarness(origin, dist) as pop:
            origin_hdr = {"Origin": "https://a.example"}  # in this policy's cache key: the same in both requests
            s1, _, b1 = await pop.get("/echo/p?cc=max-age=60", headers={**evil, **origin_hdr})
            s2, h2, b2 = await pop.get("/echo/p?cc=max-age=60", headers=origin_hdr)
            _, _, legacy = await pop.get("/legacy/p", headers=evil)
            port = pop.port
    assert (s1, s2, h2["X-Cache"]) == (200, 200, HIT) and b1 == b2
    seen = origin.requests["/echo/p"][0]
    for name in evil:
        assert seen.header(name) is None, name
    assert b"evil" not in b2
    assert seen.header("Origin") == "https://a.example"  # the policy keys on Origin and Host: forwarded
    assert seen.header("Host") == f"127.0.0.1:{port}" and seen.header("User-Agent") == "Amazon CloudFront"
    # legacy cache settings forward the other headers ("Other-defined headers: CloudFront forwards the headers")
    # but still remove the listed ones
    assert b"X-Forwarded-Host: evil" in legacy and b"X-Original-Url" in legacy
    assert b"Accept-Language" not in legacy and b"Authorization" not in legacy and b"Expect" not in legacy


async def test_viewer_sent_cloudfront_headers_are_never_trusted() -> None:
    """A spoofed CloudFront-Viewer-Country does not select a cache entry (Amplify keys on it) and reaches no origin,
    and a spoofed CloudFront-Is-Mobile-Viewer is replaced by CloudFront's value; with AllViewer, the viewer's
    CloudFront-* headers are not forwarded either."""
    async with ScriptedOrigin() as origin:
        origin.script("/geo", handler=_echo)
        origin.script("/device", handler=_echo)
        origin.script("/all/p", handler=_echo)
        dist = distribution_config(
            default=behavior_config(cache_policy=AMPLIFY),
            behaviors=[behavior_config("/device", headers=("CloudFront-Is-Mobile-Viewer",)),
                       behavior_config("/all/*", cache_policy=USE_ORIGIN_CC_QS, origin_request_policy=ALL_VIEWER)])
        async with PopHarness(origin, dist) as pop:
            _, h1, _ = await pop.get("/geo", headers={"CloudFront-Viewer-Country": "DE"})
            _, h2, b2 = await pop.get("/geo", headers={"CloudFront-Viewer-Country": "FR"})
            _, _, device = await pop.get("/device", headers={"CloudFront-Is-Mobile-Viewer": "true",
                                                             "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
            _, _, everything = await pop.get("/all/p", headers={"CloudFront-Viewer-Country": "DE",
                                                                "CloudFront-Is-Desktop-Viewer": "false",
                                                                "X-App": "1"})
    assert (h1["X-Cache"], h2["X-Cache"]) == (MISS, HIT) and origin.hits["/geo"] == 1
    assert b"CloudFront-Viewer-Country" not in b2
    assert b"CloudFront-Is-Mobile-Viewer: false" in device and b"true" not in device
    assert b"X-App: 1" in everything and b"CloudFront-" not in everything



# --- item 4: Expect: 100-continue and bounded origin waits ---------------------------------------------------

async def test_expect_100_continue_post_reaches_an_http_server_origin_without_waiting() -> None:
    """A 2 MB POST with `Expect: 100-continue` (what curl sends above 1 MB) through a POP to Python's own
    `http.server` (HTTP/1.0: it never answers 100 Continue) reached through an `[origins]` URL mapping: the POP
    answers the expectation itself and forwards the body without `Expect`, so the origin answers at once."""
    import asyncio
    import http.server
    import threading

    import aiohttp

    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server.pop import start_pop

    seen: list[tuple[str | None, int]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.headers.get("Expect"), len(body)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pop = PopSettings("TST", "us-east-1", "127.0.0.1", 0)
        settings = Settings(pops=(pop,), origins={
            "app.test": OriginTarget(url=f"http://127.0.0.1:{server.server_address[1]}")})
        cfg = distribution_config(default=behavior_config(
            methods=("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")))
        cfg["DistributionConfig"]["Origins"]["Items"][0]["DomainName"] = "app.test"
        running = await start_pop(pop, load_distribution(cfg, settings), settings, port=0)
        try:
            async with aiohttp.ClientSession() as session, asyncio.timeout(20), session.post(
                    f"http://127.0.0.1:{running.port}/upload", data=b"x" * (2 << 20), expect100=True) as resp:
                status, body = resp.status, await resp.read()
        finally:
            await running.stop()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert (status, body) == (200, b"ok")
    assert seen == [(None, 2 << 20)]


# --- item 6: Compress -----------------------------------------------------------------------------------------

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # Managed-CachingOptimized: gzip and brotli on


def _compress_behavior(pattern: str | None = None, *, compress: bool = True, **kw: object) -> dict:
    return {**behavior_config(pattern, cache_policy=CACHING_OPTIMIZED, **kw), "Compress": compress}  # type: ignore[arg-type]


async def test_compress_as_cloudfront_does() -> None:
    """`Compress: true` with CachingOptimized: brotli for `br, gzip`, gzip for `gzip, deflate`, each a cache entry of
    its own; identity for a viewer without Accept-Encoding; never for an image, a body under 1,000 bytes, a response
    with Content-Encoding or without Content-Length; a strong ETag becomes weak."""
    import gzip

    import brotli

    text = b"<html>" + b"edgelab compresses like CloudFront " * 100 + b"</html>"
    async with ScriptedOrigin() as origin:
        html = {"Content-Type": "text/html; charset=utf-8", "ETag": '"v1"', "Cache-Control": "max-age=60"}
        origin.script("/page", body=text, headers=html)
        origin.script("/img", body=text, headers={**html, "Content-Type": "image/png"})
        origin.script("/small", body=text[:999], headers=html)
        origin.script("/encoded", body=text, headers={**html, "Content-Encoding": "identity"})
        origin.script("/chunked", body=text, headers=html, chunked=True)
        origin.script("/off/page", body=text, headers=html)
        dist = distribution_config(default=_compress_behavior(),
                                   behaviors=[_compress_behavior("/off/*", compress=False)])
        async with PopHarness(origin, dist) as pop:
            br = [await pop.get("/page", headers={"Accept-Encoding": "gzip, deflate, br"}) for _ in range(2)]
            gz = await pop.get("/page", headers={"Accept-Encoding": "gzip, deflate"})
            plain = await pop.get("/page", headers={"Accept-Encoding": "identity"})
            others = {p: await pop.get(p, headers={"Accept-Encoding": "gzip"})
                      for p in ("/img", "/small", "/encoded", "/chunked", "/off/page")}
    (s1, h1, b1), (_, h2, b2) = br
    assert s1 == 200 and h1["Content-Encoding"] == "br" and brotli.decompress(b1) == text
    assert h1["ETag"] == 'W/"v1"' and int(h1["Content-Length"]) == len(b1) < len(text)
    assert (h1["X-Cache"], h2["X-Cache"], b2) == (MISS, HIT, b1)
    assert gz[1]["Content-Encoding"] == "gzip" and gzip.decompress(gz[2]) == text and gz[1]["X-Cache"] == MISS
    assert "Content-Encoding" not in plain[1] and plain[2] == text and plain[1]["ETag"] == '"v1"'
    assert origin.hits["/page"] == 3  # one origin fetch per normalised Accept-Encoding
    assert origin.requests["/page"][0].header("Accept-Encoding") == "br,gzip"
    for path, (status, headers, body) in others.items():
        assert status == 200 and headers.get("Content-Encoding") in (None, "identity"), path
        assert body == (text[:999] if path == "/small" else text), path


# --- item 6: the HTTPS listener and ViewerProtocolPolicy ------------------------------------------------------

async def test_https_listener_and_viewer_protocol_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each POP has an HTTPS listener whose certificate the local CA (`<state>/tls/edgelab-ca.pem`) signs.
    `redirect-to-https`: GET/HEAD over HTTP -> 301 to the https URL, POST -> 307, POST over HTTP/1.0 -> 403;
    `https-only`: 403 over HTTP; both served over HTTPS, where CloudFront-Forwarded-Proto says https."""
    import asyncio
    import ssl

    import aiohttp

    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.server.pop import start_pop
    from tests.cdn.scripted_origin import pop_settings_for

    methods = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
    async with ScriptedOrigin() as origin:
        origin.script("/r/p", handler=_echo)
        origin.script("/o/p", body=b"only over https")
        dist_cfg = distribution_config(behaviors=[
            {**behavior_config("/r/*", methods=methods, headers=("CloudFront-Forwarded-Proto",)),
             "ViewerProtocolPolicy": "redirect-to-https"},
            {**behavior_config("/o/*"), "ViewerProtocolPolicy": "https-only"}])
        pop, settings = pop_settings_for(origin)
        pop = replace(pop, https_port=0)
        running = await start_pop(pop, load_distribution(dist_cfg, settings), settings, port=0,
                                  tls_dir=tmp_path / "tls")
        try:
            assert running.https_port is not None
            ca = ssl.create_default_context(cafile=str(tmp_path / "tls" / "edgelab-ca.pem"))
            http, https = f"http://127.0.0.1:{running.port}", f"https://localhost:{running.https_port}"
            async with aiohttp.ClientSession() as session:
                async def call(method: str, url: str, **kw: object) -> tuple[int, object, bytes]:
                    async with session.request(method, url, allow_redirects=False, ssl=ca, **kw) as r:  # type: ignore[arg-type]
                        return r.status, r.headers, await r.read()

                get = await call("GET", f"{http}/r/p?x=1", headers={"Host": f"localhost:{running.port}"})
                post = await call("POST", f"{http}/r/p", data=b"body")
                only = await call("GET", f"{http}/o/p")
                secure = await call("GET", f"{https}/r/p?x=1")
                secure_only = await call("GET", f"{https}/o/p")
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            writer.write(b"POST /r/p HTTP/1.0\r\nContent-Length: 1\r\n\r\nx")
            async with asyncio.timeout(10):
                old = await reader.read()
            writer.close()
        finally:
            await running.stop()
    status, headers, body = get
    assert (status, headers["Location"], headers["X-Cache"]) == (
        301, f"https://localhost:{running.https_port}/r/p?x=1", "Redirect from cloudfront")
    assert b"301 Moved Permanently" in body
    assert post[0] == 307 and post[1]["Location"].startswith("https://127.0.0.1:")
    assert old.startswith(b"HTTP/1.0 403") or old.startswith(b"HTTP/1.1 403")
    assert only[0] == 403 and only[1]["X-Cache"] == "Error from cloudfront"
    assert secure[0] == 200 and b"CloudFront-Forwarded-Proto: https" in secure[2]
    assert secure_only[:1] == (200,) and secure_only[2] == b"only over https"
    assert origin.hits["/r/p"] == 1 and origin.hits["/o/p"] == 1  # nothing over HTTP reached the origin



async def test_kept_answers_over_https_and_a_policy_that_refuses_http(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A keep-alive TLS connection sending the same GET again gets the answer its connection kept (``PopViewer.again``,
    README "Kept answers"), the same as the first hit but for its id, Age and timings; over HTTP the same request to
    an https-only behavior is refused every time (never kept: whether it is depends on the HTTPS listener)."""
    import asyncio
    import re
    import ssl

    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.server.pop import start_pop
    from edge.cdn.server.respond import PopViewer
    from tests.cdn.scripted_origin import pop_settings_for

    given: list[bool] = []
    real_again = PopViewer.again

    def again(self, conn, kept):  # type: ignore[no-untyped-def]
        answer = real_again(self, conn, kept)
        given.append(answer is not None)
        return answer

    monkeypatch.setattr(PopViewer, "again", again)

    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"\r\nContent-Length: (\d+)", head)
            out.append(head + (await reader.readexactly(int(length.group(1))) if length else b""))
        writer.close()
        return out

    async with ScriptedOrigin() as origin:
        origin.script("/o/p", body=b"only over https", headers={"Cache-Control": "max-age=60"})
        dist_cfg = distribution_config(behaviors=[{**behavior_config("/o/*"), "ViewerProtocolPolicy": "https-only"}])
        pop, settings = pop_settings_for(origin)
        running = await start_pop(replace(pop, https_port=0), load_distribution(dist_cfg, settings), settings,
                                  port=0, tls_dir=tmp_path / "tls")
        try:
            assert running.https_port is not None
            ca = ssl.create_default_context(cafile=str(tmp_path / "tls" / "edgelab-ca.pem"))
            raw = b"GET /o/p HTTP/1.1\r\nHost: localhost\r\n\r\n"
            async with asyncio.timeout(20):
                secure = await answers(*await asyncio.open_connection("127.0.0.1", running.https_port, ssl=ca,
                                                                      server_hostname="localhost"), raw, 7)
                plain = await answers(*await asyncio.open_connection("127.0.0.1", running.port), raw, 5)
            stats = running.state.ctx.stats
        finally:
            await running.stop()
    assert b"X-Cache: Miss from cloudfront" in secure[0]
    assert all(b"X-Cache: Hit from cloudfront" in a and a.endswith(b"only over https") for a in secure[1:])
    assert given == [True] * 4  # the 4th to the 7th (kept by the 3rd, the first replayed)
    varying = re.compile(rb"(X-Amz-Cf-Id: |dur=|Age: |Date: )[^\r,]*")
    assert {varying.sub(rb"\1-", a) for a in secure[1:]} == {varying.sub(rb"\1-", secure[1])}
    assert all(a.startswith(b"HTTP/1.1 403 ") for a in plain)
    assert (stats.requests, stats.hits, origin.hits["/o/p"]) == (12, 6, 1)


async def test_without_an_https_listener_the_policy_is_not_enforced() -> None:
    """A POP started without an HTTPS listener (e.g. moved with `--pop NAME=PORT`) has nowhere to send a viewer:
    a redirect-to-https behavior is served over HTTP."""
    async with ScriptedOrigin() as origin:
        origin.script("/p", body=b"plain")
        dist = distribution_config(default={**behavior_config(), "ViewerProtocolPolicy": "redirect-to-https"})
        async with PopHarness(origin, dist) as pop:
            status, _, body = await pop.get("/p")
    assert (status, body) == (200, b"plain")


# --- item 6: WebSocket pass-through --------------------------------------------------------------------------

async def test_websocket_pass_through() -> None:
    """A WebSocket through a POP whose behavior forwards the handshake headers (AllViewer): messages both ways
    and the origin's subprotocol; a behavior that does not forward them sends a plain GET (no upgrade)."""
    from aiohttp import WSMsgType, WSServerHandshakeError, web

    async def ws_echo(request, n):  # type: ignore[no-untyped-def]
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(f"echo:{msg.data}")
        return ws

    async with ScriptedOrigin() as origin:
        origin.script("/ws", handler=ws_echo)
        origin.script("/plain/ws", handler=ws_echo)
        dist = distribution_config(default=behavior_config(cache_policy=USE_ORIGIN_CC_QS,
                                                           origin_request_policy=ALL_VIEWER),
                                   behaviors=[behavior_config("/plain/*", cache_policy=USE_ORIGIN_CC_QS)])
        async with PopHarness(origin, dist) as pop:
            async with pop.session.ws_connect(f"{pop.url}/ws", protocols=("chat",)) as ws:  # type: ignore[union-attr]
                await ws.send_str("hi")
                first = await ws.receive(timeout=10)
                await ws.send_bytes(b"\x00")  # binary frames pass too (the origin ignores them)
                await ws.send_str("again")
                second = await ws.receive(timeout=10)
                protocol = ws.protocol
            with pytest.raises(WSServerHandshakeError):
                await pop.session.ws_connect(f"{pop.url}/plain/ws")  # type: ignore[union-attr]
    assert (first.data, second.data, protocol) == ("echo:hi", "echo:again", "chat")
    assert origin.requests["/plain/ws"][0].header("Upgrade") is None


# --- item 8: origin failures on the console ------------------------------------------------------------------

async def test_origin_down_says_why_once_on_the_console(caplog: pytest.LogCaptureFixture) -> None:
    """The origin is down: every viewer gets `502 Error from cloudfront`, and the console gets one line naming the
    origin and the cause (with the debug header to set), not one per request."""
    import logging

    async with ScriptedOrigin() as origin:
        origin.script("/p", body=b"up", headers={"Cache-Control": "no-store"})
        async with PopHarness(origin, distribution_config()) as pop:
            await origin.stop()  # refused from now on
            with caplog.at_level(logging.WARNING, logger="edgelab.pop"):
                answers = [await pop.get(f"/p?{i}") for i in range(3)]
    assert [(s, h["X-Cache"]) for s, h, _ in answers] == [(502, "Error from cloudfront")] * 3
    lines = [r.getMessage() for r in caplog.records if r.name == "edgelab.pop" and "failed: 502" in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("origin origin.test failed: 502 OriginUnavailable") and "debug_headers" in lines[0]
