"""Chaos scenario files: parsing, windows, and errors that name the key and its line."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from edge.cdn.chaos.scenario import Latency, ScenarioError, parse_scenario


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_scenario(textwrap.dedent(text))


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    return str(info.value)


def test_every_kind_parses_with_its_defaults() -> None:
    s = parse("""
        name = "brown-out"
        seed = 7
        [[fault]]
        kind = "origin-latency"
        paths = ["/api/*"]
        pops = ["iad"]
        latency_ms = 250
        [[fault]]
        kind = "origin-latency"
        latency = { distribution = "uniform", min_ms = 10, max_ms = 20 }
        [[fault]]
        kind = "origin-error"
        status = 503
        body = "down"
        [[fault]]
        kind = "origin-timeout"
        start = 5
        duration = 10
        [[fault]]
        kind = "origin-refused"
        pops = "all"
        [[fault]]
        kind = "cold-start"
        function = "hello"
        version = 3
        extra_init_ms = 500
        [[fault]]
        kind = "throttle"
        function = "hello"
        rate = 0.5
    """)
    assert (s.name, s.seed, len(s.faults)) == ("brown-out", 7, 7)
    lat, dist, err, timeout, refused, cold, throttle = s.faults
    assert lat.paths == ("/api/*",) and lat.pops == ("IAD",) and lat.latency == Latency("fixed", 250.0)
    assert dist.latency == Latency("uniform", 10.0, 20.0) and dist.pops == ()
    assert (err.status, err.body, err.content_type) == (503, b"down", "text/plain")
    assert timeout.window(1000.0) == (1005.0, 1015.0)
    assert refused.window(1000.0) == (1000.0, None) and refused.pops == ()
    assert (cold.function, cold.version, cold.count, cold.extra_init_ms) == ("hello", "3", 1, 500.0)
    assert (throttle.rate, throttle.count) == (0.5, None)
    assert s.for_pop("iad") == s.faults and s.for_pop("FRA") == s.faults[1:]


def test_absolute_windows() -> None:
    s = parse("""
        [[fault]]
        kind = "origin-refused"
        at = 2026-12-05T01:00:00Z
        until = 2026-12-05T01:05:00Z
        [[fault]]
        kind = "origin-refused"
        at = 2026-12-05T01:00:00+01:00
        duration = 60
    """)
    start = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC).timestamp()
    assert s.faults[0].window(0.0) == (start, start + 300)
    assert s.faults[1].window(0.0) == (start - 3600, start - 3540)


@pytest.mark.parametrize(("text", "expected"), [
    ("[[fault]]\nkind = 'origin-latency'\nlatency_ms = 10\nstatuss = 3\n",
     "line 4: fault[1].statuss: unknown key for a origin-latency fault"),
    ("[[fault]]\nkind = 'origin-slow'\n", "line 2: fault[1].kind: kind 'origin-slow' is not one of"),
    ("[[fault]]\npaths = ['/x']\n", "line 1: fault[1]: missing kind"),
    ("[[fault]]\nkind = 'origin-error'\nstatus = 503\n[[fault]]\nkind = 'origin-error'\nstatus = 302\n",
     "line 6: fault[2].status: 302 is out of range 400..599"),
    ("[[fault]]\nkind = 'origin-error'\n", "line 1: fault[1]: an origin-error fault needs status"),
    ("[[fault]]\nkind = 'origin-latency'\n", "needs exactly one of latency_ms"),
    ("[[fault]]\nkind = 'origin-latency'\nlatency = { distribution = 'pareto', a = 1 }\n",
     "line 3: fault[1].latency: distribution 'pareto' is not one of"),
    ("[[fault]]\nkind = 'origin-latency'\nlatency = { distribution = 'uniform', min_ms = 5 }\n",
     "missing: ['max_ms']"),
    ("[[fault]]\nkind = 'origin-latency'\nlatency = { distribution = 'uniform', min_ms = 5, max_ms = 1 }\n",
     "min_ms (5) is above max_ms (1)"),
    ("[[fault]]\nkind = 'origin-latency'\nlatency_ms = -1\n", "fault[1].latency_ms: -1 is out of range"),
    ("[[fault]]\nkind = 'origin-refused'\nduration = 0\n", "fault[1].duration: 0 is out of range: must be > 0"),
    ("[[fault]]\nkind = 'origin-refused'\nat = 2026-12-05T01:00:00\n", "must be a TOML date-time with an offset"),
    ("[[fault]]\nkind = 'origin-refused'\nuntil = 2026-12-05T01:00:00Z\n", "fault[1].until: until needs at"),
    ("[[fault]]\nkind = 'origin-refused'\nstart = 3\nat = 2026-12-05T01:00:00Z\n",
     "line 3: fault[1].start: give either start"),
    ("[[fault]]\nkind = 'origin-refused'\npops = []\n", "fault[1].pops: must be a non-empty list"),
    ("[[fault]]\nkind = 'cold-start'\n", "a cold-start fault needs function"),
    ("[[fault]]\nkind = 'cold-start'\nfunction = 'a b'\n", "is not a Lambda function name"),
    ("[[fault]]\nkind = 'cold-start'\nfunction = 'f'\npaths = ['/x']\n",
     "line 4: fault[1].paths: unknown key for a cold-start fault (function faults apply to every path)"),
    ("[[fault]]\nkind = 'cold-start'\nfunction = 'f'\nversion = 'prod'\n", "must be a version number or"),
    ("[[fault]]\nkind = 'throttle'\nfunction = 'f'\n", "needs exactly one of count = N"),
    ("[[fault]]\nkind = 'throttle'\nfunction = 'f'\nrate = 1.5\n", "fault[1].rate: 1.5 is out of range"),
    ("[[fault]]\nkind = 'throttle'\nfunction = 'f'\ncount = true\n", "fault[1].count: must be an integer"),
    ("name = 'x'\nfaults = 3\n", "line 2: unknown top-level key 'faults'"),
    ("seed = 'x'\n[[fault]]\nkind = 'origin-refused'\n", "line 1: seed must be an integer"),
    ("name = 'x'\n", "has no [[fault]] table"),
    ("[fault]\nkind = 'origin-refused'\n", "fault must be an array of tables: write [[fault]]"),
    ("[[fault]\n", "not valid TOML"),
])
def test_bad_scenarios_are_refused_naming_key_and_line(text: str, expected: str) -> None:
    assert expected in error(text)


def test_descriptions() -> None:
    s = parse("""
        [[fault]]
        kind = "origin-latency"
        latency = { distribution = "lognormal", median_ms = 100, sigma = 0.5 }
        [[fault]]
        kind = "throttle"
        function = "f"
        version = "$LATEST"
        count = 2
    """)
    assert s.faults[0].describe() == "origin-latency #1 (latency lognormal(median_ms=100, sigma=0.5)) on *"
    assert s.faults[1].describe() == "throttle #2 (f:$LATEST next 2) on every path"
