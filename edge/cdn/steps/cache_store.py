"""Step 6, cache-store: store what origin-response (or origin-request) produced, if the policy allows.

Only buffered bodies (at most the store's object size limit) can be stored; streamed bodies pass through.
The decision is the pure ``policy.storability`` (RFC 9111 §3 + CloudFront TTL/error rules).
"""

from __future__ import annotations

from edge.cdn.cache.policy import CacheEntry, NotStorable, build_entry, storability
from edge.cdn.cache.keys import key_querystring
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


def run(ctx: PopContext, ex: Exchange, response: EdgeResponse, request_time: float,
        origin_method: str = "GET") -> CacheEntry | None:
    """Store ``response`` under ``ex.cache_key``; returns the stored entry or None (with the reason traced)."""
    if ex.cache_key is None or not isinstance(response.body, bytes):
        ex.mark(Step.CACHE_STORE, "skip-streamed" if ex.cache_key is not None else "skip")
        return None
    assert ex.behavior is not None
    req: EdgeRequest = ex.request
    now = ctx.clock()
    decision = storability(origin_method, response.status, req.headers, response.headers,
                           ctx.store_context(ex.behavior), ctx.options, now)
    if isinstance(decision, NotStorable):
        ex.mark(Step.CACHE_STORE, "not-storable")
        return None
    entry = build_entry(decision, response.status, response.body, req.headers, request_time, now, req.uri,
                        key_querystring(ex.behavior.cache_policy.query_strings, req.querystring))
    if not ctx.store.put(str(ex.cache_key), entry):
        ex.mark(Step.CACHE_STORE, "too-large")
        return None
    ex.mark(Step.CACHE_STORE, "stored")
    return entry
