"""The serving form of a cache entry (viewer headers + serialised block) is memoised on the entry itself: it
lives and dies with the entry (nothing keeps evicted entries alive) and never survives a change of headers."""

from __future__ import annotations

import sys
from dataclasses import replace

from edge.cdn.cache.policy import CacheEntry
from edge.cdn.steps.serving import served_form


def _entry(**kw: object) -> CacheEntry:
    base: dict = {"status": 200, "headers": (("Content-Type", "text/plain"), ("Age", "3"), ("Content-Length", "1")),
                  "body": b"x", "request_time": 0.0, "response_time": 0.0, "ttl_s": 60.0}
    return CacheEntry(**{**base, **kw})


def test_served_headers_and_block_memoised_on_the_entry() -> None:
    e = _entry()
    headers, block = served_form(e)
    assert headers == (("Content-Type", "text/plain"), ("Accept-Ranges", "bytes"))
    assert block is not None and block.text == "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\n"
    assert served_form(e)[0] is headers  # computed once
    assert e == _entry() and hash(e) == hash(_entry())  # not part of the entry's value


def test_replace_resets_the_memo() -> None:
    e = _entry()
    served_form(e)
    changed = replace(e, headers=(("Content-Type", "text/html"),))
    assert changed.served is None
    assert served_form(changed)[0] == (("Content-Type", "text/html"), ("Accept-Ranges", "bytes"))


def test_memo_holds_no_reference_to_the_entry() -> None:
    """Evicted entries must not stay reachable through the POP's serving memo."""
    e = _entry(body=b"y" * 10)
    before = sys.getrefcount(e)
    served_form(e)
    assert sys.getrefcount(e) == before
