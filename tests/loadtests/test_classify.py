"""Classification of edgelab responses from their headers (pure, no locust)."""

import pytest

from loadtests.classify import (
    Metric,
    bucket_name,
    cache_outcome,
    classify,
    function_timing,
    parse_bucket,
    parse_server_timing,
    pop_name,
)

MISS_COLD = ('cdn-cache;desc=MISS, edge;dur=40.2, fn-viewer-request;desc="edge-hello:1 cold init=7.7";dur=11.21, '
             'origin;dur=2.8, fn-origin-response;desc="default-cache-control:1 warm";dur=0.82')
HIT_WARM = ('cdn-cache;desc=HIT, edge;dur=2.9, fn-viewer-request;desc="edge-hello:1 warm";dur=0.96, '
            'fn-viewer-response;desc="security-headers:1 warm";dur=0.67')


def test_parse_server_timing_entries_params_and_quotes():
    metrics = parse_server_timing('a;dur=1.5, b;desc="x, y;z";dur=2, c, d;desc=plain, e;desc="q\\"uote"')
    assert metrics == [Metric("a", None, 1.5), Metric("b", "x, y;z", 2.0), Metric("c", None, None),
                       Metric("d", "plain", None), Metric("e", 'q"uote', None)]


@pytest.mark.parametrize("header", [None, "", " , ,", ";dur=3"])
def test_parse_server_timing_empty_or_nameless(header):
    assert parse_server_timing(header) == []


def test_parse_server_timing_bad_duration_is_none_not_error():
    assert parse_server_timing("edge;dur=abc") == [Metric("edge", None, None)]


def test_function_timing_cold_with_init():
    t = function_timing(Metric("fn-viewer-request", "edge-hello:1 cold init=7.7", 11.21))
    assert (t.event, t.function, t.state, t.init_ms, t.dur_ms) == ("viewer-request", "edge-hello:1", "cold", 7.7, 11.21)
    assert function_timing(Metric("origin", None, 2.0)) is None
    odd = function_timing(Metric("fn-origin-request", None, None))
    assert (odd.function, odd.state, odd.init_ms) == ("?", "?", None)


@pytest.mark.parametrize("x_cache,expected", [
    ("Hit from cloudfront", "hit"), ("RefreshHit from cloudfront", "refresh"), ("Miss from cloudfront", "miss"),
    ("Error from cloudfront", "error"), ("LambdaGeneratedResponse from cloudfront", "generated"),
    ("LambdaLimitExceeded from cloudfront", "throttled"), ("LambdaExecutionError from cloudfront", "fn-error"),
    ("FunctionGeneratedResponse from cloudfront", "generated"), ("FunctionValidationError from cloudfront", "fn-error"),
    ("Something from cloudfront", "something"), (None, "none"), ("  ", "none"),
])
def test_cache_outcome(x_cache, expected):
    assert cache_outcome(x_cache) == expected


@pytest.mark.parametrize("header,expected", [("IAD48-C1", "IAD"), ("fra20-c1", "FRA"), ("", "?"), (None, "?"),
                                             ("12-x", "?")])
def test_pop_name(header, expected):
    assert pop_name(header) == expected


def test_classify_cold_miss_any_cold_function_makes_the_request_cold():
    c = classify(200, {"X-Cache": "Miss from cloudfront", "X-Amz-Cf-Pop": "FRA20-C1", "Server-Timing": MISS_COLD})
    assert (c.status, c.cache, c.start, c.pop) == (200, "miss", "cold", "FRA")
    assert c.edge_ms == 40.2 and c.origin_ms == 2.8
    assert [f.state for f in c.functions] == ["cold", "warm"]
    assert c.init_ms == pytest.approx(7.7)
    assert bucket_name("/", c) == "/ [cold|miss@FRA]"


def test_classify_warm_hit_and_header_case_and_pairs():
    c = classify(200, [("x-cache", "Hit from cloudfront"), ("x-amz-cf-pop", "IAD48-C1"),
                       ("SERVER-TIMING", HIT_WARM), ("x-cache", "Miss from cloudfront")])
    assert (c.cache, c.start, c.pop) == ("hit", "warm", "IAD")  # the first of a repeated header wins
    assert c.origin_ms is None and c.init_ms == 0
    assert bucket_name("/", c) == "/ [warm|hit@IAD]"


def test_classify_no_function_and_no_headers():
    c = classify(200, {"X-Cache": "Hit from cloudfront", "Server-Timing": "cdn-cache;desc=HIT, edge;dur=0.4"},
                 default_pop="NRT")
    assert (c.start, c.pop, c.functions) == ("nofn", "NRT", ())
    bare = classify(502, {})
    assert (bare.cache, bare.start, bare.pop, bare.edge_ms) == ("none", "nofn", "?", None)


def test_classify_origin_durations_add_up():
    c = classify(404, {"Server-Timing": "origin;dur=1.5, fn-origin-request;desc=\"p:1 warm\";dur=1, origin;dur=2"})
    assert c.origin_ms == 3.5 and c.start == "warm"


@pytest.mark.parametrize("label", ["/", "/cache/max-age/60?k=<unique>", "/a [b]"])
def test_bucket_round_trip(label):
    c = classify(200, {"X-Cache": "Miss from cloudfront", "X-Amz-Cf-Pop": "NRT1", "Server-Timing": MISS_COLD})
    assert parse_bucket(bucket_name(label, c)) == (label, "cold", "miss", "NRT")


def test_parse_bucket_other_names():
    assert parse_bucket("Aggregated") is None
    assert parse_bucket("/ [cold]") is None


def test_throttled_function_never_ran():
    st = 'cdn-cache;desc=LAMBDALIMITEXCEEDED, edge;dur=1.8, fn-viewer-request;desc="lt-slow:1 warm";dur=0.03'
    c = classify(503, {"X-Cache": "LambdaLimitExceeded from cloudfront", "Server-Timing": st, "X-Amz-Cf-Pop": "IAD1"})
    assert (c.cache, c.start) == ("throttled", "throttled")
    assert c.functions[0].state == "throttled"
    assert bucket_name("/throttle/*", c) == "/throttle/* [throttled|throttled@IAD]"
    two = classify(503, {"X-Cache": "LambdaLimitExceeded from cloudfront", "Server-Timing":
                         'fn-viewer-request;desc="a:1 cold init=3";dur=5, fn-origin-request;desc="b:1 warm";dur=0'})
    assert two.start == "cold" and [f.state for f in two.functions] == ["cold", "throttled"]
