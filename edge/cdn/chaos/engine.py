"""A POP's live chaos scenario: the data-path hooks (origin faults) and the fault source of the POP's invocation
core (function faults).

:class:`PopChaos` is built from a validated :class:`~edge.cdn.chaos.scenario.Scenario` for one POP when the scenario
is applied (``PUT /chaos`` on the POP's admin socket, ``edge.control.stack.pop_chaos``), with the instant it was
applied in the control process (so every POP's relative windows start together). The POP keeps it in
``PopContext.chaos`` (None without a scenario: the origin-fetch step's single None check is all the cost then) and
hands it to its executor's ``StartShaper`` as the fault source.

* :meth:`PopChaos.fetch` stands in for the origin client's ``fetch`` while a scenario is applied: it finds the
  faults whose window is open and whose path patterns match the viewer's URI path (first match per kind, in file
  order: one ``origin-latency`` and one of ``origin-error`` / ``origin-timeout`` / ``origin-refused``), sleeps the
  latency (counted as origin time), then answers the terminal fault or fetches from the origin. The origin-fetch
  step treats the outcome like a real origin's (stale-if-error, origin failover, 502/504 pages, error caching).
* :meth:`PopChaos.shape` answers the executor per invocation: a throttle or a forced cold start, counted down per
  POP (``count``) or drawn (``rate``, from the scenario's seed).

Every injection adds a Server-Timing entry (``chaos;desc="origin-latency";dur=250.0``; the function faults' entries
come from the trigger runner), counts in ``PopStats.chaos_faults`` (``edgelab_pop_chaos_faults_total`` in the
Prometheus output) and, the first time a fault fires in its window, logs one line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.cdn.chaos.scenario import (
    COLD_START,
    ORIGIN_ERROR,
    ORIGIN_LATENCY,
    ORIGIN_REFUSED,
    ORIGIN_TIMEOUT,
    THROTTLE,
    Fault,
    Latency,
    Scenario,
)
from edge.cdn.config.behaviors import compile_pattern
from edge.cdn.errors import OriginTimeout, OriginUnavailable
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse, ResponseMeta
from edge.invocation.models import Shaping

if TYPE_CHECKING:
    import re

    from edge.cdn.origin.client import OriginClient
    from edge.cdn.steps import Exchange

__all__ = ["PopChaos"]

log = logging.getLogger("edgelab.chaos")

DEFAULT_READ_TIMEOUT_S = 30.0  # CloudFront's default OriginReadTimeout (S3 origins have no setting)


class _Live:
    """One fault as a POP runs it: its compiled patterns, window and what is left of its count."""

    __slots__ = ("begin", "end", "fault", "fired", "patterns", "remaining")

    def __init__(self, fault: Fault, applied_at: float) -> None:
        self.fault = fault
        self.begin, end = fault.window(applied_at)
        self.end = math.inf if end is None else end
        self.patterns: tuple[re.Pattern[str], ...] = tuple(compile_pattern(p) for p in fault.paths)
        self.remaining = fault.count
        self.fired = 0

    def open(self, now: float) -> bool:
        return self.begin <= now < self.end

    def matches(self, path: str) -> bool:
        patterns = self.patterns
        return not patterns or any(p.fullmatch(path) for p in patterns)


@dataclass(frozen=True, slots=True)
class _Verdict:
    latency: _Live | None
    terminal: _Live | None


class PopChaos:
    """One POP's live scenario (module docstring). ``counts``: the POP's fault counter (``PopStats.chaos_faults``)."""

    def __init__(self, scenario: Scenario, pop: str, applied_at: float, counts: Counter[str], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.scenario = scenario
        self.pop = pop
        self.applied_at = applied_at
        self.counts = counts
        self.clock = clock
        self.sleep = sleep
        self.rng = random.Random(f"{scenario.seed}\0{pop}")
        live = [_Live(f, applied_at) for f in scenario.for_pop(pop)]
        self.origin = tuple(x for x in live if x.fault.kind not in (COLD_START, THROTTLE))
        self.functions = tuple(x for x in live if x.fault.kind in (COLD_START, THROTTLE))

    # -- origin faults (the origin-fetch step) --------------------------------------------------------------
    def _select(self, path: str) -> _Verdict:
        now = self.clock()
        latency = terminal = None
        for live in self.origin:
            if (latency is None or terminal is None) and live.open(now) and live.matches(path):
                if live.fault.kind == ORIGIN_LATENCY:
                    latency = latency or live
                elif terminal is None:
                    terminal = live
        return _Verdict(latency, terminal)

    async def fetch(self, origin: OriginClient, ex: Exchange, request: EdgeRequest) -> EdgeResponse:
        """The origin's answer to ``request`` with this POP's open origin faults applied (module docstring).
        Raises ``OriginTimeout`` / ``OriginUnavailable`` like the origin client."""
        verdict = self._select(ex.request.uri)
        if verdict.latency is None and verdict.terminal is None:
            return await origin.fetch(request, streaming_ok=True, on_interim=ex.interim)
        read_timeout = request.origin.read_timeout if isinstance(request.origin, CustomOrigin) else \
            DEFAULT_READ_TIMEOUT_S
        delay = 0.0
        if verdict.latency is not None:
            lat = verdict.latency.fault.latency
            assert lat is not None
            delay = self.draw(lat) / 1000.0
            self._fired(verdict.latency, ex, f";dur={delay * 1000:.1f}")
            if delay >= read_timeout:  # slower than the origin may be: CloudFront gives up
                await self.sleep(read_timeout)
                raise OriginTimeout(f"chaos: origin-latency of {delay * 1000:.0f} ms exceeds the origin's read "
                                    f"timeout ({read_timeout:g} s)")
            await self.sleep(delay)
        terminal = verdict.terminal
        if terminal is None:
            resp = await origin.fetch(request, streaming_ok=True, on_interim=ex.interim)
            resp.meta.origin_seconds += delay
            return resp
        fault = terminal.fault
        self._fired(terminal, ex, "")
        if fault.kind == ORIGIN_ERROR:
            return EdgeResponse(status=fault.status, headers=[("Content-Type", fault.content_type)], body=fault.body,
                                meta=ResponseMeta(origin_seconds=delay, set_cookie=False))
        if fault.kind == ORIGIN_TIMEOUT:
            await self.sleep(read_timeout)
            raise OriginTimeout(f"chaos: origin-timeout: no answer within the origin's read timeout "
                                f"({read_timeout:g} s)")
        assert fault.kind == ORIGIN_REFUSED
        raise OriginUnavailable("chaos: origin-refused: connection refused")

    def draw(self, lat: Latency) -> float:
        """A latency in milliseconds from ``lat`` (never negative)."""
        kind, rng = lat.distribution, self.rng
        if kind == "fixed":
            return lat.a
        if kind == "uniform":
            value = rng.uniform(lat.a, lat.b)
        elif kind == "normal":
            value = rng.gauss(lat.a, lat.b)
        elif kind == "lognormal":
            value = lat.a * math.exp(rng.gauss(0.0, lat.b))
        else:
            value = rng.expovariate(1.0 / lat.a)
        return min(max(value, 0.0), 600_000.0)

    def _fired(self, live: _Live, ex: Exchange | None, dur: str) -> None:
        kind = live.fault.kind
        self.counts[kind] += 1
        live.fired += 1
        if ex is not None:
            ex.timing.add(f'chaos;desc="{kind}"{dur}')
            ex.trace.append(f"chaos:{kind}")
        if live.fired == 1:
            self._log_window(live)

    def _log_window(self, live: _Live) -> None:
        end = "until cleared" if live.end == math.inf else f"for {live.end - max(live.begin, self.applied_at):g} s"
        log.warning("chaos: POP %s: %s%s: injecting %s", self.pop,
                    f"scenario {self.scenario.name!r}, " if self.scenario.name else "", live.fault.describe(), end)

    # -- function faults (the executor's fault source) --------------------------------------------------------
    def shape(self, function_name: str, version: str) -> Shaping | None:
        """A throttle or forced cold start for this invocation of ``function_name:version``, or None."""
        if not self.functions:
            return None
        now = self.clock()
        for live in self.functions:
            fault = live.fault
            if fault.function != function_name or (fault.version is not None and fault.version != version) \
                    or not live.open(now):
                continue
            if live.remaining is not None:
                if live.remaining <= 0:
                    continue
                live.remaining -= 1
            elif fault.rate is not None and self.rng.random() >= fault.rate:
                continue
            self._fired(live, None, "")
            if fault.kind == THROTTLE:
                return Shaping(fault=THROTTLE, throttle=True)
            return Shaping(fault=COLD_START, cold=True, extra_init_ms=fault.extra_init_ms)
        return None

    # -- status -----------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        faults = []
        for live in (*self.origin, *self.functions):
            state = "pending" if now < live.begin else "expired" if now >= live.end else "active"
            if state == "active" and live.remaining is not None and live.remaining <= 0:
                state = "spent"
            faults.append({**live.fault.to_json(), "state": state, "injected": live.fired,
                           **({"remaining": live.remaining} if live.remaining is not None else {})})
        return {"name": self.scenario.name, "applied_at": self.applied_at, "faults": faults,
                "active": any(f["state"] == "active" for f in faults)}
