"""The POP's origin client: one aiohttp ClientSession (connection pool, keep-alive) per POP process.

Contract:

* ``OriginClient.fetch(request, *, streaming_ok)`` sends ``request`` (already shaped for the origin by the
  origin-request step and possibly rewritten by an origin-request function) to ``request.origin`` and returns an
  ``EdgeResponse``. The body is ``bytes`` when it fits in ``stream_threshold`` bytes (or ``streaming_ok`` is
  false), otherwise a ``StreamedBody`` the caller must consume or ``aclose()``.
* Transport failures are mapped here and only here: ``OriginTimeout`` (-> 504) when the origin does not
  answer within its read timeout, ``OriginUnavailable`` (-> 502) for everything else (refused, reset,
  malformed response, unknown host).
* The origin domain is mapped to a local ``host:port`` (or a base URL) through ``host_map`` (settings), else
  a Lambda function URL domain (``<url-id>.lambda-url.<region>.on.aws``) to the control port that serves the
  local function URLs (``function_url_endpoint``, plain http; the Host header stays the function URL's domain,
  which is how the control port picks the function), else ``origin.connect_host`` or the domain itself; an S3
  origin mapped to a directory is answered from disk
  like S3 would (``edge.cdn.origin.directory``). Connections are attempted ``ConnectionAttempts`` times with the
  origin's ``ConnectionTimeout``; the simulated origin latency is an ``asyncio.sleep``.
* Requests to plain ``http://host:port`` origins go through a small keep-alive HTTP/1.1 client
  (``edge.cdn.origin.fast``, same contract, a fraction of aiohttp's CPU per request); https and URL-mapped
  origins and requests it declines (``Expect``, large bodies, ...) go through the aiohttp session.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
from yarl import URL

from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, Headers, ResponseMeta, S3Origin
from edge.cdn.origin.directory import fetch_from_directory
from edge.cdn.origin.fast import FastAddr, FastPool, serialize_head
from edge.cdn.origin.http1 import HOP_BY_HOP, RESPONSE_DROPPED, InterimSink

FUNCTION_URL_DOMAIN = re.compile(r"^[a-z0-9]{32}\.lambda-url\.[a-z0-9-]+\.on\.aws$")


def _has_hop_by_hop(pairs: Iterable[tuple[str, str]]) -> bool:
    for k, _ in pairs:
        lk = k.lower()
        if lk in HOP_BY_HOP or lk.startswith("proxy-"):
            return True
    return False


def strip_hop_by_hop(headers: Iterable[tuple[str, str]]) -> Headers:
    """Drop hop-by-hop headers and any header named in a Connection header (RFC 9110 §7.6.1). A new list."""
    pairs = list(headers)
    if not _has_hop_by_hop(pairs):
        return pairs  # the common case: nothing to strip
    lowered = [k.lower() for k, _ in pairs]
    named = set(HOP_BY_HOP)
    for n, (_, v) in zip(lowered, pairs, strict=True):
        if n == "connection":
            named.update(t.strip().lower() for t in v.split(",") if t.strip())
    return [p for n, p in zip(lowered, pairs, strict=True) if n not in named and not n.startswith("proxy-")]


def response_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    """An origin response's headers as the POP keeps them: hop-by-hop headers (RFC 9110 §7.6.1, including those
    named in Connection) and Content-Length dropped (the POP frames the body it sends itself)."""
    return _response_headers(headers)[0]


def _response_headers(headers: Iterable[tuple[str, str]]) -> tuple[Headers, bool]:
    """``response_headers(headers)`` and whether a Set-Cookie is among them."""
    out: Headers = []
    connection = set_cookie = False
    for k, v in headers:
        lk = k.lower()
        if lk in RESPONSE_DROPPED or lk.startswith("proxy-"):
            connection = connection or lk == "connection"
            continue
        if lk == "set-cookie":
            set_cookie = True
        out.append((k, v))
    if connection:  # rare: filter what the Connection header names too
        out = [(k, v) for k, v in strip_hop_by_hop(headers) if k.lower() != "content-length"]
    return out, set_cookie


class OriginClient(Protocol):
    """The seam between the pipeline and the network (tests may pass a fake)."""

    async def fetch(self, request: EdgeRequest, *, streaming_ok: bool = True,
                    on_interim: InterimSink | None = None) -> EdgeResponse: ...


class _PacedBody(aiohttp.BytesPayload):
    """A request body sent to the origin in pieces, each of which must leave within ``read_timeout``: an origin that
    stops reading (a full socket buffer) is a timeout, not a wait without end. aiohttp's ``sock_read`` bounds only
    what it reads, so ``stall`` (an ``asyncio.timeout`` around the request) is pushed back after every piece that
    drained and lifted once the whole body is out; the response is then bounded by ``sock_read`` as before.
    CloudFront documents one origin wait, the response timeout ("Origin response timeout",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/DownloadDistValuesOrigin.html#DownloadDistValuesOriginResponseTimeout),
    which this applies to the upload too."""

    PIECE = 1 << 16

    def __init__(self, body: bytes, stall: asyncio.Timeout, read_timeout: float) -> None:
        super().__init__(body)
        self._body, self._stall, self._read_timeout = memoryview(body), stall, read_timeout

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None) -> None:
        body = self._body if content_length is None else self._body[:content_length]
        loop = asyncio.get_running_loop()
        for start in range(0, len(body), self.PIECE):
            self._stall.reschedule(loop.time() + self._read_timeout)
            await writer.write(body[start:start + self.PIECE])
            await writer.drain()
        self._stall.reschedule(None)


class StreamedBody:
    """An origin body streamed through to the viewer; releases the origin connection when exhausted or
    closed. Iterate once; always ``aclose()`` (idempotent) if iteration is abandoned."""

    __slots__ = ("_chunk", "_closed", "_prefix", "_resp")

    def __init__(self, resp: aiohttp.ClientResponse, prefix: bytes = b"", chunk: int = 65536) -> None:
        self._resp = resp
        self._prefix = prefix
        self._chunk = chunk
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        try:
            if self._prefix:
                yield self._prefix
            async for chunk in self._resp.content.iter_chunked(self._chunk):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Headers are already on their way to the viewer: the only honest signal left is a broken body.
            raise OriginUnavailable(f"origin body broken: {exc!r}") from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._resp.release()


@dataclass(frozen=True, slots=True)
class OriginClientConfig:
    """How one POP talks to origins (read once from settings)."""

    stream_threshold: int = 1 << 20  # bodies larger than this are streamed through, never held in memory
    latency: float = 0.0  # simulated origin latency in seconds for this POP's region (0 = none)
    host_map: Mapping[str, str] = field(default_factory=dict)  # origin domain -> "host:port"
    connect_timeout: float = 10.0  # CloudFront's ConnectionTimeout default
    keepalive_timeout: float = 5.0  # OriginKeepaliveTimeout (pool-wide: one session per POP)
    pool_limit: int = 256  # max concurrent origin connections per POP
    # origin domain -> (ConnectionAttempts, ConnectionTimeout) from the distribution
    connect: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    # origin domain -> local directory serving an S3 origin (settings ``dir:PATH``)
    directories: Mapping[str, Path] = field(default_factory=dict)
    fast_http: bool = True  # plain-http origins through edge.cdn.origin.fast (False: everything via aiohttp)
    function_url_endpoint: str | None = None  # "host:port" serving local Lambda function URLs (the control port)


@dataclass(frozen=True, slots=True)
class _Route:
    """How to reach one origin: URL prefix (base + OriginPath), timeouts, attempts, or a local directory."""

    prefix: str
    read_timeout: float
    attempts: int
    connect_timeout: float
    timeout: aiohttp.ClientTimeout
    directory: Path | None
    fast: FastAddr | None  # a plain http://host:port origin the fast client can reach


def _fast_addr(base: str) -> FastAddr | None:
    """``http://host:port`` -> where the fast client connects and the Host aiohttp would send; else None."""
    if not base.startswith("http://"):
        return None
    hostport = base[len("http://"):]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or "/" in hostport:
        return None
    return FastAddr(host.strip("[]"), int(port), host if port == "80" else hostport)


class AiohttpOriginClient:
    """OriginClient over one ``aiohttp.ClientSession``; ``start()``/``close()`` are called by ``start_pop`` /
    ``RunningPop.stop``."""

    def __init__(self, config: OriginClientConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}
        self._routes: dict[CustomOrigin | S3Origin, _Route] = {}  # origin -> its route (see _route)
        self._fast: FastPool | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.pool_limit,
            keepalive_timeout=self.config.keepalive_timeout,
            use_dns_cache=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # a proxy passes bytes through untouched
            cookie_jar=aiohttp.DummyCookieJar(),  # never replay one viewer's Set-Cookie to another
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        if self.config.fast_http:
            self._fast = FastPool(keepalive_timeout=self.config.keepalive_timeout, limit=self.config.pool_limit,
                                  stream_threshold=self.config.stream_threshold)

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
            self._fast = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _base(self, origin: CustomOrigin | S3Origin) -> str:
        """``scheme://host:port`` (or a mapped base URL, possibly with a path prefix) where ``origin`` is reached."""
        mapped = self.config.host_map.get(origin.domain_name)
        if mapped is not None and mapped.startswith(("http://", "https://")):
            return mapped.rstrip("/")
        if (mapped is None and self.config.function_url_endpoint is not None
                and FUNCTION_URL_DOMAIN.match(origin.domain_name)):  # no [origins] entry of its own
            return f"http://{self.config.function_url_endpoint}"
        if mapped is None and isinstance(origin, CustomOrigin) and origin.connect_host:
            mapped = origin.connect_host
        scheme, port = (origin.protocol, origin.port) if isinstance(origin, CustomOrigin) else ("http", 80)
        if mapped is None:
            mapped = f"{origin.domain_name}:{port}"
        elif ":" not in mapped:
            mapped = f"{mapped}:{port}"
        return f"{scheme}://{mapped}"

    def target(self, origin: CustomOrigin | S3Origin, uri: str, querystring: str) -> URL:
        """The URL actually connected to: mapped host:port, OriginPath prefixed, path kept as received."""
        qs = f"?{querystring}" if querystring else ""
        return URL(f"{self._base(origin)}{origin.path or ''}{uri}{qs}", encoded=True)

    def _timeout(self, read_timeout: float, connect_timeout: float) -> aiohttp.ClientTimeout:
        t = self._timeouts.get((read_timeout, connect_timeout))
        if t is None:
            # connect: waiting for a pooled connection counts as connecting (one ConnectionTimeout per attempt)
            t = self._timeouts[(read_timeout, connect_timeout)] = aiohttp.ClientTimeout(
                total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout)
        return t

    def _route(self, origin: CustomOrigin | S3Origin) -> _Route:
        """Everything ``fetch`` derives from ``origin`` alone, kept per origin value. The distribution's origins are
        few and fixed, but an origin-request function may return a new origin with every request: the table is
        bounded (cleared when full), and rebuilding a route is cheap (string formatting and a lookup)."""
        route = self._routes.get(origin)
        if route is not None:
            return route
        read_timeout = origin.read_timeout if isinstance(origin, CustomOrigin) else 30.0
        attempts, connect_timeout = self.config.connect.get(origin.domain_name, (1, self.config.connect_timeout))
        base = self._base(origin)
        directory = self.config.directories.get(origin.domain_name)
        mapped = self.config.host_map.get(origin.domain_name, "")
        url_mapped = mapped.startswith(("http://", "https://"))
        route = _Route(prefix=f"{base}{origin.path or ''}", read_timeout=read_timeout, attempts=attempts,
                       connect_timeout=connect_timeout, timeout=self._timeout(read_timeout, connect_timeout),
                       directory=directory, fast=None if directory is not None or url_mapped else _fast_addr(base))
        if len(self._routes) >= 1024:  # origins rewritten per request by functions: bounded
            self._routes.clear()
        self._routes[origin] = route
        return route

    async def fetch(self, request: EdgeRequest, *, streaming_ok: bool = True,
                    on_interim: InterimSink | None = None) -> EdgeResponse:
        """Send ``request`` to ``request.origin``; see the module docstring for the contract. ``on_interim``
        receives the origin's interim responses (``103 Early Hints``...) on the fast client's path; aiohttp's
        client does not expose them, so https and URL-mapped origins' interim responses are dropped."""
        origin = request.origin
        session = self._session
        if origin is None or session is None:
            raise OriginUnavailable("no origin for request" if origin is None else "origin client not started")
        started = time.perf_counter()
        if self.config.latency > 0:
            await asyncio.sleep(self.config.latency)
        route = self._route(origin)
        if route.directory is not None:
            return await fetch_from_directory(route.directory, request, self.config.stream_threshold, started)
        headers = strip_hop_by_hop(request.headers)
        if origin.custom_headers:
            headers.extend(origin.custom_headers)
        qs = request.querystring
        fast = self._fast
        if route.fast is not None and fast is not None:
            target = f"{origin.path}{request.uri}?{qs}" if qs else f"{origin.path}{request.uri}"
            data = serialize_head(request.method, target, headers, request.body or b"", route.fast.host_header)
            if data is not None:
                return await fast.fetch(request, data, route.fast, read_timeout=route.read_timeout,
                                        attempts=route.attempts, connect_timeout=route.connect_timeout,
                                        streaming_ok=streaming_ok, started=started, domain=origin.domain_name,
                                        on_interim=on_interim)
        url = URL(f"{route.prefix}{request.uri}?{qs}" if qs else f"{route.prefix}{request.uri}", encoded=True)
        attempts = route.attempts
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(None) as stall:
                    body = request.body
                    paced = _PacedBody(body, stall, route.read_timeout) if body else None
                    resp = await session.request(
                        request.method, url, headers=headers, data=paced, timeout=route.timeout,
                        allow_redirects=False, compress=None,
                    )
                break
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # CloudFront retries the connection ConnectionAttempts times before giving up
                if attempt < attempts:
                    continue
                if isinstance(exc, aiohttp.ConnectionTimeoutError):
                    raise OriginTimeout(f"origin {origin.domain_name}: no connection after {attempts} "
                                        f"attempt(s) of {route.connect_timeout}s") from exc
                raise OriginUnavailable(f"origin {origin.domain_name} unreachable: {exc!r}") from exc
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                if stall.expired():
                    raise OriginTimeout(f"origin {origin.domain_name} took no request body bytes for "
                                        f"{route.read_timeout}s") from exc
                raise OriginTimeout(
                    f"origin {origin.domain_name} did not answer within {route.read_timeout}s") from exc
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                raise OriginUnavailable(f"origin {origin.domain_name} unreachable: {exc!r}") from exc
        try:
            return await self._read(resp, streaming_ok and request.method != "HEAD", started, route.read_timeout,
                                    origin.domain_name)
        except BaseException:
            resp.release()
            raise

    async def websocket(self, origin: CustomOrigin | S3Origin, uri: str, querystring: str,
                        headers: list[tuple[str, str]], protocols: tuple[str, ...]) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket to ``origin`` (``ws://``/``wss://`` by its protocol, mapped like :meth:`fetch`), the
        handshake bounded by the origin's connection attempts and read timeout. Raises
        ``aiohttp.WSServerHandshakeError`` when the origin answers without upgrading, ``OriginTimeout`` /
        ``OriginUnavailable`` when it cannot be reached (edge.cdn.server.websocket)."""
        session = self._session
        if session is None:
            raise OriginUnavailable("origin client not started")
        route = self._route(origin)
        if route.directory is not None:
            raise OriginUnavailable(f"origin {origin.domain_name} is a local directory: no WebSocket")
        base = route.prefix
        qs = f"?{querystring}" if querystring else ""
        url = URL(f"ws{base[4:]}{uri}{qs}" if base.startswith("http") else f"{base}{uri}{qs}", encoded=True)
        limit = route.connect_timeout * route.attempts + route.read_timeout
        try:
            async with asyncio.timeout(limit):
                return await session.ws_connect(url, headers=headers, protocols=protocols, autoping=True)
        except aiohttp.WSServerHandshakeError:
            raise
        except TimeoutError as exc:
            raise OriginTimeout(f"origin {origin.domain_name}: no WebSocket handshake within {limit}s") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise OriginUnavailable(f"origin {origin.domain_name} unreachable: {exc!r}") from exc

    @staticmethod
    async def _buffer(resp: aiohttp.ClientResponse, limit: int | None) -> bytes | StreamedBody:
        """Read the body into memory, switching to a StreamedBody once it grows beyond ``limit``."""
        buf = bytearray()
        while chunk := await resp.content.read(65536):
            buf += chunk
            if limit is not None and len(buf) > limit:
                return StreamedBody(resp, bytes(buf))
        resp.release()
        return bytes(buf)

    async def _read(
        self, resp: aiohttp.ClientResponse, streaming_ok: bool, started: float, read_timeout: float, domain: str
    ) -> EdgeResponse:
        headers, set_cookie = _response_headers(resp.headers.items())
        limit = self.config.stream_threshold
        length = resp.content_length
        if resp.method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            resp.release()  # no body by definition (RFC 9110 §6.4.1); Content-Length describes the GET
            return EdgeResponse(status=resp.status, headers=headers, body=b"", status_description=resp.reason or "",
                                meta=ResponseMeta(origin_seconds=time.perf_counter() - started,
                                                  content_length=length, set_cookie=set_cookie))
        try:
            if streaming_ok and length is not None and length > limit:
                body: bytes | StreamedBody = StreamedBody(resp)
            elif length is not None:
                body = await resp.read()  # known and small enough: one read
                resp.release()
            else:
                body = await self._buffer(resp, limit if streaming_ok else None)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise OriginTimeout(f"origin {domain} stalled for {read_timeout}s while sending the body") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise OriginUnavailable(f"origin {domain} sent a broken body: {exc!r}") from exc
        if isinstance(body, bytes) and length is not None and len(body) != length:
            raise OriginUnavailable(f"origin {domain} body length {len(body)} != Content-Length {length}")
        meta = ResponseMeta(origin_seconds=time.perf_counter() - started, content_length=length,
                            set_cookie=set_cookie, streamed=not isinstance(body, bytes))
        return EdgeResponse(status=resp.status, headers=headers, body=body, status_description=resp.reason or "",
                            meta=meta)
