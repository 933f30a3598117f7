"""The POP's low-level server (``make_viewer_server``): what aiohttp's router used to do for it still happens.

``Expect: 100-continue`` gets an interim ``100 Continue`` before the body is read (HTTP/1.1), any other
expectation 417; keep-alive and ``Connection: close`` behave as with ``web.Response``; an HTTP/1.0 viewer gets
an HTTP/1.0 status line. Raw sockets on 127.0.0.1, real POP and scripted origin.
"""

from __future__ import annotations

import asyncio

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


async def test_expect_100_continue_then_body_reaches_the_origin() -> None:
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED, methods=ALL_METHODS))
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/up", body=b"ok")
        reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        try:
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            await writer.drain()
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            await writer.drain()
            final = await _read_response(reader)
            assert final.startswith(b"HTTP/1.1 200 OK\r\n") and final.endswith(b"\r\n\r\nok")
            assert b"X-Cache: Miss from cloudfront\r\n" in final
            # the connection stays usable (keep-alive)
            writer.write(b"GET /up HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n")
            await writer.drain()
            refused = await _read_response(reader)
            assert refused.startswith(b"HTTP/1.1 417 ")
        finally:
            writer.close()
        assert origin.requests["/up"][0].body == b"hello"


async def test_connection_close_and_http10() -> None:
    dist = distribution_config(default=behavior_config())
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/a", body=b"abc", headers={"Cache-Control": "max-age=60"})
        for _ in range(2):  # miss, then hit (served from a prepared header block)
            reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
            try:
                writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                await writer.drain()
                data = await asyncio.wait_for(reader.read(), 5)  # the POP closes: read to EOF
            finally:
                writer.close()
            assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in data
            assert data.endswith(b"\r\n\r\nabc")
        reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        try:
            writer.write(b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        assert data.startswith(b"HTTP/1.0 200 OK\r\n") and b"X-Cache: Hit from cloudfront\r\n" in data
