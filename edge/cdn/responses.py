"""CloudFront's viewer-facing response decoration: X-Cache values, Via/X-Amz-Cf-Pop/X-Amz-Cf-Id, Age,
Server-Timing, and the CloudFront HTML error page (contract §4.2, §5.5).

Everything here is pure and cheap: a ``PopIdentity`` is built once per POP process and holds the
precomputed constant headers, so the hit path only adds the per-request values.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from email.utils import formatdate
from html import escape

from edge.cdn.errors import EdgeError, RedirectToHttps, page_line
from edge.cdn.models import EdgeResponse, Headers

HIT = "Hit from cloudfront"
MISS = "Miss from cloudfront"
REFRESH_HIT = "RefreshHit from cloudfront"
ERROR = "Error from cloudfront"
LAMBDA_GENERATED = "LambdaGeneratedResponse from cloudfront"

# Server-Timing `cdn-cache` descriptions, keyed by X-Cache value.
_CACHE_DESC = {
    HIT: "HIT",
    MISS: "MISS",
    REFRESH_HIT: "REFRESH_HIT",
    ERROR: "ERROR",
    LAMBDA_GENERATED: "LAMBDA_GENERATED",
}

_TIMING_PREFIX = {x: f"cdn-cache;desc={d}, edge;dur=" for x, d in _CACHE_DESC.items()}

# Headers the POP owns on the viewer side: anything the origin (or cache entry) carried under these names is
# replaced, never duplicated.
POP_OWNED = frozenset({"via", "x-cache", "x-amz-cf-pop", "x-amz-cf-id", "age", "server-timing"})


# Dropped from a response before decoration: POP-owned names, and framing the POP recomputes for the body it
# actually sends (a function-generated response may carry a stale Content-Length).
REPLACED = POP_OWNED | {"content-length", "transfer-encoding", "connection", "keep-alive"}


def new_request_id() -> str:
    """A fresh X-Amz-Cf-Id: 40 random bytes in URL-safe base64 = 56 characters ending in ``==``."""
    return base64.urlsafe_b64encode(os.urandom(40)).decode("ascii")


def new_via_id() -> str:
    """The per-POP-process CloudFront host id used in Via (32 hex characters, as observed)."""
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class PopIdentity:
    """What a POP says about itself on every response; built once per POP process."""

    pop_code: str  # e.g. "IAD89-C1"
    via_id: str = field(default_factory=new_via_id)
    via: str = field(init=False)  # "1.1 <via_id>.cloudfront.net (CloudFront)"
    _lines: str = field(init=False, repr=False)  # the Via and X-Amz-Cf-Pop header lines, serialised

    def __post_init__(self) -> None:
        object.__setattr__(self, "via", f"1.1 {self.via_id}.cloudfront.net (CloudFront)")
        object.__setattr__(self, "_lines", f"Via: {self.via}\r\nX-Amz-Cf-Pop: {self.pop_code}\r\n")

    def decoration_lines(self, *, request_id: str, x_cache: str, server_timing: str, age: int | None) -> str:
        """The header lines ``decorate`` appends, serialised for the wire (``edge.cdn.server.wire``), same order
        (tests/cdn/test_responses.py); with the constant lines prepared once, instead of serialising ``decorate``'s
        list per response (+3 % of a hit's instructions). The caller guarantees the values are header-safe
        (POP-made: ids, X-Cache constants, rendered timings)."""
        age_line = "" if age is None else f"Age: {age}\r\n"
        return (f"{age_line}X-Cache: {x_cache}\r\n{self._lines}X-Amz-Cf-Id: {request_id}\r\n"
                f"Server-Timing: {server_timing}\r\n")


class ServerTiming:
    """Collects Server-Timing entries for one request in order; the trigger runner may ``add`` its own
    (e.g. ``fn-viewer-request;desc="name:3 cold";dur=12.1``)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, entry: str) -> None:
        self.entries.append(entry)

    def add_duration(self, name: str, seconds: float) -> None:
        self.entries.append(f"{name};dur={seconds * 1000:.1f}")

    def render(self, x_cache: str, edge_seconds: float) -> str:
        prefix = _TIMING_PREFIX.get(x_cache)
        if prefix is None:
            prefix = f"cdn-cache;desc={x_cache.split(' ', 1)[0].upper()}, edge;dur="
        head = prefix + "%.1f" % (edge_seconds * 1000)
        if not self.entries:
            return head
        return head + ", " + ", ".join(self.entries)


def decorate(
    headers: Headers,
    identity: PopIdentity,
    *,
    request_id: str,
    x_cache: str,
    server_timing: str,
    age: int | None = None,
    clean: bool = False,
) -> Headers:
    """Return ``headers`` without POP-owned names, plus X-Cache, (Age), Via, X-Amz-Cf-Pop, X-Amz-Cf-Id and
    Server-Timing, in CloudFront's observed order. ``clean``: the caller guarantees ``headers`` holds no
    POP-owned name (headers prepared from a cache entry), so the filtering pass is skipped."""
    out: Headers = list(headers) if clean else [(k, v) for k, v in headers if k.lower() not in REPLACED]
    if age is not None:
        out.append(("Age", str(age)))
    out.append(("X-Cache", x_cache))
    out.append(("Via", identity.via))
    out.append(("X-Amz-Cf-Pop", identity.pop_code))
    out.append(("X-Amz-Cf-Id", request_id))
    out.append(("Server-Timing", server_timing))
    return out


_PAGE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">
<HTML><HEAD><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=iso-8859-1">
<TITLE>ERROR: The request could not be satisfied</TITLE>
</HEAD><BODY>
<H1>{status} ERROR</H1>
<H2>The request could not be satisfied.</H2>
<HR noshade size="1px">
{line}
We can't connect to the server for this app or website at this time. There might be too much traffic or a configuration error. Try again later, or contact the app or website owner.
<BR clear="all">
If you provide content to customers through CloudFront, you can find steps to troubleshoot and help prevent this error by reviewing the CloudFront documentation.
<BR clear="all">
<HR noshade size="1px">
<PRE>
Generated by cloudfront (CloudFront)
Request ID: {request_id}
</PRE>
<ADDRESS>
</ADDRESS>
</BODY></HTML>"""  # noqa: E501 - CloudFront's page as it sends it, one source line per line


def error_page(status: int, line: str, request_id: str) -> bytes:
    """The CloudFront error page body (contract §4.2) for ``status`` with the specific ``line``."""
    text = _PAGE.format(status=status, line=escape(line, quote=False), request_id=request_id)
    return text.encode("iso-8859-1", errors="replace")


def error_response(err: EdgeError, request_id: str) -> EdgeResponse:
    """A CloudFront-generated error response for ``err`` (its X-Cache, ``err.x_cache``, is the caller's to set on
    the request's ``Exchange``). A redirect to HTTPS is CloudFront's short redirect page with its Location."""
    headers: Headers = [
        ("Server", "CloudFront"),
        ("Date", formatdate(usegmt=True)),
        ("Content-Type", "text/html"),
    ]
    if isinstance(err, RedirectToHttps):
        headers.append(("Location", err.location))
        return EdgeResponse(status=err.status, headers=headers, body=redirect_page(err.status))
    body = error_page(err.status, page_line(err), request_id)
    return EdgeResponse(status=err.status, headers=headers, body=body)


_REASONS = {301: "Moved Permanently", 307: "Temporary Redirect"}


def redirect_page(status: int) -> bytes:
    """The body of CloudFront's redirect to HTTPS (an nginx-style page, CRLF line ends; cloudfront-features §7)."""
    title = f"{status} {_REASONS.get(status, 'Redirect')}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>CloudFront</center>\r\n</body>\r\n</html>\r\n").encode("ascii")
