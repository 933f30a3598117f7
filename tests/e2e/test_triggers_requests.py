"""Request triggers through a real POP: uri/querystring/header changes, the cache key computed after
viewer-request, origin switching in origin-request, and IncludeBody (exposure, truncation, replacement)."""

from __future__ import annotations

from tests.cdn.scripted_origin import ScriptedOrigin, behavior_config
from tests.e2e.conftest import OR, VR, EdgeStack, assoc, fn_events

REWRITE = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] in ("/alias-1", "/alias-2"):
        request["uri"] = "/canonical"
    # lowercase and sort the query so that ?B=2&a=1 and ?a=1&b=2 share a cache key
    params = sorted(p.lower() for p in request["querystring"].split("&") if p)
    request["querystring"] = "&".join(params)
    request["headers"]["x-rewritten-by"] = [{"key": "X-Rewritten-By", "value": context.function_name}]
    request["headers"].pop("x-drop-me", None)
    return request
"""


async def test_viewer_request_rewrite_drives_cache_key_and_origin_request(edge: EdgeStack) -> None:
    await edge.function("rw", REWRITE)
    edge.origin.script("/canonical", body=b"canon", headers={"Cache-Control": "max-age=60"})
    await edge.start(associations=[assoc(VR, "rw")])
    s, h, b = await edge.get("/alias-1?B=2&a=1", headers={"X-Drop-Me": "1"})
    assert (s, b, h["X-Cache"]) == (200, b"canon", "Miss from cloudfront")
    s, h, b = await edge.get("/alias-2?a=1&b=2")
    assert (s, b, h["X-Cache"]) == (200, b"canon", "Hit from cloudfront")
    assert fn_events(h) == [VR]
    assert edge.origin.hits["/canonical"] == 1
    seen = edge.origin.requests["/canonical"][0]
    assert seen.query == "a=1&b=2"
    assert seen.header("X-Rewritten-By") == "us-east-1.rw"
    assert seen.header("X-Drop-Me") is None
    # a different normalized query is a different cache key
    s, h, _ = await edge.get("/alias-1?c=3")
    assert h["X-Cache"] == "Miss from cloudfront" and edge.origin.requests["/canonical"][1].query == "c=3"


VARIANT = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    device = request["headers"].get("x-device", [{"value": "desktop"}])[0]["value"]
    request["headers"]["x-variant"] = [{"key": "X-Variant", "value": "m" if device == "phone" else "d"}]
    return request
"""


async def test_header_set_by_viewer_request_selects_the_cache_entry(edge: EdgeStack) -> None:
    await edge.function("variant", VARIANT)

    async def by_variant(request, n):  # type: ignore[no-untyped-def]
        from aiohttp import web

        return web.Response(body=f"variant={request.headers.get('X-Variant')}".encode(),
                            headers={"Cache-Control": "max-age=60"})

    edge.origin.script("/page", handler=by_variant)
    await edge.start(associations=[assoc(VR, "variant")], default=behavior_config(headers=("X-Variant",)))
    assert (await edge.get("/page", headers={"X-Device": "phone"}))[2] == b"variant=m"
    assert (await edge.get("/page"))[2] == b"variant=d"
    _, h, b = await edge.get("/page", headers={"X-Device": "phone"})
    assert (b, h["X-Cache"]) == (b"variant=m", "Hit from cloudfront")
    _, h, b = await edge.get("/page", headers={"X-Device": "tablet"})  # computed "d": same entry as desktop
    assert (b, h["X-Cache"]) == (b"variant=d", "Hit from cloudfront")
    assert edge.origin.hits["/page"] == 2


SWITCH_ORIGIN = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    backend = request["headers"].get("x-backend", [{"value": ""}])[0]["value"]
    if backend in ("green", "custom-host"):
        custom = request["origin"]["custom"]
        custom["domainName"] = "green.test"
        custom["path"] = "/v2"
        host = "green.test" if backend == "green" else "vhost.example"
        request["headers"]["host"] = [{"key": "Host", "value": host}]
    return request
"""


async def test_origin_request_switches_custom_origin_with_host_as_set(edge: EdgeStack) -> None:
    await edge.function("switch", SWITCH_ORIGIN)
    green = await ScriptedOrigin().start()
    green.script("/v2/api", body=b"green", headers={"Cache-Control": "no-store"})
    edge.origin.script("/api", body=b"blue", headers={"Cache-Control": "no-store"})
    await edge.start(associations=[assoc(OR, "switch")], origins={"green.test": green},
                     default=behavior_config(headers=("X-Backend",)))
    assert (await edge.get("/api"))[2] == b"blue"
    assert edge.origin.requests["/api"][0].header("Host") == "origin.test"
    s, h, b = await edge.get("/api", headers={"X-Backend": "green"})
    assert (s, b) == (200, b"green")
    assert green.requests["/v2/api"][0].header("Host") == "green.test"
    s, h, b = await edge.get("/api", headers={"X-Backend": "custom-host"})
    assert (s, b) == (200, b"green")
    assert green.requests["/v2/api"][1].header("Host") == "vhost.example"
    # CloudFront's own origin headers survive the function (it never saw X-Amz-Cf-Id: disallowed)
    assert green.requests["/v2/api"][1].header("X-Amz-Cf-Id") == h["X-Amz-Cf-Id"]
    assert edge.origin.hits["/api"] == 1 and green.hits["/v2/api"] == 2


BAD_ORIGIN = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["origin"]["custom"]["port"] = 70000
    return request
"""


async def test_origin_request_invalid_origin_is_a_validation_error(edge: EdgeStack) -> None:
    await edge.function("bad", BAD_ORIGIN)
    edge.origin.script("/api", body=b"blue")
    await edge.start(associations=[assoc(OR, "bad")])
    s, h, _b = await edge.get("/api")
    assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
    assert edge.origin.hits.total() == 0
    assert any("port" in line for line in await edge.validation_lines())


BODY = """
import base64

def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    body = request["body"]
    data = base64.b64decode(body["data"]) if body["encoding"] == "base64" else body["data"].encode()
    info = f'{body["inputTruncated"]}:{len(data)}:{body["encoding"]}:{body["action"]}:{data[:5].decode()}'
    request["headers"]["x-body-info"] = [{"key": "X-Body-Info", "value": info}]
    if request["uri"] == "/replace":
        request["body"] = {"action": "replace", "encoding": "text", "data": "replaced " + str(len(data))}
    elif request["uri"] == "/replace64":
        request["body"]["action"] = "replace"
        request["body"]["encoding"] = "base64"
        request["body"]["data"] = base64.b64encode(b"\\x00binary").decode()
    return request
"""

POST = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


async def test_include_body_viewer_request_truncation_and_replace(edge: EdgeStack) -> None:
    await edge.function("body", BODY)
    for path in ("/echo", "/replace", "/replace64"):
        edge.origin.script(path, body=b"ok")
    await edge.start(associations=[assoc(VR, "body", include_body=True)], default=behavior_config(methods=POST))
    small = b"hello world"
    s, _, _ = await edge.request("POST", "/echo", data=small)
    seen = edge.origin.requests["/echo"][0]
    assert s == 200 and seen.header("X-Body-Info") == "False:11:base64:read-only:hello"
    assert seen.body == small  # read-only: the viewer's body goes to the origin
    big = b"abcde" * 10_000  # 50,000 bytes > 40 KB exposed to viewer events
    await edge.request("POST", "/echo", data=big)
    seen = edge.origin.requests["/echo"][1]
    assert seen.header("X-Body-Info") == "True:40960:base64:read-only:abcde"
    assert seen.body == big  # truncation only affects what the function sees
    await edge.request("POST", "/replace", data=small)
    assert edge.origin.requests["/replace"][0].body == b"replaced 11"
    await edge.request("PUT", "/replace64", data=small)
    assert edge.origin.requests["/replace64"][0].body == b"\x00binary"


async def test_include_body_origin_request_limit_is_1mb(edge: EdgeStack) -> None:
    await edge.function("body", BODY)
    edge.origin.script("/echo", body=b"ok")
    edge.origin.script("/replace", body=b"ok")
    await edge.start(associations=[assoc(OR, "body", include_body=True)], default=behavior_config(methods=POST))
    big = b"abcde" * 10_000
    s, _, _ = await edge.request("POST", "/echo", data=big)
    seen = edge.origin.requests["/echo"][0]
    assert s == 200 and seen.header("X-Body-Info") == "False:50000:base64:read-only:abcde"
    assert seen.body == big
    # 1,100,000 bytes > 1 MB exposed to origin events; replaced (the scripted origin accepts <= 1 MB)
    huge = b"0123456789" * 110_000
    s, _, _ = await edge.request("POST", "/replace", data=huge)
    seen = edge.origin.requests["/replace"][0]
    assert s == 200 and seen.header("X-Body-Info") == "True:1048576:base64:read-only:01234"
    assert seen.body == b"replaced 1048576"


NO_BODY = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-has-body"] = [{"key": "X-Has-Body", "value": str("body" in request)}]
    return request
"""


async def test_body_not_exposed_without_include_body(edge: EdgeStack) -> None:
    await edge.function("nb", NO_BODY)
    edge.origin.script("/echo", body=b"ok")
    await edge.start(associations=[assoc(VR, "nb")], default=behavior_config(methods=POST))
    await edge.request("POST", "/echo", data=b"payload")
    seen = edge.origin.requests["/echo"][0]
    assert seen.header("X-Has-Body") == "False" and seen.body == b"payload"


BODY_TOO_BIG = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["body"] = {"action": "replace", "encoding": "text", "data": "x" * 50_000}
    return request
"""


async def test_replaced_body_over_viewer_limit_is_502(edge: EdgeStack) -> None:
    await edge.function("big", BODY_TOO_BIG)
    edge.origin.script("/echo", body=b"ok")
    await edge.start(associations=[assoc(VR, "big", include_body=True)], default=behavior_config(methods=POST))
    s, h, _ = await edge.request("POST", "/echo", data=b"x")
    assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront")
    assert edge.origin.hits.total() == 0

