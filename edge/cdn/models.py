"""The per-request records the data plane passes between its parts (no aiohttp types here).

Headers are kept as an ordered list of ``(name, value)`` pairs, one per occurrence, with the name in the
case it was received (Lambda@Edge exposes both the lowercase key and the original ``key``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edge.cdn.server.wire import HeaderBlock

Headers = list[tuple[str, str]]


class BodyStream(Protocol):
    """A body streamed through instead of held in memory (the origin clients' streamed bodies, a directory
    origin's file chunks): iterated once; ``aclose()`` releases what it holds if it is abandoned (idempotent)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


def header_get(headers: Iterable[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    """First value of ``name`` (case-insensitive)."""
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return default


def header_all(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


def header_set(headers: Headers, name: str, value: str) -> None:
    """Replace every occurrence of ``name`` by one ``name: value`` (appended if absent)."""
    lname = name.lower()
    headers[:] = [(k, v) for k, v in headers if k.lower() != lname]
    headers.append((name, value))


def header_del(headers: Headers, name: str) -> None:
    lname = name.lower()
    headers[:] = [(k, v) for k, v in headers if k.lower() != lname]


@dataclass(frozen=True, slots=True)
class CustomOrigin:
    """A custom (HTTP) origin, as CloudFront's ``CustomOriginConfig`` + Lambda@Edge ``origin.custom``."""

    domain_name: str
    port: int = 80
    protocol: str = "http"  # "http" | "https"
    path: str = ""  # OriginPath: "" or "/prefix" (no trailing slash)
    read_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    custom_headers: tuple[tuple[str, str], ...] = ()
    ssl_protocols: tuple[str, ...] = ("TLSv1.2",)
    origin_id: str = ""  # the distribution's Origin Id, when it came from the distribution
    connect_host: str | None = None  # where to actually connect (local mapping), defaults to domain_name


@dataclass(frozen=True, slots=True)
class S3Origin:
    """An S3 origin (Lambda@Edge ``origin.s3``); served locally from a directory or URL mapping."""

    domain_name: str
    path: str = ""
    auth_method: str = "none"  # "origin-access-identity" | "none"
    region: str = ""
    custom_headers: tuple[tuple[str, str], ...] = ()
    origin_id: str = ""


Origin = CustomOrigin | S3Origin


@dataclass(slots=True)
class EdgeRequest:
    """The viewer request as it walks the pipeline (request triggers may rewrite uri/querystring/headers)."""

    method: str
    uri: str  # path only, as received (percent-encoded), starts with "/"
    querystring: str  # raw, without "?"; "" when absent
    headers: Headers
    client_ip: str
    body: bytes | None = None
    origin: Origin | None = None  # set from the matched behavior's target origin; origin-request may change it
    client_port: int = 0  # the viewer's source port (CloudFront-Viewer-Address)
    scheme: str = "http"  # "https" when it came through the POP's HTTPS listener
    http_version: tuple[int, int] = (1, 1)  # the viewer's HTTP version


def rewritten(original: EdgeRequest, uri: str, querystring: str, headers: Headers) -> EdgeRequest:
    """The request the pipeline continues with after a viewer-request function (a CloudFront function or a
    Lambda@Edge one without IncludeBody): what the function may change (uri, query string, headers and cookies) from
    its result, the rest - method, client IP, body, origin, and the viewer's port, scheme and HTTP version, which
    CloudFront's viewer headers report later (CloudFront-Viewer-Address, CloudFront-Forwarded-Proto,
    CloudFront-Viewer-Http-Version) - as the viewer sent it. Positional: keywords to a class go through a kwargs dict
    on Python 3.11."""
    return EdgeRequest(original.method, uri, querystring, headers, original.client_ip, original.body, original.origin,
                       original.client_port, original.scheme, original.http_version)


@dataclass(slots=True)
class ResponseMeta:
    """What the POP knows about a response besides its status, headers and body; each field has one writer."""

    origin_seconds: float = 0.0  # the origin client: how long the origin took (Server-Timing ``origin``)
    content_length: int | None = None  # the origin's Content-Length (streamed bodies, HEAD), or the length of
    # the GET body a HEAD answered from the cache stands for (the serving step)
    set_cookie: bool = True  # the origin client: whether the origin sent a Set-Cookie (True when unknown)
    streamed: bool = False  # the origin client: the body is streamed through, not held in memory
    generated_by: str = ""  # the trigger runner: event type of the function that generated this response
    clean: bool = False  # the serving step: headers prepared from a cache entry, without POP-owned names
    header_block: HeaderBlock | None = None  # the serving step: those headers serialised (once per cache entry)


@dataclass(slots=True)
class EdgeResponse:
    """A response: from the origin, the cache, or generated by a function or by the POP itself.

    ``body`` is bytes for anything held in memory, or a :class:`BodyStream` of chunks for bodies streamed
    through (above the cache's size threshold).
    """

    status: int
    headers: Headers
    body: bytes | BodyStream = b""
    status_description: str = ""
    meta: ResponseMeta = field(default_factory=ResponseMeta)

    async def aclose(self) -> None:
        """Release a streamed body that will not be sent (its origin connection); idempotent, a no-op for bytes."""
        if not isinstance(self.body, bytes):
            await self.body.aclose()
