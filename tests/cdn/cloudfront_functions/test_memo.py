"""Repeated events answered from memory (``FunctionEngine``, "Repeated events"): a call that read nothing that varies
between requests (the time, ``Math.random``, the event's request id), returned a delta and stayed well inside its
time limit is remembered, and the same event again is answered without running the function. Every case compares
what the viewer gets with an engine that remembers nothing."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest

from edge.cdn.cloudfront_functions.delta import (
    apply_request_delta,
    apply_response_delta,
    request_fields,
    response_fields,
)
from edge.cdn.cloudfront_functions.engine import FunctionEngine, Invocation, KvsView
from edge.cdn.models import EdgeRequest, EdgeResponse

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"
LOC = '{"name":"IAD","serverIp":"127.0.0.1","region":"us-east-1"}'


def _fn(value: str, *, runtime: str = V1) -> tuple[str, str]:
    """A viewer-request function that adds ``x-out`` with the JavaScript expression ``value`` (``r``: the request,
    ``event``: the event)."""
    return (f"function handler(event) {{ var r = event.request; r.headers['x-out'] = {{value: String({value})}};"
            " return r; }", runtime)


PURE = {
    "uri": _fn("r.uri + '|' + (r.headers['x-a'] ? r.headers['x-a'].value : '-')"),
    "date with a value": _fn("new Date(0).toISOString()"),
    "distribution id": _fn("event.context.distributionId + event.viewer.ip"),
    "context keys": _fn("Object.keys(event.context).join()"),
    "querystring": _fn("Object.keys(r.querystring).join()"),
}
VARIED = {
    "Date.now": _fn("Date.now()"),
    "new Date()": _fn("new Date().toISOString()"),
    "Date()": _fn("Date()"),
    "Math.random": _fn("Math.random() < 2 ? 'same' : ''"),
    "request id": _fn("event.context.requestId"),
    "context as JSON": _fn("JSON.stringify(event.context)"),
    "context copied": _fn("Object.assign({}, event.context).requestId"),
    "time after await": ("async function handler(event) { var r = event.request; await null;"
                         " r.headers['x-out'] = {value: String(Date.now())}; return r; }", V2),
}


def _request(a: str | None = None, *, uri: str = "/a", qs: str = "", host: str = "Host") -> EdgeRequest:
    headers = [(host, "example.com")] + ([("X-A", a)] if a is not None else [])
    return EdgeRequest(method="GET", uri=uri, querystring=qs, headers=headers, client_ip="192.0.2.1")


def _call(engine: FunctionEngine, req: EdgeRequest, rid: str, start_ms: int, *, kvs: KvsView | None = None,
          loc: str = LOC) -> Invocation:
    fields = request_fields(req, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id=rid)
    assert fields is not None
    return engine.invoke_request(fields, partial(apply_request_delta, req), kvs=kvs, edge_location_json=loc,
                                 start_ms=start_ms)


def _seen(inv: Invocation) -> tuple[Any, ...]:
    """What the viewer's request becomes (or the error)."""
    if inv.applied is None:
        return inv.error, inv.value, inv.logs
    request = inv.applied.request
    return inv.error, request.uri, request.querystring, request.headers


@pytest.mark.parametrize("name", sorted(PURE))
def test_a_repeated_event_is_answered_from_memory_when_the_call_read_nothing_that_varies(name: str) -> None:
    code, runtime = PURE[name]
    engine, fresh = FunctionEngine("m", code, runtime), FunctionEngine("f", code, runtime, memo=False)
    calls = [(_request("1"), "r1"), (_request("1"), "r2"), (_request("2"), "r3"), (_request("1"), "r4"),
             (_request("2", qs="q=1"), "r5"), (_request("2", qs="q=1"), "r6"), (_request("1", host="host"), "r7")]
    memo = []
    for i, (req, rid) in enumerate(calls):
        inv, want = _call(engine, req, rid, 1000 * i), _call(fresh, req, rid, 1000 * i)
        assert _seen(inv) == _seen(want) and inv.ok
        memo.append(inv.memo)
        assert not want.memo
    # the same fields again (a new request id and time do not count; the Host header's spelling is not in the
    # event, and the remembered delta is applied to the request's own headers)
    assert memo == [False, True, False, True, False, True, True]
    assert engine.memo_hits == 4 and fresh.memo_hits == 0
    assert _call(engine, _request("1", host="host"), "r8", 0).applied.request.headers[0] == ("host", "example.com")


@pytest.mark.parametrize("name", sorted(VARIED))
def test_a_call_that_read_the_time_randomness_or_the_request_id_runs_every_time(name: str) -> None:
    code, runtime = VARIED[name]
    engine, fresh = FunctionEngine("m", code, runtime), FunctionEngine("f", code, runtime, memo=False)
    for i in range(3):
        inv, want = _call(engine, _request("1"), f"r{i}", 1000 * i), _call(fresh, _request("1"), f"r{i}", 1000 * i)
        assert inv.ok and not inv.memo
        assert _seen(inv) == _seen(want) or name == "Math.random"
    assert engine.memo_hits == 0


def test_the_request_id_reads_and_writes_as_a_plain_property() -> None:
    code = ("function handler(event) { var c = event.context, r = event.request, before = Object.keys(c).join();"
            " c.requestId = 'mine'; r.headers['x-out'] = {value: before + '|' + Object.keys(c).join() + '|' +"
            " c.requestId + '|' + JSON.stringify(c)}; return r; }")
    keys = "distributionDomainName,distributionId,eventType,requestId"
    context = ('{"distributionDomainName":"d1.cloudfront.net","distributionId":"E1","eventType":"viewer-request",'
               '"requestId":"mine"}')
    for engine in (FunctionEngine("m", code, V1), FunctionEngine("f", code, V1, memo=False)):
        memo = []
        for rid in ("r1", "r2"):
            inv = _call(engine, _request(), rid, 0)
            assert inv.applied.request.headers[-1] == ("X-Out", f"{keys}|{keys}|mine|{context}")
            memo.append(inv.memo)
        # the request id was written, never read: the call's answer is the same for every request
        assert memo == [False, engine.memo]


def test_what_logs_or_moves_the_origin_is_never_remembered() -> None:
    logs = ("function handler(event) { console.log('saw ' + event.request.uri); var r = event.request;"
            " r.headers['x-out'] = {value: 'v'}; return r; }")
    origin = ("import cf from 'cloudfront';\nfunction handler(event) { cf.selectRequestOriginById('o2');"
              " return event.request; }")
    for code, runtime in ((logs, V1), (origin, V2)):
        engine = FunctionEngine("m", code, runtime)
        first, second = _call(engine, _request(), "r1", 0), _call(engine, _request(), "r2", 0)
        assert not first.memo and not second.memo and engine.memo_hits == 0
        assert first.logs == second.logs and first.origin_ops == second.origin_ops


def test_a_new_store_snapshot_or_edge_location_runs_the_function_again() -> None:
    code = ("import cf from 'cloudfront';\nconst kvs = cf.kvs();\nasync function handler(event) {"
            " var r = event.request; r.headers['x-out'] = {value: (await kvs.get('k')) + '@' + cf.edgeLocation.name};"
            " return r; }")
    engine = FunctionEngine("m", code, V2)

    def view(value: str, generation: int) -> KvsView:
        return KvsView(store_id="s1", data={"k": value}, meta={}, generation=generation)

    def out(inv: Invocation) -> tuple[str, bool]:
        return inv.applied.request.headers[-1][1], inv.memo

    one, two = view("one", 1), view("two", 2)
    assert out(_call(engine, _request(), "r1", 0, kvs=one)) == ("one@IAD", False)
    assert out(_call(engine, _request(), "r2", 0, kvs=one)) == ("one@IAD", True)
    assert out(_call(engine, _request(), "r3", 0, kvs=two)) == ("two@IAD", False)  # PutKey: a new generation
    assert out(_call(engine, _request(), "r4", 0, kvs=two)) == ("two@IAD", True)
    fra = LOC.replace("IAD", "FRA")
    assert out(_call(engine, _request(), "r5", 0, kvs=two, loc=fra)) == ("two@FRA", False)
    assert out(_call(engine, _request(), "r6", 0, kvs=two, loc=fra)) == ("two@FRA", True)
    assert out(_call(engine, _request(), "r7", 0, kvs=two)) == ("two@IAD", True)


def test_a_call_near_its_time_limit_is_not_remembered_and_what_is_remembered_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FunctionEngine("m", PURE["uri"][0], V1)
    monkeypatch.setattr(engine, "_memo_cpu_ns", 0)  # every call "near" the limit
    assert [_call(engine, _request(), f"r{i}", 0).memo for i in range(3)] == [False, False, False]
    engine = FunctionEngine("m", PURE["uri"][0], V1)
    for i in range(1100):
        assert not _call(engine, _request(str(i)), f"r{i}", 0).memo
    assert len(engine._memo) <= 1024
    assert _call(engine, _request("1099"), "again", 0).memo


def test_a_repeated_viewer_response_event_is_answered_from_memory() -> None:
    code = ("function handler(event) { var h = event.response.headers;"
            " h['strict-transport-security'] = {value: 'max-age=63072000'};"
            " h['x-status'] = {value: String(event.response.statusCode) + (h['etag'] ? h['etag'].value : '')};"
            " return event.response; }")
    engine, fresh = FunctionEngine("m", code, V1), FunctionEngine("f", code, V1, memo=False)

    def call(e: FunctionEngine, etag: str, rid: str) -> Invocation:
        req = _request()
        resp = EdgeResponse(status=200, headers=[("Content-Type", "text/plain"), ("ETag", etag)], body=b"x")
        fields = request_fields(req, distribution_domain="d1.cloudfront.net", distribution_id="E1", request_id=rid)
        rfields = response_fields(resp)
        assert fields is not None and rfields is not None
        return e.invoke_response(fields, rfields, partial(apply_response_delta, resp), start_ms=0)

    seen = []
    for etag, rid in (("a", "r1"), ("a", "r2"), ("b", "r3"), ("b", "r4")):
        inv, want = call(engine, etag, rid), call(fresh, etag, rid)
        assert inv.applied.response.headers == want.applied.response.headers
        seen.append(inv.memo)
    assert seen == [False, True, False, True]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_remembering_engines_answer_random_streams_as_engines_that_do_not(seed: int) -> None:
    rng = random.Random(seed)
    functions = {**PURE, **{k: v for k, v in VARIED.items() if k != "Math.random"}}
    pool = [_request(a, uri=uri, qs=qs) for a in (None, "1", "2") for uri in ("/a", "/b") for qs in ("", "x=1")]
    for name, (code, runtime) in sorted(functions.items()):
        engine, fresh = FunctionEngine("m", code, runtime), FunctionEngine("f", code, runtime, memo=False)
        for i in range(40):
            req, start = rng.choice(pool), rng.randrange(0, 10**12)
            assert _seen(_call(engine, req, f"r{i}", start)) == _seen(_call(fresh, req, f"r{i}", start)), name
        assert (engine.memo_hits > 0) == (name in PURE), name


def test_whether_a_call_varied_is_its_own() -> None:
    code, runtime = _fn("r.uri === '/b' ? Date.now() : r.uri")
    engine = FunctionEngine("m", code, runtime)
    calls = [("/b", "r1", 1), ("/a", "r2", 2), ("/a", "r3", 3), ("/b", "r4", 4), ("/a", "r5", 5)]
    out = [(_call(engine, _request(uri=uri), rid, t)) for uri, rid, t in calls]
    assert [inv.applied.request.headers[-1][1] for inv in out] == ["1", "/a", "/a", "4", "/a"]
    assert [inv.memo for inv in out] == [False, False, True, False, True]


def test_an_event_over_4_kb_of_fields_is_not_remembered() -> None:
    engine = FunctionEngine("m", PURE["uri"][0], V1)
    big, small = _request("x" * 5000), _request("x" * 3000)
    assert [_call(engine, big, f"r{i}", 0).memo for i in range(3)] == [False, False, False]
    assert [_call(engine, small, f"s{i}", 0).memo for i in range(3)] == [False, True, True]
