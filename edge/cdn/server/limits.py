"""Viewer connection limits and timeouts of a POP's listeners, and one log line per cause of a refused request.

``[viewer]`` (``edge.cdn.config.settings.ViewerSettings``) sets them; the README section "Viewer connection limits
and timeouts" says which CloudFront value each one mirrors. The pieces depend on no HTTP implementation: the POP's
own protocol (``edge.cdn.server.viewer``) and aiohttp's (a WebSocket relay taken over) run under the same guard:

* ``ConnectionGuard``: the connection budget of one POP process (HTTP and HTTPS listeners together) and the
  deadlines of the connections that are not in a request handler. A connection is in one of three states:
  ``HEAD`` (accepted, or bytes of a new request arrived, and no handler runs yet: the request head must be complete
  within ``header_timeout_s`` of that moment, else the connection is closed without an answer: a slowloris),
  ``BUSY`` (a request is being answered: its body is timed by the protocol) and ``IDLE`` (between requests:
  closed after ``keepalive_timeout_s``). At ``max_connections`` a new connection makes the guard close the
  connection that has waited longest in ``HEAD`` or ``IDLE`` (nginx does the same with keep-alive connections
  when it runs out of connections); only when every connection is in a handler is the new one refused (closed
  at once). A flood of idle sockets therefore never keeps a new viewer out, and never makes the process run out of
  file descriptors (``effective_max_connections`` keeps the budget under ``RLIMIT_NOFILE``). Deadlines are
  swept by one timer every ``tick`` seconds: the hit path only moves a connection between two insertion-ordered
  dicts (insertion order is deadline order, each dict having one timeout).
* ``ViewerConnection``: the ``asyncio.Protocol`` the listener really runs: it asks the guard for admission and
  forwards every protocol callback to the HTTP protocol it wraps (``viewer.ViewerProtocol``, or aiohttp's after a
  hand-over).
* ``CauseLog``: refused and failed requests logged once per cause (the first time with the traceback when there
  is one), then at most one line per cause every ``interval`` seconds with the count of the ones not printed.

AWS documents no viewer-side read or idle timeout for CloudFront (its quotas page,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cloudfront-limits.html, lists the request and URL
size limits and the origin timeouts only), nor a 408 answer; the header timeout therefore closes the connection
without an answer (what RFC 9112 §9.5 allows a server to do with an incomplete request), and a body that stops
arriving gets CloudFront's error page with 408 and the connection closed (a handler is already answering it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from edge.cdn.config.settings import ViewerSettings
from edge.cdn.errors import ViewerError

__all__ = ["BUSY", "HEAD", "IDLE", "CauseLog", "ConnectionGuard", "RequestTimeout", "ViewerConnection",
           "effective_max_connections"]

IDLE, HEAD, BUSY, CLOSED = 0, 1, 2, 3
FD_RESERVE = 256  # descriptors kept for the rest of the process (origin sockets, worker pipes, logs, the listeners)


class RequestTimeout(ViewerError):
    """The viewer stopped sending its request body for ``[viewer] body_timeout_s``: 408 with CloudFront's error
    page, and the connection is closed (the rest of the body is not waited for)."""

    status = 408
    message = "Bad request. The request body was not received in time."


def effective_max_connections(configured: int, reserve: int = FD_RESERVE) -> int:
    """``configured``, raised to fit the soft ``RLIMIT_NOFILE`` where the hard limit allows (the soft limit is raised
    toward the hard one), else lowered under it: a POP never accepts a connection it has no descriptor for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = configured + reserve
    if soft != resource.RLIM_INFINITY and want > soft:
        new_soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - reserve))


class ViewerConnection(asyncio.Protocol):
    """One viewer connection: admission by the guard, then every callback forwarded to ``inner``; ``at_once``, when
    set (the inner protocol's), is offered each read that comes while the connection idles first: True when it
    answered the read there and then (nothing else to do: the connection idles again, from now)."""

    __slots__ = ("admitted", "at_once", "entered", "guard", "inner", "state", "transport")

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self.inner = inner
        self.guard = guard
        self.transport: asyncio.Transport | None = None
        self.state = CLOSED
        self.entered = 0.0
        self.admitted = False
        self.at_once: Callable[[bytes], bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport's
        if not self.guard.admit(self):
            self.transport.abort()  # refused: closed at once, the HTTP protocol never sees it
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == IDLE:
            at_once = self.at_once
            if at_once is not None and at_once(data):
                self.guard.rested(self)
                return
            self.guard.head_started(self)
        elif state == CLOSED:
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        if self.admitted:
            self.admitted = False
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


@dataclass(slots=True)
class GuardCounters:
    accepted: int = 0
    refused: int = 0  # at the limit with every connection in a handler
    evicted: int = 0  # the longest-waiting HEAD/IDLE connection closed to make room
    header_timeouts: int = 0
    idle_timeouts: int = 0
    body_timeouts: int = 0


class ConnectionGuard:
    """The viewer connections of one POP process (see the module docstring)."""

    def __init__(self, settings: ViewerSettings, *, max_connections: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_connections = settings.max_connections if max_connections is None else max_connections
        self.header_timeout = settings.header_timeout_s
        self.body_timeout = settings.body_timeout_s
        self.keepalive_timeout = settings.keepalive_timeout_s
        self.tick = min(1.0, max(0.02, min(self.header_timeout, self.keepalive_timeout) / 4))
        self.clock = clock
        self.conns: dict[asyncio.BaseTransport, ViewerConnection] = {}
        self.heads: dict[ViewerConnection, float] = {}  # -> deadline; insertion order is deadline order
        self.idles: dict[ViewerConnection, float] = {}
        self.counters = GuardCounters()
        self._timer: asyncio.TimerHandle | None = None

    # --- the listener's side --------------------------------------------------------------------------
    def admit(self, conn: ViewerConnection) -> bool:
        if len(self.conns) >= self.max_connections and not self._evict():
            self.counters.refused += 1
            return False
        assert conn.transport is not None
        self.counters.accepted += 1
        self.conns[conn.transport] = conn
        now = self.clock()
        conn.state, conn.entered = HEAD, now
        self.heads[conn] = now + self.header_timeout
        return True

    def head_started(self, conn: ViewerConnection) -> None:
        """Bytes of a new request arrived on an idle connection: the header timeout runs from now."""
        self.idles.pop(conn, None)
        now = self.clock()
        conn.state, conn.entered = HEAD, now
        self.heads[conn] = now + self.header_timeout

    def release(self, conn: ViewerConnection) -> None:
        """The connection is gone (or being closed by the guard): it no longer counts. Idempotent."""
        if conn.transport is not None and self.conns.get(conn.transport) is conn:
            del self.conns[conn.transport]
        self.heads.pop(conn, None)
        self.idles.pop(conn, None)
        conn.state = CLOSED

    # --- the request handler's side -------------------------------------------------------------------
    def begin(self, transport: asyncio.BaseTransport | None) -> ViewerConnection | None:
        """A handler starts on ``transport``'s connection: no guard deadline while it runs."""
        conn = self.conns.get(transport) if transport is not None else None
        if conn is not None:
            state = conn.state
            if state == HEAD:
                self.heads.pop(conn, None)
            elif state == IDLE:
                self.idles.pop(conn, None)
            conn.state = BUSY
        return conn

    def end(self, conn: ViewerConnection | None) -> None:
        """The handler is done: the connection idles (keep-alive timeout) until the next request's bytes."""
        if conn is not None and conn.state == BUSY:
            now = self.clock()
            conn.state, conn.entered = IDLE, now
            self.idles[conn] = now + self.keepalive_timeout

    def rested(self, conn: ViewerConnection) -> None:
        """An idle connection's read was answered there and then (``ViewerConnection.at_once``): it idles from now."""
        self.idles.pop(conn, None)
        now = self.clock()
        conn.entered = now
        self.idles[conn] = now + self.keepalive_timeout

    # --- deadlines --------------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Sweep deadlines every ``tick`` seconds on ``loop`` (the running one by default) until ``stop``."""
        if self._timer is None:
            self._timer = (loop or asyncio.get_running_loop()).call_later(self.tick, self._on_tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_tick(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.sweep()
        finally:
            self._timer = loop.call_later(self.tick, self._on_tick)

    def sweep(self, now: float | None = None) -> int:
        """Close every HEAD/IDLE connection past its deadline; returns how many."""
        now = self.clock() if now is None else now
        closed = 0
        for deadlines, is_head in ((self.heads, True), (self.idles, False)):
            while deadlines:
                conn, deadline = next(iter(deadlines.items()))
                if deadline > now:
                    break
                if is_head:
                    self.counters.header_timeouts += 1
                else:
                    self.counters.idle_timeouts += 1
                self._close(conn)
                closed += 1
        return closed

    def _evict(self) -> bool:
        """Close the connection waiting longest in HEAD or IDLE with nothing left to send; False if none."""
        candidates = [next(iter(d)) for d in (self.idles, self.heads) if d]
        for conn in sorted(candidates, key=lambda c: c.entered):
            if conn.transport is not None and conn.transport.get_write_buffer_size() == 0:
                self.counters.evicted += 1
                self._close(conn, abort=True)
                return True
        return False

    def _close(self, conn: ViewerConnection, *, abort: bool = False) -> None:
        transport = conn.transport
        self.release(conn)
        if transport is not None:
            if abort or transport.get_write_buffer_size():  # a reader that stopped reading is not waited for
                transport.abort()
            else:
                transport.close()

    def close_all(self) -> None:
        """Abort every connection (the POP is stopping)."""
        for conn in list(self.conns.values()):
            self._close(conn, abort=True)

    def snapshot(self) -> dict[str, int]:
        c = self.counters
        return {"open": len(self.conns), "max": self.max_connections, "accepted": c.accepted, "refused": c.refused,
                "evicted": c.evicted, "header_timeouts": c.header_timeouts, "idle_timeouts": c.idle_timeouts,
                "body_timeouts": c.body_timeouts}


@dataclass(slots=True)
class _Seen:
    last: float
    suppressed: int = 0


class CauseLog:
    """One log line per cause, then at most one per ``interval`` seconds (see the module docstring)."""

    MAX_CAUSES = 256

    def __init__(self, logger: logging.Logger, *, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._causes: dict[tuple[Any, ...], _Seen] = {}

    def report(self, level: int, key: tuple[Any, ...], msg: str, *args: object,
               exc: BaseException | None = None) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``interval`` seconds ago; the first line of a
        cause carries ``exc``'s traceback. Returns whether a line was written."""
        now = self.clock()
        seen = self._causes.get(key)
        if seen is not None and now - seen.last < self.interval:
            seen.suppressed += 1
            return False
        if seen is None and len(self._causes) >= self.MAX_CAUSES:
            self._causes.clear()
        self._causes[key] = _Seen(last=now)
        more = f" [{seen.suppressed} more since the last line]" if seen is not None and seen.suppressed else ""
        self.logger.log(level, msg + "%s", *args, more, exc_info=exc if seen is None and exc is not None else None)
        return True
