"""Cache and origin-request policies: the records, CloudFront's managed ones, and the config parser.

Also home of :class:`ConfigError` and the small ``Quantity``/``Items`` helpers shared by the distribution
and settings loaders (this is the lowest module of the configuration half, so both can import it).

Managed policy IDs and settings were checked against the AWS developer guide pages "Using the managed cache
policies" and "Using the managed origin request policies" (awsdocs/amazon-cloudfront-developer-guide) where
available. ``UseOriginCacheControlHeaders``/``-QueryStrings`` and ``AllViewerExceptHostHeader`` /
``AllViewerAndCloudFrontHeaders-2022-06`` settings were not in the archived pages: their IDs are confirmed by
many public configurations, their settings follow the current AWS documentation as we know it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class ConfigError(ValueError):
    """A configuration problem, naming the offending field path (``DistributionConfig.Origins.Items[0]...``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def is_empty(value: Any) -> bool:
    """True for the "not set" forms of an unsupported field: None, "", False, 0, [], Quantity 0, {Enabled: false}.

    Used to accept unsupported features that are present only with their default/empty values.
    """
    if value is None or value is False or value == "" or value == 0:
        return True
    if isinstance(value, list):
        return all(is_empty(v) for v in value)
    if isinstance(value, Mapping):
        return all(is_empty(v) for v in value.values())
    return False


def items(obj: Any, path: str, *, required: bool = True) -> list[Any]:
    """``{"Quantity": n, "Items": [...]}`` -> the list, checking ``Quantity == len(Items)``."""
    if obj is None:
        if required:
            raise ConfigError(path, "missing (expected {Quantity, Items})")
        return []
    if not isinstance(obj, Mapping):
        raise ConfigError(path, f"expected an object with Quantity and Items, got {type(obj).__name__}")
    unknown = set(obj) - {"Quantity", "Items"}
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "unexpected field in a Quantity/Items list")
    qty = obj.get("Quantity")
    if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
        raise ConfigError(f"{path}.Quantity", f"must be a non-negative integer, got {qty!r}")
    lst = obj.get("Items")
    if lst is None:
        lst = []
    if not isinstance(lst, list):
        raise ConfigError(f"{path}.Items", "must be a list")
    if qty != len(lst):
        raise ConfigError(f"{path}.Quantity", f"is {qty} but Items has {len(lst)} element(s)")
    return lst


def str_items(obj: Any, path: str, *, required: bool = True) -> list[str]:
    """:func:`items` whose elements must all be non-empty strings."""
    lst = items(obj, path, required=required)
    for i, v in enumerate(lst):
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{path}.Items[{i}]", f"must be a non-empty string, got {v!r}")
    return lst


KEY_BEHAVIORS_HEADERS = ("none", "whitelist")
KEY_BEHAVIORS_LISTS = ("none", "whitelist", "allExcept", "all")


@dataclass(frozen=True, slots=True)
class KeyList:
    """One dimension of a cache key / forwarding rule.

    ``behavior``: "none" | "whitelist" | "allExcept" | "all" (origin request policies add "allViewer",
    "allViewerAndWhitelistCloudFront", "allExcept" for headers). ``names`` are kept as configured; header
    names are matched case-insensitively, cookie and query-string names case-sensitively.
    """

    behavior: str = "none"
    names: tuple[str, ...] = ()

    def includes(self, name: str, *, case_insensitive: bool = False) -> bool:
        """Whether a value called ``name`` is selected by this rule."""
        if self.behavior in ("all", "allViewer", "allViewerAndWhitelistCloudFront"):
            return True
        if self.behavior == "none":
            return False
        names = self.names
        hit = name.lower() in {n.lower() for n in names} if case_insensitive else name in names
        return hit if self.behavior == "whitelist" else not hit  # allExcept


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A cache policy (CloudFront ``CachePolicyConfig``), or the equivalent of legacy ``ForwardedValues``.

    TTLs are seconds. ``headers``/``cookies``/``query_strings`` select what goes into the cache key (and is
    therefore also forwarded to the origin). ``gzip``/``brotli`` are EnableAcceptEncodingGzip/Brotli.
    ``legacy`` marks a policy synthesised from ForwardedValues; ``forward_all_headers`` (legacy Headers ``*``)
    disables caching for the behavior [HDR]. For legacy policies, ``forward_query_strings`` says whether the
    whole query string goes to the origin even when only ``query_strings.names`` are in the key.
    """

    id: str
    name: str
    min_ttl: int = 0
    default_ttl: int = 86_400
    max_ttl: int = 31_536_000
    headers: KeyList = KeyList()
    cookies: KeyList = KeyList()
    query_strings: KeyList = KeyList()
    gzip: bool = False
    brotli: bool = False
    legacy: bool = False
    forward_all_headers: bool = False
    forward_query_strings: bool = False

    @property
    def caching_disabled(self) -> bool:
        """True when nothing can ever be stored (CachingDisabled, or legacy forwarding of all headers)."""
        return self.forward_all_headers or (self.max_ttl == 0 and self.default_ttl == 0 and self.min_ttl == 0)


@dataclass(frozen=True, slots=True)
class OriginRequestPolicy:
    """An origin request policy: values forwarded to the origin WITHOUT being part of the cache key."""

    id: str
    name: str
    headers: KeyList = KeyList()
    cookies: KeyList = KeyList()
    query_strings: KeyList = KeyList()


# CloudFront-generated viewer headers a cache policy or origin request policy may select (contract §5.5, "Add
# CloudFront request headers", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/adding-cloudfront-headers.html).
DEVICE_HEADERS = ("CloudFront-Is-Desktop-Viewer", "CloudFront-Is-Mobile-Viewer", "CloudFront-Is-Tablet-Viewer",
                  "CloudFront-Is-SmartTV-Viewer", "CloudFront-Is-IOS-Viewer", "CloudFront-Is-Android-Viewer")
LOCATION_HEADERS = ("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Name", "CloudFront-Viewer-Country-Region",
                    "CloudFront-Viewer-Country-Region-Name", "CloudFront-Viewer-City", "CloudFront-Viewer-Postal-Code",
                    "CloudFront-Viewer-Time-Zone", "CloudFront-Viewer-Latitude", "CloudFront-Viewer-Longitude",
                    "CloudFront-Viewer-Metro-Code", "CloudFront-Viewer-ASN")
OTHER_GENERATED_HEADERS = ("CloudFront-Forwarded-Proto", "CloudFront-Viewer-Http-Version", "CloudFront-Viewer-Address",
                           "CloudFront-Viewer-Header-Order", "CloudFront-Viewer-Header-Count")
GENERATED_HEADERS = {n.lower(): n for n in DEVICE_HEADERS + LOCATION_HEADERS + OTHER_GENERATED_HEADERS}  # lower -> name

# The request header names CloudFront owns: the ones above and every other CloudFront-Viewer-* / CloudFront-Is-*
# header it documents (geo, address, TLS, header order...). A viewer never sets them: CloudFront adds its own
# value when a policy names one and "overwrites" a copy the viewer sent ("Add CloudFront request headers",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/adding-cloudfront-headers.html; contract §3.2),
# so a viewer's copy never reaches the cache key, the origin or an origin-facing function
# (edge.cdn.steps.viewer_headers, edge.cdn.steps.origin_request). The one place to extend: a new header CloudFront
# generates goes into GENERATED_HEADERS (and is covered here by its prefix).
CLOUDFRONT_OWNED_PREFIXES = ("cloudfront-viewer-", "cloudfront-is-")
CLOUDFRONT_OWNED_NAMES = frozenset({"cloudfront-forwarded-proto", *GENERATED_HEADERS})


def cloudfront_owned(lname: str) -> bool:
    """Whether the lower-case request header name ``lname`` is one CloudFront owns (see above)."""
    return lname in CLOUDFRONT_OWNED_NAMES or lname.startswith(CLOUDFRONT_OWNED_PREFIXES)


_ONE_YEAR = 31_536_000
_ORIGIN_CC_HEADERS = ("Host", "Origin", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")

MANAGED_CACHE_POLICIES: Mapping[str, CachePolicy] = MappingProxyType({
    p.id: p
    for p in (
        CachePolicy("658327ea-f89d-4fab-a63d-7e88639e58f6", "CachingOptimized", 1, 86_400, _ONE_YEAR,
                    gzip=True, brotli=True),
        CachePolicy("b2884449-e4de-46a7-ac36-70bc7f1ddd6d", "CachingOptimizedForUncompressedObjects",
                    1, 86_400, _ONE_YEAR),
        CachePolicy("4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "CachingDisabled", 0, 0, 0),
        CachePolicy("08627262-05a9-4f76-9ded-b50ca2e3a84f", "Elemental-MediaPackage", 0, 86_400, _ONE_YEAR,
                    headers=KeyList("whitelist", ("Origin",)),
                    query_strings=KeyList("whitelist", ("aws.manifestfilter", "end", "m", "start")),
                    gzip=True, brotli=False),
        CachePolicy("2e54312d-136d-493c-8eb9-b001f22f67d2", "Amplify", 2, 2, 600,
                    headers=KeyList("whitelist", ("Authorization", "CloudFront-Viewer-Country", "Host")),
                    cookies=KeyList("all"), query_strings=KeyList("all"), gzip=True, brotli=True),
        CachePolicy("83da9c7e-98b4-4e11-a168-04f0df8e2c65", "UseOriginCacheControlHeaders", 0, 0, _ONE_YEAR,
                    headers=KeyList("whitelist", _ORIGIN_CC_HEADERS), cookies=KeyList("all"),
                    gzip=True, brotli=True),
        CachePolicy("4cc15a8a-d715-48a4-82b8-cc0b614638fe", "UseOriginCacheControlHeaders-QueryStrings",
                    0, 0, _ONE_YEAR, headers=KeyList("whitelist", _ORIGIN_CC_HEADERS), cookies=KeyList("all"),
                    query_strings=KeyList("all"), gzip=True, brotli=True),
    )
})

_CORS = ("Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method")
# The CloudFront headers AllViewerAndCloudFrontHeaders-2022-06 adds: every one released by June 2022 (not the
# header order/count ones) ("Use managed origin request policies",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-origin-request-policies.html).
_CLOUDFRONT_2022 = (*DEVICE_HEADERS, *LOCATION_HEADERS, "CloudFront-Forwarded-Proto", "CloudFront-Viewer-Http-Version",
                    "CloudFront-Viewer-Address")
MANAGED_ORIGIN_REQUEST_POLICIES: Mapping[str, OriginRequestPolicy] = MappingProxyType({
    p.id: p
    for p in (
        OriginRequestPolicy("216adef6-5c7f-47e4-b989-5492eafa07d3", "AllViewer", KeyList("allViewer"),
                            KeyList("all"), KeyList("all")),
        OriginRequestPolicy("b689b0a8-53d0-40ab-baf2-68738e2966ac", "AllViewerExceptHostHeader",
                            KeyList("allExcept", ("Host",)), KeyList("all"), KeyList("all")),
        OriginRequestPolicy("33f36d7e-f396-46d9-90e0-52428a34d9dc", "AllViewerAndCloudFrontHeaders-2022-06",
                            KeyList("allViewerAndWhitelistCloudFront", _CLOUDFRONT_2022), KeyList("all"),
                            KeyList("all")),
        OriginRequestPolicy("88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", "CORS-S3Origin", KeyList("whitelist", _CORS)),
        OriginRequestPolicy("59781a5b-3903-41f3-afcb-af62929ccde1", "CORS-CustomOrigin",
                            KeyList("whitelist", ("Origin",))),
        OriginRequestPolicy("acba4595-bd28-49b8-b9fe-13317c0390fa", "UserAgentRefererHeaders",
                            KeyList("whitelist", ("User-Agent", "Referer"))),
        OriginRequestPolicy("775133bc-15f2-49f9-abea-afb2e0bf67d2", "Elemental-MediaTailor-PersonalizedManifests",
                            KeyList("whitelist", (*_CORS, "User-Agent", "X-Forwarded-For")),
                            query_strings=KeyList("all")),
    )
})


def _key_list(obj: Any, path: str, behavior_field: str, list_field: str, allowed: tuple[str, ...]) -> KeyList:
    if not isinstance(obj, Mapping):
        raise ConfigError(path, "missing or not an object")
    behavior = obj.get(behavior_field)
    if behavior not in allowed:
        raise ConfigError(f"{path}.{behavior_field}", f"must be one of {', '.join(allowed)}, got {behavior!r}")
    unknown = set(obj) - {behavior_field, list_field}
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]}", "not supported by edgelab")
    names = str_items(obj.get(list_field), f"{path}.{list_field}", required=False)
    if behavior in ("whitelist", "allExcept") and not names:
        raise ConfigError(f"{path}.{list_field}", f"{behavior} needs at least one name")
    return KeyList(behavior, tuple(names))


def _ttl(obj: Mapping[str, Any], key: str, path: str, default: int | None) -> int:
    value = obj.get(key, default)
    if value is None:
        raise ConfigError(f"{path}.{key}", "missing")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3_153_600_000:
        raise ConfigError(f"{path}.{key}", f"must be an integer between 0 and 3153600000, got {value!r}")
    return value


def default_ttls(min_ttl: int, default: int | None, maximum: int | None) -> tuple[int, int]:
    """CloudFront's defaulting of Default/Max TTL (contract §5.3): they follow MinTTL/DefaultTTL upwards."""
    d = default if default is not None else max(86_400, min_ttl)
    m = maximum if maximum is not None else max(31_536_000, d)
    return d, m


def check_ttl_order(min_ttl: int, default: int, maximum: int, path: str) -> None:
    if not min_ttl <= default <= maximum:
        raise ConfigError(path, f"TTLs must satisfy MinTTL <= DefaultTTL <= MaxTTL (got {min_ttl}, {default}, "
                                f"{maximum})")


def parse_cache_policy_config(policy_id: str, cfg: Any, path: str) -> CachePolicy:
    """Parse a CloudFront ``CachePolicyConfig`` (as ``aws cloudfront get-cache-policy-config`` prints it)."""
    if isinstance(cfg, Mapping) and "CachePolicyConfig" in cfg:
        path, cfg = f"{path}.CachePolicyConfig", cfg["CachePolicyConfig"]
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, "must be an object in CachePolicyConfig shape")
    allowed = {"Comment", "Name", "DefaultTTL", "MaxTTL", "MinTTL", "ParametersInCacheKeyAndForwardedToOrigin"}
    for k in cfg:
        if k not in allowed:
            raise ConfigError(f"{path}.{k}", "not supported by edgelab")
    name = cfg.get("Name", policy_id)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.Name", "must be a non-empty string")
    min_ttl = _ttl(cfg, "MinTTL", path, None)
    d, m = default_ttls(min_ttl, cfg.get("DefaultTTL"), cfg.get("MaxTTL"))
    default, maximum = _ttl({"DefaultTTL": d}, "DefaultTTL", path, d), _ttl({"MaxTTL": m}, "MaxTTL", path, m)
    check_ttl_order(min_ttl, default, maximum, path)
    ppath = f"{path}.ParametersInCacheKeyAndForwardedToOrigin"
    params = cfg.get("ParametersInCacheKeyAndForwardedToOrigin")
    if not isinstance(params, Mapping):
        raise ConfigError(ppath, "missing or not an object")
    p_allowed = {"EnableAcceptEncodingGzip", "EnableAcceptEncodingBrotli", "HeadersConfig", "CookiesConfig",
                 "QueryStringsConfig"}
    for k, v in params.items():
        if k not in p_allowed and not is_empty(v):
            raise ConfigError(f"{ppath}.{k}", "not supported by edgelab")
    gzip, brotli = params.get("EnableAcceptEncodingGzip", False), params.get("EnableAcceptEncodingBrotli", False)
    for k, v in (("EnableAcceptEncodingGzip", gzip), ("EnableAcceptEncodingBrotli", brotli)):
        if not isinstance(v, bool):
            raise ConfigError(f"{ppath}.{k}", "must be true or false")
    return CachePolicy(
        id=policy_id, name=name, min_ttl=min_ttl, default_ttl=default, max_ttl=maximum,
        headers=_key_list(params.get("HeadersConfig"), f"{ppath}.HeadersConfig", "HeaderBehavior", "Headers",
                          KEY_BEHAVIORS_HEADERS),
        cookies=_key_list(params.get("CookiesConfig"), f"{ppath}.CookiesConfig", "CookieBehavior", "Cookies",
                          KEY_BEHAVIORS_LISTS),
        query_strings=_key_list(params.get("QueryStringsConfig"), f"{ppath}.QueryStringsConfig",
                                "QueryStringBehavior", "QueryStrings", KEY_BEHAVIORS_LISTS),
        gzip=gzip, brotli=brotli,
    )


ORP_HEADER_BEHAVIORS = ("none", "whitelist", "allViewer", "allViewerAndWhitelistCloudFront", "allExcept")


def parse_origin_request_policy_config(policy_id: str, cfg: Any, path: str) -> OriginRequestPolicy:
    """Parse a CloudFront ``OriginRequestPolicyConfig`` (as ``aws cloudfront get-origin-request-policy-config``
    prints it; behaviors from the API reference's OriginRequestPolicyHeadersConfig / -CookiesConfig /
    -QueryStringsConfig, https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_OriginRequestPolicyConfig.html)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(path, "must be an object in OriginRequestPolicyConfig shape")
    for k in cfg:
        if k not in ("Comment", "Name", "HeadersConfig", "CookiesConfig", "QueryStringsConfig"):
            raise ConfigError(f"{path}.{k}", "not supported by edgelab")
    name = cfg.get("Name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.Name", "must be a non-empty string")
    return OriginRequestPolicy(
        id=policy_id, name=name,
        headers=_key_list(cfg.get("HeadersConfig"), f"{path}.HeadersConfig", "HeaderBehavior", "Headers",
                          ORP_HEADER_BEHAVIORS),
        cookies=_key_list(cfg.get("CookiesConfig"), f"{path}.CookiesConfig", "CookieBehavior", "Cookies",
                          KEY_BEHAVIORS_LISTS),
        query_strings=_key_list(cfg.get("QueryStringsConfig"), f"{path}.QueryStringsConfig",
                                "QueryStringBehavior", "QueryStrings", KEY_BEHAVIORS_LISTS))


def find_by_id_or_name(table: Mapping[str, Any], ref: str) -> Any | None:
    """Look a managed policy up by its ID, or by its name with or without the ``Managed-`` prefix."""
    if ref in table:
        return table[ref]
    name = ref.removeprefix("Managed-")
    return next((p for p in table.values() if p.name == name), None)


__all__ = [
    "MANAGED_CACHE_POLICIES",
    "MANAGED_ORIGIN_REQUEST_POLICIES",
    "CachePolicy",
    "ConfigError",
    "KeyList",
    "OriginRequestPolicy",
    "cloudfront_owned",
    "find_by_id_or_name",
    "is_empty",
    "items",
    "parse_cache_policy_config",
    "parse_origin_request_policy_config",
    "str_items",
]
