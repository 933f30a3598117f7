"""``response_headers``: what the POP keeps of an origin response's headers (pure)."""

from __future__ import annotations

from multidict import CIMultiDict

from edge.cdn.origin.client import response_headers, strip_hop_by_hop


def test_drops_hop_by_hop_and_content_length_keeps_order_and_duplicates() -> None:
    raw = [("Content-Type", "text/plain"), ("Content-Length", "3"), ("Keep-Alive", "timeout=5"),
           ("Set-Cookie", "a=1"), ("Transfer-Encoding", "chunked"), ("Proxy-Foo", "x"), ("Set-Cookie", "b=2")]
    assert response_headers(raw) == [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]


def test_headers_named_by_connection_are_dropped_wherever_they_are() -> None:
    raw = CIMultiDict([("X-Before", "1"), ("Connection", "keep-alive, X-Before, x-after"), ("X-After", "2"),
                       ("ETag", '"e"'), ("content-length", "0")])
    assert response_headers(raw.items()) == [("ETag", '"e"')]
    assert response_headers(raw.items()) == [p for p in strip_hop_by_hop(raw.items()) if p[0] != "content-length"]
