"""Function URL request and response payloads, format 2.0 (pure).

https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads — the request event
(``version`` 2.0, ``routeKey``/``stage`` ``$default``, ``rawPath``, ``rawQueryString``, ``cookies`` taken out of
the Cookie header, lower-case ``headers`` with repeated values joined by commas, ``queryStringParameters`` joined
the same way, ``requestContext`` with the url id as ``apiId`` and ``domainPrefix``, ``http`` method / path /
protocol / sourceIp / userAgent, ``time`` and ``timeEpoch``; ``body`` as text, base64 when it is not text) and
the response: a JSON object with ``statusCode`` is ``{statusCode, headers, cookies, body, isBase64Encoded}``;
anything else is the body of a 200 ``application/json`` answer.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_plus

import orjson

__all__ = ["UrlResponse", "request_event", "response_of"]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "+json", "+xml")

UrlResponse = tuple[int, list[tuple[str, str]], bytes]


def _is_text(content_type: str, body: bytes) -> bool:
    ctype = content_type.lower()
    if not any(t in ctype for t in _TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def request_event(*, method: str, raw_path: str, raw_query: str, headers: Iterable[tuple[str, str]], body: bytes,
                  source_ip: str, protocol: str, url_id: str, region: str, request_id: str,
                  now: float | None = None) -> dict[str, Any]:
    """The format 2.0 event of one request to ``https://<url_id>.lambda-url.<region>.on.aws``."""
    now = time.time() if now is None else now
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    domain = f"{url_id}.lambda-url.{region}.on.aws"
    joined["host"] = domain
    query: dict[str, str] = {}
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        k, v = unquote_plus(key), unquote_plus(value)
        query[k] = f"{query[k]},{v}" if k in query else v
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",  # AuthType NONE (AWS_IAM would name the signer's account)
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {"method": method, "path": raw_path, "protocol": protocol, "sourceIp": source_ip,
                     "userAgent": joined.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        if _is_text(joined.get("content-type", ""), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def response_of(payload: bytes) -> UrlResponse:
    """(status, headers, body) of a function's result; ValueError when a ``statusCode`` response is malformed."""
    try:
        result = orjson.loads(payload) if payload.strip() else None
    except orjson.JSONDecodeError:
        return 200, [("Content-Type", "application/json")], payload
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("Content-Type", "application/json")], payload
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an HTTP status code, got {status!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise ValueError("headers must be an object of header names to values")
    headers += [(str(k), str(v)) for k, v in raw_headers.items()]
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        data = orjson.dumps(body)
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("body is not valid base64 although isBase64Encoded is true") from None
    else:
        data = body.encode("utf-8")
    return status, headers, data
