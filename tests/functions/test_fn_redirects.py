"""redirect-country, redirect-device, redirect-legacy."""

from __future__ import annotations

import pytest

from edge.cdn.lambda_edge.results import GeneratedResponse, RequestResult
from tests.functions.edge_harness import edge_function, header, origin_request, viewer_request


@pytest.mark.parametrize(("country", "location"), [("DE", "/de/shop?item=3"), ("at", "/de/shop?item=3"), ("JP", "/jp/shop?item=3")])
def test_country_redirect(country: str, location: str) -> None:
    result = edge_function("redirect-country")(
        "origin-request", origin_request("/shop", "item=3", [("CloudFront-Viewer-Country", country)])
    )
    assert isinstance(result, GeneratedResponse)
    assert result.response.status == 302 and header(result.response.headers, "Location") == location


@pytest.mark.parametrize(("uri", "headers"), [("/shop", [("CloudFront-Viewer-Country", "US")]), ("/shop", []), ("/de/shop", [("CloudFront-Viewer-Country", "DE")]), ("/de", [("CloudFront-Viewer-Country", "DE")])])
def test_country_passthrough(uri: str, headers: list[tuple[str, str]]) -> None:
    request = origin_request(uri, "", headers)
    result = edge_function("redirect-country")("origin-request", request)
    assert isinstance(result, RequestResult) and result.request == request


def test_device_redirect_for_mobile_only() -> None:
    fn = edge_function("redirect-device")
    mobile = fn("origin-request", origin_request("/products/42", "c=1", [("CloudFront-Is-Mobile-Viewer", "true")]))
    assert isinstance(mobile, GeneratedResponse)
    assert (mobile.response.status, header(mobile.response.headers, "location")) == (302, "/m/products/42?c=1")
    desktop = fn("origin-request", origin_request("/products/42", "", [("CloudFront-Is-Mobile-Viewer", "false")]))
    assert isinstance(desktop, RequestResult) and desktop.request.uri == "/products/42"
    already = fn("origin-request", origin_request("/m/products/42", "", [("CloudFront-Is-Mobile-Viewer", "true")]))
    assert isinstance(already, RequestResult)


@pytest.mark.parametrize(
    ("uri", "qs", "location"),
    [
        ("/about-us.html", "", "/about/"),
        ("/docs/v1/install", "lang=en", "/docs/latest/install?lang=en"),
        ("/old-blog/2019/post", "", "/blog/2019/post"),
    ],
)
def test_legacy_paths_get_301(uri: str, qs: str, location: str) -> None:
    result = edge_function("redirect-legacy")("viewer-request", viewer_request(uri, qs))
    assert isinstance(result, GeneratedResponse)
    assert result.response.status == 301 and result.response.status_description == "Moved Permanently"
    assert header(result.response.headers, "Location") == location


def test_legacy_other_paths_pass() -> None:
    request = viewer_request("/about/", "x=1")
    result = edge_function("redirect-legacy")("viewer-request", request)
    assert isinstance(result, RequestResult) and result.request == request
