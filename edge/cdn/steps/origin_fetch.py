"""Step 4, origin-fetch: send the origin-bound request through the POP's OriginClient.

Runs only on a miss/revalidation when origin-request did not generate a response. Transport failures arrive
already mapped (OriginUnavailable -> 502, OriginTimeout -> 504); this step records timing and counters.
Whether a stale entry may be served instead (stale-if-error) is decided by the pipeline.
"""

from __future__ import annotations

from edge.cdn.errors import OriginError
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


async def run(ctx: PopContext, ex: Exchange, request: EdgeRequest, *, streaming_ok: bool) -> EdgeResponse:
    """Fetch ``request`` from its origin, with the counters and timing below."""
    ctx.stats.origin_fetches += 1
    try:
        resp = await ctx.origin.fetch(request, streaming_ok=streaming_ok)
    except OriginError as err:
        failed(ctx, ex, err)
        raise
    return fetched(ex, resp)


# The pipeline inlines ``run`` on its hot path (one coroutine frame less per miss) with these two halves:
# ``ctx.stats.origin_fetches += 1``, ``await ctx.origin.fetch(...)``, then ``failed`` or ``fetched``.

def failed(ctx: PopContext, ex: Exchange, err: OriginError) -> None:
    """Account for an origin fetch that raised ``err`` (the caller re-raises it)."""
    ctx.stats.origin_errors += 1
    ex.mark(Step.ORIGIN_FETCH, f"error-{err.status}")


def fetched(ex: Exchange, resp: EdgeResponse) -> EdgeResponse:
    """Record the origin's time (Server-Timing ``origin``) and status for a fetched response."""
    seconds = resp.meta.origin_seconds
    ex.origin_seconds += seconds
    ex.timing.add_duration("origin", seconds)
    ex.trace.append(f"origin-fetch:{resp.status}")
    return resp
