"""The optional SigV4 check of the control port's AWS APIs (``[[api.auth]]`` in the settings; off by default).

When access keys are configured, every request to the Lambda API (``/2015-03-31/...`` and the other dated
paths), the CloudFront API (``/2020-05-31/...``, ``/key-value-stores/...``) and the JSON-protocol services of
``POST /`` (CloudWatch Logs, SQS, EventBridge) must be signed by one of them (:mod:`.sigv4`); AWS's errors
otherwise, in each protocol's own shape:

==========================  =====================================  =========================  ====================
verdict                     Lambda / KVS (rest-json), JSON 1.x     SQS (query-compatible)     CloudFront (rest-xml)
==========================  =====================================  =========================  ====================
no Authorization            MissingAuthenticationTokenException    MissingAuthenticationToken MissingAuthenticationToken
unusable Authorization      IncompleteSignatureException           IncompleteSignature        IncompleteSignature
unknown access key id       UnrecognizedClientException            InvalidClientTokenId       InvalidClientTokenId
bad signature, clock skew   InvalidSignatureException              SignatureDoesNotMatch      SignatureDoesNotMatch
==========================  =====================================  =========================  ====================

Status 403 (400 for an unusable header, and for every JSON 1.x service but SQS, as CloudWatch Logs answers).
Messages are AWS's ("The security token included in the request is invalid.", "The request signature we
calculated does not match the signature you provided. ...", "Signature expired: ... (... - 5 min.)").
References: https://docs.aws.amazon.com/lambda/latest/api/CommonErrors.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html.

Not checked: function URLs (answered by Host before this runs; ``AuthType: AWS_IAM`` is not emulated), and
edgelab's own endpoints: the admin API and dashboard (``/edgelab...``), ``/metrics`` and the code download
links (``/_edgelab/code/``, which GetFunction hands out as AWS hands out presigned URLs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from edge.control.lambda_api.http import REQUEST_ID
from edge.control.lambda_api.sigv4 import AuthFailure, verify

__all__ = ["EXEMPT_PREFIXES", "sigv4_middleware"]

EXEMPT_PREFIXES = ("/edgelab/", "/_edgelab/")
EXEMPT_PATHS = frozenset({"/edgelab", "/metrics"})
_CLOUDFRONT_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"

# verdict -> (rest-json / JSON code, query / XML code)
_CODES: Mapping[str, tuple[str, str]] = {
    "missing": ("MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    "incomplete": ("IncompleteSignatureException", "IncompleteSignature"),
    "unknown_key": ("UnrecognizedClientException", "InvalidClientTokenId"),
    "expired": ("InvalidSignatureException", "SignatureDoesNotMatch"),
    "signature": ("InvalidSignatureException", "SignatureDoesNotMatch"),
}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refusal(request: web.Request, failure: AuthFailure, request_id: str) -> web.Response:
    """AWS's error for ``failure`` in the protocol of the API ``request`` is addressed to (module docstring)."""
    json_code, query_code = _CODES[failure.kind]
    status = 400 if failure.kind == "incomplete" else 403
    if request.path.startswith("/2020-05-31/"):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{_CLOUDFRONT_NS}"><Error>'
                f"<Type>Sender</Type><Code>{query_code}</Code><Message>{_xml_escape(failure.message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return web.Response(status=status, text=body, content_type="text/xml",
                            headers={"x-amz-request-id": request_id})
    target = request.headers.get("X-Amz-Target")
    if request.path == "/" and target:
        headers = {"x-amzn-ErrorType": json_code}
        if target.startswith("AmazonSQS."):
            headers["x-amzn-query-error"] = f"{query_code};Sender"
        else:
            status = 400
        return web.Response(status=status, body=orjson.dumps({"__type": json_code, "message": failure.message}),
                            content_type="application/x-amz-json-1.1", headers=headers)
    return web.Response(status=status, body=orjson.dumps({"message": failure.message}),
                        content_type="application/json", headers={"x-amzn-ErrorType": json_code})


def sigv4_middleware(keys: Mapping[str, str], *, clock: Callable[[], dt.datetime] | None = None,
                     ) -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    """A middleware refusing requests to the AWS APIs that no key of ``keys`` (access key id -> secret) signed.
    Install it inside ``aws_errors`` (which gives every answer its ``x-amzn-RequestId``)."""
    table = dict(keys)
    now = clock or (lambda: dt.datetime.now(dt.UTC))

    @web.middleware
    async def sigv4(request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES):
            return await handler(request)
        body = await request.read() if request.body_exists else b""
        values: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            values.setdefault(name.lower(), []).append(value)
        failure = verify(request.method, request.raw_path, request.headers, values, body, table, now())
        if failure is not None:
            return refusal(request, failure, str(request.get(REQUEST_ID) or ""))
        return await handler(request)

    return sigv4
