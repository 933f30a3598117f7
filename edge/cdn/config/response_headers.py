"""Response headers policies: the record, CloudFront's managed policies, and the parser of a
``ResponseHeadersPolicyConfig`` (as ``aws cloudfront get-response-headers-policy-config`` prints it) for the custom
ones declared under ``[response_headers_policies]`` in the settings.

Shapes and limits: "ResponseHeadersPolicyConfig" in the CloudFront API Reference
(https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_ResponseHeadersPolicyConfig.html) and "Understand
response headers policies" (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/understanding-response-headers-policies.html).
Managed policies: "Use managed response headers policies"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-response-headers-policies.html);
CORS-With-Preflight is shipped as its table lists it (no ``Access-Control-Allow-Headers``, although its prose
speaks of "all three" preflight headers: the page contradicts itself). Rendered values follow the managed
policies' table (``max-age=31536000``, ``1; mode=block``); list headers are joined with ``", "``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from edge.cdn.config.policies import ConfigError, items, str_items

__all__ = ["MANAGED_RESPONSE_HEADERS_POLICIES", "CorsConfig", "PolicyHeader", "ResponseHeadersPolicy",
           "parse_response_headers_policy_config"]

ALL_CORS_METHODS = ("GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD")
# RemoveHeadersConfig may not name these (API error), nor a header CloudFront functions may not touch.
UNREMOVABLE = frozenset({"content-encoding", "content-length", "host", "transfer-encoding", "via", "warning",
                         "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "proxy-connection", "trailer", "upgrade", "x-accel-buffering", "x-accel-charset",
                         "x-accel-limit-rate", "x-accel-redirect", "x-cache", "x-forwarded-proto", "x-real-ip"})
_REFERRER = ("no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin", "same-origin",
             "strict-origin", "strict-origin-when-cross-origin", "unsafe-url")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True, slots=True)
class PolicyHeader:
    """A header the policy adds: with ``override`` it replaces the response's own; without, it is added only when
    the response has none."""

    name: str
    value: str
    override: bool


@dataclass(frozen=True, slots=True)
class CorsConfig:
    """``CorsConfig``: ``allow_origins`` as configured (``*``, full origins, ``https://*.example.org``); the one
    ``override`` flag (``OriginOverride``) governs every CORS header."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_methods: tuple[str, ...]  # "ALL" expanded
    allow_credentials: bool
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    override: bool = False
    origin_patterns: tuple[re.Pattern[str], ...] = ()  # allow_origins compiled (not "*")

    @property
    def any_origin(self) -> bool:
        return "*" in self.allow_origins

    def allows(self, origin: str) -> bool:
        return self.any_origin or any(p.fullmatch(origin) for p in self.origin_patterns)


@dataclass(frozen=True, slots=True)
class ResponseHeadersPolicy:
    """One response headers policy: what to remove, then what to add (security and custom headers), CORS, and
    whether responses carry CloudFront's ``Server-Timing`` (``sampling_rate`` percent of them)."""

    id: str
    name: str
    cors: CorsConfig | None = None
    headers: tuple[PolicyHeader, ...] = ()  # security headers then custom headers
    remove: frozenset[str] = frozenset()  # lower-case names
    server_timing: bool = False
    sampling_rate: float = 0.0


def _origin_pattern(origin: str) -> re.Pattern[str]:
    return re.compile(re.escape(origin).replace(r"\*", "[^./]+"), re.IGNORECASE)


def _cors(allow_origins: tuple[str, ...], methods: tuple[str, ...], *, expose: tuple[str, ...] = (),
          override: bool = False) -> CorsConfig:
    return CorsConfig(allow_origins=allow_origins, allow_headers=(), allow_methods=methods, allow_credentials=False,
                      expose_headers=expose, override=override,
                      origin_patterns=tuple(_origin_pattern(o) for o in allow_origins if o != "*"))


_SECURITY = (
    PolicyHeader("Referrer-Policy", "strict-origin-when-cross-origin", False),
    PolicyHeader("Strict-Transport-Security", "max-age=31536000", False),
    PolicyHeader("X-Content-Type-Options", "nosniff", True),
    PolicyHeader("X-Frame-Options", "SAMEORIGIN", False),
    PolicyHeader("X-XSS-Protection", "1; mode=block", False),
)
_PREFLIGHT_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

MANAGED_RESPONSE_HEADERS_POLICIES: Mapping[str, ResponseHeadersPolicy] = MappingProxyType({
    p.id: p
    for p in (
        ResponseHeadersPolicy("60669652-455b-4ae9-85a4-c4c02393f86c", "SimpleCORS", cors=_cors(("*",), ())),
        ResponseHeadersPolicy("5cc3b908-e619-4b99-88e5-2cf7f45965bd", "CORS-With-Preflight",
                              cors=_cors(("*",), _PREFLIGHT_METHODS, expose=("*",))),
        ResponseHeadersPolicy("67f7725c-6f97-4210-82d7-5512b31e9d03", "SecurityHeadersPolicy", headers=_SECURITY),
        ResponseHeadersPolicy("e61eb60c-9c35-4d20-a928-2b84e02af89c", "CORS-and-SecurityHeadersPolicy",
                              cors=_cors(("*",), ()), headers=_SECURITY),
        ResponseHeadersPolicy("eaab4381-ed33-4a86-88ca-d9558dc6cd63", "CORS-with-preflight-and-SecurityHeadersPolicy",
                              cors=_cors(("*",), _PREFLIGHT_METHODS, expose=("*",)), headers=_SECURITY),
    )
})


class _Cfg:
    """A config object being read: typed getters naming ``path.Field``; unknown fields are errors."""

    def __init__(self, data: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, "must be an object")
        for k in data:
            if k not in allowed:
                raise ConfigError(f"{path}.{k}", f"unknown field (expected one of {', '.join(allowed)})")
        self.data, self.path = data, path

    def p(self, k: str) -> str:
        return f"{self.path}.{k}"

    def bool_(self, k: str, *, required: bool = True, default: bool = False) -> bool:
        v = self.data.get(k)
        if v is None and not required:
            return default
        if not isinstance(v, bool):
            raise ConfigError(self.p(k), f"required: true or false, got {v!r}")
        return v

    def str_(self, k: str, *, required: bool = True) -> str:
        v = self.data.get(k)
        if v is None and not required:
            return ""
        if not isinstance(v, str):
            raise ConfigError(self.p(k), f"required: a string, got {v!r}")
        return v

    def names(self, k: str, *, required: bool = True) -> tuple[str, ...]:
        return tuple(str_items(self.data.get(k), self.p(k), required=required))

    def sub(self, k: str, allowed: tuple[str, ...]) -> _Cfg | None:
        v = self.data.get(k)
        return None if v is None else _Cfg(v, self.p(k), allowed)


def _parse_cors(c: _Cfg) -> CorsConfig:
    origins = c.names("AccessControlAllowOrigins")
    for i, o in enumerate(origins):
        if o != "*" and not re.fullmatch(r"(https?://)?(\*\.)?[A-Za-z0-9.-]+(:\d+)?", o):
            raise ConfigError(f"{c.p('AccessControlAllowOrigins')}.Items[{i}]",
                              f"{o!r}: a full origin (https://example.org), '*', or '*' as the left-most label only")
    headers = c.names("AccessControlAllowHeaders")
    if not headers:
        raise ConfigError(c.p("AccessControlAllowHeaders"), "at least one header name (or '*') is required")
    methods = c.names("AccessControlAllowMethods")
    for i, m in enumerate(methods):
        if m not in (*ALL_CORS_METHODS, "ALL"):
            raise ConfigError(f"{c.p('AccessControlAllowMethods')}.Items[{i}]",
                              f"must be one of {', '.join(ALL_CORS_METHODS)} or ALL, got {m!r}")
    if "ALL" in methods:
        methods = _PREFLIGHT_METHODS
    max_age = c.data.get("AccessControlMaxAgeSec")
    if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0):
        raise ConfigError(c.p("AccessControlMaxAgeSec"), f"must be a non-negative integer, got {max_age!r}")
    return CorsConfig(allow_origins=origins, allow_headers=headers, allow_methods=methods,
                      allow_credentials=c.bool_("AccessControlAllowCredentials"),
                      expose_headers=c.names("AccessControlExposeHeaders", required=False), max_age=max_age,
                      override=c.bool_("OriginOverride"),
                      origin_patterns=tuple(_origin_pattern(o) for o in origins if o != "*"))


def _parse_security(c: _Cfg) -> list[PolicyHeader]:
    out: list[PolicyHeader] = []
    if (csp := c.sub("ContentSecurityPolicy", ("Override", "ContentSecurityPolicy"))) is not None:
        value = csp.str_("ContentSecurityPolicy")
        if len(value) > 1783:
            raise ConfigError(csp.p("ContentSecurityPolicy"), "at most 1783 characters")
        out.append(PolicyHeader("Content-Security-Policy", value, csp.bool_("Override")))
    if (cto := c.sub("ContentTypeOptions", ("Override",))) is not None:
        out.append(PolicyHeader("X-Content-Type-Options", "nosniff", cto.bool_("Override")))
    if (fo := c.sub("FrameOptions", ("Override", "FrameOption"))) is not None:
        option = fo.str_("FrameOption")
        if option not in ("DENY", "SAMEORIGIN"):
            raise ConfigError(fo.p("FrameOption"), "must be DENY or SAMEORIGIN")
        out.append(PolicyHeader("X-Frame-Options", option, fo.bool_("Override")))
    if (rp := c.sub("ReferrerPolicy", ("Override", "ReferrerPolicy"))) is not None:
        value = rp.str_("ReferrerPolicy")
        if value not in _REFERRER:
            raise ConfigError(rp.p("ReferrerPolicy"), f"must be one of {', '.join(_REFERRER)}")
        out.append(PolicyHeader("Referrer-Policy", value, rp.bool_("Override")))
    if (sts := c.sub("StrictTransportSecurity", ("Override", "IncludeSubdomains", "Preload",
                                                 "AccessControlMaxAgeSec"))) is not None:
        max_age = sts.data.get("AccessControlMaxAgeSec")
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
            raise ConfigError(sts.p("AccessControlMaxAgeSec"), "required: the max-age value in seconds")
        value = f"max-age={max_age}"
        if sts.bool_("IncludeSubdomains", required=False):
            value += "; includeSubDomains"
        if sts.bool_("Preload", required=False):
            value += "; preload"
        out.append(PolicyHeader("Strict-Transport-Security", value, sts.bool_("Override")))
    if (xss := c.sub("XSSProtection", ("Override", "Protection", "ModeBlock", "ReportUri"))) is not None:
        on, block, report = xss.bool_("Protection"), xss.bool_("ModeBlock", required=False), xss.str_(
            "ReportUri", required=False)
        if block and report:
            raise ConfigError(xss.path, "ModeBlock and ReportUri cannot both be set")
        if not on and (block or report):
            raise ConfigError(xss.path, "ModeBlock and ReportUri need Protection true")
        value = "1" if on else "0"
        value += "; mode=block" if block else f"; report={report}" if report else ""
        out.append(PolicyHeader("X-XSS-Protection", value, xss.bool_("Override")))
    return out


def parse_response_headers_policy_config(policy_id: str, cfg: Any, path: str) -> ResponseHeadersPolicy:
    """A ``ResponseHeadersPolicyConfig`` (optionally wrapped as get-response-headers-policy-config prints it)."""
    if isinstance(cfg, Mapping) and "ResponseHeadersPolicyConfig" in cfg:
        path, cfg = f"{path}.ResponseHeadersPolicyConfig", cfg["ResponseHeadersPolicyConfig"]
    c = _Cfg(cfg, path, ("Name", "Comment", "CorsConfig", "SecurityHeadersConfig", "ServerTimingHeadersConfig",
                         "CustomHeadersConfig", "RemoveHeadersConfig"))
    name = c.str_("Name")
    if not name or len(name) > 128:
        raise ConfigError(c.p("Name"), "required, at most 128 characters")
    cors = None
    if (cc := c.sub("CorsConfig", ("AccessControlAllowOrigins", "AccessControlAllowHeaders",
                                   "AccessControlAllowMethods", "AccessControlAllowCredentials",
                                   "AccessControlExposeHeaders", "AccessControlMaxAgeSec", "OriginOverride"))):
        cors = _parse_cors(cc)
    headers: list[PolicyHeader] = []
    if (sc := c.sub("SecurityHeadersConfig", ("XSSProtection", "FrameOptions", "ReferrerPolicy",
                                              "ContentSecurityPolicy", "ContentTypeOptions",
                                              "StrictTransportSecurity"))):
        headers += _parse_security(sc)
    if (ch := c.sub("CustomHeadersConfig", ("Quantity", "Items"))) is not None:
        for ipath, item in _custom_items(ch):
            h = _Cfg(item, ipath, ("Header", "Value", "Override"))
            name_ = h.str_("Header")
            if not _TOKEN.match(name_):
                raise ConfigError(h.p("Header"), f"{name_!r} is not a header name")
            if any(x.name.lower() == name_.lower() for x in headers):
                raise ConfigError(h.p("Header"), f"{name_} is already set by this policy")
            headers.append(PolicyHeader(name_, h.str_("Value"), h.bool_("Override")))
    remove: set[str] = set()
    if (rh := c.sub("RemoveHeadersConfig", ("Quantity", "Items"))) is not None:
        for ipath, item in _custom_items(rh):
            h = _Cfg(item, ipath, ("Header",))
            lname = h.str_("Header").lower()
            if lname in UNREMOVABLE or not _TOKEN.match(lname):
                raise ConfigError(h.p("Header"), f"{h.str_('Header')!r} cannot be removed by a response headers "
                                                 "policy")
            remove.add(lname)
    timing, rate = False, 0.0
    if (st := c.sub("ServerTimingHeadersConfig", ("Enabled", "SamplingRate"))) is not None:
        timing = st.bool_("Enabled")
        raw = st.data.get("SamplingRate", 0.0 if not timing else None)
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not 0 <= raw <= 100 or round(raw, 4) != raw:
            raise ConfigError(st.p("SamplingRate"), "required when Enabled: a percentage 0-100 with at most four "
                                                    "decimal places")
        rate = float(raw)
    return ResponseHeadersPolicy(id=policy_id, name=name, cors=cors, headers=tuple(headers), remove=frozenset(remove),
                                 server_timing=timing, sampling_rate=rate)


def _custom_items(c: _Cfg) -> list[tuple[str, Any]]:
    return [(f"{c.path}.Items[{i}]", v) for i, v in enumerate(items(dict(c.data), c.path))]
