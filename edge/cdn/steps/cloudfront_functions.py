"""Steps 1b and 7b, CloudFront Functions: the viewer-request and viewer-response functions of
``FunctionAssociations``, run by the POP's ``CloudFrontFunctionRunner`` (``edge.cdn.cloudfront_functions.runner``).

Where they run (``edge.cdn.pipeline`` sequences them; "Restrictions on all edge functions" and "Customize at the
edge with CloudFront Functions" in the CloudFront Developer Guide): in place of the Lambda@Edge viewer hooks (a
behavior cannot have both on viewer events), so

    viewer-request function -> cache lookup with the modified request -> [miss] origin-request (Lambda@Edge,
    sees the request and the origin the function chose) -> origin -> origin-response -> cache
    -> viewer-response function

CloudFront adds its generated viewer headers (the device headers a policy names) *before* a CloudFront function
runs: AWS's examples read ``cloudfront-viewer-country`` in viewer-request once a cache or origin request policy
includes it ("Redirect the viewer to a new URL" example) - unlike a Lambda@Edge viewer-request function. A response
the function generates goes straight to the viewer (``FunctionGeneratedResponse from cloudfront``: not cached, no
viewer-response). The viewer-response function is skipped by the same rules as Lambda@Edge's (origin status
>= 400, custom error pages, generated responses) and, unlike Lambda@Edge, may change the status.

A POP without a runner answers a behavior's CloudFront function with 503 ``FunctionExecutionError``: the
association is never silently skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.cdn.cloudfront_functions.errors import FunctionExecutionError
from edge.cdn.models import EdgeResponse
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext

if TYPE_CHECKING:
    from edge.cdn.cloudfront_functions.engine import FunctionEngine
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, LiveFunction, RequestOutcome

    Ready = tuple[LiveFunction, FunctionEngine]


def _runner(ctx: PopContext, event_type: str, name: str) -> CloudFrontFunctionRunner:
    if ctx.functions is None:
        raise FunctionExecutionError(f"no CloudFront Functions runtime in this POP to run {name}",
                                     function=name, event_type=event_type)
    return ctx.functions


async def viewer_request(ctx: PopContext, ex: Exchange) -> EdgeResponse | None:
    """Run the behavior's viewer-request function (the pipeline runs this step only when one is associated);
    a generated response, or None to continue with the (possibly modified) request and origin."""
    plan = ex.plan
    assert plan is not None
    assoc = plan.functions[Step.VIEWER_REQUEST]
    runner = _runner(ctx, assoc.event_type, assoc.function_name)
    outcome = await runner.viewer_request(assoc, ctx.distribution, ex.request, ex.request_id, ex.timing,
                                          plan.edge_origin)
    return _applied(ex, outcome)


def ready(ctx: PopContext, ex: Exchange, step: Step) -> Ready | None:
    """The behavior's ``step`` function when it can run at once (``viewer_request_now``, ``viewer_response_now``),
    else None: it must be loaded first (``viewer_request``, ``viewer_response``)."""
    plan = ex.plan
    assert plan is not None
    assoc = plan.functions[step]
    return _runner(ctx, assoc.event_type, assoc.function_name).prepared(assoc)


def viewer_request_now(ctx: PopContext, ex: Exchange, ready: Ready) -> EdgeResponse | None:
    """``viewer_request`` synchronously, with what ``ready`` returned."""
    plan = ex.plan
    assert plan is not None and ctx.functions is not None
    outcome = ctx.functions.viewer_request_now(ready, plan.functions[Step.VIEWER_REQUEST], ctx.distribution,
                                               ex.request, ex.request_id, ex.timing, plan.edge_origin)
    return _applied(ex, outcome)


def _applied(ex: Exchange, outcome: RequestOutcome) -> EdgeResponse | None:
    if outcome.response is not None:
        ex.mark(Step.VIEWER_REQUEST, "function-generated")
        return outcome.response
    ex.mark(Step.VIEWER_REQUEST, "function")
    ex.request = outcome.request
    ex.origin_override = outcome.origin
    return None


async def viewer_response(ctx: PopContext, ex: Exchange, response: EdgeResponse) -> EdgeResponse:
    """Run the behavior's viewer-response function (the pipeline checked it is associated and not skipped)."""
    plan = ex.plan
    assert plan is not None
    assoc = plan.functions[Step.VIEWER_RESPONSE]
    runner = _runner(ctx, assoc.event_type, assoc.function_name)
    try:
        result = await runner.viewer_response(assoc, ctx.distribution, ex.request, response, ex.request_id,
                                              ex.timing)
    except BaseException:
        await response.aclose()  # a streamed body that will not be sent: release its origin connection
        raise
    ex.mark(Step.VIEWER_RESPONSE, "function")
    if result.body is not response.body:
        await response.aclose()
    return result


def viewer_response_now(ctx: PopContext, ex: Exchange, response: EdgeResponse, ready: Ready) -> EdgeResponse:
    """``viewer_response`` synchronously, with what ``ready`` returned, for a response held in memory (a cache
    hit: nothing to release)."""
    plan = ex.plan
    assert plan is not None and ctx.functions is not None and isinstance(response.body, bytes)
    result = ctx.functions.viewer_response_now(ready, plan.functions[Step.VIEWER_RESPONSE], ctx.distribution,
                                               ex.request, response, ex.request_id, ex.timing)
    ex.mark(Step.VIEWER_RESPONSE, "function")
    return result
