"""Unit tests of ``edge.cdn.server.limits``: the connection guard's states, eviction and deadlines with fake
transports and a fake clock, ``effective_max_connections`` and ``CauseLog``'s rate limiting."""

from __future__ import annotations

import asyncio
import logging
import resource

import pytest

from edge.cdn.config.settings import ViewerSettings
from edge.cdn.server.limits import (
    BUSY,
    HEAD,
    IDLE,
    CauseLog,
    ConnectionGuard,
    ViewerConnection,
    effective_max_connections,
)


class FakeTransport(asyncio.Transport):
    def __init__(self, pending: int = 0) -> None:
        super().__init__()
        self.closed = self.aborted = False
        self.pending = pending

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.pending


class Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(data.decode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def guard(max_connections: int = 2) -> tuple[ConnectionGuard, Clock]:
    clock = Clock()
    settings = ViewerSettings(max_connections=max_connections, header_timeout_s=1, body_timeout_s=1,
                              keepalive_timeout_s=5)
    return ConnectionGuard(settings, clock=clock), clock


def connect(g: ConnectionGuard, pending: int = 0) -> tuple[ViewerConnection, FakeTransport, Inner]:
    inner, transport = Inner(), FakeTransport(pending)
    conn = ViewerConnection(inner, g)
    conn.connection_made(transport)
    return conn, transport, inner


def test_states_follow_the_request_cycle_and_deadlines_close_only_waiting_connections() -> None:
    g, clock = guard()
    conn, transport, inner = connect(g)
    assert conn.state == HEAD and inner.events == ["made"]
    conn.data_received(b"GET / HTTP/1.1\r\n\r\n")
    assert g.begin(transport) is conn and conn.state == BUSY
    clock.now += 100  # a handler may take as long as the origin does: no guard deadline
    assert g.sweep() == 0
    g.end(conn)
    assert conn.state == IDLE
    clock.now += 4.9
    assert g.sweep() == 0
    conn.data_received(b"G")  # the next request starts: the header timeout runs from now
    assert conn.state == HEAD
    clock.now += 0.9
    assert g.sweep() == 0
    clock.now += 0.2
    assert g.sweep() == 1 and transport.closed and g.counters.header_timeouts == 1
    assert not g.conns and conn.state != BUSY
    conn.data_received(b"late")  # after the guard closed it: not forwarded
    conn.connection_lost(None)
    assert inner.events == ["made", "GET / HTTP/1.1\r\n\r\n", "G", "lost"]


def test_idle_connection_closed_after_the_keepalive_timeout() -> None:
    g, clock = guard()
    _conn, transport, _ = connect(g)
    g.end(g.begin(transport))
    clock.now += 5.1
    assert g.sweep() == 1 and transport.closed and g.counters.idle_timeouts == 1


def test_at_the_limit_the_longest_waiting_connection_makes_room_and_busy_ones_are_never_evicted() -> None:
    g, clock = guard(2)
    _a, ta, _ = connect(g)
    clock.now += 0.1
    _b, tb, _ = connect(g)
    clock.now += 0.1
    _c, tc, _ = connect(g)  # a (oldest head) is evicted
    assert ta.aborted and not tb.aborted and g.counters.evicted == 1 and set(g.conns) == {tb, tc}
    g.begin(tb)
    g.begin(tc)
    d, td, inner = connect(g)  # every connection busy: refused, never seen by the HTTP protocol
    assert td.aborted and inner.events == [] and g.counters.refused == 1
    d.connection_lost(None)
    assert inner.events == [] and len(g.conns) == 2


def test_a_connection_still_sending_a_response_is_not_evicted() -> None:
    g, _ = guard(1)
    _a, ta, _ = connect(g, pending=10)
    _b, tb, _ = connect(g)
    assert not ta.aborted and tb.aborted and g.counters.refused == 1


def test_release_is_idempotent_and_counts_once() -> None:
    g, _ = guard(1)
    a, _ta, _ = connect(g)
    a.connection_lost(None)
    a.connection_lost(None)
    assert not g.conns
    _b, tb, _ = connect(g)
    assert not tb.aborted and len(g.conns) == 1


def test_effective_max_connections_stays_under_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert effective_max_connections(10) == 10
    huge = effective_max_connections(10**9)
    now_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert now_soft >= soft and 1 <= huge <= now_soft - 256


def test_cause_log_writes_one_line_per_cause_then_one_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = CauseLog(logging.getLogger("edgelab.test"), interval=30, clock=clock)
    caplog.set_level(logging.INFO, "edgelab.test")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        err = exc
    for _ in range(100):
        log.report(logging.ERROR, ("bug", "ValueError"), "unhandled %s", "x", exc=err)
        log.report(logging.INFO, ("parser", 400), "refused %s", "y")
    assert [r.getMessage() for r in caplog.records] == ["unhandled x", "refused y"]
    assert caplog.records[0].exc_info is not None and caplog.records[1].exc_info is None
    clock.now += 31
    log.report(logging.ERROR, ("bug", "ValueError"), "unhandled %s", "x", exc=err)
    assert caplog.records[-1].getMessage() == "unhandled x [99 more since the last line]"
    assert caplog.records[-1].exc_info is None  # one traceback per cause
