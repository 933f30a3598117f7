"""edge-hello, security-headers, default-cache-control, cors, custom-error-page."""

from __future__ import annotations

import pytest

from edge.cdn.lambda_edge.results import GeneratedResponse, RequestResult, ResponseResult
from tests.functions.edge_harness import (
    CONFIG,
    edge_function,
    header,
    json_body,
    origin_request,
    origin_response,
    viewer_request,
)


def test_edge_hello_json() -> None:
    result = edge_function("edge-hello")("viewer-request", viewer_request("/edge/hello"))
    assert isinstance(result, GeneratedResponse)
    assert result.response.status == 200 and header(result.response.headers, "Content-Type") == "application/json"
    assert json_body(result.response.body) == {
        "message": "hello from the edge",
        "clientIp": "198.51.100.7",
        "requestId": CONFIG.request_id,
        "function": "us-east-1.edge-hello",
    }


def test_edge_hello_robots_and_passthrough() -> None:
    fn = edge_function("edge-hello")
    robots = fn("viewer-request", viewer_request("/robots.txt"))
    assert robots.response.body == b"User-agent: *\nDisallow: /private/\n"
    assert isinstance(fn("viewer-request", viewer_request("/edge/other")), RequestResult)


@pytest.mark.parametrize("event_type", ["origin-response", "viewer-response"])
def test_security_headers(event_type: str) -> None:
    request = origin_request() if event_type == "origin-response" else viewer_request()
    response = origin_response(headers=[("X-Frame-Options", "SAMEORIGIN")])
    result = edge_function("security-headers")(event_type, request, response)
    assert isinstance(result, ResponseResult) and not result.body_replaced
    headers = result.response.headers
    assert header(headers, "Strict-Transport-Security") == "max-age=63072000; includeSubDomains; preload"
    assert header(headers, "X-Content-Type-Options") == "nosniff"
    assert [v for k, v in headers if k.lower() == "x-frame-options"] == ["DENY"]
    assert result.response.body == b"<p>hi</p>"


@pytest.mark.parametrize(("status", "value"), [(200, "public, max-age=300"), (301, "public, max-age=300"), (404, "public, max-age=10"), (503, "public, max-age=10")])
def test_default_cache_control_added(status: int, value: str) -> None:
    result = edge_function("default-cache-control")("origin-response", origin_request(), origin_response(status))
    assert header(result.response.headers, "Cache-Control") == value and result.response.status == status


@pytest.mark.parametrize("existing", [("Cache-Control", "no-store"), ("Expires", "Thu, 01 Jan 2037 00:00:00 GMT")])
def test_default_cache_control_respects_origin(existing: tuple[str, str]) -> None:
    response = origin_response(headers=[existing])
    result = edge_function("default-cache-control")("origin-response", origin_request(), response)
    assert header(result.response.headers, "Cache-Control") == (existing[1] if existing[0] == "Cache-Control" else None)


def _preflight(origin: str) -> list[tuple[str, str]]:
    return [("Origin", origin), ("Access-Control-Request-Method", "PUT")]


def test_cors_preflight_answered_at_edge() -> None:
    result = edge_function("cors")("viewer-request", viewer_request("/api/items", method="OPTIONS", headers=_preflight("https://app.example.com")))
    assert isinstance(result, GeneratedResponse) and result.response.status == 204 and result.response.body == b""
    assert header(result.response.headers, "Access-Control-Allow-Origin") == "https://app.example.com"
    assert header(result.response.headers, "Access-Control-Allow-Methods") == "GET, HEAD, POST, PUT, DELETE, OPTIONS"


def test_cors_preflight_other_origin_forbidden_and_plain_options_passes() -> None:
    fn = edge_function("cors")
    denied = fn("viewer-request", viewer_request("/api", method="OPTIONS", headers=_preflight("https://evil.example")))
    assert denied.response.status == 403
    plain = fn("viewer-request", viewer_request("/api", method="OPTIONS"))
    assert isinstance(plain, RequestResult)


def test_cors_origin_response_headers() -> None:
    fn = edge_function("cors")
    request = origin_request("/api/items", headers=[("Origin", "http://localhost:3000")])
    result = fn("origin-response", request, origin_response(headers=[("Vary", "Accept-Encoding")]))
    headers = result.response.headers
    assert header(headers, "Access-Control-Allow-Origin") == "http://localhost:3000"
    assert [v for k, v in headers if k.lower() == "vary"] == ["Accept-Encoding", "Origin"]
    other = fn("origin-response", origin_request("/api", headers=[("Origin", "https://evil.example")]), origin_response())
    assert header(other.response.headers, "Access-Control-Allow-Origin") is None


@pytest.mark.parametrize(("status", "text"), [(404, b"find that page"), (403, b"have access"), (502, b"went wrong"), (410, b"didn't work")])
def test_custom_error_page(status: int, text: bytes) -> None:
    response = origin_response(status, headers=[("Content-Encoding", "gzip"), ("Content-Length", "20")], body=b"\x1f\x8b...")
    result = edge_function("custom-error-page")("origin-response", origin_request("/missing"), response)
    assert isinstance(result, ResponseResult) and result.body_replaced
    assert result.response.status == status
    assert text in result.response.body and f"<h1>{status}</h1>".encode() in result.response.body
    headers = result.response.headers
    assert header(headers, "Content-Type") == "text/html; charset=utf-8"
    assert header(headers, "Content-Encoding") is None and header(headers, "Content-Length") is None


def test_custom_error_page_leaves_success_alone() -> None:
    result = edge_function("custom-error-page")("origin-response", origin_request(), origin_response(200))
    assert not result.body_replaced and result.response.body == b"<p>hi</p>"
