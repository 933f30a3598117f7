"""A POP's live scenario with a fake origin, clock and sleep: which fault applies, what it does, what it counts."""

from __future__ import annotations

import logging
import textwrap
from collections import Counter

import pytest

from edge.cdn.chaos.engine import PopChaos
from edge.cdn.chaos.scenario import parse_scenario
from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, ResponseMeta
from edge.cdn.steps import Exchange


class Origin:
    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, request: EdgeRequest, *, streaming_ok: bool = True, on_interim: object = None) -> EdgeResponse:
        self.calls += 1
        return EdgeResponse(200, [("Content-Type", "text/plain")], b"ok", meta=ResponseMeta(origin_seconds=0.01))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def chaos(text: str, pop: str = "IAD") -> tuple[PopChaos, Clock, Counter[str]]:
    clock, counts = Clock(), Counter[str]()
    return PopChaos(parse_scenario(textwrap.dedent(text)), pop, clock.now, counts, clock=clock,
                    sleep=clock.sleep), clock, counts


def exchange(uri: str) -> tuple[Exchange, EdgeRequest]:
    req = EdgeRequest(method="GET", uri=uri, querystring="", headers=[], client_ip="127.0.0.1",
                      origin=CustomOrigin("origin.example", read_timeout=4.0))
    return Exchange(request=req, request_id="rid", started=0.0), req


async def test_latency_then_origin_counted_as_origin_time_and_in_server_timing() -> None:
    c, clock, counts = chaos("""
        [[fault]]
        kind = "origin-latency"
        paths = ["/api/*"]
        latency_ms = 250
        duration = 10
    """)
    origin = Origin()
    ex, req = exchange("/api/x")
    resp = await c.fetch(origin, ex, req)
    assert resp.status == 200 and origin.calls == 1 and clock.slept == [0.25]
    assert resp.meta.origin_seconds == pytest.approx(0.26)
    assert ex.timing.entries == ['chaos;desc="origin-latency";dur=250.0'] and counts == {"origin-latency": 1}
    ex, req = exchange("/other")  # another path: untouched
    await c.fetch(origin, ex, req)
    assert ex.timing.entries == [] and clock.slept == [0.25]
    clock.now += 10  # the window is over
    ex, req = exchange("/api/x")
    await c.fetch(origin, ex, req)
    assert ex.timing.entries == [] and counts == {"origin-latency": 1}


async def test_latency_past_the_read_timeout_is_a_timeout() -> None:
    c, clock, _ = chaos("[[fault]]\nkind = 'origin-latency'\nlatency_ms = 5000\n")
    ex, req = exchange("/")
    with pytest.raises(OriginTimeout, match="exceeds the origin's read timeout"):
        await c.fetch(Origin(), ex, req)
    assert clock.slept == [4.0]


async def test_terminal_faults() -> None:
    c, clock, counts = chaos("""
        [[fault]]
        kind = "origin-error"
        paths = ["/err"]
        status = 503
        body = "down"
        [[fault]]
        kind = "origin-timeout"
        paths = ["/slow"]
        [[fault]]
        kind = "origin-refused"
        paths = ["/gone"]
    """)
    origin = Origin()
    ex, req = exchange("/err")
    resp = await c.fetch(origin, ex, req)
    assert (resp.status, resp.body, resp.headers) == (503, b"down", [("Content-Type", "text/plain")])
    with pytest.raises(OriginTimeout):
        await c.fetch(origin, *exchange("/slow"))
    assert clock.slept == [4.0]
    with pytest.raises(OriginUnavailable, match="connection refused"):
        await c.fetch(origin, *exchange("/gone"))
    assert origin.calls == 0 and counts == {"origin-error": 1, "origin-timeout": 1, "origin-refused": 1}


async def test_pending_window_and_pop_selection() -> None:
    text = "[[fault]]\nkind = 'origin-refused'\npops = ['FRA']\nstart = 5\n"
    c, clock, _ = chaos(text, pop="FRA")
    await c.fetch(Origin(), *exchange("/"))  # not yet
    clock.now += 5
    with pytest.raises(OriginUnavailable):
        await c.fetch(Origin(), *exchange("/"))
    other, _, _ = chaos(text, pop="IAD")
    assert other.origin == () and other.functions == ()


def test_function_faults_count_down_per_pop_and_match_version() -> None:
    c, _, counts = chaos("""
        [[fault]]
        kind = "cold-start"
        function = "hello"
        version = "2"
        count = 2
        extra_init_ms = 300
        [[fault]]
        kind = "throttle"
        function = "hello"
        count = 1
    """)
    assert c.shape("other", "2") is None
    first = c.shape("hello", "2")
    assert first is not None and first.cold and first.extra_init_ms == 300 and first.fault == "cold-start"
    assert c.shape("hello", "2") is not None
    throttled = c.shape("hello", "2")  # the cold starts are spent: the throttle fault is next
    assert throttled is not None and throttled.throttle and throttled.fault == "throttle"
    assert c.shape("hello", "2") is None and c.shape("hello", "1") is None
    assert counts == {"cold-start": 2, "throttle": 1}
    states = [f["state"] for f in c.status()["faults"]]
    assert states == ["spent", "spent"]


def test_throttle_rate_is_reproducible_from_the_seed() -> None:
    text = "seed = 3\n[[fault]]\nkind = 'throttle'\nfunction = 'f'\nrate = 0.3\n"
    runs = []
    for _ in range(2):
        c, _, _ = chaos(text)
        runs.append([c.shape("f", "1") is not None for _ in range(200)])
    assert runs[0] == runs[1] and 30 <= sum(runs[0]) <= 90


def test_latency_distributions_stay_in_bounds() -> None:
    c, _, _ = chaos("[[fault]]\nkind = 'origin-latency'\nlatency = { distribution = 'uniform', min_ms = 10, "
                    "max_ms = 20 }\n")
    lat = c.origin[0].fault.latency
    assert lat is not None
    assert all(10 <= c.draw(lat) <= 20 for _ in range(200))
    c, _, _ = chaos("[[fault]]\nkind = 'origin-latency'\nlatency = { distribution = 'normal', mean_ms = 1, "
                    "stddev_ms = 50 }\n")
    lat = c.origin[0].fault.latency
    assert lat is not None
    assert min(c.draw(lat) for _ in range(200)) == 0.0  # never negative


async def test_one_log_line_per_fault_window(caplog: pytest.LogCaptureFixture) -> None:
    c, _, counts = chaos("name = 'demo'\n[[fault]]\nkind = 'origin-refused'\n")
    with caplog.at_level(logging.WARNING, logger="edgelab.chaos"):
        for _ in range(5):
            with pytest.raises(OriginUnavailable):
                await c.fetch(Origin(), *exchange("/"))
    lines = [r.getMessage() for r in caplog.records if r.name == "edgelab.chaos"]
    assert lines == ["chaos: POP IAD: scenario 'demo', origin-refused #1 (connection refused) on *: injecting "
                     "until cleared"]
    assert counts["origin-refused"] == 5
