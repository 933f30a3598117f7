"""The viewer-request fast path (the engine builds the event from ``delta.request_fields``, ``invoke_request`` may
answer with a delta, ``delta.apply_request_delta`` applies it) against the full path (``build_event`` +
``invoke`` + ``apply_request_result``): the same event, the same request, the same error, the same logs and origin
calls."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cdn.cloudfront_functions.delta import apply_request_delta, request_fields
from edge.cdn.cloudfront_functions.engine import FunctionEngine, Invocation
from edge.cdn.cloudfront_functions.errors import FunctionError
from edge.cdn.cloudfront_functions.event import (
    apply_request_result,
    build_event,
)
from edge.cdn.models import EdgeRequest
from tests.cdn.cloudfront_functions.ops_function import ops_function

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"


OPS_FUNCTION = ops_function("request")

NAMES = ["host", "accept", "user-agent", "x-dup", "x-new", "X-New", "x-other", "via", "content-length", "cookie",
         "connection", "x-amz-cf-id", "x-edge-foo", "cloudfront-viewer-country", "1x", "a b", "x\u00e9"]
VALUES = st.sampled_from(["v", "", "a b", "tab\there", "bad\nline", "\u00e9t\u00e9", "x" * 40, "a\x01b"])
ENTRIES = st.one_of(
    st.builds(lambda v: {"value": v}, VALUES),
    st.builds(lambda v, vs: {"value": v, "multiValue": [{"value": x} for x in vs]}, VALUES, st.lists(VALUES, max_size=3)),
    st.builds(lambda vs: {"multiValue": [{"value": x} for x in vs]}, st.lists(VALUES, max_size=2)),
    st.sampled_from([{"value": 1}, None, "text", {"multiValue": "x"}, {"multiValue": [{"v": "a"}]}, {}, [],
                     {"value": "v", "extra": True}]),
)
OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(NAMES), ENTRIES),
    st.tuples(st.just("del"), st.sampled_from(NAMES)),
    st.tuples(st.just("value"), st.sampled_from(NAMES), VALUES),
    st.tuples(st.just("readd"), st.sampled_from(NAMES)),
    st.tuples(st.just("qs"), st.sampled_from(["a", "b", "c"]), ENTRIES),
    st.tuples(st.just("cookie"), st.sampled_from(["s", "t"]), ENTRIES),
    st.tuples(st.just("field"), st.sampled_from(["uri", "method", "headers", "querystring", "cookies", "statusCode"]),
              st.sampled_from(["/b", "/c d", "x", "/" + "u" * 8200, "GET", "POST", None, {}, 200, []])),
    st.tuples(st.just("prop"), st.sampled_from(NAMES), st.sampled_from(["extra", "multiValue", "toJSON", "value"]),
              st.sampled_from(["v", 1, None, [], {}, [{"value": "m"}]])),
    st.tuples(st.just("copy")),
    st.tuples(st.just("log"), VALUES),
)
HEADERS = st.lists(st.sampled_from([
    ("User-Agent", "curl/8"), ("Accept", "*/*"), ("accept", "text/html"), ("X-Dup", "1"), ("x-dup", "2"),
    ("Cookie", "s=1; t=2"), ("Cookie", "s=3"), ("Connection", "keep-alive"), ("X-Amz-Cf-Id", "abc"),
    ("CloudFront-Viewer-Country", "DE"), ("Via", "1.1 a"), ("X-Bad", "ctl\x01"), ("1x", "digits"),
]), max_size=8)


def _request(headers: list[tuple[str, str]], qs: str) -> EdgeRequest:
    return EdgeRequest(method="GET", uri="/a", querystring=qs, headers=[("Host", "example.com"), *headers],
                       client_ip="192.0.2.1")


def _event(req: EdgeRequest, ops: list[Any]) -> tuple[dict[str, Any], str | None]:
    return build_event(req, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                       distribution_id="E1", request_id=json.dumps(ops))


def _fields(req: EdgeRequest, ops: list[Any]) -> str | None:
    return request_fields(req, distribution_domain="d1.cloudfront.net", distribution_id="E1",
                          request_id=json.dumps(ops))


def _outcome(req: EdgeRequest, ev: dict[str, Any], inv: Invocation) -> tuple[Any, ...]:
    head = (inv.error, inv.logs, inv.logs_truncated, inv.origin_ops)
    if inv.applied is not None:
        return (*head, inv.applied)
    try:
        return (*head, apply_request_result(req, ev, inv.value))
    except FunctionError as err:
        return (*head, type(err).__name__, err.detail)


@pytest.fixture(scope="module", params=[V1, V2])
def engine(request: pytest.FixtureRequest) -> FunctionEngine:
    return FunctionEngine("ops", OPS_FUNCTION, request.param)


def _both(engine: FunctionEngine, req: EdgeRequest, ops: list[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    ev, raw = _event(req, ops)
    slow = _outcome(req, ev, engine.invoke(ev, raw_query=raw, start_ms=1))
    fields = _fields(req, ops)
    assert fields is not None
    assert orjson.loads(engine.request_event_json(fields)) == ev  # the engine's event is build_event's
    fast_inv = engine.invoke_request(fields, partial(apply_request_delta, req), start_ms=1)
    return slow, _outcome(req, _event(req, ops)[0], fast_inv), fast_inv.applied is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=HEADERS, qs=st.sampled_from(["", "a=1", "a=1&a=2&b", "b=&c=3"]),
       ops=st.lists(OPS, max_size=4))
def test_fast_path_equals_full_path_on_random_events(engine: FunctionEngine, headers: list[tuple[str, str]], qs: str,
                                                     ops: list[Any]) -> None:
    slow, fast, _ = _both(engine, _request(headers, qs), [list(o) for o in ops])
    assert fast == slow


def test_fast_path_is_taken_for_added_headers_and_uri_changes(engine: FunctionEngine) -> None:
    req = _request([("Accept", "*/*"), ("Cookie", "s=1"), ("Connection", "close"), ("X-Dup", "1"), ("x-dup", "2")], "a=1")
    for ops in ([], [["set", "x-new", {"value": "1"}]], [["field", "uri", "/b"], ["set", "X-New", {"value": "2"}]],
                [["set", "x-new", {"multiValue": [{"value": "1"}, {"value": "2"}]}]],
                [["set", "x-new", {"value": "1", "multiValue": None}]],
                # properties the full path does not read, on the request or on one of its entries, are ignored
                [["field", "extra", 1]], [["prop", "accept", "extra", {"a": 1}]],
                [["set", "x-new", {"value": "1", "extra": True}]]):
        slow, fast, taken = _both(engine, req, ops)
        assert taken, ops
        assert fast == slow
    assert _both(engine, req, [])[1][-1].request == req  # nothing changed: the request as it came
    slow, fast, taken = _both(engine, req, [["set", "x-new", {"value": "1"}]])
    assert fast[-1].request.headers == [("Connection", "close"), ("Host", "example.com"), ("Accept", "*/*"),
                                        ("X-Dup", "1"), ("X-Dup", "2"), ("X-New", "1"), ("Cookie", "s=1")]


@pytest.mark.parametrize(("headers", "ops", "plain"), [
    ([("Accept", "*/*"), ("User-Agent", "x")], [["set", "x-new", {"value": "1"}]], True),
    ([], [["field", "uri", "/b"]], True),
    ([("Accept", "*/*"), ("Cookie", "s=1")], [["set", "x-new", {"value": "1"}]], False),     # Cookie lines
    ([("Accept", "*/*"), ("Connection", "close")], [["set", "x-new", {"value": "1"}]], False),  # a hidden header
    ([("X-Dup", "1"), ("x-dup", "2")], [["set", "x-new", {"value": "1"}]], False),            # a repeated name
    ([("Accept", "*/*")], [["set", "x-new", {"value": "1"}], ["set", "X-New", {"value": "2"}]], True),  # both added
    ([("Accept", "*/*")], [["set", "ACCEPT", {"value": "1"}]], True),  # Python sees the other spelling: the full path
])
def test_plain_requests_take_the_short_merge(engine: FunctionEngine, headers: list[tuple[str, str]], ops: list[Any],
                                             plain: bool) -> None:
    """The engine marks a delta ``plain`` exactly when the request's headers can stay as they came; either way the
    outcome is the full path's."""
    req = _request(headers, "")
    seen: list[bool] = []

    def spy(uri: str, added: list[str], is_plain: bool) -> Any:
        seen.append(is_plain)
        return apply_request_delta(req, uri, added, is_plain)

    fields = _fields(req, ops)
    assert fields is not None
    engine.invoke_request(fields, spy, start_ms=1)
    assert seen == [plain]
    slow, fast, taken = _both(engine, req, ops)
    assert taken == (ops[0][1] != "ACCEPT") and fast == slow


@pytest.mark.parametrize("ops", [
    [["value", "accept", "x"]],                       # an existing header changed
    [["del", "accept"]],                              # removed
    [["readd", "host"]],                              # moved to the end (the full path reorders)
    [["set", "via", {"value": "x"}]],                 # read-only
    [["set", "connection", {"value": "x"}]],          # disallowed
    [["set", "cookie", {"value": "x"}]],              # cookies live in request.cookies
    [["set", "a b", {"value": "x"}]],                 # invalid name
    [["set", "x-new", {"value": "a\nb"}]],            # invalid value
    [["set", "x-new", {"value": "a\x01b"}]],         # the delta's separator inside a value
    [["field", "uri", "/a\x01b"]],
    [["set", "ACCEPT", {"value": "x"}]],              # a new spelling of an existing name
    [["set", "1x", {"value": "x"}]],                  # integer-like order differs between JavaScript and Python
    [["qs", "a", {"value": "2"}]],
    [["cookie", "s", {"value": "2"}]],
    [["field", "method", "POST"]],
    [["field", "statusCode", 200]],
    [["field", "uri", "/c d"]],
    [["log", "hi"]],                                  # logs travel with the full result
    [["readd", "x-nothere"]],                         # an undefined entry (JSON drops it)
    [["copy"]],                                       # not the event's own request object
    [["prop", "accept", "multiValue", [{"value": "m"}]]],
    [["prop", "accept", "toJSON", 1]],
    [["field", "headers", None]],                     # (found by the property test: no throw on null maps)
    [["field", "querystring", None]],
    [["field", "cookies", None]],
])
def test_anything_else_takes_the_full_path_with_the_same_outcome(engine: FunctionEngine, ops: list[Any]) -> None:
    req = _request([("Accept", "*/*"), ("Cookie", "s=1"), ("Connection", "close")], "a=1")
    slow, fast, taken = _both(engine, req, ops)
    assert not taken
    assert fast == slow


def test_requests_the_engine_cannot_build_take_the_json_event() -> None:
    req = _request([("X-Name", "caf\u00e9")], "")
    assert _fields(req, []) is None  # non-ASCII: JavaScript's toLowerCase/trim differ from Python's
    assert _fields(_request([("X-Nul", "a\0b")], ""), []) is None  # a NUL would shift the fields
    assert _fields(_request([("X-Name", "cafe")], ""), []) is not None


def test_getters_and_to_json_take_the_full_path() -> None:
    """toJSON, getters, defineProperty: the fast path reads plain data only, the full path runs them as before."""
    code = """function handler(event) {
  var r = event.request;
  r.headers['x-json'] = { toJSON: function () { return { value: 'from-toJSON' }; } };
  Object.defineProperty(r.headers, 'x-get', { enumerable: true, get: function () { return { value: 'got' }; } });
  r.headers['x-undefined'] = undefined;
  r.headers['x-fn'] = { value: 'v', f: function () {} };
  return r;
}"""
    engine = FunctionEngine("json", code, V1)
    req = _request([("Accept", "*/*")], "")
    slow, fast, taken = _both(engine, req, [])
    assert not taken and fast == slow
    assert fast[-1].request.headers[-3:] == [("X-Json", "from-toJSON"), ("X-Get", "got"), ("X-Fn", "v")]
    for body in ["r.headers['x-a'] = { get value() { console.log('read'); return 'a'; } };",
                 "r.headers['x-a'] = Object.create({ toJSON: function () { return { value: 'b' }; } });",
                 "Object.defineProperty(r.headers.host, 'value', { get: function () { return 'h'; }, enumerable: true });",
                 "r.headers.__proto__ = { toJSON: function () { return {}; } };",
                 "Object.setPrototypeOf(r.headers.host, { toJSON: function () { return { value: 'p' }; } });",
                 "r.headers['x-a'] = { value: 'a' }; r.headers['x-a'].toJSON = function () { return { value: 'c' }; };"]:
        engine = FunctionEngine("json", "function handler(event) { var r = event.request; " + body + " return r; }", V1)
        slow, fast, taken = _both(engine, req, [])
        assert not taken and fast == slow, body


def test_async_handlers_and_origin_calls_keep_their_outcome() -> None:
    code = """import cf from 'cloudfront';
async function handler(event) {
  var r = event.request;
  cf.selectRequestOriginById('o2');
  console.log('k');
  r.headers['x-a'] = { value: await Promise.resolve('1') };
  return r;
}"""
    engine = FunctionEngine("async", code, V2)
    slow, fast, taken = _both(engine, _request([], "q=1"), [])
    assert not taken and fast == slow  # origin calls and logs: the full path
    engine = FunctionEngine("async2", code.replace("cf.selectRequestOriginById('o2');", "").replace(
        "console.log('k');", ""), V2)
    slow, fast, taken = _both(engine, _request([], "q=1"), [])
    assert taken and fast == slow
    assert fast[-1].request.headers[-1] == ("X-A", "1")


@pytest.mark.parametrize("delta", [True, False], ids=["delta", "full"])
def test_the_viewers_port_scheme_and_http_version_survive_the_function(delta: bool) -> None:
    """Regression: both paths rebuilt the request with the dataclass defaults for the viewer's port, scheme and HTTP
    version, so after a viewer-request function CloudFront-Viewer-Address said port 0, CloudFront-Forwarded-Proto
    said http for an HTTPS viewer and a regional tier was told the same."""
    engine = FunctionEngine("viewer", "function handler(event) { var r = event.request;"
                            " r.headers['x-added'] = {value: 'yes'}; r.uri = '/b'; return r; }", V1)
    request = EdgeRequest(method="GET", uri="/a", querystring="q=1", headers=[("Host", "example.com")],
                          client_ip="203.0.113.9", client_port=51234, scheme="https", http_version=(1, 0))
    if delta:
        fields = request_fields(request, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id="r")
        assert fields is not None
        got = engine.invoke_request(fields, partial(apply_request_delta, request)).applied
    else:
        event, raw = build_event(request, event_type="viewer-request", distribution_domain="d1.cloudfront.net",
                                 distribution_id="E1", request_id="r")
        got = apply_request_result(request, event, engine.invoke(event, raw_query=raw).value)
    assert got is not None
    out = got.request
    assert (out.uri, ("x-added", "yes") in [(k.lower(), v) for k, v in out.headers]) == ("/b", True)
    assert (out.client_port, out.scheme, out.http_version, out.client_ip) == (51234, "https", (1, 0), "203.0.113.9")
