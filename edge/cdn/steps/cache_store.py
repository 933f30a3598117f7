"""Step 6, cache-store: store what origin-response (or origin-request) produced, if the policy allows; or,
for a 304 to the POP's revalidation, freshen the stored entry.

Runs for cacheable requests only (the pipeline skips it for pass-throughs). Only buffered bodies (at most the
store's object size limit) can be stored; streamed bodies pass through. The decisions are the pure
``policy.storability`` (RFC 9111 §3 + CloudFront TTL/error rules, contract §5.3/§5.4) and
``policy.merge_not_modified`` (RFC 9111 §4.3.4).
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.cdn.cache.keys import key_querystring
from edge.cdn.cache.policy import (
    CacheEntry,
    NotStorable,
    PolicyOptions,
    Refreshed,
    build_entry,
    merge_not_modified,
    storability,
)
from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


def run(ctx: PopContext, ex: Exchange, response: EdgeResponse, request_time: float,
        origin_method: str = "GET") -> CacheEntry | None:
    """Store ``response`` under ``ex.cache_key``; returns the stored entry or None (with the reason traced)."""
    plan = ex.plan
    assert plan is not None and ex.cache_key is not None
    if not isinstance(response.body, bytes):
        ex.mark(Step.CACHE_STORE, "skip-streamed")
        return None
    req: EdgeRequest = ex.request
    entry = storable_entry(plan, ctx.options, origin_method, response.status, response.headers, response.body,
                           req.headers, req.uri, req.querystring, request_time, ctx.clock())
    if isinstance(entry, NotStorable):
        ex.mark(Step.CACHE_STORE, "not-storable")
        return None
    if not ctx.store.put(str(ex.cache_key), entry):
        ex.mark(Step.CACHE_STORE, "too-large")
        return None
    ex.mark(Step.CACHE_STORE, "stored")
    return entry


def storable_entry(plan: BehaviorPlan, options: PolicyOptions, origin_method: str, status: int,
                   response_headers: Sequence[tuple[str, str]], body: bytes,
                   request_headers: Sequence[tuple[str, str]], uri: str, querystring: str, request_time: float,
                   now: float) -> CacheEntry | NotStorable:
    """The entry to store for this origin response under ``plan``, or why it may not be stored. No I/O: the POP
    and ``edgelab whatif`` (on a log's own clock) share it."""
    decision = storability(origin_method, status, request_headers, response_headers, ctx=plan.store,
                           options=options, response_time=now)
    if isinstance(decision, NotStorable):
        return decision
    return build_entry(decision, status, body, request_headers, request_time=request_time, response_time=now,
                       uri=uri, key_querystring=key_querystring(plan.behavior.cache_policy.query_strings, querystring))


def refresh(ctx: PopContext, ex: Exchange, stale: CacheEntry, not_modified: EdgeResponse,
            request_time: float) -> Refreshed:
    """A 304 to the POP's revalidation of ``stale``: the entry freshened with the 304's fields and its TTL
    recomputed (RFC 9111 §4.3.4), stored again, or deleted when it may no longer be stored (served once)."""
    assert ex.plan is not None and ex.cache_key is not None
    refreshed = merge_not_modified(stale, not_modified.headers, ex.request.headers, ctx=ex.plan.store,
                                   options=ctx.options, request_time=request_time, response_time=ctx.clock())
    if refreshed.storable:
        ctx.store.put(str(ex.cache_key), refreshed.entry)
    else:
        ctx.store.delete_variant(str(ex.cache_key), stale)
    ctx.stats.refresh_hits += 1
    ex.mark(Step.CACHE_STORE, "refreshed")
    return refreshed
