"""The pure cache policy: RFC 9111 + CloudFront TTL rules, driven by explicit times (no clock).

Categories: Cache-Control parsing; TTL table (contract §5.3); storability (methods, statuses, no-store/private,
Authorization, Set-Cookie, Vary); error caching (§5.4); age (RFC 9111 §4.2.3); freshness, SWR, SIE;
conditional requests and 304 merge (§4.3).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cdn.cache.policy import (
    CacheEntry,
    Hit,
    NotStorable,
    PolicyOptions,
    Stale,
    StaleReason,
    StoreContext,
    StoreDecision,
    build_entry,
    conditional_headers,
    corrected_initial_age,
    current_age,
    evaluate,
    http_date,
    merge_not_modified,
    on_origin_error,
    parse_cache_control,
    parse_http_date,
    storability,
)
from edge.cdn.config.policies import MANAGED_CACHE_POLICIES, CachePolicy, KeyList

T0 = 1_700_000_000.0
OPTS = PolicyOptions()


def policy(min_ttl: int = 0, default: int = 86_400, maximum: int = 31_536_000, **kw: object) -> CachePolicy:
    return CachePolicy("test", "test", min_ttl, default, maximum, **kw)  # type: ignore[arg-type]


def ctx(p: CachePolicy | None = None, **kw: object) -> StoreContext:
    return StoreContext(p or policy(), **kw)  # type: ignore[arg-type]


def decide(headers: list[tuple[str, str]], status: int = 200, method: str = "GET", c: StoreContext | None = None,
           req: list[tuple[str, str]] | None = None, opts: PolicyOptions = OPTS) -> StoreDecision | NotStorable:
    return storability(method, status, req or [], headers, c or ctx(), opts, T0)


def ttl(headers: list[tuple[str, str]], p: CachePolicy, status: int = 200) -> float | str:
    d = decide(headers, status, c=ctx(p))
    return d.ttl_s if isinstance(d, StoreDecision) else d.reason


def entry_for(headers: list[tuple[str, str]], *, status: int = 200, c: StoreContext | None = None,
              req_time: float = T0, resp_time: float = T0, body: bytes = b"body") -> CacheEntry:
    d = storability("GET", status, [], headers, c or ctx(), OPTS, resp_time)
    assert isinstance(d, StoreDecision), d
    return build_entry(d, status, body, [], req_time, resp_time, "/p", "")


class TestCacheControlParsing:
    def test_directives(self) -> None:
        cc = parse_cache_control(['public, max-age=60, s-maxage="120"', "stale-while-revalidate=30",
                                  "stale-if-error=600, must-revalidate, immutable"])
        assert (cc.public, cc.max_age, cc.s_maxage, cc.stale_while_revalidate, cc.stale_if_error) == (
            True, 60, 120, 30, 600)
        assert cc.must_revalidate and cc.immutable and not cc.no_store

    def test_first_duplicate_wins_and_invalid_is_zero(self) -> None:
        assert parse_cache_control(["max-age=10, max-age=99"]).max_age == 10
        assert parse_cache_control(["max-age=abc"]).max_age == 0
        assert parse_cache_control(["max-age=-5"]).max_age == 0

    def test_qualified_no_cache_and_private(self) -> None:
        cc = parse_cache_control(['no-cache="Set-Cookie, X-Foo", private="X-Bar"'])
        assert not cc.no_cache and cc.no_cache_fields == ("set-cookie", "x-foo")
        assert not cc.private and cc.private_fields == ("x-bar",)
        cc = parse_cache_control(["No-Cache, PRIVATE"])
        assert cc.no_cache and cc.private

    def test_http_dates(self) -> None:
        assert parse_http_date(http_date(T0)) == T0
        assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
        assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
        assert parse_http_date("0") is None and parse_http_date(None) is None
        # names in any case (the conformance suite's optimal tests); nothing else is lenient (its required ones)
        assert parse_http_date("THU, 18 AUG 2050 02:01:18 gmt") == parse_http_date("Thu, 18 Aug 2050 02:01:18 GMT")
        for bad in ("Thu, 18 Aug 2050 02:01:18 UTC", "Thu, 18 Aug 2050 02:01:18 AEST", "Thu, 18 Aug 50 02:01:18 GMT",
                    "Thu 18 Aug 2050 02:01:18 GMT", "Thu, 18  Aug  2050 02:01:18 GMT", "Thu, 18-Aug-2050 02:01:18 GMT",
                    "Thu, 18 Aug 2050 02.01.18 GMT", "Thu, 18 Aug 2050 2:01:18 GMT", "Thu, 31 Feb 2050 02:01:18 GMT",
                    "Thu, 18 Aug 2050 24:01:18 GMT"):
            assert parse_http_date(bad) is None, bad
        # rfc850's two-digit year: more than 50 years ahead of now is the century before (RFC 9110 §5.6.7)
        now = parse_http_date("Fri, 04 Dec 2026 00:00:00 GMT")
        assert parse_http_date("Thursday, 18-Aug-50 02:01:18 GMT", now) == parse_http_date(
            "Thu, 18 Aug 2050 02:01:18 GMT")
        assert parse_http_date("Monday, 01-Jan-80 00:00:00 GMT", now) == parse_http_date("Tue, 01 Jan 1980 00:00:00 GMT")

    def test_invalid_or_repeated_expires_is_in_the_past(self) -> None:
        future = "Thu, 18 Aug 2050 02:01:18 GMT"
        assert ttl([("Expires", future)], policy(0, 1, 500)) == 500.0  # valid: clamped by MaxTTL
        for headers in ([("Expires", "Thu, 18 Aug 2050 02:01:18 UTC")], [("Expires", future), ("Expires", future)]):
            assert ttl(headers, policy(0, 1, 500)) == "zero TTL and no validator to revalidate with"


class TestTtlTable:
    """Contract §5.3, row by row."""

    @pytest.mark.parametrize(("cc", "min_ttl", "expected"), [
        ("no-store", 0, "no-store"), ("private", 0, "private"), ("no-cache", 0, 0.0),
        ("no-store", 30, 30.0), ("private", 30, 30.0), ("no-cache", 30, 30.0),
    ])
    def test_no_store_private_no_cache(self, cc: str, min_ttl: int, expected: float | str) -> None:
        assert ttl([("Cache-Control", cc), ("ETag", '"v"')], policy(min_ttl)) == expected

    @pytest.mark.parametrize(("value", "min_ttl", "max_ttl", "expected"), [
        (60, 0, 3600, 60), (7200, 0, 3600, 3600), (5, 0, 3600, 5),
        (5, 10, 3600, 10), (60, 10, 3600, 60), (7200, 10, 3600, 3600), (0, 10, 3600, 10),
    ])
    def test_max_age_clamping(self, value: int, min_ttl: int, max_ttl: int, expected: float) -> None:
        assert ttl([("Cache-Control", f"max-age={value}"), ("ETag", '"v"')],
                   policy(min_ttl, max(min_ttl, 100), max_ttl)) == expected

    @pytest.mark.parametrize(("min_ttl", "default", "expected"), [(0, 100, 100), (10, 100, 100), (200, 200, 200)])
    def test_no_directives_uses_default(self, min_ttl: int, default: int, expected: int) -> None:
        assert ttl([], policy(min_ttl, default, 1000)) == expected

    def test_max_ttl_does_not_cap_default(self) -> None:
        assert ttl([], policy(0, 500, 500)) == 500

    def test_precedence_s_maxage_max_age_expires(self) -> None:
        date = ("Date", http_date(T0))
        assert ttl([("Cache-Control", "max-age=60, s-maxage=120"), date], policy()) == 120
        assert ttl([("Cache-Control", "max-age=60"), date, ("Expires", http_date(T0 + 999))], policy()) == 60
        assert ttl([date, ("Expires", http_date(T0 + 300))], policy()) == 300
        assert ttl([date, ("Expires", "0"), ("ETag", '"v"')], policy()) == 0  # invalid Expires = past

    def test_expires_without_date_uses_response_time(self) -> None:
        assert ttl([("Expires", http_date(T0 + 42))], policy()) == 42

    def test_caching_disabled_policy_never_stores(self) -> None:
        disabled = MANAGED_CACHE_POLICIES["4135ea2d-6df8-44a3-9df3-4b5a84be39ad"]
        assert ttl([("Cache-Control", "max-age=600")], disabled) == "caching disabled by the cache policy"
        assert ttl([], disabled, status=404) == "caching disabled by the cache policy"

    def test_heuristic_only_when_enabled(self) -> None:
        hdrs = [("Date", http_date(T0)), ("Last-Modified", http_date(T0 - 1000))]
        opts = PolicyOptions(heuristic_percent=10, heuristic_cap_s=50)
        d = storability("GET", 200, [], hdrs, ctx(policy(0, 500)), opts, T0)
        assert isinstance(d, StoreDecision) and d.ttl_s == 50 and d.ttl_source == "heuristic"
        d = storability("GET", 200, [], hdrs, ctx(policy(0, 500)), PolicyOptions(10, 1e9), T0)
        assert isinstance(d, StoreDecision) and d.ttl_s == 100
        assert ttl(hdrs, policy(0, 500)) == 500


class TestStorability:
    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
    def test_only_get_fills_the_cache(self, method: str) -> None:
        assert isinstance(decide([], method=method), NotStorable)

    def test_options_only_when_cached_method(self) -> None:
        assert isinstance(decide([], method="OPTIONS"), NotStorable)
        c = ctx(cached_methods=frozenset({"GET", "HEAD", "OPTIONS"}))
        assert isinstance(decide([], method="OPTIONS", c=c), StoreDecision)

    @pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 302, 303, 410])
    def test_default_cacheable_statuses(self, status: int) -> None:
        d = decide([], status)
        assert isinstance(d, StoreDecision) and d.ttl_source == "default"

    @pytest.mark.parametrize("status", [307, 308])
    def test_307_and_308_need_cache_control(self, status: int) -> None:
        # "CloudFront caches 307 and 308 responses only when you include the Cache-Control header"
        assert isinstance(decide([], status), NotStorable)
        assert isinstance(decide([("Expires", http_date(T0 + 60)), ("Date", http_date(T0))], status), NotStorable)
        assert isinstance(decide([("Cache-Control", "max-age=5")], status), StoreDecision)
        assert isinstance(decide([("Cache-Control", "public")], status), StoreDecision)  # then the usual TTL rules

    @pytest.mark.parametrize("status", [201, 202, 205])
    def test_other_statuses_need_explicit_freshness(self, status: int) -> None:
        assert isinstance(decide([], status), NotStorable)
        assert isinstance(decide([("Cache-Control", "max-age=5")], status), StoreDecision)

    @pytest.mark.parametrize("status", [206, 304, 101])
    def test_never_stored(self, status: int) -> None:
        assert isinstance(decide([("Cache-Control", "max-age=60")], status), NotStorable)

    def test_vary_star(self) -> None:
        assert decide([("Vary", "Accept, *")]) == NotStorable("Vary: *")

    def test_authorization_does_not_prevent_storing(self) -> None:
        # CloudFront strips Authorization unless it is in the cache key, so the response is storable either way
        auth = [("Authorization", "Bearer x")]
        for cc in ("max-age=60", "public, max-age=60", "s-maxage=60", "must-revalidate, max-age=60"):
            assert isinstance(decide([("Cache-Control", cc)], req=auth), StoreDecision)
        keyed = ctx(policy(headers=KeyList("whitelist", ("Authorization",))))
        assert isinstance(decide([("Cache-Control", "max-age=60")], req=auth, c=keyed), StoreDecision)

    def test_set_cookie_stripped_unless_cookies_forwarded(self) -> None:
        hdrs = [("Set-Cookie", "a=1"), ("Content-Type", "text/plain")]
        d = decide(hdrs)
        assert isinstance(d, StoreDecision) and d.headers == (("Content-Type", "text/plain"),)
        d = decide(hdrs, c=ctx(cookies_forwarded=True))
        assert isinstance(d, StoreDecision) and ("Set-Cookie", "a=1") in d.headers

    def test_no_cache_with_fields_stores_without_them(self) -> None:
        d = decide([("Cache-Control", 'max-age=60, no-cache="X-Secret"'), ("X-Secret", "s"), ("X-Ok", "1")],
                   c=ctx(cookies_forwarded=True))
        assert isinstance(d, StoreDecision) and d.ttl_s == 60 and d.headers[-1] == ("X-Ok", "1")
        assert all(k != "X-Secret" for k, _ in d.headers)

    def test_zero_ttl_needs_a_validator(self) -> None:
        assert isinstance(decide([("Cache-Control", "max-age=0")]), NotStorable)
        d = decide([("Cache-Control", "max-age=0"), ("Last-Modified", http_date(T0 - 60))])
        assert isinstance(d, StoreDecision) and d.ttl_s == 0

    def test_no_cache_means_revalidate_every_time(self) -> None:
        e = entry_for([("Cache-Control", "no-cache"), ("ETag", '"v"')])
        assert e.must_revalidate and evaluate(e, T0) == Stale(e, StaleReason.REVALIDATE, 0)


class TestErrorCaching:
    @pytest.mark.parametrize("status", [404, 414, 500, 501, 502, 503, 504])
    def test_always_cached_for_error_min_ttl(self, status: int) -> None:
        d = decide([], status)
        assert isinstance(d, StoreDecision) and d.ttl_s == 10 and d.is_error

    @pytest.mark.parametrize("status", [400, 403, 405, 412, 415])
    def test_cached_only_with_max_age(self, status: int) -> None:
        assert isinstance(decide([], status), NotStorable)
        d = decide([("Cache-Control", "max-age=60")], status)
        assert isinstance(d, StoreDecision) and d.ttl_s == 60
        d = decide([("Cache-Control", "s-maxage=3")], status)
        assert isinstance(d, StoreDecision) and d.ttl_s == 10  # max(ErrorCachingMinTTL, s-maxage)

    @pytest.mark.parametrize("status", [416, 401, 409, 429])
    def test_not_cached(self, status: int) -> None:
        assert isinstance(decide([("Cache-Control", "max-age=60")], status), NotStorable)

    def test_custom_error_response_ttl_and_settings_default(self) -> None:
        c = ctx(error_caching_ttl={503: 0, 404: 300, 403: 5})
        assert isinstance(decide([], 503, c=c), NotStorable)
        d = decide([("Cache-Control", "max-age=30")], 404, c=c)
        assert isinstance(d, StoreDecision) and d.ttl_s == 300
        d = decide([], 403, c=c)  # a CustomErrorResponse with a TTL makes 403 cached
        assert isinstance(d, StoreDecision) and d.ttl_s == 5
        d = decide([], 403, c=ctx(error_caching_ttl={403: None}))  # listed without a TTL: the default 10 s
        assert isinstance(d, StoreDecision) and d.ttl_s == 10
        d = decide([], 500, opts=PolicyOptions(error_caching_min_ttl_s=2))
        assert isinstance(d, StoreDecision) and d.ttl_s == 2

    def test_error_max_age_above_min(self) -> None:
        d = decide([("Cache-Control", "max-age=120")], 500)
        assert isinstance(d, StoreDecision) and d.ttl_s == 120

    def test_no_store_error_not_cached(self) -> None:
        assert isinstance(decide([("Cache-Control", "no-store")], 500), NotStorable)


class TestAge:
    def test_corrected_initial_age(self) -> None:
        # apparent age from Date (20 s), Age header + response delay (5 + 2): the larger wins
        h = [("Date", http_date(T0 - 20)), ("Age", "5")]
        assert corrected_initial_age(h, T0 - 2, T0) == 20
        h = [("Date", http_date(T0)), ("Age", "50")]
        assert corrected_initial_age(h, T0 - 2, T0) == 52
        assert corrected_initial_age([], T0, T0) == 0

    def test_current_age_grows_with_resident_time(self) -> None:
        e = entry_for([("Age", "10"), ("Cache-Control", "max-age=60")])
        assert current_age(e, T0 + 5) == 15
        assert evaluate(e, T0 + 49) == Hit(e, 59)
        assert isinstance(evaluate(e, T0 + 50), Stale)


class TestFreshnessAndStale:
    def test_fresh_then_stale(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60")])
        assert evaluate(e, T0 + 59) == Hit(e, 59)
        assert evaluate(e, T0 + 60) == Stale(e, StaleReason.REVALIDATE, 60)

    def test_stale_while_revalidate_window(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60, stale-while-revalidate=30")])
        assert evaluate(e, T0 + 70).reason == StaleReason.SWR  # type: ignore[union-attr]
        assert evaluate(e, T0 + 90).reason == StaleReason.SWR  # type: ignore[union-attr]
        assert evaluate(e, T0 + 91).reason == StaleReason.REVALIDATE  # type: ignore[union-attr]

    def test_must_revalidate_disables_swr_and_sie(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60, stale-while-revalidate=30, must-revalidate")])
        assert evaluate(e, T0 + 70).reason == StaleReason.REVALIDATE  # type: ignore[union-attr]
        assert on_origin_error(e, T0 + 70, 502) is None
        e = entry_for([("Cache-Control", "max-age=60, proxy-revalidate")])
        assert on_origin_error(e, T0 + 70, None) is None

    def test_age_of_a_list_is_its_first_member(self) -> None:
        assert evaluate(entry_for([("Cache-Control", "max-age=3600"), ("Age", "7200, 0")]), T0).reason == (  # type: ignore[union-attr]
            StaleReason.REVALIDATE)
        assert isinstance(evaluate(entry_for([("Cache-Control", "max-age=3600"), ("Age", "0, 7200")]), T0), Hit)

    def test_s_maxage_forbids_the_implicit_stale_if_error_not_swr(self) -> None:
        e = entry_for([("Cache-Control", "max-age=2, s-maxage=2, stale-while-revalidate=30")])
        assert on_origin_error(e, T0 + 10, None) is None  # RFC 9111 §5.2.2.10: proxy-revalidate semantics
        assert evaluate(e, T0 + 10).reason == StaleReason.SWR  # type: ignore[union-attr]
        e = entry_for([("Cache-Control", "s-maxage=2, stale-if-error=60")])
        assert on_origin_error(e, T0 + 10, None) is not None  # the origin's own window

    def test_stale_if_error_default_serves_stale_on_5xx_only(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60")])
        assert on_origin_error(e, T0 + 10_000, 503) == Stale(e, StaleReason.SIE, 10_000)
        assert on_origin_error(e, T0 + 100, None) is not None  # unreachable / timeout
        assert on_origin_error(e, T0 + 100, 404) is None
        assert on_origin_error(None, T0, 500) is None

    def test_stale_if_error_window(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60, stale-if-error=100")])
        assert on_origin_error(e, T0 + 160, 500) is not None
        assert on_origin_error(e, T0 + 161, 500) is None
        e = entry_for([("Cache-Control", "max-age=60, stale-if-error=0")])
        assert on_origin_error(e, T0 + 61, 500) is None

    def test_cached_error_is_not_served_as_stale(self) -> None:
        e = entry_for([], status=503)
        assert on_origin_error(e, T0 + 20, 503) is None


class TestRevalidation:
    def test_conditional_headers(self) -> None:
        lm = http_date(T0 - 100)
        e = entry_for([("Cache-Control", "max-age=1"), ("ETag", '"abc"'), ("Last-Modified", lm)])
        assert conditional_headers(e) == [("If-None-Match", '"abc"'), ("If-Modified-Since", lm)]
        assert conditional_headers(entry_for([("Cache-Control", "max-age=1")])) == []

    def test_304_merge_updates_headers_and_ttl(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60"), ("ETag", '"abc"'), ("Content-Length", "4"),
                       ("X-Version", "1"), ("Content-Type", "text/plain")], body=b"body")
        later = T0 + 100
        r = merge_not_modified(e, [("Cache-Control", "max-age=300"), ("X-Version", "2"), ("Content-Length", "0"),
                                   ("Date", http_date(later))], [], ctx(), OPTS, later - 1, later)
        assert r.storable and r.entry.body == b"body" and r.entry.ttl_s == 300
        h = dict(r.entry.headers)
        assert h["X-Version"] == "2" and h["Content-Length"] == "4" and h["Content-Type"] == "text/plain"
        assert evaluate(r.entry, later + 10) == Hit(r.entry, 11)

    def test_304_without_cache_control_keeps_stored_directives(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60"), ("ETag", '"abc"')])
        r = merge_not_modified(e, [("ETag", '"abc"')], [], ctx(), OPTS, T0 + 99, T0 + 100)
        assert r.storable and r.entry.ttl_s == 60 and r.entry.response_time == T0 + 100

    def test_304_with_no_store_is_served_but_not_kept(self) -> None:
        e = entry_for([("Cache-Control", "max-age=60"), ("ETag", '"abc"')])
        r = merge_not_modified(e, [("Cache-Control", "no-store")], [], ctx(), OPTS, T0 + 99, T0 + 100)
        assert not r.storable and r.reason == "no-store" and r.entry.body == b"body"

    def test_304_keeps_the_variant_key(self) -> None:
        d = storability("GET", 200, [], [("Cache-Control", "max-age=1"), ("Vary", "Accept-Language")], ctx(),
                        OPTS, T0)
        assert isinstance(d, StoreDecision)
        e = build_entry(d, 200, b"x", [("Accept-Language", "de")], T0, T0, "/p", "")
        r = merge_not_modified(e, [("Cache-Control", "max-age=9")], [("Accept-Language", "fr")], ctx(), OPTS,
                               T0 + 5, T0 + 5)
        assert r.entry.vary_values == ("de",) and r.entry.vary_names == ("accept-language",)


def test_304_age_comes_from_the_304_not_the_stored_response() -> None:
    # stored response was 500 s old when received; the 304 (no Date, no Age) must not inherit that
    e = entry_for([("Cache-Control", "max-age=600"), ("ETag", '"a"'), ("Date", http_date(T0 - 500))],
                  resp_time=T0)
    assert e.corrected_initial_age == 500
    later = T0 + 700
    r = merge_not_modified(e, [("ETag", '"a"')], [], ctx(), OPTS, later, later)
    assert r.entry.corrected_initial_age == 0 and evaluate(r.entry, later + 1) == Hit(r.entry, 1)


class TestVaryFiltering:
    """Contract §5.5: only Accept-Encoding, Cookie and forwarded headers select variants."""

    def test_unforwarded_vary_fields_are_ignored(self) -> None:
        c = ctx(forwarded_headers=frozenset({"x-device"}))
        d = decide([("Vary", "Accept-Language, X-Device, Accept-Encoding, Cookie")], c=c)
        assert isinstance(d, StoreDecision) and d.vary_names == ("accept-encoding", "cookie", "x-device")
        e = build_entry(d, 200, b"", [("X-Device", "m"), ("Accept-Language", "de")], T0, T0, "/", "")
        assert e.vary_values == ("", "\x00", "m")

    def test_user_agent_kept_only_when_device_headers_are_forwarded(self) -> None:
        vary = [("Vary", "User-Agent, Accept-Language")]
        d = decide(vary, c=ctx(forwarded_headers=frozenset({"cloudfront-is-mobile-viewer"})))
        assert isinstance(d, StoreDecision) and d.vary_names == ("user-agent",)
        d = decide(vary, c=ctx(forwarded_headers=frozenset({"x-device"})))
        assert isinstance(d, StoreDecision) and d.vary_names == ()

    def test_all_headers_forwarded_keeps_vary(self) -> None:
        d = decide([("Vary", "Accept-Language")], c=ctx(forwarded_headers=None))
        assert isinstance(d, StoreDecision) and d.vary_names == ("accept-language",)

    def test_for_behavior_derives_forwarded_headers(self) -> None:
        from pathlib import Path

        from edge.cdn.config.distribution import load_distribution
        d = load_distribution(Path(__file__).parents[1] / "fixtures" / "full-distribution.json")
        api, css, img, default = d.all_behaviors
        assert StoreContext.for_behavior(d, api).forwarded_headers is None  # AllViewer
        assert StoreContext.for_behavior(d, default).forwarded_headers is None  # AllViewerExceptHostHeader
        assert StoreContext.for_behavior(d, css).forwarded_headers == frozenset({"origin"})
        sc = StoreContext.for_behavior(d, img)
        assert sc.forwarded_headers == frozenset() and not sc.cookies_forwarded
        assert StoreContext.for_behavior(d, css).cookies_forwarded
        assert StoreContext.for_behavior(d, default).error_caching_ttl == {403: 0, 404: 30}


@given(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5), st.integers(0, 10**6),
       st.sampled_from(["max-age={v}", "s-maxage={v}", "", "no-cache", "no-store", "private"]))
def test_ttl_always_within_policy_bounds(value: int, a: int, b: int, c: int, template: str) -> None:
    lo, mid, hi = sorted((a, b, c))
    p = policy(lo, mid, hi)
    hdrs = [("ETag", '"v"')] + ([("Cache-Control", template.format(v=value))] if template else [])
    d = decide(hdrs, c=ctx(p))
    if p.caching_disabled:
        assert isinstance(d, NotStorable)
        return
    if isinstance(d, NotStorable):  # only no-store/private with MinTTL 0 may refuse
        assert lo == 0 and template in ("no-store", "private")
        return
    assert lo <= d.ttl_s <= max(hi, mid)
    if template.startswith(("max-age", "s-maxage")):
        assert d.ttl_s == min(max(value, lo), hi)
    elif template == "":
        assert d.ttl_s == max(lo, mid)
