"""pretty-urls, normalize-querystring, ab-test, select-origin."""

from __future__ import annotations

from typing import Any

import pytest

from edge.cdn.lambda_edge.results import RequestResult, ResponseResult
from edge.cdn.models import CustomOrigin, S3Origin
from tests.functions.edge_harness import (
    ORIGIN,
    edge_function,
    header,
    load_function,
    origin_request,
    origin_response,
    viewer_request,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("/", "/index.html"), ("/docs/", "/docs/index.html"), ("/docs", "/docs/index.html"), ("/app.js", "/app.js"), ("/a.b/c", "/a.b/c/index.html")],
)
def test_pretty_urls(uri: str, expected: str) -> None:
    result = edge_function("pretty-urls")("origin-request", origin_request(uri))
    assert isinstance(result, RequestResult) and result.request.uri == expected


@pytest.mark.parametrize(
    ("qs", "expected"),
    [
        ("utm_source=mail&Q=shoes&page=2", "page=2&q=shoes"),
        ("sort=asc&page=2", "page=2&sort=asc"),
        ("page=2&sort=asc", "page=2&sort=asc"),
        ("q=red%20shoes&fbclid=1", "q=red%20shoes"),
        ("lang=", "lang="),
        ("", ""),
    ],
)
def test_normalize_querystring(qs: str, expected: str) -> None:
    result = edge_function("normalize-querystring")("viewer-request", viewer_request("/search", qs))
    assert isinstance(result, RequestResult) and result.request.querystring == expected


def _ab(monkeypatch: pytest.MonkeyPatch, roll: float, cookies: list[tuple[str, str]]) -> Any:
    fn = edge_function("ab-test")
    monkeypatch.setattr(fn.module.random, "random", lambda: roll)
    return fn, fn("viewer-request", viewer_request("/", headers=cookies))


@pytest.mark.parametrize(("roll", "variant"), [(0.1, "b"), (0.9, "a")])
def test_ab_new_viewer_gets_variant_and_cookie(monkeypatch: pytest.MonkeyPatch, roll: float, variant: str) -> None:
    fn, result = _ab(monkeypatch, roll, [])
    request = result.request
    assert request.uri == f"/experiments/{variant}/index.html"
    assert ("Cookie", f"ab-variant={variant}") in request.headers
    out = fn("viewer-response", request, origin_response())
    assert isinstance(out, ResponseResult) and out.response.status == 200
    assert header(out.response.headers, "Set-Cookie") == f"ab-variant={variant}; Path=/; Max-Age=2592000; SameSite=Lax"


def test_ab_sticky_cookie_wins_over_dice(monkeypatch: pytest.MonkeyPatch) -> None:
    _, result = _ab(monkeypatch, 0.1, [("Cookie", "theme=dark; ab-variant=a")])
    assert result.request.uri == "/experiments/a/index.html"
    assert len([v for k, v in result.request.headers if k == "Cookie"]) == 1


def test_ab_other_paths_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    fn = edge_function("ab-test")
    request = viewer_request("/about/")
    assert fn("viewer-request", request).request == request
    out = fn("viewer-response", request, origin_response())
    assert header(out.response.headers, "Set-Cookie") is None


def test_ab_split_is_roughly_even() -> None:
    module = load_function("ab-test")
    picks = [module.viewer_request({"uri": "/", "headers": {}})["uri"] for _ in range(400)]
    share_b = picks.count("/experiments/b/index.html") / len(picks)
    assert 0.35 < share_b < 0.65


def test_select_origin_switches_custom_origin_and_host() -> None:
    result = edge_function("select-origin")("origin-request", origin_request("/api", headers=[("X-Backend", "Green")]))
    assert isinstance(result, RequestResult)
    assert result.request.origin == CustomOrigin(domain_name="green.origin.example", port=443, protocol="https")
    assert header(result.request.headers, "Host") == "green.origin.example"


def test_select_origin_from_s3_builds_full_custom_origin() -> None:
    request = origin_request("/api", headers=[("X-Backend", "blue")])
    request.origin = S3Origin(domain_name="bucket.s3.amazonaws.com")
    result = edge_function("select-origin")("origin-request", request)
    assert result.request.origin.domain_name == "blue.origin.example" and result.request.origin.port == 443


@pytest.mark.parametrize("headers", [[], [("X-Backend", "purple")]])
def test_select_origin_unknown_keeps_origin(headers: list[tuple[str, str]]) -> None:
    result = edge_function("select-origin")("origin-request", origin_request("/api", headers=headers))
    assert result.request.origin is ORIGIN
    assert header(result.request.headers, "Host") == "origin.example.org"
