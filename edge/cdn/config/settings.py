"""Local settings: one small TOML file (``--settings FILE``) parsed once into frozen dataclasses.

Everything that is *local* (where POPs listen, where an origin domain really lives, cache budgets, emulation
switches, functions to deploy) lives here; the distribution itself stays a genuine CloudFront
``DistributionConfig`` (see :mod:`edge.cdn.config.distribution`). Validation happens at load: every error is a
:class:`ConfigError` naming the key (``pops[1].port``). ``deploy/edgelab.example.toml`` documents every key.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edge.cdn.config.geo import ViewerLocation, default_location, parse_location
from edge.cdn.config.policies import CachePolicy, ConfigError, OriginRequestPolicy, parse_cache_policy_config
from edge.cdn.config.response_headers import ResponseHeadersPolicy, parse_response_headers_policy_config
from edge.cdn.config.signers import Signers, parse_signers
from edge.invocation.models import AsyncSettings

# Simulated one-way origin latency per region, used when a POP does not set origin_latency_ms.
DEFAULT_REGION_LATENCY_MS: Mapping[str, float] = MappingProxyType({
    "us-east-1": 0.0, "us-east-2": 12.0, "us-west-2": 35.0, "eu-west-1": 40.0, "eu-central-1": 45.0,
    "ap-northeast-1": 80.0, "ap-southeast-1": 110.0, "ap-southeast-2": 100.0, "sa-east-1": 60.0,
})
LAMBDA_EDGE_EXPECTED_REGIONS = frozenset(DEFAULT_REGION_LATENCY_MS)


@dataclass(frozen=True, slots=True)
class PopSettings:
    """One simulated edge location."""

    name: str  # "IAD": also the X-Amz-Cf-Pop prefix
    region: str  # AWS region whose Lambda replicas this POP uses
    host: str = "127.0.0.1"
    port: int = 8081
    origin_latency_ms: float = 0.0  # added to every origin fetch (simulates distance to the origin)
    cache_max_bytes: int | None = None  # overrides [cache].max_bytes for this POP
    location: ViewerLocation | None = None  # where its simulated viewers are (None: unknown; see config/geo.py)
    https_port: int | None = None  # the HTTPS listener (edge.cdn.server.tls); None: none, 0: any free port
    rec_region: str = ""  # the regional edge cache its misses go to ("": the POP's own region; edge.cdn.tiers)

    @property
    def tier_region(self) -> str:
        """The region of the regional edge cache this POP's cacheable misses go to."""
        return self.rec_region or self.region


@dataclass(frozen=True, slots=True)
class OriginTarget:
    """Where a distribution's origin domain is really reached: ``host:port`` (custom) or a dir/URL (S3)."""

    host: str = ""
    port: int = 0
    directory: Path | None = None  # S3 origin served from a local directory
    url: str | None = None  # S3 origin (or any origin) proxied to this base URL


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Cache budgets and the local knobs of the cache policy."""

    max_bytes: int = 64 * 1024 * 1024  # per-POP byte budget of the in-memory cache
    max_object_bytes: int = 8 * 1024 * 1024  # larger bodies are streamed through and never stored
    heuristic_freshness: bool = False  # RFC 9111 §4.2.2 heuristic (CloudFront uses DefaultTTL instead)
    heuristic_percent: float = 10.0  # of (Date - Last-Modified), when heuristic_freshness is on
    heuristic_cap_s: float = 86_400.0
    error_caching_min_ttl_s: float = 10.0  # CloudFront's default ErrorCachingMinTTL


@dataclass(frozen=True, slots=True)
class TierSettings:
    """``[tiers]``: the regional edge caches (one per region of the POPs) and the Origin Shield tiers
    (:mod:`edge.cdn.tiers`). ``enabled = false`` sends every POP miss straight to the origin (edgelab before tiers)."""

    enabled: bool = True
    cache_max_bytes: int | None = None  # each tier's cache budget (default: [cache].max_bytes)


@dataclass(frozen=True, slots=True)
class EdgeSwitches:
    """Emulation switches (all default to CloudFront's real behaviour, or to what a viewer cannot tell from it)."""

    allow_unpublished_qualifiers: bool = False  # permit $LATEST / aliases in function associations
    relax_limits: bool = False  # do not enforce Lambda@Edge size/time limits
    debug_headers: bool = False  # add X-Edgelab-* diagnostic response headers
    viewer_location_header: bool = False  # a request may say where its viewer is (X-Edgelab-Viewer-Location)
    # a CloudFront function's repeated event answered from memory when the call read nothing that varies between
    # requests (edge.cdn.cloudfront_functions.engine, "Repeated events"); false: every request runs the function
    cff_memo: bool = True


@dataclass(frozen=True, slots=True)
class ViewerSettings:
    """``[viewer]``: limits of the POPs' viewer connections (``edge.cdn.server.limits``; README "Viewer connection
    limits and timeouts" says which CloudFront value each mirrors). Per POP process, HTTP and HTTPS together."""

    max_connections: int = 10_000  # open viewer connections; beyond it idle ones are closed, else new ones refused
    header_timeout_s: float = 10.0  # a request head (line + headers) must arrive within this; else closed
    body_timeout_s: float = 30.0  # longest pause between two reads of a request body; else 408 and closed
    keepalive_timeout_s: float = 60.0  # an idle keep-alive connection is closed after this


@dataclass(frozen=True, slots=True)
class FunctionDecl:
    """A function to create (and publish) in the local registry at start-up."""

    name: str
    dir: Path  # absolute (resolved relative to the settings file)
    handler: str = "index.handler"
    runtime: str = "python3.11"
    memory: int = 128
    timeout: float = 5.0
    publish: bool = True


@dataclass(frozen=True, slots=True)
class CloudFrontFunctionDecl:
    """A CloudFront function to create (or update) and publish at start-up from ``dir``: ``index.js`` and an optional
    ``cloudfront-function.json`` (``runtime``, ``comment``, ``key_value_store``); see
    ``edge.control.stack.declared_cff``."""

    name: str
    dir: Path  # absolute (resolved relative to the settings file)


@dataclass(frozen=True, slots=True)
class ScheduleDecl:
    """A scheduled rule to keep in the control process's EventBridge store (``[[schedules]]``): ``schedule`` is
    a ``rate(...)`` / ``cron(...)`` expression (validated by the control layer), ``function`` a function name,
    ``name:qualifier`` or ARN, ``input`` constant JSON text replacing the scheduled event."""

    name: str
    schedule: str
    function: str
    input: str | None = None
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class LambdaSettings:
    idle_ttl_s: float = 300.0  # a warm environment idle this long is retired
    account_concurrency: Mapping[str, int] = field(default_factory=dict)  # region -> limit (default 1000)
    # the realistic cold-start model (edge.invocation.execution.coldstart): modelled Init delays, off by default
    realistic_cold_starts: bool = False
    cold_start_seed: int = 0  # its jitter's seed (same seed, same delays)

    def concurrency_for(self, region: str) -> int:
        return self.account_concurrency.get(region, 1000)


@dataclass(frozen=True, slots=True)
class Settings:
    pops: tuple[PopSettings, ...]
    origins: Mapping[str, OriginTarget] = field(default_factory=dict)  # origin DomainName -> local target
    cache: CacheSettings = CacheSettings()
    cache_policies: Mapping[str, CachePolicy] = field(default_factory=dict)  # by id AND by name
    # custom origin request policies by id (the CloudFront API's, edge.control.cloudfront_api.policies)
    origin_request_policies: Mapping[str, OriginRequestPolicy] = field(default_factory=dict)
    response_headers_policies: Mapping[str, ResponseHeadersPolicy] = field(default_factory=dict)  # by id AND name
    edge: EdgeSwitches = EdgeSwitches()
    viewer: ViewerSettings = ViewerSettings()  # [viewer]: connection limits and timeouts of the POPs' listeners
    tiers: TierSettings = TierSettings()  # [tiers]: regional edge caches and Origin Shield (edge.cdn.tiers)
    signers: Signers = field(default_factory=Signers)  # [public_keys], [key_groups], [trusted_signers]: signed URLs (config/signers.py)
    functions: tuple[FunctionDecl, ...] = ()
    schedules: tuple[ScheduleDecl, ...] = ()  # [[schedules]]: EventBridge-style scheduled rules
    cloudfront_functions: tuple[CloudFrontFunctionDecl, ...] = ()  # [[cloudfront_functions]]
    lambda_: LambdaSettings = LambdaSettings()
    async_: AsyncSettings = AsyncSettings()  # [async]: asynchronous invocation delivery
    state_dir: Path = Path(".edgelab")
    api_port: int = 9001
    distribution: Path | None = None  # default distribution config file
    # [[api.auth]]: access key id -> secret access key; when set, the control port's AWS APIs require SigV4
    api_auth: Mapping[str, str] = field(default_factory=dict)

    def pop(self, name: str) -> PopSettings:
        for p in self.pops:
            if p.name == name:
                return p
        raise KeyError(name)

    def origin_target(self, domain_name: str) -> OriginTarget | None:
        return self.origins.get(domain_name.lower())


DEFAULT_POPS = (
    PopSettings("IAD", "us-east-1", port=8081, origin_latency_ms=DEFAULT_REGION_LATENCY_MS["us-east-1"],
                location=default_location("IAD", "us-east-1"), https_port=8443),
    PopSettings("FRA", "eu-central-1", port=8082, origin_latency_ms=DEFAULT_REGION_LATENCY_MS["eu-central-1"],
                location=default_location("FRA", "eu-central-1"), https_port=8444),
    PopSettings("NRT", "ap-northeast-1", port=8083, origin_latency_ms=DEFAULT_REGION_LATENCY_MS["ap-northeast-1"],
                location=default_location("NRT", "ap-northeast-1"), https_port=8445),
)


class _Table:
    """A TOML table being validated: typed getters that name ``path.key`` in errors and reject unknown keys."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, "must be a table")
        self.data, self.path, self.seen = data, path, set[str]()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def get(self, k: str, types: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(k)
        if k not in self.data:
            return default
        v = self.data[k]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ConfigError(self.key(k), f"expected {_tname(types)}, got a boolean")
        if not isinstance(v, types):
            raise ConfigError(self.key(k), f"expected {_tname(types)}, got {type(v).__name__}")
        return v

    def num(self, k: str, default: float, *, lo: float = 0, hi: float = float("inf")) -> float:
        v = self.get(k, (int, float), default)
        if not lo <= v <= hi:
            raise ConfigError(self.key(k), f"must be between {lo} and {hi}, got {v}")
        return float(v)

    def int_(self, k: str, default: int | None, *, lo: int = 0, hi: int = 2**62) -> Any:
        v = self.get(k, int, default)
        if v is not None and not lo <= v <= hi:
            raise ConfigError(self.key(k), f"must be between {lo} and {hi}, got {v}")
        return v

    def done(self) -> None:
        for k in self.data:
            if k not in self.seen:
                raise ConfigError(self.key(k), "unknown setting")


def _tname(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join({"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                        "list": "array", "dict": "table"}.get(t.__name__, t.__name__) for t in ts)


def _port(t: _Table, k: str, default: int) -> int:
    return int(t.int_(k, default, lo=0, hi=65535))


def _parse_pop(data: Any, path: str) -> PopSettings:
    t = _Table(data, path)
    name = t.get("name", str, None)
    if not name or not name.isalnum():
        raise ConfigError(t.key("name"), "required, letters and digits only (e.g. IAD)")
    region = t.get("region", str, None)
    if not region:
        raise ConfigError(t.key("region"), "required (e.g. us-east-1)")
    latency = t.num("origin_latency_ms", DEFAULT_REGION_LATENCY_MS.get(region, 0.0), hi=60_000)
    loc = t.get("location", dict, None)
    pop = PopSettings(name=name.upper(), region=region, host=t.get("host", str, "127.0.0.1"), port=_port(t, "port", 0),
                      origin_latency_ms=latency, cache_max_bytes=t.int_("cache_max_bytes", None, lo=0),
                      location=default_location(name, region) if loc is None else parse_location(loc, t.key("location")),
                      https_port=t.int_("https_port", None, lo=0, hi=65535),
                      rec_region=t.get("rec_region", str, ""))
    t.done()
    return pop


def _parse_origins(data: Any, base: Path) -> dict[str, OriginTarget]:
    t = _Table(data, "origins")
    out: dict[str, OriginTarget] = {}
    for domain in list(t.data):
        value = t.get(domain, str, "")
        out[domain.lower()] = parse_origin_target(value, t.key(domain), base)
    return out


def local_path(value: str, base: Path, key: str) -> Path:
    """A path of the local machine from the settings: ``~`` expanded, relative to ``base``, resolved. A value no
    file system accepts (a NUL byte) is a ConfigError naming ``key``, not a crash."""
    if "\x00" in value:
        raise ConfigError(key, "a path cannot contain a NUL character")
    d = Path(value).expanduser()
    return (d if d.is_absolute() else base / d).resolve()


def parse_origin_target(value: str, path: str, base: Path) -> OriginTarget:
    """``"host:port"`` | ``"http://host:port/prefix"`` | ``"dir:relative/or/absolute/path"``."""
    if value.startswith("dir:"):
        return OriginTarget(directory=local_path(value[4:], base, path))
    if value.startswith(("http://", "https://")):
        return OriginTarget(url=value.rstrip("/"))
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, f"expected host:port, http(s)://host:port or dir:PATH, got {value!r}")
    return OriginTarget(host=host.strip("[]"), port=int(port))


def _parse_cache(data: Any) -> CacheSettings:
    t = _Table(data, "cache")
    d = CacheSettings()
    c = CacheSettings(
        max_bytes=t.int_("max_bytes", d.max_bytes, lo=0),
        max_object_bytes=t.int_("max_object_bytes", d.max_object_bytes, lo=0),
        heuristic_freshness=t.get("heuristic_freshness", bool, d.heuristic_freshness),
        heuristic_percent=t.num("heuristic_percent", d.heuristic_percent, hi=100),
        heuristic_cap_s=t.num("heuristic_cap_s", d.heuristic_cap_s),
        error_caching_min_ttl_s=t.num("error_caching_min_ttl_s", d.error_caching_min_ttl_s, hi=31_536_000),
    )
    t.done()
    return c


def _parse_cache_policies(data: Any) -> dict[str, CachePolicy]:
    t = _Table(data, "cache_policies")
    out: dict[str, CachePolicy] = {}
    for ref in list(t.data):
        t.seen.add(ref)
        p = parse_cache_policy_config(ref, t.data[ref], t.key(ref))
        out[ref] = p
        out.setdefault(p.name, p)
    return out


def _parse_response_headers_policies(data: Any) -> dict[str, ResponseHeadersPolicy]:
    """``[response_headers_policies]``: policy id -> ``ResponseHeadersPolicyConfig`` (custom policies)."""
    t = _Table(data, "response_headers_policies")
    out: dict[str, ResponseHeadersPolicy] = {}
    for ref in list(t.data):
        t.seen.add(ref)
        p = parse_response_headers_policy_config(ref, t.data[ref], t.key(ref))
        out[ref] = p
        out.setdefault(p.name, p)
    return out


_EDGE_DEFAULTS = EdgeSwitches()


def _parse_edge(data: Any) -> EdgeSwitches:
    t = _Table(data, "edge")
    e = EdgeSwitches(**{k: t.get(k, bool, getattr(_EDGE_DEFAULTS, k)) for k in (
        "allow_unpublished_qualifiers", "relax_limits", "debug_headers", "viewer_location_header", "cff_memo")})
    t.done()
    return e


def _parse_viewer(data: Any) -> ViewerSettings:
    t = _Table(data, "viewer")
    d = ViewerSettings()
    v = ViewerSettings(max_connections=int(t.int_("max_connections", d.max_connections, lo=1, hi=1_000_000)),
                       header_timeout_s=t.num("header_timeout_s", d.header_timeout_s, lo=0.05, hi=3600),
                       body_timeout_s=t.num("body_timeout_s", d.body_timeout_s, lo=0.05, hi=3600),
                       keepalive_timeout_s=t.num("keepalive_timeout_s", d.keepalive_timeout_s, lo=0.05, hi=3600))
    t.done()
    return v


def _parse_tiers(data: Any) -> TierSettings:
    t = _Table(data, "tiers")
    cap = t.int_("cache_max_bytes", None, lo=0)
    tiers = TierSettings(enabled=t.get("enabled", bool, True), cache_max_bytes=None if cap is None else int(cap))
    t.done()
    return tiers


def _parse_function(data: Any, path: str, base: Path) -> FunctionDecl:
    t = _Table(data, path)
    name = t.get("name", str, "")
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name) or len(name) > 64:
        raise ConfigError(t.key("name"), "required: 1-64 letters, digits, '-' or '_'")
    f = FunctionDecl(
        name=name, dir=local_path(t.get("dir", str, name), base, t.key("dir")),
        handler=t.get("handler", str, "index.handler"), runtime=t.get("runtime", str, "python3.11"),
        memory=int(t.int_("memory", 128, lo=128, hi=10_240)), timeout=t.num("timeout", 5.0, lo=1, hi=900),
        publish=t.get("publish", bool, True),
    )
    if "." not in f.handler:
        raise ConfigError(t.key("handler"), "must look like module.function")
    t.done()
    return f


def _parse_cloudfront_function(data: Any, path: str, base: Path) -> CloudFrontFunctionDecl:
    t = _Table(data, path)
    name = t.get("name", str, "")
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name) or len(name) > 64:
        raise ConfigError(t.key("name"), "required: 1-64 letters, digits, '-' or '_' (CloudFront's function names)")
    d = local_path(t.get("dir", str, name), base, t.key("dir"))
    t.done()
    return CloudFrontFunctionDecl(name=name, dir=d)


def _parse_schedule(data: Any, path: str) -> ScheduleDecl:
    t = _Table(data, path)
    d = ScheduleDecl(
        name=t.get("name", str, ""), schedule=t.get("schedule", str, ""), function=t.get("function", str, ""),
        input=t.get("input", str, None), enabled=t.get("enabled", bool, True),
        description=t.get("description", str, ""),
    )
    t.done()
    for key in ("name", "schedule", "function"):
        if not getattr(d, key):
            raise ConfigError(t.key(key), "required")
    if d.input is not None:
        try:
            json.loads(d.input)
        except ValueError:
            raise ConfigError(t.key("input"), "must be JSON text (the event the function receives)") from None
    return d


def _parse_lambda(data: Any) -> LambdaSettings:
    t = _Table(data, "lambda")
    conc = t.get("account_concurrency", (dict, int), {})
    if isinstance(conc, int):
        conc = dict.fromkeys(LAMBDA_EDGE_EXPECTED_REGIONS, conc)
    ct = _Table(conc, t.key("account_concurrency"))
    limits = {r: int(ct.int_(r, 1000, lo=1, hi=1_000_000)) for r in list(conc)}
    ls = LambdaSettings(t.num("idle_ttl_s", 300.0, hi=86_400), MappingProxyType(limits),
                        t.get("realistic_cold_starts", bool, False), int(t.int_("cold_start_seed", 0)))
    t.done()
    return ls


def _parse_async(data: Any) -> AsyncSettings:
    t = _Table(data, "async")
    d = AsyncSettings()
    a = AsyncSettings(
        retry_backoff_scale=t.num("retry_backoff_scale", d.retry_backoff_scale, lo=0.0, hi=100.0),
        throttle_backoff_base_s=t.num("throttle_backoff_base_s", d.throttle_backoff_base_s, lo=0.001, hi=1e7),  # before scaling
        throttle_backoff_max_s=t.num("throttle_backoff_max_s", d.throttle_backoff_max_s, lo=0.001, hi=1e7),
        delivery_concurrency=int(t.int_("delivery_concurrency", d.delivery_concurrency, lo=1, hi=1000)),
        poll_interval_s=t.num("poll_interval_s", d.poll_interval_s, lo=0.001, hi=60),
        destination_depth_limit=int(t.int_("destination_depth_limit", d.destination_depth_limit, lo=1, hi=1000)),
    )
    if a.throttle_backoff_max_s < a.throttle_backoff_base_s:
        raise ConfigError("async.throttle_backoff_max_s", "must be at least throttle_backoff_base_s")
    t.done()
    return a


def parse_settings(data: Mapping[str, Any], base: Path = Path(".")) -> Settings:
    """Validate an already-parsed TOML document; relative paths resolve against ``base``."""
    t = _Table(data, "")
    pops_data = t.get("pops", list, None)
    pops = DEFAULT_POPS if pops_data is None else tuple(
        _parse_pop(p, f"pops[{i}]") for i, p in enumerate(pops_data))
    if not pops:
        raise ConfigError("pops", "at least one POP is required")
    _check_unique_pops(pops)
    funcs = tuple(_parse_function(f, f"functions[{i}]", base) for i, f in enumerate(t.get("functions", list, [])))
    if len({f.name for f in funcs}) != len(funcs):
        raise ConfigError("functions", "function names must be unique")
    schedules = tuple(_parse_schedule(d, f"schedules[{i}]") for i, d in enumerate(t.get("schedules", list, [])))
    if len({d.name for d in schedules}) != len(schedules):
        raise ConfigError("schedules", "schedule names must be unique")
    cffs = tuple(_parse_cloudfront_function(f, f"cloudfront_functions[{i}]", base)
                 for i, f in enumerate(t.get("cloudfront_functions", list, [])))
    if len({f.name for f in cffs}) != len(cffs):
        raise ConfigError("cloudfront_functions", "function names must be unique")
    explicit_state = t.get("state_dir", str, None)  # absent: .edgelab/ in the working directory
    if explicit_state is not None and "\x00" in explicit_state:
        raise ConfigError("state_dir", "a path cannot contain a NUL character")
    state_dir = Path(explicit_state or ".edgelab").expanduser()
    dist = t.get("distribution", str, None)
    s = Settings(
        pops=pops,
        origins=MappingProxyType(_parse_origins(t.get("origins", dict, {}), base)),
        cache=_parse_cache(t.get("cache", dict, {})),
        cache_policies=MappingProxyType(_parse_cache_policies(t.get("cache_policies", dict, {}))),
        response_headers_policies=MappingProxyType(_parse_response_headers_policies(
            t.get("response_headers_policies", dict, {}))),
        edge=_parse_edge(t.get("edge", dict, {})),
        viewer=_parse_viewer(t.get("viewer", dict, {})),
        tiers=_parse_tiers(t.get("tiers", dict, {})),
        signers=parse_signers(t.get("public_keys", dict, {}), t.get("key_groups", dict, {}),
                              t.get("trusted_signers", dict, {}), base),
        functions=funcs,
        schedules=schedules,
        cloudfront_functions=cffs,
        lambda_=_parse_lambda(t.get("lambda", dict, {})),
        async_=_parse_async(t.get("async", dict, {})),
        state_dir=state_dir if state_dir.is_absolute() or explicit_state is None else (base / state_dir),
        api_port=_port(t, "api_port", 9001),
        distribution=None if dist is None else local_path(dist, base, "distribution"),
        api_auth=MappingProxyType(_parse_api(t.get("api", dict, {}))),
    )
    t.done()
    return s


_ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")


def _parse_api(data: Any) -> dict[str, str]:
    """``[api]``: ``auth`` = an array of ``{access_key_id, secret_access_key}`` tables (SigV4 keys of the control
    port's AWS APIs; empty: unsigned requests are accepted)."""
    t = _Table(data, "api")
    keys: dict[str, str] = {}
    for i, item in enumerate(t.get("auth", list, [])):
        kt = _Table(item, f"api.auth[{i}]")
        akid = kt.get("access_key_id", str, "")
        secret = kt.get("secret_access_key", str, "")
        kt.done()
        if not _ACCESS_KEY_ID.fullmatch(akid):
            raise ConfigError(kt.key("access_key_id"), "must be 16-128 upper-case letters and digits, as AWS access "
                                                       "key ids are (e.g. AKIAIOSFODNN7EXAMPLE)")
        if not secret or any(c.isspace() for c in secret):
            raise ConfigError(kt.key("secret_access_key"), "must be a non-empty string without spaces")
        if akid in keys:
            raise ConfigError(kt.key("access_key_id"), f"duplicate access key id {akid}")
        keys[akid] = secret
    t.done()
    return keys


def _check_unique_pops(pops: Sequence[PopSettings]) -> None:
    seen_names: set[str] = set()
    seen_ports: set[tuple[str, int]] = set()
    for i, p in enumerate(pops):
        if p.name in seen_names:
            raise ConfigError(f"pops[{i}].name", f"duplicate POP name {p.name}")
        if p.port and (p.host, p.port) in seen_ports:
            raise ConfigError(f"pops[{i}].port", f"{p.host}:{p.port} is already used by another POP")
        seen_names.add(p.name)
        seen_ports.add((p.host, p.port))


def load_settings(path: str | Path | None = None) -> Settings:
    """Read ``path`` (or return the defaults when None). Errors: :class:`ConfigError` naming the key."""
    if path is None:
        return parse_settings({})
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read settings file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"invalid TOML: {exc}") from None
    return parse_settings(data, p.resolve().parent)


def apply_pop_overrides(settings: Settings, overrides: Sequence[str]) -> Settings:
    """Apply ``--pop NAME=PORT`` (or ``NAME=HOST:PORT``, either with ``,HTTPS_PORT``) options; an unknown NAME is an
    error. Moving a POP without naming its HTTPS port turns its HTTPS listener off (its default port may be the
    one another stack uses)."""
    pops = list(settings.pops)
    for ov in overrides:
        name, sep, value = ov.partition("=")
        idx = next((i for i, p in enumerate(pops) if p.name == name.strip().upper()), None)
        if not sep or idx is None:
            known = ", ".join(p.name for p in pops)
            raise ConfigError(f"--pop {ov}", f"expected NAME=PORT with NAME one of {known}")
        value, comma, https = value.partition(",")
        host, _, port = value.rpartition(":")
        if not port.isdigit() or int(port) > 65535 or (comma and (not https.isdigit() or int(https) > 65535)):
            raise ConfigError(f"--pop {ov}", "PORT and HTTPS_PORT must be integers 0-65535")
        pops[idx] = replace(pops[idx], port=int(port), host=host or pops[idx].host,
                            https_port=int(https) if comma else None)
    _check_unique_pops(pops)
    return replace(settings, pops=tuple(pops))
