"""Serving from an entry: Age, HEAD, viewer conditionals, Range (RFC 9110 §14, contract §5.9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cdn.cache.policy import CacheEntry, http_date
from edge.cdn.cache.ranges import UNSATISFIABLE, ByteRange, parse_range, serve_entry
from edge.cdn.models import header_get

T0 = 1_700_000_000.0
BODY = bytes(range(100))
LM = http_date(T0 - 3600)


def entry(status: int = 200, body: bytes = BODY) -> CacheEntry:
    headers = (("Content-Type", "application/octet-stream"), ("ETag", '"v1"'), ("Last-Modified", LM),
               ("Content-Length", str(len(body))), ("Cache-Control", "max-age=60"))
    return CacheEntry(status, headers, body, T0, T0, 60.0, corrected_initial_age=3.0)


@pytest.mark.parametrize(("value", "expected"), [
    ("bytes=0-9", [ByteRange(0, 9)]),
    ("bytes=90-", [ByteRange(90, 99)]),
    ("bytes=-10", [ByteRange(90, 99)]),
    ("bytes=-500", [ByteRange(0, 99)]),
    ("bytes=95-200", [ByteRange(95, 99)]),
    ("bytes=0-1, 5-6", [ByteRange(0, 1), ByteRange(5, 6)]),
    ("bytes=100-", UNSATISFIABLE),
    ("bytes=-0", UNSATISFIABLE),
    ("bytes=200-300, 150-", UNSATISFIABLE),
    ("bytes=0-5,3-8", None),  # overlapping -> full object
    ("bytes=10-20,0-5", None),  # out of order -> full object
    ("bytes=5-1", None),  # invalid spec -> ignore header
    ("bytes=abc", None),
    ("items=0-5", None),
    ("bytes=0-1,100-200", [ByteRange(0, 1)]),  # the unsatisfiable one is dropped
    ("", None),
])
def test_parse_range(value: str, expected: object) -> None:
    assert parse_range(value, 100) == expected


def test_full_get_has_age_and_length() -> None:
    s = serve_entry(entry(), "GET", [], T0 + 10)
    assert s.status == 200 and s.body == BODY
    assert header_get(s.headers, "age") == "13" and header_get(s.headers, "content-length") == "100"
    assert header_get(s.headers, "accept-ranges") == "bytes"


def test_head_has_headers_but_no_body() -> None:
    s = serve_entry(entry(), "HEAD", [], T0)
    assert s.status == 200 and s.body == b"" and header_get(s.headers, "content-length") == "100"


def test_single_range() -> None:
    s = serve_entry(entry(), "GET", [("Range", "bytes=10-19")], T0)
    assert s.status == 206 and s.body == BODY[10:20]
    assert header_get(s.headers, "content-range") == "bytes 10-19/100"
    assert header_get(s.headers, "content-length") == "10"


def test_multiple_ranges_multipart() -> None:
    s = serve_entry(entry(), "GET", [("Range", "bytes=0-1,98-99")], T0)
    ctype = header_get(s.headers, "content-type") or ""
    assert s.status == 206 and ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1]
    parts = s.body.split(f"--{boundary}".encode())
    assert parts[0] == b"" and parts[-1] == b"--\r\n" and len(parts) == 4
    assert b"Content-Range: bytes 0-1/100\r\n\r\n" + BODY[0:2] + b"\r\n" in parts[1]
    assert b"Content-Type: application/octet-stream" in parts[2] and parts[2].endswith(BODY[98:] + b"\r\n")
    assert header_get(s.headers, "content-length") == str(len(s.body))


def test_unsatisfiable_is_416() -> None:
    s = serve_entry(entry(), "GET", [("Range", "bytes=500-")], T0)
    assert s.status == 416 and s.body == b"" and header_get(s.headers, "content-range") == "bytes */100"


def test_range_ignored_for_non_200_and_head() -> None:
    assert serve_entry(entry(status=404), "GET", [("Range", "bytes=0-1")], T0).status == 404
    assert serve_entry(entry(), "HEAD", [("Range", "bytes=0-1")], T0).status == 200


def test_if_range() -> None:
    assert serve_entry(entry(), "GET", [("Range", "bytes=0-1"), ("If-Range", '"v1"')], T0).status == 206
    assert serve_entry(entry(), "GET", [("Range", "bytes=0-1"), ("If-Range", '"v0"')], T0).status == 200
    assert serve_entry(entry(), "GET", [("Range", "bytes=0-1"), ("If-Range", LM)], T0).status == 206
    assert serve_entry(entry(), "GET", [("Range", "bytes=0-1"), ("If-Range", http_date(T0))], T0).status == 200


@pytest.mark.parametrize(("headers", "status"), [
    ([("If-None-Match", '"v1"')], 304),
    ([("If-None-Match", 'W/"v1"')], 304),  # weak comparison
    ([("If-None-Match", '"x", "v1"')], 304),
    ([("If-None-Match", "*")], 304),
    ([("If-None-Match", '"x"')], 200),
    ([("If-Modified-Since", http_date(T0))], 304),
    ([("If-Modified-Since", http_date(T0 - 7200))], 200),
    ([("If-None-Match", '"x"'), ("If-Modified-Since", http_date(T0))], 200),  # INM takes precedence
])
def test_viewer_conditionals(headers: list[tuple[str, str]], status: int) -> None:
    s = serve_entry(entry(), "GET", headers, T0)
    assert s.status == status
    if status == 304:
        assert s.body == b"" and header_get(s.headers, "etag") == '"v1"'
        assert header_get(s.headers, "content-type") is None


@given(st.text(alphabet="bytes=0123456789-, ", max_size=20), st.integers(0, 50))
def test_any_range_header_yields_a_valid_response(value: str, size: int) -> None:
    body = bytes(range(size))
    e = CacheEntry(200, (("ETag", '"v"'),), body, T0, T0, 60.0)
    s = serve_entry(e, "GET", [("Range", value)], T0)
    assert s.status in (200, 206, 416)
    assert header_get(s.headers, "content-length") == str(len(s.body))
    if s.status == 200:
        assert s.body == body
    elif s.status == 206 and header_get(s.headers, "content-range"):
        first, _, rest = (header_get(s.headers, "content-range") or "").removeprefix("bytes ").partition("-")
        last = rest.split("/")[0]
        assert s.body == body[int(first):int(last) + 1]
