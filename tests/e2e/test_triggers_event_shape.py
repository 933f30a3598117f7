"""The event and context exactly as a real function receives them in a worker process (contract §1, §6):
config values, clientIp, header maps, the origin-facing header set, and Lambda@Edge naming of the context
and the function's log group."""

from __future__ import annotations

import json

from tests.cdn.scripted_origin import behavior_config
from tests.e2e.conftest import DIST_DOMAIN, DIST_ID, OR, VR, EdgeStack, assoc

# Answers with what it received (a generated response: the event travels back in the body).
ECHO = """
import json

def handler(event, context):
    cf = event["Records"][0]["cf"]
    print("echo", cf["config"]["eventType"], cf["request"]["uri"])
    info = {"event": event, "context": {
        "function_name": context.function_name, "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn, "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name, "log_stream_name": context.log_stream_name,
        "aws_request_id": context.aws_request_id, "remaining_ms": context.get_remaining_time_in_millis()}}
    return {"status": "200", "headers": {"content-type": [{"key": "Content-Type", "value": "application/json"}],
                                         "cache-control": [{"key": "Cache-Control", "value": "no-store"}]},
            "body": json.dumps(info)}
"""


def _values(headers: dict, name: str) -> list[str]:
    return [e["value"] for e in headers.get(name, [])]


async def test_viewer_request_event_and_context(edge: EdgeStack) -> None:
    await edge.function("echo", ECHO, timeout=5)
    await edge.start(associations=[assoc(VR, "echo")])
    viewer_headers = [("X-Multi", "one"), ("X-Multi", "two"), ("X-Amz-Cf-Id", "spoofed"), ("Connection", "keep-alive")]
    s, h, b = await edge.get("/path/to%20x?a=1&b=two", headers=viewer_headers)
    assert s == 200, b
    info = json.loads(b)
    rec = info["event"]["Records"][0]["cf"]
    assert rec["config"] == {"distributionDomainName": DIST_DOMAIN, "distributionId": DIST_ID,
                             "eventType": "viewer-request", "requestId": h["X-Amz-Cf-Id"]}
    req = rec["request"]
    assert (req["clientIp"], req["method"], req["uri"], req["querystring"]) == ("127.0.0.1", "GET", "/path/to%20x",
                                                                                 "a=1&b=two")
    assert req["headers"]["x-multi"] == [{"key": "X-Multi", "value": "one"}, {"key": "X-Multi", "value": "two"}]
    assert _values(req["headers"], "host") == [f"127.0.0.1:{edge.pop.port}"]  # type: ignore[union-attr]
    # disallowed headers are not exposed (contract §3.1)
    assert "x-amz-cf-id" not in req["headers"] and "connection" not in req["headers"]
    assert "origin" not in req and "body" not in req and "response" not in rec
    ctx = info["context"]
    assert ctx["function_name"] == "us-east-1.echo"
    assert ctx["log_group_name"] == "/aws/lambda/us-east-1.echo"
    assert ctx["function_version"] == "1" and ctx["memory_limit_in_mb"] == "128"
    assert ctx["invoked_function_arn"].endswith(":function:echo:1")
    assert 0 < ctx["remaining_ms"] <= 5000
    # the function's output lands in the Lambda@Edge log group, under its aws_request_id
    lines = await edge.logs("/aws/lambda/us-east-1.echo")
    assert any(line.startswith(f"START RequestId: {ctx['aws_request_id']}") for line in lines), lines
    assert any("echo viewer-request /path/to%20x" in line for line in lines)
    assert any(line.startswith("REPORT RequestId:") for line in lines)


async def test_origin_request_event_sees_origin_facing_headers(edge: EdgeStack) -> None:
    await edge.function("echo", ECHO)
    # contract §5.5: Accept/Referer/... are removed unless a policy forwards them; custom headers go as-is
    await edge.start(associations=[assoc(OR, "echo")], default=behavior_config(headers=("X-Fwd",)))
    s, h, b = await edge.get("/o?q=1", headers=[("X-Fwd", "kept"), ("X-Custom", "as-is"),
                                                 ("Accept", "text/html"), ("Referer", "http://r.example/"),
                                                 ("User-Agent", "curl/8"), ("X-Forwarded-For", "203.0.113.9")])
    assert s == 200, b
    rec = json.loads(b)["event"]["Records"][0]["cf"]
    assert rec["config"]["eventType"] == "origin-request" and rec["config"]["requestId"] == h["X-Amz-Cf-Id"]
    req = rec["request"]
    hdrs = req["headers"]
    assert _values(hdrs, "host") == ["origin.test"]
    assert _values(hdrs, "user-agent") == ["Amazon CloudFront"]
    assert _values(hdrs, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    via = _values(hdrs, "via")
    assert len(via) == 1 and via[0].startswith("1.1 ") and via[0].endswith(".cloudfront.net (CloudFront)")
    assert _values(hdrs, "x-fwd") == ["kept"] and _values(hdrs, "x-custom") == ["as-is"]
    assert "accept" not in hdrs and "referer" not in hdrs
    assert "x-amz-cf-id" not in hdrs  # disallowed: hidden from the function, still sent to the origin
    assert req["querystring"] == "q=1" and req["clientIp"] == "127.0.0.1"
    assert req["origin"]["custom"]["domainName"] == "origin.test"
    assert req["origin"]["custom"]["protocol"] == "http" and req["origin"]["custom"]["port"] == 80


async def test_query_string_not_forwarded_is_not_in_origin_event(edge: EdgeStack) -> None:
    await edge.function("echo", ECHO)
    await edge.start(associations=[assoc(OR, "echo")], default=behavior_config(query_string=False))
    s, _, b = await edge.get("/o?secret=1")
    assert s == 200
    assert json.loads(b)["event"]["Records"][0]["cf"]["request"]["querystring"] == ""


RESPONSE_ECHO = """
import json

def handler(event, context):
    cf = event["Records"][0]["cf"]
    response = cf["response"]
    response["headers"]["x-seen"] = [{"key": "X-Seen", "value": json.dumps(
        {"type": cf["config"]["eventType"], "status": response["status"],
         "desc": response["statusDescription"], "server": response["headers"].get("server"),
         "req_host": cf["request"]["headers"].get("host"), "has_body": "body" in response})}]
    return response
"""


async def test_response_events_shape(edge: EdgeStack) -> None:
    await edge.function("resp", RESPONSE_ECHO)
    edge.origin.script("/r", body=b"r", headers={"Cache-Control": "no-store", "Server": "origin-srv"})
    await edge.start(associations=[assoc("origin-response", "resp")])
    _, h, b = await edge.get("/r")
    seen = json.loads(h["X-Seen"])
    assert seen == {"type": "origin-response", "status": "200", "desc": "OK",
                    "server": [{"key": "Server", "value": "origin-srv"}],
                    "req_host": [{"key": "Host", "value": "origin.test"}], "has_body": False}
    assert b == b"r"


# Written as in the Lambda console's Python template: lambda_function.lambda_handler, logging + print.
CONSOLE_STYLE = """
import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    request = event['Records'][0]['cf']['request']
    logger.info("uri=%s", request['uri'])
    print(json.dumps({"region": os.environ["AWS_REGION"], "fn": context.function_name}))
    request['headers']['x-region'] = [{'key': 'X-Region', 'value': os.environ['AWS_REGION']}]
    request['headers']['x-fn'] = [{'key': 'X-Fn', 'value': context.function_name}]
    return request
"""


async def test_console_style_function_in_a_non_home_region_pop(edge_fra: EdgeStack) -> None:
    edge = edge_fra
    await edge.function("console", CONSOLE_STYLE, handler="lambda_function.lambda_handler")
    edge.origin.script("/page", body=b"page")
    await edge.start(associations=[assoc(VR, "console")])
    s, h, b = await edge.get("/page")
    assert (s, b) == (200, b"page")
    seen = edge.origin.requests["/page"][0]
    # the replica runs in the POP's region under the us-east-1 name
    assert (seen.header("X-Region"), seen.header("X-Fn")) == ("eu-central-1", "us-east-1.console")
    lines = await edge.logs("/aws/lambda/us-east-1.console")
    assert any("[INFO]" in line and "uri=/page" in line for line in lines), lines
    assert any('"region": "eu-central-1"' in line for line in lines)
    timing = h["Server-Timing"]
    assert 'fn-viewer-request;desc="console:1 cold init=' in timing
    _, h, _ = await edge.get("/page")
    assert 'fn-viewer-request;desc="console:1 warm";dur=' in h["Server-Timing"]
