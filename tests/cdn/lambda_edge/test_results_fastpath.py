"""The "kept or only added headers" path of parse_result (``event_headers`` / ``event_response_headers`` from
event_header_maps) decides exactly like the full path: same result, or the same validation error (detail and page
line), for results that keep, add, change, remove, re-case or break headers."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.lambda_edge import results as results_mod
from edge.cdn.lambda_edge.events import EventConfig, build_event_dict, event_header_maps
from edge.cdn.lambda_edge.results import LambdaValidationError, RequestResult, ResponseResult, parse_result
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse

EVENTS = ["viewer-request", "origin-request", "origin-response", "viewer-response"]
TOKEN = st.text(alphabet="abcdefgXYZ0123-_!#", min_size=1, max_size=6)
# Names that hit every rule: disallowed, read-only (per event), forbidden in viewer-request, plain ones.
SPECIAL = st.sampled_from(["Host", "Via", "Content-Length", "Warning", "X-Cache", "X-Amz-Cf-Id", "X-Edge-Foo",
                           "CloudFront-Viewer-Country", "If-None-Match", "Transfer-Encoding", "Accept-Encoding",
                           "X-Bench", "x-bench", "Set-Cookie", "Bad Name", ""])
NAME = st.one_of(TOKEN, SPECIAL)
VALUE = st.one_of(st.text(alphabet="ab 1\t;=é", max_size=8), st.sampled_from(["a\r\nb", "x\x01", "\x7f", ""]))
HEADERS = st.lists(st.tuples(NAME.filter(lambda n: n not in ("", "Bad Name")), VALUE), max_size=8)


def encode_event(event_type: str, domain: str, distribution_id: str, request_id: str, request: EdgeRequest,
                 response: EdgeResponse | None = None, include_body: bool = False) -> tuple[bytes, Any, Any]:
    """(payload, request header map, response header map) of the event, as the trigger runner builds them."""
    event = build_event_dict(event_type, config=EventConfig(domain, distribution_id, request_id), request=request,
                             response=response, include_body=include_body)
    return (orjson.dumps(event), *event_header_maps(event))


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except LambdaValidationError as err:
        return ("error", err.detail, err.page_line)


def _both(event_type: str, request: EdgeRequest, response: EdgeResponse, returned: Any,
          include_body: bool = False) -> tuple[Any, Any]:
    _, seen, seen_response = encode_event(event_type, "d1.cloudfront.net", "E1", "id==", request, response,
                                          include_body)
    payload = orjson.dumps(returned)
    kw = {"original_request": request, "original_response": response, "include_body": include_body,
          "allow_ip_origins": False}
    results_mod._VIEWER_REQUESTS.clear()  # each path works its answer out (a viewer request's is then kept)
    full = _outcome(lambda: parse_result(event_type, payload, **kw))  # type: ignore[arg-type]
    results_mod._VIEWER_REQUESTS.clear()
    fast = _outcome(lambda: parse_result(event_type, payload, event_headers=seen,  # type: ignore[arg-type]
                                         event_response_headers=seen_response, **kw))
    again = _outcome(lambda: parse_result(event_type, payload, event_headers=seen,  # type: ignore[arg-type]
                                          event_response_headers=seen_response, **kw))
    assert again == fast  # the same payload for the same request: what was kept, or worked out again
    return full, fast


def _mutations() -> st.SearchStrategy[list[tuple[str, Any]]]:
    good = st.text(alphabet="ab 1;=", min_size=1, max_size=4)
    entry = st.one_of(
        st.fixed_dictionaries({"key": NAME, "value": good}),
        st.fixed_dictionaries({"key": NAME, "value": VALUE}),
        st.fixed_dictionaries({"value": VALUE}),
        st.sampled_from([{"key": "X", "value": 3}, "not an object", {"key": 5, "value": "v"}]),
    )
    return st.lists(st.one_of(
        st.tuples(st.just("add"), st.tuples(NAME, st.lists(entry, max_size=2))),
        st.tuples(st.just("add-lower"), st.tuples(NAME, st.lists(entry, min_size=1, max_size=2))),
        st.tuples(st.just("add-lower"), st.tuples(SPECIAL, st.lists(
            st.fixed_dictionaries({"key": SPECIAL, "value": good}), min_size=1, max_size=2))),
        st.tuples(st.just("drop"), st.integers(0, 10)),
        st.tuples(st.just("recase"), st.integers(0, 10)),
        st.tuples(st.just("rekey"), st.integers(0, 10)),
        st.tuples(st.just("revalue"), st.tuples(st.integers(0, 10), VALUE)),
        st.tuples(st.just("reverse"), st.none()),
        st.tuples(st.just("not-a-list"), st.integers(0, 10)),
    ), max_size=3)


def _apply(headers: dict[str, Any], mutations: list[tuple[str, Any]]) -> dict[str, Any]:
    out = {k: [dict(e) for e in v] for k, v in headers.items()}

    def first(name: str) -> dict[str, Any] | None:
        entries = out[name]
        return entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else None

    for kind, arg in mutations:
        names = list(out)
        if kind == "add":
            out[arg[0]] = arg[1]
        elif kind == "add-lower":
            out[arg[0].lower()] = arg[1]
        elif kind == "reverse":
            out = dict(reversed(list(out.items())))
        elif names:
            name = names[(arg[0] if isinstance(arg, tuple) else arg) % len(names)]
            if kind == "drop":
                del out[name]
            elif kind == "recase":
                out[name.upper()] = out.pop(name)
            elif kind == "rekey" and (entry := first(name)) is not None:
                entry["key"] = name.upper()
            elif kind == "revalue" and (entry := first(name)) is not None:
                entry["value"] = arg[1]
            elif kind == "not-a-list":
                out[name] = {"key": name, "value": "v"}
    return out


@settings(max_examples=300, deadline=None)
@given(event_type=st.sampled_from(EVENTS), headers=HEADERS, response_headers=HEADERS, mutations=_mutations(),
       touch_uri=st.booleans(), body=st.booleans())
def test_fast_path_decides_like_the_full_path(event_type: str, headers: list[tuple[str, str]],
                                              response_headers: list[tuple[str, str]],
                                              mutations: list[tuple[str, Any]], touch_uri: bool, body: bool) -> None:
    origin = CustomOrigin(domain_name="o.example.org", port=443, protocol="https")
    request = EdgeRequest("GET", "/a", "q=1", headers, "203.0.113.9", origin=origin)
    response = EdgeResponse(200, response_headers, b"payload", status_description="OK")
    _, seen, seen_response = encode_event(event_type, "d1.cloudfront.net", "E1", "id==", request, response)
    cf: dict[str, Any] = {"request": {"clientIp": "203.0.113.9", "method": "GET", "uri": "/a", "querystring": "q=1",
                                      "headers": seen}}
    if event_type.endswith("response"):
        returned: dict[str, Any] = {"status": "200", "statusDescription": "OK",
                                    "headers": _apply(seen_response or {}, mutations)}
        if body:
            returned["body"] = "new"
    else:
        returned = {**cf["request"], "headers": _apply(seen, mutations)}
        if touch_uri:
            returned["uri"] = "/b"
        if event_type == "origin-request":
            returned["origin"] = {"custom": {"domainName": "o.example.org", "port": 443, "protocol": "https",
                                             "path": "", "sslProtocols": ["TLSv1.2"], "readTimeout": 30,
                                             "keepaliveTimeout": 5, "customHeaders": {}}}
    full, fast = _both(event_type, request, response, returned)
    assert fast == full


@pytest.mark.parametrize("event_type", EVENTS)
@pytest.mark.parametrize("name", ["via", "Via", "host", "content-length", "warning", "transfer-encoding",
                                  "if-none-match", "accept-encoding", "x-cache", "x-amz-cf-id", "x-edge-a",
                                  "connection", "cloudfront-viewer-country", "X-Multi", "x-multi", "x-new",
                                  "bad name", "x-new\n"])
@pytest.mark.parametrize("value", ["1", "a\r\nb", "\x00"])
def test_each_rule_on_an_added_header(event_type: str, name: str, value: str) -> None:
    request = EdgeRequest("GET", "/a", "", [("Host", "d.example"), ("X-Multi", "1"), ("Connection", "close"),
                                            ("X-Multi", "2")], "192.0.2.1")
    response = EdgeResponse(200, [("Content-Type", "a/b"), ("X-Multi", "1")], b"")
    _, seen, seen_response = encode_event(event_type, "d", "E", "id", request, response)
    if event_type.endswith("response"):
        returned: dict[str, Any] = {"status": 200, "headers": {**(seen_response or {}),
                                                               name: [{"key": name, "value": value}]}}
    else:
        returned = {"uri": "/a", "querystring": "", "headers": {**seen, name: [{"key": name, "value": value}]}}
    full, fast = _both(event_type, request, response, returned)
    assert fast == full


@pytest.mark.parametrize("original", [
    [("Host", "d.example"), ("X-Odd", "a\x01b")],  # a control character the viewer sent: the full path rejects it
    [("Host", "d.example"), ("Connection", "keep-alive"), ("Accept", "*/*"), ("X-Amz-Cf-Id", "abc")],  # hidden
    [("Host", "d.example"), ("X-Multi", "1"), ("Accept", "*/*"), ("X-Multi", "2")],  # grouped names
    [("Host", "d.example"), ("X-Uni", "héllo")],
    [("Host", "d.example"), ("Bad Name", "v")],  # not a token: the full path rejects the name
])
def test_added_header_on_awkward_originals(original: list[tuple[str, str]]) -> None:
    request = EdgeRequest("GET", "/a", "", original, "192.0.2.1")
    response = EdgeResponse(200, [], b"")
    _, seen, _ = encode_event("viewer-request", "d", "E", "id", request)
    for headers in ({**seen, "x-bench": [{"key": "X-Bench", "value": "1"}]}, dict(seen),
                    {"x-bench": [{"value": "1"}], **seen}, {"X-Multi": [{"key": "X-Multi", "value": "3"}], **seen}):
        returned = {"uri": "/a", "querystring": "", "headers": headers}
        full, fast = _both("viewer-request", request, response, returned)
        assert fast == full


@pytest.mark.parametrize("entries", [
    [{"key": 5, "value": "v"}], [{"key": "X-New", "value": 5}], [{"key": "X-New"}], ["x"], [], {"value": "v"},
    [{"value": "v"}], [{"key": "X-Other", "value": "v"}], [{"key": "x-NEW", "value": "v"}],
    [{"key": "X-New", "value": "a\nb"}], [{"key": "X-New", "value": "a\x7f"}], [{"key": "X-New", "value": "é\x01"}],
    [{"key": "X-New", "value": "1"}, {"key": "X-New", "value": "2"}],
])
def test_added_entry_shapes(entries: Any) -> None:
    request = EdgeRequest("GET", "/a", "", [("Host", "d.example")], "192.0.2.1")
    _, seen, _ = encode_event("viewer-request", "d", "E", "id", request)
    returned = {"uri": "/a", "querystring": "", "headers": {**seen, "x-new": entries}}
    full, fast = _both("viewer-request", request, EdgeResponse(200, [], b""), returned)
    assert fast == full


def test_common_results_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's handler (adds one header) and an identity viewer-response never reach the full path."""
    request = EdgeRequest("GET", "/hit", "", [("Host", "d.example"), ("Connection", "keep-alive"),
                                             ("Accept", "*/*")], "192.0.2.1")
    response = EdgeResponse(200, [("Content-Type", "text/plain"), ("Content-Length", "3")], b"abc")
    _, seen, _ = encode_event("viewer-request", "d", "E", "id", request)
    _, _, seen_response = encode_event("viewer-response", "d", "E", "id", request, response)

    def forbidden(*_: object) -> None:
        raise AssertionError("full path taken")

    monkeypatch.setattr(results_mod, "parse_headers", forbidden)
    returned = {"clientIp": "192.0.2.1", "method": "GET", "uri": "/hit", "querystring": "",
                "headers": {**seen, "x-bench": [{"key": "X-Bench", "value": "1"}]}}
    out = parse_result("viewer-request", orjson.dumps(returned), original_request=request, event_headers=seen)
    assert isinstance(out, RequestResult)
    # the added header follows the returned order; the hidden Connection header travels on at the end
    assert out.request.headers == [("Host", "d.example"), ("Accept", "*/*"), ("X-Bench", "1"),
                                   ("Connection", "keep-alive")]
    same = parse_result("viewer-response", orjson.dumps({"status": "200", "headers": seen_response}),
                        original_request=request, original_response=response, event_response_headers=seen_response)
    assert isinstance(same, ResponseResult) and same.response.headers == response.headers


def test_an_added_header_is_judged_per_event_type_every_time() -> None:
    """The verdicts on added headers are remembered (``fields._added_once``) per event type: If-None-Match may be
    added by a viewer-request function, not by an origin-request one (read-only there), whatever came first."""
    request = EdgeRequest("GET", "/a", "", [("Host", "h.test")], "203.0.113.9",
                          origin=CustomOrigin(domain_name="o.test"))
    outcomes = []
    for event_type in ("viewer-request", "origin-request", "viewer-request", "origin-request"):
        payload, seen, _ = encode_event(event_type, "d.test", "EDFD", "rid", request)
        result = orjson.loads(payload)["Records"][0]["cf"]["request"]
        result["headers"]["if-none-match"] = [{"key": "If-None-Match", "value": '"v1"'}]
        outcomes.append(_outcome(functools.partial(parse_result, event_type, orjson.dumps(result),
                                                   original_request=request, event_headers=seen)))
    assert [o[0] for o in outcomes] == ["ok", "error", "ok", "error"]
    assert outcomes[0][1].request.headers[-1] == ("If-None-Match", '"v1"')


def test_a_kept_viewer_request_answer_serves_only_the_same_payload_and_request() -> None:
    origin = CustomOrigin(domain_name="o.example.org", port=443, protocol="https")
    request = EdgeRequest("GET", "/a", "q=1", [("Host", "d.example"), ("Accept", "*/*")], "192.0.2.1",
                          origin=origin, client_port=4000, scheme="https", http_version=(1, 0))
    _, seen, _ = encode_event("viewer-request", "d", "E", "id", request)
    payload = orjson.dumps({"uri": "/b", "querystring": "q=2", "headers": {**seen, "x-new": [{"value": "1"}]}})
    results_mod._VIEWER_REQUESTS.clear()

    def parsed(req: EdgeRequest, body: bytes = payload) -> Any:
        return _outcome(lambda: parse_result("viewer-request", body, original_request=req, event_headers=seen))

    first = parsed(request)
    assert first[0] == "ok" and first[1].request.headers[-1] == ("X-New", "1") and len(results_mod._VIEWER_REQUESTS) == 1
    other_viewer = EdgeRequest("GET", "/a", "q=1", list(request.headers), "198.51.100.7", client_port=5000)
    kept = parsed(other_viewer)[1].request  # the same request as the function saw it, another viewer
    assert (kept.uri, kept.querystring, kept.headers) == (first[1].request.uri, "q=2", first[1].request.headers)
    assert (kept.client_ip, kept.client_port, kept.scheme, kept.http_version, kept.origin) == (
        "198.51.100.7", 5000, "http", (1, 1), None)  # the viewer's own, not the first request's
    assert kept.headers is not first[1].request.headers
    # without a uri and query string the result keeps the request's: the same payload for another request
    headers_only = orjson.dumps({"headers": {**seen, "x-new": [{"value": "1"}]}})
    for body in (payload, headers_only):
        results_mod._VIEWER_REQUESTS.clear()
        parsed(request, body)
        for changed in (EdgeRequest("GET", "/c", "q=1", list(request.headers), "192.0.2.1"),
                        EdgeRequest("GET", "/a", "q=3", list(request.headers), "192.0.2.1"),
                        EdgeRequest("GET", "/a", "q=1", [("host", "d.example"), ("Accept", "*/*")], "192.0.2.1"),
                        EdgeRequest("GET", "/a", "q=1", [("Host", "d.example"), ("Accept", "*/*"),
                                                         ("CloudFront-Viewer-Country", "DE")], "192.0.2.1"),
                        EdgeRequest("GET", "/a", "q=1", [("Host", "d.example"), ("Connection", "close"),
                                                         ("Accept", "*/*")], "192.0.2.1")):  # (hidden: carried)
            got = parsed(changed, body)
            results_mod._VIEWER_REQUESTS.clear()
            assert got == parsed(changed, body)  # worked out for that request, not the first's answer
            parsed(request, body)
    assert parsed(request, payload.replace(b'"1"', b'"2"'))[1].request.headers[-1] == ("X-New", "2")


def test_only_a_viewer_request_without_its_body_is_kept() -> None:
    origin = CustomOrigin(domain_name="o.example.org", port=443, protocol="https")
    request = EdgeRequest("POST", "/a", "", [("Host", "d.example")], "192.0.2.1", body=b"old", origin=origin)
    moved = {"custom": {"domainName": "p.example.org", "port": 443, "protocol": "https", "path": "",
                        "sslProtocols": ["TLSv1.2"], "readTimeout": 30, "keepaliveTimeout": 5, "customHeaders": {}}}
    host = {"host": [{"key": "Host", "value": "d.example"}]}
    for event_type, include_body, returned in (
            ("origin-request", False, {"uri": "/a", "headers": host, "origin": moved}),
            ("viewer-request", True, {"uri": "/a", "headers": host,
                                      "body": {"action": "replace", "encoding": "text", "data": "new"}})):
        payload = orjson.dumps(returned)
        results_mod._VIEWER_REQUESTS.clear()
        for _ in range(2):
            got = parse_result(event_type, payload, original_request=request, include_body=include_body)
            assert isinstance(got, RequestResult)
            assert (got.request.origin.domain_name if event_type == "origin-request" else got.request.body) in (
                "p.example.org", b"new")
        assert not results_mod._VIEWER_REQUESTS
