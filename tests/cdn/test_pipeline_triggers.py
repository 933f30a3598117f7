"""The pipeline's trigger points and skip rules (contract §2.3), asserted as step sequences with a fake
TriggerRunner, through a real POP and a ScriptedOrigin (architecture convention 10)."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Callable

import pytest

from edge.cdn import pipeline
from edge.cdn.errors import LambdaError, LambdaExecutionError, LambdaLimitExceeded, LambdaValidationError
from edge.cdn.models import EdgeRequest, EdgeResponse, header_set
from edge.cdn.steps import TriggerCall
from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, distribution_config
from tests.cdn.server.test_pop_limits import exchange

VR, OR, ORS, VRS = "viewer-request", "origin-request", "origin-response", "viewer-response"
Action = Callable[[TriggerCall], EdgeRequest | EdgeResponse]


class FakeTriggers:
    """Records every hook call; per-event actions may modify, generate or raise. Unset events pass through.
    ``config(dist)`` associates a (never invoked) function with ``events`` on every behavior of ``dist``: the
    pipeline runs a hook only where the distribution associates one."""

    def __init__(self, events: tuple[str, ...] = (VR, OR, ORS, VRS), **actions: Action) -> None:
        self.events = tuple(events)
        self.actions = {k.replace("_", "-"): v for k, v in actions.items()}
        self.calls: list[str] = []
        self.seen: list[TriggerCall] = []
        self.run_only = False
        self.delay = 0.0  # seconds before ``start`` gives its result

    def config(self, dist: dict) -> dict:
        items = [{"LambdaFunctionARN": f"arn:aws:lambda:us-east-1:000000000000:function:fake-{e}:1", "EventType": e,
                  "IncludeBody": False} for e in self.events]
        cfg = copy.deepcopy(dist)
        dc = cfg["DistributionConfig"]
        for b in [dc["DefaultCacheBehavior"], *dc["CacheBehaviors"]["Items"]]:
            b["LambdaFunctionAssociations"] = {"Quantity": len(items), "Items": items}
        return cfg

    async def run(self, call: TriggerCall) -> EdgeRequest | EdgeResponse:
        return self._act(call)

    def start(self, call: TriggerCall, done: Callable[[EdgeRequest | EdgeResponse | LambdaError], object]) -> bool:
        """As the real runner's ``start`` (a warm function): the request events' result from the event loop. Every
        viewer-request hook through a POP goes this way; ``run_only`` makes it take ``run`` (a cold function)."""
        if self.run_only or call.response is not None:
            return False
        try:
            result: EdgeRequest | EdgeResponse | LambdaError = self._act(call)
        except LambdaError as err:
            result = err
        asyncio.get_running_loop().call_later(self.delay, done, result)
        return True

    def _act(self, call: TriggerCall) -> EdgeRequest | EdgeResponse:
        self.calls.append(call.event_type.value)
        self.seen.append(call)
        action = self.actions.get(call.event_type.value)
        if action is not None:
            return action(call)
        return call.response if call.response is not None else call.request

    def take(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls


@pytest.mark.parametrize("run_only", [False, True])
async def test_pipelined_requests_behind_a_viewer_request_hook_are_answered_in_order(run_only: bool) -> None:
    t = FakeTriggers(events=(VR,))
    t.run_only, t.delay = run_only, 0.05
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        origin.script("/p", body=b"PPP", headers={"Cache-Control": "max-age=60"})
        await pop.get("/p")
        data, closed = await exchange(pop.port, b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n" * 2
                                      + b"GET /none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert closed and re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"200", b"200", b"404"]
    assert data.count(b"X-Cache: Hit from cloudfront") == 2 and data.index(b"PPP") < data.rindex(b"PPP")
    assert t.take() == [VR] * 4


async def test_a_viewer_gone_while_its_viewer_request_hook_runs(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTriggers(events=(VR,))
    t.delay = 0.2
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        origin.script("/g", body=b"G", headers={"Cache-Control": "max-age=60"})
        await pop.get("/g")
        _, writer = await asyncio.open_connection("127.0.0.1", pop.port)
        writer.write(b"GET /g HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        writer.close()  # gone before the function's result
        await asyncio.sleep(0.4)
        status, headers, body = await pop.get("/g")
    assert (status, body, headers["X-Cache"]) == (200, b"G", "Hit from cloudfront")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_bug_after_the_viewer_request_hook_is_answered_with_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "after_viewer_request", broken)
    t = FakeTriggers(events=(VR,))
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        status, _, _ = await pop.get("/b")
        assert status == 500
        assert pop.state.ctx.stats.requests == 1


def _generated(status: int = 200, body: bytes = b"generated", cc: str = "max-age=60") -> EdgeResponse:
    return EdgeResponse(status=status, headers=[("Content-Type", "text/plain"), ("Cache-Control", cc)], body=body)


async def test_miss_then_hit_sequences() -> None:
    t = FakeTriggers()
    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            await pop.get("/a")
            assert t.take() == [VR, OR, ORS, VRS]
            _, h, _ = await pop.get("/a")
            assert t.take() == [VR, VRS] and h["X-Cache"] == "Hit from cloudfront"
    # the origin-request function saw the origin-bound request, with the origin set
    origin_call = t.seen[1]
    assert origin_call.request.origin is not None and origin_call.request.origin.domain_name == "origin.test"
    assert origin_call.request_id == t.seen[0].request_id


async def test_viewer_request_generated_response_not_cached_no_viewer_response() -> None:
    t = FakeTriggers(viewer_request=lambda c: _generated())
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        for _ in range(2):
            s, h, b = await pop.get("/gen")
            assert (s, b, h["X-Cache"]) == (200, b"generated", "LambdaGeneratedResponse from cloudfront")
            assert t.take() == [VR]
    assert origin.hits.total() == 0


async def test_viewer_request_rewrite_changes_cache_key_and_origin_uri() -> None:
    def rewrite(c: TriggerCall) -> EdgeRequest:
        c.request.uri = "/rewritten"
        return c.request

    t = FakeTriggers(events=(VR,), viewer_request=rewrite)
    async with ScriptedOrigin() as origin:
        origin.script("/rewritten", body=b"r", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            await pop.get("/one")
            _, h, b = await pop.get("/two")  # different viewer URI, same rewritten key
    assert (b, h["X-Cache"]) == (b"r", "Hit from cloudfront")
    assert origin.hits["/rewritten"] == 1


async def test_origin_request_generated_response_is_cached_and_skips_origin_response() -> None:
    t = FakeTriggers(origin_request=lambda c: _generated(body=b"from-or"))
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        _, h, b = await pop.get("/o")
        assert (b, h["X-Cache"]) == (b"from-or", "LambdaGeneratedResponse from cloudfront")
        assert t.take() == [VR, OR, VRS]
        _, h, b = await pop.get("/o")
        assert (b, h["X-Cache"]) == (b"from-or", "Hit from cloudfront")
        assert t.take() == [VR, VRS]
    assert origin.hits.total() == 0


async def test_origin_response_result_is_what_gets_cached() -> None:
    def add_header(c: TriggerCall) -> EdgeResponse:
        assert c.response is not None
        header_set(c.response.headers, "X-Added-By-ORS", "yes")
        header_set(c.response.headers, "Cache-Control", "max-age=300")
        return c.response

    t = FakeTriggers(origin_response=add_header)
    async with ScriptedOrigin() as origin:
        origin.script("/r", body=b"r")  # no Cache-Control from the origin
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            await pop.get("/r")
            _, h, _ = await pop.get("/r")
    assert h["X-Added-By-ORS"] == "yes" and h["X-Cache"] == "Hit from cloudfront"
    assert origin.hits["/r"] == 1


async def test_origin_error_runs_origin_response_but_not_viewer_response() -> None:
    t = FakeTriggers()
    async with ScriptedOrigin() as origin:
        origin.script("/missing", status=404, body=b"nope")
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            s, h, _ = await pop.get("/missing")
            assert (s, h["X-Cache"]) == (404, "Error from cloudfront")
            assert t.take() == [VR, OR, ORS]
            await pop.get("/missing")  # cached error: a hit, still no viewer-response
            assert t.take() == [VR]


async def test_viewer_response_may_not_change_status() -> None:
    def change_status(c: TriggerCall) -> EdgeResponse:
        assert c.response is not None
        return EdgeResponse(status=201, headers=c.response.headers, body=c.response.body)

    t = FakeTriggers(events=(VRS,), viewer_response=change_status)
    async with ScriptedOrigin() as origin:
        origin.script("/v", body=b"v", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            s, h, b = await pop.get("/v")
    assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
    assert b"The Lambda function result failed validation" in b


async def test_lambda_errors_map_to_cloudfront_statuses() -> None:
    def raiser(exc: Exception) -> Action:
        def action(c: TriggerCall) -> EdgeRequest:
            raise exc

        return action

    cases = [
        (LambdaExecutionError("boom", event_type=VR), 503, "LambdaExecutionError from cloudfront",
         b"is invalid or doesn't have the required permissions"),
        (LambdaLimitExceeded("throttled", event_type=VR), 503, "LambdaLimitExceeded from cloudfront",
         b"was throttled"),
        (LambdaValidationError("bad", event_type=VR, page_line="The Lambda function returned invalid JSON: The JSON "
                                                               "output is not parsable."),
         502, "LambdaValidationError from cloudfront", b"The JSON output is not parsable."),
    ]
    async with ScriptedOrigin() as origin:
        for exc, status, x_cache, line in cases:
            t = FakeTriggers(events=(VR, VRS), viewer_request=raiser(exc))
            async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
                s, h, b = await pop.get("/x")
            assert (s, h["X-Cache"]) == (status, x_cache)
            assert line in b and f"Request ID: {h['X-Amz-Cf-Id']}".encode() in b
            assert t.calls == [VR]  # no viewer-response on an error page
    assert origin.hits.total() == 0


async def test_trigger_timing_entries_reach_server_timing() -> None:
    def timed(c: TriggerCall) -> EdgeRequest:
        c.timing.add('fn-viewer-request;desc="hello:3 cold";dur=12.1')
        return c.request

    t = FakeTriggers(events=(VR,), viewer_request=timed)
    async with ScriptedOrigin() as origin:
        origin.script("/t", body=b"t", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            _, h, _ = await pop.get("/t")
    assert h["Server-Timing"].startswith("cdn-cache;desc=MISS, edge;dur=")
    assert 'fn-viewer-request;desc="hello:3 cold";dur=12.1' in h["Server-Timing"]


async def test_custom_error_page_fetch_skips_viewer_triggers() -> None:
    errors = [{"ErrorCode": 404, "ResponsePagePath": "/404.html", "ResponseCode": "404"}]
    t = FakeTriggers()
    async with ScriptedOrigin() as origin:
        origin.script("/404.html", body=b"custom", headers={"Cache-Control": "max-age=60"})
        origin.script("/gone", status=404)
        async with PopHarness(origin, t.config(distribution_config(errors=errors)), triggers=t) as pop:
            s, _, b = await pop.get("/gone")
    assert (s, b) == (404, b"custom")
    # one viewer-request (for /gone), origin triggers for both fetches, no viewer-response
    assert t.calls == [VR, OR, ORS, OR, ORS]


async def test_viewer_response_rule_uses_origin_status_not_rewritten_status() -> None:
    def fix_status(c: TriggerCall) -> EdgeResponse:
        assert c.response is not None
        return EdgeResponse(status=200, headers=[("Cache-Control", "max-age=60")], body=b"rewritten")

    t = FakeTriggers(origin_response=fix_status)
    async with ScriptedOrigin() as origin:
        origin.script("/err", status=500, body=b"boom")
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            s, _, b = await pop.get("/err")
    assert (s, b) == (200, b"rewritten")
    assert t.calls == [VR, OR, ORS]  # the origin said 500: no viewer-response


async def test_device_headers_generated_after_viewer_request_and_part_of_the_key() -> None:
    from tests.cdn.scripted_origin import behavior_config

    seen_by_vr: list[list[tuple[str, str]]] = []

    def capture(c: TriggerCall) -> EdgeRequest:
        seen_by_vr.append(list(c.request.headers))
        return c.request

    t = FakeTriggers(events=(VR,), viewer_request=capture)
    dist = distribution_config(default=behavior_config(headers=("CloudFront-Is-Mobile-Viewer",)))
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    async with ScriptedOrigin() as origin:
        origin.script("/p", body=b"p", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(dist), triggers=t) as pop:
            await pop.get("/p", headers={"User-Agent": iphone})
            await pop.get("/p", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)",
                                         "CloudFront-Is-Mobile-Viewer": "true"})  # spoofed: replaced
            _, h, _ = await pop.get("/p", headers={"User-Agent": iphone})
    assert h["X-Cache"] == "Hit from cloudfront"
    assert [r.header("CloudFront-Is-Mobile-Viewer") for r in origin.requests["/p"]] == ["true", "false"]
    assert all(k.lower() != "cloudfront-is-mobile-viewer" for k, _ in seen_by_vr[0])


def test_device_flags_from_user_agents() -> None:
    from edge.cdn.steps.viewer_headers import device_flags

    ipad = device_flags("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15")
    assert ipad["CloudFront-Is-Tablet-Viewer"] and ipad["CloudFront-Is-IOS-Viewer"]
    assert not ipad["CloudFront-Is-Mobile-Viewer"] and not ipad["CloudFront-Is-Desktop-Viewer"]
    phone = device_flags("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36")
    assert phone["CloudFront-Is-Mobile-Viewer"] and phone["CloudFront-Is-Android-Viewer"]
    desktop = device_flags("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0")
    assert desktop["CloudFront-Is-Desktop-Viewer"] and sum(desktop.values()) == 1
    assert device_flags("Roku/DVP-9.10")["CloudFront-Is-SmartTV-Viewer"]


async def test_revalidation_and_stale_if_error_sequences() -> None:
    from aiohttp import web

    from tests.cdn.scripted_origin import FakeClock

    clock = FakeClock()
    t = FakeTriggers()

    async def etagged(request: web.Request, n: int) -> web.Response:
        if n == 3:
            return web.Response(status=503, body=b"down")
        if request.headers.get("If-None-Match") == '"a"':
            return web.Response(status=304, headers={"ETag": '"a"', "Cache-Control": "max-age=5"})
        return web.Response(body=b"a", headers={"ETag": '"a"', "Cache-Control": "max-age=5"})

    async with ScriptedOrigin(clock) as origin:
        origin.script("/r", handler=etagged)
        async with PopHarness(origin, t.config(distribution_config()), triggers=t, clock=clock) as pop:
            await pop.get("/r")
            t.take()
            clock.advance(6)
            _, h, _ = await pop.get("/r")
            assert h["X-Cache"] == "RefreshHit from cloudfront"
            assert t.take() == [VR, OR, ORS, VRS]  # origin triggers run on a revalidation (304 included)
            clock.advance(6)
            s, h, b = await pop.get("/r")  # origin 503, stale copy served
            assert (s, b, h["X-Cache"]) == (200, b"a", "Hit from cloudfront")
            assert t.take() == [VR, OR, VRS]


async def test_generated_response_framing_is_recomputed() -> None:
    bad = EdgeResponse(status=200, headers=[("Content-Length", "999"), ("Content-Type", "text/plain")], body=b"short")
    t = FakeTriggers(events=(VR,), viewer_request=lambda c: bad)
    async with ScriptedOrigin() as origin, PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
        s, h, b = await pop.get("/g")
    assert (s, b, h["Content-Length"]) == (200, b"short", "5")


async def test_a_hook_result_after_the_pop_stopped_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """A viewer-request hook submitted without a task outlives a POP that stops meanwhile (the invocation core
    answers later): its result finds the connection closed and the viewers' task owner closed, and goes nowhere."""
    t = FakeTriggers(events=(VR,))
    t.delay = 0.3
    async with ScriptedOrigin() as origin:
        origin.script("/late", body=b"L", headers={"Cache-Control": "max-age=60"})
        async with PopHarness(origin, t.config(distribution_config()), triggers=t) as pop:
            _, writer = await asyncio.open_connection("127.0.0.1", pop.port)
            # not cached yet: after the hook, the miss needs a task, and the owner is closed by then
            writer.write(b"GET /late HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the POP has stopped; the hook's result arrives
        writer.close()
    assert t.take() == [VR]  # the pipelined second request never started: the first was still being answered
    assert origin.hits["/late"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
