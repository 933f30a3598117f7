"""Step 2, cache-lookup: compute the cache key (after viewer-request) and classify the stored entry.

Outcomes: ``Pass`` (method not cached or caching disabled: straight to the origin, nothing stored),
``Miss`` (no usable variant), ``Hit`` (fresh), ``Stale(SWR)`` (serve now, refresh in the background) or
``Stale(REVALIDATE)`` (conditional request to the origin first). Viewer Cache-Control is ignored (CloudFront).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge.cdn.cache.keys import cache_key
from edge.cdn.cache.policy import Hit, Miss, Stale, evaluate
from edge.cdn.cache.store import CacheStore
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


@dataclass(frozen=True, slots=True)
class Pass:
    """This request is never served from or stored in the cache."""

    reason: str


_NOT_CACHEABLE = Pass("not cacheable")
_MISS = Miss()


def lookup(ctx: PopContext, ex: Exchange) -> Pass | Miss | Hit | Stale:
    """Classify the request; sets ``ex.cache_key`` when the request is cacheable: GET/HEAD (and OPTIONS when
    listed in CachedMethods) under a behavior whose policy can store anything (``BehaviorPlan.cached_methods``)."""
    req, plan = ex.request, ex.plan
    assert plan is not None
    if req.method not in plan.cached_methods:
        ex.trace.append("cache-lookup:pass")
        return _NOT_CACHEABLE
    ex.cache_key = key = cache_key(ctx.distribution.domain_name, plan.behavior.cache_policy, req.method, req.uri,
                                   req.querystring, req.headers)
    outcome = classify(ctx.store, key, req.headers, ctx.clock)
    if isinstance(outcome, Miss):
        ex.trace.append("cache-lookup:miss")
    elif isinstance(outcome, Hit):
        ex.trace.append("cache-lookup:hit")
    else:
        ex.mark(Step.CACHE_LOOKUP, f"stale-{outcome.reason.value}")
    return outcome


def classify(store: CacheStore, key: str, headers: Sequence[tuple[str, str]],
             clock: Callable[[], float]) -> Miss | Hit | Stale:
    """The stored variant of ``key`` for these request headers, classified at ``clock()`` (read only when there is
    an entry): Miss, Hit or Stale. No I/O: the POP and ``edgelab whatif`` (on a log's own clock) share it."""
    entry = store.get(key, headers)
    if entry is None:
        return _MISS
    return evaluate(entry, clock())
