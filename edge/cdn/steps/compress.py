"""Compress: a behavior's ``Compress: true`` as CloudFront applies it to what the origin returned ("Serve compressed
files", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/ServingCompressedFiles.html).

CloudFront compresses an origin response, before caching it, when all of these hold:

* the behavior has ``Compress`` and its cache policy enables ``EnableAcceptEncodingGzip`` and/or
  ``EnableAcceptEncodingBrotli`` (legacy cache settings: gzip only, "Brotli doesn't support legacy cache settings"),
  and the object can be cached (TTLs above 0): ``edge.cdn.config.plan.compress_codings``, once per behavior;
* the viewer's ``Accept-Encoding`` (as CloudFront normalises it for the cache key: ``br,gzip``, ``br``, ``gzip``)
  names a coding the policy enables; Brotli is preferred when both are accepted;
* the origin response has no ``Content-Encoding`` (any value, ``identity`` too), status 200, 403 or 404, a
  ``Content-Length`` between 1,000 and 10,000,000 bytes (no ``Content-Length``: no compression), and a
  ``Content-Type`` from CloudFront's list (:data:`COMPRESSIBLE_TYPES`);
* then the body is compressed, ``Content-Encoding`` set, ``Content-Length`` recomputed, and a strong ``ETag``
  becomes weak (``W/"..."``); an ``ETag`` that is neither strong nor weak is removed ("ETag header conversion").

The compressed copy is what the cache stores under the key that carries the normalised ``Accept-Encoding``
(``edge.cdn.cache.keys.cache_key``), so a viewer that accepts another coding gets its own copy. A streamed body
(above the store's object size limit) passes through uncompressed, as CloudFront may skip compression ("best
effort"). Compressing a large body runs in a worker thread (``asyncio.to_thread``): the event loop never waits on
it.
"""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import replace

import brotli

from edge.cdn.cache.keys import normalize_accept_encoding
from edge.cdn.models import EdgeResponse, header_all
from edge.cdn.steps import Exchange, Step

__all__ = ["COMPRESSIBLE_TYPES", "MAX_BYTES", "MIN_BYTES", "compress", "maybe_compress"]

MIN_BYTES = 1_000
MAX_BYTES = 10_000_000
COMPRESSIBLE_STATUSES = frozenset({200, 403, 404})
# "File types that CloudFront compresses" (same page), lower-case, without parameters.
COMPRESSIBLE_TYPES = frozenset({
    "application/dash+xml", "application/eot", "application/font", "application/font-sfnt",
    "application/javascript", "application/json", "application/opentype", "application/otf",
    "application/pkcs7-mime", "application/protobuf", "application/rss+xml", "application/truetype",
    "application/ttf", "application/vnd.apple.mpegurl", "application/vnd.mapbox-vector-tile",
    "application/vnd.ms-fontobject", "application/xhtml+xml", "application/xml", "application/x-font-opentype",
    "application/x-font-truetype", "application/x-font-ttf", "application/x-httpd-cgi", "application/x-javascript",
    "application/x-mpegurl", "application/x-opentype", "application/x-otf", "application/x-perl", "application/x-ttf",
    "font/eot", "font/opentype", "font/otf", "font/ttf", "image/svg+xml", "text/css", "text/csv", "text/html",
    "text/javascript", "text/js", "text/plain", "text/richtext", "text/tab-separated-values", "text/xml",
    "text/x-component", "text/x-java-source", "text/x-script", "vnd.apple.mpegurl",
})
_INLINE_BYTES = 64 * 1024  # smaller bodies are compressed on the event loop (well under a millisecond)
_GZIP_LEVEL = 6
_BROTLI_QUALITY = 5  # CloudFront does not document its levels: a middle setting, fast enough for 10 MB


def _choose(request_headers: list[tuple[str, str]], codings: tuple[bool, bool]) -> str | None:
    accepted = normalize_accept_encoding(",".join(header_all(request_headers, "accept-encoding")) or None,
                                         *codings)
    if accepted is None:
        return None
    return "br" if accepted.startswith("br") else "gzip"


def _eligible(response: EdgeResponse) -> bool:
    body = response.body
    if response.status not in COMPRESSIBLE_STATUSES or not isinstance(body, bytes):
        return False
    if response.meta.content_length != len(body) or not MIN_BYTES <= len(body) <= MAX_BYTES:
        return False  # no Content-Length from the origin (chunked), or out of range
    ctype = None
    for k, v in response.headers:
        lk = k.lower()
        if lk == "content-encoding":
            return False
        if lk == "content-type" and ctype is None:
            ctype = v.split(";", 1)[0].strip().lower()
    return ctype in COMPRESSIBLE_TYPES


def compress(body: bytes, coding: str) -> bytes:
    """``body`` compressed with ``coding`` (``"br"`` or ``"gzip"``; gzip without a timestamp: the same input gives
    the same bytes)."""
    if coding == "br":
        return bytes(brotli.compress(body, quality=_BROTLI_QUALITY))
    return gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)


def _etag(value: str) -> str | None:
    value = value.strip()
    if value.startswith("W/"):
        return value
    if value.startswith('"'):
        return "W/" + value
    return None  # neither strong nor weak: removed


async def maybe_compress(ex: Exchange, response: EdgeResponse) -> EdgeResponse:
    """``response`` compressed for ``ex``'s viewer when CloudFront would (see the module docstring), else itself."""
    plan = ex.plan
    assert plan is not None
    codings = plan.compress
    if codings is None or ex.cache_key is None or not _eligible(response):
        return response
    coding = _choose(ex.request.headers, codings)
    if coding is None:
        return response
    body = response.body
    assert isinstance(body, bytes)
    packed = compress(body, coding) if len(body) <= _INLINE_BYTES else await asyncio.to_thread(compress, body, coding)
    headers: list[tuple[str, str]] = []
    for k, v in response.headers:
        lk = k.lower()
        if lk == "content-length":
            continue  # the POP writes the length of what it sends
        if lk == "etag":
            etag = _etag(v)
            if etag is not None:
                headers.append((k, etag))
        else:
            headers.append((k, v))
    headers.append(("Content-Encoding", coding))
    ex.mark(Step.ORIGIN_RESPONSE, f"compressed-{coding}")
    return EdgeResponse(status=response.status, headers=headers, body=packed,
                        status_description=response.status_description,
                        meta=replace(response.meta, content_length=len(packed)))
