"""Field validators for Lambda@Edge results: header maps, read-only/disallowed rules, origin objects.

Split out of :mod:`edge.cdn.lambda_edge.results` (which sequences them); pure and I/O-free. Every failure is a
:class:`~edge.cdn.errors.LambdaValidationError` built by :func:`invalid`, whose ``detail`` reads like
CloudFront's validation log line and whose ``page_line`` is the specific line of the viewer's error page.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import Any

import orjson

from edge.cdn.errors import LambdaValidationError
from edge.cdn.lambda_edge.events import HeaderMap, origin_dict
from edge.cdn.lambda_edge.rules import (
    DISALLOWED_HEADERS,
    DISALLOWED_PREFIXES,
    HEADER_NAME_RE,
    HEADER_VALUE_BAD_RE,
    ORIGIN_CUSTOM_DOMAIN_MAX,
    ORIGIN_KEEPALIVE_TIMEOUT_RANGE,
    ORIGIN_PATH_MAX,
    ORIGIN_PROTOCOLS,
    ORIGIN_READ_TIMEOUT_RANGE,
    ORIGIN_S3_AUTH_METHODS,
    ORIGIN_S3_DOMAIN_MAX,
    ORIGIN_SSL_PROTOCOLS,
    READ_ONLY_HEADERS,
    VIEWER_REQUEST,
    VIEWER_REQUEST_FORBIDDEN_ADD,
    is_disallowed,
    origin_port_ok,
    title_case,
)
from edge.cdn.memo import remember
from edge.cdn.models import CustomOrigin, Headers, Origin, S3Origin

HeaderDict = dict[str, list[tuple[str, str]]]

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

_READ_ONLY_ORDER = {event: tuple(sorted(names)) for event, names in READ_ONLY_HEADERS.items()}


def invalid(detail: str, page_line: str = PAGE_SHAPE) -> LambdaValidationError:
    """A validation error whose detail reads like CloudFront's validation log line."""
    return LambdaValidationError(f"Lambda function result validation failed, {detail}.", page_line=page_line)


# --- headers ---------------------------------------------------------------------------------------------


def parse_headers(value: Any, where: str) -> HeaderDict:
    """A returned header map -> ``{lowercase name: [(key, value), ...]}`` (empty entries dropped).

    Object keys are lowercased and merged (CloudFront documents lowercase keys; handlers that use
    ``headers['X-Frame-Options']`` exist, contract §1.3/§8). A missing ``key`` (or one naming another
    header) becomes the Title-Case form of the name.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"the {where} object is not an object", PAGE_HEADER)
    out: HeaderDict = {}
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


def check_disallowed(headers: HeaderDict) -> None:
    """No returned header may be on the disallowed list (none were exposed, so any is an addition)."""
    for lname, items in headers.items():
        if is_disallowed(lname):
            raise invalid(f"the function tried to add disallowed header, headerName : {items[0][0]}", PAGE_DISALLOWED)


def check_read_only(event_type: str, returned: HeaderDict, original: Headers) -> None:
    names = READ_ONLY_HEADERS[event_type]
    before: HeaderDict = {}
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


def _grouped(headers: Headers) -> HeaderDict:
    out: HeaderDict = {}
    for key, value in headers:
        lname = key.lower()
        if not is_disallowed(lname):
            out.setdefault(lname, []).append((key, value))
    return out


def flatten(headers: HeaderDict, original: Headers, *, new_body: bool = False) -> Headers:
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


def unchanged_or_added(event_type: str, value: Any, seen: HeaderMap, original: Headers) -> tuple[Headers, set[str] | None] | None:
    """What ``flatten(parse_headers(value))`` gives after every check passes, computed cheaply for the
    common result that keeps the headers it was given (``seen``: the event's header map, built from
    ``original``) and at most adds new ones: ``(header list, lowercase names added or None)``.

    None whenever the full path (:func:`parse_headers`, :func:`check_disallowed`, the viewer-country and
    :func:`check_read_only` checks, :func:`flatten`) has anything else to decide: a header changed, removed
    or given again under another case, an added header that is malformed, disallowed, read-only or
    forbidden, an original name or value the full path would reject. The caller then runs the full path, so
    every rule and every error message stay the full path's own. Measured with ``bench.pop_instructions``:
    without it a cache hit behind a warm viewer-request function costs ~56,000 more instructions (+12 %);
    tests/cdn/lambda_edge/test_results_fastpath.py checks it decides exactly like the full path.
    """
    if type(value) is not dict or "" in seen:
        return None
    flat: Headers = []
    values: list[str] = []
    added: set[str] | None = None
    same = new = 0
    refused = _REFUSED_ADD[event_type]
    for name, entries in value.items():
        old = seen.get(name)
        if old is not None:
            if old != entries:  # changed, maybe only the key's case: the full path decides
                return None
            same += 1
            for e in entries:
                v = e["value"]
                flat.append((e["key"], v))
                values.append(v)
            continue
        items = _added_once(event_type, name, entries, refused)
        if items is None:
            return None  # malformed or refused: the full path decides (and says why)
        lname = items[0]
        if lname in seen or (added is not None and lname in added):
            return None  # merged with another header by case: the full path decides
        if added is None:
            added = set()
        added.add(lname)
        for item in items[1]:
            flat.append(item)
            values.append(item[1])
            new += 1
    if same != len(seen) or not _clean_values("".join(values)) or not _names_ok("".join(seen)):
        return None  # a header removed, or an original name/value the full path rejects
    if added is None:
        return list(original), None  # untouched: flatten keeps the original order exactly
    if len(flat) - new != len(original):
        flat.extend((k, v) for k, v in original if is_disallowed(k.lower()))  # hidden headers travel on
    return flat, added


# Lowercase names a function may not add, per event type: disallowed, read-only, and (viewer-request)
# CloudFront-Viewer-Country. Names starting with DISALLOWED_PREFIXES are refused as well.
_REFUSED_ADD: dict[str, frozenset[str]] = {
    event: DISALLOWED_HEADERS | READ_ONLY_HEADERS[event] | (VIEWER_REQUEST_FORBIDDEN_ADD if event == VIEWER_REQUEST
                                                             else frozenset())
    for event in READ_ONLY_HEADERS
}
_NAMES_OK: dict[str, bool] = {}  # memo of HEADER_NAME_RE verdicts (header names repeat from request to request)


def _names_ok(names: str) -> bool:
    """``HEADER_NAME_RE`` matches ``names`` (memoized; bounded)."""
    ok = _NAMES_OK.get(names)
    if ok is None:
        ok = remember(_NAMES_OK, names, HEADER_NAME_RE.match(names) is not None, 4096)
    return ok


# memo of _added's verdicts on single-entry headers: (event type, name, key, value) -> (lowercase name, items) or
# None. Functions add the same headers to request after request (the ~7k instructions of _added become a lookup);
# bounded like _NAMES_OK.
_ADDED: dict[tuple[str, str, object, object], tuple[str, Headers] | None] = {}


def _added_once(event_type: str, name: str, entries: Any, refused: frozenset[str]) -> tuple[str, Headers] | None:
    """:func:`_added`, remembered for a header with one entry whose key and value are strings (the answer is
    shared: the caller only reads it)."""
    if type(entries) is not list or len(entries) != 1 or type(entries[0]) is not dict or len(entries[0]) != 2:
        return _added(name, entries, refused)
    entry = entries[0]
    key, value = entry.get("key"), entry.get("value")
    if type(key) is not str or type(value) is not str:
        return _added(name, entries, refused)
    memo = (event_type, name, key, value)
    if memo in _ADDED:
        return _ADDED[memo]
    return remember(_ADDED, memo, _added(name, entries, refused), 4096)


def _added(name: str, entries: Any, refused: frozenset[str]) -> tuple[str, Headers] | None:
    """(lowercase name, items) of a header the function added, when it passes every rule the full path
    applies to an added header (name, entries, key, value, disallowed, read-only, viewer-country: ``refused``);
    else None. Values are checked by the caller, with the others."""
    lname = name.lower()
    if (type(entries) is not list or not entries or lname in refused or lname.startswith(DISALLOWED_PREFIXES)
            or not _names_ok(name)):
        return None
    items: Headers = []
    for entry in entries:
        if type(entry) is not dict:
            return None
        key = entry.get("key")
        val = entry.get("value")
        if type(val) is not str:
            return None
        if type(key) is not str or key.lower() != lname:
            if key is not None and type(key) is not str:
                return None
            key = title_case(lname)  # missing or naming another header: as _header_entry fills it in
        items.append((key, val))
    return lname, items


def _clean_values(text: str) -> bool:
    """No character :data:`HEADER_VALUE_BAD_RE` rejects (C0 controls but TAB, DEL); no regex for ASCII."""
    if text.isascii():
        return text.replace("\t", "").isprintable()
    return HEADER_VALUE_BAD_RE.search(text) is None


# --- origin (origin-request only, contract §1.5) ---------------------------------------------------------


def parse_origin(value: Any, original: Origin | None, request_headers: Collection[str], *, allow_ip: bool) -> Origin:
    """Validate a returned ``request.origin``; an unchanged origin gives back ``original`` itself."""
    if not isinstance(value, dict) or len(value) != 1 or not value.keys() & {"custom", "s3"}:
        raise invalid(
            "the function returned an invalid origin, it must contain exactly one of custom or s3", PAGE_ORIGIN
        )
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
    well_formed = isinstance(path, str) and (not path or (path.startswith("/") and not path.endswith("/")))
    if not well_formed or len(path) > ORIGIN_PATH_MAX:
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
    # Only a domain the function changed is validated: the behavior's own origin passed the distribution's
    # loader, which accepts an IP address (a local origin); the same domain returned with another port, path or
    # timeout is still that origin (issue 14 item 7).
    same_domain = original is not None and original.domain_name == domain
    if not allow_ip and not same_domain and _is_ip(domain):
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
        keepalive_timeout=_seconds_field(
            obj, "keepaliveTimeout", base.keepalive_timeout, *ORIGIN_KEEPALIVE_TIMEOUT_RANGE
        ),
        custom_headers=custom_headers,
        ssl_protocols=tuple(ssl),
        # The local connect mapping ([origins]) and origin id only hold while the function keeps the same domain;
        # an origin the settings do not map is reached at the domain and port the function returns.
        origin_id=original.origin_id if same_target and isinstance(original, CustomOrigin) else "",
        connect_host=original.connect_host if same_target and isinstance(original, CustomOrigin)
        and original.connect_host != f"{original.domain_name}:{original.port}" else None,
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
