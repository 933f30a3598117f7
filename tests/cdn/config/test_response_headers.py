"""Response headers policies: the managed ones by ID and name, the parser of custom ones (settings) and its errors,
and the header arithmetic of steps/response_headers (removals first, Override, CORS vs preflight)."""

from __future__ import annotations

from typing import Any

import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.policies import ConfigError
from edge.cdn.config.response_headers import MANAGED_RESPONSE_HEADERS_POLICIES, parse_response_headers_policy_config
from edge.cdn.config.settings import parse_settings
from edge.cdn.models import EdgeRequest
from edge.cdn.steps.response_headers import policy_headers
from tests.cdn.scripted_origin import behavior_config, distribution_config

CUSTOM: dict[str, Any] = {
    "Name": "api-cors", "Comment": "",
    "CorsConfig": {"AccessControlAllowOrigins": {"Quantity": 2, "Items": ["https://app.example.org",
                                                                          "https://*.example.net"]},
                   "AccessControlAllowHeaders": {"Quantity": 1, "Items": ["X-Token"]},
                   "AccessControlAllowMethods": {"Quantity": 2, "Items": ["GET", "POST"]},
                   "AccessControlAllowCredentials": True, "AccessControlMaxAgeSec": 600, "OriginOverride": True,
                   "AccessControlExposeHeaders": {"Quantity": 1, "Items": ["X-Request-Id"]}},
    "SecurityHeadersConfig": {
        "StrictTransportSecurity": {"Override": True, "AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": True,
                                    "Preload": True},
        "XSSProtection": {"Override": False, "Protection": True, "ReportUri": "https://r.example/x"},
        "FrameOptions": {"Override": False, "FrameOption": "DENY"}},
    "CustomHeadersConfig": {"Quantity": 1, "Items": [{"Header": "X-Env", "Value": "local", "Override": False}]},
    "RemoveHeadersConfig": {"Quantity": 2, "Items": [{"Header": "X-Powered-By"}, {"Header": "Server"}]},
    "ServerTimingHeadersConfig": {"Enabled": True, "SamplingRate": 12.5},
}


def req(method: str = "GET", **headers: str) -> EdgeRequest:
    return EdgeRequest(method=method, uri="/", querystring="",
                       headers=[(k.replace("_", "-"), v) for k, v in headers.items()], client_ip="127.0.0.1")


def test_managed_policies_by_id_and_name() -> None:
    for ref in ("67f7725c-6f97-4210-82d7-5512b31e9d03", "SecurityHeadersPolicy", "Managed-SecurityHeadersPolicy"):
        d = load_distribution(distribution_config(default={**behavior_config(), "ResponseHeadersPolicyId": ref}))
        p = d.default_behavior.response_headers_policy
        assert p is not None and p.name == "SecurityHeadersPolicy"
    assert len(MANAGED_RESPONSE_HEADERS_POLICIES) == 5


def test_custom_policy_from_settings_and_rendered_values() -> None:
    s = parse_settings({"response_headers_policies": {"0e7fd887-8503-4f5b-975a-6f7202abe780": CUSTOM}})
    d = load_distribution(distribution_config(default={**behavior_config(),
                                                       "ResponseHeadersPolicyId": "0e7fd887-8503-4f5b-975a-6f7202abe780"}), s)
    p = d.default_behavior.response_headers_policy
    assert p is not None and p.server_timing and p.sampling_rate == 12.5
    got = dict(policy_headers(p, req(), [("Server", "nginx"), ("X-Powered-By", "php"), ("X-Frame-Options", "x")]))
    assert got["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"
    assert got["X-XSS-Protection"] == "1; report=https://r.example/x"
    assert got["X-Frame-Options"] == "x"  # no Override: the origin's wins
    assert got["Server"] == "CloudFront" and "X-Powered-By" not in got and got["X-Env"] == "local"
    assert "Access-Control-Allow-Origin" not in got  # not a CORS request


def test_cors_request_and_preflight() -> None:
    p = parse_response_headers_policy_config("p", CUSTOM, "p")
    cors = dict(policy_headers(p, req(Origin="https://a.example.net"), [("Access-Control-Allow-Origin", "*")]))
    assert cors["Access-Control-Allow-Origin"] == "https://a.example.net"  # OriginOverride: replaced, reflected
    assert cors["Access-Control-Allow-Credentials"] == "true" and "Access-Control-Max-Age" not in cors
    pre = dict(policy_headers(p, req("OPTIONS", Origin="https://app.example.org",
                                     Access_Control_Request_Method="POST"), []))
    assert (pre["Access-Control-Allow-Methods"], pre["Access-Control-Allow-Headers"], pre["Access-Control-Max-Age"]) == (
        "GET, POST", "X-Token", "600")
    assert "Access-Control-Allow-Origin" not in dict(policy_headers(p, req(Origin="https://evil.example"), []))
    assert "Access-Control-Allow-Origin" not in dict(policy_headers(p, req(Origin="https://a.b.example.net"), []))


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda c: c.pop("Name"), "p.Name"),
    (lambda c: c["CorsConfig"].update(AccessControlAllowOrigins={"Quantity": 1, "Items": ["example.*"]}),
     "p.CorsConfig.AccessControlAllowOrigins.Items[0]"),
    (lambda c: c["CorsConfig"].update(AccessControlAllowHeaders={"Quantity": 0, "Items": []}),
     "p.CorsConfig.AccessControlAllowHeaders"),
    (lambda c: c["RemoveHeadersConfig"]["Items"].append({"Header": "Content-Length"}),
     "p.RemoveHeadersConfig.Items[2].Header"),
    (lambda c: c["SecurityHeadersConfig"]["XSSProtection"].update(ModeBlock=True), "p.SecurityHeadersConfig.XSSProtection"),
    (lambda c: c["ServerTimingHeadersConfig"].update(SamplingRate=101), "p.ServerTimingHeadersConfig.SamplingRate"),
    (lambda c: c.update(Unknown=1), "p.Unknown"),
])
def test_errors_name_the_field(mutate: Any, path: str) -> None:
    import copy

    c = copy.deepcopy(CUSTOM)
    c["RemoveHeadersConfig"]["Quantity"] = len(c["RemoveHeadersConfig"]["Items"])
    mutate(c)
    c["RemoveHeadersConfig"]["Quantity"] = len(c["RemoveHeadersConfig"]["Items"])
    with pytest.raises(ConfigError) as ei:
        parse_response_headers_policy_config("p", c, "p")
    assert ei.value.path == path


def test_unknown_policy_says_where_to_define_it() -> None:
    with pytest.raises(ConfigError, match=r"\[response_headers_policies\]"):
        load_distribution(distribution_config(default={**behavior_config(), "ResponseHeadersPolicyId": "nope"}))
