"""edge.cdn.server.wire: the POP's own response serialisation sends exactly the bytes aiohttp's web.Response sends
(the POP served through aiohttp before its own protocol; its responses did not change).

Each case is answered by two real servers on 127.0.0.1 (port 0): aiohttp's through ``web.Response``, and a plain
asyncio server writing what ``serialize`` returns for the same request; the raw bytes read from the sockets must be
equal (Date normalised).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web

from edge.cdn.server.wire import HttpDate, header_block, serialize

CASES: dict[str, tuple[int, str | None, list[tuple[str, str]], bytes]] = {
    "plain": (200, None, [("Content-Type", "text/plain"), ("X-A", "1"), ("X-A", "2")], b"x" * 1024),
    "no-type": (200, None, [("ETag", '"e"')], b"abc"),
    "empty-200": (200, None, [], b""),
    "reason": (203, "Fine Thanks", [("Server", "origin"), ("Date", "Tue, 01 Jan 2030 00:00:00 GMT")], b"b"),
    "unknown-status": (599, None, [], b"z"),
    "not-modified": (304, None, [("ETag", '"e"')], b""),
    "no-content": (204, None, [("X-B", "b")], b""),
    "error": (502, None, [("Content-Type", "text/html")], b"<html>"),
    "utf8": (200, None, [("X-Name", "caf\u00e9 \u2603"), ("X-Tab", "a\tb")], b"u"),
    "explicit-length": (200, None, [("Content-Length", "3")], b"abcdef"),
    "connection": (200, None, [("Connection", "keep-alive")], b"c"),
    "utf8-reason": (200, "Tr\u00e8s bien\tok", [("X-Del-Free", "~")], b"r"),
}


def _response(case: str) -> web.StreamResponse:
    status, reason, headers, body = CASES[case]
    return web.Response(status=status, reason=reason, headers=headers, body=body)


async def _serialised(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One request, answered with ``serialize``'s bytes (keep-alive as aiohttp decides it), then the close."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        line, *fields = head.split("\r\n")
        method, target, version = line.split(" ")
        major, minor = (int(x) for x in version[5:].split("."))
        connection = next((v.strip().lower() for k, _, v in (f.partition(":") for f in fields)
                           if k.lower() == "connection"), "")
        keep_alive = connection == "keep-alive" if (major, minor) == (1, 0) else connection != "close"
        status, reason, headers, body = CASES[target.strip("/").split("/")[1]]
        data = serialize(method, (major, minor), keep_alive, status, reason, headers, body, HttpDate())
        assert data is not None
        writer.write(data)
        await writer.drain()
    finally:
        writer.close()


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        while True:  # one response: headers, then Content-Length bytes (or until the server closes)
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if not chunk:
                return data
            if sep:
                m = re.search(rb"(?i)content-length: (\d+)", head)
                if b"HEAD" in request[:5] or b" 304 " in head[:13] or b" 204 " in head[:13] or (
                        m and len(body) >= int(m.group(1))):
                    return data
    finally:
        writer.close()


@pytest.fixture
async def server() -> int:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return _response(request.path.strip("/").split("/")[1])

    runner = web.ServerRunner(web.Server(handler, access_log=None), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


@pytest.fixture
async def raw_server() -> int:
    server = await asyncio.start_server(_serialised, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def _normalise(data: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: D\r\n", data)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("method", "version", "extra"), [
    ("GET", "1.1", ""), ("HEAD", "1.1", ""), ("GET", "1.0", ""), ("GET", "1.0", "Connection: keep-alive\r\n"),
    ("GET", "1.1", "Connection: close\r\n"),
])
async def test_same_bytes_as_aiohttp(server: int, raw_server: int, case: str, method: str, version: str,
                                     extra: str) -> None:
    def request(kind: str) -> bytes:
        return f"{method} /{kind}/{case} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()

    expected = await _exchange(server, request("aio"))
    got = await _exchange(raw_server, request("raw"))
    assert _normalise(got) == _normalise(expected)


@pytest.mark.parametrize("headers", [
    [("X-Bad", "a\r\nInjected: 1")], [("X-Bad", "a\nb")], [("X-Bad", "a\rb")], [("X-Bad", "a\x00b")],
    [("X-Bad", "a\x7fb")], [("X-Bad\n", "v")], [("X-Surrogate", "\udc80")],
])
def test_refuses_what_aiohttp_refuses(headers: list[tuple[str, str]]) -> None:
    """Where aiohttp's writer would raise, serialize gives up (the POP then lets aiohttp handle it)."""
    assert serialize("GET", (1, 1), True, 200, None, headers, b"", HttpDate()) is None
    assert header_block(headers) is None


def test_block_and_list_serialise_alike() -> None:
    headers = [("Content-Type", "text/plain"), ("Server", "o"), ("X-A", "1")]
    date = HttpDate()
    block = header_block(headers)
    assert block is not None and block.count == 3
    extra = [("X-Cache", "Hit from cloudfront")]
    assert serialize("GET", (1, 1), True, 200, None, extra, b"abc", date, block) == serialize(
        "GET", (1, 1), True, 200, None, headers + extra, b"abc", date)


def test_status_line_with_control_character_refused() -> None:
    for reason in ("O\x01K", "O\x7fK", "caf\u00e9\x00", "\udc80"):
        assert serialize("GET", (1, 1), True, 200, reason, [], b"", HttpDate()) is None


def test_drop_removes_names_case_insensitively_before_framing() -> None:
    date = HttpDate()
    headers = [("Via", "x"), ("content-length", "9"), ("X-A", "1"), ("Keep-Alive", "5"), ("x-custom-drop", "z")]
    dropped = serialize("GET", (1, 1), True, 200, None, headers, b"abc", date,
                        drop=frozenset({"via", "content-length", "keep-alive", "x-custom-drop"}))
    assert dropped == serialize("GET", (1, 1), True, 200, None, [("X-A", "1")], b"abc", date)


@pytest.mark.parametrize("version, keep_alive", [((1, 1), True), ((1, 1), False), ((1, 0), True), ((1, 0), False)])
@pytest.mark.parametrize("headers", [
    [("Content-Type", "text/plain"), ("Date", "Sat, 05 Dec 2026 10:00:00 GMT"), ("ETag", '"x"')],
    [("Cache-Control", "max-age=60")],  # no Date, no Content-Type: serialize writes both
    [("Server", "origin"), ("Connection", "keep-alive"), ("X-Ünïcode", "välue")],
])
@pytest.mark.parametrize("body", [b"", b"payload"])
def test_framed_heads_are_serialize_cut_where_the_trailer_and_the_date_go(
        version: tuple[int, int], keep_alive: bool, headers: list[tuple[str, str]], body: bytes) -> None:
    """``framed`` + the trailer (+ the Date) is byte for byte what ``serialize`` writes for the same GET."""
    from edge.cdn.server.wire import framed

    class FixedDate(HttpDate):  # the same second for both (a real clock could tick between them)
        def __call__(self) -> str:
            return "Sat, 05 Dec 2026 12:00:00 GMT"

    block = header_block(headers)
    assert block is not None
    date = FixedDate()
    trailer = "Age: 3\r\nX-Cache: Hit from cloudfront\r\n"
    expected = serialize("GET", version, keep_alive, 200, None, (), body, date, block=block, trailer=trailer)
    assert expected is not None
    head = framed(block, 200, version, keep_alive, len(body))
    assert head is not None
    before, after, dated = head
    if dated is None:
        got = before + trailer.encode() + after + body
    else:
        got = before + trailer.encode() + after + date().encode() + dated + body
    assert got == expected
    assert (dated is None) == any(k.lower() == "date" for k, _ in headers)


def test_framed_declines_a_status_without_a_body() -> None:
    from edge.cdn.server.wire import framed

    block = header_block([("Cache-Control", "max-age=60")])
    assert block is not None
    assert framed(block, 204, (1, 1), True, 0) is None and framed(block, 304, (1, 1), True, 0) is None
