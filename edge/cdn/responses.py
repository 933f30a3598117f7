"""CloudFront's viewer-facing response decoration: X-Cache values, Via/X-Amz-Cf-Pop/X-Amz-Cf-Id, Age,
Server-Timing, and the CloudFront HTML error page (contract §4.2, §5.5).

Everything here is pure and cheap: a ``PopIdentity`` is built once per POP process and holds the
precomputed constant headers, so the hit path only adds the per-request values.
"""

from __future__ import annotations

import binascii
import os
import secrets
from dataclasses import dataclass, field
from email.utils import formatdate
from html import escape

from edge.cdn.errors import EdgeError, RedirectToHttps, SignatureRefused, page_line
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
# ``ServerTiming.render`` of a fresh hit with nothing else to say, for ``% milliseconds``
HIT_TIMING_PREFIX = _TIMING_PREFIX[HIT]
HIT_TIMING = HIT_TIMING_PREFIX + "%.1f"

# Headers the POP owns on the viewer side: anything the origin (or cache entry) carried under these names is
# replaced, never duplicated.
POP_OWNED = frozenset({"via", "x-cache", "x-amz-cf-pop", "x-amz-cf-id", "age", "server-timing"})


# Dropped from a response before decoration: POP-owned names, and framing the POP recomputes for the body it
# actually sends (a function-generated response may carry a stale Content-Length).
REPLACED = POP_OWNED | {"content-length", "transfer-encoding", "connection", "keep-alive"}


class _RequestIds:
    """X-Amz-Cf-Id values made 256 at a time from one read of the OS's randomness: one ``getrandom`` system call
    and one pass of base64 per 256 requests instead of one of each per request (a system call is ~1 us, a
    measurable share of a cache hit served in ~5 us). A forked child starts with none (``os.register_at_fork``),
    so no two processes hand out the same ids.

    An id is the URL-safe base64 of 40 random bytes (56 characters ending in ``==``). The batch is 42 bytes per id,
    the last two of each made zero, encoded in one call: each id's 42 bytes are 14 whole base64 groups, so its 56
    characters are its own, and the last group (the 40th byte, then the two zeros) encodes as the 40th byte alone
    does, but for ``AA`` where that has ``==``; those two characters of every id are overwritten in two slice
    assignments. An id is then one slice of the batch's text: ~470 ns here against ~650 ns for cutting and joining
    two encodings per id (the way before), ~2 us for one encoding and one system call per id."""

    __slots__ = ("at", "end", "text")

    BATCH = 256
    _URLSAFE = bytes.maketrans(b"+/", b"-_")

    def __init__(self) -> None:
        self.text = ""
        self.at = self.end = 0

    def next(self) -> str:
        at = self.at
        if at >= self.end:
            self._fill()
            at = 0
        self.at = at + 56
        return self.text[at:at + 56]

    def _fill(self) -> None:
        n = self.BATCH
        data = bytearray(os.urandom(42 * n))
        data[40::42] = data[41::42] = bytes(n)
        encoded = bytearray(binascii.b2a_base64(data, newline=False).translate(self._URLSAFE))
        encoded[54::56] = encoded[55::56] = b"=" * n
        self.text, self.at, self.end = encoded.decode("ascii"), 0, 56 * n

    def reset(self) -> None:
        self.text, self.at, self.end = "", 0, 0


_IDS = _RequestIds()
os.register_at_fork(after_in_child=_IDS.reset)
# A fresh X-Amz-Cf-Id: 40 random bytes in URL-safe base64 = 56 characters ending in ``==`` (a bound method: the
# function it would wrap costs a frame per request).
new_request_id = _IDS.next


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
    (e.g. ``fn-viewer-request;desc="name:3 cold";dur=12.1``).

    Two formats: edgelab's (``cdn-cache;desc=HIT, edge;dur=...`` then the entries), on every response, and
    CloudFront's own when a response headers policy samples the request (``cloudfront``): ``cdn-cache-hit`` |
    ``cdn-cache-miss`` | ``cdn-cache-refresh``, ``cdn-pop``, ``cdn-rid``, ``cdn-hit-layer`` (EDGE, REC, Origin
    Shield) on hits, ``cdn-upstream-layer`` and ``cdn-upstream-fbl`` on fetches, ``cdn-downstream-fbl``, then the
    origin's own Server-Timing on a miss ("Server-Timing header" in "Understand response headers policies",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/understanding-response-headers-policies.html#server-timing-header).
    ``cdn-upstream-dns`` and ``-connect`` are left out: the origin client does not measure them apart."""

    __slots__ = ("cloudfront", "entries", "hit_layer", "origin_value", "upstream_fbl_s", "upstream_layer")

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.cloudfront = False  # render CloudFront's format (a response headers policy sampled the request)
        self.hit_layer = ""  # EDGE | REC | Origin Shield: the tier whose cache answered
        self.upstream_layer = ""  # the tier that fetched from the origin
        self.upstream_fbl_s: float | None = None  # origin first byte (the fetch's duration)
        self.origin_value = ""  # the origin's own Server-Timing (merged on a miss)

    def add(self, entry: str) -> None:
        self.entries.append(entry)

    def add_duration(self, name: str, seconds: float) -> None:
        self.entries.append(f"{name};dur={seconds * 1000:.1f}")

    def render(self, x_cache: str, edge_seconds: float, *, pop_code: str = "", request_id: str = "",
               total_seconds: float = 0.0) -> str:
        if self.cloudfront:
            return self._render_cloudfront(x_cache, pop_code, request_id, total_seconds)
        prefix = _TIMING_PREFIX.get(x_cache)
        if prefix is None:
            prefix = f"cdn-cache;desc={x_cache.split(' ', 1)[0].upper()}, edge;dur="
        head = prefix + "%.1f" % (edge_seconds * 1000)
        if self.hit_layer:
            head += f', cdn-hit-layer;desc="{self.hit_layer}"'
        if self.upstream_layer:
            head += f', cdn-upstream-layer;desc="{self.upstream_layer}"'
        if not self.entries:
            return head
        return head + ", " + ", ".join(self.entries)

    def _render_cloudfront(self, x_cache: str, pop_code: str, request_id: str, total_seconds: float) -> str:
        out: list[str] = []
        fetched = self.upstream_fbl_s is not None
        if fetched:
            out.append(f'cdn-upstream-layer;desc="{self.upstream_layer or "EDGE"}"')
            out.append(f"cdn-upstream-fbl;dur={(self.upstream_fbl_s or 0.0) * 1000:.0f}")
        if x_cache == HIT:
            out.append("cdn-cache-hit")
        elif x_cache == REFRESH_HIT:
            out.append("cdn-cache-refresh")
        elif fetched:
            out.append("cdn-cache-miss")
        out.append(f'cdn-pop;desc="{pop_code}"')
        out.append(f'cdn-rid;desc="{request_id}"')
        if x_cache == HIT:
            out.append(f'cdn-hit-layer;desc="{self.hit_layer or "EDGE"}"')
        out.append(f"cdn-downstream-fbl;dur={total_seconds * 1000:.0f}")
        if fetched and x_cache != HIT and self.origin_value:
            out.append(self.origin_value)
        return ",".join(out)


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
    if isinstance(err, SignatureRefused):  # CloudFront answers these in XML
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{err.code}</Code>'
                f"<Message>{err.message}</Message></Error>").encode()
        content_type = "text/xml"
    else:
        body, content_type = error_page(err.status, page_line(err), request_id), "text/html"
    headers: Headers = [
        ("Server", "CloudFront"),
        ("Date", formatdate(usegmt=True)),
        ("Content-Type", content_type),
    ]
    if isinstance(err, RedirectToHttps):
        headers.append(("Location", err.location))
        return EdgeResponse(status=err.status, headers=headers, body=redirect_page(err.status))
    return EdgeResponse(status=err.status, headers=headers, body=body)


_REASONS = {301: "Moved Permanently", 307: "Temporary Redirect"}


def redirect_page(status: int) -> bytes:
    """The body of CloudFront's redirect to HTTPS (an nginx-style page, CRLF line ends; cloudfront-features §7)."""
    title = f"{status} {_REASONS.get(status, 'Redirect')}"
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>CloudFront</center>\r\n</body>\r\n</html>\r\n").encode("ascii")
