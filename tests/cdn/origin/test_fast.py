"""The fast keep-alive origin client (edge.cdn.origin.fast, edge.cdn.origin.http1): request serialisation and response head parsing
(pure), and fetching against real servers on 127.0.0.1 (a ScriptedOrigin, or raw asyncio servers that
misbehave on purpose: stale keep-alive, chunked with trailers, stalls, read-to-close, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig
from edge.cdn.origin.http1 import Malformed, parse_head, serialize_head
from tests.cdn.scripted_origin import ScriptedOrigin

# --- pure -------------------------------------------------------------------------------------------------


def test_serialize_keeps_order_and_case_and_adds_host_and_length_like_aiohttp() -> None:
    head = serialize_head("GET", "/a?b=1", [("host", "o.test"), ("X-Case", "V"), ("x-case", "w")], b"", "h:1")
    assert head == b"GET /a?b=1 HTTP/1.1\r\nhost: o.test\r\nX-Case: V\r\nx-case: w\r\n\r\n"
    head = serialize_head("POST", "/p", [("X-A", "1")], b"", "h:1")
    assert head == b"POST /p HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"
    assert serialize_head("PUT", "/p", [("Host", "x")], b"abc", "h") == (
        b"PUT /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")


@pytest.mark.parametrize("method,target,headers,body", [
    ("GET", "/a", [("X-Evil", "1\r\nX-Injected: 2")], b""),  # aiohttp refuses it: so must the POP
    ("GET", "/a", [("X-Evil", "1\nX: 2")], b""),
    ("GET", "/a b", [], b""),
    ("GET", "/\x00", [], b""),
    ("GET", "/é", [], b""),
    ("POST", "/a", [("Expect", "100-continue")], b"x"),
    ("POST", "/a", [("Content-Length", "1")], b"x"),
    ("POST", "/a", [], b"x" * 70000),
    ("PROPFIND", "/a", [], b""),
])
def test_serialize_declines_what_aiohttp_must_handle(method: str, target: str, headers: list[tuple[str, str]],
                                                     body: bytes) -> None:
    assert serialize_head(method, target, headers, body, "h") is None


def test_parse_head_filters_hop_by_hop_keeps_cookies_case_and_order() -> None:
    raw = (b"HTTP/1.1 200 Fine Thanks\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nconnection: X-Drop\r\n"
           b"X-Drop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Foo: y\r\nset-cookie: b=2\r\nContent-Length: 3\r\n"
           b"x-lower:  spaced  ")
    head = parse_head(raw)
    assert (head.version, head.status, head.reason) == ("HTTP/1.1", 200, "Fine Thanks")
    assert head.headers == [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
                            ("x-lower", "spaced")]
    assert head.set_cookie and head.content_length == 3 and head.keep_alive


def test_parse_head_framing_and_keep_alive() -> None:
    assert not parse_head(b"HTTP/1.1 200 OK\r\nConnection: close").keep_alive
    assert not parse_head(b"HTTP/1.0 200 OK").keep_alive
    assert parse_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive").keep_alive
    assert parse_head(b"HTTP/1.1 204").status == 204
    assert parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").transfer_encoding == "chunked"
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5").content_length == 5


@pytest.mark.parametrize("raw", [
    b"HTTP/2 200 OK", b"HTTP/1.1 20 OK", b"HTTP/1.1 2x0 OK", b"garbage", b"HTTP/1.1 200 OK\r\nNo colon",
    b"HTTP/1.1 200 OK\r\n folded: x", b"HTTP/1.1 200 OK\r\nBad : x", b"HTTP/1.1 200 OK\r\nX: a\nY: b",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2", b"HTTP/1.1 200 OK\r\nContent-Length: -1",
])
def test_parse_head_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(Malformed):
        parse_head(raw)


# --- against real servers -----------------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawOrigin:
    """A raw TCP server on 127.0.0.1:0; ``handler(reader, writer, connection_number)`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or teardown cancelled this connection (ending it normally is quiet)
        finally:
            writer.close()

    async def __aenter__(self) -> RawOrigin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _origin(port: int, **kw: object) -> CustomOrigin:
    return CustomOrigin(domain_name="o.test", port=80, connect_host=f"127.0.0.1:{port}", **kw)  # type: ignore[arg-type]


def _req(uri: str, origin: CustomOrigin, method: str = "GET", body: bytes | None = None) -> EdgeRequest:
    return EdgeRequest(method=method, uri=uri, querystring="", headers=[("Host", origin.domain_name)],
                       client_ip="127.0.0.1", origin=origin, body=body)


@contextlib.asynccontextmanager
async def _client(**kw: object) -> AsyncIterator[AiohttpOriginClient]:
    c = AiohttpOriginClient(OriginClientConfig(**kw))  # type: ignore[arg-type]
    await c.start()
    try:
        yield c
    finally:
        await c.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_keep_alive_reuse_after_small_big_head_204_304() -> None:
    async with ScriptedOrigin() as origin, _client(stream_threshold=1000) as c:
        origin.script("/s", body=b"s" * 10)
        origin.script("/big", body=b"b" * 5000)
        origin.script("/nc", status=204)
        origin.script("/nm", status=304, headers={"ETag": '"e"'})
        o = _origin(origin.port)
        for _ in range(3):
            assert (await c.fetch(_req("/s", o))).body == b"s" * 10
        big = await c.fetch(_req("/big", o))
        assert big.meta.content_length == 5000 and big.meta.streamed is True
        assert b"".join([chunk async for chunk in big.body]) == b"b" * 5000  # type: ignore[union-attr]
        head = await c.fetch(_req("/big", o, method="HEAD"))
        assert (head.status, head.body, head.meta.content_length) == (200, b"", 5000)
        nc, nm = await c.fetch(_req("/nc", o)), await c.fetch(_req("/nm", o))
        assert (nc.status, nc.body, nm.status, nm.body) == (204, b"", 304, b"")
        assert ("ETag", '"e"') in nm.headers
        assert (await c.fetch(_req("/s", o))).body == b"s" * 10
    assert origin.connections == 1


async def test_abandoned_stream_closes_its_connection() -> None:
    async with ScriptedOrigin() as origin, _client(stream_threshold=1000) as c:
        origin.script("/big", body=b"b" * 300000)
        o = _origin(origin.port)
        big = await c.fetch(_req("/big", o))
        it = big.body.__aiter__()  # type: ignore[union-attr]
        assert await it.__anext__()
        await big.body.aclose()  # type: ignore[union-attr]
        await it.aclose()
        assert (await c.fetch(_req("/big", o), streaming_ok=False)).body == b"b" * 300000
    assert origin.connections == 2


async def test_stale_pooled_connection_is_retried_once_for_idempotent_requests() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await _read_request(reader)  # a second request on this connection: hang up without an answer

    async with RawOrigin(handler) as origin, _client() as c:
        o = _origin(origin.port)
        assert (await c.fetch(_req("/a", o))).body == b"ok"
        assert (await c.fetch(_req("/a", o))).body == b"ok"  # retried on a fresh connection
        assert origin.connections == 2
        with pytest.raises(OriginUnavailable):  # POST is not idempotent: no retry
            await c.fetch(_req("/a", o, method="POST", body=b"x"))


async def test_chunked_with_extensions_and_trailers_buffered_and_streamed() -> None:
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n")
            for i in range(0, len(body), 7):  # in small pieces
                writer.write(body[i:i + 7])
                await writer.drain()
                await asyncio.sleep(0)

    async with RawOrigin(handler) as origin, _client(stream_threshold=8) as c:
        o = _origin(origin.port)
        r = await c.fetch(_req("/c", o), streaming_ok=False)
        assert (r.body, r.meta.content_length) == (b"hello world", None)
        assert ("X-A", "1") in r.headers and all(k.lower() != "transfer-encoding" for k, _ in r.headers)
        r = await c.fetch(_req("/c", o))  # 11 bytes > threshold 8: streamed from where it crossed it
        assert not isinstance(r.body, bytes)
        assert b"".join([chunk async for chunk in r.body]) == b"hello world"
        assert (await c.fetch(_req("/c", o), streaming_ok=False)).body == b"hello world"
    assert origin.connections == 1


async def test_read_to_close_and_malformed_and_short_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        request = await _read_request(reader)
        if b" /close " in request:
            writer.write(b"HTTP/1.0 200 OK\r\nX-B: 2\r\n\r\nuntil the end")
        elif b" /short " in request:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        else:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async with RawOrigin(handler) as origin, _client() as c:
        o = _origin(origin.port)
        r = await c.fetch(_req("/close", o))
        assert (r.status, r.body, r.headers) == (200, b"until the end", [("X-B", "2")])
        with pytest.raises(OriginUnavailable):
            await c.fetch(_req("/short", o))
        with pytest.raises(OriginUnavailable):
            await c.fetch(_req("/junk", o))


async def test_timeouts_before_the_head_and_in_the_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        request = await _read_request(reader)
        if b" /stall " in request:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
        await asyncio.sleep(30)

    async with RawOrigin(handler) as origin, _client() as c:
        o = _origin(origin.port, read_timeout=0.2)
        loop = asyncio.get_running_loop()
        for path in ("/silent", "/stall"):
            t0 = loop.time()
            with pytest.raises(OriginTimeout):
                await c.fetch(_req(path, o))
            assert 0.15 < loop.time() - t0 < 5
        assert c._fast is not None and c._fast.open_connections == 0


async def test_refused_connection_attempts_and_connect_timeout() -> None:
    async with _client(connect={"o.test": (3, 0.5)}) as c:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(OriginUnavailable):
            await c.fetch(_req("/x", _origin(_free_port())))
        assert loop.time() - t0 < 0.5  # refused: retried at once
    # a loopback listener whose accept queue is full: further SYNs are dropped, so connecting times out
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        async with _client(connect={"o.test": (2, 0.1)}) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(OriginTimeout):
                await c.fetch(_req("/x", _origin(port)))
            assert loop.time() - t0 >= 0.2  # both attempts waited their ConnectionTimeout
            assert c._fast is not None and c._fast.open_connections == 0


async def test_pool_limit_and_keepalive_timeout() -> None:
    now = [0.0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await _read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
            await writer.drain()

    async with RawOrigin(handler) as origin, _client(pool_limit=1, keepalive_timeout=5.0) as c:
        assert c._fast is not None
        c._fast._clock = lambda: now[0]
        o = _origin(origin.port)
        results = await asyncio.gather(*(c.fetch(_req("/p", o)) for _ in range(4)))
        assert [r.body for r in results] == [b"x"] * 4
        assert origin.connections == 1  # one at a time through the single slot
        now[0] = 6.0  # idle longer than the keep-alive timeout: not reused
        await c.fetch(_req("/p", o))
        assert origin.connections == 2
        # closing the client while requests wait for the single slot: they fail, nothing is left open
        pending = [asyncio.ensure_future(c.fetch(_req("/p", o))) for _ in range(3)]
        await asyncio.sleep(0.01)
        c._fast.close()
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            assert isinstance(outcome, OriginUnavailable)
        assert c._fast.open_connections == 0


async def test_header_fidelity_same_as_the_aiohttp_path() -> None:
    """What the origin receives and what the POP keeps of the answer do not depend on the client."""
    async with ScriptedOrigin() as origin:
        origin.script("/h", headers={"X-Mixed-Case": "V", "Cache-Control": "max-age=5",
                                     "Connection": "X-Hop", "X-Hop": "1"}, body=b"hi")
        seen = []
        for fast in (True, False):
            async with _client(fast_http=fast) as c:
                o = _origin(origin.port, custom_headers=(("X-Custom", "c"),))
                req = EdgeRequest("GET", "/h", "a=1&b=%20", [
                    ("Host", "o.test"), ("user-agent", "UA"), ("X-Forwarded-For", "1.2.3.4"), ("Cookie", "a=1"),
                    ("Cookie", "b=2"), ("Keep-Alive", "5"), ("TE", "trailers")], "127.0.0.1", origin=o)
                seen.append(await c.fetch(req))
        fast_req, slow_req = origin.requests["/h"]
        assert fast_req.headers == slow_req.headers and fast_req.query == slow_req.query == "a=1&b= "
        assert ("X-Custom", "c") in fast_req.headers and fast_req.header("Keep-Alive") is None
        undated = [[p for p in r.headers if p[0] != "Date"] for r in seen]  # the second may tick in between
        assert undated[0] == undated[1] and seen[0].body == seen[1].body == b"hi"
        assert seen[0].status_description == seen[1].status_description == "OK"
        assert ("X-Mixed-Case", "V") in seen[0].headers and all(k != "X-Hop" for k, _ in seen[0].headers)


async def test_multiple_set_cookie_and_post_body_reach_through() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        head = await _read_request(reader)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        body = await reader.readexactly(length)
        writer.write(b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()

    async with RawOrigin(handler) as origin, _client() as c:
        r = await c.fetch(_req("/p", _origin(origin.port), method="POST", body=b"payload"))
        assert (r.status, r.status_description, r.body) == (201, "Created", b"payload")
        assert [v for k, v in r.headers if k == "Set-Cookie"] == ["a=1", "b=2"] and r.meta.set_cookie is True


def test_serialize_head_sends_a_non_utf8_header_byte_as_received() -> None:
    """The viewer-side parser keeps a byte that is not UTF-8 as a lone surrogate; it goes to the origin as the same
    byte (it used to push the request onto aiohttp, which dropped the byte)."""
    from edge.cdn.origin.http1 import serialize_head

    data = serialize_head("GET", "/p", [("X-Name", "caf\udce9")], b"", "o.test")
    assert data is not None and b"\r\nX-Name: caf\xe9\r\n" in data
