"""``edgelab whatif``: a request log evaluated offline against one or more distributions, with the POPs' own code.

For each request (in log order, per POP) and each distribution: the behavior its path selects
(``DistributionPlan.match``), the cache key (``edge.cdn.cache.keys.cache_key``), the stored variant classified on the
log's clock (``edge.cdn.steps.cache_lookup.classify``: Hit, Stale, Miss), and on an origin fetch the entry the POP
would store (``edge.cdn.steps.cache_store.storable_entry``: CloudFront's TTL rules) in the POP's store
(``edge.cdn.cache.store.CacheStore``). Nothing here re-implements a cache rule.

What the log cannot say is assumed, and the report states it:

- the origin's response headers: none (so the behavior's DefaultTTL applies, "Manage how long content stays in the
  cache (expiration)", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Expiration.html), unless
  ``--origin-headers`` maps path patterns to headers (Cache-Control, ETag...);
- the origin's status: the logged one (304 and 206 to viewers mean a 200 from the origin);
- the object's size: sc-content-len (else sc-bytes); an origin fetch moves that many body bytes, a revalidation
  answered 304 none (an expired entry with a validator is assumed unchanged at the origin);
- viewers' Accept-Encoding (not logged): ``gzip, deflate, br``, as browsers send it;
- one cache per edge location (``IAD89-C1`` -> ``IAD89``), unbounded (CloudFront does not publish its capacity);
  no regional edge cache tier (edgelab's configuration has none: Origin Shield is refused by the loader);
- a POP's clock is the latest log time it has seen (out-of-order lines are evaluated at that time);
- Lambda@Edge triggers run as CloudFront runs them ("CloudFront events that can trigger a Lambda@Edge function",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-cloudfront-trigger-events.html):
  viewer-request on every request the behavior allows, origin-request and origin-response "only when CloudFront
  forwards a request to your origin" (misses, revalidations, pass-throughs), viewer-response with the POP's skip
  rule (not when the origin's status is 400 or more, ``edge.cdn.steps.viewer_response``); no function is assumed
  to generate a response (it would end the request early). CloudFront Functions are counted the same way.

Caches are per POP, so POPs are independent: :func:`run_whatif` partitions the POPs over worker processes
(``multiprocess``, whose dill-based pools ship the closure that selects a worker's lines) when that is faster.
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from edge.cdn.cache.keys import cache_key
from edge.cdn.cache.policy import CacheEntry, Hit, Miss, PolicyOptions, StaleReason, merge_not_modified
from edge.cdn.cache.store import CacheStore
from edge.cdn.config.behaviors import compile_pattern
from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.plan import BehaviorPlan, DistributionPlan, compile_distribution
from edge.cdn.config.settings import Settings
from edge.cdn.steps.cache_lookup import classify
from edge.cdn.steps.cache_store import storable_entry
from edge.control.replay.readers import ReadStats, iter_log
from edge.control.replay.records import LogRecord

__all__ = [
    "ACCEPT_ENCODING",
    "Counters",
    "OriginHeaders",
    "WhatIfResult",
    "assumptions",
    "load_origin_headers",
    "run_whatif",
    "simulate",
]

ACCEPT_ENCODING = "gzip, deflate, br"
_UNBOUNDED = 2**62
_ORIGIN_STATUS = {304: 200, 206: 200, 0: 200}
SAMPLE_LINES = 100_000  # lines the partitioner reads to weigh the POPs
# About 5,500 legacy log lines. Measured on this 2-core machine, quiet, two distributions: 3,000 lines (1.1 MB) took
# 0.15-0.18 s in one process and 0.20 s in two; 20,000 lines (7 MB) 0.82 s in one and 0.56 s in two.
PARALLEL_MIN_BYTES = 2 << 20


@dataclass(slots=True)
class Counters:
    """One distribution's outcome at one POP (or summed)."""

    requests: int = 0
    hits: int = 0  # served from the cache (Hit, and stale-while-revalidate)
    refresh_hits: int = 0  # an expired entry revalidated (304 assumed)
    misses: int = 0
    passes: int = 0  # not cacheable (method or policy): straight to the origin
    refused: int = 0  # method not allowed by the behavior (CloudFront's 403), nothing else runs
    origin_requests: int = 0
    origin_bytes: int = 0
    invocations: Counter[str] = field(default_factory=Counter)  # "viewer-request", "cff:viewer-request", ...

    def add(self, other: Counters) -> None:
        self.requests += other.requests
        self.hits += other.hits
        self.refresh_hits += other.refresh_hits
        self.misses += other.misses
        self.passes += other.passes
        self.refused += other.refused
        self.origin_requests += other.origin_requests
        self.origin_bytes += other.origin_bytes
        self.invocations.update(other.invocations)

    @property
    def hit_ratio(self) -> float:
        """CloudFront's cache hit ratio: hits (incl. RefreshHit) over cacheable requests."""
        cacheable = self.hits + self.refresh_hits + self.misses
        return (self.hits + self.refresh_hits) / cacheable if cacheable else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "hits": self.hits, "refresh_hits": self.refresh_hits,
                "misses": self.misses, "passes": self.passes, "refused": self.refused,
                "origin_requests": self.origin_requests, "origin_bytes": self.origin_bytes,
                "hit_ratio": round(self.hit_ratio, 6), "invocations": dict(sorted(self.invocations.items()))}


@dataclass(frozen=True, slots=True)
class OriginHeaders:
    """``--origin-headers``: path pattern -> the headers the origin sends, first match wins."""

    rules: tuple[tuple[str, re.Pattern[str], tuple[tuple[str, str], ...]], ...] = ()

    def for_path(self, path: str) -> tuple[tuple[str, str], ...]:
        for _, regex, headers in self.rules:
            if regex.fullmatch(path):
                return headers
        return ()


def load_origin_headers(path: str | Path | None) -> OriginHeaders:
    """A JSON object ``{"/img/*": "max-age=600", "/api/*": {"Cache-Control": "no-store", "ETag": "\\"1\\""}}``
    (a string value is a Cache-Control). Raises ValueError naming the problem."""
    if path is None:
        return OriginHeaders()
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"--origin-headers {path}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"--origin-headers {path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--origin-headers {path}: expected an object of path pattern -> Cache-Control or headers")
    rules = []
    for pattern, value in data.items():
        if isinstance(value, str):
            headers: tuple[tuple[str, str], ...] = (("Cache-Control", value),)
        elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            headers = tuple((str(k), v) for k, v in value.items())
        else:
            raise ValueError(f"--origin-headers {path}: {pattern!r}: the value must be a Cache-Control string or an "
                             "object of header name -> string value")
        rules.append((pattern, compile_pattern(pattern), headers))
    return OriginHeaders(tuple(rules))


class PopSimulation:
    """One distribution's cache at one POP, driven by log records."""

    __slots__ = ("counters", "domain", "dplan", "last", "options", "origin_headers", "store")

    def __init__(self, dplan: DistributionPlan, options: PolicyOptions, origin_headers: OriginHeaders) -> None:
        self.dplan = dplan
        self.domain = dplan.distribution.domain_name
        self.options = options
        self.origin_headers = origin_headers
        self.store = CacheStore(_UNBOUNDED, _UNBOUNDED)
        self.counters: dict[str, Counters] = {}  # behavior path pattern -> counters
        self.last = 0.0

    @staticmethod
    def _fetch(c: Counters, plan: BehaviorPlan, body_bytes: int) -> None:
        c.origin_requests += 1
        c.origin_bytes += body_bytes
        for event in ("origin-request", "origin-response"):
            if event in plan.hooks:
                c.invocations[event] += 1

    def request(self, rec: LogRecord, headers: list[tuple[str, str]]) -> None:
        """Count ``rec`` (``headers``: its viewer headers with the assumed Accept-Encoding, shared by the
        distributions)."""
        now = self.last = max(self.last, rec.ts)
        plan = self.dplan.match(rec.uri)
        behavior = plan.behavior
        c = self.counters.get(behavior.path_pattern)
        if c is None:
            c = self.counters[behavior.path_pattern] = Counters()
        c.requests += 1
        method = rec.method
        if method not in behavior.allowed_methods:
            c.refused += 1
            return
        if "viewer-request" in plan.functions:
            c.invocations["cff:viewer-request"] += 1
        if "viewer-request" in plan.hooks:
            c.invocations["viewer-request"] += 1
        status = _ORIGIN_STATUS.get(rec.status, rec.status)
        body = 0 if method == "HEAD" else rec.body_bytes
        if method not in plan.cached_methods:
            c.passes += 1
            self._fetch(c, plan, body)
        else:
            key = cache_key(self.domain, behavior.cache_policy, method, rec.uri, rec.query, headers)
            outcome = classify(self.store, key, headers, lambda: now)
            if isinstance(outcome, Hit):
                c.hits += 1
            elif isinstance(outcome, Miss) or (outcome.reason is StaleReason.REVALIDATE
                                               and outcome.entry.etag is None
                                               and outcome.entry.last_modified is None):
                c.misses += 1
                self._fetch(c, plan, body)
                self._store(plan, key, rec, headers, status, now)
            elif outcome.reason is StaleReason.SWR:  # served stale now, refreshed in the background
                c.hits += 1
                self._fetch(c, plan, rec.body_bytes)
                self._store(plan, key, rec, headers, status, now)
            else:  # revalidation with the stored validator: the origin answers 304 (assumed unchanged)
                c.refresh_hits += 1
                self._fetch(c, plan, 0)
                self._refresh(plan, key, outcome.entry, headers, now)
        if "viewer-response" in plan.hooks and status < 400:
            c.invocations["viewer-response"] += 1
        if "viewer-response" in plan.functions:
            c.invocations["cff:viewer-response"] += 1

    def _store(self, plan: BehaviorPlan, key: str, rec: LogRecord, headers: Sequence[tuple[str, str]],
               status: int, now: float) -> None:
        if rec.method == "HEAD":  # a HEAD miss goes to the origin as HEAD: nothing to store
            return
        entry = storable_entry(plan, self.options, "GET" if rec.method == "GET" else rec.method, status,
                               self.origin_headers.for_path(rec.uri), b"", headers, rec.uri, rec.query, now, now)
        if isinstance(entry, CacheEntry):
            self.store.put(key, entry)

    def _refresh(self, plan: BehaviorPlan, key: str, stale: CacheEntry, headers: Sequence[tuple[str, str]],
                 now: float) -> None:
        refreshed = merge_not_modified(stale, (), headers, ctx=plan.store, options=self.options,
                                       request_time=now, response_time=now)
        if refreshed.storable:
            self.store.put(key, refreshed.entry)
        else:
            self.store.delete_variant(key, stale)


@dataclass(slots=True)
class WhatIfResult:
    """Per distribution label: POP -> behavior pattern -> counters; plus the read's statistics."""

    labels: list[str]
    results: dict[str, dict[str, dict[str, Counters]]]
    recorded: dict[str, Counters]  # per POP: what the log itself says (x-edge-result-type)
    stats: ReadStats
    processes: int = 1
    seconds: float = 0.0
    assumptions: list[str] = field(default_factory=list)

    def merge(self, other: WhatIfResult) -> None:
        for label, pops in other.results.items():
            mine = self.results.setdefault(label, {})
            for pop, by_pattern in pops.items():
                dst = mine.setdefault(pop, {})
                for pattern, c in by_pattern.items():
                    dst.setdefault(pattern, Counters()).add(c)
        for pop, c in other.recorded.items():
            self.recorded.setdefault(pop, Counters()).add(c)
        self.stats.merge(other.stats)


_DEFAULT_OPTIONS = PolicyOptions()
_NO_ORIGIN_HEADERS = OriginHeaders()


def _record_recorded(c: Counters, rec: LogRecord) -> None:
    c.requests += 1
    rt = rec.result_type
    if rt == "Hit":
        c.hits += 1
    elif rt == "RefreshHit":
        c.refresh_hits += 1
    elif rt == "Miss":
        c.misses += 1


def simulate(log: str | Path, distributions: Mapping[str, Any], *, origin_headers: OriginHeaders = _NO_ORIGIN_HEADERS,
             options: PolicyOptions = _DEFAULT_OPTIONS, select: Callable[[str], bool] | None = None) -> WhatIfResult:
    """Run the log through every distribution (label -> DistributionConfig JSON or path), in this process."""
    settings = Settings(pops=())
    plans = {label: compile_distribution(load_distribution(d, settings)) for label, d in distributions.items()}
    sims: dict[str, dict[str, PopSimulation]] = {label: {} for label in plans}
    recorded: dict[str, Counters] = {}
    stats = ReadStats(str(log))
    for rec in iter_log(log, stats, select):
        pop = rec.pop_code
        _record_recorded(recorded.setdefault(pop, Counters()), rec)
        headers = rec.headers()
        headers.append(("Accept-Encoding", ACCEPT_ENCODING))
        for label, dplan in plans.items():
            by_pop = sims[label]
            sim = by_pop.get(pop)
            if sim is None:
                sim = by_pop[pop] = PopSimulation(dplan, options, origin_headers)
            sim.request(rec, headers)
    results = {label: {pop: sim.counters for pop, sim in by_pop.items()} for label, by_pop in sims.items()}
    return WhatIfResult(list(plans), results, recorded, stats)


class _SampleFull(Exception):
    """The partitioner's sample is complete."""


def partition(log: str | Path, n: int) -> dict[str, int]:
    """POP code -> worker, balancing the lines of the first :data:`SAMPLE_LINES` records (greedy, largest first);
    POPs not in the sample go by a stable hash (:func:`owner`)."""
    weights: Counter[str] = Counter()

    def count(location: str) -> bool:  # sees every line's location; parses none further
        weights[location.partition("-")[0] or "-"] += 1
        if weights.total() >= SAMPLE_LINES:
            raise _SampleFull
        return False

    with contextlib.suppress(_SampleFull):
        for _ in iter_log(log, ReadStats(str(log)), count):  # yields nothing: ``count`` selects no line
            pass
    loads = [0] * n
    out: dict[str, int] = {}
    for pop, w in weights.most_common():
        k = loads.index(min(loads))
        out[pop] = k
        loads[k] += w
    return out


def owner(assigned: Mapping[str, int], n: int, location: str) -> int:
    pop = location.partition("-")[0] or "-"
    k = assigned.get(pop)
    return k if k is not None else zlib.crc32(pop.encode()) % n


def assumptions(origin_headers: OriginHeaders) -> list[str]:
    """What the report must say the log could not tell (see the module docstring)."""
    origin = ("the origin sends no Cache-Control or validators: every object is cached for its behavior's "
              "DefaultTTL (MinTTL/MaxTTL and the error caching rules apply)") if not origin_headers.rules else (
        "the origin sends the headers of --origin-headers for the first matching pattern ("
        + "; ".join(f"{p}: {', '.join(f'{k}: {v}' for k, v in h)}" for p, _, h in origin_headers.rules)
        + "), and none elsewhere (DefaultTTL)")
    return [origin,
            "the origin answers with the logged status (a viewer's 304 or 206 is a 200 from the origin), and an "
            "expired object with a validator is unchanged (revalidation answered 304, no body bytes)",
            "object size = sc-content-len (else sc-bytes); a HEAD miss moves no body bytes",
            f"viewers send Accept-Encoding: {ACCEPT_ENCODING} (the log does not record it)",
            "one unbounded cache per edge location (IAD89-C1 -> IAD89); no regional edge cache tier",
            "each POP's clock is the log's time (the latest seen at that POP)",
            "Lambda@Edge and CloudFront Functions run on every request their event type sees (viewer-response not "
            "after an origin status >= 400); no function generates a response"]


def _text_size(path: Path) -> int:
    """The log's size as text: a gzip file's trailer gives it (ISIZE, modulo 2**32, RFC 1952 §2.3.1); 0 when the
    file cannot be read (the read itself then says why)."""
    try:
        with path.open("rb") as f:
            if f.read(2) != b"\x1f\x8b":
                return path.stat().st_size
            f.seek(-4, os.SEEK_END)
            return max(int.from_bytes(f.read(4), "little"), path.stat().st_size)
    except OSError:
        return 0


def run_whatif(log: str | Path, distributions: Mapping[str, Any], *, processes: int | None = None,
               origin_headers: OriginHeaders = _NO_ORIGIN_HEADERS,
               options: PolicyOptions = _DEFAULT_OPTIONS) -> WhatIfResult:
    """:func:`simulate` over ``processes`` workers, each owning a share of the POPs. Default: every core for a log
    of :data:`PARALLEL_MIN_BYTES` or more, else this process (each worker reads the whole file and starts a process:
    below that size one process was faster, ``python -m bench whatif``)."""
    import time

    t0 = time.perf_counter()
    if processes is None:
        processes = (os.cpu_count() or 1) if _text_size(Path(log)) >= PARALLEL_MIN_BYTES else 1
    n = max(1, processes)
    docs = {label: (d if isinstance(d, Mapping) else orjson.loads(Path(d).read_bytes()))
            for label, d in distributions.items()}
    if n == 1:
        result = simulate(log, docs, origin_headers=origin_headers, options=options)
    else:
        import multiprocess

        assigned = partition(log, n)

        def work(k: int) -> WhatIfResult:  # shipped to the worker by dill, with what it closes over
            return simulate(log, docs, origin_headers=origin_headers, options=options,
                            select=lambda location: owner(assigned, n, location) == k)

        with multiprocess.Pool(n) as pool:
            parts = pool.map(work, range(n))
        result = parts[0]
        for part in parts[1:]:
            result.merge(part)
    result.processes = n
    result.assumptions = assumptions(origin_headers)
    result.seconds = time.perf_counter() - t0
    return result
