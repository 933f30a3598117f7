"""The dashboard's time series: a bounded ring of samples the control process takes of what it already collects.

Every ``interval_s`` the sampler gathers the same snapshot as ``GET /edgelab/v1/metrics``
(:func:`edge.control.admin.api.gather_metrics`: each POP's counters over its admin socket, every process's
function metrics) and keeps, per sample, what changed since the previous one:

- per POP: viewer requests, cache hits and misses by the ``X-Cache`` viewers got, errors, and whether the POP
  answered. The hit ratio is CloudFront's ``CacheHitRate``, "the percentage of all cacheable requests for which
  CloudFront served the content from its cache" (errors and uncacheable requests left out),
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/programming-cloudwatch-metrics.html:
  ``(Hit + RefreshHit) / (Hit + RefreshHit + Miss)``, as ``edgelab metrics`` prints it. The regional tiers
  (regional edge caches and Origin Shield nodes, ``REC-USE1`` ...) are rows of their own after the POPs, from their
  own counters: the requests POPs sent them, what their cache answered, errors.
- per function (summed over the processes, regions and versions that ran it): invocations, cold starts, errors and
  throttles (Lambda's ``Invocations``, ``Errors``, ``Throttles``:
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html), and the duration histogram's
  bucket counts split into warm invocations (``Duration``) and cold starts (``Init Duration`` + ``Duration``).

Counters are cumulative in their processes; a counter that went down (a POP restarted or reset its statistics)
counts from zero again, as Prometheus's ``rate()`` treats a counter reset. A POP that does not answer keeps its
last counters, so its next answer's difference covers the gap. The ring holds ``capacity`` samples (five minutes
of one-second samples by default); :meth:`MetricsSeries.to_json` lays them out as columns, which is the
charting library's (uPlot's) data layout: one x array of times, one array per series.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from edge.control.admin.api import ADMIN_CTX, gather_metrics
from edge.tasks import TaskOwner

__all__ = ["SERIES", "MetricsSeries", "add_series_routes", "hit_ratio"]

log = logging.getLogger("edgelab.admin.series")

HIT, REFRESH_HIT, MISS = "Hit from cloudfront", "RefreshHit from cloudfront", "Miss from cloudfront"
POP_FIELDS = ("requests", "hits", "misses", "errors")
FUNCTION_FIELDS = ("invocations", "cold_starts", "errors", "throttles")
DEFAULT_INTERVAL_S = 1.0
DEFAULT_CAPACITY = 300


def hit_ratio(hits: int, misses: int) -> float | None:
    """CloudFront's CacheHitRate of ``hits`` (Hit + RefreshHit) and ``misses``; None before a cacheable request."""
    total = hits + misses
    return hits / total if total else None


def _pop_counters(stats: dict[str, Any]) -> dict[str, int]:
    by = stats.get("by_x_cache") or {}
    return {"requests": int(stats.get("requests", 0)), "hits": int(by.get(HIT, 0)) + int(by.get(REFRESH_HIT, 0)),
            "misses": int(by.get(MISS, 0)), "errors": int(stats.get("errors", 0))}


def _tier_counters(stats: dict[str, Any]) -> dict[str, int]:
    """A regional edge cache / Origin Shield node's counters (its own stats: no viewer-facing X-Cache)."""
    return {"requests": int(stats.get("requests", 0)),
            "hits": int(stats.get("hits", 0)) + int(stats.get("refresh_hits", 0)),
            "misses": int(stats.get("misses", 0)), "errors": int(stats.get("errors", 0))}


def _buckets(dist: Any) -> list[int]:
    """Per-bucket (not cumulative) counts of a metrics Distribution snapshot, the last one being +Inf."""
    if not isinstance(dist, dict):
        return []
    cumulative = [int(n) for _, n in dist.get("buckets", [])] + [int(dist.get("count", 0))]
    return [n - (cumulative[i - 1] if i else 0) for i, n in enumerate(cumulative)]


@dataclass
class _FunctionSource:
    """The cumulative counters of one (process, region, function, version)."""

    counters: dict[str, int]
    warm: list[int]  # per-bucket counts of warm invocations' Duration
    cold: list[int]  # per-bucket counts of cold starts' Init Duration + Duration

    @classmethod
    def of(cls, m: dict[str, Any]) -> _FunctionSource:
        all_, cold_d = _buckets(m.get("duration_ms")), _buckets(m.get("cold_duration_ms"))
        warm = [a - (cold_d[i] if i < len(cold_d) else 0) for i, a in enumerate(all_)]
        return cls({k: int(m.get(k, 0)) for k in FUNCTION_FIELDS}, warm, _buckets(m.get("cold_latency_ms")))

    def since(self, prev: _FunctionSource | None) -> _FunctionSource:
        """What happened since ``prev`` (everything, when a counter went down: the process counted afresh)."""
        if prev is None or any(self.counters[k] < prev.counters[k] for k in FUNCTION_FIELDS) \
                or sum(self.warm) < sum(prev.warm) or sum(self.cold) < sum(prev.cold):
            return self
        return _FunctionSource({k: self.counters[k] - prev.counters[k] for k in FUNCTION_FIELDS},
                               _minus(self.warm, prev.warm), _minus(self.cold, prev.cold))


def _minus(a: list[int], b: list[int]) -> list[int]:
    return [x - (b[i] if i < len(b) else 0) for i, x in enumerate(a)]


def _add(into: list[int], more: list[int]) -> None:
    into.extend([0] * (len(more) - len(into)))
    for i, n in enumerate(more):
        into[i] += n


@dataclass
class Sample:
    t: float  # epoch seconds
    pops: dict[str, dict[str, int]]  # POP -> POP_FIELDS deltas, absent when the POP did not answer
    functions: dict[str, dict[str, int]]  # function -> FUNCTION_FIELDS deltas (only functions with activity)
    latency: dict[str, tuple[list[int], list[int]]]  # function -> (warm, cold) per-bucket deltas


@dataclass
class MetricsSeries:
    """The ring of samples and the cumulative counters the next sample is a difference from."""

    capacity: int = DEFAULT_CAPACITY
    interval_s: float = DEFAULT_INTERVAL_S
    bounds_ms: list[float] = field(default_factory=list)  # the duration histogram's upper bounds (ms)
    samples: deque[Sample] = field(init=False)
    _pops: dict[str, dict[str, int]] = field(default_factory=dict)
    _functions: dict[tuple[str, str, str, str], _FunctionSource] = field(default_factory=dict)
    pop_names: list[str] = field(default_factory=list)  # every POP of the stack, in order (more join as seen)

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.interval_s <= 0:
            raise ValueError(f"a series needs capacity >= 1 and interval_s > 0 (got {self.capacity}, "
                             f"{self.interval_s})")
        self.samples = deque(maxlen=self.capacity)

    def add(self, t: float, data: dict[str, Any]) -> Sample:
        """Take one sample of a :func:`gather_metrics` snapshot taken at ``t`` (epoch seconds)."""
        sample = Sample(t, {}, {}, {})
        sources: list[tuple[tuple[str, str, str, str], dict[str, Any]]] = []
        for process, by_region in self._function_snapshots(data):
            sources.extend(((process, region, fn, ver), m) for region, fns in by_region.items()
                           if isinstance(fns, dict) for fn, versions in fns.items() if isinstance(versions, dict)
                           for ver, m in versions.items() if isinstance(m, dict))
        rows = [(name, stats, _pop_counters) for name, stats in (data.get("pops") or {}).items()]
        rows += [(name, stats, _tier_counters) for name, stats in (data.get("tiers") or {}).items()]
        for name, stats, counters in rows:  # POPs, then the regional tiers (REC-..., the nodes' own names)
            if name not in self.pop_names:
                self.pop_names.append(name)
            if not isinstance(stats, dict) or "error" in stats or "requests" not in stats:
                continue  # unreachable: keep its last counters
            now, prev = counters(stats), self._pops.get(name)
            if prev is None or any(now[k] < prev[k] for k in POP_FIELDS):
                sample.pops[name] = now  # first answer, or the POP counted afresh
            else:
                sample.pops[name] = {k: now[k] - prev[k] for k in POP_FIELDS}
            self._pops[name] = now
        for key, m in sources:
            if not self.bounds_ms and isinstance(m.get("duration_ms"), dict):
                self.bounds_ms = [float(b) for b, _ in m["duration_ms"].get("buckets", [])]
            now_src = _FunctionSource.of(m)
            delta = now_src.since(self._functions.get(key))
            self._functions[key] = now_src
            if not any(delta.counters.values()) and not any(delta.warm) and not any(delta.cold):
                continue
            fn = key[2]
            acc = sample.functions.setdefault(fn, dict.fromkeys(FUNCTION_FIELDS, 0))
            for k in FUNCTION_FIELDS:
                acc[k] += delta.counters[k]
            warm, cold = sample.latency.setdefault(fn, ([], []))
            _add(warm, delta.warm)
            _add(cold, delta.cold)
        self.samples.append(sample)
        return sample

    @staticmethod
    def _function_snapshots(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        control = data.get("control")
        if isinstance(control, dict):
            yield "control", control
        for pop, stats in (data.get("pops") or {}).items():
            functions = stats.get("functions") if isinstance(stats, dict) else None
            if isinstance(functions, dict) and "error" not in functions:
                yield pop, functions

    def to_json(self) -> dict[str, Any]:
        """The ring as columns: ``t`` (epoch seconds) and, aligned with it, per POP ``requests``/``hits``/
        ``misses``/``errors`` (counts in each interval, None where the POP did not answer), ``rate`` (requests per
        second) and ``hit_ratio`` (None without cacheable requests); per function its counters; window totals;
        and per function the warm and cold latency histograms over the window (``bounds_ms``: bucket upper
        bounds, the last bucket being +Inf)."""
        samples = list(self.samples)
        t = [round(s.t, 3) for s in samples]
        gaps = [max(samples[i].t - samples[i - 1].t, 1e-9) if i else self.interval_s for i in range(len(samples))]
        pops: dict[str, Any] = {}
        for name in self.pop_names:
            cols: dict[str, list[Any]] = {k: [s.pops[name][k] if name in s.pops else None for s in samples]
                                          for k in POP_FIELDS}
            cols["rate"] = [None if n is None else round(n / gap, 3) for n, gap in zip(cols["requests"], gaps,
                                                                                         strict=True)]
            cols["hit_ratio"] = [None if h is None else _round(hit_ratio(h, m))
                                 for h, m in zip(cols["hits"], cols["misses"], strict=True)]
            totals = {k: sum(v for v in cols[k] if v is not None) for k in POP_FIELDS}
            pops[name] = {**cols, "totals": {**totals, "hit_ratio": _round(hit_ratio(totals["hits"],
                                                                                      totals["misses"]))}}
        names = sorted({fn for s in samples for fn in s.functions})
        functions: dict[str, Any] = {}
        nb = len(self.bounds_ms) + 1
        for fn in names:
            cols = {k: [s.functions.get(fn, {}).get(k, 0) for s in samples] for k in FUNCTION_FIELDS}
            warm, cold = [0] * nb, [0] * nb
            for s in samples:
                if fn in s.latency:
                    _add(warm, s.latency[fn][0])
                    _add(cold, s.latency[fn][1])
            functions[fn] = {**cols, "totals": {k: sum(cols[k]) for k in FUNCTION_FIELDS},
                             "latency": {"warm": warm, "cold": cold}}
        return {"interval_s": self.interval_s, "capacity": self.capacity, "t": t, "pops": pops,
                "functions": functions, "bounds_ms": self.bounds_ms}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


SERIES = web.AppKey("series", MetricsSeries)


async def _sample_forever(admin: web.Application, series: MetricsSeries) -> None:
    """Sample every ``interval_s`` (a slow gather delays the next sample; it never piles samples up)."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            data = await gather_metrics(admin)
            series.add(time.time(), data)
        except Exception:  # a sample lost (and said so) must not stop the next ones
            log.exception("dashboard series: sample failed")
        await asyncio.sleep(max(0.0, series.interval_s - (loop.time() - started)))


def add_series_routes(admin: web.Application, *, interval_s: float = DEFAULT_INTERVAL_S,
                      capacity: int = DEFAULT_CAPACITY) -> MetricsSeries:
    """``GET /series`` on the admin sub-application (``/edgelab/v1/series``), and the sampler that feeds it: a
    task owned by the admin app, started with it (after its POP sessions exist) and cancelled at its cleanup."""
    series = MetricsSeries(capacity=capacity, interval_s=interval_s, pop_names=[p.name for p in admin[ADMIN_CTX].pops])
    admin[SERIES] = series

    async def sampler_ctx(app: web.Application) -> AsyncIterator[None]:
        tasks = TaskOwner("edgelab-series")
        tasks.spawn(_sample_forever(app, series), name="sampler")
        yield
        await tasks.aclose()

    async def get_series(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(request.app[SERIES].to_json()), content_type="application/json")

    admin.cleanup_ctx.append(sampler_ctx)
    admin.router.add_get("/series", get_series)
    return series
