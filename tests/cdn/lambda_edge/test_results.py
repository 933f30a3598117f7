"""parse_result: one test per validation rule (with CloudFront's reason text) and the conversions back."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest

from edge.cdn.errors import LambdaValidationError
from edge.cdn.lambda_edge.events import EventConfig, build_event_dict
from edge.cdn.lambda_edge.results import (
    PAGE_BODY,
    PAGE_NOT_OBJECT,
    PAGE_NOT_PARSABLE,
    PAGE_READ_ONLY,
    GeneratedResponse,
    RequestResult,
    ResponseResult,
    parse_result,
)
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, ResponseMeta

CONFIG = EventConfig("d1.cloudfront.net", "E1", "req-id==")
ORIGIN = CustomOrigin(domain_name="origin.example.org", port=443, protocol="https", origin_id="o1", connect_host="127.0.0.1")
PREFIX = "Lambda function result validation failed, "


def viewer_request(**kw: Any) -> EdgeRequest:
    fields: dict[str, Any] = {
        "method": "GET",
        "uri": "/index.html",
        "querystring": "a=1",
        "headers": [("Host", "www.example.com"), ("User-Agent", "curl"), ("Connection", "keep-alive")],
        "client_ip": "198.51.100.7",
        "origin": ORIGIN,
    }
    fields.update(kw)
    return EdgeRequest(**fields)


def origin_request(**kw: Any) -> EdgeRequest:
    headers = [
        ("Host", "origin.example.org"),
        ("Via", "1.1 abc.cloudfront.net (CloudFront)"),
        ("Accept-Encoding", "gzip"),
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Amz-Cf-Id", "req-id=="),
    ]
    return viewer_request(headers=headers, **kw)


def origin_response() -> EdgeResponse:
    return EdgeResponse(
        status=200,
        headers=[("Content-Type", "text/html"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive")],
        body=b"<p>origin</p>",
        meta=ResponseMeta(origin_seconds=0.25, content_length=13, set_cookie=False),
    )


def cf_of(event_type: str, request: EdgeRequest, response: EdgeResponse | None = None, **kw: Any) -> dict[str, Any]:
    return build_event_dict(event_type, config=CONFIG, request=request, response=response, **kw)["Records"][0]["cf"]


def run(event_type: str, result: Any, request: EdgeRequest, response: EdgeResponse | None = None, **kw: Any) -> Any:
    return parse_result(
        event_type, orjson.dumps(result), original_request=request, original_response=response, **kw
    )


def fails(event_type: str, result: Any, request: EdgeRequest, response: EdgeResponse | None = None, **kw: Any) -> LambdaValidationError:
    with pytest.raises(LambdaValidationError) as info:
        run(event_type, result, request, response, **kw)
    err = info.value
    assert err.status == 502 and err.x_cache == "LambdaValidationError from cloudfront"
    assert err.event_type == event_type
    return err


# --- JSON level --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"{", b"not json", b'{"a": 1} trailing'])
def test_unparsable_json(payload: bytes) -> None:
    with pytest.raises(LambdaValidationError) as info:
        parse_result("viewer-request", payload, original_request=viewer_request())
    assert info.value.detail == PAGE_NOT_PARSABLE
    assert info.value.page_line == "The Lambda function returned invalid JSON: The JSON output is not parsable."


@pytest.mark.parametrize("payload", [b"null", b'"text"', b"[1]", b"42"])
def test_not_an_object(payload: bytes) -> None:
    with pytest.raises(LambdaValidationError) as info:
        parse_result("origin-response", payload, original_request=viewer_request(), original_response=origin_response())
    assert info.value.detail == PAGE_NOT_OBJECT
    assert info.value.page_line == "The Lambda function returned invalid JSON: The JSON output must be an object type."


def test_api_gateway_style_result_is_neither_request_nor_response() -> None:
    err = fails("viewer-request", {"statusCode": 302, "body": ""}, viewer_request())
    assert err.detail == PREFIX + "the function returned an object that is neither a request nor a response (keys : body, statusCode)."


# --- request results -------------------------------------------------------------------------------------


def test_unchanged_request_round_trips_and_keeps_hidden_headers() -> None:
    request = viewer_request()
    result = run("viewer-request", cf_of("viewer-request", request)["request"], request)
    assert isinstance(result, RequestResult)
    assert result.request == request
    assert ("Connection", "keep-alive") in result.request.headers  # never exposed, so kept


def test_the_viewers_connection_survives_a_request_result() -> None:
    """Port, scheme and HTTP version are the viewer's connection, not the function's: a modified request keeps them
    (CloudFront-Viewer-Address, CloudFront-Forwarded-Proto and signed URLs read them after viewer-request)."""
    request = viewer_request(client_port=50123, scheme="https", http_version=(2, 0))
    out = cf_of("viewer-request", request)["request"]
    out["uri"] = "/b"
    out["headers"]["x-added"] = [{"key": "X-Added", "value": "1"}]
    result = run("viewer-request", out, request).request
    assert (result.uri, result.client_port, result.scheme, result.http_version) == ("/b", 50123, "https", (2, 0))


def test_modified_request_is_converted() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["uri"] = "/variants/b/index.html"
    out["querystring"] = "a=1&b=2"
    out["headers"]["x-variant"] = [{"key": "X-Variant", "value": "b"}]
    out["headers"]["cookie"] = [{"value": "ab=b"}]
    del out["headers"]["user-agent"]
    result = run("viewer-request", out, request).request
    assert (result.uri, result.querystring) == ("/variants/b/index.html", "a=1&b=2")
    assert result.headers == [
        ("Host", "www.example.com"), ("X-Variant", "b"), ("Cookie", "ab=b"), ("Connection", "keep-alive")
    ]
    assert (result.method, result.client_ip, result.origin) == ("GET", "198.51.100.7", ORIGIN)


def test_missing_key_filled_title_case_and_mismatched_key_replaced() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["x-foo-bar"] = [{"value": "1"}]
    out["headers"]["x-other"] = [{"key": "X-Not-The-Same", "value": "2"}]
    headers = run("viewer-request", out, request).request.headers
    assert ("X-Foo-Bar", "1") in headers and ("X-Other", "2") in headers


def test_non_lowercase_object_keys_are_normalised_and_merged() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["x-frame"] = [{"key": "x-frame", "value": "a"}]
    out["headers"]["X-Frame"] = [{"key": "X-Frame", "value": "b"}]
    headers = run("viewer-request", out, request).request.headers
    assert [(k, v) for k, v in headers if k.lower() == "x-frame"] == [("x-frame", "a"), ("X-Frame", "b")]


def test_uri_must_start_with_slash() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"] | {"uri": "index.html"}
    err = fails("viewer-request", out, request)
    assert err.detail == PREFIX + "the function returned an invalid uri format, uri must start with '/', uri : index.html."


def test_uri_with_space_rejected_and_uri_not_string_rejected() -> None:
    request = viewer_request()
    base = cf_of("viewer-request", request)["request"]
    assert "space or control character" in fails("viewer-request", base | {"uri": "/a b"}, request).detail
    assert fails("viewer-request", base | {"uri": 5}, request).detail == PREFIX + "the uri is not a string."


@pytest.mark.parametrize("qs", ["a=1 b", "a=1#frag", "a=\x01"])
def test_new_querystring_rules(qs: str) -> None:
    request = viewer_request()
    err = fails("viewer-request", cf_of("viewer-request", request)["request"] | {"querystring": qs}, request)
    assert err.detail == PREFIX + "the function returned an invalid querystring, it contains a space, a control character or '#'."


def test_uri_plus_querystring_limit() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"] | {"querystring": "q=" + "x" * 8190}
    assert fails("viewer-request", out, request).detail == PREFIX + "the uri and querystring are 8203 characters, the limit is 8191."
    ok = cf_of("viewer-request", request)["request"] | {"uri": "/", "querystring": "q=" + "x" * 8188}
    assert run("viewer-request", ok, request).request.querystring.endswith("x")


@pytest.mark.parametrize("name", ["X-Cache", "X-Amz-Cf-Pop", "X-Edge-Origin", "Connection", "X-Forwarded-Proto", "Upgrade"])
def test_disallowed_header_added(name: str) -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"][name.lower()] = [{"key": name, "value": "x"}]
    err = fails("viewer-request", out, request)
    assert err.detail == PREFIX + f"the function tried to add disallowed header, headerName : {name}."


def test_cloudfront_viewer_country_added_in_viewer_request() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["cloudfront-viewer-country"] = [{"key": "CloudFront-Viewer-Country", "value": "US"}]
    err = fails("viewer-request", out, request)
    assert err.detail == PREFIX + "the function tried to add disallowed header, headerName : CloudFront-Viewer-Country."
    # the same header is fine in origin-request (CloudFront's value may be edited there)
    oreq = origin_request()
    out = cf_of("origin-request", oreq)["request"]
    out["headers"]["cloudfront-viewer-country"] = [{"key": "CloudFront-Viewer-Country", "value": "US"}]
    assert run("origin-request", out, oreq).request.headers[-2:] == [
        ("CloudFront-Viewer-Country", "US"), ("X-Amz-Cf-Id", "req-id==")
    ]


@pytest.mark.parametrize(
    ("event_type", "change", "expected"),
    [
        ("viewer-request", lambda h: h.pop("host"), "delete read-only header, headerName : Host"),
        ("viewer-request", lambda h: h.update({"content-length": [{"key": "Content-Length", "value": "3"}]}),
         "add read-only header, headerName : Content-Length"),
        ("viewer-request", lambda h: h.update({"host": [{"key": "Host", "value": "evil.example"}]}),
         "change read-only header, headerName : Host"),
        ("origin-request", lambda h: h.pop("accept-encoding"), "delete read-only header, headerName : Accept-Encoding"),
        ("origin-request", lambda h: h.update({"via": [{"key": "Via", "value": "1.1 me"}]}),
         "change read-only header, headerName : Via"),
        ("origin-request", lambda h: h.update({"if-none-match": [{"key": "If-None-Match", "value": '"x"'}]}),
         "add read-only header, headerName : If-None-Match"),
    ],
)
def test_read_only_request_headers(event_type: str, change: Any, expected: str) -> None:
    request = viewer_request() if event_type == "viewer-request" else origin_request()
    out = cf_of(event_type, request)["request"]
    change(out["headers"])
    err = fails(event_type, out, request)
    assert err.detail == PREFIX + f"the function tried to {expected}."
    assert err.page_line == PAGE_READ_ONLY


def test_host_is_writable_in_origin_request() -> None:
    request = origin_request()
    out = cf_of("origin-request", request)["request"]
    out["headers"]["host"] = [{"key": "Host", "value": "other.example.org"}]
    assert run("origin-request", out, request).request.headers[0] == ("Host", "other.example.org")


def test_read_only_key_case_change_is_not_a_change() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["host"] = [{"key": "host", "value": "www.example.com"}]
    assert isinstance(run("viewer-request", out, request), RequestResult)


@pytest.mark.parametrize("value", [1, None, ["a"], {"v": 1}, True])
def test_header_value_not_a_string(value: Any) -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["x-settings"] = [{"key": "X-Settings", "value": value}]
    err = fails("viewer-request", out, request)
    assert err.detail == PREFIX + (
        "the function returned an invalid entry in the headers object, the value of each header value must be "
        "of string or array of string type, header :x-settings has one or more entries whose value is neither "
        "string nor array of strings."
    )


def test_header_entries_must_be_an_array_and_headers_an_object() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"]
    out["headers"]["x-a"] = {"key": "X-A", "value": "1"}
    assert "header :x-a is not an array" in fails("viewer-request", out, request).detail
    out = cf_of("viewer-request", request)["request"] | {"headers": ["host"]}
    assert fails("viewer-request", out, request).detail == PREFIX + "the headers object is not an object."


@pytest.mark.parametrize(("value", "code"), [("https://x/\r\nSet-Cookie: a=1", "%0D"), ("a\nb", "%0A"), ("a\x00", "%00")])
def test_control_characters_in_header_value(value: str, code: str) -> None:
    request = viewer_request()
    result = {"status": "302", "headers": {"location": [{"key": "Location", "value": value}]}}
    err = fails("viewer-request", result, request)
    assert err.detail == PREFIX + f"the function returned an invalid header, invalid character : '{code}' in header value, headerName : Location."


def test_invalid_header_name() -> None:
    err = fails("viewer-request", {"status": "200", "headers": {"bad name": [{"value": "x"}]}}, viewer_request())
    assert err.detail == PREFIX + "the function returned an invalid header name, headerName : bad name."


# --- request body (IncludeBody) ----------------------------------------------------------------------------


def _post(event_type: str = "viewer-request") -> tuple[EdgeRequest, dict[str, Any]]:
    request = viewer_request(method="POST", body=b"name=Joe")
    if event_type == "origin-request":
        request = origin_request(method="POST", body=b"name=Joe")
    return request, cf_of(event_type, request, include_body=True)["request"]


def test_body_read_only_sends_the_original_even_if_data_changed() -> None:
    request, out = _post()
    out["body"]["data"] = base64.b64encode(b"changed").decode()
    assert run("viewer-request", out, request, include_body=True).request.body == b"name=Joe"


@pytest.mark.parametrize(("encoding", "data", "expected"), [("text", "name=Ann", b"name=Ann"), ("base64", "bmFtZT1Bbm4=", b"name=Ann")])
def test_body_replace(encoding: str, data: str, expected: bytes) -> None:
    request, out = _post()
    out["body"].update(action="replace", encoding=encoding, data=data)
    assert run("viewer-request", out, request, include_body=True).request.body == expected


def test_body_replace_ignored_without_include_body() -> None:
    request, out = _post()
    out["body"].update(action="replace", encoding="text", data="zzz")
    assert run("viewer-request", out, request, include_body=False).request.body == b"name=Joe"


@pytest.mark.parametrize(
    ("event_type", "encoding", "size", "limit"),
    [
        ("viewer-request", "text", 40 * 1024 + 1, 40 * 1024),
        ("viewer-request", "base64", 54476 + 4, 54476),
        ("origin-request", "text", 1024 * 1024 + 1, 1024 * 1024),
        ("origin-request", "base64", 1394606 + 2, 1394606),
    ],
)
def test_replaced_body_size_limits(event_type: str, encoding: str, size: int, limit: int) -> None:
    request, out = _post(event_type)
    data = "a" * size if encoding == "text" else "QUFB" * (size // 4) + "QQ=="[: size % 4]
    out["body"].update(action="replace", encoding=encoding, data=data[:size])
    err = fails(event_type, out, request, include_body=True)
    assert err.detail == PREFIX + f"the replaced body is {size} bytes ({encoding}), which exceeds the limit of {limit} bytes."
    assert err.page_line == PAGE_BODY
    out["body"]["data"] = data[: limit - limit % 4]
    assert isinstance(run(event_type, out, request, include_body=True), RequestResult)


def test_body_replace_invalid_base64_action_and_encoding() -> None:
    request, out = _post()
    bad = copy.deepcopy(out)
    bad["body"].update(action="replace", encoding="base64", data="not*base64")
    assert fails("viewer-request", bad, request, include_body=True).detail == (
        PREFIX + "the body is not valid base64 although its encoding is base64."
    )
    bad = copy.deepcopy(out)
    bad["body"]["action"] = "overwrite"
    assert 'action : "overwrite"' in fails("viewer-request", bad, request, include_body=True).detail
    bad = copy.deepcopy(out)
    bad["body"].update(action="replace", encoding="gzip")
    assert 'encoding : "gzip"' in fails("viewer-request", bad, request, include_body=True).detail
    bad = copy.deepcopy(out)
    bad["body"].update(action="replace", data=123)
    assert fails("viewer-request", bad, request, include_body=True).detail == PREFIX + "the body data is not a string."


# --- generated responses -----------------------------------------------------------------------------------


def test_generated_redirect_with_int_status_and_no_description() -> None:
    result = run(
        "viewer-request",
        {"status": 302, "headers": {"location": [{"value": "https://example.com/"}]}},
        viewer_request(),
    )
    assert isinstance(result, GeneratedResponse)
    assert result.response == EdgeResponse(
        status=302, headers=[("Location", "https://example.com/")], body=b"", status_description="Found"
    )


def test_generated_base64_body() -> None:
    result = run(
        "origin-request",
        {"status": "200", "statusDescription": "OK", "body": base64.b64encode(b"\x89PNG").decode(), "bodyEncoding": "base64"},
        origin_request(),
    )
    assert result.response.body == b"\x89PNG"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("abc", 'the status code is not a number, status : "abc"'),
        ("", 'the status code is not a number, status : ""'),
        (None, "the status code is not a number, status : null"),
        (True, "the status code is not a number, status : true"),
        (200.0, "the status code is not a number, status : 200.0"),
        ("199", "the status code 199 is outside the allowed range 200-599"),
        (600, "the status code 600 is outside the allowed range 200-599"),
    ],
)
def test_bad_status(status: Any, expected: str) -> None:
    assert fails("viewer-request", {"status": status}, viewer_request()).detail == PREFIX + expected + "."


@pytest.mark.parametrize("body", [{"a": 1}, 5, None, ["x"]])
def test_body_not_a_string(body: Any) -> None:
    err = fails("viewer-request", {"status": "200", "body": body}, viewer_request())
    assert err.detail == PREFIX + "the body is not a string."
    assert err.page_line == (
        "The Lambda function result failed validation: The body is not a string, is not an object, or exceeds the maximum size."
    )


def test_bad_body_encoding_and_invalid_base64() -> None:
    err = fails("viewer-request", {"status": "200", "body": "x", "bodyEncoding": "gzip"}, viewer_request())
    assert err.detail == PREFIX + 'the bodyEncoding is invalid, bodyEncoding : "gzip", expected text or base64.'
    err = fails("viewer-request", {"status": "200", "body": "%%%", "bodyEncoding": "base64"}, viewer_request())
    assert err.detail == PREFIX + "the body is not valid base64 although its encoding is base64."


@pytest.mark.parametrize("status", ["204", "304"])
def test_no_body_statuses_with_a_body(status: str) -> None:
    err = fails("viewer-request", {"status": status, "body": "x"}, viewer_request())
    assert err.detail == PREFIX + f"the function returned a body with status {status}, which cannot have a body."
    assert run("viewer-request", {"status": status, "body": ""}, viewer_request()).response.body == b""


@pytest.mark.parametrize(("event_type", "limit"), [("viewer-request", 40960), ("origin-request", 1048576)])
def test_generated_response_size_counts_headers_and_body(event_type: str, limit: int) -> None:
    headers = {"content-type": [{"key": "Content-Type", "value": "text/plain"}]}
    header_bytes = len("Content-Type") + len("text/plain") + 4
    request = viewer_request() if event_type == "viewer-request" else origin_request()
    ok = {"status": "200", "headers": headers, "body": "a" * (limit - header_bytes)}
    assert len(run(event_type, ok, request).response.body) == limit - header_bytes
    big = ok | {"body": "a" * (limit - header_bytes + 1)}
    err = fails(event_type, big, request)
    assert err.detail == PREFIX + (
        f"the length of the body size and header was {limit + 1} bytes which exceeded the CloudFront limit of {limit} bytes."
    )


def test_generated_response_disallowed_header() -> None:
    result = {"status": "200", "headers": {"x-cache": [{"key": "X-Cache", "value": "Hit from cloudfront"}]}}
    assert fails("viewer-request", result, viewer_request()).detail == PREFIX + "the function tried to add disallowed header, headerName : X-Cache."


def test_status_description_must_be_a_string() -> None:
    err = fails("viewer-request", {"status": "200", "statusDescription": 5}, viewer_request())
    assert err.detail == PREFIX + "the statusDescription is not a string."


# --- response results ------------------------------------------------------------------------------------


def test_origin_response_unchanged_keeps_body_and_meta() -> None:
    response = origin_response()
    out = cf_of("origin-response", origin_request(), response)["response"]
    result = run("origin-response", out, origin_request(), response)
    assert isinstance(result, ResponseResult) and result.body_replaced is False
    assert result.response.status_description == "OK"  # filled from the event's statusDescription
    result.response.status_description = ""
    assert result.response == response
    assert result.response.meta == response.meta and result.response.meta is not response.meta


def test_origin_response_changes_status_headers_and_body() -> None:
    response = origin_response()
    out = cf_of("origin-response", origin_request(), response)["response"]
    out.update(status=503, statusDescription="Down", body="<h1>sorry</h1>")
    out["headers"]["cache-control"] = [{"key": "Cache-Control", "value": "max-age=10"}]
    result = run("origin-response", out, origin_request(), response)
    assert result.body_replaced is True
    assert (result.response.status, result.response.status_description, result.response.body) == (503, "Down", b"<h1>sorry</h1>")
    assert ("Cache-Control", "max-age=10") in result.response.headers
    assert ("Connection", "keep-alive") in result.response.headers


def test_origin_response_empty_body_removes_it() -> None:
    response = origin_response()
    out = cf_of("origin-response", origin_request(), response)["response"] | {"body": ""}
    result = run("origin-response", out, origin_request(), response)
    assert result.body_replaced and result.response.body == b""


def test_origin_response_read_only_transfer_encoding_deleted() -> None:
    response = origin_response()
    out = cf_of("origin-response", origin_request(), response)["response"]
    del out["headers"]["transfer-encoding"]
    err = fails("origin-response", out, origin_request(), response)
    assert err.detail == PREFIX + "the function tried to delete read-only header, headerName : Transfer-Encoding."


def test_response_missing_status() -> None:
    response = origin_response()
    out = cf_of("origin-response", origin_request(), response)["response"]
    del out["status"]
    assert fails("origin-response", out, origin_request(), response).detail == PREFIX + "the response has no status."


def test_viewer_response_cannot_change_status_but_int_form_is_fine() -> None:
    response = origin_response()
    request = viewer_request()
    out = cf_of("viewer-response", request, response)["response"]
    assert run("viewer-response", out | {"status": 200}, request, response).response.status == 200
    err = fails("viewer-response", out | {"status": "404"}, request, response)
    assert err.detail == PREFIX + (
        "the function tried to change the status code from 200 to 404, the status code cannot be changed in a viewer-response event."
    )


def test_viewer_response_read_only_warning_and_via() -> None:
    response = origin_response()
    request = viewer_request()
    out = cf_of("viewer-response", request, response)["response"]
    out["headers"]["warning"] = [{"key": "Warning", "value": "110 - stale"}]
    err = fails("viewer-response", out, request, response)
    assert err.detail == PREFIX + "the function tried to add read-only header, headerName : Warning."


def test_viewer_response_body_limit_is_40kb() -> None:
    response = origin_response()
    request = viewer_request()
    out = cf_of("viewer-response", request, response)["response"] | {"body": "a" * 40960}
    assert "exceeded the CloudFront limit of 40960 bytes" in fails("viewer-response", out, request, response).detail


# --- origin switching (origin-request) ---------------------------------------------------------------------


def _switch(origin: Any, request: EdgeRequest | None = None, **kw: Any) -> Any:
    request = request or origin_request()
    out = cf_of("origin-request", request)["request"]
    out["origin"] = origin
    return run("origin-request", out, request, **kw).request


def _switch_fails(origin: Any) -> str:
    request = origin_request()
    out = cf_of("origin-request", request)["request"]
    out["origin"] = origin
    return fails("origin-request", out, request).detail


CUSTOM = {"domainName": "eu.example.org", "port": 443, "protocol": "https", "path": "", "sslProtocols": ["TLSv1.2"],
          "readTimeout": 5, "keepaliveTimeout": 5, "customHeaders": {}}


def test_unchanged_origin_keeps_local_mapping() -> None:
    request = origin_request()
    assert _switch(cf_of("origin-request", request)["request"]["origin"], request).origin is ORIGIN


def test_switch_custom_domain() -> None:
    origin = _switch({"custom": CUSTOM | {"customHeaders": {"x-k": [{"value": "1"}]}}}).origin
    assert origin == CustomOrigin(domain_name="eu.example.org", port=443, protocol="https", read_timeout=5,
                                  keepalive_timeout=5, custom_headers=(("X-K", "1"),))


def test_same_domain_keeps_origin_id_and_connect_host() -> None:
    origin = _switch({"custom": CUSTOM | {"domainName": "origin.example.org", "path": "/v2"}}).origin
    assert (origin.path, origin.origin_id, origin.connect_host) == ("/v2", "o1", "127.0.0.1")


def test_switch_to_s3() -> None:
    origin = _switch({"s3": {"domainName": "bucket.s3.amazonaws.com", "authMethod": "none", "path": "", "customHeaders": {}}}).origin
    assert origin.domain_name == "bucket.s3.amazonaws.com" and origin.auth_method == "none"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ({"custom": CUSTOM, "s3": {}}, "the function returned an invalid origin, it must contain exactly one of custom or s3"),
        ({}, "the function returned an invalid origin, it must contain exactly one of custom or s3"),
        ({"custom": CUSTOM | {"port": 22}}, "the function returned an invalid origin, port : 22 must be 80, 443 or 1024-65535"),
        ({"custom": CUSTOM | {"protocol": "ftp"}}, "the function returned an invalid origin, protocol : ftp must be http or https"),
        ({"custom": CUSTOM | {"domainName": "10.0.0.1"}}, "the function returned an invalid origin, domainName : 10.0.0.1 must not be an IP address"),
        ({"custom": CUSTOM | {"domainName": "a.example:8080"}}, "the function returned an invalid origin, domainName : a.example:8080 must be a non-empty DNS name of at most 253 characters"),
        ({"custom": CUSTOM | {"path": "/a/"}}, "the function returned an invalid origin, path : /a/ must be empty or start with '/' and not end with '/' (at most 255 characters)"),
        ({"custom": CUSTOM | {"readTimeout": 2}}, "the function returned an invalid origin, readTimeout : 2 must be a number of seconds from 4 to 60"),
        ({"custom": CUSTOM | {"keepaliveTimeout": 61}}, "the function returned an invalid origin, keepaliveTimeout : 61 must be a number of seconds from 1 to 60"),
        ({"custom": CUSTOM | {"sslProtocols": ["TLSv1.3"]}}, 'the function returned an invalid origin, sslProtocols : ["TLSv1.3"] must be a non-empty list of TLSv1.2, TLSv1.1, TLSv1, SSLv3'),
        ({"custom": CUSTOM | {"customHeaders": {"host": [{"value": "x"}]}}}, "the function returned an invalid origin, customHeaders : Host also appears in the request headers"),
        ({"custom": CUSTOM | {"customHeaders": {"x-cache": [{"value": "x"}]}}}, "the function tried to add disallowed header, headerName : X-Cache"),
        ({"s3": {"domainName": "Bucket.s3.amazonaws.com"}}, "the function returned an invalid origin, domainName : Bucket.s3.amazonaws.com must be all lowercase"),
        ({"s3": {"domainName": "b.s3.amazonaws.com", "authMethod": "oac"}}, "the function returned an invalid origin, authMethod : oac must be origin-access-identity or none"),
        ({"s3": {"domainName": "b.s3.amazonaws.com", "authMethod": "origin-access-identity"}}, "the function returned an invalid origin, region :  is required with origin-access-identity"),
        ({"s3": {"domainName": "b.s3.amazonaws.com", "authMethod": "origin-access-identity", "region": "eu-west-1"}},
         "the function returned an invalid origin, authMethod : origin-access-identity cannot be used when switching from a custom origin to S3"),
    ],
)
def test_origin_field_rules(origin: Any, expected: str) -> None:
    assert _switch_fails(origin) == PREFIX + expected + "."


def test_ip_origin_allowed_with_local_flag() -> None:
    assert _switch({"custom": CUSTOM | {"domainName": "127.0.0.1", "port": 8000, "protocol": "http"}}, allow_ip_origins=True).origin.port == 8000


def test_origin_ignored_in_viewer_request() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"] | {"origin": {"custom": CUSTOM}}
    assert run("viewer-request", out, request).request.origin is ORIGIN


def test_new_body_drops_stale_content_length() -> None:
    response = origin_response()
    response.headers.append(("Content-Length", "13"))
    out = cf_of("origin-response", origin_request(), response)["response"] | {"body": "new"}
    headers = run("origin-response", out, origin_request(), response).response.headers
    assert not [k for k, _ in headers if k.lower() == "content-length"]
    kept = run("origin-response", cf_of("origin-response", origin_request(), response)["response"], origin_request(), response)
    assert ("Content-Length", "13") in kept.response.headers
    generated = {"status": "200", "body": "hi", "headers": {"content-length": [{"value": "99"}]}}
    assert run("viewer-request", generated, viewer_request()).response.headers == []


def test_replaced_request_body_updates_content_length() -> None:
    request = viewer_request(method="POST", body=b"name=Joe", headers=[("Host", "h"), ("Content-Length", "8")])
    out = cf_of("viewer-request", request, include_body=True)["request"]
    out["body"].update(action="replace", encoding="text", data="name=Joanna")
    result = run("viewer-request", out, request, include_body=True).request
    assert result.body == b"name=Joanna" and ("Content-Length", "11") in result.headers
    out["body"]["action"] = "read-only"
    assert ("Content-Length", "8") in run("viewer-request", out, request, include_body=True).request.headers


def test_read_only_scalars_ignored_and_missing_headers_means_all_deleted() -> None:
    request = viewer_request()
    out = cf_of("viewer-request", request)["request"] | {"method": "DELETE", "clientIp": "10.0.0.1"}
    result = run("viewer-request", out, request).request
    assert (result.method, result.client_ip) == ("GET", "198.51.100.7")
    del out["headers"]
    assert fails("viewer-request", out, request).detail == PREFIX + "the function tried to delete read-only header, headerName : Host."
