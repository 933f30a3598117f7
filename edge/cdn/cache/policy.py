"""The cache policy: RFC 9111 (shared cache) + CloudFront's TTL rules, as pure functions.

No I/O and no clock reads: ``now``, ``request_time`` and ``response_time`` are epoch seconds passed in.
Outcomes are values (:class:`StoreDecision` / :class:`NotStorable`, :class:`Hit` / :class:`Stale`), never
exceptions. The POP drives it:

1. lookup: ``entry = store.get(key, request_headers)``; ``evaluate(entry, now)`` -> ``Hit`` or
   ``Stale(REVALIDATE | SWR)``; no entry -> miss.
2. revalidate: ``conditional_headers(entry)``; on 304 ``merge_not_modified(...)`` (RefreshHit); on origin
   failure ``on_origin_error(entry, now, status)`` -> ``Stale(SIE)`` (serve stale) or None (pass the error).
3. store: ``storability(...)`` -> ``StoreDecision`` then ``build_entry(...)`` -> ``store.put``.
4. serve: :func:`edge.cdn.cache.ranges.serve_entry` (Age, HEAD, conditional viewer requests, Range).

CloudFront TTL rules (contract §5.3) replace RFC freshness where they differ: MinTTL/DefaultTTL/MaxTTL
clamping, MinTTL > 0 overriding no-store/private/no-cache, DefaultTTL instead of heuristics (heuristic
freshness only when enabled in the settings), error caching (contract §5.4).
"""

from __future__ import annotations

import calendar
import enum
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import TYPE_CHECKING

from edge.cdn.cache.keys import vary_names, vary_values
from edge.cdn.config.policies import DEVICE_HEADERS, CachePolicy

if TYPE_CHECKING:
    from edge.cdn.config.distribution import Behavior, Distribution
    from edge.cdn.config.settings import CacheSettings
    from edge.cdn.server.wire import HeaderBlock
from edge.cdn.models import header_all, header_get

Headers = Sequence[tuple[str, str]]

# Statuses stored for the behavior's DefaultTTL when the origin says nothing: RFC 9110 §15.1 "heuristically
# cacheable" (200, 203, 204, 300, 301, 410), and every redirect, which CloudFront caches "according to the settings
# in your CloudFront distribution and the headers in the response" - except 307 and 308, cached "only when you
# include the Cache-Control header" ("How CloudFront processes HTTP 3xx status codes from your origin",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-3xx-status-codes.html). 304 is a
# revalidation's answer, never an object.
CACHEABLE_BY_DEFAULT = frozenset({200, 203, 204, 300, 301, 302, 303, 305, 410})
REDIRECTS_NEEDING_CACHE_CONTROL = frozenset({307, 308})
# Contract §5.4: errors cached even without headers (ErrorCachingMinTTL), and errors cached only when the
# origin sends max-age/s-maxage. 416 is never cached.
ERRORS_ALWAYS_CACHED = frozenset({404, 414, 500, 501, 502, 503, 504})
ERRORS_CACHED_IF_EXPLICIT = frozenset({400, 403, 405, 412, 415})
# RFC 9111 §3.2 / §4.3.4: never replaced from a 304 (they describe the stored body, or the connection).
_DEVICE_HEADERS = frozenset(n.lower() for n in DEVICE_HEADERS)
_NOT_UPDATED = frozenset({"content-length", "content-encoding", "transfer-encoding", "content-range",
                          "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Parsed Cache-Control (RFC 9111 §5.2); request and response directives share one record.

    Delta-seconds that fail to parse count as 0 (stale); on duplicates the first occurrence wins (§4.2.1).
    """

    max_age: int | None = None
    s_maxage: int | None = None
    no_cache: bool = False  # unqualified no-cache
    no_cache_fields: tuple[str, ...] = ()  # no-cache="Set-Cookie": store without these fields
    no_store: bool = False
    private: bool = False  # unqualified private (shared caches must not store)
    private_fields: tuple[str, ...] = ()
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    stale_while_revalidate: int | None = None  # RFC 5861 §3
    stale_if_error: int | None = None  # RFC 5861 §4
    immutable: bool = False
    no_transform: bool = False
    only_if_cached: bool = False
    max_stale: int | None = None
    min_fresh: int | None = None


def _split_directives(values: Iterable[str]) -> list[tuple[str, str | None]]:
    """Comma-separated ``name[=value]`` items, honouring quoted strings (RFC 9110 §5.6)."""
    out: list[tuple[str, str | None]] = []
    for raw in values:
        buf: list[str] = []
        items: list[str] = []
        quoted = False
        for ch in raw:
            if ch == '"':
                quoted = not quoted
            if ch == "," and not quoted:
                items.append("".join(buf))
                buf = []
            else:
                buf.append(ch)
        items.append("".join(buf))
        for item in items:
            name, sep, value = item.strip().partition("=")
            if name.strip():
                out.append((name.strip().lower(), value.strip().strip('"') if sep else None))
    return out


def _delta(value: str | None) -> int:
    try:
        return min(max(0, int(value)), 2**31) if value is not None else 0  # RFC 9111 §1.2.2 cap
    except ValueError:
        return 0


_DELTA_DIRECTIVES = frozenset({"max-age", "s-maxage", "stale-while-revalidate", "stale-if-error", "max-stale",
                               "min-fresh"})
_FLAG_DIRECTIVES = frozenset({"no-store", "public", "must-revalidate", "proxy-revalidate", "immutable",
                              "no-transform", "only-if-cached"})


def parse_cache_control(values: Iterable[str]) -> CacheControl:
    """Parse every Cache-Control field line (pass ``header_all(headers, "cache-control")``)."""
    deltas: dict[str, int] = {}  # the first occurrence wins
    flags: set[str] = set()  # valueless directives seen, including unqualified no-cache / private
    fields: dict[str, tuple[str, ...]] = {"no-cache": (), "private": ()}  # no-cache="..." / private="..."
    for name, value in _split_directives(values):
        if name in _DELTA_DIRECTIVES:
            if name not in deltas:
                deltas[name] = _delta(value) if name != "max-stale" or value is not None else 2**31
        elif name in _FLAG_DIRECTIVES:
            flags.add(name)
        elif name in fields:
            listed = tuple(f.strip().lower() for f in (value or "").split(",") if f.strip())
            if listed:
                fields[name] += listed
            else:
                flags.add(name)
    get = deltas.get
    return CacheControl(
        max_age=get("max-age"), s_maxage=get("s-maxage"), no_cache="no-cache" in flags,
        no_cache_fields=fields["no-cache"], no_store="no-store" in flags, private="private" in flags,
        private_fields=fields["private"], public="public" in flags, must_revalidate="must-revalidate" in flags,
        proxy_revalidate="proxy-revalidate" in flags, stale_while_revalidate=get("stale-while-revalidate"),
        stale_if_error=get("stale-if-error"), immutable="immutable" in flags, no_transform="no-transform" in flags,
        only_if_cached="only-if-cached" in flags, max_stale=get("max-stale"), min_fresh=get("min-fresh"),
    )



_DAY = "(?:mon|tue|wed|thu|fri|sat|sun)"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = f"({'|'.join(_MONTHS)})"
_TIME = r"(\d\d):(\d\d):(\d\d)"
# RFC 9110 §5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date every recipient must accept. Names
# are matched without regard to case (the conformance suite's "optimal" tests), nothing else is lenient: a
# two-digit year outside rfc850, a zone other than GMT, missing punctuation or extra spaces make a date invalid.
_IMF = re.compile(rf"{_DAY}, (\d\d) {_MONTH} (\d{{4}}) {_TIME} gmt", re.IGNORECASE | re.ASCII)
_RFC850 = re.compile(rf"(?:mon|tues|wednes|thurs|fri|satur|sun)day, (\d\d)-{_MONTH}-(\d\d) {_TIME} gmt",
                     re.IGNORECASE | re.ASCII)
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} ([ \d]\d) {_TIME} (\d{{4}})", re.IGNORECASE | re.ASCII)
_MAX_YEAR = 9999


def parse_http_date(value: str | None, now: float | None = None) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7) as epoch seconds, or None if absent or invalid (see the formats above).
    An rfc850 two-digit year more than 50 years after ``now`` (default: the date's own century guess against
    2000) is the most recent such year in the past."""
    if not value:
        return None
    value = value.strip()
    if m := _IMF.fullmatch(value):
        day, month, year, hh, mm, ss = m.groups()
    elif m := _RFC850.fullmatch(value):
        day, month, yy, hh, mm, ss = m.groups()
        year = str(_rfc850_year(int(yy), now))
    elif m := _ASCTIME.fullmatch(value):
        month, day, hh, mm, ss, year = m.groups()
    else:
        return None
    fields = (int(year), _MONTHS.index(month.lower()) + 1, int(day), int(hh), int(mm), int(ss))
    if not (1 <= fields[2] <= calendar.monthrange(fields[0], fields[1])[1] and fields[3] < 24 and fields[4] < 60
            and fields[5] < 61 and 0 < fields[0] <= _MAX_YEAR):
        return None
    return float(calendar.timegm((*fields, 0, 0, 0)))


def _rfc850_year(yy: int, now: float | None) -> int:
    """RFC 9110 §5.6.7: a two-digit year that appears more than 50 years in the future is in the past century."""
    current = time.gmtime(now).tm_year if now is not None else 2000
    year = current - current % 100 + yy
    return year - 100 if year > current + 50 else year


def http_date(ts: float) -> str:
    """Epoch seconds as an IMF-fixdate."""
    return formatdate(ts, usegmt=True)


@dataclass(frozen=True, slots=True)
class PolicyOptions:
    """Local knobs (from ``[cache]`` in the settings)."""

    heuristic_percent: float | None = None  # None: off (CloudFront uses DefaultTTL); else RFC 9111 §4.2.2
    heuristic_cap_s: float = 86_400.0
    error_caching_min_ttl_s: float = 10.0

    @classmethod
    def from_settings(cls, cache: CacheSettings) -> PolicyOptions:
        return cls(cache.heuristic_percent if cache.heuristic_freshness else None, cache.heuristic_cap_s,
                   cache.error_caching_min_ttl_s)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One stored response (a variant). Times are epoch seconds; ``ttl_s`` is the clamped freshness lifetime."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    request_time: float
    response_time: float
    ttl_s: float
    corrected_initial_age: float = 0.0  # RFC 9111 §4.2.3
    swr_s: float = 0.0  # stale-while-revalidate window
    sie_s: float | None = None  # stale-if-error window; None = CloudFront default (serve stale on 5xx)
    must_revalidate: bool = False  # must-revalidate / proxy-revalidate / no-cache: never served stale
    is_error: bool = False  # a cached 4xx/5xx (X-Cache: Error from cloudfront)
    vary_names: tuple[str, ...] = ()
    vary_values: tuple[str, ...] = ()
    uri: str = ""  # the URI path, for invalidation
    key_querystring: str = ""  # the query string part of the key, for invalidation
    # The POP's serving form of this entry (viewer headers and their serialised block), derived on first use and
    # kept with the entry so it lives and dies with it; not part of the entry's value (replace() resets it).
    served: tuple[tuple[tuple[str, str], ...], HeaderBlock | None] | None = field(
        default=None, init=False, compare=False, repr=False)

    @property
    def etag(self) -> str | None:
        return header_get(self.headers, "etag")

    @property
    def last_modified(self) -> str | None:
        return header_get(self.headers, "last-modified")

    @property
    def size(self) -> int:
        """Bytes accounted for this entry (body + header text, twice: as stored and as serialised for serving
        (``served``); the store adds a fixed overhead)."""
        return len(self.body) + 2 * sum(len(k) + len(v) + 4 for k, v in self.headers) + len(self.uri) + len(
            self.key_querystring) + sum(len(v) for v in self.vary_values)


def current_age(entry: CacheEntry, now: float) -> float:
    """RFC 9111 §4.2.3: corrected_initial_age + resident_time."""
    return entry.corrected_initial_age + max(0.0, now - entry.response_time)


def corrected_initial_age(headers: Headers, request_time: float, response_time: float) -> float:
    """RFC 9111 §4.2.3: max(apparent_age, Age + response_delay)."""
    date = parse_http_date(header_get(headers, "date"))
    apparent = max(0.0, response_time - date) if date is not None else 0.0
    value = header_get(headers, "age")  # the first field line; of a list ("7200, 0"), its first member
    age = _delta(value.partition(",")[0].strip() if value is not None else None)
    return max(apparent, age + max(0.0, response_time - request_time))


class StaleReason(enum.Enum):
    REVALIDATE = "revalidate"  # must ask the origin (conditional) before serving
    SWR = "stale-while-revalidate"  # serve now, refresh in the background
    SIE = "stale-if-error"  # origin failed: serve the stale entry


@dataclass(frozen=True, slots=True)
class Hit:
    entry: CacheEntry
    age: int


@dataclass(frozen=True, slots=True)
class Stale:
    entry: CacheEntry
    reason: StaleReason
    age: int


@dataclass(frozen=True, slots=True)
class Miss:
    """No usable entry (none stored, or a Vary mismatch)."""

    reason: str = "not cached"


@dataclass(frozen=True, slots=True)
class StoreDecision:
    """The response may be stored: for ``ttl_s`` seconds, with these headers (Set-Cookie etc. removed)."""

    ttl_s: float
    headers: tuple[tuple[str, str], ...]
    swr_s: float = 0.0
    sie_s: float | None = None
    must_revalidate: bool = False
    is_error: bool = False
    ttl_source: str = "default"  # "default" | "origin" | "min-ttl" | "error" | "heuristic" | "no-cache"
    vary_names: tuple[str, ...] = ()  # the Vary fields the variant is selected by (after CloudFront's filter)


@dataclass(frozen=True, slots=True)
class NotStorable:
    reason: str


@dataclass(frozen=True, slots=True)
class StoreContext:
    """What storability needs to know about the behavior (built once per behavior by the POP)."""

    policy: CachePolicy
    cached_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    cookies_forwarded: bool = False  # cookies in the key or in the origin request policy: keep Set-Cookie
    # CustomErrorResponses: status -> ErrorCachingMinTTL (None: the settings' default). A status listed here
    # is cached for that TTL even when it is not in ERRORS_ALWAYS_CACHED (e.g. 403 with a custom page).
    error_caching_ttl: dict[int, int | None] = field(default_factory=dict)
    # Headers forwarded to the origin (lower-case; None = all viewer headers). CloudFront keeps only these,
    # Accept-Encoding and Cookie in Vary (contract §5.5): the origin cannot vary on what it never receives.
    forwarded_headers: frozenset[str] | None = None

    @classmethod
    def for_behavior(cls, distribution: Distribution, behavior: Behavior) -> StoreContext:
        """Build once per behavior at startup."""
        orp = behavior.origin_request_policy
        cookies = behavior.cache_policy.cookies.behavior != "none" or (
            orp is not None and orp.cookies.behavior != "none")
        cers = {code: c.error_caching_min_ttl for code, c in distribution.custom_error_responses.items()}
        keyed = frozenset(h.lower() for h in behavior.cache_policy.headers.names)
        forwarded: frozenset[str] | None = keyed
        if orp is not None and orp.headers.behavior != "none":
            forwarded = None if orp.headers.behavior != "whitelist" else keyed | {
                h.lower() for h in orp.headers.names}
        return cls(policy=behavior.cache_policy, cached_methods=behavior.cached_methods, cookies_forwarded=cookies,
                   error_caching_ttl=cers, forwarded_headers=forwarded)

    def vary_filter(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The Vary field names a stored variant is keyed by: CloudFront keeps Accept-Encoding, Cookie, the
        headers it forwards, and User-Agent when device-type headers are forwarded (they derive from it) (contract
        §5.5, "Request and response behavior for custom origins",
        https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html)."""
        forwarded = self.forwarded_headers
        if forwarded is None:
            return names
        return tuple(n for n in names if n in ("accept-encoding", "cookie") or n in forwarded
                     or (n == "user-agent" and not forwarded.isdisjoint(_DEVICE_HEADERS)))


def fresh_age(entry: CacheEntry, now: float) -> int | None:
    """:func:`evaluate`'s freshness test alone: the age of an entry it calls a ``Hit`` (RFC 9111 §4.2), None for a
    stale one (``edge.cdn.lean`` asks without making the ``Hit``). :func:`current_age` written out: this runs on
    every hit, and two calls fewer are ~250 ns of a kept hit's ~6 us here."""
    resident = now - entry.response_time
    age = entry.corrected_initial_age + (resident if resident > 0.0 else 0.0)
    return int(age) if entry.ttl_s > age else None


def evaluate(entry: CacheEntry, now: float) -> Hit | Stale:
    """RFC 9111 §4.2 freshness + RFC 5861 stale-while-revalidate. Viewer Cache-Control is ignored (CloudFront)."""
    fresh = fresh_age(entry, now)
    if fresh is not None:
        return Hit(entry, fresh)
    age = current_age(entry, now)
    staleness = age - entry.ttl_s
    if not entry.must_revalidate and entry.swr_s > 0 and staleness <= entry.swr_s:
        return Stale(entry, StaleReason.SWR, int(age))
    return Stale(entry, StaleReason.REVALIDATE, int(age))


def on_origin_error(entry: CacheEntry | None, now: float, status: int | None) -> Stale | None:
    """Origin failed (``status`` None = unreachable/timeout, else its 4xx/5xx): serve the stale entry?

    Contract §5.4: on 5xx (or no response) CloudFront serves the expired object; a 4xx is passed through.
    RFC 5861 §4 stale-if-error bounds the window when the origin gave one; must-revalidate forbids it
    (RFC 9111 §4.2.4).
    """
    if entry is None or entry.is_error or entry.must_revalidate:
        return None
    if status is not None and status < 500:
        return None
    age = current_age(entry, now)
    if entry.sie_s is not None and age - entry.ttl_s > entry.sie_s:
        return None
    return Stale(entry, StaleReason.SIE, int(age))


def _explicit_lifetime(cc: CacheControl, headers: Headers, response_time: float) -> float | None:
    """RFC 9111 §4.2.1 for a shared cache: s-maxage, then max-age, then Expires - Date."""
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    expires = header_all(headers, "expires")
    if not expires:
        return None
    exp = parse_http_date(expires[0], response_time) if len(expires) == 1 else None
    if exp is None:  # §5.3: invalid dates (e.g. "0"), and several Expires field lines, are in the past
        return 0.0
    date = parse_http_date(header_get(headers, "date"))
    return max(0.0, exp - (date if date is not None else response_time))


def cloudfront_ttl(cc: CacheControl, headers: Headers, policy: CachePolicy, options: PolicyOptions,
                   response_time: float, status: int) -> tuple[float, str] | NotStorable:
    """Contract §5.3 TTL table. Returns ``(ttl_s, source)``; a TTL of 0 means "store, revalidate every time"."""
    if cc.no_store or cc.private or cc.no_cache:
        if policy.min_ttl > 0:
            return float(policy.min_ttl), "min-ttl"
        if cc.no_store:
            return NotStorable("no-store")
        if cc.private:
            return NotStorable("private")
        return 0.0, "no-cache"
    explicit = _explicit_lifetime(cc, headers, response_time)
    if explicit is not None:
        if policy.min_ttl == 0:
            return min(explicit, float(policy.max_ttl)), "origin"
        return min(max(explicit, float(policy.min_ttl)), float(policy.max_ttl)), "origin"
    if status not in CACHEABLE_BY_DEFAULT and status not in REDIRECTS_NEEDING_CACHE_CONTROL:  # (307/308 get here
        return NotStorable(f"status {status} needs explicit freshness")  # with a Cache-Control: storability)
    if options.heuristic_percent is not None:
        lm = parse_http_date(header_get(headers, "last-modified"))
        date = parse_http_date(header_get(headers, "date")) or response_time
        if lm is not None and lm < date:  # RFC 9111 §4.2.2
            ttl = min((date - lm) * options.heuristic_percent / 100.0, options.heuristic_cap_s)
            return min(max(ttl, float(policy.min_ttl)), float(policy.max_ttl)), "heuristic"
    return float(max(policy.min_ttl, policy.default_ttl)), "default"


def _error_decision(status: int, cc: CacheControl, ctx: StoreContext,
                    options: PolicyOptions) -> tuple[float, str] | NotStorable:
    """Contract §5.4: which 4xx/5xx are cached and for how long (max(ErrorCachingMinTTL, max-age))."""
    explicit = cc.s_maxage if cc.s_maxage is not None else cc.max_age
    override = ctx.error_caching_ttl.get(status)
    min_ttl = float(override) if override is not None else options.error_caching_min_ttl_s
    if status == 416:
        return NotStorable("416 is never cached")
    if cc.no_store or cc.private:
        return NotStorable("no-store" if cc.no_store else "private")
    if status in ERRORS_ALWAYS_CACHED or status in ctx.error_caching_ttl:
        ttl = max(min_ttl, float(explicit or 0))
    elif status in ERRORS_CACHED_IF_EXPLICIT and explicit is not None:
        ttl = max(min_ttl, float(explicit))
    else:
        return NotStorable(f"status {status} is not cached")
    return (ttl, "error") if ttl > 0 else NotStorable("error caching TTL is 0")


def storability(method: str, status: int, request_headers: Headers, response_headers: Headers,
                ctx: StoreContext, options: PolicyOptions, response_time: float) -> StoreDecision | NotStorable:
    """May this origin response be stored, and for how long? RFC 9111 §3 + contract §5.3/§5.4.

    ``method`` is the method sent to the origin (only a full GET response, or OPTIONS when cached, fills the
    cache; HEAD is served from GET entries).
    """
    policy = ctx.policy
    if policy.caching_disabled:
        return NotStorable("caching disabled by the cache policy")
    if method not in ("GET", "OPTIONS") or method not in ctx.cached_methods:
        return NotStorable(f"method {method} is not cached")
    if status in (206, 304) or status < 200:
        return NotStorable(f"status {status} is not stored")
    names = vary_names(response_headers)
    if names == ("*",):
        return NotStorable("Vary: *")  # §4.1: never matches
    cc_values = header_all(response_headers, "cache-control")
    if status in REDIRECTS_NEEDING_CACHE_CONTROL and not cc_values:
        return NotStorable(f"a {status} is cached only with Cache-Control (CloudFront)")
    cc = parse_cache_control(cc_values)
    # RFC 9111 §3.5 (no storing of responses to requests carrying Authorization) does not bite here: CloudFront
    # strips Authorization from GET/HEAD requests unless the cache policy puts it in the cache key, so the origin
    # either never saw it or the response is keyed by its value.
    is_error = status >= 400
    # 410 is heuristically cacheable (RFC 9110 §15.1) and follows the normal TTL rules; other errors: §5.4
    result = (_error_decision(status, cc, ctx, options) if is_error and status not in CACHEABLE_BY_DEFAULT
              else cloudfront_ttl(cc, response_headers, policy, options, response_time, status))
    if isinstance(result, NotStorable):
        return result
    ttl, source = result
    has_validator = header_get(response_headers, "etag") is not None or header_get(
        response_headers, "last-modified") is not None
    if ttl <= 0 and not has_validator:
        return NotStorable("zero TTL and no validator to revalidate with")
    drop = set(cc.no_cache_fields) | set(cc.private_fields)
    if not ctx.cookies_forwarded:
        drop.add("set-cookie")  # CloudFront strips Set-Cookie unless cookies are forwarded [CUST]
    stored = tuple((k, v) for k, v in response_headers if k.lower() not in drop)
    revalidate = cc.must_revalidate or cc.proxy_revalidate or source == "no-cache"
    # s-maxage "incorporates the semantics of proxy-revalidate" (RFC 9111 §5.2.2.10): no stale copy when the
    # origin fails, unless the origin grants a stale-if-error window itself (stale-while-revalidate still applies)
    sie = cc.stale_if_error if cc.stale_if_error is not None else (0 if cc.s_maxage is not None else None)
    return StoreDecision(ttl_s=ttl, headers=stored, swr_s=float(cc.stale_while_revalidate or 0),
                         sie_s=None if sie is None else float(sie),
                         must_revalidate=revalidate, is_error=is_error, ttl_source=source,
                         vary_names=ctx.vary_filter(names))


def build_entry(decision: StoreDecision, status: int, body: bytes, request_headers: Headers, request_time: float,
                response_time: float, uri: str, key_querystring: str) -> CacheEntry:
    """The entry to ``store.put`` for a :class:`StoreDecision` (computes age and the Vary secondary key)."""
    names = decision.vary_names
    return CacheEntry(
        status=status, headers=decision.headers, body=body, request_time=request_time,
        response_time=response_time, ttl_s=decision.ttl_s,
        corrected_initial_age=corrected_initial_age(decision.headers, request_time, response_time),
        swr_s=decision.swr_s, sie_s=decision.sie_s, must_revalidate=decision.must_revalidate,
        is_error=decision.is_error, vary_names=names, vary_values=vary_values(names, request_headers),
        uri=uri, key_querystring=key_querystring)


def conditional_headers(entry: CacheEntry) -> list[tuple[str, str]]:
    """RFC 9111 §4.3.1: validators for revalidating ``entry`` (If-None-Match, If-Modified-Since)."""
    out = []
    if entry.etag:
        out.append(("If-None-Match", entry.etag))
    if entry.last_modified:
        out.append(("If-Modified-Since", entry.last_modified))
    return out


@dataclass(frozen=True, slots=True)
class Refreshed:
    """Result of a 304: the updated entry (serve it: RefreshHit) and whether it may be stored again."""

    entry: CacheEntry
    storable: bool
    reason: str = ""


def merge_not_modified(entry: CacheEntry, not_modified_headers: Headers, request_headers: Headers,
                       ctx: StoreContext, options: PolicyOptions, request_time: float,
                       response_time: float) -> Refreshed:
    """RFC 9111 §4.3.4: freshen ``entry`` with a 304's header fields, then recompute its TTL (§5.3)."""
    updated = {k.lower() for k, _ in not_modified_headers} - _NOT_UPDATED
    # the stored Age/Date describe the old response: the 304 alone says how old the refreshed one is
    headers = [(k, v) for k, v in entry.headers if k.lower() not in updated and k.lower() != "age"]
    headers += [(k, v) for k, v in not_modified_headers if k.lower() in updated]
    decision = storability("GET", entry.status, request_headers, headers, ctx, options, response_time)
    if isinstance(decision, NotStorable):
        fresh = replace(entry, headers=tuple(headers), request_time=request_time, response_time=response_time,
                        ttl_s=0.0, corrected_initial_age=corrected_initial_age(not_modified_headers, request_time,
                                                                                response_time))
        return Refreshed(fresh, False, decision.reason)
    new = build_entry(decision, entry.status, entry.body, request_headers, request_time, response_time,
                      entry.uri, entry.key_querystring)
    # keep the variant's original secondary key (the 304 answers for the stored variant); age from the 304 only
    return Refreshed(replace(new, vary_names=entry.vary_names, vary_values=entry.vary_values,
                             corrected_initial_age=corrected_initial_age(not_modified_headers, request_time,
                                                                         response_time)), True)
