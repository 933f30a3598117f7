"""Parse and validate what a Lambda@Edge function returned (contract §2, §3, §4), pure and I/O-free.

:func:`parse_result` turns the function's JSON payload into one of three values the pipeline continues
with, or raises :class:`~edge.cdn.errors.LambdaValidationError` (502) whose ``detail`` is CloudFront's
detailed validation message (it goes to the ``/aws/cloudfront/LambdaEdge/<DistributionId>`` log stream)
and whose ``page_line`` is the specific line of the viewer's error page.

* request events (viewer-request, origin-request): a returned object with ``status`` is a
  :class:`GeneratedResponse`; anything else must be the (possibly modified) request -> :class:`RequestResult`;
* response events (origin-response, viewer-response): the (possibly modified) response ->
  :class:`ResponseResult`; a viewer-response function may not change the status.

Lenient where CloudFront's own examples are (status as int, header object keys not lowercase, missing
``key``), strict where CloudFront documents a 502. Headers the function could not see (disallowed headers,
§3.1) are carried over from the original message unchanged, since the function cannot have removed them.

Decisions where the contract leaves a question open (§8), so behaviour is predictable:

* ``clientIp`` and ``method`` are read-only: changed values are ignored, not rejected;
* a returned ``body`` in a request event is honoured only with IncludeBody (otherwise ignored);
* viewer-response may replace the body (40 KB limit, headers included), like origin-response (1 MB);
* a new body (generated or replaced) drops a stale ``Content-Length``; a replaced request body sets it;
* the origin is validated only when the function changed it, so the behavior's own origin (even a local
  IP address) always passes; ``allow_ip_origins`` relaxes the "not an IP address" rule for new origins.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

import orjson

from edge.cdn.errors import LambdaValidationError
from edge.cdn.lambda_edge.events import HeaderMap, reason_phrase
from edge.cdn.lambda_edge.fields import (
    PAGE_BODY,
    PAGE_DISALLOWED,
    PAGE_HEADER,
    PAGE_NOT_OBJECT,
    PAGE_NOT_PARSABLE,
    PAGE_ORIGIN,
    PAGE_READ_ONLY,
    PAGE_SHAPE,
    PAGE_STATUS,
    PAGE_URI,
    HeaderDict,
    check_disallowed,
    check_read_only,
    flatten,
    invalid,
    parse_headers,
    parse_origin,
    unchanged_or_added,
)
from edge.cdn.lambda_edge.rules import (
    BODY_REPLACE_BASE64_LIMIT,
    BODY_REPLACE_TEXT_LIMIT,
    GENERATED_RESPONSE_LIMIT,
    ORIGIN_REQUEST,
    REQUEST_EVENTS,
    URI_QS_LIMIT,
    VIEWER_REQUEST,
    VIEWER_REQUEST_FORBIDDEN_ADD,
    VIEWER_RESPONSE,
)
from edge.cdn.memo import remember
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers, rewritten

__all__ = [
    "PAGE_BODY",
    "PAGE_DISALLOWED",
    "PAGE_HEADER",
    "PAGE_NOT_OBJECT",
    "PAGE_NOT_PARSABLE",
    "PAGE_ORIGIN",
    "PAGE_READ_ONLY",
    "PAGE_SHAPE",
    "PAGE_STATUS",
    "PAGE_URI",
    "GeneratedResponse",
    "LambdaValidationError",
    "RequestResult",
    "ResponseResult",
    "Result",
    "parse_result",
]

_TEXT_ENCODINGS = frozenset({"text", "base64"})
_NO_BODY_STATUSES = frozenset({204, 304})
# New query strings: no control characters, spaces or '#' (contract §1.2); new uris: no controls or spaces.
_BAD_QS = re.compile(r"[\x00-\x20\x7f#]")
_BAD_URI = re.compile(r"[\x00-\x20\x7f]")


# Built once per trigger call: plain slots classes (a frozen dataclass sets each field through
# object.__setattr__: 0.39 us instead of 0.21 us); treat them as immutable values.
@dataclass(slots=True)
class RequestResult:
    """Continue with this (possibly modified) request."""

    request: EdgeRequest


@dataclass(slots=True)
class GeneratedResponse:
    """A request trigger answered by itself; ``response.body`` is bytes."""

    response: EdgeResponse


@dataclass(slots=True)
class ResponseResult:
    """The (possibly modified) response; ``body_replaced`` says whether the function set ``body``."""

    response: EdgeResponse
    body_replaced: bool


Result = RequestResult | GeneratedResponse | ResponseResult


def parse_result(
    event_type: str,
    payload: bytes,
    *,
    original_request: EdgeRequest,
    original_response: EdgeResponse | None = None,
    include_body: bool = False,
    allow_ip_origins: bool = False,
    event_headers: HeaderMap | None = None,
    event_response_headers: HeaderMap | None = None,
) -> Result:
    """Validate the function's JSON ``payload`` for ``event_type`` and convert it for the pipeline.

    ``original_request`` / ``original_response`` are the values the event was built from (the read-only
    header rules compare against them; untouched fields and hidden headers come from them).
    ``include_body`` is the association's IncludeBody: only then is a returned ``body.action=replace``
    honoured. ``allow_ip_origins`` (local extension) lets origin-request switch to an IP-address origin.
    ``event_headers`` / ``event_response_headers`` are the header maps the event carried for the original
    request / response (:func:`edge.cdn.lambda_edge.events.event_header_maps`): with them, a result that kept
    those headers and at most added some is validated without re-checking what the POP itself sent (same
    outcome, fewer steps; see :func:`~edge.cdn.lambda_edge.fields.unchanged_or_added`).
    Raises :class:`LambdaValidationError` with CloudFront's reason; never anything else for bad payloads.
    """
    key = None
    if event_type == VIEWER_REQUEST and not include_body and type(payload) is bytes and len(payload) <= _KEPT_MAX:
        key = (payload, original_request.uri, original_request.querystring, tuple(original_request.headers))
        known = _VIEWER_REQUESTS.get(key)
        if known is not None:
            return RequestResult(rewritten(original_request, known[0], known[1], list(known[2])))
    obj = _load(event_type, payload)
    request_event = event_type in REQUEST_EVENTS
    if not request_event and original_response is None:
        raise ValueError(f"{event_type} needs the original response")
    try:
        if not request_event:
            assert original_response is not None
            return _response(event_type, obj, original_response, event_response_headers)
        if "status" in obj:
            return GeneratedResponse(_generated(event_type, obj))
        request = _request(event_type, obj, original_request, include_body, allow_ip_origins, event_headers)
    except LambdaValidationError as err:
        err.event_type = event_type
        raise
    if key is not None:
        remember(_VIEWER_REQUESTS, key, (request.uri, request.querystring, tuple(request.headers)),
                 _VIEWER_REQUESTS_MAX)
    return RequestResult(request)


# A viewer-request function's request (no body: IncludeBody off), by what its validation depends on: the payload and
# the request's uri, query string and headers (the rest is the viewer's, carried over) -> the uri, query string and
# headers the request goes on with. A warm function asked about the same request answers with the same bytes (a
# browser reloading, a load test): their validation is then worked out once. Payloads up to 4 KB, 512 of them, all
# forgotten when full.
_VIEWER_REQUESTS: dict[tuple[bytes, str, str, tuple[tuple[str, str], ...]],
                       tuple[str, str, tuple[tuple[str, str], ...]]] = {}
_VIEWER_REQUESTS_MAX = 512
_KEPT_MAX = 4096


def _load(event_type: str, payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or CloudFront's "not parsable" / "must be an object" errors."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise LambdaValidationError(PAGE_NOT_PARSABLE, event_type=event_type, page_line=PAGE_NOT_PARSABLE) from None
    if type(obj) is not dict:
        raise LambdaValidationError(PAGE_NOT_OBJECT, event_type=event_type, page_line=PAGE_NOT_OBJECT)
    return obj


# --- status and body -------------------------------------------------------------------------------------


def _status(obj: dict[str, Any]) -> int:
    if "status" not in obj:
        raise invalid("the response has no status", PAGE_STATUS)
    value = obj["status"]
    # AWS's own Python examples return ints; the typed shape is a numeric string (contract §1.6).
    if isinstance(value, int) and not isinstance(value, bool):
        status = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        status = int(value)
    else:
        raise invalid(f"the status code is not a number, status : {orjson.dumps(value).decode()}", PAGE_STATUS)
    if not 200 <= status <= 599:
        raise invalid(f"the status code {status} is outside the allowed range 200-599", PAGE_STATUS)
    return status


def _description(obj: dict[str, Any], status: int) -> str:
    value = obj.get("statusDescription")
    if value is None:
        return reason_phrase(status)
    if not isinstance(value, str):
        raise invalid("the statusDescription is not a string", PAGE_SHAPE)
    return value


def _response_body(event_type: str, obj: dict[str, Any], status: int, headers: Headers) -> bytes:
    """The decoded ``body``/``bodyEncoding`` of a generated or replaced response, size-checked (§2.2)."""
    body = obj["body"]
    if not isinstance(body, str):
        raise invalid("the body is not a string", PAGE_BODY)
    encoding = obj.get("bodyEncoding", "text")
    if encoding not in _TEXT_ENCODINGS:
        raise invalid(
            f"the bodyEncoding is invalid, bodyEncoding : {orjson.dumps(encoding).decode()}, expected text or base64",
            PAGE_BODY,
        )
    raw = body.encode("utf-8")
    size = len(raw) + sum(len(k) + len(v) + 4 for k, v in headers)
    limit = GENERATED_RESPONSE_LIMIT[event_type]
    if size > limit:
        raise invalid(
            f"the length of the body size and header was {size} bytes which exceeded the CloudFront limit of "
            f"{limit} bytes",
            PAGE_BODY,
        )
    data = _b64decode(body) if encoding == "base64" else raw
    if data and status in _NO_BODY_STATUSES:
        raise invalid(f"the function returned a body with status {status}, which cannot have a body", PAGE_BODY)
    return data


def _b64decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("the body is not valid base64 although its encoding is base64", PAGE_BODY) from None


def _request_body(event_type: str, value: Any, original: bytes | None) -> bytes | None:
    """Request ``body`` with IncludeBody: ``read-only`` keeps the original, ``replace`` sends ``data`` (§1.4)."""
    if not isinstance(value, dict):
        raise invalid("the request body is not an object", PAGE_BODY)
    action = value.get("action", "read-only")
    if action == "read-only":
        return original
    if action != "replace":
        raise invalid(
            f"the body action is invalid, action : {orjson.dumps(action).decode()}, expected read-only or replace",
            PAGE_BODY,
        )
    data = value.get("data", "")
    encoding = value.get("encoding", "base64")
    if not isinstance(data, str):
        raise invalid("the body data is not a string", PAGE_BODY)
    if encoding not in _TEXT_ENCODINGS:
        raise invalid(
            f"the body encoding is invalid, encoding : {orjson.dumps(encoding).decode()}, expected text or base64",
            PAGE_BODY,
        )
    raw = data.encode("utf-8")
    limits = BODY_REPLACE_BASE64_LIMIT if encoding == "base64" else BODY_REPLACE_TEXT_LIMIT
    if len(raw) > limits[event_type]:
        raise invalid(
            f"the replaced body is {len(raw)} bytes ({encoding}), which exceeds the limit of "
            f"{limits[event_type]} bytes",
            PAGE_BODY,
        )
    return _b64decode(data) if encoding == "base64" else raw


# --- the three result kinds ------------------------------------------------------------------------------


def _generated(event_type: str, obj: dict[str, Any]) -> EdgeResponse:
    status = _status(obj)
    headers = parse_headers(obj.get("headers"), "headers")
    check_disallowed(headers)
    flat = flatten(headers, [], new_body=True)
    body = _response_body(event_type, obj, status, flat) if "body" in obj else b""
    return EdgeResponse(status=status, headers=flat, body=body, status_description=_description(obj, status))


def _request(
    event_type: str, obj: dict[str, Any], orig: EdgeRequest, include_body: bool, allow_ip_origins: bool,
    seen: HeaderMap | None = None,
) -> EdgeRequest:
    if not ("headers" in obj or "uri" in obj or "querystring" in obj or "method" in obj or "clientIp" in obj):
        raise invalid(
            "the function returned an object that is neither a request nor a response "
            f"(keys : {', '.join(sorted(obj)) or 'none'})",
            PAGE_SHAPE,
        )
    uri, qs = _uri_and_querystring(obj, orig)
    fast = None if seen is None else unchanged_or_added(event_type, obj.get("headers"), seen, orig.headers)
    headers: HeaderDict | None = None
    if fast is None:
        headers = parse_headers(obj.get("headers"), "headers")
        check_disallowed(headers)
        if event_type == VIEWER_REQUEST:
            _check_viewer_country(headers, orig.headers)
        check_read_only(event_type, headers, orig.headers)
    body = orig.body
    if include_body and "body" in obj:
        body = _request_body(event_type, obj["body"], orig.body)
    origin = orig.origin
    if event_type == ORIGIN_REQUEST and "origin" in obj:
        if headers is not None:
            names: Collection[str] = headers.keys()
        else:
            assert seen is not None and fast is not None
            names = seen.keys() | fast[1] if fast[1] else seen.keys()
        origin = parse_origin(obj["origin"], orig.origin, names, allow_ip=allow_ip_origins)
    if headers is not None:
        flat = flatten(headers, orig.headers)
    else:
        assert fast is not None  # headers is None only when the fast path answered
        flat = fast[0]
    if body is not orig.body:
        # Content-Length is read-only for the function, but CloudFront sends the replaced body's length.
        flat = [(k, str(len(body or b""))) if k.lower() == "content-length" else (k, v) for k, v in flat]
    # positional, every field (the viewer's port, scheme and HTTP version are not the function's to change): keywords
    # to a class go through a kwargs dict on Python 3.11, ~2.7k more instructions per run (callgrind)
    return EdgeRequest(orig.method, uri, qs, flat, orig.client_ip, body, origin, orig.client_port, orig.scheme,
                       orig.http_version)


def _uri_and_querystring(obj: dict[str, Any], orig: EdgeRequest) -> tuple[str, str]:
    uri = obj.get("uri", orig.uri)
    qs = obj.get("querystring", orig.querystring)
    if not isinstance(uri, str):
        raise invalid("the uri is not a string", PAGE_URI)
    if not isinstance(qs, str):
        raise invalid("the querystring is not a string", PAGE_URI)
    if uri != orig.uri:
        if not uri.startswith("/"):
            raise invalid(
                f"the function returned an invalid uri format, uri must start with '/', uri : {uri}", PAGE_URI
            )
        if _BAD_URI.search(uri):
            raise invalid(
                "the function returned an invalid uri format, uri contains a space or control character", PAGE_URI
            )
    if qs != orig.querystring and _BAD_QS.search(qs):
        raise invalid(
            "the function returned an invalid querystring, it contains a space, a control character or '#'", PAGE_URI
        )
    if (uri != orig.uri or qs != orig.querystring) and len(uri) + len(qs) >= URI_QS_LIMIT:
        raise invalid(
            f"the uri and querystring are {len(uri) + len(qs)} characters, the limit is {URI_QS_LIMIT - 1}", PAGE_URI
        )
    return uri, qs


def _check_viewer_country(headers: HeaderDict, original: Headers) -> None:
    # CloudFront adds CloudFront-Viewer-Country after viewer-request; a VR function may not add it (§3.1).
    for lname in VIEWER_REQUEST_FORBIDDEN_ADD:
        new = headers.get(lname)
        if new and [v for _, v in new] != [v for k, v in original if k.lower() == lname]:
            raise invalid(f"the function tried to add disallowed header, headerName : {new[0][0]}", PAGE_DISALLOWED)


def _response(
    event_type: str, obj: dict[str, Any], orig: EdgeResponse, seen: HeaderMap | None = None
) -> ResponseResult:
    status = _status(obj)
    if event_type == VIEWER_RESPONSE and status != orig.status:
        raise invalid(
            f"the function tried to change the status code from {orig.status} to {status}, "
            "the status code cannot be changed in a viewer-response event",
            PAGE_STATUS,
        )
    replaced = "body" in obj
    # A replaced body drops the stale Content-Length (flatten's new_body): that is the full path's job.
    fast = None if seen is None or replaced else unchanged_or_added(event_type, obj.get("headers"), seen,
                                                                     orig.headers)
    if fast is None:
        headers = parse_headers(obj.get("headers"), "headers")
        check_disallowed(headers)
        check_read_only(event_type, headers, orig.headers)
        flat = flatten(headers, orig.headers, new_body=replaced)
    else:
        flat = fast[0]
    body = _response_body(event_type, obj, status, flat) if replaced else orig.body
    response = EdgeResponse(
        status=status,
        headers=flat,
        body=body,
        status_description=_description(obj, status),
        meta=replace(orig.meta),
    )
    return ResponseResult(response, replaced)
