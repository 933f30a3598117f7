"""Response headers policies through a real POP: a managed policy on hits, misses and origin errors (where the
viewer-response function is skipped but the policy is not), a custom policy from the settings with CORS and its
preflight, removals and Override, the order with a viewer-response function (the policy first: the function sees
its headers), and CloudFront's Server-Timing format (Pragma: server-timing)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge.cdn.config.response_headers import parse_response_headers_policy_config
from tests.cdn.config.test_response_headers import CUSTOM
from tests.e2e.conftest import VRS, EdgeStack, assoc, behavior_config, fn_events
from tests.e2e.test_cloudfront_functions import CffPop, fa

SEEN = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    seen = response["headers"].get("strict-transport-security", [{"value": "none"}])[0]["value"]
    response["headers"]["x-seen-by-function"] = [{"key": "X-Seen-By-Function", "value": seen}]
    return response
"""


async def test_managed_policy_on_hits_misses_errors_and_before_viewer_response(edge: EdgeStack) -> None:
    await edge.function("seen", SEEN)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60", "X-Frame-Options": "DENY",
                                                 "X-Content-Type-Options": "sniff"})
    default = {**behavior_config(), "ResponseHeadersPolicyId": "Managed-CORS-and-SecurityHeadersPolicy"}
    await edge.start(default=default, associations=[assoc(VRS, "seen")])
    for x_cache in ("Miss from cloudfront", "Hit from cloudfront"):
        s, h, _ = await edge.get("/a", headers={"Origin": "https://anywhere.example"})
        assert (s, h["X-Cache"]) == (200, x_cache)
        assert h["X-Frame-Options"] == "DENY"  # the origin's wins: no Override
        assert h["X-Content-Type-Options"] == "nosniff"  # Override
        assert h["Strict-Transport-Security"] == "max-age=31536000" and h["Access-Control-Allow-Origin"] == "*"
        assert h["X-Seen-By-Function"] == "max-age=31536000"  # the function ran after the policy
    _, h, _ = await edge.get("/a")
    assert "Access-Control-Allow-Origin" not in h  # not a CORS request
    s, h, _ = await edge.get("/missing")
    assert s == 404 and VRS not in fn_events(h)  # the function is skipped on an origin error ...
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"  # ... the policy is not


async def test_custom_policy_cors_preflight_removals_and_server_timing(edge: EdgeStack) -> None:
    policy = parse_response_headers_policy_config("0e7fd887-8503-4f5b-975a-6f7202abe780", CUSTOM, "p")
    edge.origin.script("/api", body=b"{}", headers={"Cache-Control": "max-age=60", "Server": "nginx",
                                                   "X-Powered-By": "php", "Server-Timing": "db;dur=53"})
    default = {**behavior_config(methods=("GET", "HEAD", "OPTIONS")), "ResponseHeadersPolicyId": policy.id}
    await edge.start(default=default, settings_overrides={"response_headers_policies": {policy.id: policy}})
    s, h, _ = await edge.request("OPTIONS", "/api", headers={"Origin": "https://app.example.org",
                                                             "Access-Control-Request-Method": "POST"})
    assert edge.origin.requests["/api"][-1].method == "OPTIONS"  # forwarded: the origin answers the preflight
    assert h["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert (h["Access-Control-Allow-Methods"], h["Access-Control-Allow-Headers"], h["Access-Control-Max-Age"]) == (
        "GET, POST", "X-Token", "600")
    s, h, _ = await edge.get("/api", headers={"Origin": "https://evil.example", "Pragma": "server-timing"})
    assert s == 200 and "Access-Control-Allow-Origin" not in h
    assert h["Server"] == "CloudFront" and "X-Powered-By" not in h and h["X-Env"] == "local"
    timing = h["Server-Timing"]
    assert timing.startswith('cdn-upstream-layer;desc="EDGE",cdn-upstream-fbl;dur=')
    assert re.search(r',cdn-cache-miss,cdn-pop;desc="[A-Z]+\d+-C1",cdn-rid;desc="[^"]{56}",cdn-downstream-fbl;dur=\d+,'
                     r"db;dur=53$", timing), timing
    _, h, _ = await edge.get("/api", headers={"Pragma": "no-cache, server-timing"})
    assert h["X-Cache"] == "Hit from cloudfront"
    assert re.fullmatch(r'cdn-cache-hit,cdn-pop;desc="[^"]+",cdn-rid;desc="[^"]+",cdn-hit-layer;desc="EDGE",'
                        r"cdn-downstream-fbl;dur=\d+", h["Server-Timing"]), h["Server-Timing"]
    _, h, _ = await edge.get("/api")  # not sampled at 12.5 % every time: edgelab's own format when it is not
    assert h["Server-Timing"].startswith(("cdn-cache;desc=HIT", "cdn-cache-hit"))


@pytest.fixture
async def cff(tmp_path: Path) -> AsyncIterator[CffPop]:
    stack = await CffPop(tmp_path).open()
    try:
        yield stack
    finally:
        await stack.close()


async def test_cloudfront_viewer_response_function_sees_the_policy_headers(cff: CffPop) -> None:
    cff.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    cff.function("copy", """function handler(event) {
  var r = event.response; var v = r.headers['x-frame-options'];
  r.headers['x-seen-by-function'] = {value: v ? v.value : 'none'}; return r; }""")
    await cff.start(functions=[fa("viewer-response", "copy")],
                    behavior={**behavior_config(), "ResponseHeadersPolicyId": "67f7725c-6f97-4210-82d7-5512b31e9d03"})
    s, h, _ = await cff.get("/a")
    assert (s, h["X-Frame-Options"], h["X-Seen-By-Function"]) == (200, "SAMEORIGIN", "SAMEORIGIN")
