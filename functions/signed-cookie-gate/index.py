"""Only let viewers with a valid signed session cookie through (attach to viewer-request).

The cookie is ``edge-session=<expires>.<signature>`` where ``expires`` is a Unix time and
``signature`` the hex HMAC-SHA256 of ``expires`` under SECRET (the login page on the origin issues it
with :func:`sign`). Viewers without a valid, unexpired cookie are redirected to the login page.
"""

import hashlib
import hmac
import time
from urllib.parse import quote

SECRET = b"change-me: shared with the login service"
COOKIE = "edge-session"
LOGIN_PATH = "/login"
PUBLIC_PREFIXES = ("/login", "/public/", "/favicon.ico")


def sign(expires):
    """The cookie value that is valid until ``expires`` (Unix seconds)."""
    mac = hmac.new(SECRET, str(int(expires)).encode(), hashlib.sha256).hexdigest()
    return f"{int(expires)}.{mac}"


def _cookies(headers):
    # Each Cookie header line may hold several "name=value" pairs; there may be several lines.
    for line in headers.get("cookie", []):
        for part in line["value"].split(";"):
            name, _, value = part.strip().partition("=")
            yield name, value


def _valid(value, now):
    expires = value.partition(".")[0]
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(sign(int(expires)), value)


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]
    if uri.startswith(PUBLIC_PREFIXES):
        return request
    now = time.time()
    if any(name == COOKIE and _valid(value, now) for name, value in _cookies(request["headers"])):
        return request

    target = uri + ("?" + request["querystring"] if request["querystring"] else "")
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": {
            "location": [{"key": "Location", "value": f"{LOGIN_PATH}?next={quote(target, safe='')}"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
    }
