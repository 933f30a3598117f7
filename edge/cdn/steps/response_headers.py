"""Step 6b, response headers: the behavior's response headers policy (``ResponseHeadersPolicyId``) applied to the
response the viewer gets.

What and when ("Add or remove HTTP headers in CloudFront responses with a policy",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/modifying-response-headers.html; "Understand
response headers policies", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/understanding-response-headers-policies.html):

* on every response to a request of the behavior, served from the cache or from the origin, whatever its status
  (a viewer-response function is skipped for origin errors, a policy is not); edgelab also applies it to the
  responses CloudFront generates itself for that behavior (its error pages, a function's generated response:
  undocumented, the policy's headers were observed on CloudFront Functions' 503s) - never to the cache: the stored
  response keeps the origin's headers;
* in the documented order: the headers of ``RemoveHeadersConfig`` are removed first, then the security, custom and
  CORS headers added; a header with ``Override`` replaces the response's own, without it the response's own wins
  (CORS: one ``OriginOverride`` for every CORS header). Removing ``Server`` removes the origin's; CloudFront then
  sends its own ``Server: CloudFront``;
* CORS: ``Access-Control-Allow-Origin`` (``*`` when every origin is allowed, else the request's ``Origin`` when it
  matches the list), ``-Allow-Credentials`` and ``-Expose-Headers`` on responses to CORS requests (the request has
  ``Origin``); ``-Allow-Methods``, ``-Allow-Headers`` and ``-Max-Age`` only on preflight responses (``OPTIONS`` with
  ``Access-Control-Request-Method``). The preflight itself is forwarded like any request (no AWS page says
  CloudFront answers it on its own): the behavior must allow OPTIONS. Whether CloudFront adds ``Vary: Origin`` to a
  reflected origin is undocumented: edgelab does not;
* order with functions: the policy is applied before the viewer-response function (Lambda@Edge or CloudFront
  Functions), which sees its headers ("Amazon CloudFront introduces Response Headers Policies", AWS Networking &
  Content Delivery blog: "inserted after the response leaves the cache, and before the viewer response event").
  The shared emulation reference (cloudfront-features.md §2.5) had guessed the other order; AWS's text wins;
* ``ServerTimingHeadersConfig``: ``SamplingRate`` percent of responses, and every response to a request with
  ``Pragma: server-timing``, carry ``Server-Timing`` in CloudFront's own format
  (:meth:`edge.cdn.responses.ServerTiming.render`).
"""

from __future__ import annotations

import random

from edge.cdn.config.response_headers import CorsConfig, PolicyHeader, ResponseHeadersPolicy
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers, header_get
from edge.cdn.steps import Exchange

__all__ = ["apply", "cors_headers", "policy_headers"]


def cors_headers(cors: CorsConfig, request: EdgeRequest) -> list[PolicyHeader]:
    """The CORS headers ``cors`` adds to the response to ``request`` (none for a request without a matching
    ``Origin``)."""
    origin = header_get(request.headers, "origin")
    if origin is None or not cors.allows(origin):
        return []
    o = cors.override
    out = [PolicyHeader("Access-Control-Allow-Origin", "*" if cors.any_origin else origin, o)]
    if cors.allow_credentials:
        out.append(PolicyHeader("Access-Control-Allow-Credentials", "true", o))
    if cors.expose_headers:
        out.append(PolicyHeader("Access-Control-Expose-Headers", ", ".join(cors.expose_headers), o))
    if request.method == "OPTIONS" and header_get(request.headers, "access-control-request-method") is not None:
        if cors.allow_methods:
            out.append(PolicyHeader("Access-Control-Allow-Methods", ", ".join(cors.allow_methods), o))
        if cors.allow_headers:
            out.append(PolicyHeader("Access-Control-Allow-Headers", ", ".join(cors.allow_headers), o))
        if cors.max_age is not None:
            out.append(PolicyHeader("Access-Control-Max-Age", str(cors.max_age), o))
    return out


def policy_headers(policy: ResponseHeadersPolicy, request: EdgeRequest, headers: Headers) -> Headers:
    """``headers`` with ``policy`` applied for ``request``: removals first, then additions with their Override."""
    out = [(k, v) for k, v in headers if k.lower() not in policy.remove] if policy.remove else list(headers)
    if "server" in policy.remove:
        out.append(("Server", "CloudFront"))
    adds = [*policy.headers, *cors_headers(policy.cors, request)] if policy.cors is not None else policy.headers
    for h in adds:
        lname = h.name.lower()
        if h.override:
            out = [(k, v) for k, v in out if k.lower() != lname]
        elif any(k.lower() == lname for k, _ in out):
            continue
        out.append((h.name, h.value))
    return out


def _sampled(policy: ResponseHeadersPolicy, request: EdgeRequest) -> bool:
    if not policy.server_timing:
        return False
    pragma = header_get(request.headers, "pragma") or ""
    if "server-timing" in (t.strip().lower() for t in pragma.split(",")):
        return True
    return random.random() * 100.0 < policy.sampling_rate  # sampling, not security


def apply(ex: Exchange, response: EdgeResponse) -> EdgeResponse:
    """``response`` with the behavior's response headers policy applied (itself when the behavior has none)."""
    plan = ex.plan
    policy = plan.behavior.response_headers_policy if plan is not None else None
    if policy is None:
        return response
    if _sampled(policy, ex.request):
        ex.timing.cloudfront = True
    response.headers = policy_headers(policy, ex.request, response.headers)
    response.meta.clean = False  # the policy may have added any name: filtered again when written
    response.meta.header_block = None  # ... and the entry's serialised headers no longer describe them
    ex.trace.append("response-headers")
    return response
