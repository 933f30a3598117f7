"""Step 3, origin-request: shape the request CloudFront sends to the origin, then run the origin-request hook.

Runs on a cache miss, a revalidation or a pass-through. The shaped request carries what the origin will see (and what
an origin-request function sees, contract §1.7): Host = origin domain (unless forwarded by policy),
User-Agent ``Amazon CloudFront`` (unless forwarded), X-Forwarded-For with the viewer IP appended, Via and
X-Amz-Cf-Id added, hop-by-hop headers removed, only the headers/cookies/query strings the cache policy and
origin-request policy select, and ``origin`` set to the behavior's target origin (or the one a CloudFront
viewer-request function chose: ``Exchange.origin_override``, with its ``hostHeader``). The function may return a
modified request (continue to origin-fetch) or a generated response (cached subject to policy; skips
origin-fetch and origin-response).
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from edge.cdn.cache.policy import CacheEntry
from edge.cdn.cache.ranges import CONDITIONAL_HEADERS
from edge.cdn.config.plan import Forwarding
from edge.cdn.config.policies import KeyList, cloudfront_owned
from edge.cdn.models import EdgeRequest, EdgeResponse, Headers, Origin, header_set
from edge.cdn.origin.client import strip_hop_by_hop
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext

# Viewer headers CloudFront removes before contacting the origin unless a policy forwards them (contract §5.5,
# the table of "Request and response behavior for custom origins",
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html).
REMOVED_UNLESS_FORWARDED = frozenset(
    {"accept", "accept-charset", "accept-language", "referer", "cookie", "x-forwarded-proto",
     "x-http-method-override", "x-real-ip", "authorization", "host", "user-agent"}
)
# Headers the POP sets itself on the origin request, and Expect: the POP answers a viewer's 100-continue itself
# and holds the whole body before the origin is contacted, so an origin is never asked for a 100 Continue ("Expect:
# CloudFront removes the header", same table; a policy that forwards all viewer headers does not bring it back).
_POP_SET = frozenset({"x-forwarded-for", "via", "x-amz-cf-id", "expect"})
# Viewer header names origin_headers does more with than keep them (one set lookup per header on the hot path).
_SPECIAL = REMOVED_UNLESS_FORWARDED | _POP_SET
# Viewer headers a behavior with policies forwards although no policy names them (policies cannot name them:
# "Caching based on header values: No" in the same table, or they describe the request body, which is always
# forwarded), plus the conditional and range headers of requests that are not served from the cache (a
# cacheable request's are replaced by the POP's own, ``conditional``). The rest goes only where a policy says.
ALWAYS_FORWARDED = frozenset(
    {"cache-control", "pragma", "max-forwards", "request-range", "transfer-encoding", "content-length",
     *CONDITIONAL_HEADERS}
)


def _selected(lists: tuple[KeyList, ...], name: str, *, case_insensitive: bool) -> bool:
    return any(kl.includes(name, case_insensitive=case_insensitive) for kl in lists)


def origin_headers(
    viewer_headers: Iterable[tuple[str, str]],
    *,
    origin_domain: str,
    client_ip: str,
    via: str,
    request_id: str,
    forwarded: Container[str] = frozenset(),
    forward_all: bool = False,
    only_selected: bool = False,
    authorization: bool | None = None,
    generated: Container[str] = frozenset(),
) -> Headers:
    """The header list CloudFront sends to the origin for a viewer request (contract §5.5).

    ``forwarded`` holds lowercase names a cache/origin-request policy forwards (``forward_all`` for the
    AllViewer policy): those keep their viewer value, including Host and User-Agent. Other headers in
    ``REMOVED_UNLESS_FORWARDED`` are dropped; ``X-Edge-*`` and ``Expect`` always; hop-by-hop headers always (RFC
    9110 §7.6.1); CloudFront-owned names (``cloudfront_owned``) unless ``generated`` (the behavior's own values);
    with ``only_selected`` (a cache policy) every header neither selected nor in ``ALWAYS_FORWARDED`` or
    ``Content-*``. ``authorization`` overrides the policy test for Authorization (``Forwarding.authorization``).
    X-Forwarded-For gets the viewer IP appended, Via gets CloudFront's entry appended, X-Amz-Cf-Id is added, Host
    defaults to the origin domain and User-Agent to ``Amazon CloudFront``.
    """
    kept: Headers = []
    xff: list[str] = []
    viewer_via: list[str] = []
    has_host = has_ua = False
    for k, v in strip_hop_by_hop(viewer_headers):
        lk = k.lower()
        if lk in _SPECIAL:
            if lk == "x-forwarded-for":
                xff.append(v)
                continue
            if lk == "via":
                viewer_via.append(v)
                continue
            if lk in _POP_SET:
                continue
            if lk == "authorization" and authorization is not None:
                if not authorization:
                    continue
            elif not (forward_all or lk in forwarded):
                continue
            if lk == "host":
                has_host = True
            elif lk == "user-agent":
                has_ua = True
        elif lk.startswith(("x-edge-", "cloudfront-")):
            if lk[0] == "x" or (cloudfront_owned(lk) and lk not in generated):
                continue
            if only_selected and not (forward_all or lk in forwarded):
                continue
        elif only_selected and not (forward_all or lk in forwarded or lk in ALWAYS_FORWARDED
                                    or lk.startswith("content-")):
            continue
        kept.append((k, v))
    if not has_host:
        kept.insert(0, ("Host", origin_domain))
    if not has_ua:
        kept.append(("User-Agent", "Amazon CloudFront"))
    kept.append(("X-Forwarded-For", ", ".join([*xff, client_ip]) if xff else client_ip))
    kept.append(("Via", ", ".join([*viewer_via, via]) if viewer_via else via))
    kept.append(("X-Amz-Cf-Id", request_id))
    return kept


def filter_query(querystring: str, rules: tuple[KeyList, ...]) -> str:
    """Keep the query parameters selected by ``rules`` in their original order (names case-sensitive)."""
    if not querystring or any(r.behavior == "all" for r in rules):
        return querystring
    if all(r.behavior == "none" for r in rules):
        return ""
    kept = [p for p in querystring.split("&") if p and _selected(rules, p.split("=", 1)[0], case_insensitive=False)]
    return "&".join(kept)


def filter_cookies(cookie_headers: list[str], rules: tuple[KeyList, ...]) -> str | None:
    """The Cookie header to forward: selected cookies sorted by name (contract §5.2), or None."""
    if all(r.behavior == "none" for r in rules):
        return None
    pairs: list[tuple[str, str]] = []
    for header in cookie_headers:
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if name and sep and _selected(rules, name, case_insensitive=False):
                pairs.append((name, value))
    if not pairs:
        return None
    pairs.sort(key=lambda p: p[0])
    return "; ".join(f"{n}={v}" for n, v in pairs)


def _normalize_accept_encoding(value: str | None, gzip: bool, brotli: bool) -> str:
    """CloudFront's Accept-Encoding normalization when compression is part of the cache policy (§5.2)."""
    tokens = {t.split(";")[0].strip().lower() for t in (value or "").split(",")}
    out = [e for e, on in (("br", brotli), ("gzip", gzip)) if on and e in tokens]
    return ",".join(out) or "identity"


def build_origin_request(viewer: EdgeRequest, forwarding: Forwarding, origin: Origin, *, via: str,
                         request_id: str) -> EdgeRequest:
    """The request CloudFront sends to ``origin`` for ``viewer`` under a behavior that forwards ``forwarding``
    (see the module docstring)."""
    normalize = forwarding.gzip or forwarding.brotli
    cookies: list[str] = []
    ae: str | None = None
    pairs: list[tuple[str, str]] = []
    for k, v in viewer.headers:
        lk = k.lower()
        if lk == "cookie":  # forwarded as selected by the policies (below), never as received
            cookies.append(v)
        elif lk == "accept-encoding" and normalize:  # replaced by its normalised form (below)
            if ae is None:
                ae = v
        else:
            pairs.append((k, v))
    headers = origin_headers(pairs, origin_domain=origin.domain_name, client_ip=viewer.client_ip, via=via,
                             request_id=request_id, forwarded=forwarding, forward_all=forwarding.forward_all,
                             only_selected=forwarding.only_selected, authorization=forwarding.authorization,
                             generated=forwarding.generated)
    if cookies and not forwarding.cookies_none:
        cookie = filter_cookies(cookies, forwarding.cookies)
        if cookie is not None:
            headers.append(("Cookie", cookie))
    if normalize:
        headers.append(("Accept-Encoding", _normalize_accept_encoding(ae, forwarding.gzip, forwarding.brotli)))
    qs = viewer.querystring
    if qs and not forwarding.queries_all:
        qs = "" if forwarding.queries_none else filter_query(qs, forwarding.queries)
    return EdgeRequest(method=viewer.method, uri=viewer.uri, querystring=qs, headers=headers,
                       client_ip=viewer.client_ip, body=viewer.body, origin=origin)


def conditional(request: EdgeRequest, etag: str | None, last_modified: str | None) -> EdgeRequest:
    """``request`` turned into a revalidation (RFC 9111 §4.3.1): the stored validators replace any the
    viewer sent; Range is dropped so the full object comes back on a 200."""
    headers = [(k, v) for k, v in request.headers if k.lower() not in CONDITIONAL_HEADERS]
    if etag:
        headers.append(("If-None-Match", etag))
    if last_modified:
        headers.append(("If-Modified-Since", last_modified))
    return EdgeRequest(method="GET", uri=request.uri, querystring=request.querystring, headers=headers,
                       client_ip=request.client_ip, body=None, origin=request.origin)


def shape(ctx: PopContext, ex: Exchange, stale: CacheEntry | None, origin: Origin | None = None) -> EdgeRequest:
    """The request CloudFront sends to the origin for ``ex`` (see the module docstring) - to ``origin`` when given
    (an origin group's secondary). For a cacheable request the full object is asked for, with its own method only
    for OPTIONS (HEAD, ranges and the viewer's conditionals are answered from the stored object), and a revalidation
    of ``stale`` carries its validators."""
    plan = ex.plan
    assert plan is not None
    override = ex.origin_override  # a CloudFront viewer-request function changed the origin
    target = origin or (plan.edge_origin if override is None else override.origin)
    req = build_origin_request(ex.request, plan.forwarding, target, via=ctx.identity.via, request_id=ex.request_id)
    if origin is None and override is not None and override.host_header is not None:
        header_set(req.headers, "Host", override.host_header)
    if ex.cache_key is not None:
        req = conditional(req, stale.etag if stale else None, stale.last_modified if stale else None)
        if ex.request.method == "OPTIONS":
            req.method = "OPTIONS"
    return req


async def run(ctx: PopContext, ex: Exchange, request: EdgeRequest) -> EdgeRequest | EdgeResponse:
    """Run the origin-request hook (the pipeline runs this step only when one is associated): the request to
    forward, or a response the function generated."""
    result = await ctx.run_hook(ex, Step.ORIGIN_REQUEST, request)
    ex.mark(Step.ORIGIN_REQUEST, "generated" if isinstance(result, EdgeResponse) else "")
    return result
