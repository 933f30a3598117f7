"""Per (region, function, version) invocation metrics, CloudWatch-named, cheap to update on the hot path.

Durations keep exact ``count``/``sum``/``max``, cumulative counts per bucket of ``BUCKETS_MS`` (the histograms of
the control port's Prometheus ``/metrics``), plus a ring of the last ``RESERVOIR`` samples for percentiles
(p50/p95/p99 are over that window). ``snapshot()`` returns plain dicts (JSON-ready)::

    {region: {function: {version: {"invocations", "errors", "throttles", "cold_starts",
                                    "provisioned_invocations", "spillover_invocations",
                                    "concurrent_executions": {"current", "max"},
                                    "duration_ms": {...}, "init_duration_ms": {...},
                                    "cold_duration_ms": {...}, "cold_latency_ms": {...}}}}}

``cold_duration_ms`` is the Duration of the cold starts alone (so ``duration_ms`` minus it, bucket by bucket, is
the warm invocations' distribution) and ``cold_latency_ms`` is a cold start's Init Duration plus its Duration (what
the caller waited for the function); both are updated on cold starts only, never on a warm invocation's path.
"""

from __future__ import annotations

from bisect import bisect_left

RESERVOIR = 1024
# histogram bucket upper bounds (ms, "le"): from a 1 ms edge function to Lambda's 900 s maximum timeout
BUCKETS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
              60000.0, 300000.0, 900000.0)
FIRST_BUCKET_MS = BUCKETS_MS[0]


def _percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    idx = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[idx]


class Distribution:
    __slots__ = ("_buckets", "_pos", "_ring", "count", "maximum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0
        self._ring: list[float] = []
        self._pos = 0
        self._buckets = [0] * (len(BUCKETS_MS) + 1)  # per bucket (not cumulative); the last is +Inf

    def add(self, value: float) -> None:
        # the first bucket without a bisection: a warm invocation's duration is below 1 ms, and bisect_left's five
        # float comparisons cost ~800 instructions (callgrind, warm Executor.invoke calls)
        self._buckets[0 if value <= FIRST_BUCKET_MS else bisect_left(BUCKETS_MS, value)] += 1
        self.count += 1
        self.total += value
        if value > self.maximum:
            self.maximum = value
        ring = self._ring
        if len(ring) < RESERVOIR:
            ring.append(value)
        else:
            ring[self._pos] = value
            self._pos = (self._pos + 1) % RESERVOIR

    def snapshot(self) -> dict[str, object]:
        """Count, sum, max, average, percentiles of the recent window, and ``buckets``: ``[[le, cumulative
        count], ...]`` over ``BUCKETS_MS`` (the +Inf bucket is ``count``)."""
        vals = sorted(self._ring)
        cumulative, running = [], 0
        for bound, n in zip(BUCKETS_MS, self._buckets, strict=False):
            running += n
            cumulative.append([bound, running])
        return {"count": self.count, "sum": round(self.total, 3), "max": round(self.maximum, 3),
                "avg": round(self.total / self.count, 3) if self.count else 0.0,
                "p50": round(_percentile(vals, 0.50), 3), "p95": round(_percentile(vals, 0.95), 3),
                "p99": round(_percentile(vals, 0.99), 3), "buckets": cumulative}


class FunctionMetrics:
    __slots__ = (
        "cold_duration",
        "cold_latency",
        "cold_starts",
        "concurrent",
        "duration",
        "errors",
        "init_duration",
        "invocations",
        "max_concurrent",
        "provisioned_invocations",
        "spillover_invocations",
        "throttles",
    )

    def __init__(self) -> None:
        self.invocations = 0
        self.errors = 0
        self.throttles = 0
        self.cold_starts = 0
        self.provisioned_invocations = 0
        self.spillover_invocations = 0
        self.concurrent = 0  # invocations running (ConcurrentExecutions): counted by Executor.invoke
        self.max_concurrent = 0
        self.duration = Distribution()
        self.init_duration = Distribution()
        self.cold_duration = Distribution()
        self.cold_latency = Distribution()

    def snapshot(self) -> dict[str, object]:
        return {"invocations": self.invocations, "errors": self.errors, "throttles": self.throttles,
                "cold_starts": self.cold_starts, "provisioned_invocations": self.provisioned_invocations,
                "spillover_invocations": self.spillover_invocations,
                "concurrent_executions": {"current": self.concurrent, "max": self.max_concurrent},
                "duration_ms": self.duration.snapshot(), "init_duration_ms": self.init_duration.snapshot(),
                "cold_duration_ms": self.cold_duration.snapshot(), "cold_latency_ms": self.cold_latency.snapshot()}


class Metrics:
    """Owned by one Executor; updated only from its event loop."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, str], FunctionMetrics] = {}

    def get(self, region: str, function: str, version: str) -> FunctionMetrics:
        key = (region, function, version)
        m = self._by_key.get(key)
        if m is None:
            m = self._by_key[key] = FunctionMetrics()
        return m

    def snapshot(self) -> dict[str, dict[str, dict[str, dict[str, object]]]]:
        out: dict[str, dict[str, dict[str, dict[str, object]]]] = {}
        for (region, fn, version), m in sorted(self._by_key.items()):
            out.setdefault(region, {}).setdefault(fn, {})[version] = m.snapshot()
        return out
