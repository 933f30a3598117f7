"""Step 3, origin-request: shape the request CloudFront sends to the origin, then run the origin-request hook.

Runs only on a cache miss or a revalidation. The shaped request carries what the origin will see (and what
an origin-request function sees, contract §1.7): Host = origin domain (unless forwarded by policy),
User-Agent ``Amazon CloudFront`` (unless forwarded), X-Forwarded-For with the viewer IP appended, Via and
X-Amz-Cf-Id added, hop-by-hop headers removed, only the headers/cookies/query strings the cache policy and
origin-request policy select, and ``origin`` set to the behavior's target origin. The function may return a
modified request (continue to origin-fetch) or a generated response (cached subject to policy; skips
origin-fetch and origin-response).
"""

from __future__ import annotations

from edge.cdn.cache.policy import CacheEntry
from edge.cdn.cache.ranges import CONDITIONAL_HEADERS
from edge.cdn.config.distribution import Behavior, OriginSpec
from edge.cdn.config.policies import KeyList
from edge.cdn.models import EdgeRequest, EdgeResponse, Origin
from edge.cdn.origin.client import origin_headers
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.context import PopContext

# Header-forwarding behaviors that mean "every viewer header".
_ALL = frozenset({"all", "allViewer", "allViewerAndWhitelistCloudFront"})


def _selected(lists: tuple[KeyList, ...], name: str, *, case_insensitive: bool) -> bool:
    return any(kl.includes(name, case_insensitive=case_insensitive) for kl in lists)


def forwarding_lists(behavior: Behavior) -> tuple[tuple[KeyList, ...], tuple[KeyList, ...], tuple[KeyList, ...]]:
    """(headers, cookies, query strings) rules whose union says what is forwarded to the origin: cache-key
    values are always forwarded, origin-request-policy values in addition (contract §5.2)."""
    cp, orp = behavior.cache_policy, behavior.origin_request_policy
    heads, cooks, qss = [cp.headers], [cp.cookies], [cp.query_strings]
    if orp is not None:
        heads.append(orp.headers)
        cooks.append(orp.cookies)
        qss.append(orp.query_strings)
    if cp.legacy and cp.forward_query_strings:
        qss.append(KeyList("all"))
    return tuple(heads), tuple(cooks), tuple(qss)


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


class ForwardingPlan:
    """What a behavior forwards to the origin, decided once per behavior (``PopContext.forwarding``): the rules of
    ``forwarding_lists`` plus memoised per-header-name decisions. ``name in plan`` says whether the policies
    forward the viewer header ``name`` (lower-case)."""

    __slots__ = ("heads", "cookies", "queries", "forward_all", "cookies_none", "queries_all", "queries_none",
                 "gzip", "brotli", "_selected")

    MEMO_LIMIT = 1024  # distinct header names remembered (viewers choose them: bounded)

    def __init__(self, behavior: Behavior) -> None:
        self.heads, self.cookies, self.queries = forwarding_lists(behavior)
        self.forward_all = any(r.behavior in _ALL for r in self.heads)
        self.cookies_none = all(r.behavior == "none" for r in self.cookies)
        self.queries_all = any(r.behavior == "all" for r in self.queries)
        self.queries_none = all(r.behavior == "none" for r in self.queries)
        self.gzip, self.brotli = behavior.cache_policy.gzip, behavior.cache_policy.brotli
        self._selected: dict[str, bool] = {}

    def __contains__(self, lname: object) -> bool:
        hit = self._selected.get(lname)  # type: ignore[arg-type]
        if hit is None:
            assert isinstance(lname, str)
            hit = _selected(self.heads, lname, case_insensitive=True)
            if len(self._selected) < self.MEMO_LIMIT:
                self._selected[lname] = hit
        return hit


def build_origin_request(
    viewer: EdgeRequest, behavior: Behavior, spec: OriginSpec, origin: Origin, *, via: str, request_id: str,
    plan: ForwardingPlan | None = None,
) -> EdgeRequest:
    """The origin-bound request for ``viewer`` under ``behavior`` (see the module docstring); ``plan`` is
    ``ForwardingPlan(behavior)``, passed in to reuse its decisions."""
    if plan is None:
        plan = ForwardingPlan(behavior)
    normalize = plan.gzip or plan.brotli
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
    headers = origin_headers(pairs, origin_domain=spec.domain_name, client_ip=viewer.client_ip, via=via,
                             request_id=request_id, forwarded=plan, forward_all=plan.forward_all)
    if cookies and not plan.cookies_none:
        cookie = filter_cookies(cookies, plan.cookies)
        if cookie is not None:
            headers.append(("Cookie", cookie))
    if normalize:
        headers.append(("Accept-Encoding", _normalize_accept_encoding(ae, plan.gzip, plan.brotli)))
    qs = viewer.querystring
    if qs and not plan.queries_all:
        qs = "" if plan.queries_none else filter_query(qs, plan.queries)
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


def shape(ctx: PopContext, ex: Exchange, stale: CacheEntry | None) -> EdgeRequest:
    """The request CloudFront sends to the origin for ``ex`` (see the module docstring). For a cacheable request
    the full object is asked for, with its own method only for OPTIONS (HEAD, ranges and the viewer's conditionals
    are answered from the stored object), and a revalidation of ``stale`` carries its validators."""
    b = ex.behavior
    assert b is not None
    spec = ctx.distribution.origin_for(b)
    req = build_origin_request(ex.request, b, spec, ctx.edge_origin(spec), via=ctx.identity.via,
                               request_id=ex.request_id, plan=ctx.forwarding_plan(b))
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
