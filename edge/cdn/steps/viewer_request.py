"""Step 1, viewer-request: admit the viewer request, pick the behavior, run the viewer-request hook.

Runs on every viewer request, before the cache lookup. Refusals (contract §1.4, §5.8, CloudFront
behaviour): a disabled distribution -> 403; a method outside the behavior's AllowedMethods -> 403; a GET
carrying a body -> 403. ``DefaultRootObject`` rewrites exactly ``/`` before the behavior is chosen. The
function may return a modified request (the cache key is computed from it; changing the uri does NOT
re-select the behavior, contract §2.3) or a generated response, which goes straight to the viewer: not
cached, no viewer-response.
"""

from __future__ import annotations

from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.errors import DistributionDisabled, GetWithBody, MethodNotAllowed
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext


def admit(ctx: PopContext, ex: Exchange) -> BehaviorPlan:
    """Apply DefaultRootObject, select the behavior (``ex.plan``, returned), and refuse what CloudFront refuses
    (raises ViewerError)."""
    dist = ctx.distribution
    if not dist.enabled:
        raise DistributionDisabled("distribution is disabled")
    req = ex.request
    if req.uri == "/" and dist.default_root_object:
        req.uri = "/" + dist.default_root_object
    ex.plan = plan = ctx.match(req.uri)
    behavior = plan.behavior
    if req.method not in behavior.allowed_methods:
        raise MethodNotAllowed(f"{req.method} not in AllowedMethods of behavior {behavior.path_pattern!r}")
    if req.method == "GET" and req.body:
        raise GetWithBody("GET request with a body")
    return plan


async def run(ctx: PopContext, ex: Exchange) -> EdgeResponse | None:
    """Run the viewer-request hook (the pipeline runs this step only when one is associated); returns a generated
    response, or None to continue."""
    result = await ctx.run_hook(ex, Step.VIEWER_REQUEST, ex.request)
    if isinstance(result, EdgeResponse):
        ex.mark(Step.VIEWER_REQUEST, "generated")
        return result
    assert isinstance(result, EdgeRequest)
    ex.mark(Step.VIEWER_REQUEST)
    ex.request = result
    return None
