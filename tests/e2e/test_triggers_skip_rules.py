"""Contract §2.3 skip rules through a real POP, real worker processes and a scripted origin.

Which functions ran is read from the response's ``Server-Timing`` ``fn-<event>`` entries (one per invocation);
origin contact from the scripted origin's hit counters.
"""

from __future__ import annotations

import asyncio
from email.utils import formatdate

from aiohttp import web

from tests.cdn.scripted_origin import FakeClock
from tests.e2e.conftest import OR, ORS, VR, VRS, EdgeStack, assoc, fn_events

PASS = """
def handler(event, context):
    cf = event["Records"][0]["cf"]
    return cf["response"] if "response" in cf else cf["request"]
"""

ALL4 = [assoc(VR, "pass"), assoc(OR, "pass"), assoc(ORS, "pass"), assoc(VRS, "pass")]


async def test_origin_triggers_run_only_on_miss(edge: EdgeStack) -> None:
    await edge.function("pass", PASS)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=ALL4)
    s, h, b = await edge.get("/a")
    assert (s, b, h["X-Cache"]) == (200, b"a", "Miss from cloudfront")
    assert fn_events(h) == [VR, OR, ORS, VRS]
    for _ in range(2):
        s, h, b = await edge.get("/a")
        assert (s, b, h["X-Cache"]) == (200, b"a", "Hit from cloudfront")
        assert fn_events(h) == [VR, VRS]
    assert edge.origin.hits["/a"] == 1


async def test_origin_request_runs_on_revalidation(edge: EdgeStack) -> None:
    clock = FakeClock()

    async def etagged(request: web.Request, n: int) -> web.Response:
        headers = {"ETag": '"v1"', "Cache-Control": "max-age=10", "Date": formatdate(clock.now, usegmt=True)}
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers=headers)
        return web.Response(body=b"body-v1", headers=headers)

    await edge.function("pass", PASS)
    edge.origin.script("/e", handler=etagged)
    await edge.start(associations=[assoc(VR, "pass"), assoc(OR, "pass"), assoc(ORS, "pass")], clock=clock)
    _, h, _ = await edge.get("/e")
    assert fn_events(h) == [VR, OR, ORS]
    _, h, _ = await edge.get("/e")
    assert fn_events(h) == [VR] and h["X-Cache"] == "Hit from cloudfront"
    clock.advance(11)
    s, h, b = await edge.get("/e")
    assert (s, b, h["X-Cache"]) == (200, b"body-v1", "RefreshHit from cloudfront")
    # expired: the origin is contacted, so both origin triggers run (origin-response on the 304)
    assert fn_events(h) == [VR, OR, ORS]
    assert edge.origin.hits["/e"] == 2
    assert edge.origin.requests["/e"][1].header("If-None-Match") == '"v1"'


GENERATE_VR = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/gen":
        return {"status": "200", "statusDescription": "OK",
                "headers": {"cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
                            "content-type": [{"key": "Content-Type", "value": "text/plain"}]},
                "body": "generated at the edge"}
    return request
"""


async def test_viewer_request_generated_response_not_cached_and_skips_viewer_response(edge: EdgeStack) -> None:
    await edge.function("gen", GENERATE_VR)
    await edge.function("pass", PASS)
    await edge.start(associations=[assoc(VR, "gen"), assoc(OR, "pass"), assoc(ORS, "pass"), assoc(VRS, "pass")])
    for _ in range(3):
        s, h, b = await edge.get("/gen")
        assert (s, b) == (200, b"generated at the edge")
        assert h["X-Cache"] == "LambdaGeneratedResponse from cloudfront"
        assert h["Server"] == "CloudFront"
        assert fn_events(h) == [VR]  # every time: not cached; viewer-response skipped
        assert h["X-Amz-Cf-Id"] and h["Via"].endswith("(CloudFront)")
    assert edge.origin.hits.total() == 0
    assert len(edge.pop.state.ctx.store) == 0  # type: ignore[union-attr]


GENERATE_OR = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    return {"status": 200,
            "headers": {"cache-control": [{"key": "Cache-Control", "value": "max-age=60"}]},
            "body": "from origin-request " + request["uri"]}
"""


async def test_origin_request_generated_response_cached_and_skips_origin_response(edge: EdgeStack) -> None:
    await edge.function("gen", GENERATE_OR)
    await edge.function("pass", PASS)
    await edge.start(associations=[assoc(VR, "pass"), assoc(OR, "gen"), assoc(ORS, "pass"), assoc(VRS, "pass")])
    s, h, b = await edge.get("/x")
    assert (s, b) == (200, b"from origin-request /x")
    assert fn_events(h) == [VR, OR, VRS]  # no origin fetch, no origin-response; viewer-response runs
    s, h, b = await edge.get("/x")
    assert (s, b, h["X-Cache"]) == (200, b"from origin-request /x", "Hit from cloudfront")
    assert fn_events(h) == [VR, VRS]
    assert edge.origin.hits.total() == 0


ORIGIN_RESPONSE_REWRITE = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-origin-status"] = [{"key": "X-Origin-Status", "value": response["status"]}]
    if response["status"] == "500":
        return {"status": "200", "statusDescription": "OK",
                "headers": {"cache-control": [{"key": "Cache-Control", "value": "max-age=60"}],
                            "x-origin-status": [{"key": "X-Origin-Status", "value": "500"}]},
                "body": "replaced by origin-response"}
    return response
"""


async def test_origin_response_sees_every_status_and_its_result_is_cached(edge: EdgeStack) -> None:
    await edge.function("ors", ORIGIN_RESPONSE_REWRITE)
    await edge.function("pass", PASS)
    edge.origin.script("/ok", body=b"ok", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/missing", status=404, body=b"nope", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/broken", status=500, body=b"boom", headers={"Cache-Control": "no-store"})
    await edge.start(associations=[assoc(ORS, "ors"), assoc(VRS, "pass")])
    for path, status in (("/ok", "200"), ("/missing", "404")):
        s, h, _ = await edge.get(path)
        assert (s, h["X-Origin-Status"]) == (int(status), status)
    s, h, b = await edge.get("/missing")
    assert fn_events(h) == []  # a cached 404: no origin-response, and no viewer-response (origin status >= 400)
    assert (s, h["X-Origin-Status"], h["X-Cache"]) == (404, "404", "Error from cloudfront")
    # a 500 rewritten to a cacheable 200: the rewritten response is what is cached
    s, h, b = await edge.get("/broken")
    assert (s, b, h["X-Origin-Status"]) == (200, b"replaced by origin-response", "500")
    # viewer-response is skipped on the origin's status (500), even though origin-response rewrote it
    assert fn_events(h) == [ORS]
    s, h, b = await edge.get("/broken")
    assert (s, b, h["X-Cache"]) == (200, b"replaced by origin-response", "Hit from cloudfront")
    assert fn_events(h) == [VRS]  # a hit on a stored 200: viewer-response runs
    assert edge.origin.hits == {"/ok": 1, "/missing": 1, "/broken": 1}


async def test_viewer_response_skipped_on_origin_error_rewritten_by_origin_response(edge: EdgeStack) -> None:
    """The emulator's decision on the contract's open question (§8): the origin's status decides."""
    await edge.function("ors", ORIGIN_RESPONSE_REWRITE)
    await edge.function("pass", PASS)
    edge.origin.script("/broken", status=500, body=b"boom", headers={"Cache-Control": "no-store"})
    await edge.start(associations=[assoc(ORS, "ors"), assoc(VRS, "pass")])
    s, h, b = await edge.get("/broken")
    assert (s, b) == (200, b"replaced by origin-response")
    assert fn_events(h) == [ORS]


VIEWER_RESPONSE_STAMP = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-vr"] = [{"key": "X-VR", "value": context.aws_request_id}]
    return response
"""


async def test_viewer_response_runs_on_hits_and_misses_not_on_origin_errors(edge: EdgeStack) -> None:
    await edge.function("stamp", VIEWER_RESPONSE_STAMP)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/gone", status=410, body=b"gone", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/down", status=503, body=b"down", headers={"Cache-Control": "no-store"})
    await edge.start(associations=[assoc(VRS, "stamp")])
    seen = set()
    for expected in ("Miss from cloudfront", "Hit from cloudfront", "Hit from cloudfront"):
        s, h, _ = await edge.get("/a")
        assert (s, h["X-Cache"], fn_events(h)) == (200, expected, [VRS])
        seen.add(h["X-VR"])
    assert len(seen) == 3  # one invocation per viewer request
    for path, status in (("/gone", 410), ("/gone", 410), ("/down", 503)):
        s, h, _ = await edge.get(path)
        assert s == status and "X-VR" not in h and fn_events(h) == []


STATUS_CHANGER = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["status"] = "201"
    return response
"""


async def test_viewer_response_cannot_change_status(edge: EdgeStack) -> None:
    await edge.function("st", STATUS_CHANGER)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc(VRS, "st")])
    for _ in range(2):  # miss, then hit: the cached object is untouched and the error repeats
        s, h, b = await edge.get("/a")
        assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
        assert b"<H1>502 ERROR</H1>" in b
    assert edge.origin.hits["/a"] == 1
    lines = await edge.validation_lines()
    assert any("status" in line and "201" in line for line in lines), lines


async def test_custom_error_page_gets_no_viewer_triggers(edge: EdgeStack) -> None:
    await edge.function("pass", PASS)
    edge.origin.script("/missing", status=404, body=b"origin 404", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/errors/404.html", body=b"custom page", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc(VR, "pass"), assoc(VRS, "pass")],
                     errors=[{"ErrorCode": 404, "ResponsePagePath": "/errors/404.html", "ResponseCode": "404",
                              "ErrorCachingMinTTL": 10}])
    s, h, b = await edge.get("/missing")
    assert (s, b) == (404, b"custom page")
    # viewer-request ran once (for the viewer's request, not for the page fetch); no viewer-response
    assert fn_events(h) == [VR]


async def test_collapsed_misses_run_origin_triggers_once(edge: EdgeStack) -> None:
    await edge.function("pass", PASS)
    edge.origin.script("/slow", body=b"slow", headers={"Cache-Control": "max-age=60"}, delay=0.3)
    await edge.start(associations=[assoc(VR, "pass"), assoc(OR, "pass"), assoc(ORS, "pass")])
    await edge.get("/warm-up-the-environment")  # one warm env, so the viewer-request calls below are quick
    results = await asyncio.gather(*(edge.get("/slow") for _ in range(5)))
    assert all((s, b) == (200, b"slow") for s, _, b in results)
    events = [fn_events(h) for _, h, _ in results]
    assert sum(e.count(OR) for e in events) == 1 and sum(e.count(ORS) for e in events) == 1
    assert all(e.count(VR) == 1 for e in events)
    assert edge.origin.hits["/slow"] == 1
