"""Every outcome of running a function, as the viewer sees it through a real POP (contract §4): execution
errors, timeouts, crashes and throttles (503), invalid results (502, detail in the validation log group),
the lenient cases CloudFront accepts, and association-time checks (503 while they fail, relaxable)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from edge.cdn.lambda_edge.fields import (
    PAGE_BODY,
    PAGE_DISALLOWED,
    PAGE_NOT_OBJECT,
    PAGE_READ_ONLY,
    PAGE_STATUS,
    PAGE_URI,
)
from tests.e2e.conftest import OR, VR, EdgeStack, assoc, behavior_config, fn_timings, with_associations

EXEC_LINE = ("The Lambda function associated with the CloudFront distribution is invalid or doesn't have the "
             "required permissions.")
THROTTLE_LINE = "The Lambda function associated with the CloudFront distribution was throttled."

FAULTY = """
import os, time

def handler(event, context):
    uri = event["Records"][0]["cf"]["request"]["uri"]
    if uri == "/raise":
        raise ValueError("boom from the handler")
    if uri == "/sleep":
        time.sleep(3)
    if uri == "/exit":
        os._exit(3)
    if uri == "/unserializable":
        return {"status": "200", "body": {1, 2}}
    return event["Records"][0]["cf"]["request"]
"""


def _assert_error_page(status: int, headers: Any, body: bytes, want_status: int, x_cache: str, line: str) -> None:
    assert (status, headers["X-Cache"]) == (want_status, x_cache)
    assert headers["Server"] == "CloudFront" and headers["Content-Type"].startswith("text/html")
    text = body.decode("latin-1")
    assert f"<H1>{want_status} ERROR</H1>" in text
    assert line in text, text
    assert f"Request ID: {headers['X-Amz-Cf-Id']}" in text


async def test_execution_errors_are_503(edge: EdgeStack) -> None:
    await edge.function("faulty", FAULTY, timeout=1)
    edge.origin.script("/raise", body=b"never")
    await edge.start(associations=[assoc(VR, "faulty")])
    for path in ("/raise", "/sleep", "/exit", "/raise"):
        s, h, b = await edge.get(path)
        _assert_error_page(s, h, b, 503, "LambdaExecutionError from cloudfront", EXEC_LINE)
    assert edge.origin.hits.total() == 0
    lines = await edge.logs("/aws/lambda/us-east-1.faulty")
    text = "\n".join(lines)
    assert "boom from the handler" in text and "ValueError" in text
    assert "Task timed out after 1.00 seconds" in text
    # after a crash the next invocation gets a fresh environment and works
    edge.origin.script("/fine", body=b"fine")
    s, h, b = await edge.get("/fine")
    assert (s, b) == (200, b"fine")


async def test_unserializable_result_is_an_execution_error(edge: EdgeStack) -> None:
    # The Python runtime cannot marshal the result (Runtime.MarshalError): a function error, hence 503.
    await edge.function("faulty", FAULTY)
    await edge.start(associations=[assoc(VR, "faulty")])
    s, h, b = await edge.get("/unserializable")
    _assert_error_page(s, h, b, 503, "LambdaExecutionError from cloudfront", EXEC_LINE)


async def test_throttled_is_503_limit_exceeded(edge: EdgeStack) -> None:
    await edge.function("faulty", FAULTY)
    edge.origin.script("/ok", body=b"ok", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc(VR, "faulty")])
    assert (await edge.get("/ok"))[0] == 200
    # set through the control side: the POP's service learns it from the registry's change feed
    control = await edge.control()
    await control.put_function_concurrency("faulty", 0)
    s, h, b = await _first(edge, "/ok", 503)  # even a cache hit: viewer-request runs first
    _assert_error_page(s, h, b, 503, "LambdaLimitExceeded from cloudfront", THROTTLE_LINE)
    assert 'fn-viewer-request;desc="faulty:1 throttled"' in h["Server-Timing"]  # never ran: not "warm"
    await control.delete_function_concurrency("faulty")
    s, h, b = await _first(edge, "/ok", 200)
    assert h["X-Cache"] == "Hit from cloudfront"


async def _first(edge: EdgeStack, path: str, status: int, limit_s: float = 1.0) -> tuple[int, Any, bytes]:
    """GET ``path`` until it answers ``status`` (registry changes reach the POP within a second)."""
    t0 = time.monotonic()
    while True:
        s, h, b = await edge.get(path)
        if s == status or time.monotonic() - t0 > limit_s:
            return s, h, b
        await asyncio.sleep(0.02)


INVALID = """
import json

def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri == "/none":
        return None
    if uri == "/string":
        return "not an object"
    if uri == "/readonly":
        request["headers"]["host"] = [{"key": "Host", "value": "evil.example"}]
    elif uri == "/disallowed":
        request["headers"]["x-real-ip"] = [{"key": "X-Real-IP", "value": "1.2.3.4"}]
    elif uri == "/country":
        request["headers"]["cloudfront-viewer-country"] = [{"key": "CloudFront-Viewer-Country", "value": "DE"}]
    elif uri == "/status":
        return {"status": "700"}
    elif uri == "/204body":
        return {"status": "204", "body": "not allowed"}
    elif uri == "/bodyobj":
        return {"status": "200", "body": {"json": "object"}}
    elif uri == "/b64":
        return {"status": "200", "body": "***not base64***", "bodyEncoding": "base64"}
    elif uri == "/big":
        return {"status": "200", "body": "x" * 41_000}
    elif uri == "/uri":
        request["uri"] = "no-leading-slash"
    elif uri == "/apigw":
        return {"statusCode": 200, "body": "API Gateway style"}
    return request
"""

CASES = [
    ("/none", PAGE_NOT_OBJECT), ("/string", PAGE_NOT_OBJECT), ("/readonly", PAGE_READ_ONLY),
    ("/disallowed", PAGE_DISALLOWED), ("/country", ""), ("/status", PAGE_STATUS), ("/204body", ""),
    ("/bodyobj", PAGE_BODY), ("/b64", ""), ("/big", ""), ("/uri", PAGE_URI), ("/apigw", ""),
]


async def test_invalid_results_are_502_with_detail_in_validation_log(edge: EdgeStack) -> None:
    await edge.function("invalid", INVALID)
    await edge.start(associations=[assoc(VR, "invalid")])
    ids = {}
    for path, line in CASES:
        s, h, b = await edge.get(path)
        _assert_error_page(s, h, b, 502, "LambdaValidationError from cloudfront",
                           line or "The Lambda function ")
        assert fn_timings(h)[0]["event"] == VR  # the function did run
        ids[path] = h["X-Amz-Cf-Id"]
    assert edge.origin.hits.total() == 0
    lines = await edge.validation_lines()
    for path, rid in ids.items():
        mine = [x for x in lines if x.startswith(f"{rid} ERROR Validation error: ")]
        assert len(mine) == 1, (path, lines)
        assert "(function: invalid:1, event: viewer-request)" in mine[0]
    by_path = {p: next(x for x in lines if x.startswith(ids[p])) for p in ids}
    assert "Host" in by_path["/readonly"] or "host" in by_path["/readonly"]
    assert "X-Real-IP" in by_path["/disallowed"] or "x-real-ip" in by_path["/disallowed"]
    assert "700" in by_path["/status"]
    assert "204" in by_path["/204body"]


LENIENT = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] == "/redirect":
        return {"status": 302, "headers": {"location": [{"value": "https://example.com/new"}]}}
    request["headers"]["x-no-key-given"] = [{"value": "filled"}]
    return request
"""


async def test_missing_key_is_title_cased_and_integer_status_accepted(edge: EdgeStack) -> None:
    await edge.function("lenient", LENIENT)
    edge.origin.script("/a", body=b"a")
    await edge.start(associations=[assoc(VR, "lenient")])
    s, h, _b = await edge.get("/redirect")
    assert (s, h["Location"]) == (302, "https://example.com/new")
    assert h["X-Cache"] == "LambdaGeneratedResponse from cloudfront"
    assert "Location" in list(h)  # the name as sent, not a case-insensitive lookup
    s, _, _ = await edge.get("/a")
    assert s == 200
    names = [k for k, _ in edge.origin.requests["/a"][0].headers]
    assert "X-No-Key-Given" in names
    assert edge.origin.requests["/a"][0].header("X-No-Key-Given") == "filled"


PASS = """
def handler(event, context):
    return event["Records"][0]["cf"]["request"]
"""


async def test_association_time_checks_answer_503_and_log_the_reason(edge: EdgeStack,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    await edge.function("slow", PASS, timeout=10)  # viewer triggers: 5 s maximum
    await edge.function("envy", PASS, Environment={"Variables": {"MODE": "1"}})
    await edge.function("slowok", PASS, timeout=10)  # origin triggers: 30 s maximum
    edge.origin.script("/a", body=b"a")
    edge.origin.script("/b/x", body=b"b")
    await edge.start(associations=[assoc(VR, "slow"), assoc(OR, "slowok")],
                     behaviors=[with_associations(behavior_config("/b/*"), [assoc(VR, "envy")])])
    with caplog.at_level(logging.ERROR, logger="edgelab.cdn.hooks"):
        s, h, b = await edge.get("/a")
        _assert_error_page(s, h, b, 503, "LambdaExecutionError from cloudfront", EXEC_LINE)
        s, h, b = await edge.get("/b/x")
        _assert_error_page(s, h, b, 503, "LambdaExecutionError from cloudfront", EXEC_LINE)
    assert fn_timings(h) == []  # not invoked
    text = caplog.text
    assert "The function timeout is larger than the maximum allowed" in text and "Max allowed: 5" in text
    assert "The function cannot have environment variables" in text
    assert edge.origin.hits.total() == 0


async def test_relax_limits_lets_oversized_functions_run(edge: EdgeStack) -> None:
    await edge.function("slow", PASS, timeout=10)
    edge.origin.script("/a", body=b"a")
    await edge.start(associations=[assoc(VR, "slow")], relax=True)
    s, h, b = await edge.get("/a")
    assert (s, b) == (200, b"a")
    assert fn_timings(h)[0]["name"] == "slow"


BAD_ORIGIN_RESPONSE = """
def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["via"] = [{"key": "Via", "value": "1.1 my-proxy"}]
    return response
"""


async def test_invalid_origin_response_result_is_502_and_not_cached(edge: EdgeStack) -> None:
    await edge.function("badors", BAD_ORIGIN_RESPONSE)
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc("origin-response", "badors")])
    for _ in range(2):
        s, h, b = await edge.get("/a")
        _assert_error_page(s, h, b, 502, "LambdaValidationError from cloudfront", PAGE_READ_ONLY)
        assert fn_timings(h)[0]["event"] == "origin-response"
    assert edge.origin.hits["/a"] == 2  # nothing was cached
    lines = await edge.validation_lines()
    assert len(lines) == 2 and all("read-only header" in x and "(function: badors:1, event: origin-response)" in x
                                   for x in lines)


TOO_LARGE = """
def handler(event, context):
    return {"status": "200", "body": "x" * 7_000_000}
"""


async def test_result_over_6mb_is_502_not_parsable(edge: EdgeStack) -> None:
    await edge.function("huge", TOO_LARGE)
    await edge.start(associations=[assoc(OR, "huge")])
    s, h, b = await edge.get("/a")
    _assert_error_page(s, h, b, 502, "LambdaValidationError from cloudfront",
                       "The Lambda function returned invalid JSON: The JSON output is not parsable.")
    assert any(line.startswith(h["X-Amz-Cf-Id"]) for line in await edge.validation_lines())
