"""A CloudFront distribution, loaded from exactly what the AWS CLI prints or reads.

Accepted inputs: ``{"ETag": ..., "DistributionConfig": {...}}`` (get-distribution-config),
``{"Distribution": {"Id", "DomainName", "DistributionConfig", ...}}`` (get-distribution), the
``update-distribution --cli-input-json`` file ``{"Id", "IfMatch", "DistributionConfig"}`` (AWS's procedure renames
``ETag`` to ``IfMatch``: "Update a distribution",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/HowToUpdateDistribution.html),
``{"DistributionConfigWithTags": {"DistributionConfig", "Tags"}}`` (create-distribution-with-tags), or the bare
``DistributionConfig``; a file may start with a UTF-8 byte order mark, as the AWS CLI accepts.

Every field is treated as :mod:`edge.cdn.config.fields` says: honoured, accepted with no local effect (the
loader collects one startup line per such field that is set: ``Distribution.notices``, printed by ``edgelab serve``),
or - when present with a non-default value - a startup :class:`ConfigError` naming its path, the reason and the next
step (``DistributionConfig.CacheBehaviors.Items[2].FieldLevelEncryptionId: not supported by edgelab: ...; next step:
...``). An unknown field is an error too. Nothing is silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge.cdn.cloudfront_functions.associations import (
    CffAssociation,
    InvalidFunctionAssociation,
    check_combination,
    parse_function_association,
)
from edge.cdn.config.behaviors import compile_pattern
from edge.cdn.config.fields import FIELDS, refusal
from edge.cdn.config.geo import GeoRestriction, parse_geo_restriction
from edge.cdn.config.origin_groups import OriginGroup, parse_origin_groups
from edge.cdn.config.origins import OriginSpec, parse_origins, tenant_parameters
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
from edge.cdn.config.reader import Obj
from edge.cdn.config.response_headers import MANAGED_RESPONSE_HEADERS_POLICIES, ResponseHeadersPolicy
from edge.cdn.config.settings import Settings
from edge.cdn.config.signers import trusted_keys
from edge.cdn.lambda_edge.associations import InvalidLambdaFunctionAssociation, parse_association
from edge.cdn.signing import TrustedKey

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

# Top-level fields accepted with no local effect (config/fields.py says how each is treated; a startup line each).
NO_LOCAL_EFFECT = tuple(k.split(".", 1)[1] for k, t in FIELDS.items()
                        if k.startswith("DistributionConfig.") and t.kind == "no-local-effect")
# Wrappers of a DistributionConfig: the keys allowed beside it (update-distribution's Id/IfMatch, get's ETag).
_WRAPPER_KEYS = frozenset({"ETag", "IfMatch", "Id", "DistributionConfig"})
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
    notices: tuple[str, ...] = ()  # startup lines of the behavior's no-local-effect fields
    response_headers_policy: ResponseHeadersPolicy | None = None  # ResponseHeadersPolicyId, resolved
    # TrustedKeyGroups/TrustedSigners resolved: key ID -> key (None: a public behavior)
    trusted_keys: Mapping[str, TrustedKey] | None = field(default=None, hash=False)

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
    notices: tuple[str, ...] = ()  # one startup line per field set that means nothing locally (config/fields.py)
    geo: GeoRestriction | None = None  # Restrictions.GeoRestriction (None: no restriction)
    origin_groups: Mapping[str, OriginGroup] = field(default_factory=dict)  # OriginGroups by Id

    @property
    def all_behaviors(self) -> tuple[Behavior, ...]:
        """Behaviors in match order, default last."""
        return (*self.behaviors, self.default_behavior)

    def origin_for(self, behavior: Behavior) -> OriginSpec:
        """The origin requests of ``behavior`` go to (an origin group's primary)."""
        group = self.origin_groups.get(behavior.target_origin_id)
        return self.origins[group.primary if group is not None else behavior.target_origin_id]

    def failover_for(self, behavior: Behavior) -> tuple[OriginSpec, frozenset[int]] | None:
        """The secondary origin and the failover statuses when ``behavior`` targets an origin group."""
        group = self.origin_groups.get(behavior.target_origin_id)
        return None if group is None else (self.origins[group.secondary], group.statuses)

    def error_caching_ttl(self, status: int) -> int | None:
        cer = self.custom_error_responses.get(status)
        return None if cer is None else cer.error_caching_min_ttl


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
    elif "DistributionConfigWithTags" in source:  # create-distribution-with-tags --cli-input-json
        d = source["DistributionConfigWithTags"]
        if len(source) != 1 or not isinstance(d, Mapping) or "DistributionConfig" not in d:
            raise ConfigError("DistributionConfigWithTags", "must be the only top-level field and contain "
                                                            "DistributionConfig (and Tags)")
        cfg = d["DistributionConfig"]
    elif "DistributionConfig" in source:
        extra = set(source) - _WRAPPER_KEYS
        if extra:
            raise ConfigError(sorted(extra)[0], "unexpected top-level field (expected ETag or Id/IfMatch, and "
                                                "DistributionConfig)")
        cfg = source["DistributionConfig"]
        # update-distribution --cli-input-json: {"Id", "IfMatch", "DistributionConfig"} (IfMatch is the ETag)
        etag = str(source.get("IfMatch", etag))
        dist_id = str(source.get("Id", ""))
    return _parse_config(cfg, path, settings, etag, dist_id, domain)


def _parse_config(cfg: Any, path: str, settings: Settings, etag: str, dist_id: str, domain: str) -> Distribution:
    o = Obj(cfg, path)
    if not dist_id:
        try:
            seed = json.dumps(cfg, sort_keys=True, default=str).encode()
        except TypeError:  # keys of mixed types (a dict built in code, not JSON): the next checks reject it
            seed = repr(cfg).encode()
        dist_id = "E" + hashlib.sha256(seed).hexdigest()[:13].upper()
    domain = domain or f"{dist_id.lower()}.cloudfront.net"
    notes: list[str] = []
    params = tenant_parameters(o)
    origins = parse_origins(o, settings, params, notes)
    groups = parse_origin_groups(o.raw("OriginGroups"), o.p("OriginGroups"), frozenset(origins))
    targets = frozenset(origins) | frozenset(groups)
    default = _parse_behavior(o.raw("DefaultCacheBehavior"), o.p("DefaultCacheBehavior"), targets, settings, -1)
    behaviors = tuple(
        _parse_behavior(b, f"{o.p('CacheBehaviors')}.Items[{i}]", targets, settings, i)
        for i, b in enumerate(items(o.raw("CacheBehaviors"), o.p("CacheBehaviors"), required=False)))
    if len(behaviors) > 25 and not settings.edge.relax_limits:
        raise ConfigError(o.p("CacheBehaviors"), "at most 25 cache behaviors per distribution")
    seen: dict[str, int] = {}
    for b in behaviors:
        if b.path_pattern in seen:
            raise ConfigError(f"{o.p('CacheBehaviors')}.Items[{b.index}].PathPattern",
                              f"duplicate of Items[{seen[b.path_pattern]}]")
        seen[b.path_pattern] = b.index
    root = _default_root_object(o, notes)
    cers = _parse_error_responses(o)
    enabled = o.bool_("Enabled", True)
    comment = o.str_("Comment", "")
    aliases = tuple(str_items(o.raw("Aliases"), o.p("Aliases"), required=False))
    http_version = o.str_("HttpVersion", "http2")
    _check_viewer_mtls(o, notes)
    geo = parse_geo_restriction(o.raw("Restrictions"), o.p("Restrictions"))
    o.notices("DistributionConfig", tuple(k for k in NO_LOCAL_EFFECT if k != "Comment"), notes)
    o.reject_rest(NO_LOCAL_EFFECT, "DistributionConfig")
    for b in (default, *behaviors):
        notes.extend(b.notices)
    return Distribution(id=dist_id, domain_name=domain, etag=etag, enabled=enabled, default_root_object=root,
                        origins=origins, origin_groups=MappingProxyType(groups), behaviors=behaviors,
                        default_behavior=default, custom_error_responses=cers, comment=comment, aliases=aliases,
                        http_version=http_version, notices=tuple(notes), geo=geo)


def _default_root_object(o: Obj, notes: list[str]) -> str:
    """``DefaultRootObject``: an object name or path without a leading ``/`` ("Specify a default root object",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/DefaultRootObject.html). The API also
    accepts a lone ``/`` (configurations recorded from CloudFront carry it; HHS/simpler-grants-gov#3139 reports the
    API taking it): it names the root itself, so the request for ``/`` goes to the origin unchanged."""
    root = o.str_("DefaultRootObject", "")
    if root == "/":
        notes.append(f"{o.p('DefaultRootObject')}: '/' names the root itself: a request for / is sent to the "
                     "origin as /")
        return ""
    if root.startswith("/") or len(root) > 255:
        raise ConfigError(o.p("DefaultRootObject"), "must not start with '/' and be at most 255 characters "
                                                    "(name the object, e.g. index.html or docs/index.html)")
    return root


def _check_viewer_mtls(o: Obj, notes: list[str]) -> None:
    """``ViewerMtlsConfig``: ``Mode: optional`` means nothing locally (a startup line); ``required`` is refused."""
    v = o.raw("ViewerMtlsConfig")
    if is_empty(v):
        return
    if not isinstance(v, Mapping) or v.get("Mode") not in ("required", "optional"):
        raise ConfigError(o.p("ViewerMtlsConfig.Mode"), "must be required or optional")
    if v["Mode"] == "required":
        raise ConfigError(o.p("ViewerMtlsConfig.Mode"), refusal("DistributionConfig.ViewerMtlsConfig"))
    notes.append(f"{o.p('ViewerMtlsConfig')}: Mode optional: no client certificate is asked for locally")




def _methods(obj: Any, path: str) -> tuple[frozenset[str], frozenset[str]]:
    if obj is None:
        return _METHOD_SETS[0], _METHOD_SETS[0]
    o = Obj(obj, path)
    allowed = frozenset(str_items({"Quantity": o.raw("Quantity"), "Items": o.raw("Items")}, path))
    if allowed not in _METHOD_SETS:
        raise ConfigError(f"{path}.Items", "must be [GET, HEAD], [GET, HEAD, OPTIONS] or all seven methods")
    cm = o.raw("CachedMethods")
    cached = _METHOD_SETS[0] if cm is None else frozenset(str_items(cm, f"{path}.CachedMethods"))
    if cached not in _METHOD_SETS[:2] or not cached <= allowed:
        raise ConfigError(f"{path}.CachedMethods.Items", "must be [GET, HEAD] or [GET, HEAD, OPTIONS] (and allowed)")
    o.reject_rest()
    return allowed, cached


def _parse_behavior(data: Any, path: str, targets: frozenset[str], settings: Settings, index: int) -> Behavior:
    o = Obj(data, path)
    is_default = index < 0
    pattern = "*" if is_default else o.str_("PathPattern", required=True)
    if not is_default:
        _check_pattern(pattern, o.p("PathPattern"))
    origin_id = o.str_("TargetOriginId", required=True)
    if origin_id not in targets:
        raise ConfigError(o.p("TargetOriginId"), f"no origin or origin group with Id {origin_id!r}")
    vpp = o.str_("ViewerProtocolPolicy", required=True)
    if vpp not in ("allow-all", "https-only", "redirect-to-https"):
        raise ConfigError(o.p("ViewerProtocolPolicy"), "must be allow-all, https-only or redirect-to-https")
    allowed, cached = _methods(o.raw("AllowedMethods"), o.p("AllowedMethods"))
    compress = o.bool_("Compress", False)
    cache_policy = _behavior_cache_policy(o, settings, compress)
    orp_id = o.str_("OriginRequestPolicyId", "")
    orp = None
    if orp_id:
        orp = (settings.origin_request_policies.get(orp_id)
               or find_by_id_or_name(MANAGED_ORIGIN_REQUEST_POLICIES, orp_id))
        if orp is None:
            raise ConfigError(o.p("OriginRequestPolicyId"), f"unknown origin request policy {orp_id!r} "
                                                            "(an AWS managed policy, or one created with "
                                                            "create-origin-request-policy)")
    rhp_id = o.str_("ResponseHeadersPolicyId", "")
    rhp = None
    if rhp_id:
        rhp = settings.response_headers_policies.get(rhp_id) or find_by_id_or_name(MANAGED_RESPONSE_HEADERS_POLICIES,
                                                                                  rhp_id)
        if rhp is None:
            raise ConfigError(o.p("ResponseHeadersPolicyId"), f"unknown response headers policy {rhp_id!r}: use an AWS "
                              "managed policy (ID or name) or define it under [response_headers_policies] in the "
                              "settings (its ResponseHeadersPolicyConfig, as get-response-headers-policy-config prints "
                              "it)")
    assocs = _parse_lambda_associations(o, settings)
    functions = _parse_function_associations(o, assocs)
    keys = trusted_keys(o.raw("TrustedKeyGroups"), o.raw("TrustedSigners"), o.path, settings.signers)
    notes: list[str] = []
    o.notices("CacheBehavior", ("SmoothStreaming", "RealtimeLogConfigArn"), notes)
    o.reject_rest(shape="CacheBehavior")
    return Behavior(path_pattern=pattern, target_origin_id=origin_id, viewer_protocol_policy=vpp,
                    allowed_methods=allowed, cached_methods=cached, compress=compress, cache_policy=cache_policy,
                    origin_request_policy=orp, lambda_associations=assocs, function_associations=functions,
                    is_default=is_default, index=index,
                    regex=None if is_default else compile_pattern(pattern), notices=tuple(notes),
                    response_headers_policy=rhp, trusted_keys=keys)


_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9_\-.*$/~\"'@:+&?]+$")


def _check_pattern(pattern: str, path: str) -> None:
    if not pattern or len(pattern) > 255 or not _PATTERN_CHARS.match(pattern):
        raise ConfigError(path, f"invalid path pattern {pattern!r} (1-255 chars of A-Za-z0-9 _-.*$/~\"'@:+&?)")


def _behavior_cache_policy(o: Obj, settings: Settings, compress: bool) -> CachePolicy:
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


def _legacy_policy(fv: Any, o: Obj, compress: bool) -> CachePolicy:
    """Legacy cache settings (ForwardedValues + Min/Default/MaxTTL) as an equivalent cache policy."""
    path = o.p("ForwardedValues")
    f = Obj(fv, path)
    qs_all = f.bool_("QueryString", False)
    qs_keys = tuple(str_items(f.raw("QueryStringCacheKeys"), f.p("QueryStringCacheKeys"), required=False))
    qs = KeyList("none") if not qs_all else (KeyList("whitelist", qs_keys) if qs_keys else KeyList("all"))
    c = Obj(f.raw("Cookies", {"Forward": "none"}), f.p("Cookies"))
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


def _parse_lambda_associations(o: Obj, settings: Settings) -> tuple[LambdaAssociation, ...]:
    """Each item is checked by :func:`edge.cdn.lambda_edge.associations.parse_association` (CloudFront's association-time
    rules and messages: ARN shape, us-east-1, numbered version, event type, IncludeBody)."""
    path = o.p("LambdaFunctionAssociations")
    out: list[LambdaAssociation] = []
    for i, item in enumerate(items(o.raw("LambdaFunctionAssociations"), path, required=False)):
        a = Obj(item, f"{path}.Items[{i}]")
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


def _parse_function_associations(o: Obj, lambda_edge: tuple[LambdaAssociation, ...]) -> tuple[CffAssociation, ...]:
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


def _parse_error_responses(o: Obj) -> dict[int, CustomErrorResponse]:
    path = o.p("CustomErrorResponses")
    out: dict[int, CustomErrorResponse] = {}
    for i, item in enumerate(items(o.raw("CustomErrorResponses"), path, required=False)):
        e = Obj(item, f"{path}.Items[{i}]")
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
