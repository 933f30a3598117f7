"""The origin helpers' arguments as data (edge.cdn.cloudfront_functions.origin)."""

from __future__ import annotations

import pytest

from edge.cdn.cloudfront_functions.errors import FunctionValidationError
from edge.cdn.cloudfront_functions.origin import (
    OriginGroupChange,
    OriginOverrides,
    OriginSelect,
    OriginUpdate,
    parse_origin_ops,
)


def test_no_calls_no_change() -> None:
    assert parse_origin_ops([]) is None


def test_update_request_origin() -> None:
    change = parse_origin_ops([["updateRequestOrigin", {
        "domainName": "example.org", "originPath": "/p", "customHeaders": {"x-a": "1"}, "connectionAttempts": 2,
        "timeouts": {"readTimeout": 10, "connectionTimeout": 5}, "hostHeader": "h.example.org",
        "customOriginConfig": {"port": 8443, "protocol": "https", "sslProtocols": ["TLSv1.2"]},
    }, None]])
    assert isinstance(change, OriginUpdate)
    assert change.domain_name == "example.org" and change.origin_path == "/p"
    assert change.custom_headers == (("x-a", "1"),) and change.connection_attempts == 2
    assert change.timeouts == {"readTimeout": 10, "connectionTimeout": 5}
    assert change.port == 8443 and change.protocol == "https" and change.overrides.host_header == "h.example.org"
    assert parse_origin_ops([["updateRequestOrigin", {"customHeaders": {}}, None]]).custom_headers == ()


@pytest.mark.parametrize(
    "params",
    [
        {"domainName": "1.2.3.4"},
        {"domainName": "a.example:8080"},
        {"domainName": "a" * 254},
        {"originPath": "p"},
        {"originPath": "/p/"},
        {"customHeaders": {"X-Upper": "1"}},
        {"customHeaders": {"x-forwarded-proto": "https"}},
        {"connectionAttempts": 4},
        {"timeouts": {"connectionTimeout": 11}},
        {"timeouts": {"readTimeout": 30, "responseCompletionTimeout": 10}},
        {"originAccessControlConfig": {"enabled": True, "signingProtocol": "sigv2"}},
        {"customOriginConfig": {"protocol": "ftp"}},
        {"customOriginConfig": {"ipAddressType": "ipv6"}},
        {"allowedCertificateNames": ["x"] * 21},
        "not an object",
    ],
)
def test_invalid_update_is_a_validation_error(params) -> None:
    with pytest.raises(FunctionValidationError) as exc:
        parse_origin_ops([["updateRequestOrigin", params, None]])
    assert exc.value.status == 502 and "invalid origin" in exc.value.message


def test_select_and_group_and_last_call_wins() -> None:
    select = parse_origin_ops([["updateRequestOrigin", {"domainName": "a.test"}, None],
                               ["selectRequestOriginById", "o2", {"sni": "s.test"}]])
    assert select == OriginSelect("o2", OriginOverrides(sni="s.test"))
    group = parse_origin_ops([["createRequestOriginGroup", {
        "originIds": ["o1", {"originId": "o2", "originOverrides": {"hostHeader": "h.test"}}],
        "failoverCriteria": {"statusCodes": [500, 503]}}, None]])
    assert group == OriginGroupChange((("o1", OriginOverrides()), ("o2", OriginOverrides(host_header="h.test"))), (500, 503))
    for bad in ({"originIds": ["o1"], "failoverCriteria": {"statusCodes": [500]}},
                {"originIds": ["o1", "o2"], "failoverCriteria": {"statusCodes": [200]}},
                {"originIds": ["o1", "o2"], "failoverCriteria": {"statusCodes": [500]}, "selectionCriteria": "x"}):
        with pytest.raises(FunctionValidationError):
            parse_origin_ops([["createRequestOriginGroup", bad, None]])
    with pytest.raises(FunctionValidationError):
        parse_origin_ops([["selectRequestOriginById", "", None]])
