"""CORS for an API behind the CDN (attach to viewer-request AND origin-response).

viewer-request answers preflight OPTIONS requests itself (no origin round trip); origin-response adds
Access-Control-Allow-Origin to real responses for allowed origins. The Origin header must be forwarded
to the origin side and be part of the cache key, since the answer differs per origin (hence Vary).
"""

ALLOWED_ORIGINS = frozenset({"https://app.example.com", "http://localhost:3000"})
ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = "Content-Type, Authorization"
MAX_AGE = "600"


def _origin(headers):
    value = headers.get("origin", [{"value": ""}])[0]["value"]
    return value if value in ALLOWED_ORIGINS else None


def _h(key, value):
    return [{"key": key, "value": value}]


def preflight(request):
    headers = request["headers"]
    if request["method"] != "OPTIONS" or "access-control-request-method" not in headers:
        return request
    origin = _origin(headers)
    if origin is None:
        return {"status": "403", "statusDescription": "Forbidden"}
    return {
        "status": "204",
        "statusDescription": "No Content",
        "headers": {
            "access-control-allow-origin": _h("Access-Control-Allow-Origin", origin),
            "access-control-allow-methods": _h("Access-Control-Allow-Methods", ALLOWED_METHODS),
            "access-control-allow-headers": _h("Access-Control-Allow-Headers", ALLOWED_HEADERS),
            "access-control-max-age": _h("Access-Control-Max-Age", MAX_AGE),
            "vary": _h("Vary", "Origin"),
        },
    }


def add_headers(request, response):
    origin = _origin(request["headers"])
    if origin is not None:
        response["headers"]["access-control-allow-origin"] = _h("Access-Control-Allow-Origin", origin)
        response["headers"].setdefault("vary", []).append({"key": "Vary", "value": "Origin"})
    return response


def handler(event, context):
    cf = event["Records"][0]["cf"]
    if cf["config"]["eventType"] == "viewer-request":
        return preflight(cf["request"])
    return add_headers(cf["request"], cf["response"])
