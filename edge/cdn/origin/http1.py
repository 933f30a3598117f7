"""HTTP/1.1 on the wire for the fast origin client (``edge.cdn.origin.fast``): the connection protocol, request
serialisation and response parsing.

* ``serialize_head(method, target, headers, body, host_header)`` -> the request as one buffer, or ``None`` when
  aiohttp must send it (Expect, large bodies, a caller-given Content-Length, unusual methods/targets, CR/LF in
  a header: aiohttp refuses those, so the POP still answers 502 for them).
* ``parse_head(raw)`` -> ``Head``: status line and header fields; headers filtered as the POP keeps them
  (``RESPONSE_DROPPED``: the hop-by-hop set ``HOP_BY_HOP`` plus Content-Length, and what Connection names),
  original case and order; raises ``Malformed``.
* ``Conn`` (an ``asyncio.Protocol``) buffers what arrives; ``read_head``/``body_chunks`` read a response from
  it per RFC 9112 §6.3 (no body for HEAD/204/304, chunked, Content-Length, or to the connection's close),
  raising ``Closed``, ``Malformed`` or ``TimeoutError`` (a wait longer than the read timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from edge.cdn.models import Headers

__all__ = ["HOP_BY_HOP", "IDEMPOTENT", "MAX_FAST_BODY", "RESPONSE_DROPPED", "Closed", "Conn", "FastAddr", "Head",
           "InterimSink", "Malformed", "body_chunks", "parse_head", "read_head", "serialize_head"]

MAX_FAST_BODY = 65536  # larger request bodies go through aiohttp
MAX_HEAD = 65536  # a response head larger than this is malformed for us (aiohttp allows 8190 per line)
_HIGH_WATER = 1 << 18  # pause reading a streamed body once this much is buffered and unconsumed
_FAST_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NO_LENGTH_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # aiohttp adds Content-Length: 0 to the others
# RFC 9110 §7.6.1 hop-by-hop fields plus the legacy Proxy-* family; names listed in Connection are added per message.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"}
)
# Receives an origin's interim (1xx) response head while the final response is awaited (see ``read_head``).
InterimSink = Callable[["Head"], Awaitable[None]]
# What the POP drops from an origin response: hop-by-hop fields and Content-Length (it frames the body it sends).
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length"}


class Malformed(Exception):
    """The origin's response cannot be parsed (-> OriginUnavailable)."""


class Closed(Exception):
    """The connection closed; ``empty`` when not one byte of the response had arrived (a stale keep-alive)."""

    def __init__(self, empty: bool) -> None:
        super().__init__("connection closed by the origin")
        self.empty = empty


@dataclass(frozen=True, slots=True)
class FastAddr:
    """Where a plain-http origin is reached: connect address and the Host value aiohttp would send."""

    host: str
    port: int
    host_header: str


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class Conn(asyncio.Protocol):
    """One origin connection: bytes received accumulate in ``buf``; ``fill`` waits for more."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, int]) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports: no asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.buf += data
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)
        if len(self.buf) > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True  # a slow consumer of a streamed body: let TCP push back on the origin
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self.closed = True
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    async def fill(self, timeout: float) -> None:
        """Wait until more bytes arrive or the connection closes; ``TimeoutError`` after ``timeout`` s."""
        if self.closed:
            return
        if self.paused:
            self.paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        fut = self.waiter = self.loop.create_future()
        handle = self.loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            handle.cancel()
            self.waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._lost()  # a reader waiting on this connection learns at once


def serialize_head(method: str, target: str, headers: Headers, body: bytes, host_header: str) -> bytes | None:
    """The request head (and body) as one buffer, or ``None`` when aiohttp must send this request instead.

    Headers go out in the given order and case; Host is added first when missing and Content-Length as aiohttp
    adds it (the body's length; ``0`` for methods other than GET/HEAD/OPTIONS)."""
    if method not in _FAST_METHODS or len(body) > MAX_FAST_BODY or " " in target or not target.isprintable() \
            or not target.isascii():
        return None
    text = f"{method} {target} HTTP/1.1\r\n" + "".join([f"{k}: {v}\r\n" for k, v in headers])
    lowered = text.lower()
    lines = len(headers) + 1
    if text.count("\n") != lines or text.count("\r") != lines or "\r\nexpect:" in lowered:
        return None  # CR/LF inside a header (aiohttp refuses it) or Expect (aiohttp's handshake)
    if "\r\nhost:" not in lowered:
        text = f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n" + text[text.index("\n") + 1:]
    if body or method not in _NO_LENGTH_METHODS:
        if "\r\ncontent-length:" in lowered:
            return None  # a caller-given length: aiohttp's semantics, not ours
        text += f"Content-Length: {len(body)}\r\n"
    try:  # a header byte that was not UTF-8 (kept by the viewer-side parser as a lone surrogate) goes out as received
        head = (text + "\r\n").encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    return head + body if body else head


@dataclass(slots=True)
class Head:
    """A parsed response head: headers already filtered for the POP (see ``RESPONSE_DROPPED``)."""

    version: str
    status: int
    reason: str
    headers: Headers
    set_cookie: bool
    content_length: int | None
    transfer_encoding: str | None
    keep_alive: bool


def parse_head(raw: bytes) -> Head:
    """Parse a status line and header fields (without the final CRLFCRLF); raises ``Malformed``."""
    text = raw.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    n = len(lines) - 1
    if text.count("\n") != n or text.count("\r") != n:
        raise Malformed("bare CR or LF in the response head")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise Malformed(f"bad status line {lines[0][:80]!r}")
    out: Headers = []
    set_cookie = False
    lengths: list[str] = []
    te: str | None = None
    connection: list[str] = []
    for i in range(1, len(lines)):
        name, sep, value = lines[i].partition(":")
        if not sep or not name or name[-1] in " \t" or name[0] in " \t":
            raise Malformed(f"bad header line {lines[i][:80]!r}")
        value = value.strip(" \t")
        lk = name.lower()
        if lk in RESPONSE_DROPPED or lk.startswith("proxy-"):
            if lk == "content-length":
                lengths.append(value)
            elif lk == "transfer-encoding":
                te = f"{te}, {value}" if te else value
            elif lk == "connection":
                connection.extend(t.strip().lower() for t in value.split(","))
            continue
        if lk == "set-cookie":
            set_cookie = True
        out.append((name, value))
    if connection:  # rare: drop what Connection names too (RFC 9110 §7.6.1)
        named = set(connection)
        out = [p for p in out if p[0].lower() not in named]
    length = None
    if lengths:
        values = {v.strip() for joined in lengths for v in joined.split(",")}
        if len(values) != 1:
            raise Malformed(f"conflicting Content-Length {lengths}")
        value = values.pop()
        if not (value.isascii() and value.isdigit()):
            raise Malformed(f"bad Content-Length {value!r}")
        length = int(value)
    keep = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return Head(version=version, status=int(code), reason=reason, headers=out, set_cookie=set_cookie,
                content_length=length, transfer_encoding=te, keep_alive=keep)


async def read_head(conn: Conn, timeout: float, on_interim: InterimSink | None = None) -> Head:
    """The next final (non-1xx) response head from ``conn``; raises Closed, Malformed or TimeoutError.

    An interim response other than ``100 Continue`` (which answers the client's own ``Expect``) is handed to
    ``on_interim`` as it arrives, hop-by-hop fields already dropped: a proxy forwards 1xx responses it did not ask
    for (RFC 9110 §15.2), e.g. ``103 Early Hints`` (RFC 8297)."""
    buf = conn.buf
    start = 0
    while True:
        i = buf.find(b"\r\n\r\n", start)
        if i < 0:
            if len(buf) > MAX_HEAD:
                raise Malformed("response head too large")
            if conn.closed:
                raise Closed(empty=not buf)
            start = max(0, len(buf) - 3)
            await conn.fill(timeout)
            continue
        head = parse_head(bytes(buf[:i]))
        del buf[:i + 4]
        if head.status >= 200:
            return head
        if head.status == 101:
            raise Malformed("unsolicited 101 Switching Protocols")
        if on_interim is not None and head.status != 100:
            await on_interim(head)
        start = 0  # 1xx informational: the final response follows


async def read_exact(conn: Conn, n: int, timeout: float) -> bytes:
    buf = conn.buf
    while len(buf) < n:
        if conn.closed:
            raise Closed(empty=False)
        await conn.fill(timeout)
    data = bytes(buf[:n])
    del buf[:n]
    return data


async def body_chunks(conn: Conn, head: Head, timeout: float, piece: int = 65536) -> AsyncGenerator[bytes, None]:
    """The body of a response as it arrives (chunked, by Content-Length or to the connection's close)."""
    buf = conn.buf
    te = head.transfer_encoding
    if te is not None and te.rsplit(",", 1)[-1].strip().lower() == "chunked":
        while True:
            while (i := buf.find(b"\r\n")) < 0:
                if len(buf) > 4096:
                    raise Malformed("chunk size line too long")
                if conn.closed:
                    raise Closed(empty=False)
                await conn.fill(timeout)
            size_text = bytes(buf[:i]).split(b";", 1)[0].strip()
            del buf[:i + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise Malformed(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while True:  # trailer fields, dropped, up to the empty line
                    while (i := buf.find(b"\r\n")) < 0:
                        if conn.closed:
                            raise Closed(empty=False)
                        await conn.fill(timeout)
                    del buf[:i + 2]
                    if i == 0:
                        return
            remaining = size
            while remaining:
                if not buf:
                    if conn.closed:
                        raise Closed(empty=False)
                    await conn.fill(timeout)
                    continue
                data = bytes(buf[:remaining])
                del buf[:len(data)]
                remaining -= len(data)
                yield data
            if (await read_exact(conn, 2, timeout)) != b"\r\n":
                raise Malformed("chunk not followed by CRLF")
    elif te is None and head.content_length is not None:
        remaining = head.content_length
        while remaining:
            if not buf:
                if conn.closed:
                    raise Closed(empty=False)
                await conn.fill(timeout)
                continue
            data = bytes(buf[:min(remaining, piece)])
            del buf[:len(data)]
            remaining -= len(data)
            yield data
    else:
        while True:
            if buf:
                data = bytes(buf)
                buf.clear()
                yield data
            elif conn.closed:
                return
            else:
                await conn.fill(timeout)
