"""The ``cloudfront`` module's origin helpers, validated into data the pipeline applies (pure).

Source: AWS Developer Guide, CloudFront, ``helper-functions-origin-modification`` ("Helper methods for origin
modification"): ``cf.updateRequestOrigin(params)``, ``cf.selectRequestOriginById(originId[, overrides])``,
``cf.createRequestOriginGroup(params)``; viewer-request only; several calls in one invocation: the last one
wins (emulator: each call replaces the previous choice, as a later assignment would). An invalid argument is a
validation error (502 ``FunctionValidationError``): the request is not sent anywhere.

The engine records each call as ``[name, arg1, arg2]`` (``engine.Invocation.origin_ops``); :func:`parse_origin_ops`
turns them into one :data:`OriginChange`; :func:`resolve_origin_change` resolves it against the distribution (origin
ids, the behavior's origin) into the :class:`OriginOverride` the request goes on with, raising :func:`invalid_origin`
(the same page line) for an unknown id.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge.cdn.cloudfront_functions.errors import PAGE_ORIGIN, FunctionValidationError
from edge.cdn.lambda_edge.rules import DISALLOWED_HEADERS, DISALLOWED_PREFIXES, HEADER_NAME_RE, HEADER_VALUE_BAD_RE
from edge.cdn.models import CustomOrigin, Origin, S3Origin

if TYPE_CHECKING:
    from edge.cdn.config.distribution import Distribution

__all__ = ["OriginChange", "OriginGroupChange", "OriginOverride", "OriginSelect", "OriginUpdate", "invalid_origin",
           "parse_origin_ops", "resolve_origin_change"]


def invalid_origin(detail: str) -> FunctionValidationError:
    return FunctionValidationError(detail, page_line=PAGE_ORIGIN)


@dataclass(frozen=True, slots=True)
class OriginOverrides:
    host_header: str | None = None
    sni: str | None = None
    allowed_certificate_names: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class OriginUpdate:
    """``updateRequestOrigin``: unspecified settings are inherited from the behavior's origin (None = inherit)."""

    domain_name: str | None = None
    origin_path: str | None = None
    custom_headers: tuple[tuple[str, str], ...] | None = None  # () clears the configured ones
    connection_attempts: int | None = None
    origin_shield: dict[str, Any] | None = None
    origin_access_control: dict[str, Any] | None = None
    timeouts: dict[str, int] = field(default_factory=dict)  # readTimeout, responseCompletionTimeout, keepAliveTimeout, connectionTimeout
    port: int | None = None
    protocol: str | None = None  # "http" | "https"
    ssl_protocols: tuple[str, ...] | None = None
    ip_address_type: str | None = None
    overrides: OriginOverrides = OriginOverrides()


@dataclass(frozen=True, slots=True)
class OriginSelect:
    """``selectRequestOriginById``: an origin of this distribution, by its Id."""

    origin_id: str
    overrides: OriginOverrides = OriginOverrides()


@dataclass(frozen=True, slots=True)
class OriginGroupChange:
    """``createRequestOriginGroup``: a two-origin failover group for this request."""

    members: tuple[tuple[str, OriginOverrides], ...]
    failover_status_codes: tuple[int, ...]
    selection_criteria: str = "default"  # "default" | "media-quality-score"


OriginChange = OriginUpdate | OriginSelect | OriginGroupChange

_FAILOVER_CODES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})  # OriginGroupFailoverCriteria (API reference)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _hostname(value: Any, name: str, limit: int = 253) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or ":" in value or _is_ip(value):
        raise invalid_origin(f"{name} must be a host name of at most {limit} characters, without a port, not an IP address")
    return value


def _overrides(obj: Any, where: str) -> OriginOverrides:
    if obj is None:
        return OriginOverrides()
    if not isinstance(obj, dict):
        raise invalid_origin(f"{where} must be an object")
    names = obj.get("allowedCertificateNames")
    if names is not None:
        if (not isinstance(names, list) or len(names) > 20
                or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)):
            raise invalid_origin("allowedCertificateNames must be a list of at most 20 names of at most 64 characters")
        names = tuple(names)
    return OriginOverrides(
        host_header=_hostname(obj["hostHeader"], "hostHeader") if obj.get("hostHeader") is not None else None,
        sni=_hostname(obj["sni"], "sni") if obj.get("sni") is not None else None,
        allowed_certificate_names=names,
    )


def _int_in(obj: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_origin(f"{name} must be an integer from {low} to {high}")
    return value


def _update(params: Any) -> OriginUpdate:
    if not isinstance(params, dict):
        raise invalid_origin("updateRequestOrigin expects an object")
    domain = params.get("domainName")
    if domain is not None:
        _hostname(domain, "domainName")
    path = params.get("originPath")
    if path is not None and (not isinstance(path, str) or not path.startswith("/") or path.endswith("/") or len(path) > 255):
        raise invalid_origin("originPath must start with /, not end with /, and be at most 255 characters")
    headers = params.get("customHeaders")
    custom: tuple[tuple[str, str], ...] | None = None
    if headers is not None:
        if not isinstance(headers, dict):
            raise invalid_origin("customHeaders must be an object {name: value}")
        items = []
        for name, value in headers.items():
            lname = name.lower()
            if (name != lname or not HEADER_NAME_RE.match(name) or lname in DISALLOWED_HEADERS
                    or lname.startswith(DISALLOWED_PREFIXES)):
                raise invalid_origin(f"customHeaders: {name!r} must be a lowercase header name that is not disallowed")
            if not isinstance(value, str) or HEADER_VALUE_BAD_RE.search(value):
                raise invalid_origin(f"customHeaders: the value of {name!r} must be a string without control characters")
            items.append((name, value))
        custom = tuple(items)
    timeouts: dict[str, int] = {}
    t = params.get("timeouts")
    if t is not None:
        if not isinstance(t, dict):
            raise invalid_origin("timeouts must be an object")
        for name, low, high in (("readTimeout", 1, 120), ("keepAliveTimeout", 1, 120), ("connectionTimeout", 1, 10),
                                ("responseCompletionTimeout", 1, 3600)):
            v = _int_in(t, name, low, high)
            if v is not None:
                timeouts[name] = v
        if "responseCompletionTimeout" in timeouts and timeouts["responseCompletionTimeout"] < timeouts.get("readTimeout", 0):
            raise invalid_origin("responseCompletionTimeout must be at least readTimeout")
    shield = params.get("originShield")
    if shield is not None and (not isinstance(shield, dict) or not isinstance(shield.get("enabled"), bool)):
        raise invalid_origin("originShield must be {enabled: boolean, region?: string}")
    oac = params.get("originAccessControlConfig")
    if oac is not None and (
            not isinstance(oac, dict) or not isinstance(oac.get("enabled"), bool)
            or oac.get("signingBehavior", "always") not in ("always", "never", "no-override")
            or oac.get("signingProtocol", "sigv4") != "sigv4"
            or oac.get("originType", "s3") not in ("s3", "mediapackagev2", "mediastore", "lambda")):
            raise invalid_origin("originAccessControlConfig must be {enabled, signingBehavior always|never|no-override, "
                                 "signingProtocol sigv4, originType s3|mediapackagev2|mediastore|lambda}")
    port = protocol = ip_type = None
    ssl: tuple[str, ...] | None = None
    coc = params.get("customOriginConfig")
    if coc is not None:
        if not isinstance(coc, dict):
            raise invalid_origin("customOriginConfig must be an object")
        port = _int_in(coc, "port", 1, 65535)
        protocol = coc.get("protocol")
        if protocol is not None and protocol not in ("http", "https"):
            raise invalid_origin("customOriginConfig.protocol must be http or https")
        if coc.get("sslProtocols") is not None:
            if not isinstance(coc["sslProtocols"], list) or not all(
                    p in ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2") for p in coc["sslProtocols"]):
                raise invalid_origin("customOriginConfig.sslProtocols must list SSLv3, TLSv1, TLSv1.1 or TLSv1.2")
            ssl = tuple(coc["sslProtocols"])
        ip_type = coc.get("ipAddressType")
        if ip_type is not None:
            if ip_type not in ("ipv4", "ipv6", "dualstack"):
                raise invalid_origin("customOriginConfig.ipAddressType must be ipv4, ipv6 or dualstack")
            if domain is None:
                raise invalid_origin("customOriginConfig.ipAddressType needs a new domainName")
    return OriginUpdate(
        domain_name=domain, origin_path=path, custom_headers=custom,
        connection_attempts=_int_in(params, "connectionAttempts", 1, 3), origin_shield=shield,
        origin_access_control=oac, timeouts=timeouts, port=port, protocol=protocol, ssl_protocols=ssl,
        ip_address_type=ip_type, overrides=_overrides(params, "updateRequestOrigin"),
    )


def _select(origin_id: Any, overrides: Any) -> OriginSelect:
    if not isinstance(origin_id, str) or not origin_id:
        raise invalid_origin("selectRequestOriginById expects an origin Id (a string)")
    return OriginSelect(origin_id, _overrides(overrides, "selectRequestOriginById overrides"))


def _group(params: Any) -> OriginGroupChange:
    if not isinstance(params, dict):
        raise invalid_origin("createRequestOriginGroup expects an object")
    ids = params.get("originIds")
    if not isinstance(ids, list) or len(ids) != 2:
        raise invalid_origin("createRequestOriginGroup: originIds must list two origins")
    members = []
    for item in ids:
        # the page's prose says ID strings, its example passes {originId, originOverrides}: accept both
        if isinstance(item, str) and item:
            members.append((item, OriginOverrides()))
        elif isinstance(item, dict) and isinstance(item.get("originId"), str):
            members.append((item["originId"], _overrides(item.get("originOverrides"), "originOverrides")))
        else:
            raise invalid_origin("createRequestOriginGroup: each of originIds is an Id or {originId, originOverrides}")
    criteria = params.get("selectionCriteria", "default")
    if criteria not in ("default", "media-quality-score"):
        raise invalid_origin("selectionCriteria must be default or media-quality-score")
    failover = params.get("failoverCriteria")
    codes = failover.get("statusCodes") if isinstance(failover, dict) else None
    if not isinstance(codes, list) or not codes or not all(c in _FAILOVER_CODES for c in codes):
        raise invalid_origin("failoverCriteria.statusCodes must list codes from 400, 403, 404, 416, 500, 502, 503, 504")
    return OriginGroupChange(tuple(members), tuple(codes), criteria)


def parse_origin_ops(ops: list[list[Any]]) -> OriginChange | None:
    """The origin change the recorded helper calls amount to (the last call wins), or None."""
    change: OriginChange | None = None
    for op in ops:
        name, a, b = [*list(op), None, None][:3]
        if name == "updateRequestOrigin":
            change = _update(a)
        elif name == "selectRequestOriginById":
            change = _select(a, b)
        elif name == "createRequestOriginGroup":
            change = _group(a)
        else:
            raise invalid_origin(f"unknown origin helper {name!r}")
    return change


@dataclass(slots=True)
class OriginOverride:
    """Where a CloudFront function sent the request: the origin to use instead of the behavior's, the Host header
    to send (``hostHeader``), and for an origin group the secondary origin and the statuses that fail over to it."""

    origin: Origin
    host_header: str | None = None
    failover: Origin | None = None
    failover_statuses: frozenset[int] = frozenset()


def resolve_origin_change(ops: list[list[Any]], base: Origin, distribution: Distribution,
                          request_headers: Iterable[tuple[str, str]]) -> OriginOverride | None:
    """The :class:`OriginOverride` of the origin helper calls a viewer-request function made (the last call wins),
    resolved against ``distribution`` (origin ids) and ``base`` (the behavior's origin, inherited by
    ``updateRequestOrigin``); None when it made none. Raises the 502 ``FunctionValidationError`` for an invalid
    argument or an unknown origin id."""
    change = parse_origin_ops(ops)
    if change is None:
        return None
    if isinstance(change, OriginSelect):
        return OriginOverride(_by_id(distribution, change.origin_id), host_header=change.overrides.host_header)
    if isinstance(change, OriginGroupChange):
        (first, first_ov), (second, _second_ov) = change.members
        return OriginOverride(_by_id(distribution, first), host_header=first_ov.host_header,
                              failover=_by_id(distribution, second), failover_statuses=frozenset(change.failover_status_codes))
    return OriginOverride(_updated(change, base, request_headers), host_header=change.overrides.host_header)


def _by_id(distribution: Distribution, origin_id: str) -> Origin:
    spec = distribution.origins.get(origin_id)
    if spec is None:
        raise invalid_origin(f"no origin with Id {origin_id!r} in this distribution "
                             f"(origins: {', '.join(sorted(distribution.origins))})")
    return spec.to_edge_origin()


def _updated(change: OriginUpdate, base: Origin, request_headers: Iterable[tuple[str, str]]) -> Origin:
    """``updateRequestOrigin``: the behavior's origin with the given settings replaced (unspecified ones inherited);
    a new domain name is reached through the settings' ``[origins]`` mapping, like any origin."""
    if change.custom_headers is not None:
        names = {k.lower() for k, _ in request_headers}
        clash = next((n for n, _ in change.custom_headers if n in names), None)
        if clash is not None:
            raise invalid_origin(f"customHeaders: {clash!r} is also a request header (CloudFront refuses both)")
    new_domain = change.domain_name is not None and change.domain_name != base.domain_name
    domain = change.domain_name or base.domain_name
    path = base.path if change.origin_path is None else change.origin_path
    headers = base.custom_headers if change.custom_headers is None else change.custom_headers
    origin_id = "" if new_domain else base.origin_id
    wants_custom = isinstance(base, CustomOrigin) or change.port is not None or change.protocol is not None
    if not wants_custom:
        assert isinstance(base, S3Origin)
        return dataclasses.replace(base, domain_name=domain, path=path, custom_headers=headers, origin_id=origin_id)
    custom = base if isinstance(base, CustomOrigin) else CustomOrigin(domain_name=domain)
    protocol = change.protocol or custom.protocol
    port = change.port if change.port is not None else (
        custom.port if protocol == custom.protocol else (443 if protocol == "https" else 80))
    t = change.timeouts
    return dataclasses.replace(
        custom, domain_name=domain, path=path, custom_headers=headers, origin_id=origin_id, protocol=protocol,
        port=port, ssl_protocols=change.ssl_protocols or custom.ssl_protocols,
        read_timeout=float(t.get("readTimeout", custom.read_timeout)),
        keepalive_timeout=float(t.get("keepAliveTimeout", custom.keepalive_timeout)),
        connect_host=None if new_domain or port != custom.port else custom.connect_host)
