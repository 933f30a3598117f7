"""build_event: shapes compared with the example events of contract §1.8, plus the availability matrix."""

from __future__ import annotations

import base64
from dataclasses import replace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.lambda_edge import events as events_mod
from edge.cdn.lambda_edge.events import (
    EventConfig,
    build_event,
    build_event_dict,
    encode_event,
    encode_viewer_request,
    event_header_maps,
    header_map,
    viewer_request_prefix,
)
from edge.cdn.lambda_edge.rules import BODY_EXPOSED_LIMIT
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, S3Origin

CONFIG = EventConfig(
    distribution_domain_name="d3example1.cloudfront.net",
    distribution_id="E2EXAMPLE12345",
    request_id="BqUvUYtUv-vhg-aa4kCoXGB6FlLY7RGl78Xl30lhSQKQKtD41j0NlA==",
)
VIA = "2.0 a8ada7c07139510647e7604c5917836f.cloudfront.net (CloudFront)"
ORIGIN = CustomOrigin(
    domain_name="origin.example.org",
    port=443,
    protocol="https",
    read_timeout=30,
    keepalive_timeout=5,
    custom_headers=(("X-Origin-Secret", "s3cr3t"),),
)


def _config(event_type: str) -> dict[str, str]:
    return {
        "distributionDomainName": "d3example1.cloudfront.net",
        "distributionId": "E2EXAMPLE12345",
        "eventType": event_type,
        "requestId": CONFIG.request_id,
    }


def _h(key: str, value: str) -> list[dict[str, str]]:
    return [{"key": key, "value": value}]


def test_viewer_request_post_with_body_matches_contract_example() -> None:
    request = EdgeRequest(
        method="POST",
        uri="/forms/contact",
        querystring="lang=en&src=mail",
        headers=[
            ("Host", "www.example.com"),
            ("User-Agent", "curl/8.5.0"),
            ("Accept", "*/*"),
            ("Cookie", "session-id=abc123; ab=B"),
            ("Cookie", "theme=dark"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "15"),
        ],
        client_ip="198.51.100.7",
        body=b"name=Joe&msg=hi",
        origin=ORIGIN,  # the behavior's origin: never part of a viewer event
    )
    event = orjson.loads(build_event("viewer-request", config=CONFIG, request=request, include_body=True))
    assert event == {
        "Records": [
            {
                "cf": {
                    "config": _config("viewer-request"),
                    "request": {
                        "clientIp": "198.51.100.7",
                        "method": "POST",
                        "uri": "/forms/contact",
                        "querystring": "lang=en&src=mail",
                        "headers": {
                            "host": _h("Host", "www.example.com"),
                            "user-agent": _h("User-Agent", "curl/8.5.0"),
                            "accept": _h("Accept", "*/*"),
                            "cookie": [
                                {"key": "Cookie", "value": "session-id=abc123; ab=B"},
                                {"key": "Cookie", "value": "theme=dark"},
                            ],
                            "content-type": _h("Content-Type", "application/x-www-form-urlencoded"),
                            "content-length": _h("Content-Length", "15"),
                        },
                        "body": {
                            "inputTruncated": False,
                            "action": "read-only",
                            "encoding": "base64",
                            "data": "bmFtZT1Kb2UmbXNnPWhp",
                        },
                    },
                }
            }
        ]
    }


def _origin_request() -> EdgeRequest:
    return EdgeRequest(
        method="GET",
        uri="/products/42",
        querystring="",
        headers=[
            ("Host", "origin.example.org"),
            ("User-Agent", "Amazon CloudFront"),
            ("Via", VIA),
            ("X-Forwarded-For", "198.51.100.7"),
            ("Accept-Encoding", "gzip"),
            ("CloudFront-Viewer-Country", "DE"),
            ("X-Amz-Cf-Id", CONFIG.request_id),  # added on the wire, disallowed: not exposed
        ],
        client_ip="198.51.100.7",
        origin=ORIGIN,
    )


def test_origin_request_matches_contract_example() -> None:
    event = orjson.loads(build_event("origin-request", config=CONFIG, request=_origin_request()))
    assert event == {
        "Records": [
            {
                "cf": {
                    "config": _config("origin-request"),
                    "request": {
                        "clientIp": "198.51.100.7",
                        "method": "GET",
                        "uri": "/products/42",
                        "querystring": "",
                        "headers": {
                            "host": _h("Host", "origin.example.org"),
                            "user-agent": _h("User-Agent", "Amazon CloudFront"),
                            "via": _h("Via", VIA),
                            "x-forwarded-for": _h("X-Forwarded-For", "198.51.100.7"),
                            "accept-encoding": _h("Accept-Encoding", "gzip"),
                            "cloudfront-viewer-country": _h("CloudFront-Viewer-Country", "DE"),
                        },
                        "origin": {
                            "custom": {
                                "customHeaders": {"x-origin-secret": _h("X-Origin-Secret", "s3cr3t")},
                                "domainName": "origin.example.org",
                                "keepaliveTimeout": 5,
                                "path": "",
                                "port": 443,
                                "protocol": "https",
                                "readTimeout": 30,
                                "sslProtocols": ["TLSv1.2"],
                            }
                        },
                    },
                }
            }
        ]
    }


def test_origin_response_matches_contract_example_and_has_no_body() -> None:
    request = _origin_request()
    request.headers = request.headers[:4]
    request.origin = CustomOrigin(domain_name="origin.example.org", port=443, protocol="https")
    response = EdgeResponse(
        status=404,
        headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "312"),
            ("Date", "Mon, 06 Jan 2025 10:00:00 GMT"),
            ("Server", "nginx"),
        ],
        body=b"<html>not found</html>",
    )
    cf = orjson.loads(build_event("origin-response", config=CONFIG, request=request, response=response))["Records"][0]["cf"]
    assert cf["config"] == _config("origin-response")
    assert cf["request"]["origin"] == {
        "custom": {
            "customHeaders": {},
            "domainName": "origin.example.org",
            "keepaliveTimeout": 5,
            "path": "",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"],
        }
    }
    assert cf["response"] == {
        "status": "404",
        "statusDescription": "Not Found",
        "headers": {
            "content-type": _h("Content-Type", "text/html; charset=utf-8"),
            "content-length": _h("Content-Length", "312"),
            "date": _h("Date", "Mon, 06 Jan 2025 10:00:00 GMT"),
            "server": _h("Server", "nginx"),
        },
    }
    assert "body" not in cf["request"]


def test_viewer_response_hit_shows_age_not_x_cache_and_no_origin() -> None:
    request = EdgeRequest(
        method="GET",
        uri="/products/42",
        querystring="",
        headers=[("Host", "www.example.com"), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")],
        client_ip="198.51.100.7",
        origin=ORIGIN,
    )
    response = EdgeResponse(
        status=200,
        headers=[
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", "9593"),
            ("Cache-Control", "max-age=3600"),
            ("Age", "2402"),
            ("Date", "Mon, 06 Jan 2025 10:40:02 GMT"),
            ("X-Cache", "Hit from cloudfront"),
            ("X-Amz-Cf-Pop", "IAD89-C1"),
        ],
        body=b"x" * 9593,
    )
    event = build_event_dict(
        "viewer-response", config=CONFIG, request=request, response=response, include_body=True
    )
    assert event == {
        "Records": [
            {
                "cf": {
                    "config": _config("viewer-response"),
                    "request": {
                        "clientIp": "198.51.100.7",
                        "method": "GET",
                        "uri": "/products/42",
                        "querystring": "",
                        "headers": {
                            "host": _h("Host", "www.example.com"),
                            "user-agent": _h("User-Agent", "curl/8.5.0"),
                            "accept": _h("Accept", "*/*"),
                        },
                    },
                    "response": {
                        "status": "200",
                        "statusDescription": "OK",
                        "headers": {
                            "content-type": _h("Content-Type", "text/html; charset=utf-8"),
                            "content-length": _h("Content-Length", "9593"),
                            "cache-control": _h("Cache-Control", "max-age=3600"),
                            "age": _h("Age", "2402"),
                            "date": _h("Date", "Mon, 06 Jan 2025 10:40:02 GMT"),
                        },
                    },
                }
            }
        ]
    }


def test_s3_origin_shape_matches_2019_docs_example() -> None:
    request = _origin_request()
    request.origin = S3Origin(
        domain_name="my-bucket.s3.amazonaws.com",
        path="/s3_path",
        auth_method="origin-access-identity",
        region="us-east-1",
        custom_headers=(("My-Origin-Custom-Header", "Test"),),
    )
    cf = build_event_dict("origin-request", config=CONFIG, request=request)["Records"][0]["cf"]
    assert cf["request"]["origin"] == {
        "s3": {
            "authMethod": "origin-access-identity",
            "customHeaders": {"my-origin-custom-header": _h("My-Origin-Custom-Header", "Test")},
            "domainName": "my-bucket.s3.amazonaws.com",
            "path": "/s3_path",
            "region": "us-east-1",
        }
    }


def test_s3_origin_without_region_omits_it() -> None:
    request = _origin_request()
    request.origin = S3Origin(domain_name="b.s3.amazonaws.com")
    s3 = build_event_dict("origin-request", config=CONFIG, request=request)["Records"][0]["cf"]["request"]["origin"]["s3"]
    assert "region" not in s3 and s3["authMethod"] == "none"


@pytest.mark.parametrize(
    "name",
    [
        "Connection", "Expect", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
        "Trailer", "Upgrade", "X-Accel-Buffering", "X-Accel-Charset", "X-Accel-Limit-Rate", "X-Accel-Redirect",
        "X-Amz-Cf-Id", "X-Amz-Cf-Pop", "X-Amzn-Auth", "X-Amzn-Cf-Billing", "X-Amzn-Cf-Id", "X-Amzn-Cf-Xff",
        "X-Amzn-Errortype", "X-Amzn-Fle-Profile", "X-Amzn-Header-Count", "X-Amzn-Header-Order",
        "X-Amzn-Lambda-Integration-Tag", "X-Amzn-RequestId", "X-Cache", "X-Edge-Location", "X-Forwarded-Proto",
        "X-Real-IP",
    ],
)
def test_disallowed_headers_are_not_exposed(name: str) -> None:
    assert header_map([("Host", "a"), (name, "v"), (name.upper(), "w")]) == {"host": _h("Host", "a")}


def test_not_disallowed_lookalikes_are_exposed() -> None:
    names = ["X-Amzn-Trace-Id", "X-Amz-Meta-Foo", "X-Forwarded-For", "CloudFront-Is-Mobile-Viewer", "X-Edgy"]
    assert list(header_map([(n, "1") for n in names])) == [n.lower() for n in names]


def test_header_map_keeps_original_case_and_each_occurrence_in_order() -> None:
    hm = header_map([("set-cookie", "a=1"), ("Accept", "x"), ("SET-COOKIE", "b=2")])
    assert hm == {
        "set-cookie": [{"key": "set-cookie", "value": "a=1"}, {"key": "SET-COOKIE", "value": "b=2"}],
        "accept": _h("Accept", "x"),
    }


@pytest.mark.parametrize(("event_type", "limit"), [("viewer-request", 40 * 1024), ("origin-request", 1024 * 1024)])
def test_body_truncated_at_exposure_limit(event_type: str, limit: int) -> None:
    body = bytes(range(256)) * ((limit // 256) + 2)
    request = EdgeRequest("POST", "/u", "", [], "1.2.3.4", body=body, origin=ORIGIN)
    cf = build_event_dict(event_type, config=CONFIG, request=request, include_body=True)["Records"][0]["cf"]
    exposed = cf["request"]["body"]
    assert exposed["inputTruncated"] is True
    assert base64.b64decode(exposed["data"]) == body[:limit]
    assert BODY_EXPOSED_LIMIT[event_type] == limit


def test_body_at_exactly_the_limit_is_not_truncated_and_custom_limit_applies() -> None:
    request = EdgeRequest("PUT", "/u", "", [], "1.2.3.4", body=b"abcdef")
    body = build_event_dict("viewer-request", config=CONFIG, request=request, include_body=True, body_limit=6)
    assert body["Records"][0]["cf"]["request"]["body"]["inputTruncated"] is False
    body = build_event_dict("viewer-request", config=CONFIG, request=request, include_body=True, body_limit=4)
    exposed = body["Records"][0]["cf"]["request"]["body"]
    assert exposed["inputTruncated"] is True and base64.b64decode(exposed["data"]) == b"abcd"


def test_include_body_without_a_body_exposes_empty_data() -> None:
    request = EdgeRequest("GET", "/", "", [], "1.2.3.4")
    exposed = build_event_dict("viewer-request", config=CONFIG, request=request, include_body=True)
    assert exposed["Records"][0]["cf"]["request"]["body"] == {
        "inputTruncated": False, "action": "read-only", "encoding": "base64", "data": ""
    }


@pytest.mark.parametrize("event_type", ["viewer-request", "origin-request", "origin-response", "viewer-response"])
def test_field_availability_matrix(event_type: str) -> None:
    request = EdgeRequest("POST", "/u", "a=1", [("Host", "h")], "::1", body=b"x", origin=ORIGIN)
    response = EdgeResponse(201, [("ETag", '"1"')], b"created")
    cf = build_event_dict(event_type, config=CONFIG, request=request, response=response, include_body=True)[
        "Records"
    ][0]["cf"]
    has_body = event_type in ("viewer-request", "origin-request")
    has_origin = event_type in ("origin-request", "origin-response")
    has_response = event_type in ("origin-response", "viewer-response")
    assert ("body" in cf["request"]) is has_body
    assert ("origin" in cf["request"]) is has_origin
    assert ("response" in cf) is has_response
    assert set(cf["config"]) == {"distributionDomainName", "distributionId", "eventType", "requestId"}
    assert cf["request"]["clientIp"] == "::1"
    if has_response:
        assert cf["response"]["status"] == "201" and cf["response"]["statusDescription"] == "Created"
        assert "body" not in cf["response"]


def test_status_description_kept_when_set_and_empty_for_unknown_codes() -> None:
    request = EdgeRequest("GET", "/", "", [], "1.2.3.4")
    for response, expected in ((EdgeResponse(200, [], status_description="Fine"), "Fine"), (EdgeResponse(599, []), "")):
        cf = build_event_dict("viewer-response", config=CONFIG, request=request, response=response)
        assert cf["Records"][0]["cf"]["response"]["statusDescription"] == expected


def test_fractional_origin_timeouts_stay_numbers() -> None:
    request = _origin_request()
    request.origin = CustomOrigin(domain_name="o.example", read_timeout=4.5)
    custom = build_event_dict("origin-request", config=CONFIG, request=request)["Records"][0]["cf"]["request"]
    assert custom["origin"]["custom"]["readTimeout"] == 4.5


def test_caller_bugs_raise_value_error() -> None:
    request = EdgeRequest("GET", "/", "", [], "1.2.3.4")
    with pytest.raises(ValueError, match="unknown Lambda@Edge event type"):
        build_event("viewer", config=CONFIG, request=request)
    with pytest.raises(ValueError, match="needs a response"):
        build_event("origin-response", config=CONFIG, request=request)


def test_build_event_returns_compact_json_bytes() -> None:
    request = EdgeRequest("GET", "/é", "", [("X-Name", "zoë")], "1.2.3.4")
    raw = build_event("viewer-request", config=CONFIG, request=request)
    assert isinstance(raw, bytes) and raw.startswith(b'{"Records":[{"cf":{')
    assert orjson.loads(raw)["Records"][0]["cf"]["request"]["headers"]["x-name"][0]["value"] == "zoë"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(["", "a b", "\udcff"])
_NAMES = st.sampled_from(["Host", "host", "Accept", "X-Amzn-Trace-Id", "Via", "Connection", "X-Edge-Thing", "Cookie",
                          "User-Agent", "x-dup", "X-Dup"])


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_NAMES, _TEXT), max_size=8), uri=_TEXT.map(lambda t: "/" + t), qs=_TEXT,
       request_id=_TEXT, domain=st.sampled_from(["d111.cloudfront.net", "é.example"]))
def test_encode_viewer_request_is_encode_event_of_build_event_dict(headers: list[tuple[str, str]], uri: str, qs: str,
                                                                   request_id: str, domain: str) -> None:
    """The trigger runner's straight-to-bytes viewer-request event (no IncludeBody) is byte for byte the general one,
    with the same header map; None exactly when the general path has to fix a value that is not UTF-8 (``\\udcff``:
    a byte the HTTP parser kept as a lone surrogate)."""
    request = EdgeRequest(method="GET", uri=uri, querystring=qs, headers=headers, client_ip="203.0.113.9")
    event = build_event_dict("viewer-request", config=EventConfig(domain, "EDIST", request_id), request=request)
    fast = encode_viewer_request(viewer_request_prefix(domain, "EDIST"), request_id, request)
    try:
        orjson.dumps(event)
        plain = True
    except orjson.JSONEncodeError:
        plain = False
    if not plain:
        assert fast is None
        return
    assert fast is not None
    assert fast[0] == encode_event(event)
    assert fast[1] == event_header_maps(event)[0]


def test_encode_viewer_request_encodes_a_request_again_only_when_it_differs() -> None:
    """What is kept by request (``events._ENCODED``) gives the bytes encoding would: the same request (another id,
    another distribution) from what was kept, any other request - each part changed - its own."""
    base = EdgeRequest("GET", "/a", "q=1", [("Host", "d.example"), ("Accept", "*/*")], "203.0.113.9")
    prefix = viewer_request_prefix("d1.cloudfront.net", "E1")
    events_mod._ENCODED.clear()

    def agrees(request: EdgeRequest, request_id: str) -> bool:
        event = build_event_dict("viewer-request", config=EventConfig("d1.cloudfront.net", "E1", request_id),
                                 request=request)
        return encode_viewer_request(prefix, request_id, request) == (encode_event(event), event_header_maps(event)[0])

    assert agrees(base, "r1") and len(events_mod._ENCODED) == 1
    assert agrees(base, "r2") and len(events_mod._ENCODED) == 1  # the same request: from what was kept, its own id
    other = encode_viewer_request(viewer_request_prefix("d2.cloudfront.net", "E2"), "r3", base)
    assert other is not None and b'"distributionId":"E2"' in other[0] and b'"requestId":"r3"' in other[0]
    for changed in (replace(base, method="HEAD"), replace(base, uri="/b"), replace(base, querystring="q=2"),
                    replace(base, client_ip="198.51.100.1"),
                    replace(base, headers=[("host", "d.example"), ("Accept", "*/*")]),
                    replace(base, headers=[("Host", "d.example"), ("Accept", "text/html")])):
        assert agrees(changed, "r4")
    assert len(events_mod._ENCODED) == 7
