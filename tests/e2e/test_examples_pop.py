"""Every example in functions/ through a real POP with real worker processes: the behaviour each README
promises, with the code exactly as written for AWS (``index.handler``, standard library only)."""

from __future__ import annotations

import base64
import importlib.util
import json
import time

import pytest

from edge.cdn.config.settings import EdgeSwitches
from tests.cdn.scripted_origin import ScriptedOrigin, behavior_config
from tests.e2e.conftest import FUNCTIONS_DIR, OR, ORS, VR, VRS, EdgeStack, assoc, fn_events

GENERATED = "LambdaGeneratedResponse from cloudfront"
HIT, MISS = "Hit from cloudfront", "Miss from cloudfront"
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


async def _example(edge: EdgeStack, name: str, *events: str, **start_kw: object) -> None:
    await edge.function(name, example=name)
    await edge.start(associations=[assoc(e, name) for e in events], **start_kw)  # type: ignore[arg-type]


async def test_redirect_country(edge: EdgeStack) -> None:
    # The country comes from the POP's viewer location, here moved per request by the test header (switched on in
    # the settings); a CloudFront-Viewer-Country the viewer sends is never used (tests/e2e/test_geo.py)
    edge.origin.script("/shop", body=b"shop", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "redirect-country", OR, default=behavior_config(headers=("CloudFront-Viewer-Country",)),
                   settings_overrides={"edge": EdgeSwitches(viewer_location_header=True)})
    de = {"X-Edgelab-Viewer-Location": "DE"}
    s, h, _ = await edge.get("/shop?item=3", headers=de)
    assert (s, h["Location"]) == (302, "/de/shop?item=3")
    s, h, _ = await edge.get("/shop?item=3", headers={"X-Edgelab-Viewer-Location": "AT"})
    assert (s, h["Location"]) == (302, "/de/shop?item=3")
    s, h, _ = await edge.get("/shop?item=3", headers=de)  # the redirect is cached per country
    assert (s, h["X-Cache"], fn_events(h)) == (302, HIT, [])
    s, h, b = await edge.get("/shop", headers={"X-Edgelab-Viewer-Location": "US", "CloudFront-Viewer-Country": "DE"})
    assert (s, b) == (200, b"shop")
    assert edge.origin.hits["/shop"] == 1
    # the behavior forwards the header: the origin gets CloudFront's value (the POP's location), never the viewer's
    assert edge.origin.requests["/shop"][0].header("CloudFront-Viewer-Country") == "US"


IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


async def test_redirect_device(edge: EdgeStack) -> None:
    # The POP derives CloudFront-Is-Mobile-Viewer from the User-Agent because the policy includes it, and
    # overwrites a value the viewer sent (contract §3.2, §5.5).
    edge.origin.script("/products/42", body=b"desktop page", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "redirect-device", OR,
                   default=behavior_config(headers=("CloudFront-Is-Mobile-Viewer",)))
    s, h, _ = await edge.get("/products/42?x=1", headers={"User-Agent": IPHONE})
    assert (s, h["Location"]) == (302, "/m/products/42?x=1")
    s, h, b = await edge.get("/products/42", headers={"User-Agent": DESKTOP, "CloudFront-Is-Mobile-Viewer": "true"})
    assert (s, b) == (200, b"desktop page")
    assert edge.origin.requests["/products/42"][0].header("CloudFront-Is-Mobile-Viewer") == "false"
    # a 302 without Cache-Control is cached for the behavior's DefaultTTL, like any other 3xx but 307/308 (issue 14
    # item 1): the function generated it once per cache key (the query string is part of this behavior's key)
    s, h, _ = await edge.get("/products/42", headers={"User-Agent": IPHONE})
    assert (s, h["X-Cache"], fn_events(h)) == (302, GENERATED, [OR])
    s, h, _ = await edge.get("/products/42", headers={"User-Agent": IPHONE})
    assert (s, h["Location"], h["X-Cache"], fn_events(h)) == (302, "/m/products/42", HIT, [])
    s, h, _ = await edge.get("/products/42?x=1", headers={"User-Agent": IPHONE})
    assert (s, h["X-Cache"], fn_events(h)) == (302, HIT, [])
    s, h, _ = await edge.get("/products/42", headers={"User-Agent": DESKTOP})  # desktop entry is cached
    assert (s, h["X-Cache"]) == (200, HIT)


async def test_redirect_legacy(edge: EdgeStack) -> None:
    edge.origin.script("/about/", body=b"about")
    await _example(edge, "redirect-legacy", VR)
    s, h, _ = await edge.get("/docs/v1/install?lang=en")
    assert (s, h["Location"], h["X-Cache"]) == (301, "/docs/latest/install?lang=en", GENERATED)
    assert fn_events(h) == [VR]
    s, h, _ = await edge.get("/docs/v1/install?lang=en")  # not cached: the function runs again
    assert (s, h["X-Cache"], fn_events(h)) == (301, GENERATED, [VR])
    s, h, _ = await edge.get("/about-us.html")
    assert (s, h["Location"]) == (301, "/about/")
    s, _, b = await edge.get("/about/")
    assert (s, b) == (200, b"about")
    assert edge.origin.hits.total() == 1


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth(edge: EdgeStack) -> None:
    # "public": the POP applies RFC 9111 §3.5 to the viewer's Authorization (even though it is not forwarded)
    edge.origin.script("/", body=b"secret home", headers={"Cache-Control": "public, max-age=60"})
    await _example(edge, "basic-auth", VR)
    s, h, b = await edge.get("/")
    assert (s, b, h["WWW-Authenticate"]) == (401, b"Unauthorized\n", 'Basic realm="edgelab", charset="UTF-8"')
    assert h["X-Cache"] == GENERATED
    auth = _basic("edge", "lab")
    s, h, b = await edge.get("/", headers=auth)
    assert (s, b) == (200, b"secret home")
    assert edge.origin.requests["/"][0].header("Authorization") is None  # not forwarded by the policy
    s, _, _ = await edge.get("/", headers=_basic("edge", "wrong"))
    assert s == 401
    s, _, _ = await edge.get("/")  # cached content stays protected
    assert s == 401
    s, h, _ = await edge.get("/", headers=auth)
    assert (s, h["X-Cache"]) == (200, HIT)


def _load_gate():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gate", FUNCTIONS_DIR / "signed-cookie-gate" / "index.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_signed_cookie_gate(edge: EdgeStack) -> None:
    edge.origin.script("/account", body=b"account")
    edge.origin.script("/public/logo.png", body=b"png")
    await _example(edge, "signed-cookie-gate", VR)
    s, h, _ = await edge.get("/account?tab=2")
    assert (s, h["Location"], h["Cache-Control"]) == (302, "/login?next=%2Faccount%3Ftab%3D2", "no-store")
    gate = _load_gate()
    good = gate.sign(time.time() + 3600)
    s, _, b = await edge.get("/account", headers={"Cookie": f"other=1; edge-session={good}"})
    assert (s, b) == (200, b"account")
    expired = gate.sign(time.time() - 10)
    forged = good.rsplit(".", 1)[0] + "." + "0" * 64
    for bad in (expired, forged):
        s, h, _ = await edge.get("/account", headers={"Cookie": f"edge-session={bad}"})
        assert (s, h["Location"]) == (302, "/login?next=%2Faccount")
    s, _, b = await edge.get("/public/logo.png")
    assert (s, b) == (200, b"png")


SECURITY = {"Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "strict-origin-when-cross-origin"}


@pytest.mark.parametrize("event", [ORS, VRS])
async def test_security_headers(edge: EdgeStack, event: str) -> None:
    edge.origin.script("/", body=b"home", headers={"Cache-Control": "max-age=60", "X-Frame-Options": "SAMEORIGIN"})
    edge.origin.script("/missing", status=404, body=b"no", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "security-headers", event)
    for expected_fns in ([event], [] if event == ORS else [VRS]):  # miss, then hit
        s, h, _ = await edge.get("/")
        assert s == 200 and fn_events(h) == expected_fns
        for k, v in SECURITY.items():
            assert h.getall(k) == [v]
        assert "default-src 'self'" in h["Content-Security-Policy"] and "camera=()" in h["Permissions-Policy"]
    s, h, _ = await edge.get("/missing")
    # origin-response runs for every status; viewer-response is skipped for origin errors
    assert s == 404 and (h.get("X-Frame-Options") == "DENY") == (event == ORS)


async def test_pretty_urls(edge: EdgeStack) -> None:
    edge.origin.script("/blog/hello/index.html", body=b"hello post", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/docs/index.html", body=b"docs")
    edge.origin.script("/app.js", body=b"js")
    await _example(edge, "pretty-urls", OR)
    s, h, b = await edge.get("/blog/hello")
    assert (s, b) == (200, b"hello post")
    s, h, b = await edge.get("/blog/hello")  # the cache key is the pretty URL
    assert (s, b, h["X-Cache"], fn_events(h)) == (200, b"hello post", HIT, [])
    assert (await edge.get("/docs/"))[2] == b"docs"
    assert (await edge.get("/app.js"))[2] == b"js"
    assert edge.origin.hits == {"/blog/hello/index.html": 1, "/docs/index.html": 1, "/app.js": 1}


async def test_ab_test(edge: EdgeStack) -> None:
    edge.origin.script("/experiments/a/index.html", body=b"A", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/experiments/b/index.html", body=b"B", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "ab-test", VR, VRS)
    variants = set()
    for _ in range(12):
        s, h, b = await edge.get("/")
        assert s == 200 and b in (b"A", b"B")
        cookie = h["Set-Cookie"]
        assert cookie.startswith(f"ab-variant={b.decode().lower()}; Path=/; Max-Age=2592000")
        variants.add(b)
    assert variants == {b"A", b"B"}  # 12 fresh viewers at 50/50: both buckets (p of failing 2^-11)
    for v in ("a", "b"):  # sticky by cookie
        for _ in range(3):
            s, h, b = await edge.get("/index.html", headers={"Cookie": f"ab-variant={v}"})
            assert (s, b) == (200, v.upper().encode()) and f"ab-variant={v}" in h["Set-Cookie"]
    assert edge.origin.hits["/experiments/a/index.html"] == 1 and edge.origin.hits["/experiments/b/index.html"] == 1


async def test_normalize_querystring(edge: EdgeStack) -> None:
    edge.origin.script("/search", body=b"results", headers={"Cache-Control": "max-age=60"})
    await _example(edge, "normalize-querystring", VR)
    s, h, _ = await edge.get("/search?utm_source=mail&Q=shoes&page=2")
    assert (s, h["X-Cache"]) == (200, MISS)
    assert edge.origin.requests["/search"][0].query == "page=2&q=shoes"
    for qs in ("page=2&q=shoes", "q=shoes&PAGE=2&fbclid=x"):
        s, h, _ = await edge.get(f"/search?{qs}")
        assert (s, h["X-Cache"]) == (200, HIT)
    assert edge.origin.hits["/search"] == 1


async def test_edge_hello(edge: EdgeStack) -> None:
    edge.origin.script("/other", body=b"other")
    await _example(edge, "edge-hello", VR)
    s, h, b = await edge.get("/edge/hello")
    assert (s, h["Content-Type"], h["X-Cache"]) == (200, "application/json", GENERATED)
    assert json.loads(b) == {"message": "hello from the edge", "clientIp": "127.0.0.1",
                             "requestId": h["X-Amz-Cf-Id"], "function": "us-east-1.edge-hello"}
    s, h, b = await edge.get("/robots.txt")
    assert (s, b, h["Cache-Control"]) == (200, b"User-agent: *\nDisallow: /private/\n", "max-age=86400")
    assert (await edge.get("/other"))[2] == b"other"
    assert edge.origin.hits.total() == 1


async def test_select_origin(edge: EdgeStack) -> None:
    green = await ScriptedOrigin().start()
    blue = await ScriptedOrigin().start()
    for o, body in ((edge.origin, b"default"), (green, b"green"), (blue, b"blue")):
        o.script("/api/items", body=body, headers={"Cache-Control": "max-age=60"})
    await _example(edge, "select-origin", OR, default=behavior_config(headers=("X-Backend",)),
                   origins={"green.origin.example": green, "blue.origin.example": blue})
    assert (await edge.get("/api/items"))[2] == b"default"
    assert (await edge.get("/api/items", headers={"X-Backend": "green"}))[2] == b"green"
    assert (await edge.get("/api/items", headers={"X-Backend": "Blue"}))[2] == b"blue"
    assert (await edge.get("/api/items", headers={"X-Backend": "purple"}))[2] == b"default"
    assert green.requests["/api/items"][0].header("Host") == "green.origin.example"
    assert blue.requests["/api/items"][0].header("Host") == "blue.origin.example"
    _, h, b = await edge.get("/api/items", headers={"X-Backend": "green"})
    assert (b, h["X-Cache"]) == (b"green", HIT)  # cached per X-Backend value
    assert green.hits["/api/items"] == 1


async def test_default_cache_control(edge: EdgeStack) -> None:
    edge.origin.script("/plain", body=b"plain")
    edge.origin.script("/own", body=b"own", headers={"Cache-Control": "no-store"})
    edge.origin.script("/err", status=404, body=b"e")
    await _example(edge, "default-cache-control", ORS)
    s, h, _ = await edge.get("/plain")
    assert (s, h["Cache-Control"]) == (200, "public, max-age=300")
    s, h, _ = await edge.get("/plain")
    assert (s, h["X-Cache"]) == (200, HIT)
    s, h, _ = await edge.get("/own")
    assert h["Cache-Control"] == "no-store"
    await edge.get("/own")
    s, h, _ = await edge.get("/err")
    assert (s, h["Cache-Control"]) == (404, "public, max-age=10")
    assert edge.origin.hits == {"/plain": 1, "/own": 2, "/err": 1}


async def test_bot_filter(edge: EdgeStack) -> None:
    edge.origin.script("/", body=b"home")
    await _example(edge, "bot-filter", VR)
    for ua in ("Scrapy/2.11 (+https://scrapy.org)", "python-requests/2.31", "masscan/1.3"):
        s, h, b = await edge.get("/", headers={"User-Agent": ua})
        assert (s, b, h["X-Cache"]) == (403, b"Access denied\n", GENERATED)
    s, _, b = await edge.get("/", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"})
    assert (s, b) == (200, b"home")
    assert edge.origin.hits.total() == 1


async def test_cors(edge: EdgeStack) -> None:
    edge.origin.script("/api/items", body=b"[]", headers={"Cache-Control": "max-age=60",
                                                         "Content-Type": "application/json"})
    await edge.function("cors", example="cors")
    await edge.start(associations=[assoc(VR, "cors"), assoc(ORS, "cors")],
                     default=behavior_config(headers=("Origin",), methods=ALL_METHODS,
                                             cached=("GET", "HEAD", "OPTIONS")))
    app = "https://app.example.com"
    s, h, b = await edge.request("OPTIONS", "/api/items", headers={"Origin": app,
                                                                   "Access-Control-Request-Method": "PUT"})
    assert (s, b, h["Access-Control-Allow-Origin"], h["X-Cache"]) == (204, b"", app, GENERATED)
    assert "PUT" in h["Access-Control-Allow-Methods"] and h["Access-Control-Max-Age"] == "600"
    s, _, _ = await edge.request("OPTIONS", "/api/items", headers={"Origin": "https://evil.example",
                                                                   "Access-Control-Request-Method": "PUT"})
    assert s == 403
    s, h, b = await edge.get("/api/items", headers={"Origin": app})
    assert (s, b, h["Access-Control-Allow-Origin"]) == (200, b"[]", app)
    assert "Origin" in h["Vary"]
    s, h, _ = await edge.get("/api/items", headers={"Origin": "https://evil.example"})
    assert s == 200 and "Access-Control-Allow-Origin" not in h
    s, h, _ = await edge.get("/api/items", headers={"Origin": app})
    assert (h["X-Cache"], h["Access-Control-Allow-Origin"]) == (HIT, app)
    assert edge.origin.hits["/api/items"] == 2  # one per Origin value, preflights never reach it


async def test_custom_error_page(edge: EdgeStack) -> None:
    edge.origin.script("/missing", status=404, body=b"<nginx default page>")
    edge.origin.script("/broken", status=500, body=b"stack trace")
    edge.origin.script("/ok", body=b"fine", headers={"Content-Type": "text/plain"})
    await _example(edge, "custom-error-page", ORS)
    s, h, b = await edge.get("/missing")
    assert s == 404 and b"<h1>404</h1>" in b and b"We couldn't find that page." in b
    assert (h["Content-Type"], h["Cache-Control"]) == ("text/html; charset=utf-8", "max-age=10")
    s, h, b = await edge.get("/missing")  # the branded page is what was cached
    assert s == 404 and b"<h1>404</h1>" in b and h["X-Cache"] == "Error from cloudfront" and fn_events(h) == []
    s, _, b = await edge.get("/broken")
    assert s == 500 and b"Something went wrong on our side" in b and b"stack trace" not in b
    s, h, b = await edge.get("/ok")
    assert (s, b, h["Content-Type"]) == (200, b"fine", "text/plain")
    assert edge.origin.hits == {"/missing": 1, "/broken": 1, "/ok": 1}
