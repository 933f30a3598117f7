"""The POP's short way to a fresh GET hit (``edge.cdn.lean``: ``lean_plan`` / ``plain_hit`` / ``function_first``,
``PopViewer._plain_hit``: without the pipeline's objects, or after the behavior's viewer-request CloudFront function)
answers what ``begin`` + ``_send`` answer: two real POPs in front of one scripted origin get the same random requests
(plain behaviors and others, one with a CloudFront function and one with a Lambda@Edge viewer-request function that
add a header, rewrite, generate a redirect, add a Range header or fail, one with a viewer-response CloudFront function
that adds headers, changes the status or fails; GET and HEAD, conditional and ranged, fragments, query strings, cookies, HTTP/1.0, keep-alive or
not, a clock that moves), one with the short way and one without it; their answers are byte for byte the same but
for what differs per request or per POP (ids, timings, Date, Via), and so are their counters.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from edge.cdn import lean
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, FunctionCatalog
from edge.cdn.errors import LambdaExecutionError
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import TriggerCall
from tests.cdn.scripted_origin import FakeClock, PopHarness, ScriptedOrigin, behavior_config, distribution_config
from tests.cdn.test_pipeline_triggers import FakeTriggers

SECURITY_HEADERS_POLICY = "67f7725c-6f97-4210-82d7-5512b31e9d03"
ETAG = '"v1"'
PATHS = ("/a", "/a", "/a", "/v", "/gone", "/short", "/", "/index.html", "/nocontent", "/rhp/a", "/ck/a", "/a#frag",
         "/a?x=1&y=2", "/ck/a?q=1", "/missing", "a", "/cf/a", "/cf/a", "/cf/old", "/cf/redirect", "/cf/range",
         "/cf/boom", "/cf/a?x=1", "/le/a", "/le/a", "/le/old", "/le/redirect", "/le/range", "/le/boom", "/vr/a",
         "/vr/a", "/vr/status", "/vr/boom")
FUNCTION = "lean-test"
# a viewer-request function (cloudfront-js-2.0) that takes each way out of function_first
FUNCTION_CODE = """async function handler(event) {
    var r = event.request;
    if (r.uri === '/cf/boom') { throw new Error('boom'); }
    if (r.uri === '/cf/redirect') {
        return {statusCode: 302, statusDescription: 'Found', headers: {location: {value: '/cf/a'}}};
    }
    if (r.uri === '/cf/old') { r.uri = '/cf/a'; }
    if (r.uri === '/cf/range') { r.uri = '/cf/a'; r.headers['range'] = {value: 'bytes=0-2'}; }
    r.headers['x-fn'] = {value: '1'};
    return r;
}"""
RESPONSE_FUNCTION = "lean-vr"
# a viewer-response function: headers added (the delta path), a status changed, an exception
RESPONSE_CODE = """async function handler(event) {
    var uri = event.request.uri, response = event.response;
    if (uri === '/vr/boom') { throw new Error('boom'); }
    if (uri === '/vr/status') { response.statusCode = 203; response.statusDescription = 'Changed'; }
    response.headers['x-vr'] = {value: 'yes'};
    response.headers['strict-transport-security'] = {value: 'max-age=63072000'};
    return response;
}"""
HEADERS = (("Accept-Encoding", "gzip, br"), ("Accept-Encoding", "identity"), ("If-None-Match", ETAG),
           ("Range", "bytes=0-3"), ("Cookie", "session=1; other=2"), ("Origin", "https://x.example"),
           ("X-Custom", "v"), ("if-modified-since", "Sat, 05 Dec 2020 10:00:00 GMT"), ("User-Agent", "wrk"))
# requests that repeat exactly (the function answers the third from memory and its runner keeps what it went on with)
REPEATED = tuple(f"GET {path} HTTP/{version}\r\nHost: d.example\r\n{extra}\r\n".encode()
                 for path in ("/cf/a", "/cf/old", "/cf/a?x=1", "/cf/range", "/vr/a", "/vr/status", "/vr/boom")
                 for version, extra in (
                     ("1.1", ""), ("1.0", ""), ("1.1", "X-Custom: v\r\nx-custom: w\r\n"), ("1.1", "Range: bytes=1-2\r\n"),
                     ("1.1", "If-None-Match: " + ETAG + "\r\n")))
_VARYING = [(re.compile(rb"(X-Amz-Cf-Id: |Request ID: )[A-Za-z0-9_=-]+"), rb"\1ID"),
            (re.compile(rb"dur=[0-9.]+"), b"dur=T"), (re.compile(rb"cu=[0-9]+"), b"cu=U"), (re.compile(rb"\r\nDate: [^\r]*"), b"\r\nDate: D"),
            (re.compile(rb"\r\nVia: [^\r]*"), b"\r\nVia: V"), (re.compile(rb"\r\nX-Amz-Cf-Pop: [^\r]*"), b"\r\nPop: P")]


async def _answer(port: int, raw: bytes) -> bytes:
    """One request on its own connection: the response's bytes (its head, then the body its framing says)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        no_body = raw.startswith(b"HEAD ") or re.match(rb"HTTP/1\.[01] (1\d\d|204|304) ", head)
        if no_body:
            body = b""
        elif length is not None:
            body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 5)
        else:
            body = await asyncio.wait_for(reader.read(), 5)
        return head + body
    finally:
        writer.close()


def _normalised(data: bytes) -> bytes:
    for pattern, repl in _VARYING:
        data = pattern.sub(repl, data)
    return data


def _request(rng: random.Random) -> bytes:
    method = rng.choice(("GET", "GET", "GET", "HEAD"))
    version = rng.choice(("1.1", "1.1", "1.0"))
    lines = [f"{method} {rng.choice(PATHS)} HTTP/{version}", "Host: d.example"]
    lines += [f"{k}: {v}" for k, v in rng.sample(HEADERS, rng.choice((0, 0, 1, 2)))]
    if rng.random() < 0.3:
        lines.append("Connection: close" if version == "1.1" else "Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _script(origin: ScriptedOrigin) -> None:
    fresh = {"Cache-Control": "max-age=60", "ETag": ETAG, "Last-Modified": "Sat, 05 Dec 2020 09:00:00 GMT"}
    origin.script("/a", body=b"alpha body", headers=fresh)
    origin.script("/v", body=b"varied", headers={**fresh, "Vary": "Accept-Encoding"})
    origin.script("/gone", status=404, body=b"gone", headers={"Cache-Control": "max-age=60"})
    origin.script("/short", body=b"short-lived", headers={"Cache-Control": "max-age=1"})
    origin.script("/index.html", body=b"<p>index</p>", headers={**fresh, "Content-Type": "text/html"})
    origin.script("/nocontent", status=204, headers={"Cache-Control": "max-age=60"})
    origin.script("/rhp/a", body=b"with a policy", headers=fresh)
    origin.script("/ck/a", body=b"cookie keyed", headers=fresh)
    origin.script("/cf/a", body=b"after a function", headers=fresh)
    origin.script("/le/a", body=b"after a Lambda@Edge function", headers=fresh)
    for path in ("/vr/a", "/vr/status", "/vr/boom"):
        origin.script(path, body=b"through a viewer-response function", headers=fresh)


def _lambda_edge(call: TriggerCall) -> EdgeRequest | EdgeResponse:
    """The Lambda@Edge viewer-request function of ``/le/*`` (FakeTriggers' action), the same ways out as FUNCTION's."""
    req = call.request
    if req.uri == "/le/boom":
        raise LambdaExecutionError("boom", event_type="viewer-request")
    if req.uri == "/le/redirect":
        return EdgeResponse(status=302, headers=[("Location", "/le/a")], body=b"")
    if req.uri in ("/le/old", "/le/range"):
        req = replace(req, uri="/le/a", headers=[*req.headers, *([("Range", "bytes=0-2")] if req.uri == "/le/range"
                                                                  else [])])
    return replace(req, headers=[*req.headers, ("X-Le", "1")])


@pytest.fixture
async def runners(tmp_path: Path) -> AsyncIterator[tuple[CloudFrontFunctionRunner, CloudFrontFunctionRunner]]:
    """Two POPs' runners of the same function (each counts its own invocations, which Server-Timing shows)."""
    db = CffDatabase(tmp_path)
    store = FunctionStore(db)
    for name, code in ((FUNCTION, FUNCTION_CODE), (RESPONSE_FUNCTION, RESPONSE_CODE)):
        store.publish(name, store.create(name, {"Comment": "", "Runtime": "cloudfront-js-2.0"}, code)["ETag"])
    db.close()
    names = [FUNCTION, RESPONSE_FUNCTION]
    pair = tuple(CloudFrontFunctionRunner(FunctionCatalog(CffDatabase(tmp_path), names), edge_location={
        "name": "TST", "serverIp": "127.0.0.1", "region": "us-east-1"}) for _ in range(2))
    for runner in pair:
        await runner.start()
    try:
        yield pair  # type: ignore[misc]
    finally:
        for runner in pair:
            await runner.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_short_way_answers_what_the_pipeline_answers(seed: int, monkeypatch: pytest.MonkeyPatch,
                                                              runners: tuple[CloudFrontFunctionRunner, ...]) -> None:
    clock = FakeClock()
    fn, vr = ({"FunctionAssociations": {"Quantity": 1, "Items": [
        {"FunctionARN": f"arn:aws:cloudfront::123456789012:function/{name}", "EventType": event}]}}
        for name, event in ((FUNCTION, "viewer-request"), (RESPONSE_FUNCTION, "viewer-response")))
    le = {"LambdaFunctionAssociations": {"Quantity": 1, "Items": [{"EventType": "viewer-request", "IncludeBody": False,
        "LambdaFunctionARN": "arn:aws:lambda:us-east-1:000000000000:function:fake-viewer-request:1"}]}}
    dist = distribution_config(root="index.html", default=behavior_config(), behaviors=[
        {**behavior_config("/rhp/*"), "ResponseHeadersPolicyId": SECURITY_HEADERS_POLICY},
        behavior_config("/ck/*", headers=("Origin",), cookies="all"), {**behavior_config("/cf/*"), **fn},
        {**behavior_config("/le/*"), **le}, {**behavior_config("/vr/*"), **vr}])
    triggers = [FakeTriggers(("viewer-request",), viewer_request=_lambda_edge) for _ in range(2)]
    async with ScriptedOrigin(clock=clock) as origin, \
            PopHarness(origin, dist, clock=clock, functions=runners[0], triggers=triggers[0]) as short, \
            PopHarness(origin, dist, clock=clock, functions=runners[1], triggers=triggers[1]) as full:
        _script(origin)
        real_lean, real_count, real_first = lean.lean_plan, lean.count_plain_hit, lean.function_first
        real_hooked, real_last, real_hook_first = lean.hooked_hit, lean.function_last, lean.hook_first
        real_again, real_last_again = lean.function_again, lean.last_again
        served: list[str] = []

        def lean_plan(ctx, uri, scheme):  # type: ignore[no-untyped-def]
            return None if ctx is full.state.ctx else real_lean(ctx, uri, scheme)  # the full POP: begin answers all

        def count_plain_hit(ctx, status, sent, counted=False):  # type: ignore[no-untyped-def]
            served.append("hit")
            return real_count(ctx, status, sent, counted)

        def function_again(ctx, plan, uri, querystring, client_ip, headers):  # type: ignore[no-untyped-def]
            again = real_again(ctx, plan, uri, querystring, client_ip, headers)
            served.append("function again" if again is not None else "function not kept")
            return again

        def last_again(ctx, plan, hit, uri, querystring, client_ip, headers):  # type: ignore[no-untyped-def]
            again = real_last_again(ctx, plan, hit, uri, querystring, client_ip, headers)
            served.append("response again" if again is not None else "response not kept")
            return again

        def function_first(ctx, ex, ready):  # type: ignore[no-untyped-def]
            outcome = real_first(ctx, ex, ready)
            served.append("function hit" if outcome[2] is not None else "function")
            return outcome

        def hooked_hit(ctx, ex):  # type: ignore[no-untyped-def]
            if ctx is full.state.ctx:
                return None
            hit = real_hooked(ctx, ex)
            served.append("hooked hit" if hit is not None else "hooked")
            return hit

        def hook_first(ctx, ex, done):  # type: ignore[no-untyped-def]
            started = real_hook_first(ctx, ex, done)
            served.append("hook first" if started else "hook declined")
            return started

        def function_last(ctx, ex, hit, ready):  # type: ignore[no-untyped-def]
            served.append("response function")
            return real_last(ctx, ex, hit, ready)

        monkeypatch.setattr(lean, "lean_plan", lean_plan)
        monkeypatch.setattr(lean, "function_last", function_last)
        monkeypatch.setattr(lean, "hooked_hit", hooked_hit)
        monkeypatch.setattr(lean, "hook_first", hook_first)
        monkeypatch.setattr(lean, "count_plain_hit", count_plain_hit)
        monkeypatch.setattr(lean, "function_first", function_first)
        monkeypatch.setattr(lean, "function_again", function_again)
        monkeypatch.setattr(lean, "last_again", last_again)
        rng = random.Random(seed)
        requests = 0
        for _ in range(150):
            if rng.random() < 0.1:
                clock.advance(rng.choice((0.5, 2.0)))
            raw = _request(rng)
            requests += 1
            a, b = await _answer(short.port, raw), await _answer(full.port, raw)
            assert _normalised(a) == _normalised(b), raw
        for raw in REPEATED * 4:  # the function's answers kept by its runner (the third time on): without an Exchange
            requests += 1
            a, b = await _answer(short.port, raw), await _answer(full.port, raw)
            assert _normalised(a) == _normalised(b), raw
        # the short way answered some (after the function too), and declined the rest
        assert served.count("hit") >= 20 and served.count("function hit") >= 3 and served.count("function") >= 3
        assert served.count("hooked hit") >= 3 and served.count("hooked") >= 1
        assert served.count("hook first") >= 5  # the hook started without begin, whatever it then answered
        assert served.count("response function") >= 3
        # the third and fourth time of each request that goes on to a plain hit (3 paths x 3 of the 5 heads: not
        # ranged or conditional, nor /cf/range, which the function makes ranged)
        assert served.count("function again") >= 18
        assert served.count("response again") >= 6  # /vr/a's (its status and headers as they were: a delta, kept)
        assert served.count("hit") < requests
        assert short.state.ctx.stats == full.state.ctx.stats
        assert short.state.ctx.store.stats() == full.state.ctx.store.stats()
        counts = [{name: [m[k] for k in ("invocations", "memo_hits", "generated_responses", "execution_errors")]
                   for name, m in runner.metrics().items()} for runner in runners]
        assert counts[0] == counts[1] and counts[0][FUNCTION][1] >= 27
        cf = [r.header("x-fn") for r in origin.requests["/cf/a"]]
        assert cf and set(cf) == {"1"}  # the function ran before the origin saw them
        assert triggers[0].calls == triggers[1].calls and triggers[0].calls


@pytest.mark.parametrize("change", ["disabled", "geo", "policy", "root", "https"])
async def test_a_distribution_applied_meanwhile_stops_the_short_way_where_it_changes_the_answer(change: str) -> None:
    """Cached objects stay when a distribution is applied (``PopState.apply_distribution``): the next hit on them is
    answered as the new configuration says (refused, or with the policy's headers), not as before."""
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.geo import default_location
    from tests.cdn.scripted_origin import pop_settings_for

    first = {**distribution_config(), "Id": "EPLAINHITS"}  # the same id, so the same cache keys, after the change
    async with ScriptedOrigin() as origin, PopHarness(origin, first) as pop:
        _script(origin)
        pop.state.ctx.location = default_location("IAD", "us-east-1")  # a POP whose viewers are in the US
        hit = b"GET /a HTTP/1.1\r\nHost: d.example\r\n\r\n"
        await _answer(pop.port, hit)
        assert b"X-Cache: Hit from cloudfront" in await _answer(pop.port, hit)
        default = behavior_config()
        if change == "https":  # served over HTTP while the POP had no HTTPS listener to send viewers to
            default["ViewerProtocolPolicy"] = "redirect-to-https"
        if change == "policy":
            default["ResponseHeadersPolicyId"] = SECURITY_HEADERS_POLICY
        config = {**distribution_config(enabled=change != "disabled", default=default,
                                        root="a" if change == "root" else ""), "Id": "EPLAINHITS"}
        if change == "geo":  # IAD's viewers are in the US
            config["DistributionConfig"]["Restrictions"] = {"GeoRestriction": {
                "RestrictionType": "whitelist", "Quantity": 1, "Items": ["FR"]}}
        pop.state.apply_distribution(load_distribution(config, pop_settings_for(origin)[1]))
        if change == "https":
            pop.state.ctx.https_port = 8443  # ... and now it has one
        data = await _answer(pop.port, b"GET / HTTP/1.1\r\nHost: d.example\r\n\r\n" if change == "root" else hit)
        if change == "policy":
            assert b"X-Cache: Hit from cloudfront" in data and b"\r\nStrict-Transport-Security: " in data
        elif change == "root":  # / is the default root object's entry now
            assert b"X-Cache: Hit from cloudfront" in data and data.endswith(b"alpha body")
        elif change == "https":
            assert data.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: https://d.example:8443/a\r\n" in data
        else:
            assert data.startswith(b"HTTP/1.1 403 ")
