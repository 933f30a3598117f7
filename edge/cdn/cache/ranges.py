"""Serving a stored entry: Age, HEAD, conditional viewer requests and byte ranges (pure, no I/O).

* Age (RFC 9111 §5.1) is set on every response served from cache.
* HEAD is answered from the GET entry without a body (contract §5.2: GET and HEAD share entries).
* A viewer ``If-None-Match`` / ``If-Modified-Since`` matching the entry gets ``304`` (RFC 9110 §13.1).
* ``Range`` (RFC 9110 §14.2): single and multiple ranges from a stored full ``200``; multiple ranges are sent
  as ``multipart/byteranges``; unsatisfiable -> ``416`` with ``Content-Range: bytes */size``; malformed,
  overlapping or out-of-order ranges -> the full ``200`` (contract §5.9, RFC 9110 §14.2 permits ignoring).
  ``If-Range`` that does not match the entry's validator -> the full ``200``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from edge.cdn.cache.policy import CacheEntry, current_age, parse_http_date
from edge.cdn.models import header_get

__all__ = ["CONDITIONAL_HEADERS", "ByteRange", "Served", "parse_range", "serve_entry"]

# The request headers that make a response served from an entry more than the stored response: the RFC 9110 §13.1
# preconditions and §14.2 Range. ``serve_entry`` answers them from the entry; the POP's own revalidation of an
# entry replaces them with the stored validators; a custom error page is fetched without them.
CONDITIONAL_HEADERS = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
                                 "range"})


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


UNSATISFIABLE = "unsatisfiable"


def parse_range(value: str | None, size: int) -> list[ByteRange] | str | None:
    """``Range`` header -> satisfiable ranges (ascending, non-overlapping), ``UNSATISFIABLE``, or None (ignore).

    None means "serve the whole representation": absent/malformed header, a unit other than ``bytes``,
    or overlapping/out-of-order ranges (contract §5.9).
    """
    if not value:
        return None
    unit, sep, spec = value.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    out: list[ByteRange] = []
    any_valid_syntax = False
    for part in spec.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) or (
                last and not last.isdigit()):
            return None
        any_valid_syntax = True
        if not first:  # suffix range: the last N bytes
            n = int(last)
            if n == 0 or size == 0:
                continue
            out.append(ByteRange(max(0, size - n), size - 1))
            continue
        start, end = int(first), int(last) if last else size - 1
        if last and end < start:
            return None  # invalid range-spec: the whole header is ignored
        if start >= size:
            continue
        out.append(ByteRange(start, min(end, size - 1)))
    if not out:
        return UNSATISFIABLE if any_valid_syntax else None
    for a, b in itertools.pairwise(out):
        if b.start <= a.end:
            return None  # overlapping or out of order: CloudFront serves the full object
    return out


@dataclass(frozen=True, slots=True)
class Served:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _not_modified(entry: CacheEntry, request_headers: Sequence[tuple[str, str]]) -> bool:
    inm = header_get(request_headers, "if-none-match")
    if inm is not None:
        etag = entry.etag
        if etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags  # weak comparison (RFC 9110 §13.1.2)
    ims = parse_http_date(header_get(request_headers, "if-modified-since"))
    lm = parse_http_date(entry.last_modified)
    return ims is not None and lm is not None and lm <= ims


def _if_range_ok(entry: CacheEntry, request_headers: Sequence[tuple[str, str]]) -> bool:
    value = header_get(request_headers, "if-range")
    if value is None:
        return True
    if value.startswith(('"', 'W/"')):
        return entry.etag is not None and not value.startswith("W/") and value == entry.etag
    return entry.last_modified is not None and parse_http_date(value) == parse_http_date(entry.last_modified)


def serve_entry(entry: CacheEntry, method: str, request_headers: Sequence[tuple[str, str]], now: float) -> Served:
    """The response for a request served from ``entry`` (Age set, Content-Length matching the body)."""
    headers = [(k, v) for k, v in entry.headers if k.lower() not in ("age", "content-length")]
    headers.append(("Age", str(int(current_age(entry, now)))))
    body = entry.body
    status = entry.status
    if status == 200 and method in ("GET", "HEAD") and _not_modified(entry, request_headers):
        keep = ("cache-control", "content-location", "date", "etag", "expires", "vary", "age", "last-modified")
        return Served(304, [(k, v) for k, v in headers if k.lower() in keep], b"")
    rng = header_get(request_headers, "range")
    if status == 200 and method == "GET" and rng is not None and _if_range_ok(entry, request_headers):
        status, headers, body = _apply_range(rng, entry, headers)
    if status == 200 and method in ("GET", "HEAD") and header_get(headers, "accept-ranges") is None:
        headers.append(("Accept-Ranges", "bytes"))
    headers.append(("Content-Length", str(len(body))))
    return Served(status, headers, b"" if method == "HEAD" else body)


def _apply_range(value: str, entry: CacheEntry,
                 headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]], bytes]:
    size = len(entry.body)
    ranges = parse_range(value, size)
    if ranges is None:
        return 200, headers, entry.body
    if ranges == UNSATISFIABLE:
        return 416, [*headers, ("Content-Range", f"bytes */{size}")], b""
    assert isinstance(ranges, list)
    if len(ranges) == 1:
        r = ranges[0]
        return 206, [*headers, ("Content-Range", f"bytes {r.start}-{r.end}/{size}")], entry.body[r.start:r.end + 1]
    ctype = header_get(headers, "content-type")
    seed = f"{entry.etag}|{entry.response_time}|{value}".encode()
    boundary = "edgelab" + hashlib.sha1(seed, usedforsecurity=False).hexdigest()[:20]
    parts = []
    for r in ranges:
        head = f"--{boundary}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "")
        head += f"Content-Range: bytes {r.start}-{r.end}/{size}\r\n\r\n"
        parts.append(head.encode("latin-1") + entry.body[r.start:r.end + 1] + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    headers.append(("Content-Type", f"multipart/byteranges; boundary={boundary}"))
    return 206, headers, body
