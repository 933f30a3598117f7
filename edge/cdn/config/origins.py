"""The distribution's origins: ``Origins.Items`` parsed into :class:`OriginSpec` records (custom, S3 and VPC origins),
each with where it is really reached locally (``[origins]`` in the settings), and multi-tenant ``{{parameter}}``
placeholders replaced by their default values.

Fields: "Origin" in the CloudFront API Reference (https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_Origin.html).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.cdn.config.fields import notice
from edge.cdn.config.policies import ConfigError, is_empty, items, str_items
from edge.cdn.config.reader import Obj
from edge.cdn.config.settings import OriginTarget, Settings
from edge.cdn.models import CustomOrigin, S3Origin

__all__ = ["ORIGIN_SHIELD_REGIONS", "OriginSpec", "parse_origins", "s3_region", "tenant_parameters"]

# The AWS Regions CloudFront offers Origin Shield in ("Choosing the AWS Region for Origin Shield" in "Using Amazon
# CloudFront Origin Shield", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/origin-shield.html).
ORIGIN_SHIELD_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1",
    "ap-southeast-2", "eu-central-1", "eu-west-1", "eu-west-2", "sa-east-1",
})
_REGION_CODE = re.compile(r"^[a-z]{2}-[a-z]+-\d$")  # OriginShieldRegion's pattern in the API Reference

_PARAM = re.compile(r"\{\{([A-Za-z0-9_-]+)\}\}")


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
    shield_region: str = ""  # OriginShield.OriginShieldRegion when Enabled ("": no Origin Shield; edge.cdn.tiers)

    def to_edge_origin(self, viewer_protocol: str = "http") -> CustomOrigin | S3Origin:
        """The Lambda@Edge ``origin`` record (models.CustomOrigin/S3Origin) for a request.

        ``CustomOrigin.connect_host`` is ``"host:port"`` of the local target.
        """
        if self.is_s3:
            return S3Origin(domain_name=self.domain_name, path=self.path,
                            auth_method="origin-access-identity" if self.s3_oai else "none",
                            region=s3_region(self.domain_name), custom_headers=self.custom_headers,
                            origin_id=self.id)
        proto = viewer_protocol if self.protocol_policy == "match-viewer" else self.protocol_policy[:-5]
        port = self.https_port if proto == "https" else self.http_port
        return CustomOrigin(domain_name=self.domain_name, port=port, protocol=proto, path=self.path,
                            read_timeout=self.read_timeout, keepalive_timeout=self.keepalive_timeout,
                            custom_headers=self.custom_headers, ssl_protocols=self.ssl_protocols,
                            origin_id=self.id, connect_host=f"{self.connect_host}:{self.connect_port}")


def tenant_parameters(o: Obj) -> dict[str, str]:
    """Multi-tenant ``TenantConfig.ParameterDefinitions``: name -> DefaultValue, used for ``{{name}}`` in origins
    ("Multi-tenant distributions", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/distribution-config-options.html)."""
    tc = o.data.get("TenantConfig")
    if not isinstance(tc, Mapping):
        return {}
    defs = tc.get("ParameterDefinitions")
    if isinstance(defs, Mapping):  # tolerate the {Quantity, Items} spelling
        defs = defs.get("Items") or []
    out: dict[str, str] = {}
    for i, d in enumerate(defs or []):
        path = f"{o.p('TenantConfig')}.ParameterDefinitions[{i}]"
        if not isinstance(d, Mapping) or not isinstance(d.get("Name"), str):
            raise ConfigError(path, "must be an object with Name and Definition")
        schema = (d.get("Definition") or {}).get("StringSchema") or {}
        default = schema.get("DefaultValue", "") if isinstance(schema, Mapping) else ""
        out[d["Name"]] = default if isinstance(default, str) else ""
    return out


def _substitute(value: str, params: Mapping[str, str], path: str, notes: list[str]) -> str:
    """``{{name}}`` placeholders of a multi-tenant origin replaced by the parameters' default values."""
    if "{{" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in params:
            raise ConfigError(path, f"{{{{{m.group(1)}}}}} is not a TenantConfig parameter")
        return params[m.group(1)]

    out = _PARAM.sub(one, value)
    notes.append(f"{path}: multi-tenant {value!r} served as {out!r} (the parameters' DefaultValue)")
    return out


def parse_origins(o: Obj, settings: Settings, params: Mapping[str, str], notes: list[str]) -> dict[str, OriginSpec]:
    lst = items(o.raw("Origins"), o.p("Origins"))
    if not lst:
        raise ConfigError(o.p("Origins"), "at least one origin is required")
    out: dict[str, OriginSpec] = {}
    for i, item in enumerate(lst):
        spec = _parse_origin(Obj(item, f"{o.p('Origins')}.Items[{i}]"), settings, params, notes)
        if spec.id in out:
            raise ConfigError(f"{o.p('Origins')}.Items[{i}].Id", f"duplicate origin Id {spec.id!r}")
        out[spec.id] = spec
    return out


def _origin_shield(o: Obj) -> str:
    """``Origin.OriginShield {Enabled, OriginShieldRegion}`` ("OriginShield" in the API Reference,
    https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_OriginShield.html): the shield's Region when
    enabled, "" otherwise. The Region is required when enabled and must be one CloudFront offers Origin Shield in."""
    raw = o.raw("OriginShield")
    if raw is None or is_empty(raw):
        return ""
    so = Obj(raw, o.p("OriginShield"))
    enabled = so.bool_("Enabled", False)
    if "Enabled" not in so.data:
        raise ConfigError(so.p("Enabled"), "required (true or false)")
    region = so.raw("OriginShieldRegion")
    so.reject_rest()
    if not enabled:
        return ""
    if not isinstance(region, str) or not region:
        raise ConfigError(so.p("OriginShieldRegion"), "required when Enabled is true; next step: name the AWS Region "
                          f"closest to your origin, one of {', '.join(sorted(ORIGIN_SHIELD_REGIONS))}")
    if len(region) > 32 or not _REGION_CODE.match(region) or region not in ORIGIN_SHIELD_REGIONS:
        raise ConfigError(so.p("OriginShieldRegion"), f"{region!r} is not a Region CloudFront offers Origin Shield in; "
                          f"next step: use one of {', '.join(sorted(ORIGIN_SHIELD_REGIONS))} (the Region code, e.g. "
                          "us-east-2, not its name)")
    return region


def _parse_origin(o: Obj, settings: Settings, params: Mapping[str, str], notes: list[str]) -> OriginSpec:
    oid = o.str_("Id", required=True)
    domain = _substitute(o.str_("DomainName", required=True), params, o.p("DomainName"), notes).lower()
    opath = _substitute(o.str_("OriginPath", ""), params, o.p("OriginPath"), notes)
    if opath and (not opath.startswith("/") or opath.endswith("/")):
        raise ConfigError(o.p("OriginPath"), "must start with '/' and not end with '/'")
    headers = []
    for i, h in enumerate(items(o.raw("CustomHeaders"), o.p("CustomHeaders"), required=False)):
        ho = Obj(h, f"{o.p('CustomHeaders')}.Items[{i}]")
        headers.append((ho.str_("HeaderName", required=True), ho.str_("HeaderValue", required=True)))
        ho.reject_rest()
    if len(headers) > 10 and not settings.edge.relax_limits:
        raise ConfigError(o.p("CustomHeaders"), "at most 10 origin custom headers (quota)")
    attempts = o.int_("ConnectionAttempts", 3, 1, 3)
    ctimeout = o.int_("ConnectionTimeout", 10, 1, 10)
    shield = _origin_shield(o)
    o.notices("Origin", ("OriginAccessControlId", "ResponseCompletionTimeout"), notes)
    target = settings.origin_target(domain) or OriginTarget()
    custom, s3, vpc = o.raw("CustomOriginConfig"), o.raw("S3OriginConfig"), o.raw("VpcOriginConfig")
    spec = functools.partial(OriginSpec, id=oid, domain_name=domain, path=opath, custom_headers=tuple(headers),
                             connection_attempts=attempts, connection_timeout=float(ctimeout), shield_region=shield)
    if sum(x is not None for x in (custom, s3, vpc)) != 1:
        raise ConfigError(o.path, "exactly one of CustomOriginConfig, S3OriginConfig and VpcOriginConfig is required")
    o.reject_rest(shape="Origin")
    if vpc is not None:
        return _vpc_origin(Obj(vpc, o.p("VpcOriginConfig")), spec, target, domain, notes)
    if s3 is not None:
        so = Obj(s3, o.p("S3OriginConfig"))
        oai = so.str_("OriginAccessIdentity", "")
        so.int_("OriginReadTimeout", 30, 1, 120)
        so.reject_rest(shape="S3OriginConfig")
        if target.host:
            return spec(is_s3=True, s3_oai=oai, connect_host=target.host, connect_port=target.port)
        return spec(is_s3=True, s3_oai=oai, s3_directory=target.directory, connect_url=target.url)
    co = Obj(custom, o.p("CustomOriginConfig"))
    policy = co.str_("OriginProtocolPolicy", required=True)
    if policy not in ("http-only", "https-only", "match-viewer"):
        raise ConfigError(co.p("OriginProtocolPolicy"), "must be http-only, https-only or match-viewer")
    http_port, https_port = co.int_("HTTPPort", 80, 1, 65535), co.int_("HTTPSPort", 443, 1, 65535)
    ssl = tuple(str_items(co.raw("OriginSslProtocols"), co.p("OriginSslProtocols"), required=False)) or ("TLSv1.2",)
    read_t = co.int_("OriginReadTimeout", 30, 1, 180)
    keep_t = co.int_("OriginKeepaliveTimeout", 5, 1, 180)
    co.notices("CustomOriginConfig", ("IpAddressType", "OriginMtlsConfig", "OriginHttpVersion"), notes)
    co.reject_rest(shape="CustomOriginConfig")
    default_port = http_port if policy != "https-only" else https_port
    return spec(is_s3=False, protocol_policy=policy, http_port=http_port, https_port=https_port,
                read_timeout=float(read_t), keepalive_timeout=float(keep_t), ssl_protocols=ssl,
                connect_host=target.host or domain, connect_port=target.port or default_port, connect_url=target.url)


def _vpc_origin(vo: Obj, spec: functools.partial[OriginSpec], target: OriginTarget, domain: str,
                notes: list[str]) -> OriginSpec:
    """A ``VpcOriginConfig`` origin: the VPC origin resource (its protocol and ports) does not exist locally, so
    ``DomainName`` is reached like an http-only custom origin on port 80 unless ``[origins]`` maps it ("Restrict access
    with VPC origins", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-vpc-origins.html)."""
    vpc_id = vo.str_("VpcOriginId", required=True)
    read_t = vo.int_("OriginReadTimeout", 30, 1, 180)
    keep_t = vo.int_("OriginKeepaliveTimeout", 5, 1, 180)
    vo.notices("VpcOriginConfig", ("OwnerAccountId", "OriginHttpVersion"), notes)
    vo.reject_rest(shape="VpcOriginConfig")
    where = target.url or (f"{target.host}:{target.port}" if target.host else f"{domain}:80 (no [origins] entry)")
    notes.append(notice("VpcOriginConfig.VpcOriginId", vo.p("VpcOriginId"), f"{vpc_id} -> {where}"))
    return spec(is_s3=False, protocol_policy="http-only", read_timeout=float(read_t), keepalive_timeout=float(keep_t),
                connect_host=target.host or domain, connect_port=target.port or 80, connect_url=target.url)


def s3_region(domain: str) -> str:
    m = re.search(r"\.s3[.-]([a-z0-9-]+)\.amazonaws\.com$", domain)
    return m.group(1) if m else "us-east-1"
