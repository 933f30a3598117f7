"""Path pattern matching (contract §5.1) and behavior precedence."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.config.behaviors import compile_pattern, match_behavior
from edge.cdn.config.distribution import load_distribution

FULL = Path(__file__).parents[1] / "fixtures" / "full-distribution.json"


def reference_match(pattern: str, path: str) -> bool:
    """Straightforward recursive glob: * = any run (incl. /), ? = one char, everything else literal."""
    if not pattern.startswith(("/", "*")):
        pattern = "/" + pattern

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(path)
        c = pattern[i]
        if c == "*":
            return m(i + 1, j) or (j < len(path) and m(i, j + 1))
        if j == len(path):
            return False
        return (c == "?" or c == path[j]) and m(i + 1, j + 1)

    return m(0, 0)


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("images/*.jpg", "/images/a/b.jpg", True),  # * crosses /
    ("/images/*.jpg", "/images/x.jpg", True),
    ("*.jpg", "/LOGO.JPG", False),  # case-sensitive
    ("*.jpg", "/deep/dir/logo.jpg", True),
    ("/img/??/*", "/img/ab/c", True),
    ("/img/??/*", "/img/abc/c", False),
    ("/a.b", "/aXb", False),  # '.' is literal
    ("/a+b", "/a+b", True),
    ("/api/*", "/api", False),
    ("/api*", "/api", True),
    ("/x&amp;y", "/x&y", True),
    ("/$weird", "/$weird", True),
])
def test_pattern_table(pattern: str, path: str, expected: bool) -> None:
    assert bool(compile_pattern(pattern).fullmatch(path)) is expected


_chars = st.sampled_from(list("ab/.*?"))


@settings(max_examples=300, deadline=None)
@given(st.text(_chars, min_size=1, max_size=8), st.text(st.sampled_from(list("ab/.x")), max_size=10))
def test_compiled_pattern_matches_reference(pattern: str, tail: str) -> None:
    path = "/" + tail
    assert bool(compile_pattern(pattern).fullmatch(path)) == reference_match(pattern, path)


def test_first_match_wins_and_default_last() -> None:
    d = load_distribution(FULL)
    assert match_behavior(d, "/api/users").path_pattern == "/api/*"
    assert match_behavior(d, "/static/site.css").path_pattern == "static/*.css"
    assert match_behavior(d, "/static/site.CSS").is_default
    assert match_behavior(d, "/img/ab/x.jpg").path_pattern == "/img/??/*.jpg"
    assert match_behavior(d, "/img/abc/x.jpg").is_default
    assert match_behavior(d, "api/users").path_pattern == "/api/*"  # leading slash added
    assert match_behavior(d, "/").is_default


def test_order_decides_between_overlapping_patterns() -> None:
    cfg = json.loads(FULL.read_text())["DistributionConfig"]
    items = cfg["CacheBehaviors"]["Items"]
    items[1]["PathPattern"] = "/api/v2/*"  # listed after /api/*: never reached for /api/v2/...
    d = load_distribution(cfg)
    assert match_behavior(d, "/api/v2/x").path_pattern == "/api/*"
    items[0], items[1] = items[1], items[0]
    d = load_distribution(cfg)
    assert match_behavior(d, "/api/v2/x").path_pattern == "/api/v2/*"
    assert match_behavior(d, "/api/v1/x").path_pattern == "/api/*"
