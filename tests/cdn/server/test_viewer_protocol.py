"""The POP's own HTTP/1.x protocol (``edge.cdn.server.viewer``) through a real POP and raw sockets on 127.0.0.1:
pipelined requests answered in order (a hit answered at once waits behind a miss still at the origin), requests
cut anywhere (bodies in chunks included), streamed responses framed for HTTP/1.1 (chunked) and HTTP/1.0 (close-delimited), an upgrade
that is not relayed answered and closed, a parse error after good requests answered after them.
"""

from __future__ import annotations

import asyncio
import re

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config
from tests.cdn.server.test_pop_limits import exchange

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


async def test_pipelined_requests_are_answered_in_order_behind_a_slow_miss() -> None:
    dist = distribution_config(default=behavior_config())
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/fast", body=b"FAST", headers={"Cache-Control": "max-age=60"})
        origin.script("/slow", body=b"SLOW", headers={"Cache-Control": "max-age=60"}, delay=0.3)
        origin.script("/last", body=b"LAST", headers={"Cache-Control": "max-age=60"})
        await exchange(pop.port, b"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # cached
        data, _ = await exchange(pop.port, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                                           b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
                                           b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert STATUS.findall(data) == [b"200"] * 3
        slow, fast, last = data.index(b"SLOW"), data.index(b"FAST"), data.index(b"LAST")
        assert slow < fast < last  # the hit was ready first, and still went out second
        assert data.count(b"X-Cache: Hit from cloudfront") == 1 and data.count(b"X-Cache: Miss from cloudfront") == 2


async def test_streamed_bodies_are_chunked_for_http11_and_close_delimited_for_http10() -> None:
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED))
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/s", body=b"y" * 5000, chunked=True)  # no Content-Length from the origin
        data, _ = await exchange(pop.port, b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = data.partition(b"\r\n\r\n")
        if b"Transfer-Encoding: chunked" in head:
            decoded = bytearray()
            while body:
                size_line, _, body = body.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    break
                decoded += body[:size]
                body = body[size + 2:]
            assert bytes(decoded) == b"y" * 5000
        else:  # held in memory by the origin client (small enough): a plain Content-Length
            assert b"Content-Length: 5000" in head and body == b"y" * 5000
        data, _ = await exchange(pop.port, b"GET /s HTTP/1.0\r\nHost: x\r\n\r\n")
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 ") and b"Transfer-Encoding" not in head and body == b"y" * 5000


async def test_an_upgrade_that_is_not_relayed_is_answered_then_closed() -> None:
    dist = distribution_config(default=behavior_config())  # does not forward the WebSocket handshake headers
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/ws", body=b"plain", headers={"Cache-Control": "max-age=60"})
        data, closed = await exchange(pop.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                                                b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                                b"Sec-WebSocket-Version: 13\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed
        assert STATUS.findall(data) == [b"200"] and data.endswith(b"plain")
        assert origin.hits["/smuggled"] == 0


async def test_a_malformed_request_after_good_ones_is_answered_after_them() -> None:
    dist = distribution_config(default=behavior_config())
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/a", body=b"AAA", headers={"Cache-Control": "max-age=60"}, delay=0.2)
        data, closed = await exchange(pop.port, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nBad Header\r\n\r\n")
        assert closed
        assert STATUS.findall(data) == [b"200", b"400"]
        assert data.index(b"AAA") < data.index(b"400 ERROR")
        assert origin.hits["/b"] == 0


async def test_a_viewer_that_does_not_read_stops_the_pop_reading_its_pipeline() -> None:
    dist = distribution_config(default=behavior_config())
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/big", body=b"z" * 60_000, headers={"Cache-Control": "max-age=60"})
        await exchange(pop.port, b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        try:
            request = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
            for _ in range(40):  # 40 x 60 KB asked for, nothing read
                writer.write(request * 50)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            stats = pop.running.state.ctx.stats.snapshot()
            assert stats["requests"] < 2000 // 2  # reading stopped well before every request was parsed
            total = 0
            async with asyncio.timeout(20):
                while total < 3 * 60_000:
                    total += len(await reader.read(65536))
        finally:
            writer.close()


async def test_requests_split_at_any_byte_are_parsed_as_whole_ones() -> None:
    """Pipelined requests (GETs, a POST with a body, a chunked PUT, a long URL and many headers) arriving in pieces cut
    at random places (seeded; 30 cuts, a few ms apart) get the same answers, in order, as sent in one piece."""
    import random

    dist = distribution_config(default=behavior_config(methods=ALL_METHODS))
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/a", body=b"A-body", headers={"Cache-Control": "max-age=60"})
        origin.script("/b", body=b"B-body", headers={"Cache-Control": "no-store"})
        long_query = "q=" + "x" * 3000
        many = "".join(f"X-H{i}: {'v' * 40}\r\n" for i in range(60))
        stream = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                  + f"GET /b?{long_query} HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()
                  + b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"
                  + b"PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                  + b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        whole, _ = await exchange(pop.port, stream)
        rng = random.Random(20)
        cuts = sorted(rng.sample(range(1, len(stream)), 30))
        reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        try:
            for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
                writer.write(stream[start:end])
                await writer.drain()
                await asyncio.sleep(0.003)
            pieces = await asyncio.wait_for(reader.read(-1), 10)
        finally:
            writer.close()

        def answers(data: bytes) -> list[tuple[bytes, bytes]]:
            out = []
            for part in re.split(rb"(?=HTTP/1\.1 \d{3} )", data)[1:]:
                head, _, body = part.partition(b"\r\n\r\n")
                out.append((head.split(b"\r\n", 1)[0], body))
            return out

        assert [s for s, _ in answers(whole)] == [b"HTTP/1.1 200 OK"] * 5
        assert answers(pieces) == answers(whole)
        bodies = [r.body for r in origin.requests["/b"]]
        assert bodies == [b"", b"hello world", b"abcde"] * 2  # GET, POST, PUT: whole, then in pieces


async def test_a_relayed_upgrade_gets_the_bytes_sent_right_after_its_head() -> None:
    """A WebSocket handed over to aiohttp's protocol gets everything the viewer sent after the upgrade request's
    head, even in the same segment (here: a masked text frame sent with the handshake), relayed to the origin."""
    import base64
    import os

    from aiohttp import web

    got: list[str] = []

    async def ws_handler(request: web.Request, _n: int) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            got.append(msg.data)
            await ws.send_str("echo:" + msg.data)
        return ws

    dist = distribution_config(default=behavior_config(origin_request_policy="216adef6-5c7f-47e4-b989-5492eafa07d3"))
    async with ScriptedOrigin() as origin, PopHarness(origin, dist) as pop:
        origin.script("/ws", handler=ws_handler)
        key = base64.b64encode(os.urandom(16))
        mask = os.urandom(4)
        payload = b"early"
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        reader, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        try:
            writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                         b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 101 ")
            echo = await asyncio.wait_for(reader.readexactly(2 + len("echo:early")), 5)
            assert echo[2:] == b"echo:early"
        finally:
            writer.close()
        assert got == ["early"]


async def test_a_tls_handshake_that_never_completes_is_closed_after_the_header_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import ViewerSettings
    from edge.cdn.server.pop import start_pop
    from tests.cdn.scripted_origin import pop_settings_for

    async with ScriptedOrigin() as origin:
        pop, settings = pop_settings_for(origin)
        settings = replace(settings, viewer=ViewerSettings(header_timeout_s=0.5))
        running = await start_pop(replace(pop, https_port=0), load_distribution(distribution_config(), settings),
                                  settings, port=0, tls_dir=tmp_path / "tls")
        try:
            assert running.https_port is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", running.https_port)
            writer.write(b"\x16\x03\x01")  # the start of a ClientHello, never finished
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(5):
                assert await reader.read() == b""
            assert loop.time() - started < 3
            writer.close()
        finally:
            await running.stop()


async def test_the_body_timeout_of_a_kept_alive_connection_counts_from_its_own_request() -> None:
    """Two uploads on one connection (body timeout 0.5 s): the first one's body pauses (arming the body timer) and
    completes; the second one's head comes 0.3 s later and its body 0.4 s after that. It is answered 200: its
    body paused 0.4 s, not the 0.65 s since the first one's last byte."""
    from edge.cdn.config.settings import ViewerSettings
    from tests.cdn.server.test_pop_limits import pop_with

    viewer = ViewerSettings(body_timeout_s=0.5)
    config = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED, methods=ALL_METHODS))
    async with ScriptedOrigin() as origin, pop_with(origin, viewer, config) as running:
        origin.script("/up", body=b"ok")
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        try:
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhe")
            await asyncio.sleep(0.05)
            writer.write(b"llo")
            first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            await asyncio.wait_for(reader.readexactly(2), 5)
            await asyncio.sleep(0.25)
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            await asyncio.sleep(0.4)
            writer.write(b"world")
            second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 "), second[:80]
    assert [r.body for r in origin.requests["/up"]] == [b"hello", b"world"]



class _RawOrigin:
    """An origin that answers every request on its connections with the same bytes (``port`` as ScriptedOrigin's)."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.port = 0

    async def __aenter__(self) -> _RawOrigin:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(self.response)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def test_a_hit_only_the_writer_can_send_keeps_the_connection_going() -> None:
    # a header byte that is not UTF-8 (kept as a surrogate) makes the fast serialiser decline a cache hit: the
    # writer coroutine sends it, and the request after it on the same connection is still answered
    raw = (b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nX-Latin: caf\xe9\r\nContent-Length: 6\r\n\r\n"
           b"LATIN1")
    dist = distribution_config(default=behavior_config())
    async with _RawOrigin(raw) as origin, PopHarness(origin, dist) as pop:  # type: ignore[arg-type]
        await exchange(pop.port, b"GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # cached
        data, _ = await exchange(pop.port, b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n"
                                           b"GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert STATUS.findall(data) == [b"200", b"200"]
        assert data.count(b"X-Cache: Hit from cloudfront") == 2 and data.count(b"X-Latin: caf\xe9\r\n") == 2
