"""A small keep-alive HTTP/1.1 client for plain-http origins: the POP's hot path on a cache miss.

``AiohttpOriginClient`` (``edge.cdn.origin_client``) owns one ``FastPool`` and sends through it every request
to an ``http://host:port`` origin that ``serialize_head`` accepts; everything else (https or URL-mapped origins,
``Expect``, request bodies above ``MAX_FAST_BODY`` or with their own Content-Length, unusual methods or
targets, header values with CR/LF) goes through aiohttp exactly as before.

Contract of ``FastPool.fetch`` (same as ``OriginClient.fetch``): an ``EdgeResponse`` whose body is ``bytes``
(up to ``stream_threshold``, or any size when streaming is not allowed) or a ``FastStreamedBody`` the caller
consumes or ``aclose()``s; response headers without hop-by-hop fields and Content-Length, original case and
order kept; ``OriginUnavailable`` for refused/reset connections and malformed responses, ``OriginTimeout``
when a read waits longer than the origin's read timeout (or every connection attempt times out).

Connections: one pool per POP, LIFO reuse per ``(host, port)``, idle ones closed after ``keepalive_timeout``,
at most ``limit`` open at once (further requests wait). A pooled connection found closed before any byte of
the response arrived is retried once on a fresh connection for idempotent methods (RFC 9110 §9.2.2).
Response framing follows RFC 9112 §6.3: no body for HEAD/204/304, chunked, Content-Length, or read to close.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers

__all__ = ["FastAddr", "FastPool", "FastStreamedBody", "MAX_FAST_BODY", "parse_head", "serialize_head"]

MAX_FAST_BODY = 65536  # larger request bodies go through aiohttp
MAX_HEAD = 65536  # a response head larger than this is malformed for us (aiohttp allows 8190 per line)
_HIGH_WATER = 1 << 18  # pause reading a streamed body once this much is buffered and unconsumed
_FAST_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NO_LENGTH_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # aiohttp adds Content-Length: 0 to the others
# RFC 9110 §7.6.1 hop-by-hop fields (as edge.cdn.origin_client.HOP_BY_HOP) plus Content-Length: the POP frames
# the body it sends itself. A test keeps the two sets equal.
RESPONSE_DROPPED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length"}
)


class _Malformed(Exception):
    """The origin's response cannot be parsed (-> OriginUnavailable)."""


class _Closed(Exception):
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


class _Conn(asyncio.Protocol):
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
        self.transport = transport  # type: ignore[assignment]

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
        self.closed = True
        if self.transport is not None:
            self.transport.close()


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
    try:
        head = (text + "\r\n").encode("utf-8")
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
    """Parse a status line and header fields (without the final CRLFCRLF); raises ``_Malformed``."""
    text = raw.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    n = len(lines) - 1
    if text.count("\n") != n or text.count("\r") != n:
        raise _Malformed("bare CR or LF in the response head")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise _Malformed(f"bad status line {lines[0][:80]!r}")
    out: Headers = []
    set_cookie = False
    lengths: list[str] = []
    te: str | None = None
    connection: list[str] = []
    for i in range(1, len(lines)):
        name, sep, value = lines[i].partition(":")
        if not sep or not name or name[-1] in " \t" or name[0] in " \t":
            raise _Malformed(f"bad header line {lines[i][:80]!r}")
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
            raise _Malformed(f"conflicting Content-Length {lengths}")
        value = values.pop()
        if not (value.isascii() and value.isdigit()):
            raise _Malformed(f"bad Content-Length {value!r}")
        length = int(value)
    keep = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return Head(version, int(code), reason, out, set_cookie, length, te, keep)


async def _read_head(conn: _Conn, timeout: float) -> Head:
    """The next final (non-1xx) response head from ``conn``; raises _Closed, _Malformed or TimeoutError."""
    buf = conn.buf
    start = 0
    while True:
        i = buf.find(b"\r\n\r\n", start)
        if i < 0:
            if len(buf) > MAX_HEAD:
                raise _Malformed("response head too large")
            if conn.closed:
                raise _Closed(empty=not buf)
            start = max(0, len(buf) - 3)
            await conn.fill(timeout)
            continue
        head = parse_head(bytes(buf[:i]))
        del buf[:i + 4]
        if head.status >= 200:
            return head
        if head.status == 101:
            raise _Malformed("unsolicited 101 Switching Protocols")
        start = 0  # 1xx informational: the final response follows


async def _read_exact(conn: _Conn, n: int, timeout: float) -> bytes:
    buf = conn.buf
    while len(buf) < n:
        if conn.closed:
            raise _Closed(empty=False)
        await conn.fill(timeout)
    data = bytes(buf[:n])
    del buf[:n]
    return data


async def _chunks(conn: _Conn, head: Head, timeout: float, piece: int = 65536) -> AsyncIterator[bytes]:
    """The body of a response as it arrives (chunked, by Content-Length or to the connection's close)."""
    buf = conn.buf
    te = head.transfer_encoding
    if te is not None and te.rsplit(",", 1)[-1].strip().lower() == "chunked":
        while True:
            while (i := buf.find(b"\r\n")) < 0:
                if len(buf) > 4096:
                    raise _Malformed("chunk size line too long")
                if conn.closed:
                    raise _Closed(empty=False)
                await conn.fill(timeout)
            size_text = bytes(buf[:i]).split(b";", 1)[0].strip()
            del buf[:i + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Malformed(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while True:  # trailer fields, dropped, up to the empty line
                    while (i := buf.find(b"\r\n")) < 0:
                        if conn.closed:
                            raise _Closed(empty=False)
                        await conn.fill(timeout)
                    del buf[:i + 2]
                    if i == 0:
                        return
            remaining = size
            while remaining:
                if not buf:
                    if conn.closed:
                        raise _Closed(empty=False)
                    await conn.fill(timeout)
                    continue
                data = bytes(buf[:remaining])
                del buf[:len(data)]
                remaining -= len(data)
                yield data
            if (await _read_exact(conn, 2, timeout)) != b"\r\n":
                raise _Malformed("chunk not followed by CRLF")
    elif te is None and head.content_length is not None:
        remaining = head.content_length
        while remaining:
            if not buf:
                if conn.closed:
                    raise _Closed(empty=False)
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


class FastStreamedBody:
    """An origin body streamed through to the viewer; returns the connection to the pool when exhausted,
    closes it when abandoned. Iterate once; always ``aclose()`` (idempotent) if iteration is abandoned."""

    __slots__ = ("_pool", "_conn", "_chunks", "_prefix", "_keep", "_done", "_closed")

    def __init__(self, pool: FastPool, conn: _Conn, chunks: AsyncIterator[bytes], prefix: bytes, keep: bool) -> None:
        self._pool, self._conn, self._chunks, self._prefix, self._keep = pool, conn, chunks, prefix, keep
        self._done = self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            if self._prefix:
                yield self._prefix
            async for chunk in self._chunks:
                yield chunk
            self._done = True
        except (_Closed, _Malformed, TimeoutError, OSError) as exc:
            # Headers are already on their way to the viewer: the only honest signal left is a broken body.
            raise OriginUnavailable(f"origin body broken: {exc!r}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._chunks.aclose()  # type: ignore[attr-defined]
            self._pool.release(self._conn, self._keep and self._done)


class FastPool:
    """Keep-alive connections to plain-http origins; ``close()`` on shutdown. See the module docstring."""

    def __init__(self, *, keepalive_timeout: float, limit: int, stream_threshold: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keepalive_timeout = keepalive_timeout
        self.limit = limit
        self.stream_threshold = stream_threshold
        self._clock = clock
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._all: set[_Conn] = set()  # every open connection (idle or busy), closed by close()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def open_connections(self) -> int:
        return len(self._all)

    def close(self) -> None:
        """Close every connection (busy ones too) and stop the idle sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
        for w in self._waiters:
            if not w.done():
                w.set_result(None)

    # --- connections ------------------------------------------------------------------------------------
    def _pooled(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = self._clock()
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.buf and now - conn.idle_since < self.keepalive_timeout:
                return conn
            self._drop(conn)
        return None

    async def _acquire(self, addr: FastAddr, attempts: int, connect_timeout: float, domain: str
                       ) -> tuple[_Conn, bool]:
        """(connection, reused): a pooled one, else a new one once the pool has room (waiting for it)."""
        key = (addr.host, addr.port)
        while True:
            conn = self._pooled(key)
            if conn is not None:
                return conn, True
            if len(self._all) < self.limit or self._evict_idle():
                return await self._connect(addr, attempts, connect_timeout, domain), False
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)

    async def _connect(self, addr: FastAddr, attempts: int, connect_timeout: float, domain: str) -> _Conn:
        loop = asyncio.get_running_loop()
        conn = _Conn(loop, (addr.host, addr.port))
        self._all.add(conn)  # reserves a slot while connecting
        timed_out = False
        last: BaseException | None = None
        try:
            for _ in range(max(attempts, 1)):
                try:
                    async with asyncio.timeout(connect_timeout):
                        await loop.create_connection(lambda: conn, addr.host, addr.port)
                    return conn
                except TimeoutError as exc:
                    timed_out, last = True, exc
                except OSError as exc:  # refused, unreachable, unknown host: CloudFront retries at once
                    timed_out, last = False, exc
        except BaseException:
            self._drop(conn)
            raise
        self._drop(conn)
        if timed_out:
            raise OriginTimeout(f"origin {domain}: no connection after {attempts} attempt(s) of {connect_timeout}s")
        raise OriginUnavailable(f"origin {domain} unreachable: {last!r}")

    def _evict_idle(self) -> bool:
        """Close one idle connection (any origin) to make room; False when none is idle."""
        for idle in self._idle.values():
            if idle:
                self._drop(idle.pop(0))
                return True
        return False

    def _drop(self, conn: _Conn) -> None:
        conn.close()
        if conn in self._all:
            self._all.discard(conn)
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def release(self, conn: _Conn, keep: bool) -> None:
        """Return ``conn`` to the pool (``keep``: its response was read completely and allows reuse)."""
        if not keep or conn.closed or conn.buf or conn not in self._all:
            self._drop(conn)
            return
        conn.idle_since = self._clock()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake()  # a waiter takes it (same origin) or evicts it to make room (another origin)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.keepalive_timeout, self._sweep)

    def _sweep(self) -> None:
        """Close idle connections older than the keep-alive timeout; re-arm while any stay idle."""
        self._sweeper = None
        now = self._clock()
        left = False
        for idle in self._idle.values():
            for conn in [c for c in idle if c.closed or now - c.idle_since >= self.keepalive_timeout]:
                idle.remove(conn)
                self._drop(conn)
            left = left or bool(idle)
        if left:
            self._sweeper = asyncio.get_running_loop().call_later(self.keepalive_timeout, self._sweep)

    # --- requests ---------------------------------------------------------------------------------------
    async def fetch(self, request: EdgeRequest, data: bytes, addr: FastAddr, *, read_timeout: float, attempts: int,
                    connect_timeout: float, streaming_ok: bool, started: float, domain: str) -> EdgeResponse:
        """Send ``data`` (from ``serialize_head``) for ``request`` and read the response (module contract)."""
        conn, reused = await self._acquire(addr, attempts, connect_timeout, domain)
        retry = reused and request.method in _IDEMPOTENT
        try:
            while True:
                try:
                    conn.transport.write(data)  # type: ignore[union-attr]
                    head = await _read_head(conn, read_timeout)
                    break
                except _Closed as exc:
                    if not (retry and exc.empty):
                        raise
                retry = False  # a stale keep-alive connection: once more on a fresh one
                self._drop(conn)
                conn = await self._connect(addr, attempts, connect_timeout, domain)
            return await self._response(conn, head, request.method, read_timeout, streaming_ok, started, domain)
        except TimeoutError as exc:
            self._drop(conn)
            raise OriginTimeout(f"origin {domain} did not answer within {read_timeout}s") from exc
        except (_Closed, _Malformed, OSError) as exc:
            self._drop(conn)
            raise OriginUnavailable(f"origin {domain}: {exc}") from exc
        except BaseException:
            self._drop(conn)
            raise

    async def _response(self, conn: _Conn, head: Head, method: str, read_timeout: float, streaming_ok: bool,
                        started: float, domain: str) -> EdgeResponse:
        status, length = head.status, head.content_length
        keep = head.keep_alive
        body: bytes | FastStreamedBody
        if method == "HEAD" or status in (204, 304):
            body = b""  # no body by definition (RFC 9110 §6.4.1); Content-Length describes the GET
        elif head.transfer_encoding is None and length is not None and not (
                streaming_ok and length > self.stream_threshold):
            buf = conn.buf  # the common case, inline: a known, small length
            try:
                while len(buf) < length:
                    if conn.closed:
                        raise _Closed(empty=False)
                    await conn.fill(read_timeout)
            except TimeoutError as exc:
                raise OriginTimeout(f"origin {domain} stalled for {read_timeout}s while sending the body") from exc
            except _Closed as exc:
                raise OriginUnavailable(f"origin {domain} sent a broken body: fewer than {length} bytes") from exc
            if len(buf) == length:
                body = bytes(buf)
                buf.clear()
            else:
                body = bytes(buf[:length])
                del buf[:length]
        else:
            if head.transfer_encoding is not None:
                keep = keep and length is None  # both framings: RFC 9112 §6.3 says close afterwards
                length = None
            elif length is None:
                keep = False  # read to close
            body = await self._body(conn, head, keep, read_timeout, streaming_ok, domain)
            if not isinstance(body, bytes):
                return self._edge(head, body, started, length, streamed=True)
        self.release(conn, keep)
        return self._edge(head, body, started, length, streamed=False)

    async def _body(self, conn: _Conn, head: Head, keep: bool, read_timeout: float, streaming_ok: bool,
                    domain: str) -> bytes | FastStreamedBody:
        chunks = _chunks(conn, head, read_timeout)
        limit = self.stream_threshold
        if streaming_ok and head.content_length is not None and head.transfer_encoding is None:
            return FastStreamedBody(self, conn, chunks, b"", keep)  # known to be above the threshold
        buf = bytearray()
        try:
            async for chunk in chunks:
                buf += chunk
                if streaming_ok and len(buf) > limit:
                    return FastStreamedBody(self, conn, chunks, bytes(buf), keep)
        except TimeoutError as exc:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise OriginTimeout(f"origin {domain} stalled for {read_timeout}s while sending the body") from exc
        except (_Closed, _Malformed, OSError) as exc:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise OriginUnavailable(f"origin {domain} sent a broken body: {exc}") from exc
        return bytes(buf)

    @staticmethod
    def _edge(head: Head, body: bytes | FastStreamedBody, started: float, length: int | None,
              streamed: bool) -> EdgeResponse:
        return EdgeResponse(status=head.status, headers=head.headers, body=body, status_description=head.reason,
                            extra={"origin_seconds": time.perf_counter() - started, "streamed": streamed,
                                   "content_length": length, "set_cookie": head.set_cookie})
