"""CloudFront Functions event objects from edgelab's records, and results applied back to them (pure).

Sources (AWS Developer Guide, CloudFront): ``functions-event-structure`` (event object, the
querystring/headers/cookies field structure, ``multiValue``, status code and body), ``writing-function-code``
(what each event type may return), ``edge-function-restrictions-all`` (disallowed and read-only headers, URI and
query string rules), ``general-helper-methods`` (``rawQueryString``). Where these are silent the choice is
marked "Emulator:".

Event shape::

    {"version": "1.0",
     "context": {"distributionDomainName", "distributionId", "eventType", "requestId"},
     "viewer": {"ip"},
     "request": {"method", "uri", "querystring", "headers", "cookies"},
     "response": {"statusCode", "statusDescription", "headers", "cookies"}}   # viewer-response only

* field maps are ``{name: {"value": v, "multiValue": [{"value": v}, …]}}``; ``multiValue`` only when a name
  occurs more than once, and it lists every occurrence including the first; one header line with commas is not
  split; header names are lowercase; ``Cookie`` lives in ``request.cookies`` and ``Set-Cookie`` in
  ``response.cookies`` (``{"value", "attributes"}``), never in ``headers``;
* disallowed headers are not exposed to the function (and stay on the request untouched);
* on return, a changed ``multiValue`` wins and ``value`` is ignored; otherwise a changed ``value`` replaces
  the first occurrence and the others stay;
* Emulator: query string names and values are given as received (not percent-decoded), and a changed map is
  serialised back as ``name=value`` pairs joined by ``&`` with no re-encoding: the function encodes. An
  unchanged map keeps the viewer's raw query string byte for byte;
* Emulator: ``rawQueryString()`` returns ``undefined`` when ``EdgeRequest.querystring`` is empty (edgelab's
  record does not keep a bare trailing ``?``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from edge.cdn.cloudfront_functions.errors import (
    PAGE_BODY,
    PAGE_DISALLOWED,
    PAGE_HEADER,
    PAGE_READ_ONLY,
    PAGE_SHAPE,
    PAGE_STATUS,
    PAGE_URI,
    FunctionExecutionError,
    FunctionValidationError,
)
from edge.cdn.cloudfront_functions.limits import VIEWER_REQUEST, VIEWER_RESPONSE
from edge.cdn.lambda_edge.events import as_event_text
from edge.cdn.lambda_edge.rules import (
    DISALLOWED_HEADERS,
    DISALLOWED_PREFIXES,
    HEADER_NAME_RE,
    HEADER_VALUE_BAD_RE,
    title_case,
)
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers, ResponseMeta, rewritten

__all__ = [
    "READ_ONLY",
    "GeneratedResponse",
    "RequestResult",
    "ResponseResult",
    "apply_request_result",
    "apply_response_result",
    "build_event",
    "field_map",
]

# edge-function-restrictions-all (current list): read-only headers for CloudFront Functions per event type.
READ_ONLY: dict[str, frozenset[str]] = {
    VIEWER_REQUEST: frozenset({"cdn-loop", "content-length", "host", "transfer-encoding", "via"}),
    VIEWER_RESPONSE: frozenset({"warning", "via"}),
}
# A viewer-request function may not add CloudFront-Viewer-Country (edge-function-restrictions-all).
_VIEWER_REQUEST_NO_ADD = frozenset({"cloudfront-viewer-country"})
_NAME_CHARS_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")  # HEADER_NAME_RE's characters
_MAX_URL = 8192  # edge-function-restrictions-all: uri + query string after a change < 8,192 characters
GENERATED_RESPONSE_WARN_BYTES = 40 * 1024  # undocumented for CFF (40 KB is Lambda@Edge's): warn only


def _hidden(lname: str) -> bool:
    return lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES)


def field_map(pairs: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """``[(name, value), …]`` -> ``{name: {"value": first, "multiValue"?: [all]}}`` (names as given)."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in pairs:
        entry = out.get(name)
        if entry is None:
            out[name] = {"value": value}
        else:
            multi = entry.get("multiValue")
            if multi is None:
                entry["multiValue"] = multi = [{"value": entry["value"]}]
            multi.append({"value": value})
    return out


def parse_query(raw: str) -> list[tuple[str, str]]:
    if not raw:
        return []
    out = []
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.append((name, value))
    return out


def parse_cookie_headers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for header in values:
        for part in header.split(";"):
            part = part.strip()
            if not part:
                continue
            name, _, value = part.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _set_cookie_map(values: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in values:
        pair, _, attributes = line.partition(";")
        name, _, value = pair.strip().partition("=")
        item = {"value": value.strip(), "attributes": attributes.strip()}
        entry = out.get(name.strip())
        if entry is None:
            out[name.strip()] = dict(item)
        else:
            multi = entry.get("multiValue")
            if multi is None:
                entry["multiValue"] = multi = [{"value": entry["value"], "attributes": entry["attributes"]}]
            multi.append(item)
    return out


def _text(value: str) -> str:
    """What a function sees of a request or response string: a byte that was not UTF-8 (kept by the POP's parser as
    a lone surrogate, which no JavaScript string can carry) is read as ISO-8859-1, as CloudFront converts "ISO-8859-1
    (or unknown) encodings" to UTF-8 for every edge function ("URI, query string, and headers encoding",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-function-restrictions-all.html#function-restrictions-encoding).
    ASCII (nearly every value) is returned as is after one ``isascii`` check."""
    return value if value.isascii() else as_event_text(value)


def _header_event_map(headers: Headers, skip: str) -> dict[str, dict[str, Any]]:
    pairs = []
    for name, value in headers:
        lname = name.lower()
        if lname == skip or _hidden(lname):
            continue
        pairs.append((lname, _text(value)))
    return field_map(pairs)


def build_event(
    request: EdgeRequest,
    *,
    event_type: str,
    distribution_domain: str,
    distribution_id: str,
    request_id: str,
    response: EdgeResponse | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The event for ``event_type`` and the raw query string backing ``rawQueryString()``."""
    cookie_values = [_text(v) for k, v in request.headers if k.lower() == "cookie"]
    event: dict[str, Any] = {
        "version": "1.0",
        "context": {
            "distributionDomainName": distribution_domain,
            "distributionId": distribution_id,
            "eventType": event_type,
            "requestId": request_id,
        },
        "viewer": {"ip": request.client_ip},
        "request": {
            "method": request.method,
            "uri": _text(request.uri),
            "querystring": field_map(parse_query(_text(request.querystring))),
            "headers": _header_event_map(request.headers, "cookie"),
            "cookies": field_map(parse_cookie_headers(cookie_values)),
        },
    }
    if event_type == VIEWER_RESPONSE:
        if response is None:
            raise ValueError("a viewer-response event needs the response")
        event["response"] = {
            "statusCode": response.status,
            "statusDescription": response.status_description,
            "headers": _header_event_map(response.headers, "set-cookie"),
            "cookies": _set_cookie_map([_text(v) for k, v in response.headers if k.lower() == "set-cookie"]),
        }
    return event, (_text(request.querystring) or None)


# ---------------------------------------------------------------------------------------------- results


@dataclass(slots=True)
class RequestResult:
    """viewer-request returned the (modified) request: continue with it (cache lookup, origin on a miss)."""

    request: EdgeRequest


@dataclass(slots=True)
class GeneratedResponse:
    """viewer-request returned a response: send it as is, ``X-Cache: FunctionGeneratedResponse from cloudfront``,
    no cache lookup, no origin, not cached, viewer-response not run (writing-function-code)."""

    response: EdgeResponse
    oversized: bool = False  # above 40 KB: undocumented for CFF, the pipeline logs a warning


@dataclass(slots=True)
class ResponseResult:
    """viewer-response returned the (modified) response."""

    response: EdgeResponse


def _bad(detail: str, page: str = PAGE_SHAPE) -> FunctionValidationError:
    return FunctionValidationError(detail, page_line=page)


def _check_map(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"{where} must be an object")
    return value


def _entry_values(name: str, entry: Any, where: str, original: dict[str, Any] | None) -> list[str]:
    """The occurrences a returned field stands for, with CloudFront's multiValue/value precedence."""
    if not isinstance(entry, dict):
        raise _bad(f"{where}.{name} must be an object with a value", PAGE_HEADER)
    multi = entry.get("multiValue")
    orig_multi = original.get("multiValue") if original else None
    if multi is not None and multi != orig_multi:
        if not isinstance(multi, list) or not all(isinstance(m, dict) and isinstance(m.get("value"), str) for m in multi):
            raise _bad(f"{where}.{name}.multiValue must be a list of {{value}} objects", PAGE_HEADER)
        return [m["value"] for m in multi]
    value = entry.get("value")
    if not isinstance(value, str):
        raise _bad(f"{where}.{name}.value must be a string", PAGE_HEADER)
    if original is None:
        return [value]
    if orig_multi:
        rest = [m["value"] for m in orig_multi[1:]]
        return [value, *rest]
    return [value]


def _returned_pairs(value: Any, where: str, original: dict[str, Any], *, lower: bool) -> list[tuple[str, str]]:
    returned = _check_map(value, where)
    pairs: list[tuple[str, str]] = []
    for name, entry in returned.items():
        key = name.lower() if lower else name
        pairs.extend((key, v) for v in _entry_values(name, entry, where, original.get(name)))
    return pairs


def _check_header_pairs(pairs: list[tuple[str, str]]) -> None:
    for name, value in pairs:
        if not HEADER_NAME_RE.match(name):
            raise _bad(f"invalid header name {name!r}", PAGE_HEADER)
        if HEADER_VALUE_BAD_RE.search(value):
            raise _bad(f"invalid value for header {name!r}", PAGE_HEADER)


def _check_protected(event_type: str, before: list[tuple[str, str]], after: list[tuple[str, str]]) -> None:
    read_only = READ_ONLY[event_type]
    before_names = {n for n, _ in before}
    for name in {n for n, _ in after} - before_names:
        if _hidden(name) or (event_type == VIEWER_REQUEST and name in _VIEWER_REQUEST_NO_ADD):
            raise _bad(f"the function tried to add disallowed header, headerName : {name}", PAGE_DISALLOWED)
    # one pass over each list (this runs on every request with a function: ~3 µs less than a pass per name)
    olds: dict[str, list[str]] = {}
    news: dict[str, list[str]] = {}
    for n, v in before:
        if n in read_only:
            olds.setdefault(n, []).append(v)
    for n, v in after:
        if n in read_only:
            news.setdefault(n, []).append(v)
    if olds == news:
        return
    for name in sorted(read_only):
        old, new = olds.get(name, []), news.get(name, [])
        if old != new:
            action = "delete" if old and not new else "add" if new and not old else "change"
            raise _bad(f"the function tried to {action} read-only header, headerName : {title_case(name)}", PAGE_READ_ONLY)


def _merge_headers(original: Headers, visible: list[tuple[str, str]], after: list[tuple[str, str]], skip: str,
                   extra: list[tuple[str, str]]) -> Headers:
    """Final header list: unchanged headers keep their place and case; hidden (disallowed) ones stay untouched;
    added names are title-cased (functions-event-structure)."""
    if after == visible and not extra:
        return list(original)
    case: dict[str, str] = {}
    for name, _ in original:
        case.setdefault(name.lower(), name)
    out: Headers = [(n, v) for n, v in original if _hidden(n.lower())]
    # a value the function saw converted (a byte that was not UTF-8) and returned unchanged goes on as received
    restore = {(n.lower(), _text(v)): v for n, v in original if not v.isascii()}
    for name, value in after:
        if restore:
            value = restore.get((name, value), value)
        out.append((case.get(name) or title_case(name), value))
    out.extend(extra)
    return out


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise _bad(f"statusCode must be an integer between 100 and 599, got {value!r}", PAGE_STATUS)
    return value


def _body(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        encoding = value.get("encoding", "text")
        data = value.get("data")
        if not isinstance(data, str):
            raise _bad("body.data must be a string", PAGE_BODY)
        if encoding == "text":
            return data.encode("utf-8")
        if encoding == "base64":
            try:
                return base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise _bad("body.data is not valid base64", PAGE_BODY) from None
        raise _bad(f"body.encoding must be \"text\" or \"base64\", got {encoding!r}", PAGE_BODY)
    raise _bad("body must be a string or an object {encoding, data}", PAGE_BODY)


def _cookie_lines(value: Any, original: dict[str, Any]) -> list[str]:
    returned = _check_map(value, "cookies")
    lines = []
    for name, entry in returned.items():
        if not isinstance(entry, dict):
            raise _bad(f"cookies.{name} must be an object", PAGE_HEADER)
        orig = original.get(name)
        multi = entry.get("multiValue")
        if multi is not None and (orig is None or multi != orig.get("multiValue")):
            items = multi
        elif orig is not None and orig.get("multiValue") and entry.get("value") == orig.get("value") \
                and entry.get("attributes", "") == orig.get("attributes", ""):
            items = orig["multiValue"]
        else:
            items = [entry]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise _bad(f"cookies.{name}.value must be a string", PAGE_HEADER)
            attrs = item.get("attributes") or ""
            if not isinstance(attrs, str):
                raise _bad(f"cookies.{name}.attributes must be a string", PAGE_HEADER)
            lines.append(f"{name}={item['value']}" + (f"; {attrs}" if attrs else ""))
    return lines


def _not_object(value: Any) -> FunctionExecutionError:
    kind = "undefined" if value is None else type(value).__name__
    return FunctionExecutionError(f"the handler returned {kind}, not an object")


def apply_request_result(original: EdgeRequest, event: dict[str, Any], value: Any) -> RequestResult | GeneratedResponse:
    """Apply what a viewer-request function returned; raises FunctionValidationError/FunctionExecutionError."""
    if not isinstance(value, dict):
        raise _not_object(value)
    if "statusCode" in value:
        return _generated(value)
    ev_req = event["request"]
    if "method" in value and value["method"] != original.method:
        raise _bad("the function tried to change the read-only field method")
    uri = value.get("uri", original.uri)
    if uri == ev_req["uri"]:  # unchanged: what the viewer sent goes on (it differs when a byte was not UTF-8)
        uri = original.uri
    if not isinstance(uri, str) or not uri.startswith("/") or any(c in uri for c in " #") or HEADER_VALUE_BAD_RE.search(uri):
        raise _bad(f"invalid uri {uri!r}: it must start with / and contain no spaces, # or control characters", PAGE_URI)
    qs_value = value.get("querystring", ev_req["querystring"])
    if qs_value == ev_req["querystring"]:
        raw_qs = original.querystring
    else:
        pairs = _returned_pairs(qs_value, "querystring", ev_req["querystring"], lower=False)
        raw_qs = "&".join(f"{n}={v}" if v != "" else f"{n}=" for n, v in pairs)
        if any(c in raw_qs for c in " #") or HEADER_VALUE_BAD_RE.search(raw_qs):
            raise _bad("invalid query string: no spaces, # or control characters", PAGE_URI)
    if len(uri) + len(raw_qs) + 1 >= _MAX_URL:
        raise _bad("uri and query string must be shorter than 8,192 characters", PAGE_URI)
    visible = [(n, m["value"]) for n, e in ev_req["headers"].items() for m in (e.get("multiValue") or [e])]
    after = _returned_pairs(value.get("headers", ev_req["headers"]), "headers", ev_req["headers"], lower=True)
    after = [(n, v) for n, v in after if n != "cookie"]
    _check_header_pairs(after)
    _check_protected(VIEWER_REQUEST, visible, after)
    cookies_value = value.get("cookies", ev_req["cookies"])
    original_cookie_lines = [(n, v) for n, v in original.headers if n.lower() == "cookie"]
    if cookies_value == ev_req["cookies"]:
        cookie_headers = original_cookie_lines
    else:
        pairs = _returned_pairs(cookies_value, "cookies", ev_req["cookies"], lower=False)
        cookie_headers = [("Cookie", "; ".join(f"{n}={v}" for n, v in pairs))] if pairs else []
    merged = _merge_headers([h for h in original.headers if h[0].lower() != "cookie"], visible, after, "cookie", cookie_headers)
    if after == visible:
        merged = list(original.headers) if cookie_headers == original_cookie_lines else \
            [h for h in original.headers if h[0].lower() != "cookie"] + cookie_headers
    return RequestResult(rewritten(original, uri, raw_qs, merged))


def _names_and_values_valid(names: list[str], values: list[str]) -> bool:
    """``_check_header_pairs`` would pass on these names and values (one regex over all names and one over all
    values: both patterns test single characters, so the joined strings fail exactly when one of the parts does)."""
    return all(names) and _NAME_CHARS_RE.fullmatch("".join(names)) is not None and \
        HEADER_VALUE_BAD_RE.search("".join(values)) is None


def _unprepared(meta: ResponseMeta) -> ResponseMeta:
    """``meta`` without the serving step's prepared headers (a function changed them). Positional: cheaper than
    ``dataclasses.replace``, which inspects the fields on every call."""
    return ResponseMeta(meta.origin_seconds, meta.content_length, meta.set_cookie, meta.streamed, meta.generated_by,
                        False, None)


def _generated(value: dict[str, Any]) -> GeneratedResponse:
    status = _status(value.get("statusCode"))
    desc = value.get("statusDescription", "")
    if not isinstance(desc, str):
        raise _bad("statusDescription must be a string", PAGE_STATUS)
    headers = _returned_pairs(value.get("headers"), "headers", {}, lower=True)
    headers = [(n, v) for n, v in headers if n != "set-cookie"]
    _check_header_pairs(headers)
    for name, _ in headers:
        if _hidden(name) or name in READ_ONLY[VIEWER_REQUEST] - {"content-length", "host"}:
            raise _bad(f"the function tried to add disallowed header, headerName : {name}", PAGE_DISALLOWED)
    out: Headers = [(title_case(n), v) for n, v in headers if n != "content-length"]
    out += [("Set-Cookie", line) for line in _cookie_lines(value.get("cookies"), {})]
    body = _body(value["body"]) if value.get("body") is not None else b""
    size = len(body) + sum(len(n) + len(v) + 4 for n, v in out)
    return GeneratedResponse(EdgeResponse(status=status, headers=out, body=body, status_description=desc),
                             oversized=size > GENERATED_RESPONSE_WARN_BYTES)


def apply_response_result(original: EdgeResponse, event: dict[str, Any], value: Any) -> ResponseResult:
    """Apply what a viewer-response function returned (status may change; body replaced only when given)."""
    if not isinstance(value, dict):
        raise _not_object(value)
    ev_res = event["response"]
    status = _status(value.get("statusCode", original.status))
    desc = value.get("statusDescription", original.status_description)
    if not isinstance(desc, str):
        raise _bad("statusDescription must be a string", PAGE_STATUS)
    visible = [(n, m["value"]) for n, e in ev_res["headers"].items() for m in (e.get("multiValue") or [e])]
    after = _returned_pairs(value.get("headers", ev_res["headers"]), "headers", ev_res["headers"], lower=True)
    after = [(n, v) for n, v in after if n != "set-cookie"]
    _check_header_pairs(after)
    _check_protected(VIEWER_RESPONSE, visible, after)
    cookies_value = value.get("cookies", ev_res["cookies"])
    original_set_cookies = [(n, v) for n, v in original.headers if n.lower() == "set-cookie"]
    if cookies_value == ev_res["cookies"]:
        set_cookies = original_set_cookies
    else:
        set_cookies = [("Set-Cookie", line) for line in _cookie_lines(cookies_value, ev_res["cookies"])]
    base = [h for h in original.headers if h[0].lower() != "set-cookie"]
    headers = _merge_headers(base, visible, after, "set-cookie", set_cookies)
    if after == visible and set_cookies == original_set_cookies:
        headers = list(original.headers)
    body = original.body
    if "body" in value and value["body"] is not None:
        body = _body(value["body"])
    # the function may have added any header: the serving step's prepared headers no longer describe them
    return ResponseResult(EdgeResponse(status, headers, body, desc, _unprepared(original.meta)))
