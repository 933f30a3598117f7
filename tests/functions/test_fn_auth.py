"""basic-auth, signed-cookie-gate, bot-filter."""

from __future__ import annotations

import base64
import time

import pytest

from edge.cdn.lambda_edge.results import GeneratedResponse, RequestResult
from tests.functions.edge_harness import edge_function, header, load_function, viewer_request


def _basic(user: str, password: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def test_basic_auth_accepts_right_credentials() -> None:
    request = viewer_request("/admin", headers=[_basic("edge", "lab")])
    result = edge_function("basic-auth")("viewer-request", request)
    assert isinstance(result, RequestResult) and result.request == request


@pytest.mark.parametrize("headers", [[], [_basic("edge", "nope")], [("Authorization", "Bearer x")]])
def test_basic_auth_challenges(headers: list[tuple[str, str]]) -> None:
    result = edge_function("basic-auth")("viewer-request", viewer_request("/admin", headers=headers))
    assert isinstance(result, GeneratedResponse) and result.response.status == 401
    assert header(result.response.headers, "WWW-Authenticate") == 'Basic realm="edgelab", charset="UTF-8"'
    assert result.response.body == b"Unauthorized\n"


def test_signed_cookie_valid_passes_among_other_cookies() -> None:
    module = load_function("signed-cookie-gate")
    cookie = module.sign(time.time() + 3600)
    request = viewer_request("/account", headers=[("Cookie", "theme=dark"), ("Cookie", f"a=1; edge-session={cookie}")])
    assert isinstance(edge_function("signed-cookie-gate")("viewer-request", request), RequestResult)


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "edge-session=garbage",
        "edge-session=99999999999.deadbeef",
        "other=1",
    ],
)
def test_signed_cookie_missing_or_forged_redirects_to_login(cookie: str | None) -> None:
    headers = [("Cookie", cookie)] if cookie else []
    result = edge_function("signed-cookie-gate")("viewer-request", viewer_request("/account", "tab=2", headers))
    assert isinstance(result, GeneratedResponse) and result.response.status == 302
    assert header(result.response.headers, "Location") == "/login?next=%2Faccount%3Ftab%3D2"


def test_signed_cookie_expired_and_public_paths() -> None:
    module = load_function("signed-cookie-gate")
    expired = module.sign(time.time() - 1)
    fn = edge_function("signed-cookie-gate")
    result = fn("viewer-request", viewer_request("/account", headers=[("Cookie", f"edge-session={expired}")]))
    assert isinstance(result, GeneratedResponse)
    assert isinstance(fn("viewer-request", viewer_request("/login")), RequestResult)
    assert isinstance(fn("viewer-request", viewer_request("/public/logo.png")), RequestResult)


@pytest.mark.parametrize("agent", ["Scrapy/2.11 (+https://scrapy.org)", "python-requests/2.31", "Mozilla/5.0 (compatible; BadBot/1.0)"])
def test_bot_filter_blocks(agent: str) -> None:
    request = viewer_request()
    request.headers = [("Host", "www.example.com"), ("User-Agent", agent)]
    result = edge_function("bot-filter")("viewer-request", request)
    assert isinstance(result, GeneratedResponse)
    assert (result.response.status, result.response.body) == (403, b"Access denied\n")


def test_bot_filter_lets_browsers_and_missing_agent_through() -> None:
    fn = edge_function("bot-filter")
    assert isinstance(fn("viewer-request", viewer_request()), RequestResult)
    request = viewer_request()
    request.headers = [("Host", "www.example.com")]
    assert isinstance(fn("viewer-request", request), RequestResult)
