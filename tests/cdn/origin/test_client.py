"""The origin client: hop-by-hop stripping (pure) and fetching from a real ScriptedOrigin (errors, timeouts,
streaming threshold, host mapping, OriginPath, custom headers, latency, one pooled session)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig, StreamedBody, strip_hop_by_hop
from edge.cdn.origin.fast import FastStreamedBody
from tests.cdn.scripted_origin import ScriptedOrigin


def test_strip_hop_by_hop_including_connection_named_headers() -> None:
    headers = [("Connection", "close, X-Foo"), ("X-Foo", "1"), ("Keep-Alive", "5"), ("TE", "trailers"),
               ("Trailer", "X"), ("Transfer-Encoding", "chunked"), ("Upgrade", "ws"), ("Proxy-Authenticate", "x"),
               ("Proxy-Anything", "y"), ("X-Bar", "2"), ("Accept", "*/*")]
    assert strip_hop_by_hop(headers) == [("X-Bar", "2"), ("Accept", "*/*")]


def _req(uri: str, origin: CustomOrigin, **kw: object) -> EdgeRequest:
    return EdgeRequest(method="GET", uri=uri, querystring="", headers=[("Host", origin.domain_name)],
                       client_ip="127.0.0.1", origin=origin, **kw)  # type: ignore[arg-type]


def _origin(port: int, **kw: object) -> CustomOrigin:
    return CustomOrigin(domain_name="o.test", port=80, connect_host=f"127.0.0.1:{port}", **kw)  # type: ignore[arg-type]


# every fetching test runs through both paths: the fast keep-alive client and aiohttp (``fast_http=False``)
both_clients = pytest.mark.parametrize("fast_http", [True, False], ids=["fast", "aiohttp"])


async def _client(**kw: object) -> AiohttpOriginClient:
    c = AiohttpOriginClient(OriginClientConfig(**kw))  # type: ignore[arg-type]
    await c.start()
    return c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@both_clients
async def test_refused_connection_is_origin_unavailable(fast_http: bool) -> None:
    c = await _client(fast_http=fast_http)
    try:
        with pytest.raises(OriginUnavailable):
            await c.fetch(_req("/x", _origin(_free_port())))
    finally:
        await c.close()


@both_clients
async def test_read_timeout_is_origin_timeout(fast_http: bool) -> None:
    c = await _client(fast_http=fast_http)
    async with ScriptedOrigin() as origin:
        origin.script("/slow", body=b"late", delay=0.5)
        try:
            with pytest.raises(OriginTimeout):
                await c.fetch(_req("/slow", _origin(origin.port, read_timeout=0.2)))
        finally:
            await c.close()


@both_clients
async def test_body_buffered_below_threshold_streamed_above(fast_http: bool) -> None:
    c = await _client(stream_threshold=1000, fast_http=fast_http)
    async with ScriptedOrigin() as origin:
        origin.script("/small", body=b"s" * 1000, headers={"X-A": "1", "Connection": "X-A"})
        origin.script("/big", body=b"b" * 5000)
        origin.script("/chunked", body=b"c" * 5000, chunked=True)
        try:
            small = await c.fetch(_req("/small", _origin(origin.port)))
            assert small.body == b"s" * 1000 and small.status == 200
            assert all(k.lower() not in ("x-a", "content-length") for k, _ in small.headers)
            for path, ch in (("/big", b"b"), ("/chunked", b"c")):
                resp = await c.fetch(_req(path, _origin(origin.port)))
                assert isinstance(resp.body, FastStreamedBody if fast_http else StreamedBody)
                data = b"".join([chunk async for chunk in resp.body])
                assert data == ch * 5000
            buffered = await c.fetch(_req("/big", _origin(origin.port)), streaming_ok=False)
            assert buffered.body == b"b" * 5000
        finally:
            await c.close()


@both_clients
async def test_host_map_origin_path_custom_headers_and_latency(fast_http: bool) -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/base/p", body=b"ok")
        c = await _client(host_map={"mapped.test": f"127.0.0.1:{origin.port}"}, latency=0.1, fast_http=fast_http)
        o = CustomOrigin(domain_name="mapped.test", path="/base", custom_headers=(("X-Secret", "k"),))
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            resp = await c.fetch(_req("/p", o))
            assert loop.time() - t0 >= 0.1
        finally:
            await c.close()
    assert resp.body == b"ok"
    assert origin.requests["/base/p"][0].header("X-Secret") == "k"
    assert resp.meta.origin_seconds >= 0.1


@both_clients
async def test_one_pooled_keepalive_connection_is_reused(fast_http: bool) -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/k", body=b"k")
        c = await _client(fast_http=fast_http)
        try:
            for _ in range(5):
                await c.fetch(_req("/k", _origin(origin.port)))
        finally:
            await c.close()
    assert origin.hits["/k"] == 5 and origin.connections == 1


@both_clients
async def test_s3_origin_served_from_a_directory(tmp_path, fast_http: bool) -> None:  # type: ignore[no-untyped-def]
    from edge.cdn.models import S3Origin

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "secret.txt").write_text("outside")
    big = tmp_path / "site" / "big.bin"
    big.write_bytes(b"z" * 5000)
    c = await _client(fast_http=fast_http, stream_threshold=1000,
                      directories={"bucket.s3.amazonaws.com": tmp_path / "site"})
    public = S3Origin(domain_name="bucket.s3.amazonaws.com")
    oai = S3Origin(domain_name="bucket.s3.amazonaws.com", auth_method="origin-access-identity")
    try:
        r = await c.fetch(_req("/index.html", public))  # type: ignore[arg-type]
        assert (r.status, r.body) == (200, b"<h1>hi</h1>")
        etag = dict(r.headers)["ETag"]
        assert dict(r.headers)["Content-Type"] == "text/html"
        r = await c.fetch(EdgeRequest("GET", "/index.html", "", [("If-None-Match", etag)], "1", origin=public))
        assert r.status == 304
        r = await c.fetch(_req("/big.bin", public))  # type: ignore[arg-type]
        assert not isinstance(r.body, bytes)
        assert b"".join([chunk async for chunk in r.body]) == b"z" * 5000  # type: ignore[union-attr]
        assert (await c.fetch(_req("/nope", public))).status == 404  # type: ignore[arg-type]
        assert (await c.fetch(_req("/nope", oai))).status == 403  # type: ignore[arg-type]
        assert (await c.fetch(_req("/../secret.txt", public))).status == 404  # type: ignore[arg-type]
        post = EdgeRequest("POST", "/index.html", "", [], "1", origin=public)
        assert (await c.fetch(post)).status == 405
    finally:
        await c.close()


@both_clients
async def test_base_url_mapping_and_connection_attempts(fast_http: bool) -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/pre/x", body=b"x")
        c = await _client(host_map={"u.test": f"http://127.0.0.1:{origin.port}/pre"},
                          connect={"dead.test": (3, 1.0)}, fast_http=fast_http)
        try:
            r = await c.fetch(_req("/x", CustomOrigin(domain_name="u.test")))
            assert r.body == b"x"
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(OriginUnavailable):
                await c.fetch(_req("/x", CustomOrigin(domain_name="dead.test", connect_host=f"127.0.0.1:{_free_port()}")))
            assert loop.time() - t0 < 1.0  # refused connections are retried at once, not after a timeout
        finally:
            await c.close()
