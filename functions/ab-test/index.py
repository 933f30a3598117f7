"""A/B test of the home page by cookie (attach to viewer-request AND viewer-response).

viewer-request: picks the variant from the ``ab-variant`` cookie (or at random for new viewers),
rewrites the home page to ``/experiments/<variant>/index.html`` and writes the choice into the request's
Cookie header so the cache key (if it includes the cookie) and the origin see it.
viewer-response: returns the choice to the browser with Set-Cookie so the viewer stays in its bucket.
"""

import random

COOKIE = "ab-variant"
VARIANTS = ("a", "b")
SHARE_B = 0.5
EXPERIMENT_URIS = ("/", "/index.html")
MAX_AGE = 30 * 24 * 3600


def _variant_from_cookies(headers):
    for line in headers.get("cookie", []):
        for part in line["value"].split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value in VARIANTS:
                return value
    return None


def viewer_request(request):
    if request["uri"] not in EXPERIMENT_URIS:
        return request
    variant = _variant_from_cookies(request["headers"])
    if variant is None:
        variant = "b" if random.random() < SHARE_B else "a"
        request["headers"].setdefault("cookie", []).append({"key": "Cookie", "value": f"{COOKIE}={variant}"})
    request["uri"] = f"/experiments/{variant}/index.html"
    return request


def viewer_response(request, response):
    variant = _variant_from_cookies(request["headers"])
    if variant is not None and request["uri"].startswith("/experiments/"):
        response["headers"].setdefault("set-cookie", []).append(
            {"key": "Set-Cookie", "value": f"{COOKIE}={variant}; Path=/; Max-Age={MAX_AGE}; SameSite=Lax"}
        )
    return response


def handler(event, context):
    cf = event["Records"][0]["cf"]
    if cf["config"]["eventType"] == "viewer-request":
        return viewer_request(cf["request"])
    return viewer_response(cf["request"], cf["response"])
