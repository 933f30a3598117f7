"""Viewer-side HTTP/1.x serialisation of the POP's responses, byte-for-byte what ``aiohttp.web.Response`` sends
(the POP was served by aiohttp before its own protocol, ``edge.cdn.server.viewer``: its answers did not change).

Why by hand: building a ``web.Response`` (a CIMultiDict of the headers, then ``prepare``/``_start``/
``_prepare_headers``/``write_headers``/``write_eof``) cost as much CPU as the rest of a cache hit; the POP serialises
the status line, headers and body itself, with header blocks of cache entries serialised once per entry
(``header_block``). Measured with ``bench.pop_instructions``: through ``web.Response`` a hit cost ~54,000 more
instructions per request (+26 %), a miss ~43,000 (+6 %).

Contract of ``serialize``: for the same request (method, HTTP version, keep-alive), status, reason, header list
(in order, duplicates kept) and bytes body, the bytes are those aiohttp 3.x's ``web.Response`` would write:

* ``Content-Length`` appended (``len(body)``) unless present, except for 1xx/204/304 (and 2xx to CONNECT)
  and an empty body of a HEAD;
* no body for HEAD, 1xx, 204, 304 (and 2xx to CONNECT), whose ``Transfer-Encoding`` is removed;
* ``Content-Type: application/octet-stream`` when absent and the body is not empty;
* ``Date`` (current second) and ``Server`` (aiohttp's) when absent; ``Connection: keep-alive`` for a
  keep-alive HTTP/1.0 request, ``Connection: close`` for an HTTP/1.1 one that is not, unless present.

Where aiohttp would have refused the response (a control character in a header, a character UTF-8 cannot encode,
a Content-Length that is not a number, framing headers that contradict the status) ``serialize`` returns None;
the POP then retries with the framing headers dropped and undecodable bytes sent as they came
(``undecodable``), and answers CloudFront's 500 page for a control character (``PopViewer._write``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus

from aiohttp.http import SERVER_SOFTWARE

__all__ = ["EMPTY_BODY_STATUS", "Framed", "HeaderBlock", "HttpDate", "framed", "header_block", "safe_value",
           "serialize"]

# RFC 9110 §5.5 / what aiohttp's header writer refuses: C0 controls except HTAB, and DEL. CR and LF are
# checked by counting them (exactly one CRLF per serialised line).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FORBIDDEN_BUT_CRLF = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_REASONS = {s.value: s.phrase for s in HTTPStatus}
EMPTY_BODY_STATUS = frozenset((204, 304, *range(100, 200)))  # statuses whose response has no body
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n"
_NO_NAMES: frozenset[str] = frozenset()
_FRAMING = frozenset({"content-length", "transfer-encoding", "content-type", "date", "server", "connection"})
# Names serialize looks at: framing names and what the POP drops (its own and framing names; others still work).
_SEEN = _FRAMING | {"via", "x-cache", "x-amz-cf-pop", "x-amz-cf-id", "age", "server-timing", "keep-alive"}


class HttpDate:
    """The current IMF-fixdate, formatted at most once per second (one per POP: no module state)."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._text = now, formatdate(now, usegmt=True)
        return self._text


class HeaderBlock:
    """Header lines serialised once (e.g. per cache entry): ``text`` ends with CRLF, ``names`` holds the lower-case
    names among the framing headers ``serialize`` looks at, ``count`` the number of lines."""

    __slots__ = ("count", "names", "text")

    def __init__(self, text: str, names: frozenset[str], count: int) -> None:
        self.text = text
        self.names = names
        self.count = count

    def extended(self, headers: tuple[tuple[str, str], ...]) -> HeaderBlock | None:
        """These lines followed by ``headers`` (as :func:`header_block` serialises them), or None if it would refuse
        one of them. Memoised (a function adds the same headers to the same cache entry's on every hit)."""
        more = _block_of(headers)
        return None if more is None else _joined(self, more)


@lru_cache(maxsize=256)
def _block_of(headers: tuple[tuple[str, str], ...]) -> HeaderBlock | None:
    return header_block(headers)


@lru_cache(maxsize=256)
def _joined(first: HeaderBlock, second: HeaderBlock) -> HeaderBlock:
    return HeaderBlock(first.text + second.text, first.names | second.names, first.count + second.count)


def header_block(headers: Sequence[tuple[str, str]]) -> HeaderBlock | None:
    """``headers`` as header lines, or None if aiohttp would refuse one of them (see the module docstring)."""
    text = "".join([f"{k}: {v}\r\n" for k, v in headers])
    if not _safe(text, len(headers)):
        return None
    names = frozenset(n for n in (k.lower() for k, _ in headers) if n in _FRAMING)
    return HeaderBlock(text, names, len(headers))


def _safe(text: str, lines: int, undecodable: bool = False) -> bool:
    """``lines`` header lines with nothing aiohttp would refuse: no control character inside a line, and
    text UTF-8 can encode (with ``undecodable``: bytes a parser kept as surrogates are sent as they came)."""
    if text.count("\n") != lines or text.count("\r") != lines:
        return False
    if text.isascii():  # the common case, without a regex: printable ASCII once CRLFs and HTABs are removed
        return text.replace("\r\n", "").replace("\t", "").isprintable()
    if _FORBIDDEN_BUT_CRLF.search(text) is not None:
        return False
    if undecodable:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: aiohttp drops them, we let it do so
        return False
    return True


def serialize(method: str, version: tuple[int, int], keep_alive: bool, status: int, reason: str | None,
              headers: Sequence[tuple[str, str]], body: bytes, date: HttpDate, block: HeaderBlock | None = None,
              trailer: str = "", content_length: int | None = None,
              drop: frozenset[str] = frozenset(), undecodable: bool = False, streamed: bool = False) -> bytes | None:
    """The response bytes, None where aiohttp would refuse them. Header order: ``block``, ``headers`` (without
    the lower-case names in ``drop``), ``trailer`` (serialised lines the caller vouches for: plain ASCII, none of
    the framing names), then ``Content-Length: content_length`` when given (a HEAD answered with the length of
    the GET). ``undecodable``: undecodable bytes a parser kept as surrogates (``surrogateescape``) go out as
    they came instead of refusing. ``streamed``: the head of a response whose body follows separately (``body``
    is empty; the caller frames it: ``content_length``, a ``Transfer-Encoding`` in ``headers``, or the end of
    the connection)."""
    if reason is None:
        reason = _REASONS.get(status, "")
    elif reason and not (reason.isascii() and reason.replace("\t", "").isprintable()) and (
            _FORBIDDEN.search(reason) is not None or not _safe(reason + "\r\n", 1)):
        return None
    head = f"HTTP/{version[0]}.{version[1]} {status} {reason}\r\n"
    names: frozenset[str] | set[str] = block.names if block is not None else _NO_NAMES
    if headers:
        lines = []
        found = set()
        seen = _SEEN if drop <= _SEEN else _FRAMING | drop
        for k, v in headers:  # one pass: drop, framing names, lines
            lk = k.lower()
            if lk in seen:
                if lk in drop:
                    continue
                if lk in _FRAMING:
                    found.add(lk)
            lines.append(f"{k}: {v}\r\n")
        tail = "".join(lines)
        if not _safe(tail, len(lines), undecodable):
            return None
        if found:
            names = names | found
    else:
        tail = ""
    no_length = status in EMPTY_BODY_STATUS or (method == "CONNECT" and 200 <= status < 300)
    extra = []
    length = len(body)
    if "content-length" in names:
        if no_length or content_length is not None:
            return None  # aiohttp deletes it / duplicates: rare, let aiohttp do it
        declared = _declared_length(block, headers)
        if declared is None:
            return None
        length = declared  # the body is still sent whole, as aiohttp's write_eof does
    elif content_length is not None:
        if no_length:
            return None
        extra.append(f"Content-Length: {content_length}\r\n")
        length = content_length
    elif not no_length and not streamed and (length or method != "HEAD"):
        extra.append(f"Content-Length: {length}\r\n")
    if no_length or method == "HEAD":
        if "transfer-encoding" in names:
            return None  # aiohttp deletes it: rare, let aiohttp do it
        body = b""
    elif (length or streamed) and "content-type" not in names:
        extra.append("Content-Type: application/octet-stream\r\n")
    if "date" not in names:
        extra.append(f"Date: {date()}\r\n")
    if "server" not in names:
        extra.append(_SERVER_LINE)
    if "connection" not in names:
        if keep_alive and version == (1, 0):
            extra.append("Connection: keep-alive\r\n")
        elif not keep_alive and version == (1, 1):
            extra.append("Connection: close\r\n")
    text = "".join((head, block.text if block is not None else "", tail, trailer, *extra, "\r\n"))
    data = text.encode("utf-8", "surrogateescape") if undecodable else text.encode("utf-8")
    return data + body if body else data


class _DateMark(HttpDate):
    """Where :func:`framed` finds the Date value ``serialize`` writes."""

    def __call__(self) -> str:
        return "\x01"


_DATE_MARK = _DateMark()
_TRAILER_MARK = "\x00"
Framed = tuple[bytes, bytes, bytes | None]


@lru_cache(maxsize=1024)
def framed(block: HeaderBlock, status: int, version: tuple[int, int], keep_alive: bool, length: int) -> Framed | None:
    """The head ``serialize`` writes for a GET answered with ``block`` and a body of ``length`` bytes, cut where
    its ``trailer`` goes and where its Date value goes: ``(before the trailer, after it, None)`` - the head is
    ``before + trailer + after`` - or, when it writes a Date, ``(before, after it up to Date's value, the rest)``.
    None when ``serialize`` would not send such a body as it is (a status without a body, a Content-Length in
    ``block``): the caller serialises. Memoised (a cache entry's block is answered again and again); cut from
    ``serialize``'s own output (marks no header line can hold: ``_safe`` refuses control characters), so the
    bytes are the same."""
    head = serialize("GET", version, keep_alive, status, None, (), b"", _DATE_MARK, block=block,
                     trailer=_TRAILER_MARK, content_length=length)
    if head is None:
        return None
    before, _, after = head.partition(b"\x00")
    dated, mark, rest = after.partition(b"\x01")
    return (before, dated, rest) if mark else (before, after, None)


def safe_value(value: str) -> bool:
    """True if ``value`` can go into a header line as is (no control character but HTAB, plain ASCII)."""
    return value.isascii() and value.replace("\t", "").isprintable()


def _declared_length(block: HeaderBlock | None, headers: Sequence[tuple[str, str]]) -> int | None:
    """The first Content-Length value (as aiohttp reads it), or None when it is not a plain number."""
    value = None
    if block is not None and "content-length" in block.names:
        m = re.search(r"(?im)^content-length: (.*)\r$", block.text)
        value = m.group(1) if m else None
    else:
        value = next((v for k, v in headers if k.lower() == "content-length"), None)
    if value is None or not value.strip().isdigit():
        return None
    return int(value)
