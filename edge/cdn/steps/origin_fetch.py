"""Step 4, origin-fetch: send the origin-bound request through the POP's OriginClient.

Runs on a miss, a revalidation or a pass-through when origin-request did not generate a response. Transport
failures arrive already mapped by the origin client (OriginUnavailable -> 502, OriginTimeout -> 504). This step
records the fetch (counters, the ``origin`` Server-Timing entry, the origin's status) and decides whether the
stale entry being revalidated is served instead of the failure (stale-if-error): when the origin is unreachable,
times out or answers 5xx, within the entry's stale-if-error window and unless it must be revalidated (contract
§5.4, RFC 5861 §4, "Request and response behavior for custom origins",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html).

Origin failover, for the two-origin group a CloudFront viewer-request function created for this request
(``cf.createRequestOriginGroup``, ``Exchange.origin_override.failover``): when the primary cannot be reached, times
out or answers one of the group's failover statuses, the request goes to the secondary, for GET, HEAD and OPTIONS
only ("Optimize high availability with CloudFront origin failover",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/high_availability_origin_failover.html).
"""

from __future__ import annotations

from edge.cdn.cache.policy import CacheEntry, Stale, on_origin_error
from edge.cdn.errors import OriginError
from edge.cdn.models import EdgeRequest, EdgeResponse, header_get, header_set
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


async def run(ctx: PopContext, ex: Exchange, request: EdgeRequest, stale: CacheEntry | None) -> EdgeResponse | Stale:
    """The origin's response to ``request``, or ``Stale(SIE)`` when ``stale`` (the entry being revalidated, if
    any) is to be served instead of the origin's failure. Raises the ``OriginError`` otherwise."""
    ctx.stats.origin_fetches += 1
    try:
        resp = await ctx.origin.fetch(request, streaming_ok=True)
    except OriginError as err:
        ctx.stats.origin_errors += 1
        ex.mark(Step.ORIGIN_FETCH, f"error-{err.status}")
        secondary = _failover(ex, request)
        if secondary is not None:
            return await run(ctx, ex, secondary, stale)
        sie = on_origin_error(stale, ctx.clock(), None)
        if sie is None:
            raise
        return sie
    override = ex.origin_override
    if override is not None and resp.status in override.failover_statuses:
        secondary = _failover(ex, request)
        if secondary is not None:
            ex.trace.append(f"origin-fetch:{resp.status}")
            await resp.aclose()
            return await run(ctx, ex, secondary, stale)
    seconds = resp.meta.origin_seconds
    ex.origin_seconds += seconds
    ex.timing.add_duration("origin", seconds)
    ex.timing.upstream_fbl_s = seconds  # CloudFront's Server-Timing format (response headers policies)
    ex.timing.origin_value = header_get(resp.headers, "server-timing") or ""
    ex.trace.append(f"origin-fetch:{resp.status}")
    ex.origin_status = resp.status
    if stale is not None and resp.status >= 500:
        sie = on_origin_error(stale, ctx.clock(), resp.status)
        if sie is not None:  # the stale copy wins over the origin's 5xx (contract §5.4)
            await resp.aclose()
            return sie
    return resp


def _failover(ex: Exchange, request: EdgeRequest) -> EdgeRequest | None:
    """The request for the secondary origin of the function-created origin group, once (None: no failover)."""
    override = ex.origin_override
    if override is None or override.failover is None or request.method not in ("GET", "HEAD", "OPTIONS"):
        return None
    primary, secondary = request.origin, override.failover
    ex.origin_override = None  # one failover per request
    ex.mark(Step.ORIGIN_FETCH, "failover")
    headers = list(request.headers)
    if primary is not None and header_get(headers, "host") == primary.domain_name:  # Host was not forwarded
        header_set(headers, "Host", secondary.domain_name)
    return EdgeRequest(method=request.method, uri=request.uri, querystring=request.querystring, headers=headers,
                       client_ip=request.client_ip, body=request.body, origin=secondary)
