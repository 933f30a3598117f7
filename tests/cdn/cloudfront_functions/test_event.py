"""Event objects from edgelab records and results applied back (edge.cdn.cloudfront_functions.event), including the
worked examples of docs/cloudfront-features.md §1.13 run through the engine."""

from __future__ import annotations

import pytest

from edge.cdn.cloudfront_functions.engine import FunctionEngine
from edge.cdn.cloudfront_functions.errors import FunctionExecutionError, FunctionValidationError
from edge.cdn.cloudfront_functions.event import (
    GeneratedResponse,
    RequestResult,
    apply_request_result,
    apply_response_result,
    build_event,
)
from edge.cdn.models import EdgeRequest, EdgeResponse

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"


def request(**kw) -> EdgeRequest:
    base = {"method": "GET", "uri": "/shop", "querystring": "ref=mail&tag=a&tag=b",
                "headers": [("Host", "www.example.com"), ("CloudFront-Viewer-Country", "DE"), ("Cookie", "lang=de"),
                         ("Connection", "keep-alive"), ("X-Amz-Cf-Id", "abc"), ("Accept", "a"), ("Accept", "b")],
                "client_ip": "203.0.113.7"}
    base.update(kw)
    return EdgeRequest(**base)


def vr_event(req: EdgeRequest):
    return build_event(req, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                       distribution_id="E1EDGELABTEST", request_id="rid")


def test_viewer_request_event_shape() -> None:
    ev, raw = vr_event(request())
    assert raw == "ref=mail&tag=a&tag=b"
    assert ev["version"] == "1.0" and ev["viewer"] == {"ip": "203.0.113.7"}
    assert ev["context"] == {"distributionDomainName": "d1.cloudfront.net", "distributionId": "E1EDGELABTEST",
                             "eventType": "viewer-request", "requestId": "rid"}
    r = ev["request"]
    assert r["querystring"] == {"ref": {"value": "mail"}, "tag": {"value": "a", "multiValue": [{"value": "a"}, {"value": "b"}]}}
    # lowercase names, no cookie header, disallowed headers hidden, duplicates collapsed with the first repeated
    assert r["headers"] == {"host": {"value": "www.example.com"}, "cloudfront-viewer-country": {"value": "DE"},
                            "accept": {"value": "a", "multiValue": [{"value": "a"}, {"value": "b"}]}}
    assert r["cookies"] == {"lang": {"value": "de"}}
    assert "response" not in ev
    assert vr_event(request(querystring=""))[1] is None


def test_unchanged_request_is_identical() -> None:
    req = request()
    ev, _ = vr_event(req)
    out = apply_request_result(req, ev, ev["request"])
    assert isinstance(out, RequestResult) and out.request == req


def test_example_a_generated_redirect() -> None:
    code = """async function handler(event) {
  const req = event.request;
  const c = req.headers['cloudfront-viewer-country'];
  if (c && c.value === 'DE' && req.uri.indexOf('/de/') !== 0) {
    const qs = req.rawQueryString();
    return { statusCode: 302, statusDescription: 'Found',
             headers: { location: { value: '/de' + req.uri + (qs ? '?' + qs : '') },
                        'cache-control': { value: 'no-store' } } };
  }
  return req;
}"""
    req = request()
    ev, raw = vr_event(req)
    inv = FunctionEngine("a", code, V2).invoke(ev, raw_query=raw)
    out = apply_request_result(req, ev, inv.value)
    assert isinstance(out, GeneratedResponse)
    assert out.response.status == 302 and out.response.status_description == "Found"
    assert out.response.headers == [("Location", "/de/shop?ref=mail&tag=a&tag=b"), ("Cache-Control", "no-store")]
    assert out.response.body == b""


def test_example_b_field_edits() -> None:
    code = """function handler(event) {
  var req = event.request;
  req.uri = '/new/index.html';
  req.headers['x-variant'] = { value: 'kvs' };
  delete req.querystring['ref'];
  req.querystring['tag'].multiValue = [{ value: 'b' }];
  req.cookies['n'] = { value: '1' };
  return req;
}"""
    req = request()
    ev, _ = vr_event(req)
    out = apply_request_result(req, ev, FunctionEngine("b", code, V1).invoke(ev).value)
    assert isinstance(out, RequestResult)
    new = out.request
    assert new.uri == "/new/index.html" and new.querystring == "tag=b"
    assert ("X-Variant", "kvs") in new.headers  # added names are capitalised per hyphen-separated word
    assert ("Connection", "keep-alive") in new.headers and ("X-Amz-Cf-Id", "abc") in new.headers  # hidden stay
    assert ("Cookie", "lang=de; n=1") in new.headers
    assert [v for k, v in new.headers if k == "Accept"] == ["a", "b"]


def test_changed_value_replaces_first_occurrence_only() -> None:
    req = request()
    ev, _ = vr_event(req)
    value = ev["request"]
    value["headers"]["accept"]["value"] = "z"
    out = apply_request_result(req, ev, value)
    assert [v for k, v in out.request.headers if k == "Accept"] == ["z", "b"]


@pytest.mark.parametrize(
    "mutate, page",
    [
        (lambda r: r["headers"].pop("host"), "read-only"),
        (lambda r: r["headers"].__setitem__("via", {"value": "x"}), "read-only"),
        (lambda r: r["headers"].__setitem__("cdn-loop", {"value": "x"}), "read-only"),
        (lambda r: r["headers"].__setitem__("x-forwarded-proto", {"value": "https"}), "disallowed"),
        (lambda r: r["headers"].__setitem__("x-amz-cf-foo", {"value": "1"}), "disallowed"),
        (lambda r: r.__setitem__("uri", "no-slash"), "uri"),
        (lambda r: r.__setitem__("uri", "/a b"), "uri"),
        (lambda r: r.__setitem__("uri", "/" + "a" * 8200), "uri"),
        (lambda r: r.__setitem__("method", "POST"), "request or response"),
        (lambda r: r["headers"].__setitem__("x-bad", {"value": "a\nb"}), "header"),
        (lambda r: r["headers"].__setitem__("x-bad", "plain"), "header"),
    ],
)
def test_invalid_request_results_are_502(mutate, page: str) -> None:
    req = request()
    ev, _ = vr_event(req)
    import copy

    value = copy.deepcopy(ev["request"])
    mutate(value)
    with pytest.raises(FunctionValidationError) as exc:
        apply_request_result(req, ev, value)
    assert exc.value.status == 502 and exc.value.x_cache == "FunctionValidationError from cloudfront"
    assert page in exc.value.message


def test_non_object_result_is_an_execution_error() -> None:
    req = request()
    ev, _ = vr_event(req)
    for bad in (None, "x", 3, []):
        with pytest.raises(FunctionExecutionError) as exc:
            apply_request_result(req, ev, bad)
        assert exc.value.status == 503 and exc.value.x_cache == "FunctionExecutionError from cloudfront"


def test_generated_response_body_and_validation() -> None:
    req = request()
    ev, _ = vr_event(req)
    out = apply_request_result(req, ev, {"statusCode": 200, "body": {"encoding": "base64", "data": "aGk="},
                                         "cookies": {"s": {"value": "1", "attributes": "Path=/"}}})
    assert out.response.body == b"hi" and ("Set-Cookie", "s=1; Path=/") in out.response.headers
    for bad in ({"statusCode": 99}, {"statusCode": "200"}, {"statusCode": 200, "body": {"encoding": "base64", "data": "!!"}},
                {"statusCode": 200, "body": 5}, {"statusCode": 200, "headers": {"x-cache": {"value": "1"}}}):
        with pytest.raises(FunctionValidationError):
            apply_request_result(req, ev, bad)
    big = apply_request_result(req, ev, {"statusCode": 200, "body": "x" * 50_000})
    assert big.oversized


def test_example_c_viewer_response() -> None:
    code = """function handler(event) {
  var res = event.response;
  res.headers['strict-transport-security'] = { value: 'max-age=63072000' };
  delete res.headers['x-powered-by'];
  res.cookies['seen'] = { value: '1', attributes: 'Path=/; Max-Age=3600; Secure' };
  if (event.request.uri === '/health') {
    res.statusCode = 200; res.statusDescription = 'OK';
    res.headers['content-type'] = { value: 'text/plain' };
    res.body = { encoding: 'text', data: 'ok' };
  }
  return res;
}"""
    req = request(uri="/health")
    resp = EdgeResponse(status=503, headers=[("Content-Type", "application/json"), ("X-Powered-By", "Express"),
                                             ("Via", "1.1 abc.cloudfront.net (CloudFront)")], body=b"{}", status_description="Service Unavailable")
    ev, _ = build_event(req, event_type="viewer-response", distribution_domain="d", distribution_id="E", request_id="r", response=resp)
    assert ev["response"] == {"statusCode": 503, "statusDescription": "Service Unavailable", "cookies": {},
                              "headers": {"content-type": {"value": "application/json"}, "x-powered-by": {"value": "Express"},
                                          "via": {"value": "1.1 abc.cloudfront.net (CloudFront)"}}}
    out = apply_response_result(resp, ev, FunctionEngine("c", code, V1).invoke(ev).value).response
    assert out.status == 200 and out.body == b"ok"
    assert ("Via", "1.1 abc.cloudfront.net (CloudFront)") in out.headers
    assert not any(k == "X-Powered-By" for k, _ in out.headers)
    assert ("Strict-Transport-Security", "max-age=63072000") in out.headers
    assert ("Set-Cookie", "seen=1; Path=/; Max-Age=3600; Secure") in out.headers


def test_viewer_response_read_only_and_set_cookie_multivalue() -> None:
    req = request()
    resp = EdgeResponse(status=200, headers=[("Via", "v"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "a=2"),
                                             ("Content-Length", "2")], body=b"{}")
    ev, _ = build_event(req, event_type="viewer-response", distribution_domain="d", distribution_id="E", request_id="r", response=resp)
    assert ev["response"]["cookies"] == {"a": {"value": "1", "attributes": "Path=/",
                                                "multiValue": [{"value": "1", "attributes": "Path=/"}, {"value": "2", "attributes": ""}]}}
    assert apply_response_result(resp, ev, ev["response"]).response == resp
    changed = dict(ev["response"], headers={"content-length": {"value": "5"}, "via": {"value": "v"}})
    out = apply_response_result(resp, ev, changed).response  # CFF viewer-response may change Content-Length
    assert ("Content-Length", "5") in out.headers
    with pytest.raises(FunctionValidationError, match="Via"):
        apply_response_result(resp, ev, dict(ev["response"], headers={}))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8).filter(lambda s: s.strip("-"))
_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


@settings(max_examples=60, deadline=None)
@given(headers=st.lists(st.tuples(_token, _value), max_size=8), query=st.lists(st.tuples(_token, _value.filter(lambda v: "&" not in v and "#" not in v and " " not in v)), max_size=5),
       cookies=st.lists(st.tuples(_token, _token), max_size=4))
def test_returning_the_request_unchanged_changes_nothing(headers, query, cookies) -> None:
    hdrs = [("Host", "h.test"), *[(n.title(), v) for n, v in headers if n not in ("host", "cookie")]]
    if cookies:
        hdrs.append(("Cookie", "; ".join(f"{n}={v}" for n, v in cookies)))
    req = request(headers=hdrs, querystring="&".join(f"{n}={v}" for n, v in query))
    ev, _ = vr_event(req)
    engine = FunctionEngine("id", "function handler(e) { return e.request; }", V1)
    out = apply_request_result(req, ev, engine.invoke(ev).value)
    assert out.request == req
