"""Build the Lambda@Edge event a trigger receives (contract §1), as orjson-encoded bytes.

Pure and I/O-free; runs on every triggered request, so it builds plain dicts in one pass over the
headers and lets orjson encode them (no deep copies, no intermediate JSON text).

What the caller (the trigger runner) is responsible for, because it depends on the pipeline state:

* passing the request *as that side sees it*: the viewer's headers for viewer events, the forwarded
  header set (host = origin domain, via, x-forwarded-for, policy headers...) for origin events, and the
  querystring only if the behavior forwards it to the origin (§1.2);
* not adding ``CloudFront-Viewer-Country`` / ``CloudFront-Is-*-Viewer`` before viewer-request (§1.7);
* ``request.origin`` set to the behavior's target origin for origin events.

What this module enforces itself: the envelope and field set per event type (§1.7), the header map format
(§1.3) with disallowed headers hidden (§3.1), the body object only with IncludeBody and truncated at the
exposure limit (§1.4), the origin object (§1.5) and the response object with a string status (§1.6).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from edge.cdn.lambda_edge.rules import (
    BODY_EXPOSED_LIMIT,
    EVENT_TYPES,
    DISALLOWED_HEADERS,
    DISALLOWED_PREFIXES,
    EVENTS_WITH_ORIGIN,
    REQUEST_EVENTS,
    RESPONSE_EVENTS,
)
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, Origin, S3Origin

__all__ = ["EventConfig", "HeaderMap", "build_event", "build_event_dict", "encode_event", "header_map", "origin_dict",
           "reason_phrase"]

HeaderMap = dict[str, list[dict[str, str]]]  # the event's header format: {lowercase name: [{key, value}, ...]}

# Reason phrases precomputed once: statusDescription when the response carries none.
_PHRASES = {s.value: s.phrase for s in HTTPStatus}


@dataclass(frozen=True, slots=True)
class EventConfig:
    """The ``cf.config`` values of one viewer request.

    ``request_id`` is the X-Amz-Cf-Id the POP sends on the response (same value for all four events).
    """

    distribution_domain_name: str
    distribution_id: str
    request_id: str


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` ("" for unknown codes)."""
    return _PHRASES.get(status, "")


def header_map(headers: list[tuple[str, str]]) -> HeaderMap:
    """``[(Name, value), ...]`` -> ``{"name": [{"key": "Name", "value": value}, ...]}`` (§1.3).

    One entry per occurrence, in order; disallowed headers (§3.1) are left out.
    """
    out: HeaderMap = {}
    for key, value in headers:
        lname = key.lower()
        if lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES):  # is_disallowed, inlined
            continue
        entry = {"key": key, "value": value}
        items = out.get(lname)
        if items is None:
            out[lname] = [entry]
        else:
            items.append(entry)
    return out


def _seconds(value: float) -> int | float:
    # AWS shows integral seconds as JSON integers (readTimeout: 30).
    return int(value) if float(value).is_integer() else value


def origin_dict(origin: Origin) -> dict[str, Any]:
    """The ``request.origin`` object for ``origin``: exactly one of ``custom`` / ``s3`` (§1.5)."""
    if isinstance(origin, CustomOrigin):
        return {
            "custom": {
                "customHeaders": header_map(list(origin.custom_headers)),
                "domainName": origin.domain_name,
                "keepaliveTimeout": _seconds(origin.keepalive_timeout),
                "path": origin.path,
                "port": origin.port,
                "protocol": origin.protocol,
                "readTimeout": _seconds(origin.read_timeout),
                "sslProtocols": list(origin.ssl_protocols),
            }
        }
    if isinstance(origin, S3Origin):
        s3: dict[str, Any] = {
            "authMethod": origin.auth_method,
            "customHeaders": header_map(list(origin.custom_headers)),
            "domainName": origin.domain_name,
            "path": origin.path,
        }
        if origin.region:
            s3["region"] = origin.region
        return {"s3": s3}
    raise TypeError(f"not an origin: {origin!r}")


def _body_dict(body: bytes | None, limit: int) -> dict[str, Any]:
    data = body or b""
    truncated = len(data) > limit
    if truncated:
        data = data[:limit]
    return {
        "inputTruncated": truncated,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(data).decode("ascii"),
    }


def _request_dict(
    event_type: str, request: EdgeRequest, include_body: bool, body_limit: int | None, headers: HeaderMap
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "clientIp": request.client_ip,
        "method": request.method,
        "uri": request.uri,
        "querystring": request.querystring,
        "headers": headers,
    }
    if include_body and event_type in REQUEST_EVENTS:
        limit = BODY_EXPOSED_LIMIT[event_type] if body_limit is None else body_limit
        req["body"] = _body_dict(request.body, limit)
    if request.origin is not None and event_type in EVENTS_WITH_ORIGIN:
        req["origin"] = origin_dict(request.origin)
    return req


def _response_dict(response: EdgeResponse) -> dict[str, Any]:
    return {
        "status": str(response.status),
        "statusDescription": response.status_description or reason_phrase(response.status),
        "headers": header_map(response.headers),
    }


def build_event_dict(
    event_type: str,
    *,
    config: EventConfig,
    request: EdgeRequest,
    response: EdgeResponse | None = None,
    include_body: bool = False,
    body_limit: int | None = None,
) -> dict[str, Any]:
    """The event as a dict (see :func:`build_event`); for tests and callers that want to inspect it."""
    return _event_parts(event_type, config.distribution_domain_name, config.distribution_id, config.request_id,
                        request, response, include_body, body_limit)[0]


def _event_parts(event_type: str, domain: str, distribution_id: str, request_id: str, request: EdgeRequest,
                 response: EdgeResponse | None, include_body: bool, body_limit: int | None
                 ) -> tuple[dict[str, Any], HeaderMap, HeaderMap | None]:
    """(the event, its request header map, its response header map or None)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown Lambda@Edge event type: {event_type!r}")
    headers = header_map(request.headers)
    cf: dict[str, Any] = {
        "config": {
            "distributionDomainName": domain,
            "distributionId": distribution_id,
            "eventType": event_type,
            "requestId": request_id,
        },
        "request": _request_dict(event_type, request, include_body, body_limit, headers),
    }
    if event_type not in RESPONSE_EVENTS:
        return {"Records": [{"cf": cf}]}, headers, None
    if response is None:
        raise ValueError(f"{event_type} event needs a response")
    cf["response"] = resp = _response_dict(response)
    return {"Records": [{"cf": cf}]}, headers, resp["headers"]


def build_event(
    event_type: str,
    *,
    config: EventConfig,
    request: EdgeRequest,
    response: EdgeResponse | None = None,
    include_body: bool = False,
    body_limit: int | None = None,
) -> bytes:
    """The Lambda@Edge event payload for ``event_type`` as JSON bytes.

    ``response`` is required for origin-response / viewer-response and ignored for request events.
    ``include_body`` adds ``request.body`` for request events only (the association's IncludeBody);
    the body is exposed base64-encoded and truncated at ``body_limit`` (default 40 KB viewer-request,
    1 MB origin-request) with ``inputTruncated`` telling the function. ``request.origin`` appears in
    origin-request and origin-response events. Raises ``ValueError`` for an unknown event type or a
    response event without a response (caller bugs, not function errors).
    """
    return orjson.dumps(
        _event_parts(event_type, config.distribution_domain_name, config.distribution_id, config.request_id,
                     request, response, include_body, body_limit)[0]
    )


def encode_event(
    event_type: str,
    domain: str,
    distribution_id: str,
    request_id: str,
    request: EdgeRequest,
    response: EdgeResponse | None = None,
    include_body: bool = False,
) -> tuple[bytes, HeaderMap, HeaderMap | None]:
    """:func:`build_event` for the trigger hot path (``cf.config`` values passed as they are, default body
    limits), also returning the request and response header maps the event carries: the result parser
    compares what the function returns against them (:func:`edge.cdn.lambda_edge.results.parse_result`'s
    ``event_headers`` / ``event_response_headers``). They are the encoded dicts themselves: do not modify them.
    """
    event, headers, response_headers = _event_parts(event_type, domain, distribution_id, request_id, request, response,
                                                    include_body, None)
    return orjson.dumps(event), headers, response_headers
