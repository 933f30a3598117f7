"""The lifecycle driver: the one module that sequences the steps of ``edge.cdn.steps`` for a viewer request.

``handle(ctx, request, request_id, started)`` returns ``(response, exchange)``; the POP boundary decorates
the response with ``exchange.x_cache``/``age``/timing. Every ``EdgeError`` becomes a response here (and only
here): CloudFront's error page with the error's status and X-Cache, a stale copy (stale-if-error) or a
configured custom error response. Skip rules: see ``edge.cdn.steps``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from edge.cdn.cache.policy import (CacheEntry, Hit, Miss, Stale, StaleReason, current_age, merge_not_modified,
                                   on_origin_error)
from edge.cdn.cache.ranges import serve_entry
from edge.cdn.errors import EdgeError, OriginError
from edge.cdn.models import EdgeRequest, EdgeResponse, header_get
from edge.cdn.responses import ERROR, HIT, LAMBDA_GENERATED, MISS, REFRESH_HIT, error_response
from edge.cdn.steps import Exchange, Step, TriggerCall, TriggerRunner
from edge.cdn.steps import (cache_lookup, cache_store, origin_fetch, origin_request, origin_response,
                            viewer_request, viewer_response)
from edge.cdn.steps.context import PopContext
from edge.cdn.steps.viewer_headers import with_viewer_headers

__all__ = ["Exchange", "Step", "TriggerCall", "TriggerRunner", "handle"]

log = logging.getLogger("edgelab.pop")


@dataclass(frozen=True, slots=True)
class Fill:
    """Outcome of one origin round trip, shared with collapsed followers: ``entry`` is what they may serve."""

    response: EdgeResponse
    entry: CacheEntry | None
    x_cache: str
    origin_status: int | None


async def handle(ctx: PopContext, request: EdgeRequest, request_id: str, started: float) -> tuple[EdgeResponse, Exchange]:
    """Run the whole lifecycle for one viewer request.

    Hooks are awaited only when a function is associated, and a fresh hit is served synchronously, so the
    common hit costs no extra coroutine (this is the POP's hot path).
    """
    ex = Exchange(request=request, request_id=request_id, started=started)
    ctx.stats.requests += 1
    try:
        viewer_request.admit(ctx, ex)
        behavior = ex.behavior
        assert behavior is not None
        if ctx.hooked(behavior, Step.VIEWER_REQUEST):
            generated = await viewer_request.run(ctx, ex)
            if generated is not None:  # straight to the viewer: not cached, no viewer-response
                ex.x_cache, ex.skip_viewer_response = LAMBDA_GENERATED, True
                _count(ctx, ex, generated)
                return generated, ex
        generated_names = ctx.viewer_header_names(behavior)
        if generated_names:  # after viewer-request, before the cache key (contract §5.5)
            ex.request.headers = with_viewer_headers(ex.request.headers, generated_names)
        outcome = cache_lookup.lookup(ctx, ex)
        if isinstance(outcome, Hit):
            response = _serve(ctx, ex, outcome.entry, HIT)
        else:
            response = await _after_lookup(ctx, ex, outcome)
        if response.status >= 400:
            response = await _custom_error(ctx, ex, response)
        if ctx.hooked(behavior, Step.VIEWER_RESPONSE):
            response = await viewer_response.run(ctx, ex, response)
    except EdgeError as err:
        response = await _on_error(ctx, ex, err)
    _count(ctx, ex, response)
    return response, ex


async def _through_cache(ctx: PopContext, ex: Exchange) -> EdgeResponse:
    """Cache lookup and whatever it leads to (hit, background refresh, revalidation, miss, pass)."""
    outcome = cache_lookup.lookup(ctx, ex)
    if isinstance(outcome, Hit):
        return _serve(ctx, ex, outcome.entry, HIT)
    return await _after_lookup(ctx, ex, outcome)


async def _after_lookup(ctx: PopContext, ex: Exchange,
                        outcome: cache_lookup.Pass | Miss | Stale) -> EdgeResponse:
    """Everything but a fresh hit: pass-through, miss, stale-while-revalidate, revalidation."""
    if isinstance(outcome, cache_lookup.Pass):
        fill = await _fill(ctx, ex, None)
        ex.x_cache = fill.x_cache
        return fill.response
    if isinstance(outcome, Miss):
        return await _collapsed(ctx, ex, None)
    if outcome.reason is StaleReason.SWR:
        ctx.stats.stale_served += 1
        _refresh_in_background(ctx, ex, outcome.entry)
        return _serve(ctx, ex, outcome.entry, HIT)
    return await _collapsed(ctx, ex, outcome.entry)


async def _collapsed(ctx: PopContext, ex: Exchange, stale: CacheEntry | None) -> EdgeResponse:
    """A miss/revalidation through the coalescer: the leader fetches, followers serve what it stored."""
    fill, leader = await ctx.coalescer.run(ex.cache_key, lambda: _fill(ctx, ex, stale))
    if not leader:
        ctx.stats.collapsed += 1
        if fill.entry is not None:
            ex.mark(Step.CACHE_LOOKUP, "collapsed")
            return _serve(ctx, ex, fill.entry, HIT)
        # the leader's response was not shareable (not stored, or streamed): fetch for ourselves
        fill = await _fill(ctx, ex, stale)
    ex.x_cache, ex.origin_status = fill.x_cache, fill.origin_status
    return fill.response


# A cached CloudFront error page carries the Request ID of the request that produced it: re-stamp it.
_PAGE_REQUEST_ID = re.compile(rb"Request ID: [A-Za-z0-9_=-]+")


def _restamp(body: bytes, request_id: str) -> bytes:
    if b"Generated by cloudfront (CloudFront)" not in body:
        return body
    return _PAGE_REQUEST_ID.sub(b"Request ID: " + request_id.encode("ascii"), body, count=1)


# Request headers that make serving from an entry more than "the stored response": handled by serve_entry.
_CONDITIONAL = frozenset({"range", "if-none-match", "if-modified-since", "if-range"})


def _serve(ctx: PopContext, ex: Exchange, entry: CacheEntry, x_cache: str, *, age: bool = True) -> EdgeResponse:
    """A response from a stored (or transient) entry: HEAD, conditional viewer requests and ranges applied."""
    ex.x_cache = ERROR if entry.status >= 400 else x_cache
    ex.origin_status = entry.status
    now = ctx.clock()
    req = ex.request
    extra: dict[str, object] = {}
    if req.method == "HEAD":
        extra["content_length"] = len(entry.body)
    if req.method == "GET" and not any(k.lower() in _CONDITIONAL for k, _ in req.headers):
        # the common hit: the stored response as is (headers prepared once per entry)
        if age:
            ex.age = int(current_age(entry, now))
        extra["clean_headers"] = True  # prepared: no POP-owned names in them
        body = _restamp(entry.body, ex.request_id) if entry.is_error else entry.body
        return EdgeResponse(status=entry.status, headers=list(ctx.served_headers(entry)), body=body, extra=extra)
    served = serve_entry(entry, req.method, req.headers, now)
    if age:
        ex.age = int(header_get(served.headers, "age") or 0)
    headers = [(k, v) for k, v in served.headers if k.lower() not in ("age", "content-length")]
    return EdgeResponse(status=served.status, headers=headers, body=served.body, extra=extra)


async def _fill(ctx: PopContext, ex: Exchange, stale: CacheEntry | None) -> Fill:
    """Origin-request -> origin-fetch -> origin-response -> cache-store for a miss, revalidation or pass."""
    b = ex.behavior
    assert b is not None
    spec = ctx.distribution.origin_for(b)
    req = origin_request.build_origin_request(ex.request, b, spec, ctx.edge_origin(spec),
                                              via=ctx.identity.via, request_id=ex.request_id)
    cache_fill = ex.cache_key is not None
    if cache_fill:  # fetch the full object (HEAD/Range/conditionals are answered from it)
        req = origin_request.conditional(req, stale.etag if stale else None, stale.last_modified if stale else None)
        if ex.request.method == "OPTIONS":
            req.method = "OPTIONS"
    request_time = ctx.clock()
    result = await origin_request.run(ctx, ex, req)
    if isinstance(result, EdgeResponse):  # generated by origin-request: cached, no fetch, no origin-response
        ex.origin_status = result.status
        entry = cache_store.run(ctx, ex, result, request_time, req.method) if cache_fill else None
        return _fill_result(ctx, ex, result, entry, LAMBDA_GENERATED, request_time)
    req = result
    try:
        resp = await origin_fetch.run(ctx, ex, req, streaming_ok=True)
    except OriginError:
        sie = on_origin_error(stale, ctx.clock(), None)
        if sie is None:
            raise
        return _stale_if_error(ctx, ex, sie.entry)
    ex.origin_status = resp.status
    if stale is not None and resp.status >= 500:
        sie = on_origin_error(stale, ctx.clock(), resp.status)
        if sie is not None:  # the stale copy wins over the origin's 5xx (contract §5.4)
            await _discard(resp)
            return _stale_if_error(ctx, ex, sie.entry)
    resp = await origin_response.run(ctx, ex, req, resp)  # every origin response, 304s included
    if not ctx.store_context(b).cookies_forwarded:  # CloudFront drops Set-Cookie unless cookies are forwarded
        resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "set-cookie"]
    if stale is not None and resp.status == 304:
        return _refreshed(ctx, ex, stale, resp, request_time)
    entry = cache_store.run(ctx, ex, resp, request_time, req.method) if cache_fill else None
    return _fill_result(ctx, ex, resp, entry, ERROR if (ex.origin_status or 0) >= 400 else MISS, request_time)


def _fill_result(ctx: PopContext, ex: Exchange, resp: EdgeResponse, entry: CacheEntry | None, x_cache: str,
                 request_time: float) -> Fill:
    if not isinstance(resp.body, bytes):
        ctx.stats.streamed += 1
        return Fill(resp, None, x_cache, ex.origin_status)
    if ex.cache_key is None:  # pass-through: the viewer's own method and headers went to the origin
        return Fill(resp, None, x_cache, ex.origin_status)
    # serve through an entry (stored, or transient) so HEAD/Range/conditional requests get the right answer
    view = entry or CacheEntry(status=resp.status, headers=tuple(resp.headers), body=resp.body,
                               request_time=request_time, response_time=ctx.clock(), ttl_s=0.0)
    origin_status = ex.origin_status  # what the origin said, not what origin-response made of it
    served = _serve(ctx, ex, view, x_cache, age=False)
    ex.origin_status = origin_status
    ex.x_cache = ERROR if x_cache == MISS and resp.status >= 400 else x_cache
    return Fill(served, entry, ex.x_cache, ex.origin_status)


def _refreshed(ctx: PopContext, ex: Exchange, stale: CacheEntry, resp: EdgeResponse, request_time: float) -> Fill:
    """A 304 to our revalidation: freshen the entry (RFC 9111 §4.3.4) and serve it as a RefreshHit."""
    assert ex.behavior is not None and ex.cache_key is not None
    refreshed = merge_not_modified(stale, resp.headers, ex.request.headers, ctx.store_context(ex.behavior),
                                   ctx.options, request_time, ctx.clock())
    if refreshed.storable:
        ctx.store.put(str(ex.cache_key), refreshed.entry)
    else:
        ctx.store.delete_variant(str(ex.cache_key), stale)
    ctx.stats.refresh_hits += 1
    ex.mark(Step.CACHE_STORE, "refreshed")
    served = _serve(ctx, ex, refreshed.entry, REFRESH_HIT)
    return Fill(served, refreshed.entry if refreshed.storable else None, REFRESH_HIT, refreshed.entry.status)


def _stale_if_error(ctx: PopContext, ex: Exchange, entry: CacheEntry) -> Fill:
    ctx.stats.stale_served += 1
    ex.mark(Step.CACHE_LOOKUP, "stale-if-error")
    served = _serve(ctx, ex, entry, HIT)
    return Fill(served, entry, HIT, entry.status)


async def _discard(resp: EdgeResponse) -> None:
    aclose = getattr(resp.body, "aclose", None)
    if aclose is not None:
        await aclose()


def _refresh_in_background(ctx: PopContext, ex: Exchange, stale: CacheEntry) -> None:
    """stale-while-revalidate: revalidate ``stale`` in a task owned by the POP (one per key at a time)."""
    sub = Exchange(request=replace(ex.request, headers=list(ex.request.headers)), request_id=ex.request_id,
                   started=ex.started, behavior=ex.behavior, cache_key=ex.cache_key)
    if ctx.background.spawn(("swr", ex.cache_key), _background_refresh(ctx, sub, stale)):
        ctx.stats.background_refreshes += 1


async def _background_refresh(ctx: PopContext, ex: Exchange, stale: CacheEntry) -> None:
    try:
        fill, _ = await ctx.coalescer.run(ex.cache_key, lambda: _fill(ctx, ex, stale))
    except EdgeError as err:
        log.info("background refresh of %s failed: %s", ex.request.uri, err)
        return
    await _discard(fill.response)


async def _on_error(ctx: PopContext, ex: Exchange, err: EdgeError) -> EdgeResponse:
    """The one place an EdgeError becomes a response (CloudFront error page, cached/custom for origin errors)."""
    ex.x_cache, ex.skip_viewer_response = err.x_cache, True
    ex.trace.append(f"error:{err.status}")
    response = error_response(err, ex.request_id)
    if isinstance(err, OriginError):
        ex.origin_status = err.status
        if ex.cache_key is not None:  # CloudFront caches 502/504 for the error caching minimum TTL
            cache_store.run(ctx, ex, response, ctx.clock())
        response = await _custom_error(ctx, ex, response)
    else:
        log.info("request %s refused: %s %s", ex.request_id, err.status, err.detail)
    return response


async def _custom_error(ctx: PopContext, ex: Exchange, response: EdgeResponse) -> EdgeResponse:
    """CustomErrorResponses: replace an error with ResponsePagePath (fetched through the behavior matching
    it, without viewer triggers) and ResponseCode. A failing page fetch yields the page's own status."""
    cer = ctx.distribution.custom_error_responses.get(response.status)
    if cer is None or not cer.response_page_path or ex.x_cache == LAMBDA_GENERATED:
        return response
    page_req = EdgeRequest(method="GET", uri=cer.response_page_path, querystring="",
                           headers=[(k, v) for k, v in ex.request.headers if k.lower() not in
                                    ("range", "if-none-match", "if-modified-since", "if-range")],
                           client_ip=ex.request.client_ip)
    sub = Exchange(request=page_req, request_id=ex.request_id, started=ex.started, timing=ex.timing,
                   trace=ex.trace, behavior=ctx.match(cer.response_page_path))
    ex.mark(Step.CACHE_LOOKUP, "custom-error-page")
    try:
        page = await _through_cache(ctx, sub)
    except EdgeError as err:
        log.info("custom error page %s failed: %s", cer.response_page_path, err)
        return response
    await _discard(response)
    ex.skip_viewer_response = True
    ex.age = sub.age
    if page.status >= 400:
        return page
    status = cer.response_code or response.status
    headers = [(k, v) for k, v in page.headers if k.lower() != "content-length"]
    return EdgeResponse(status=status, headers=headers, body=page.body, extra=page.extra)


def _count(ctx: PopContext, ex: Exchange, response: EdgeResponse) -> None:
    s = ctx.stats
    x = ex.x_cache
    if x == HIT:
        s.hits += 1
    elif x == MISS:
        s.misses += 1
    elif x == ERROR or x.startswith("Lambda") and x != LAMBDA_GENERATED:
        s.errors += 1
    elif x == LAMBDA_GENERATED:
        s.generated += 1
    s.count_response(response.status, x)
