"""Unit tests of EdgeTriggerRunner (edge/cdn/lambda_edge/runner.py) with a fake invoker, fake registry facts and a fake
clock: naming passed to the invocation core, outcome -> CloudFront error mapping, validation logging,
association-time checks (cached, logged once), Server-Timing entries."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.errors import LambdaExecutionError, LambdaLimitExceeded, LambdaValidationError
from edge.cdn.lambda_edge.runner import EdgeTriggerRunner, VersionFacts, edge_function_name, server_timing_entry
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.responses import ServerTiming
from edge.cdn.steps import Step, TriggerCall
from edge.invocation.errors import ResourceNotFoundException
from edge.invocation.models import InvocationResult, Outcome, ThrottleReason
from tests.cdn.scripted_origin import behavior_config, distribution_config

ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}:{}"


def _facts(version: str = "1", **kw: Any) -> VersionFacts:
    base = {"version": version, "revision": "r", "timeout_s": 5.0, "memory_mb": 128, "code_size": 1000,
            "environment": (), "layers": (), "runtime": "python3.11", "architecture": "x86_64",
            "ephemeral_storage_mb": 512}
    return VersionFacts(**{**base, **kw})  # type: ignore[arg-type]


class FakeInvoker:
    """Hands out prepared targets that record each call (with the options given to ``prepare``)."""

    def __init__(self, *results: InvocationResult | Exception) -> None:
        self.results = list(results)
        self.calls: list[dict[str, Any]] = []
        self.prepared: list[dict[str, Any]] = []

    def prepare(self, function_name: str, qualifier: str | None, **kw: Any) -> FakeTarget:
        options = {"name": function_name, "qualifier": qualifier, **kw}
        self.prepared.append(options)
        return FakeTarget(self, options)


class FakeTarget:
    def __init__(self, invoker: FakeInvoker, options: dict[str, Any]) -> None:
        self.invoker = invoker
        self.options = options

    async def invoke(self, payload: bytes, request_id: str | None = None,
                     trace_id: str | None = None) -> InvocationResult:
        self.invoker.calls.append({**self.options, "event": orjson.loads(payload), "request_id": request_id,
                                   "trace_id": trace_id})
        r = self.invoker.results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r


class FakeFacts:
    def __init__(self, answer: list[VersionFacts] | Exception | None) -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self, name: str, qualifier: str) -> list[VersionFacts] | None:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _ok(obj: Any, *, cold: bool = False, version: str = "1") -> InvocationResult:
    return InvocationResult(Outcome.OK, orjson.dumps(obj), "rid", version, cold_start=cold,
                            init_duration_ms=12.34 if cold else None, duration_ms=1.0)


def _call(event: Step = Step.VIEWER_REQUEST, *, qualifier: str = "1", response: EdgeResponse | None = None,
          include_body: bool = False) -> TriggerCall:
    from edge.cdn.config.settings import EdgeSwitches, PopSettings, Settings

    item = {"LambdaFunctionARN": ARN.format("fn", qualifier), "EventType": event.value, "IncludeBody": include_body}
    cfg = distribution_config(default={**behavior_config(),
                                       "LambdaFunctionAssociations": {"Quantity": 1, "Items": [item]}})
    settings = Settings(pops=(PopSettings("TST", "us-east-1"),), edge=EdgeSwitches(allow_unpublished_qualifiers=True))
    dist = load_distribution(cfg, settings)
    req = EdgeRequest("GET", "/a", "x=1", [("Host", "d.example"), ("X-Multi", "1"), ("X-Multi", "2")], "192.0.2.1")
    behavior = dist.default_behavior
    return TriggerCall(event_type=event, distribution=dist, behavior=behavior,
                       association=behavior.lambda_associations[0], request_id="cf-id==", request=req,
                       response=response, timing=ServerTiming())


def _runner(invoker: FakeInvoker, facts: FakeFacts | None = None, **kw: Any) -> EdgeTriggerRunner:
    return EdgeTriggerRunner(invoker, region="eu-central-1", facts=facts or FakeFacts([_facts()]), **kw)


def test_names_and_server_timing_entry() -> None:
    assert edge_function_name("hello") == "us-east-1.hello"
    cold = _ok({}, cold=True, version="3")
    assert server_timing_entry("viewer-request", "hello", cold, 14.031) == \
        'fn-viewer-request;desc="hello:3 cold init=12.3";dur=14.03'
    assert server_timing_entry("origin-response", "h", _ok({}), 0.5) == 'fn-origin-response;desc="h:1 warm";dur=0.50'


async def test_run_passes_edge_naming_and_event_and_returns_the_modified_request() -> None:
    call = _call()
    returned = {"method": "GET", "uri": "/b", "querystring": "x=1", "clientIp": "192.0.2.1",
                "headers": {"host": [{"key": "Host", "value": "d.example"}]}}
    inv = FakeInvoker(_ok(returned, cold=True))
    result = await _runner(inv).run(call)
    assert isinstance(result, EdgeRequest) and result.uri == "/b"
    c = inv.calls[0]
    assert (c["name"], c["qualifier"], c["region"]) == ("fn", "1", "eu-central-1")
    assert (c["display_name"], c["log_group"]) == ("us-east-1.fn", "/aws/lambda/us-east-1.fn")
    cf = c["event"]["Records"][0]["cf"]
    assert cf["config"]["requestId"] == "cf-id==" and cf["config"]["eventType"] == "viewer-request"
    assert cf["config"]["distributionId"] == call.distribution.id
    assert len(cf["request"]["headers"]["x-multi"]) == 2
    assert call.timing.entries[0].startswith('fn-viewer-request;desc="fn:1 cold init=12.3";dur=')


async def test_generated_response_gets_server_cloudfront_unless_the_function_set_one() -> None:
    inv = FakeInvoker(_ok({"status": "200", "body": "x"}),
                      _ok({"status": 200, "headers": {"server": [{"key": "Server", "value": "mine"}]}}))
    runner = _runner(inv)
    r1 = await runner.run(_call())
    r2 = await runner.run(_call())
    assert isinstance(r1, EdgeResponse) and ("Server", "CloudFront") in r1.headers
    assert r1.meta.generated_by == "viewer-request"
    assert isinstance(r2, EdgeResponse) and [v for k, v in r2.headers if k.lower() == "server"] == ["mine"]


async def test_outcomes_map_to_cloudfront_errors() -> None:
    throttled = InvocationResult(Outcome.THROTTLED, b"", "rid", "1", throttle_reason=ThrottleReason.RESERVED)
    failed = InvocationResult(Outcome.FUNCTION_ERROR, orjson.dumps({"errorType": "ValueError",
                                                                    "errorMessage": "boom"}), "rid", "1",
                              error_type="ValueError")
    timed_out = InvocationResult(Outcome.FUNCTION_ERROR, b"not json", "rid", "1", error_type="Sandbox.Timedout")
    inv = FakeInvoker(throttled, failed, timed_out, ResourceNotFoundException("gone"))
    runner = _runner(inv)
    with pytest.raises(LambdaLimitExceeded) as e1:
        await runner.run(_call())
    assert e1.value.status == 503 and "throttled" in e1.value.detail
    with pytest.raises(LambdaExecutionError) as e2:
        await runner.run(_call())
    assert e2.value.status == 503 and "ValueError: boom" in e2.value.detail and e2.value.function == "fn"
    with pytest.raises(LambdaExecutionError) as e3:
        await runner.run(_call())
    assert "Sandbox.Timedout" in e3.value.detail
    call = _call()
    with pytest.raises(LambdaExecutionError) as e4:
        await runner.run(call)
    assert "ResourceNotFoundException" in e4.value.detail
    assert call.timing.entries == []  # no invocation happened: no entry


async def test_validation_error_is_logged_to_the_distribution_group() -> None:
    lines: list[tuple[str, str, list[str]]] = []
    inv = FakeInvoker(_ok({"status": "700"}, version="4"))
    runner = _runner(inv, validation_log=lambda g, rid, ls: lines.append((g, rid, ls)))
    call = _call()
    with pytest.raises(LambdaValidationError) as err:
        await runner.run(call)
    assert err.value.status == 502 and err.value.function == "fn"
    group, rid, [line] = lines[0]
    assert group == f"/aws/cloudfront/LambdaEdge/{call.distribution.id}" and rid == "cf-id=="
    assert line.startswith("cf-id== ERROR Validation error: ") and "700" in line
    assert line.endswith("(function: fn:4, event: viewer-request)")
    assert len(call.timing.entries) == 1  # the function ran


async def test_association_check_failure_is_503_cached_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    facts = FakeFacts(None)
    inv = FakeInvoker(_ok({"status": "200"}))
    runner = _runner(inv, facts, clock=clock, checks_ttl_s=0.5)
    with caplog.at_level(logging.INFO, logger="edgelab.cdn.hooks"):
        for _ in range(5):
            with pytest.raises(LambdaExecutionError, match="does not exist"):
                await runner.run(_call())
        assert facts.calls == 1  # cached within the TTL
        clock.now += 0.6
        with pytest.raises(LambdaExecutionError):
            await runner.run(_call())
        assert facts.calls == 2
        facts.answer = [_facts()]
        clock.now += 0.6
        assert isinstance(await runner.run(_call()), EdgeResponse)
    assert inv.calls and len(inv.calls) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "does not exist" in errors[0].getMessage()
    assert any("usable again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("event, facts, message", [
    (Step.VIEWER_REQUEST, _facts(timeout_s=10), "timeout is larger than the maximum allowed"),
    (Step.VIEWER_RESPONSE, _facts(code_size=2_000_000), "code size is larger"),
    (Step.ORIGIN_REQUEST, _facts(environment=(("MODE", "x"),)), "cannot have environment variables"),
    (Step.ORIGIN_REQUEST, _facts(timeout_s=31), "timeout is larger"),
])
async def test_association_time_checks(event: Step, facts: VersionFacts, message: str) -> None:
    response = EdgeResponse(200, [], b"") if event.value.endswith("response") else None
    inv = FakeInvoker()
    with pytest.raises(LambdaExecutionError, match=message):
        await _runner(inv, FakeFacts([facts])).run(_call(event, response=response))
    assert inv.calls == []
    # relaxed: the same version runs
    resp_obj = {"status": "200", "headers": {}} if response is not None else {"status": "200"}
    relaxed = _runner(FakeInvoker(_ok(resp_obj)), FakeFacts([facts]), relax_limits=True)
    assert isinstance(await relaxed.run(_call(event, response=response)), EdgeResponse)


async def test_every_version_of_a_weighted_alias_is_checked() -> None:
    inv = FakeInvoker()
    facts = FakeFacts([_facts("1"), _facts("2", timeout_s=6)])
    with pytest.raises(LambdaExecutionError, match=r"fn:2"):
        await _runner(inv, facts).run(_call(qualifier="live"))


async def test_control_plane_error_while_checking_is_503() -> None:
    facts = FakeFacts(ResourceNotFoundException("Function not found: x"))
    with pytest.raises(LambdaExecutionError, match="ResourceNotFoundException"):
        await _runner(FakeInvoker(), facts).run(_call())


async def test_concurrent_requests_share_one_check_refresh() -> None:
    import asyncio

    clock = Clock()
    gate = asyncio.Event()

    class SlowFacts(FakeFacts):
        async def __call__(self, name: str, qualifier: str) -> list[VersionFacts] | None:
            self.calls += 1
            if self.calls > 1:
                await gate.wait()
            return self.answer  # type: ignore[return-value]

    facts = SlowFacts([_facts()])
    inv = FakeInvoker(*[_ok({"status": "200"}) for _ in range(6)])
    runner = _runner(inv, facts, clock=clock)
    await runner.run(_call())
    clock.now += 1.0  # expired: the first request refreshes, the others use the previous answer meanwhile
    first = asyncio.ensure_future(runner.run(_call()))
    await asyncio.sleep(0)
    others = await asyncio.gather(*(runner.run(_call()) for _ in range(4)))
    assert all(isinstance(r, EdgeResponse) for r in others) and facts.calls == 2
    gate.set()
    assert isinstance(await first, EdgeResponse)


async def test_result_over_the_lambda_payload_limit_is_a_validation_error() -> None:
    lines: list[tuple[str, str, list[str]]] = []
    too_large = InvocationResult(Outcome.FUNCTION_ERROR, orjson.dumps({
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes)."}),
        "rid", "1", error_type="Function.ResponseSizeTooLarge")
    runner = _runner(FakeInvoker(too_large), validation_log=lambda g, rid, ls: lines.append((g, rid, ls)))
    with pytest.raises(LambdaValidationError) as err:
        await runner.run(_call())
    assert err.value.status == 502
    assert err.value.page_line == "The Lambda function returned invalid JSON: The JSON output is not parsable."
    assert "6291556 bytes" in lines[0][2][0]


class FakeStream:
    def __init__(self) -> None:
        self.closed = 0

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("result, closed", [
    (_ok({"status": "200", "headers": {}}), 0),  # body untouched: the pipeline streams it on
    (_ok({"status": "200", "headers": {}, "body": "replaced"}), 1),
    (_ok({"status": "700"}), 1),  # validation error
    (InvocationResult(Outcome.FUNCTION_ERROR, b"{}", "rid", "1", error_type="Unhandled"), 1),
])
async def test_streamed_response_body_released_when_replaced_or_failed(result: InvocationResult,
                                                                       closed: int) -> None:
    stream = FakeStream()
    response = EdgeResponse(200, [("Content-Type", "x/y")], stream)  # type: ignore[arg-type]
    runner = _runner(FakeInvoker(result))
    try:
        out = await runner.run(_call(Step.ORIGIN_RESPONSE, response=response))
        assert isinstance(out, EdgeResponse) and (out.body is stream) == (closed == 0)
    except (LambdaExecutionError, LambdaValidationError):
        pass
    assert stream.closed == closed


async def test_one_prepared_target_per_association_reused_and_warm_entries_per_version() -> None:
    inv = FakeInvoker(_ok({"status": "200"}), _ok({"status": "200"}, version="2"), _ok({"status": "200"}),
                      _ok({"status": "200"}, cold=True, version="2"))
    runner = _runner(inv)
    call = _call(qualifier="live")
    for _ in range(4):
        await runner.run(call)
    assert inv.prepared == [{"name": "fn", "qualifier": "live", "region": "eu-central-1",
                             "display_name": "us-east-1.fn", "log_group": "/aws/lambda/us-east-1.fn"}]
    descs = [e.split(";dur=")[0] for e in call.timing.entries]
    assert descs == ['fn-viewer-request;desc="fn:1 warm"', 'fn-viewer-request;desc="fn:2 warm"',
                     'fn-viewer-request;desc="fn:1 warm"', 'fn-viewer-request;desc="fn:2 cold init=12.3"']
    assert all(float(e.split(";dur=")[1]) >= 0 for e in call.timing.entries)
    other = _call(Step.VIEWER_RESPONSE, response=EdgeResponse(200, [], b""))  # another association: its own
    inv.results.append(_ok({"status": "200"}))
    await runner.run(other)
    assert len(inv.prepared) == 2


async def test_prepare_refused_by_the_core_is_503() -> None:
    class Refusing(FakeInvoker):
        def prepare(self, function_name: str, qualifier: str | None, **kw: Any) -> FakeTarget:
            raise ResourceNotFoundException("Function not found: fn")

    with pytest.raises(LambdaExecutionError, match="ResourceNotFoundException"):
        await _runner(Refusing()).run(_call())
