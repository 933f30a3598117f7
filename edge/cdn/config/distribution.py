"""A CloudFront distribution, loaded from exactly what ``aws cloudfront get-distribution-config`` prints.

Accepted inputs: ``{"ETag": ..., "DistributionConfig": {...}}`` (get-distribution-config),
``{"Distribution": {"Id", "DomainName", "DistributionConfig", ...}}`` (get-distribution), or the bare
``DistributionConfig``. Every field is either honoured, accepted with no local effect (listed in
:data:`NO_LOCAL_EFFECT`), or - when present with a non-default value - a startup :class:`ConfigError`
naming its path (``DistributionConfig.CacheBehaviors.Items[2].FieldLevelEncryptionId: not supported by
edgelab``). Nothing is silently ignored.

Honoured: Origins (CustomOriginConfig ports/protocol policy/timeouts/SSL protocols, OriginPath, CustomHeaders,
ConnectionAttempts/-Timeout; S3OriginConfig via the ``[origins]`` mapping), DefaultCacheBehavior and
CacheBehaviors (PathPattern, TargetOriginId, ViewerProtocolPolicy, AllowedMethods/CachedMethods, Compress,
CachePolicyId (managed or ``[cache_policies]``), OriginRequestPolicyId (managed), legacy ForwardedValues with
Min/Default/MaxTTL, LambdaFunctionAssociations, FunctionAssociations (CloudFront Functions, checked by
:mod:`edge.cdn.cloudfront_functions.associations`)), DefaultRootObject, CustomErrorResponses, Enabled.
Accepted with no local effect: CallerReference, Comment, Aliases, PriceClass, ViewerCertificate, Logging,
HttpVersion, IsIPV6Enabled, Restrictions (geo restriction is not emulated), WebACLId, Staging, and per origin
OriginAccessControlId, OriginSslProtocols, IpAddressType, S3OriginConfig.OriginReadTimeout.
Errors when set: OriginGroups, OriginShield, TrustedSigners /
TrustedKeyGroups, FieldLevelEncryptionId, RealtimeLogConfigArn, ResponseHeadersPolicyId, SmoothStreaming,
ContinuousDeploymentPolicyId, and any field edgelab does not know.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.associations import (
    CffAssociation,
    InvalidFunctionAssociation,
    check_combination,
    parse_function_association,
)
from edge.cdn.config.behaviors import compile_pattern
from edge.cdn.config.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    ConfigError,
    KeyList,
    OriginRequestPolicy,
    check_ttl_order,
    default_ttls,
    find_by_id_or_name,
    is_empty,
    items,
    str_items,
)
from edge.cdn.config.settings import OriginTarget, Settings
from edge.cdn.lambda_edge.associations import InvalidLambdaFunctionAssociation, parse_association
from edge.cdn.models import CustomOrigin, S3Origin

__all__ = [
    "NO_LOCAL_EFFECT",
    "Behavior",
    "CffAssociation",
    "ConfigError",
    "CustomErrorResponse",
    "Distribution",
    "LambdaAssociation",
    "OriginSpec",
    "load_distribution",
]

# Top-level fields accepted with no local effect (documented in the README/example settings).
NO_LOCAL_EFFECT = ("CallerReference", "Comment", "Aliases", "PriceClass", "ViewerCertificate", "Logging",
                   "HttpVersion", "IsIPV6Enabled", "Restrictions", "WebACLId", "Staging")
ALL_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
_METHOD_SETS = (frozenset({"GET", "HEAD"}), frozenset({"GET", "HEAD", "OPTIONS"}), frozenset(ALL_METHODS))
ERROR_CODES = frozenset({400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class LambdaAssociation:
    """One ``LambdaFunctionAssociations`` item: the function version to run for an event type."""

    event_type: str  # viewer-request | origin-request | origin-response | viewer-response
    arn: str  # full qualified ARN, as configured
    include_body: bool = False
    function_name: str = ""
    qualifier: str = ""  # "3", or "$LATEST"/alias when allow_unpublished_qualifiers
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class OriginSpec:
    """One distribution origin, with where it is really reached locally.

    ``connect_host``/``connect_port`` come from ``[origins]`` in the settings (default: DomainName and the
    port implied by the protocol policy). For S3 origins ``s3_directory``/``s3_url`` say where the bucket lives.
    """

    id: str
    domain_name: str
    path: str  # OriginPath, "" or "/prefix"
    custom_headers: tuple[tuple[str, str], ...]
    connection_attempts: int
    connection_timeout: float
    is_s3: bool
    protocol_policy: str = "http-only"  # http-only | https-only | match-viewer (custom origins)
    http_port: int = 80
    https_port: int = 443
    read_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    ssl_protocols: tuple[str, ...] = ("TLSv1.2",)
    connect_host: str = ""
    connect_port: int = 0
    connect_url: str | None = None  # proxy to this base URL instead (from [origins] "http://...")
    s3_directory: Path | None = None
    s3_oai: str = ""

    def to_edge_origin(self, viewer_protocol: str = "http") -> CustomOrigin | S3Origin:
        """The Lambda@Edge ``origin`` record (models.CustomOrigin/S3Origin) for a request.

        ``CustomOrigin.connect_host`` is ``"host:port"`` of the local target.
        """
        if self.is_s3:
            return S3Origin(domain_name=self.domain_name, path=self.path,
                            auth_method="origin-access-identity" if self.s3_oai else "none",
                            region=_s3_region(self.domain_name), custom_headers=self.custom_headers,
                            origin_id=self.id)
        proto = viewer_protocol if self.protocol_policy == "match-viewer" else self.protocol_policy[:-5]
        port = self.https_port if proto == "https" else self.http_port
        return CustomOrigin(domain_name=self.domain_name, port=port, protocol=proto, path=self.path,
                            read_timeout=self.read_timeout, keepalive_timeout=self.keepalive_timeout,
                            custom_headers=self.custom_headers, ssl_protocols=self.ssl_protocols,
                            origin_id=self.id, connect_host=f"{self.connect_host}:{self.connect_port}")


@dataclass(frozen=True, slots=True)
class Behavior:
    """A cache behavior (``DefaultCacheBehavior`` has ``path_pattern == "*"`` and ``is_default``)."""

    path_pattern: str
    target_origin_id: str
    viewer_protocol_policy: str  # allow-all | https-only | redirect-to-https
    allowed_methods: frozenset[str]
    cached_methods: frozenset[str]
    compress: bool
    cache_policy: CachePolicy
    origin_request_policy: OriginRequestPolicy | None
    lambda_associations: tuple[LambdaAssociation, ...] = ()
    function_associations: tuple[CffAssociation, ...] = ()  # CloudFront Functions (viewer events only)
    is_default: bool = False
    index: int = -1  # position in CacheBehaviors.Items; -1 for the default
    regex: re.Pattern[str] | None = None  # compiled PathPattern (None for the default behavior)

    def association(self, event_type: str) -> LambdaAssociation | None:
        return next((a for a in self.lambda_associations if a.event_type == event_type), None)


@dataclass(frozen=True, slots=True)
class CustomErrorResponse:
    error_code: int
    response_page_path: str | None
    response_code: int | None
    error_caching_min_ttl: int | None  # None: the settings' default (10 s)


@dataclass(frozen=True, slots=True)
class Distribution:
    id: str
    domain_name: str  # "<id>.cloudfront.net"-style; part of every cache key
    etag: str
    enabled: bool
    default_root_object: str
    origins: Mapping[str, OriginSpec]
    behaviors: tuple[Behavior, ...]  # CacheBehaviors in order (default NOT included)
    default_behavior: Behavior
    custom_error_responses: Mapping[int, CustomErrorResponse]
    comment: str = ""
    aliases: tuple[str, ...] = ()
    http_version: str = "http2"

    @property
    def all_behaviors(self) -> tuple[Behavior, ...]:
        """Behaviors in match order, default last."""
        return (*self.behaviors, self.default_behavior)

    def origin_for(self, behavior: Behavior) -> OriginSpec:
        return self.origins[behavior.target_origin_id]

    def error_caching_ttl(self, status: int) -> int | None:
        cer = self.custom_error_responses.get(status)
        return None if cer is None else cer.error_caching_min_ttl


class _Obj:
    """A JSON object being read: typed getters naming ``path.Field``, tracking which fields were consumed."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"must be an object, got {type(data).__name__}")
        self.data, self.path, self.seen = data, path, set[str]()

    def p(self, k: str) -> str:
        return f"{self.path}.{k}"

    def raw(self, k: str, default: Any = None) -> Any:
        self.seen.add(k)
        return self.data.get(k, default)

    def str_(self, k: str, default: str | None = None, *, required: bool = False) -> str:
        v = self.raw(k, default)
        if v is None and required:
            raise ConfigError(self.p(k), "required")
        if not isinstance(v, str):
            raise ConfigError(self.p(k), f"must be a string, got {v!r}")
        return v

    def bool_(self, k: str, default: bool) -> bool:
        v = self.raw(k, default)
        if not isinstance(v, bool):
            raise ConfigError(self.p(k), f"must be true or false, got {v!r}")
        return v

    def int_(self, k: str, default: int | None, lo: int, hi: int) -> int:
        v = self.raw(k, default)
        if isinstance(v, str) and v.isdigit():  # the API prints some integers (ResponseCode) as strings
            v = int(v)
        if v is None:
            raise ConfigError(self.p(k), "required")
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError(self.p(k), f"must be an integer between {lo} and {hi}, got {v!r}")
        return v

    def reject_rest(self, no_effect: tuple[str, ...] = ()) -> None:
        """Every field not consumed must be a no-local-effect field or empty/default; otherwise an error."""
        for k, v in self.data.items():
            if k in self.seen or k in no_effect or is_empty(v):
                continue
            raise ConfigError(self.p(k), "not supported by edgelab")


def load_distribution(source: str | Path | Mapping[str, Any], settings: Settings | None = None) -> Distribution:
    """Parse and validate a distribution (file path or already-decoded JSON). Raises :class:`ConfigError`."""
    settings = settings or Settings(pops=())
    if not isinstance(source, Mapping):
        p = Path(source)
        try:
            source = json.loads(p.read_bytes())
        except OSError as exc:
            raise ConfigError(str(p), f"cannot read distribution file: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(str(p), f"invalid JSON: {exc}") from None
        if not isinstance(source, Mapping):
            raise ConfigError(str(p), "must contain a JSON object")
    etag, dist_id, domain = str(source.get("ETag", "")), "", ""
    cfg: Any = source
    path = "DistributionConfig"
    if "Distribution" in source:
        d = source["Distribution"]
        if not isinstance(d, Mapping) or "DistributionConfig" not in d:
            raise ConfigError("Distribution", "must contain DistributionConfig")
        dist_id, domain, cfg = str(d.get("Id", "")), str(d.get("DomainName", "")), d["DistributionConfig"]
    elif "DistributionConfig" in source:
        extra = set(source) - {"ETag", "DistributionConfig"}
        if extra:
            raise ConfigError(sorted(extra)[0], "unexpected top-level field (expected ETag and DistributionConfig)")
        cfg = source["DistributionConfig"]
    return _parse_config(cfg, path, settings, etag, dist_id, domain)


def _parse_config(cfg: Any, path: str, settings: Settings, etag: str, dist_id: str, domain: str) -> Distribution:
    o = _Obj(cfg, path)
    if not dist_id:
        try:
            seed = json.dumps(cfg, sort_keys=True, default=str).encode()
        except TypeError:  # keys of mixed types (a dict built in code, not JSON): the next checks reject it
            seed = repr(cfg).encode()
        dist_id = "E" + hashlib.sha256(seed).hexdigest()[:13].upper()
    domain = domain or f"{dist_id.lower()}.cloudfront.net"
    origins = _parse_origins(o, settings)
    groups = o.raw("OriginGroups")
    if groups is not None and items(groups, o.p("OriginGroups"), required=False):
        raise ConfigError(o.p("OriginGroups"), "not supported by edgelab")
    default = _parse_behavior(o.raw("DefaultCacheBehavior"), o.p("DefaultCacheBehavior"), origins, settings, -1)
    behaviors = tuple(
        _parse_behavior(b, f"{o.p('CacheBehaviors')}.Items[{i}]", origins, settings, i)
        for i, b in enumerate(items(o.raw("CacheBehaviors"), o.p("CacheBehaviors"), required=False)))
    if len(behaviors) > 25 and not settings.edge.relax_limits:
        raise ConfigError(o.p("CacheBehaviors"), "at most 25 cache behaviors per distribution")
    seen: dict[str, int] = {}
    for b in behaviors:
        if b.path_pattern in seen:
            raise ConfigError(f"{o.p('CacheBehaviors')}.Items[{b.index}].PathPattern",
                              f"duplicate of Items[{seen[b.path_pattern]}]")
        seen[b.path_pattern] = b.index
    root = o.str_("DefaultRootObject", "")
    if root.startswith("/") or len(root) > 255:
        raise ConfigError(o.p("DefaultRootObject"), "must not start with '/' and be at most 255 characters")
    cers = _parse_error_responses(o)
    enabled = o.bool_("Enabled", True)
    comment = o.str_("Comment", "")
    aliases = tuple(str_items(o.raw("Aliases"), o.p("Aliases"), required=False))
    http_version = o.str_("HttpVersion", "http2")
    o.reject_rest(NO_LOCAL_EFFECT)
    return Distribution(id=dist_id, domain_name=domain, etag=etag, enabled=enabled, default_root_object=root,
                        origins=origins, behaviors=behaviors, default_behavior=default, custom_error_responses=cers,
                        comment=comment, aliases=aliases, http_version=http_version)


def _parse_origins(o: _Obj, settings: Settings) -> dict[str, OriginSpec]:
    lst = items(o.raw("Origins"), o.p("Origins"))
    if not lst:
        raise ConfigError(o.p("Origins"), "at least one origin is required")
    out: dict[str, OriginSpec] = {}
    for i, item in enumerate(lst):
        spec = _parse_origin(_Obj(item, f"{o.p('Origins')}.Items[{i}]"), settings)
        if spec.id in out:
            raise ConfigError(f"{o.p('Origins')}.Items[{i}].Id", f"duplicate origin Id {spec.id!r}")
        out[spec.id] = spec
    return out


def _parse_origin(o: _Obj, settings: Settings) -> OriginSpec:
    oid = o.str_("Id", required=True)
    domain = o.str_("DomainName", required=True).lower()
    opath = o.str_("OriginPath", "")
    if opath and (not opath.startswith("/") or opath.endswith("/")):
        raise ConfigError(o.p("OriginPath"), "must start with '/' and not end with '/'")
    headers = []
    for i, h in enumerate(items(o.raw("CustomHeaders"), o.p("CustomHeaders"), required=False)):
        ho = _Obj(h, f"{o.p('CustomHeaders')}.Items[{i}]")
        headers.append((ho.str_("HeaderName", required=True), ho.str_("HeaderValue", required=True)))
        ho.reject_rest()
    if len(headers) > 10 and not settings.edge.relax_limits:
        raise ConfigError(o.p("CustomHeaders"), "at most 10 origin custom headers (quota)")
    attempts = o.int_("ConnectionAttempts", 3, 1, 3)
    ctimeout = o.int_("ConnectionTimeout", 10, 1, 10)
    shield = o.raw("OriginShield")
    if shield is not None and not is_empty(shield):
        raise ConfigError(o.p("OriginShield"), "not supported by edgelab (no regional tier)")
    o.raw("OriginAccessControlId")  # signs S3 requests; no local effect
    target = settings.origin_target(domain) or OriginTarget()
    custom, s3 = o.raw("CustomOriginConfig"), o.raw("S3OriginConfig")
    spec = functools.partial(OriginSpec, id=oid, domain_name=domain, path=opath, custom_headers=tuple(headers),
                             connection_attempts=attempts, connection_timeout=float(ctimeout))
    if (custom is None) == (s3 is None):
        raise ConfigError(o.path, "exactly one of CustomOriginConfig and S3OriginConfig is required")
    o.reject_rest()
    if s3 is not None:
        so = _Obj(s3, o.p("S3OriginConfig"))
        oai = so.str_("OriginAccessIdentity", "")
        so.int_("OriginReadTimeout", 30, 1, 120)
        so.reject_rest()
        if target.host:
            return spec(is_s3=True, s3_oai=oai, connect_host=target.host, connect_port=target.port)
        return spec(is_s3=True, s3_oai=oai, s3_directory=target.directory, connect_url=target.url)
    co = _Obj(custom, o.p("CustomOriginConfig"))
    policy = co.str_("OriginProtocolPolicy", required=True)
    if policy not in ("http-only", "https-only", "match-viewer"):
        raise ConfigError(co.p("OriginProtocolPolicy"), "must be http-only, https-only or match-viewer")
    http_port, https_port = co.int_("HTTPPort", 80, 1, 65535), co.int_("HTTPSPort", 443, 1, 65535)
    ssl = tuple(str_items(co.raw("OriginSslProtocols"), co.p("OriginSslProtocols"), required=False)) or ("TLSv1.2",)
    read_t = co.int_("OriginReadTimeout", 30, 1, 180)
    keep_t = co.int_("OriginKeepaliveTimeout", 5, 1, 180)
    co.raw("IpAddressType")  # ipv4/ipv6/dualstack: no local effect (loopback)
    co.reject_rest()
    default_port = http_port if policy != "https-only" else https_port
    return spec(is_s3=False, protocol_policy=policy, http_port=http_port, https_port=https_port,
                read_timeout=float(read_t), keepalive_timeout=float(keep_t), ssl_protocols=ssl,
                connect_host=target.host or domain, connect_port=target.port or default_port, connect_url=target.url)


def _s3_region(domain: str) -> str:
    m = re.search(r"\.s3[.-]([a-z0-9-]+)\.amazonaws\.com$", domain)
    return m.group(1) if m else "us-east-1"


def _methods(obj: Any, path: str) -> tuple[frozenset[str], frozenset[str]]:
    if obj is None:
        return _METHOD_SETS[0], _METHOD_SETS[0]
    o = _Obj(obj, path)
    allowed = frozenset(str_items({"Quantity": o.raw("Quantity"), "Items": o.raw("Items")}, path))
    if allowed not in _METHOD_SETS:
        raise ConfigError(f"{path}.Items", "must be [GET, HEAD], [GET, HEAD, OPTIONS] or all seven methods")
    cm = o.raw("CachedMethods")
    cached = _METHOD_SETS[0] if cm is None else frozenset(str_items(cm, f"{path}.CachedMethods"))
    if cached not in _METHOD_SETS[:2] or not cached <= allowed:
        raise ConfigError(f"{path}.CachedMethods.Items", "must be [GET, HEAD] or [GET, HEAD, OPTIONS] (and allowed)")
    o.reject_rest()
    return allowed, cached


def _parse_behavior(data: Any, path: str, origins: Mapping[str, OriginSpec], settings: Settings,
                    index: int) -> Behavior:
    o = _Obj(data, path)
    is_default = index < 0
    pattern = "*" if is_default else o.str_("PathPattern", required=True)
    if not is_default:
        _check_pattern(pattern, o.p("PathPattern"))
    origin_id = o.str_("TargetOriginId", required=True)
    if origin_id not in origins:
        raise ConfigError(o.p("TargetOriginId"), f"no origin with Id {origin_id!r}")
    vpp = o.str_("ViewerProtocolPolicy", required=True)
    if vpp not in ("allow-all", "https-only", "redirect-to-https"):
        raise ConfigError(o.p("ViewerProtocolPolicy"), "must be allow-all, https-only or redirect-to-https")
    allowed, cached = _methods(o.raw("AllowedMethods"), o.p("AllowedMethods"))
    compress = o.bool_("Compress", False)
    cache_policy = _behavior_cache_policy(o, settings, compress)
    orp_id = o.str_("OriginRequestPolicyId", "")
    orp = None
    if orp_id:
        orp = find_by_id_or_name(MANAGED_ORIGIN_REQUEST_POLICIES, orp_id)
        if orp is None:
            raise ConfigError(o.p("OriginRequestPolicyId"), f"unknown origin request policy {orp_id!r} "
                                                            "(only AWS managed policies are supported)")
    assocs = _parse_lambda_associations(o, settings)
    functions = _parse_function_associations(o, assocs)
    for k in ("TrustedSigners", "TrustedKeyGroups"):
        v = o.raw(k)
        if v is not None and not is_empty(v):
            raise ConfigError(o.p(k), "signed URLs/cookies are not supported by edgelab")
    o.reject_rest()
    return Behavior(path_pattern=pattern, target_origin_id=origin_id, viewer_protocol_policy=vpp,
                    allowed_methods=allowed, cached_methods=cached, compress=compress, cache_policy=cache_policy,
                    origin_request_policy=orp, lambda_associations=assocs, function_associations=functions,
                    is_default=is_default, index=index,
                    regex=None if is_default else compile_pattern(pattern))


_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9_\-.*$/~\"'@:+&?]+$")


def _check_pattern(pattern: str, path: str) -> None:
    if not pattern or len(pattern) > 255 or not _PATTERN_CHARS.match(pattern):
        raise ConfigError(path, f"invalid path pattern {pattern!r} (1-255 chars of A-Za-z0-9 _-.*$/~\"'@:+&?)")


def _behavior_cache_policy(o: _Obj, settings: Settings, compress: bool) -> CachePolicy:
    policy_id = o.str_("CachePolicyId", "")
    fv = o.raw("ForwardedValues")
    ttls = {k: o.raw(k) for k in ("MinTTL", "DefaultTTL", "MaxTTL")}
    if policy_id:
        if fv is not None:
            raise ConfigError(o.p("ForwardedValues"), "cannot be combined with CachePolicyId")
        for k, v in ttls.items():
            if v is not None and v != 0:
                raise ConfigError(o.p(k), "cannot be combined with CachePolicyId (set TTLs in the policy)")
        policy = settings.cache_policies.get(policy_id) or find_by_id_or_name(MANAGED_CACHE_POLICIES, policy_id)
        if policy is None:
            raise ConfigError(o.p("CachePolicyId"), f"unknown cache policy {policy_id!r}: use an AWS managed "
                                                    "policy ID or define it under [cache_policies] in the settings")
        return policy
    if fv is None:
        raise ConfigError(o.path, "either CachePolicyId or ForwardedValues is required")
    return _legacy_policy(fv, o, compress)


def _legacy_policy(fv: Any, o: _Obj, compress: bool) -> CachePolicy:
    """Legacy cache settings (ForwardedValues + Min/Default/MaxTTL) as an equivalent cache policy."""
    path = o.p("ForwardedValues")
    f = _Obj(fv, path)
    qs_all = f.bool_("QueryString", False)
    qs_keys = tuple(str_items(f.raw("QueryStringCacheKeys"), f.p("QueryStringCacheKeys"), required=False))
    qs = KeyList("none") if not qs_all else (KeyList("whitelist", qs_keys) if qs_keys else KeyList("all"))
    c = _Obj(f.raw("Cookies", {"Forward": "none"}), f.p("Cookies"))
    fwd = c.str_("Forward", required=True)
    if fwd not in ("none", "whitelist", "all"):
        raise ConfigError(c.p("Forward"), "must be none, whitelist or all")
    names = tuple(str_items(c.raw("WhitelistedNames"), c.p("WhitelistedNames"), required=fwd == "whitelist"))
    c.reject_rest()
    headers = tuple(str_items(f.raw("Headers"), f.p("Headers"), required=False))
    f.reject_rest()
    all_headers = "*" in headers
    min_ttl = o.int_("MinTTL", 0, 0, 3_153_600_000)
    d, m = default_ttls(min_ttl, o.raw("DefaultTTL"), o.raw("MaxTTL"))
    default, maximum = o.int_("DefaultTTL", d, 0, 3_153_600_000), o.int_("MaxTTL", m, 0, 3_153_600_000)
    check_ttl_order(min_ttl, default, maximum, o.path)
    return CachePolicy(
        id="", name="legacy", min_ttl=min_ttl, default_ttl=default, max_ttl=maximum,
        headers=KeyList("none") if all_headers or not headers else KeyList("whitelist", headers),
        cookies=KeyList(fwd, names if fwd == "whitelist" else ()), query_strings=qs,
        gzip=compress, brotli=compress, legacy=True, forward_all_headers=all_headers, forward_query_strings=qs_all,
    )


def _parse_lambda_associations(o: _Obj, settings: Settings) -> tuple[LambdaAssociation, ...]:
    """Each item is checked by :func:`edge.cdn.lambda_edge.associations.parse_association` (CloudFront's association-time
    rules and messages: ARN shape, us-east-1, numbered version, event type, IncludeBody)."""
    path = o.p("LambdaFunctionAssociations")
    out: list[LambdaAssociation] = []
    for i, item in enumerate(items(o.raw("LambdaFunctionAssociations"), path, required=False)):
        a = _Obj(item, f"{path}.Items[{i}]")
        try:
            parsed = parse_association(item, allow_unpublished=settings.edge.allow_unpublished_qualifiers)
        except InvalidLambdaFunctionAssociation as exc:
            raise ConfigError(a.path, f"InvalidLambdaFunctionAssociation: {exc.message}") from None
        if any(x.event_type == parsed.event_type for x in out):
            raise ConfigError(a.p("EventType"), f"duplicate association for {parsed.event_type}")
        for k in ("LambdaFunctionARN", "EventType", "IncludeBody"):
            a.raw(k)
        a.reject_rest()
        fn = parsed.function
        out.append(LambdaAssociation(event_type=parsed.event_type, arn=fn.arn, include_body=parsed.include_body,
                                     function_name=fn.name, qualifier=fn.qualifier, region=fn.region))
    return tuple(out)


def _parse_function_associations(o: _Obj, lambda_edge: tuple[LambdaAssociation, ...]) -> tuple[CffAssociation, ...]:
    """``FunctionAssociations`` (CloudFront Functions), checked by :mod:`edge.cdn.cloudfront_functions.associations`
    (ARN shape, viewer events only, one function per event type, no mixing with Lambda@Edge on viewer events).
    The functions themselves are resolved by name when a POP runs them (they may be created after startup)."""
    path = o.p("FunctionAssociations")
    out: list[CffAssociation] = []
    for i, item in enumerate(items(o.raw("FunctionAssociations"), path, required=False)):
        try:
            parsed = parse_function_association(item)
        except InvalidFunctionAssociation as exc:
            raise ConfigError(f"{path}.Items[{i}]", f"InvalidFunctionAssociation: {exc.message}") from None
        if any(x.event_type == parsed.event_type for x in out):
            raise ConfigError(f"{path}.Items[{i}].EventType",
                              f"InvalidFunctionAssociation: more than one CloudFront function for "
                              f"{parsed.event_type} (one edge function per event type)")
        out.append(parsed)
    try:
        check_combination([a.event_type for a in out], [a.event_type for a in lambda_edge])
    except InvalidFunctionAssociation as exc:
        raise ConfigError(path, f"InvalidFunctionAssociation: {exc.message}") from None
    return tuple(out)


def _parse_error_responses(o: _Obj) -> dict[int, CustomErrorResponse]:
    path = o.p("CustomErrorResponses")
    out: dict[int, CustomErrorResponse] = {}
    for i, item in enumerate(items(o.raw("CustomErrorResponses"), path, required=False)):
        e = _Obj(item, f"{path}.Items[{i}]")
        code = e.int_("ErrorCode", None, 100, 599)
        if code not in ERROR_CODES:
            raise ConfigError(e.p("ErrorCode"), f"must be one of {sorted(ERROR_CODES)}")
        if code in out:
            raise ConfigError(e.p("ErrorCode"), f"duplicate custom error response for {code}")
        page = e.str_("ResponsePagePath", "") or None
        rc_raw = e.raw("ResponseCode", "")
        rc = None if rc_raw in ("", None) else e.int_("ResponseCode", None, 100, 599)
        if page and rc is None:
            raise ConfigError(e.p("ResponseCode"), "required when ResponsePagePath is set")
        if rc is not None and rc != 200 and rc not in ERROR_CODES:
            raise ConfigError(e.p("ResponseCode"), f"must be 200 or one of {sorted(ERROR_CODES)}")
        if page is not None and not page.startswith("/"):
            raise ConfigError(e.p("ResponsePagePath"), "must start with '/'")
        ttl = e.raw("ErrorCachingMinTTL")
        ttl = None if ttl is None else e.int_("ErrorCachingMinTTL", None, 0, 31_536_000)
        e.reject_rest()
        out[code] = CustomErrorResponse(code, page, rc, ttl)
    return out
