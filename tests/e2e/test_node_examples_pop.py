"""Lambda@Edge with Node.js through a real POP and real ``node`` processes (issue 12 item 3): the Node.js twins of
the most used examples in functions/ (each README's promise), all four triggers with callback and async handlers,
the same validation, skip rules, errors and Server-Timing labels as Python, an init error in the POP's logs, and
the association check of the runtimes CloudFront accepts. runtimes.md §6 rows 33-36."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest

from edge.cdn.lambda_edge.fields import PAGE_NOT_OBJECT
from tests.e2e.conftest import (
    OR,
    ORS,
    VR,
    VRS,
    EdgeStack,
    assoc,
    behavior_config,
    fn_events,
    fn_timings,
    with_associations,
)

pytestmark = pytest.mark.timeout(120)

GENERATED = "LambdaGeneratedResponse from cloudfront"
HIT = "Hit from cloudfront"
EXEC_ERROR = "LambdaExecutionError from cloudfront"
SECURITY = {"Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "strict-origin-when-cross-origin"}


async def _example(edge: EdgeStack, name: str, runtime: str, *events: str, **start_kw: object) -> None:
    await edge.function(name, example=name, runtime=runtime)
    await edge.start(associations=[assoc(e, name) for e in events], **start_kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("event", "runtime"), [(ORS, "nodejs18.x"), (VRS, "nodejs22.x")])
async def test_security_headers_node(edge: EdgeStack, event: str, runtime: str) -> None:
    edge.origin.script("/", body=b"home", headers={"Cache-Control": "max-age=60", "X-Frame-Options": "SAMEORIGIN"})
    edge.origin.script("/missing", status=404, body=b"no", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "security-headers-node", runtime, event)
    for expected_fns in ([event], [] if event == ORS else [VRS]):  # miss, then hit
        s, h, _ = await edge.get("/")
        assert s == 200 and fn_events(h) == expected_fns
        for k, v in SECURITY.items():
            assert h.getall(k) == [v]
        assert "default-src 'self'" in h["Content-Security-Policy"] and "camera=()" in h["Permissions-Policy"]
    s, h, _ = await edge.get("/missing")
    # origin-response runs for every status; viewer-response is skipped for origin errors (same skip rule)
    assert s == 404 and (h.get("X-Frame-Options") == "DENY") == (event == ORS)


async def test_pretty_urls_node(edge: EdgeStack) -> None:
    edge.origin.script("/blog/hello/index.html", body=b"hello post", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/docs/index.html", body=b"docs")
    edge.origin.script("/app.js", body=b"js")
    await _example(edge, "pretty-urls-node", "nodejs24.x", OR, relax=True)  # async: runs on 24 too (relaxed)
    s, h, b = await edge.get("/blog/hello")
    assert (s, b) == (200, b"hello post")
    timing = fn_timings(h)[0]
    assert (timing["event"], timing["name"], timing["version"], timing["state"]) == (OR, "pretty-urls-node", "1",
                                                                                     "cold")
    assert float(timing["init"]) > 0
    s, h, b = await edge.get("/blog/hello")  # the cache key is the pretty URL
    assert (s, b, h["X-Cache"], fn_events(h)) == (200, b"hello post", HIT, [])
    assert (await edge.get("/docs/"))[2] == b"docs"
    s, h, b = await edge.get("/app.js")
    assert b == b"js" and fn_timings(h)[0]["state"] == "warm"
    assert edge.origin.hits == {"/blog/hello/index.html": 1, "/docs/index.html": 1, "/app.js": 1}


async def test_redirect_legacy_node(edge: EdgeStack) -> None:
    edge.origin.script("/about/", body=b"about")
    await _example(edge, "redirect-legacy-node", "nodejs20.x", VR)
    s, h, _ = await edge.get("/docs/v1/install?lang=en")
    assert (s, h["Location"], h["X-Cache"]) == (301, "/docs/latest/install?lang=en", GENERATED)
    assert fn_events(h) == [VR] and h["Cache-Control"] == "max-age=86400"
    s, h, _ = await edge.get("/docs/v1/install?lang=en")  # not cached: the function runs again
    assert (s, h["X-Cache"], fn_events(h)) == (301, GENERATED, [VR])
    s, h, _ = await edge.get("/about-us.html")
    assert (s, h["Location"]) == (301, "/about/")
    s, _, b = await edge.get("/about/")
    assert (s, b) == (200, b"about")
    assert edge.origin.hits.total() == 1


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth_node(edge: EdgeStack) -> None:
    edge.origin.script("/", body=b"secret home", headers={"Cache-Control": "public, max-age=60"})
    await _example(edge, "basic-auth-node", "nodejs20.x", VR)
    s, h, b = await edge.get("/")
    assert (s, b, h["WWW-Authenticate"]) == (401, b"Unauthorized\n", 'Basic realm="edgelab", charset="UTF-8"')
    assert h["X-Cache"] == GENERATED  # a numeric status in the generated response, accepted as CloudFront does
    auth = _basic("edge", "lab")
    s, h, b = await edge.get("/", headers=auth)
    assert (s, b) == (200, b"secret home")
    s, _, _ = await edge.get("/", headers=_basic("edge", "wrong"))
    assert s == 401
    s, _, _ = await edge.get("/")  # cached content stays protected
    assert s == 401
    s, h, _ = await edge.get("/", headers=auth)
    assert (s, h["X-Cache"]) == (200, HIT)


# Node idioms at the edge (rows 33-36): callback(null, request) changing the uri, generated responses with a
# numeric and a string status, an async handler forgetting to return, callback(err) and throw, querystring,
# crypto and a base64 Buffer body.
CALLBACK = """'use strict';
exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (request.uri === '/fail') { callback(new Error('refused by the function')); return; }
  if (request.uri.startsWith('/old/')) request.uri = '/new/' + request.uri.slice(5);
  request.headers['x-from-node'] = [{ key: 'X-From-Node', value: process.version }];
  callback(null, request);
};
"""
ASYNC = """'use strict';
const querystring = require('querystring');
const crypto = require('crypto');
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.uri === '/forbidden') return { status: 403, statusDescription: 'Forbidden', body: 'no' };
  if (request.uri === '/moved') return { status: '302', headers: { location: [{ key: 'Location', value: '/new/x' }] } };
  if (request.uri === '/forgot') { request.uri = '/x'; return; }
  if (request.uri === '/throw') throw new TypeError('thrown at the edge');
  if (request.uri === '/sign') {
    const params = querystring.parse(request.querystring);
    const digest = crypto.createHash('sha256').update(params.v || '').digest('hex');
    return { status: '200', headers: { 'content-type': [{ key: 'Content-Type', value: 'application/octet-stream' }] },
             body: Buffer.from(digest, 'hex').toString('base64'), bodyEncoding: 'base64' };
  }
  return request;
};
"""


async def test_node_idioms_errors_and_labels_at_the_edge(edge: EdgeStack) -> None:
    await edge.function("cb", CALLBACK, runtime="nodejs20.x")
    await edge.function("asy", ASYNC, runtime="nodejs22.x")
    edge.origin.script("/new/page", body=b"new page")
    edge.origin.script("/plain", body=b"plain")
    # '/old/*' and '/fail' run the callback handler, everything else (the default behavior) the async one
    await edge.start(associations=[assoc(VR, "asy")],
                     behaviors=[with_associations(behavior_config(p), [assoc(VR, "cb")]) for p in ("/old/*", "/fail")])
    s, h, b = await edge.get("/old/page")
    assert (s, b) == (200, b"new page")
    assert edge.origin.requests["/new/page"][0].header("X-From-Node").startswith("v20.")
    [timing] = fn_timings(h)
    assert (timing["name"], timing["state"]) == ("cb", "cold") and float(timing["init"]) > 0
    s, h, b = await edge.get("/fail")
    assert (s, h["X-Cache"]) == (503, EXEC_ERROR) and fn_timings(h)[0]["state"] == "warm"
    s, h, b = await edge.get("/forbidden")
    assert (s, b, h["X-Cache"]) == (403, b"no", GENERATED)
    s, h, _ = await edge.get("/moved")
    assert (s, h["Location"]) == (302, "/new/x")
    s, h, b = await edge.get("/forgot")  # an async handler that returns nothing: CloudFront's 502
    assert (s, h["X-Cache"]) == (502, "LambdaValidationError from cloudfront") and PAGE_NOT_OBJECT.encode() in b
    s, h, _ = await edge.get("/throw")
    assert (s, h["X-Cache"]) == (503, EXEC_ERROR)
    s, h, b = await edge.get("/sign?v=edge")
    assert s == 200 and b == hashlib.sha256(b"edge").digest()
    assert (await edge.get("/plain"))[2] == b"plain"
    text = "\n".join(await edge.logs("/aws/lambda/us-east-1.asy"))
    assert "Invoke Error" in text and '"errorType":"TypeError"' in text and "thrown at the edge" in text
    validation = await edge.validation_lines()
    assert any("(function: asy:1, event: viewer-request)" in line for line in validation)


async def test_node_init_error_reaches_the_pops_logs(edge: EdgeStack, caplog: pytest.LogCaptureFixture) -> None:
    await edge.function("broken", "const missing = require('./not-there');\nexports.handler = async (e) => e;\n",
                        runtime="nodejs20.x")
    await edge.start(associations=[assoc(VR, "broken")])
    with caplog.at_level(logging.INFO, logger="edgelab.pop"):
        s, h, _ = await edge.get("/")
    assert (s, h["X-Cache"]) == (503, EXEC_ERROR)
    assert "broken:1 Runtime.ImportModuleError: Error: Cannot find module './not-there'" in caplog.text
    lines = await edge.logs("/aws/lambda/us-east-1.broken")
    assert any(line.startswith("INIT_START Runtime Version: nodejs:20.") for line in lines)
    assert any("INIT_REPORT Init Duration:" in line and "Runtime.ImportModuleError" in line for line in lines)
    assert any("\tundefined\tERROR\tUncaught Exception \t" in line for line in lines)


async def test_nodejs24_is_refused_at_association_time(edge: EdgeStack,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    await edge.function("new", "exports.handler = async (e) => e.Records[0].cf.request;", runtime="nodejs24.x")
    edge.origin.script("/a", body=b"a")
    await edge.start(associations=[assoc(VR, "new")])
    with caplog.at_level(logging.ERROR, logger="edgelab.cdn.hooks"):
        s, h, _ = await edge.get("/a")
    assert (s, h["X-Cache"], fn_timings(h)) == (503, EXEC_ERROR, [])  # never invoked
    assert "The function runtime nodejs24.x is not supported for functions that are triggered" in caplog.text
    assert edge.origin.hits.total() == 0


async def test_es_module_handler_at_the_edge(edge: EdgeStack) -> None:
    """The file the Lambda console creates for Node.js 18+ (``index.mjs``, ``export const handler``), with an ES
    import and top-level code, as a viewer-request function (CloudFront's example page notes the console's
    ``index.mjs``: https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html)."""
    code = edge.write_code("esm", (
        "import querystring from 'node:querystring';\n"
        "const started = await Promise.resolve(Date.now());\n"
        "export const handler = async (event) => {\n"
        "  const request = event.Records[0].cf.request;\n"
        "  const params = querystring.parse(request.querystring);\n"
        "  request.headers['x-esm'] = [{ key: 'X-Esm', value: `${params.v ?? 'none'}:${started > 0}` }];\n"
        "  return request;\n"
        "};\n"), ext=".mjs")
    await edge.service.create_function({"FunctionName": "esm", "Runtime": "nodejs22.x", "Handler": "index.handler",
                                        "Timeout": 3, "MemorySize": 128, "Publish": True}, code_dir=code)
    edge.origin.script("/p", body=b"p")
    await edge.start(associations=[assoc(VR, "esm")])
    s, h, b = await edge.get("/p?v=7")
    assert (s, b, fn_events(h)) == (200, b"p", [VR])
    assert edge.origin.requests["/p"][0].header("X-Esm") == "7:true"
