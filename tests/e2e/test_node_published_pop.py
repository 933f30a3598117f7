"""Published Node.js Lambda@Edge functions run unmodified (issue 12, "Done when"): seven of the Node.js examples of
AWS's "Lambda@Edge example functions" page, kept byte for byte in ``tests/e2e/published_node/`` (MIT-0, see its
README), each deployed as ``index.js`` on a Node.js major CloudFront accepts and driven through a real POP with
real ``node`` processes. What each one promises on that page is what the viewer and the origin see here:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html"""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import OR, ORS, VR, EdgeStack, assoc, fn_events

pytestmark = pytest.mark.timeout(120)

PUBLISHED = Path(__file__).resolve().parent / "published_node"
GENERATED = "LambdaGeneratedResponse from cloudfront"
HIT = "Hit from cloudfront"


async def _deploy(edge: EdgeStack, name: str, runtime: str, event: str) -> None:
    source = (PUBLISHED / f"{name}.js").read_text()
    await edge.function(name, source, runtime=runtime)  # written as index.js, handler index.handler
    await edge.start(associations=[assoc(event, name)])


def _is_verbatim(name: str) -> None:
    """The fixture still holds the published handler (a guard against someone 'fixing' it for edgelab)."""
    text = (PUBLISHED / f"{name}.js").read_text()
    assert text.startswith("'use strict';\n") and "exports.handler = (event, context, callback) =>" in text


async def test_ab_testing(edge: EdgeStack) -> None:
    """Viewer-request, callback style: the cookie picks the object, no cookie throws dice, other paths pass."""
    _is_verbatim("ab-testing")
    for path in ("/experiment-group/control-pixel.jpg", "/experiment-group/treatment-pixel.jpg", "/logo.png"):
        edge.origin.script(path, body=path.encode(), headers={"Cache-Control": "max-age=60"})
    await _deploy(edge, "ab-testing", "nodejs20.x", VR)
    s, h, b = await edge.get("/experiment-pixel.jpg", headers={"Cookie": "theme=dark; X-Experiment-Name=B"})
    assert (s, b, fn_events(h)) == (200, b"/experiment-group/treatment-pixel.jpg", [VR])
    s, _, b = await edge.get("/experiment-pixel.jpg", headers={"Cookie": "X-Experiment-Name=A"})
    assert (s, b) == (200, b"/experiment-group/control-pixel.jpg")
    s, _, b = await edge.get("/experiment-pixel.jpg")
    assert s == 200 and b in (b"/experiment-group/control-pixel.jpg", b"/experiment-group/treatment-pixel.jpg")
    assert (await edge.get("/logo.png"))[2] == b"/logo.png"
    assert "/experiment-pixel.jpg" not in edge.origin.hits
    lines = await edge.logs("/aws/lambda/us-east-1.ab-testing")
    assert any(line.endswith("\tINFO\tExperiment B cookie found") for line in lines), lines
    assert any("\tINFO\tExperiment cookie has not been found. Throwing dice..." in line for line in lines)
    assert any('\tINFO\tRequest uri set to "/experiment-group/treatment-pixel.jpg"' in line for line in lines)


async def test_override_response_header(edge: EdgeStack) -> None:
    """Origin-response: Last-Modified takes the value of X-Amz-Meta-Last-Modified, and is cached with it."""
    _is_verbatim("override-response-header")
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    edge.origin.script("/doc", body=b"doc", headers={"Cache-Control": "max-age=60", "X-Amz-Meta-Last-Modified": stamp})
    edge.origin.script("/plain", body=b"plain", headers={"Cache-Control": "max-age=60"})
    await _deploy(edge, "override-response-header", "nodejs18.x", ORS)
    s, h, b = await edge.get("/doc")
    assert (s, b, h["Last-Modified"], fn_events(h)) == (200, b"doc", stamp, [ORS])
    s, h, _ = await edge.get("/doc")
    assert (s, h["X-Cache"], h["Last-Modified"]) == (200, HIT, stamp)
    s, h, _ = await edge.get("/plain")
    assert s == 200 and "Last-Modified" not in h
    lines = await edge.logs("/aws/lambda/us-east-1.override-response-header")
    assert any(f'\tINFO\tResponse header "Last-Modified" was set to "{stamp}"' in line for line in lines)


async def test_static_content_gzip(edge: EdgeStack) -> None:
    """Viewer-request generated response: a gzip body built with zlib, sent base64 (bodyEncoding)."""
    _is_verbatim("static-content-gzip")
    await _deploy(edge, "static-content-gzip", "nodejs22.x", VR)
    s, h, b = await edge.get("/", headers={"Accept-Encoding": "gzip"})
    assert (s, h["X-Cache"], h["Content-Encoding"]) == (200, GENERATED, "gzip")
    assert h["Content-Type"] == "text/html; charset=utf-8"
    assert b"<p>Hello from Lambda@Edge!</p>" in gzip.decompress(b)
    assert edge.origin.hits.total() == 0


async def test_redirect_to_signin(edge: EdgeStack) -> None:
    """Viewer-request: no session cookie -> 302 to the sign-in page naming the original URL. With the cookie the
    handler calls back twice (the request, then the redirect): the first call wins, as in AWS's runtime."""
    _is_verbatim("redirect-to-signin")
    edge.origin.script("/account", body=b"account page")
    await _deploy(edge, "redirect-to-signin", "nodejs20.x", VR)
    s, h, _ = await edge.get("/account?tab=orders")
    host = f"127.0.0.1:{edge.pop.port}" if edge.pop is not None else ""
    wanted = quote(f"https://{host}/account?tab=orders", safe="!'()*-._~")  # encodeURIComponent
    assert (s, h["X-Cache"]) == (302, GENERATED)
    assert h["Location"] == f"http://www.example.com/signin?redirect_url={wanted}"
    assert edge.origin.hits.total() == 0
    s, h, b = await edge.get("/account?tab=orders", headers={"Cookie": "session-id=abc123; lang=en"})
    assert (s, b) == (200, b"account page")
    assert edge.origin.hits["/account"] == 1


async def test_normalize_query_string(edge: EdgeStack) -> None:
    """Viewer-request: parameters lower-cased and sorted before the cache lookup, so both spellings share one
    cached object (the example's purpose: a better cache hit ratio)."""
    _is_verbatim("normalize-query-string")
    edge.origin.script("/search", body=b"results", headers={"Cache-Control": "max-age=60"})
    await _deploy(edge, "normalize-query-string", "nodejs22.x", VR)
    s, h, b = await edge.get("/search?Size=LARGE&color=Red")
    assert (s, b) == (200, b"results") and h["X-Cache"] != HIT
    assert edge.origin.requests["/search"][0].query == "color=red&size=large"
    s, h, _ = await edge.get("/search?color=red&size=large")
    assert (s, h["X-Cache"]) == (200, HIT)
    assert edge.origin.hits["/search"] == 1
    lines = await edge.logs("/aws/lambda/us-east-1.normalize-query-string")
    assert any("\tINFO\tQuery String:  Size=LARGE&color=Red" in line for line in lines), lines


async def test_query_string_to_header(edge: EdgeStack) -> None:
    """Origin-request: the ``auth`` parameter moves into an ``Auth-Header`` request header."""
    _is_verbatim("query-string-to-header")
    edge.origin.script("/api", body=b"ok")
    await _deploy(edge, "query-string-to-header", "nodejs18.x", OR)
    s, h, b = await edge.get("/api?auth=s3cret&page=2")
    assert (s, b, fn_events(h)) == (200, b"ok", [OR])
    [seen] = edge.origin.requests["/api"]
    assert seen.header("Auth-Header") == "s3cret" and seen.query == "page=2"


async def test_error_status_to_200(edge: EdgeStack) -> None:
    """Origin-response: an origin 4xx/5xx becomes 200 with the example's body (a numeric status set on the
    string one CloudFront sends); a 200 from the origin passes unchanged."""
    _is_verbatim("error-status-to-200")
    edge.origin.script("/gone", status=404, body=b"not here", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/fine", body=b"fine")
    await _deploy(edge, "error-status-to-200", "nodejs20.x", ORS)
    s, h, b = await edge.get("/gone")
    assert (s, b, fn_events(h)) == (200, b"Body generation example", [ORS])
    s, _, b = await edge.get("/fine")
    assert (s, b) == (200, b"fine")
