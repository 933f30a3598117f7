"""Step 1, viewer-request: admit the viewer request, pick the behavior, run the viewer-request hook.

Runs on every viewer request, before the cache lookup. Refusals (contract §1.4, §5.8, CloudFront
behaviour): a disabled distribution -> 403; a method outside the behavior's AllowedMethods -> 403; a GET
carrying a body -> 403. ``DefaultRootObject`` rewrites exactly ``/`` before the behavior is chosen. The
function may return a modified request (the cache key is computed from it; changing the uri does NOT
re-select the behavior, contract §2.3) or a generated response, which goes straight to the viewer: not
cached, no viewer-response.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.errors import (
    DistributionDisabled,
    GetWithBody,
    HttpsRequired,
    LambdaError,
    MethodNotAllowed,
    RedirectToHttps,
)
from edge.cdn.models import EdgeRequest, EdgeResponse, header_get
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
    if behavior.viewer_protocol_policy != "allow-all" and req.scheme != "https" and ctx.https_port is not None:
        raise _https_answer(ctx, req, behavior.viewer_protocol_policy, ctx.https_port)
    return plan


def _https_answer(ctx: PopContext, req: EdgeRequest, policy: str, port: int) -> HttpsRequired | RedirectToHttps:
    """What CloudFront answers an HTTP request to a behavior that wants HTTPS ("Require HTTPS for communication
    between viewers and CloudFront",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-https-viewers-to-cloudfront.html):
    ``https-only`` -> 403; ``redirect-to-https`` -> 301 for GET/HEAD, 307 for other methods over HTTP/1.1 and
    later, 403 for those below HTTP/1.1. The Location is the same URL with ``https://`` on the POP's HTTPS port
    (omitted when 443, as on CloudFront). A POP without an HTTPS listener serves such behaviors over HTTP (there
    is nowhere to send the viewer)."""
    if policy == "https-only":
        return HttpsRequired(f"{req.method} over HTTP to an https-only behavior")
    if req.method in ("GET", "HEAD"):
        status = 301
    elif req.http_version >= (1, 1):
        status = 307
    else:
        return HttpsRequired(f"{req.method} over HTTP/1.0 to a redirect-to-https behavior")
    host = header_get(req.headers, "host") or ctx.distribution.domain_name
    if host.startswith("["):  # an IPv6 literal, with or without a port
        name = host[:host.find("]") + 1] or host
    else:
        name = host.partition(":")[0]
    authority = name if port == 443 else f"{name}:{port}"
    query = f"?{req.querystring}" if req.querystring else ""
    return RedirectToHttps(f"https://{authority}{req.uri}{query}", status=status)


async def run(ctx: PopContext, ex: Exchange) -> EdgeResponse | None:
    """Run the viewer-request hook (the pipeline runs this step only when one is associated); returns a generated
    response, or None to continue."""
    return _applied(ex, await ctx.run_hook(ex, Step.VIEWER_REQUEST, ex.request))


def start(ctx: PopContext, ex: Exchange, done: Callable[[EdgeResponse | LambdaError | None], object]) -> bool:
    """:func:`run` without a coroutine when the runner can (``PopContext.start_hook``): True when started, and
    ``done`` gets what ``run`` returns or the error it raises; False, with nothing done: use ``run``."""
    return ctx.start_hook(ex, Step.VIEWER_REQUEST, ex.request,
                          lambda result: done(result if isinstance(result, LambdaError) else _applied(ex, result)))


def _applied(ex: Exchange, result: EdgeRequest | EdgeResponse) -> EdgeResponse | None:
    if isinstance(result, EdgeResponse):
        ex.mark(Step.VIEWER_REQUEST, "generated")
        return result
    ex.mark(Step.VIEWER_REQUEST)
    ex.request = result
    return None
