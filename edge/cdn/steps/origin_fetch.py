"""Step 4, origin-fetch: send the origin-bound request through the POP's OriginClient.

Runs on a miss, a revalidation or a pass-through when origin-request did not generate a response. Transport
failures arrive already mapped by the origin client (OriginUnavailable -> 502, OriginTimeout -> 504). This step
records the fetch (counters, the ``origin`` Server-Timing entry, the origin's status) and decides whether the
stale entry being revalidated is served instead of the failure (stale-if-error): when the origin is unreachable,
times out or answers 5xx, within the entry's stale-if-error window and unless it must be revalidated (contract
§5.4, RFC 5861 §4, "Request and response behavior for custom origins",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html).

Origin failover ("Optimize high availability with CloudFront origin failover",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/high_availability_origin_failover.html): when the
primary cannot be reached, times out or answers one of the group's failover statuses, a GET, HEAD or OPTIONS request
goes to the secondary, once; other methods get the primary's answer. Two kinds of group:

* the behavior's ``TargetOriginId`` names an ``OriginGroups`` item (``BehaviorPlan.failover``): this step answers
  :class:`Failover` and the pipeline shapes the request again for the secondary and runs the origin-request
  Lambda@Edge function again, as AWS documents; the primary's failing answer is discarded (no origin-response
  function, never cached), the secondary's is cached under the request's key like any answer;
* the group a CloudFront viewer-request function created for this request (``cf.createRequestOriginGroup``,
  ``Exchange.origin_override.failover``): the same request goes to the secondary from here (CloudFront Functions do
  not run again).

Interim responses (``103 Early Hints``) the origin sends before its final answer go to this viewer as they arrive
(``Exchange.interim``; RFC 9110 §15.2: a proxy forwards 1xx it did not ask for) and are never cached; requests
coalesced behind this one get the final response only. CloudFront's documentation says nothing about 1xx from an
origin; edgelab follows the RFC (README deviation table).

Every failover is counted (``origin_failovers``) and marked in the request's trace (``origin-fetch:failover``).

While a chaos scenario is applied (``PopContext.chaos``, ``edge.cdn.chaos``), its origin faults stand in for the
origin client: their latency, errors, timeouts and refusals go through the same paths as a real origin's.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.cdn.cache.policy import CacheEntry, Stale, on_origin_error
from edge.cdn.errors import OriginError
from edge.cdn.models import EdgeRequest, EdgeResponse, Origin, header_get, header_set
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext

FAILOVER_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Failover:
    """The primary of the behavior's origin group failed: the request is to go to ``origin`` (the secondary)."""

    origin: Origin


async def run(ctx: PopContext, ex: Exchange, request: EdgeRequest,
              stale: CacheEntry | None) -> EdgeResponse | Stale | Failover:
    """The origin's response to ``request``, :class:`Failover` when the behavior's origin group is to try its
    secondary, or ``Stale(SIE)`` when ``stale`` (the entry being revalidated, if any) is to be served instead of the
    origin's failure. Raises the ``OriginError`` otherwise."""
    ctx.stats.origin_fetches += 1
    chaos = ctx.chaos
    try:
        if chaos is None:
            resp = await ctx.origin.fetch(request, streaming_ok=True, on_interim=ex.interim)
        else:  # a chaos scenario is applied: its origin faults stand in for the origin (edge.cdn.chaos.engine)
            resp = await chaos.fetch(ctx.origin, ex, request)
    except OriginError as err:
        ctx.stats.origin_errors += 1
        ex.mark(Step.ORIGIN_FETCH, f"error-{err.status}")
        group = _group_failover(ctx, ex, request)
        if group is not None:
            return group
        secondary = _failover(ex, request)
        if secondary is not None:
            return await run(ctx, ex, secondary, stale)
        sie = on_origin_error(stale, ctx.clock(), None)
        if sie is None:
            raise
        return sie
    assert ex.plan is not None
    if resp.status in ex.plan.failover_statuses:
        group = _group_failover(ctx, ex, request)
        if group is not None:
            ex.trace.append(f"origin-fetch:{resp.status}")
            await resp.aclose()
            return group
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


def _group_failover(ctx: PopContext, ex: Exchange, request: EdgeRequest) -> Failover | None:
    """The behavior's origin group sends ``request`` to its secondary (once; GET, HEAD, OPTIONS), or None."""
    plan = ex.plan
    if plan is None or plan.failover is None or ex.failed_over or ex.origin_override is not None \
            or request.method not in FAILOVER_METHODS:
        return None
    ex.failed_over = True
    ctx.stats.origin_failovers += 1
    ex.mark(Step.ORIGIN_FETCH, "failover")
    return Failover(plan.failover)


def _failover(ex: Exchange, request: EdgeRequest) -> EdgeRequest | None:
    """The request for the secondary origin of the function-created origin group, once (None: no failover)."""
    override = ex.origin_override
    if override is None or override.failover is None or request.method not in FAILOVER_METHODS:
        return None
    primary, secondary = request.origin, override.failover
    ex.origin_override = None  # one failover per request
    ex.mark(Step.ORIGIN_FETCH, "failover")
    headers = list(request.headers)
    if primary is not None and header_get(headers, "host") == primary.domain_name:  # Host was not forwarded
        header_set(headers, "Host", secondary.domain_name)
    return EdgeRequest(method=request.method, uri=request.uri, querystring=request.querystring, headers=headers,
                       client_ip=request.client_ip, body=request.body, origin=secondary)
