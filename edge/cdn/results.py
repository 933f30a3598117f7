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
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from edge.cdn.edge_rules import (
    BODY_REPLACE_BASE64_LIMIT,
    BODY_REPLACE_TEXT_LIMIT,
    GENERATED_RESPONSE_LIMIT,
    HEADER_NAME_RE,
    HEADER_VALUE_BAD_RE,
    ORIGIN_CUSTOM_DOMAIN_MAX,
    ORIGIN_KEEPALIVE_TIMEOUT_RANGE,
    ORIGIN_PATH_MAX,
    ORIGIN_PROTOCOLS,
    ORIGIN_READ_TIMEOUT_RANGE,
    ORIGIN_REQUEST,
    ORIGIN_S3_AUTH_METHODS,
    ORIGIN_S3_DOMAIN_MAX,
    ORIGIN_SSL_PROTOCOLS,
    READ_ONLY_HEADERS,
    REQUEST_EVENTS,
    URI_QS_LIMIT,
    VIEWER_REQUEST,
    VIEWER_REQUEST_FORBIDDEN_ADD,
    VIEWER_RESPONSE,
    is_disallowed,
    origin_port_ok,
    title_case,
)
from edge.cdn.errors import LambdaValidationError
from edge.cdn.events import origin_dict, reason_phrase
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, Headers, Origin, S3Origin

__all__ = [
    "GeneratedResponse",
    "LambdaValidationError",
    "PAGE_BODY",
    "PAGE_NOT_OBJECT",
    "PAGE_NOT_PARSABLE",
    "PAGE_READ_ONLY",
    "RequestResult",
    "ResponseResult",
    "Result",
    "parse_result",
]

# Page lines CloudFront is known to show (contract §4.1) ...
PAGE_NOT_PARSABLE = "The Lambda function returned invalid JSON: The JSON output is not parsable."
PAGE_NOT_OBJECT = "The Lambda function returned invalid JSON: The JSON output must be an object type."
PAGE_READ_ONLY = (
    "The Lambda function result failed validation: The function tried to add, delete, or change a read-only header."
)
PAGE_BODY = (
    "The Lambda function result failed validation: "
    "The body is not a string, is not an object, or exceeds the maximum size."
)
# ... and ours, in the same style, for the cases where CloudFront's wording is not documented.
_PAGE = "The Lambda function result failed validation: "
PAGE_DISALLOWED = _PAGE + "The function tried to add a disallowed header."
PAGE_HEADER = _PAGE + "The function returned an invalid header."
PAGE_STATUS = _PAGE + "The function returned an invalid status code."
PAGE_URI = _PAGE + "The function returned an invalid uri or query string."
PAGE_SHAPE = _PAGE + "The function returned an invalid request or response."
PAGE_ORIGIN = _PAGE + "The function returned an invalid origin."

_ROOT = "Records[0].cf"
_TEXT_ENCODINGS = frozenset({"text", "base64"})
_NO_BODY_STATUSES = frozenset({204, 304})
_READ_ONLY_ORDER = {event: tuple(sorted(names)) for event, names in READ_ONLY_HEADERS.items()}
# New query strings: no control characters, spaces or '#' (contract §1.2); new uris: no controls or spaces.
_BAD_QS = re.compile(r"[\x00-\x20\x7f#]")
_BAD_URI = re.compile(r"[\x00-\x20\x7f]")


def invalid(detail: str, page_line: str = PAGE_SHAPE) -> LambdaValidationError:
    """A validation error whose detail reads like CloudFront's validation log line."""
    return LambdaValidationError(f"Lambda function result validation failed, {detail}.", page_line=page_line)


@dataclass(frozen=True, slots=True)
class RequestResult:
    """Continue with this (possibly modified) request."""

    request: EdgeRequest


@dataclass(frozen=True, slots=True)
class GeneratedResponse:
    """A request trigger answered by itself; ``response.body`` is bytes."""

    response: EdgeResponse


@dataclass(frozen=True, slots=True)
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
) -> Result:
    """Validate the function's JSON ``payload`` for ``event_type`` and convert it for the pipeline.

    ``original_request`` / ``original_response`` are the values the event was built from (the read-only
    header rules compare against them; untouched fields and hidden headers come from them).
    ``include_body`` is the association's IncludeBody: only then is a returned ``body.action=replace``
    honoured. ``allow_ip_origins`` (local extension) lets origin-request switch to an IP-address origin.
    Raises :class:`LambdaValidationError` with CloudFront's reason; never anything else for bad payloads.
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise LambdaValidationError(PAGE_NOT_PARSABLE, event_type=event_type, page_line=PAGE_NOT_PARSABLE) from None
    if not isinstance(obj, dict):
        raise LambdaValidationError(PAGE_NOT_OBJECT, event_type=event_type, page_line=PAGE_NOT_OBJECT)
    try:
        if event_type in REQUEST_EVENTS:
            if "status" in obj:
                return GeneratedResponse(_generated(event_type, obj))
            return RequestResult(_request(event_type, obj, original_request, include_body, allow_ip_origins))
        if original_response is None:
            raise ValueError(f"{event_type} needs the original response")
        return _response(event_type, obj, original_response)
    except LambdaValidationError as err:
        err.event_type = event_type
        raise


# --- headers ---------------------------------------------------------------------------------------------


def parse_headers(value: Any, where: str) -> dict[str, list[tuple[str, str]]]:
    """A returned header map -> ``{lowercase name: [(key, value), ...]}`` (empty entries dropped).

    Object keys are lowercased and merged (CloudFront documents lowercase keys; handlers that use
    ``headers['X-Frame-Options']`` exist, contract §1.3/§8). A missing ``key`` (or one naming another
    header) becomes the Title-Case form of the name.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"the {where} object is not an object", PAGE_HEADER)
    out: dict[str, list[tuple[str, str]]] = {}
    for name, entries in value.items():
        if not HEADER_NAME_RE.match(name):
            raise invalid(f"the function returned an invalid header name, headerName : {name}", PAGE_HEADER)
        lname = name.lower()
        if not isinstance(entries, list):
            raise invalid(
                f"the function returned an invalid entry in the {where} object, header :{name} is not an array",
                PAGE_HEADER,
            )
        dest = out.setdefault(lname, [])
        for entry in entries:
            dest.append(_header_entry(lname, name, entry, where))
    return {k: v for k, v in out.items() if v}


def _header_entry(lname: str, name: str, entry: Any, where: str) -> tuple[str, str]:
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        raise invalid(
            f"the function returned an invalid entry in the {where} object, the value of each header value "
            f"must be of string or array of string type, header :{name} has one or more entries whose value "
            "is neither string nor array of strings",
            PAGE_HEADER,
        )
    key = entry.get("key")
    if key is not None and not isinstance(key, str):
        raise invalid(f"the function returned an invalid header key, headerName : {name}", PAGE_HEADER)
    if key is None or key.lower() != lname:
        key = title_case(lname)
    bad = HEADER_VALUE_BAD_RE.search(value)
    if bad:
        raise invalid(
            "the function returned an invalid header, invalid character : "
            f"'%{ord(bad.group()):02X}' in header value, headerName : {key}",
            PAGE_HEADER,
        )
    return key, value


def check_disallowed(headers: dict[str, list[tuple[str, str]]]) -> None:
    """No returned header may be on the disallowed list (none were exposed, so any is an addition)."""
    for lname, items in headers.items():
        if is_disallowed(lname):
            raise invalid(f"the function tried to add disallowed header, headerName : {items[0][0]}", PAGE_DISALLOWED)


def _check_read_only(event_type: str, returned: dict[str, list[tuple[str, str]]], original: Headers) -> None:
    names = READ_ONLY_HEADERS[event_type]
    before: dict[str, list[tuple[str, str]]] = {}
    for key, value in original:
        lname = key.lower()
        if lname in names:
            before.setdefault(lname, []).append((key, value))
    for lname in _READ_ONLY_ORDER[event_type]:
        old = before.get(lname, [])
        new = returned.get(lname, [])
        if [v for _, v in old] == [v for _, v in new]:
            continue
        action = "add" if not old else "delete" if not new else "change"
        key = (new or old)[0][0]
        raise invalid(f"the function tried to {action} read-only header, headerName : {key}", PAGE_READ_ONLY)


def _grouped(headers: Headers) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for key, value in headers:
        lname = key.lower()
        if not is_disallowed(lname):
            out.setdefault(lname, []).append((key, value))
    return out


def _flatten(headers: dict[str, list[tuple[str, str]]], original: Headers, *, new_body: bool = False) -> Headers:
    """Returned header map -> header list; hidden (disallowed) headers of ``original`` are carried over.

    When the function left the headers as they were, ``original``'s order is kept exactly.
    """
    if not new_body and headers == _grouped(original):
        return list(original)
    # With a new body the old Content-Length is stale: the POP frames the new body itself.
    out = [item for name, items in headers.items() if not (new_body and name == "content-length") for item in items]
    # Headers hidden from the function (disallowed) travel on untouched.
    out.extend((k, v) for k, v in original if is_disallowed(k.lower()))
    return out


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
    flat = _flatten(headers, [], new_body=True)
    body = _response_body(event_type, obj, status, flat) if "body" in obj else b""
    return EdgeResponse(status=status, headers=flat, body=body, status_description=_description(obj, status))


def _request(
    event_type: str, obj: dict[str, Any], orig: EdgeRequest, include_body: bool, allow_ip_origins: bool
) -> EdgeRequest:
    if not obj.keys() & {"uri", "headers", "method", "querystring", "clientIp"}:
        raise invalid(
            "the function returned an object that is neither a request nor a response "
            f"(keys : {', '.join(sorted(obj)) or 'none'})",
            PAGE_SHAPE,
        )
    uri, qs = _uri_and_querystring(obj, orig)
    headers = parse_headers(obj.get("headers"), "headers")
    check_disallowed(headers)
    if event_type == VIEWER_REQUEST:
        _check_viewer_country(headers, orig.headers)
    _check_read_only(event_type, headers, orig.headers)
    body = orig.body
    if include_body and "body" in obj:
        body = _request_body(event_type, obj["body"], orig.body)
    origin = orig.origin
    if event_type == ORIGIN_REQUEST and "origin" in obj:
        origin = parse_origin(obj["origin"], orig.origin, headers.keys(), allow_ip=allow_ip_origins)
    flat = _flatten(headers, orig.headers)
    if body is not orig.body:
        # Content-Length is read-only for the function, but CloudFront sends the replaced body's length.
        flat = [(k, str(len(body or b""))) if k.lower() == "content-length" else (k, v) for k, v in flat]
    return EdgeRequest(
        method=orig.method,
        uri=uri,
        querystring=qs,
        headers=flat,
        client_ip=orig.client_ip,
        body=body,
        origin=origin,
    )


def _uri_and_querystring(obj: dict[str, Any], orig: EdgeRequest) -> tuple[str, str]:
    uri = obj.get("uri", orig.uri)
    qs = obj.get("querystring", orig.querystring)
    if not isinstance(uri, str):
        raise invalid("the uri is not a string", PAGE_URI)
    if not isinstance(qs, str):
        raise invalid("the querystring is not a string", PAGE_URI)
    if uri != orig.uri:
        if not uri.startswith("/"):
            raise invalid(f"the function returned an invalid uri format, uri must start with '/', uri : {uri}", PAGE_URI)
        if _BAD_URI.search(uri):
            raise invalid(f"the function returned an invalid uri format, uri contains a space or control character", PAGE_URI)
    if qs != orig.querystring and _BAD_QS.search(qs):
        raise invalid(
            "the function returned an invalid querystring, it contains a space, a control character or '#'", PAGE_URI
        )
    if (uri != orig.uri or qs != orig.querystring) and len(uri) + len(qs) >= URI_QS_LIMIT:
        raise invalid(
            f"the uri and querystring are {len(uri) + len(qs)} characters, the limit is {URI_QS_LIMIT - 1}", PAGE_URI
        )
    return uri, qs


def _check_viewer_country(headers: dict[str, list[tuple[str, str]]], original: Headers) -> None:
    # CloudFront adds CloudFront-Viewer-Country after viewer-request; a VR function may not add it (§3.1).
    for lname in VIEWER_REQUEST_FORBIDDEN_ADD:
        new = headers.get(lname)
        if new and [v for _, v in new] != [v for k, v in original if k.lower() == lname]:
            raise invalid(f"the function tried to add disallowed header, headerName : {new[0][0]}", PAGE_DISALLOWED)


def _response(event_type: str, obj: dict[str, Any], orig: EdgeResponse) -> ResponseResult:
    status = _status(obj)
    if event_type == VIEWER_RESPONSE and status != orig.status:
        raise invalid(
            f"the function tried to change the status code from {orig.status} to {status}, "
            "the status code cannot be changed in a viewer-response event",
            PAGE_STATUS,
        )
    headers = parse_headers(obj.get("headers"), "headers")
    check_disallowed(headers)
    _check_read_only(event_type, headers, orig.headers)
    replaced = "body" in obj
    flat = _flatten(headers, orig.headers, new_body=replaced)
    body = _response_body(event_type, obj, status, flat) if replaced else orig.body
    response = EdgeResponse(
        status=status,
        headers=flat,
        body=body,
        status_description=_description(obj, status),
        extra=dict(orig.extra),
    )
    return ResponseResult(response, replaced)


# --- origin (origin-request only, contract §1.5) ---------------------------------------------------------


def parse_origin(value: Any, original: Origin | None, request_headers: Collection[str], *, allow_ip: bool) -> Origin:
    """Validate a returned ``request.origin``; an unchanged origin gives back ``original`` itself."""
    if not isinstance(value, dict) or len(value) != 1 or not value.keys() & {"custom", "s3"}:
        raise invalid("the function returned an invalid origin, it must contain exactly one of custom or s3", PAGE_ORIGIN)
    if original is not None and value == origin_dict(original):
        return original
    if "custom" in value:
        origin: Origin = _custom_origin(value["custom"], original, allow_ip)
    else:
        origin = _s3_origin(value["s3"], original)
    for key, _ in origin.custom_headers:
        if key.lower() in request_headers:
            raise _bad_origin("customHeaders", key, "also appears in the request headers")
    return origin


def _bad_origin(field: str, value: Any, why: str) -> LambdaValidationError:
    shown = value if isinstance(value, str) else orjson.dumps(value, default=repr).decode()
    return invalid(f"the function returned an invalid origin, {field} : {shown} {why}", PAGE_ORIGIN)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _origin_common(obj: Any, kind: str, domain_max: int) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    if not isinstance(obj, dict):
        raise _bad_origin(kind, obj, "is not an object")
    domain = obj.get("domainName")
    if not isinstance(domain, str) or not domain or len(domain) > domain_max or ":" in domain:
        raise _bad_origin("domainName", domain, f"must be a non-empty DNS name of at most {domain_max} characters")
    path = obj.get("path", "")
    if not isinstance(path, str) or (path and (not path.startswith("/") or path.endswith("/"))) or len(path) > ORIGIN_PATH_MAX:
        raise _bad_origin("path", path, "must be empty or start with '/' and not end with '/' (at most 255 characters)")
    headers = parse_headers(obj.get("customHeaders"), "customHeaders")
    check_disallowed(headers)
    return domain, path, tuple(item for items in headers.values() for item in items)


def _seconds_field(obj: dict[str, Any], name: str, default: float, low: int, high: int) -> float:
    value = obj.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise _bad_origin(name, value, f"must be a number of seconds from {low} to {high}")
    return float(value)


def _custom_origin(obj: Any, original: Origin | None, allow_ip: bool) -> CustomOrigin:
    domain, path, custom_headers = _origin_common(obj, "custom", ORIGIN_CUSTOM_DOMAIN_MAX)
    if not allow_ip and _is_ip(domain):
        raise _bad_origin("domainName", domain, "must not be an IP address")
    port = obj.get("port")
    if not _is_int(port) or not origin_port_ok(port):
        raise _bad_origin("port", port, "must be 80, 443 or 1024-65535")
    protocol = obj.get("protocol")
    if protocol not in ORIGIN_PROTOCOLS:
        raise _bad_origin("protocol", protocol, "must be http or https")
    base = original if isinstance(original, CustomOrigin) else CustomOrigin(domain_name=domain)
    ssl = obj.get("sslProtocols", list(base.ssl_protocols))
    if not isinstance(ssl, list) or not ssl or not all(p in ORIGIN_SSL_PROTOCOLS for p in ssl):
        raise _bad_origin("sslProtocols", ssl, "must be a non-empty list of TLSv1.2, TLSv1.1, TLSv1, SSLv3")
    same_target = isinstance(original, CustomOrigin) and original.domain_name == domain
    return CustomOrigin(
        domain_name=domain,
        port=port,
        protocol=protocol,
        path=path,
        read_timeout=_seconds_field(obj, "readTimeout", base.read_timeout, *ORIGIN_READ_TIMEOUT_RANGE),
        keepalive_timeout=_seconds_field(obj, "keepaliveTimeout", base.keepalive_timeout, *ORIGIN_KEEPALIVE_TIMEOUT_RANGE),
        custom_headers=custom_headers,
        ssl_protocols=tuple(ssl),
        # The local connect mapping and origin id only hold while the function keeps the same domain.
        origin_id=original.origin_id if same_target and isinstance(original, CustomOrigin) else "",
        connect_host=original.connect_host if same_target and isinstance(original, CustomOrigin) else None,
    )


def _s3_origin(obj: Any, original: Origin | None) -> S3Origin:
    domain, path, custom_headers = _origin_common(obj, "s3", ORIGIN_S3_DOMAIN_MAX)
    if domain != domain.lower():
        raise _bad_origin("domainName", domain, "must be all lowercase")
    auth = obj.get("authMethod", "none")
    if auth not in ORIGIN_S3_AUTH_METHODS:
        raise _bad_origin("authMethod", auth, "must be origin-access-identity or none")
    region = obj.get("region", "")
    if not isinstance(region, str):
        raise _bad_origin("region", region, "must be a string")
    if auth == "origin-access-identity":
        if not region:
            raise _bad_origin("region", region, "is required with origin-access-identity")
        if isinstance(original, CustomOrigin):
            raise _bad_origin("authMethod", auth, "cannot be used when switching from a custom origin to S3")
    same_target = isinstance(original, S3Origin) and original.domain_name == domain
    return S3Origin(
        domain_name=domain,
        path=path,
        auth_method=auth,
        region=region,
        custom_headers=custom_headers,
        origin_id=original.origin_id if same_target and isinstance(original, S3Origin) else "",
    )


def _is_ip(domain: str) -> bool:
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        return False
    return True
