"""The viewer-response fast path (FunctionEngine.invoke_response + delta.apply_response_delta) against the full path
(build_event + invoke + apply_response_result): the same event, the same outcome, on random responses and results."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cff_pop_bench import RESPONSE_CODE
from edge.cdn.cloudfront_functions import delta
from edge.cdn.cloudfront_functions.delta import apply_response_delta, request_fields, response_fields
from edge.cdn.cloudfront_functions.engine import FunctionEngine, Invocation
from edge.cdn.cloudfront_functions.errors import FunctionError
from edge.cdn.cloudfront_functions.event import (
    apply_response_result,
    build_event,
)
from edge.cdn.models import EdgeRequest, EdgeResponse, ResponseMeta
from edge.cdn.responses import POP_OWNED, REPLACED
from edge.cdn.server.wire import HttpDate, header_block, serialize
from tests.cdn.cloudfront_functions.ops_function import ops_function

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"


OPS_FUNCTION = ops_function("response")

NAMES = ["content-type", "server", "x-new", "X-New", "strict-transport-security", "via", "warning", "set-cookie",
         "connection", "x-amz-cf-id", "x-edge-foo", "1x", "a b", "x\u00e9", "etag"]
VALUES = st.sampled_from(["v", "", "a b", "bad\nline", "\u00e9t\u00e9", "x" * 40, "a\x01b", "\x01"])
ENTRIES = st.one_of(
    st.builds(lambda v: {"value": v}, VALUES),
    st.builds(lambda v, vs: {"value": v, "multiValue": [{"value": x} for x in vs]}, VALUES, st.lists(VALUES, max_size=3)),
    st.sampled_from([{"value": 1}, None, "text", {"multiValue": "x"}, {}, {"value": "v", "extra": True}]),
)
OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(NAMES), ENTRIES),
    st.tuples(st.just("del"), st.sampled_from(NAMES)),
    st.tuples(st.just("value"), st.sampled_from(NAMES), VALUES),
    st.tuples(st.just("readd"), st.sampled_from(NAMES)),
    st.tuples(st.just("cookie"), st.sampled_from(["s", "t"]), st.sampled_from([{"value": "1"}, {"value": "2", "attributes": "Path=/"}])),
    st.tuples(st.just("field"), st.sampled_from(["statusCode", "statusDescription", "body", "headers", "cookies", "extra"]),
              st.sampled_from([200, 404, 99, "OK", "", None, {}, "text", {"data": "aGk=", "encoding": "base64"}])),
    st.tuples(st.just("prop"), st.sampled_from(NAMES), st.sampled_from(["extra", "multiValue", "toJSON", "value"]),
              st.sampled_from(["v", 1, None, [{"value": "m"}]])),
    st.tuples(st.just("request")),
    st.tuples(st.just("copy")),
    st.tuples(st.just("log"), VALUES),
)
RESPONSE_HEADERS = st.lists(st.sampled_from([
    ("Content-Type", "text/html"), ("Cache-Control", "max-age=60"), ("Server", "origin"), ("server", "again"),
    ("ETag", '"abc"'), ("Set-Cookie", "a=1; Path=/"), ("Connection", "close"), ("Via", "1.1 origin"),
    ("Warning", "199 - x"), ("X-Bad", "ctl\x01"), ("1x", "digits"), ("X-Amz-Cf-Pop", "IAD"),
]), max_size=6)

REQUEST = EdgeRequest(method="GET", uri="/a", querystring="q=1", client_ip="192.0.2.1",
                      headers=[("Host", "example.com"), ("Accept", "*/*"), ("Cookie", "s=1")])


def _response(headers: list[tuple[str, str]], status: int = 200, desc: str = "OK", *,
              prepared: bool = False) -> EdgeResponse:
    """``prepared``: as the serving step makes a cache hit's (without the names the POP writes itself, clean, its
    headers serialised once)."""
    meta = ResponseMeta()
    if prepared:
        headers = [(n, v) for n, v in headers if n.lower() not in POP_OWNED and n.lower() != "content-length"]
        meta.clean, meta.header_block = True, header_block(headers)
    return EdgeResponse(status=status, headers=list(headers), body=b"body", status_description=desc, meta=meta)


class _FixedDate(HttpDate):
    def __call__(self) -> str:
        return "Sat, 05 Dec 2026 12:00:00 GMT"


def _wire(response: EdgeResponse) -> bytes | None:
    """The bytes PopViewer._send writes for ``response`` (its prepared lines when they describe its headers)."""
    meta = response.meta
    block = meta.header_block if meta.clean else None
    if block is not None and block.count != len(response.headers):
        block = None
    return serialize("GET", (1, 1), True, response.status, response.status_description or None,
                     () if block is not None else response.headers, response.body, _FixedDate(), block=block,
                     trailer="X-Cache: Hit from cloudfront\r\n", drop=frozenset() if meta.clean else REPLACED)


def _result(response: EdgeResponse) -> tuple[Any, ...]:
    return (response.status, response.status_description, response.headers, response.body, _wire(response))


def _event(response: EdgeResponse, ops: list[Any]) -> tuple[dict[str, Any], str | None]:
    return build_event(REQUEST, event_type="viewer-response", distribution_domain="d1.cloudfront.net",
                       distribution_id="E1", request_id=json.dumps(ops), response=response)


def _outcome(response: EdgeResponse, ev: dict[str, Any], inv: Invocation) -> tuple[Any, ...]:
    head = (inv.error, inv.logs, inv.logs_truncated)
    if inv.error is not None:
        return head
    if inv.applied is not None:
        return (*head, *_result(inv.applied.response))
    try:
        return (*head, *_result(apply_response_result(response, ev, inv.value).response))
    except FunctionError as err:
        return (*head, type(err).__name__, err.detail)


@pytest.fixture(scope="module", params=[V1, V2])
def engine(request: pytest.FixtureRequest) -> FunctionEngine:
    return FunctionEngine("ops", OPS_FUNCTION, request.param)


def _both(engine: FunctionEngine, response: EdgeResponse, ops: list[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...], bool] | None:
    ev, raw = _event(response, ops)
    slow = _outcome(response, ev, engine.invoke(ev, raw_query=raw, start_ms=1))
    fields = request_fields(REQUEST, distribution_domain="d1.cloudfront.net", distribution_id="E1",
                            request_id=json.dumps(ops))
    text = response_fields(response)
    if fields is None or text is None:
        return None
    assert orjson.loads(engine.response_event_json(fields, text)) == ev  # the engine's event is build_event's
    fast_inv = engine.invoke_response(fields, text, partial(apply_response_delta, response), start_ms=1)
    return slow, _outcome(response, _event(response, ops)[0], fast_inv), fast_inv.applied is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=RESPONSE_HEADERS, ops=st.lists(OPS, max_size=4), prepared=st.booleans())
def test_fast_path_equals_full_path_on_random_responses(engine: FunctionEngine, headers: list[tuple[str, str]],
                                                        ops: list[Any], prepared: bool) -> None:
    """The same response, and the same bytes on the wire (a cache hit's prepared lines kept by the fast path)."""
    both = _both(engine, _response(headers, prepared=prepared), [list(o) for o in ops])
    if both is not None:
        slow, fast, _ = both
        assert fast == slow


def test_the_engine_builds_only_what_it_can_answer() -> None:
    """Set-Cookie (parsed into cookies), a hidden header and a repeated name leave the response to the JSON event."""
    assert response_fields(_response([("Content-Type", "text/html"), ("ETag", '"e"')])) is not None
    for headers in ([("Set-Cookie", "a=1")], [("Connection", "close")], [("Server", "a"), ("server", "b")],
                    [("X-Text", "caf\u00e9")], [("X-Nul", "a\0b")]):
        assert response_fields(_response(headers)) is None, headers


@pytest.mark.parametrize("prepared", [False, True])
def test_the_security_headers_example_takes_the_fast_path(prepared: bool) -> None:
    """AWS's "add security headers" example: the delta, and the headers and bytes the full path gives, in the same
    order; a cache hit's prepared lines are kept, the added ones serialised after them."""
    engine = FunctionEngine("sec", RESPONSE_CODE, V1)
    headers = [("Content-Type", "text/html"), ("Cache-Control", "max-age=60"), ("Server", "origin")]
    response = _response(headers, prepared=prepared)
    ev, raw = _event(response, [])
    full = apply_response_result(response, ev, engine.invoke(ev, raw_query=raw).value).response
    fields = request_fields(REQUEST, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id="[]")
    text = response_fields(response)
    assert fields is not None and text is not None
    inv = engine.invoke_response(fields, text, partial(apply_response_delta, response))
    assert inv.applied is not None
    fast = inv.applied.response
    assert _result(fast) == _result(full)
    assert fast.headers[:3] == response.headers
    assert [n for n, _ in fast.headers[3:]] == ["Strict-Transport-Security", "Content-Security-Policy",
                                                "X-Content-Type-Options", "X-Frame-Options", "X-Xss-Protection",
                                                "Referrer-Policy"]
    block = fast.meta.header_block
    if prepared:  # the entry's lines and the added ones, serialised
        assert fast.meta.clean and block is not None and block.count == 9 and block.text.startswith(
            response.meta.header_block.text)
    else:
        assert not fast.meta.clean and block is None
    assert response.headers == headers  # the response the function got is not changed


@pytest.mark.parametrize("name", ["age", "content-length", "x-cache", "server-timing", "keep-alive", "date"])
def test_names_the_pop_writes_itself_are_not_kept_in_prepared_lines(name: str) -> None:
    code = f"function handler(event) {{ event.response.headers['{name}'] = {{value: '7'}}; return event.response; }}"
    engine = FunctionEngine("pop-owned", code, V1)
    response = _response([("Content-Type", "text/html")], prepared=True)
    ev, raw = _event(response, [])
    inv = engine.invoke(ev, raw_query=raw)
    try:
        full: Any = _result(apply_response_result(response, ev, inv.value).response)
    except FunctionError as err:
        full = type(err).__name__
    fields = request_fields(REQUEST, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id="[]")
    text = response_fields(response)
    assert fields is not None and text is not None
    fast_inv = engine.invoke_response(fields, text, partial(apply_response_delta, response))
    if fast_inv.applied is None:
        try:
            fast: Any = _result(apply_response_result(response, ev, fast_inv.value).response)
        except FunctionError as err:
            fast = type(err).__name__
    else:
        fast = _result(fast_inv.applied.response)
        assert name == "date" or not fast_inv.applied.response.meta.clean
    assert fast == full


@pytest.mark.parametrize("ops", [
    [["value", "server", "x"]],                        # an existing header changed
    [["del", "server"]],                               # removed
    [["readd", "content-type"]],                       # moved to the end
    [["set", "via", {"value": "x"}]],                  # read-only
    [["set", "warning", {"value": "x"}]],              # read-only
    [["set", "connection", {"value": "x"}]],           # disallowed
    [["set", "set-cookie", {"value": "x"}]],           # cookies live in response.cookies
    [["set", "a b", {"value": "x"}]],                  # invalid name
    [["set", "x-new", {"value": "a\nb"}]],             # invalid value
    [["set", "x-new", {"value": "a\x01b"}]],          # the delta's separator inside a value
    [["set", "SERVER", {"value": "x"}]],               # a new spelling of an existing name
    [["set", "1x", {"value": "x"}]],                   # integer-like order differs between JavaScript and Python
    [["cookie", "s", {"value": "2"}]],
    [["field", "statusCode", 404]],
    [["field", "statusDescription", "Gone"]],
    [["field", "body", "text"]],
    [["log", "hi"]],                                   # logs travel with the full result
    [["copy"]],                                        # not the event's own response object
    [["prop", "server", "multiValue", [{"value": "m"}]]],
    [["prop", "server", "toJSON", 1]],
])
def test_anything_else_takes_the_full_path_with_the_same_outcome(engine: FunctionEngine, ops: list[Any]) -> None:
    both = _both(engine, _response([("Content-Type", "text/html"), ("Server", "origin")]), ops)
    assert both is not None
    slow, fast, taken = both
    assert not taken
    assert fast == slow


@pytest.mark.parametrize("ops", [
    [],                                                # nothing changed
    [["set", "x-new", {"value": "1"}]],
    [["set", "x-new", {"multiValue": [{"value": "1"}, {"value": "2"}]}]],
    [["set", "x-new", {"value": "1"}], ["set", "X-New", {"value": "2"}]],  # two spellings of an added name
    [["request"]],                                     # the request part is not read back
    [["field", "extra", 1]], [["prop", "server", "extra", {"a": 1}]],  # properties the full path does not read
])
def test_added_headers_take_the_fast_path(engine: FunctionEngine, ops: list[Any]) -> None:
    both = _both(engine, _response([("Content-Type", "text/html"), ("Server", "origin")]), ops)
    assert both is not None
    slow, fast, taken = both
    assert taken and fast == slow


def test_a_cache_entrys_fields_are_computed_once_per_status_and_stay_right() -> None:
    headers = [("Content-Type", "text/html"), ("ETag", '"e"')]
    hit = _response(headers, prepared=True)
    assert response_fields(hit) == response_fields(_response(headers)) is not None
    assert response_fields(_response(headers, prepared=True)) == response_fields(hit)  # another entry, same text
    other = EdgeResponse(404, list(headers), b"", "Not Found", ResponseMeta(clean=True, header_block=hit.meta.header_block))
    assert response_fields(other) == response_fields(EdgeResponse(404, list(headers), b"", "Not Found"))
    hit.headers.append(("X-More", "1"))  # the serialised lines no longer describe the headers: not used
    assert response_fields(hit) == response_fields(EdgeResponse(200, hit.headers, b"body", status_description="OK"))
    assert "x-more" in (response_fields(hit) or "")


@pytest.mark.parametrize("added", [["x-a", "1"], ["x-a", "1", "x-b", "2"], ["set-cookie", "a=1"], ["x-a", "bad\nline"],
                                   ["server", "me"], ["x-amz-cf-id", "mine"], ["etag", "again"], ["1x", "digit"],
                                   ["content-length", "5"], ["X-Caps", "1"]])
def test_a_cache_entrys_delta_is_worked_out_once_and_stays_right(added: list[str]) -> None:
    headers = [("Content-Type", "text/html"), ("ETag", '"e"')]

    def outcome(response: EdgeResponse) -> tuple[Any, ...] | None:
        result = apply_response_delta(response, list(added))
        if result is None:
            return None
        out = result.response
        return out.headers, out.meta.clean, out.meta.header_block and out.meta.header_block.text

    delta._BLOCK_DELTAS.clear()
    hit = _response(headers, prepared=True)
    first = outcome(hit)
    again = [outcome(_response(headers, prepared=True)) for _ in range(2)]  # other responses of other entries
    assert again == [first, first]
    same_entry = EdgeResponse(200, list(headers), b"body", "OK", ResponseMeta(clean=True, header_block=hit.meta.header_block))
    assert outcome(same_entry) == first and outcome(same_entry) == first  # worked out once, the same answer
    assert len(delta._BLOCK_DELTAS) >= 1
    unprepared = apply_response_delta(_response(headers), list(added))  # the general path: the same headers
    assert (None if unprepared is None else unprepared.response.headers) == (None if first is None else first[0])
    other = [("Content-Type", "text/plain")]  # another entry with the same delta: its own headers
    got = outcome(_response(other, prepared=True))
    delta._BLOCK_DELTAS.clear()
    assert got == outcome(_response(other, prepared=True)) and (got is None or got[0][:1] == other)
    assert same_entry.headers == headers  # the response it was applied to is not changed
