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

from edge.cdn.distribution import Behavior, OriginSpec
from edge.cdn.managed_policies import KeyList
from edge.cdn.models import EdgeRequest, EdgeResponse, Origin
from edge.cdn.origin_client import origin_headers
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


def build_origin_request(
    viewer: EdgeRequest, behavior: Behavior, spec: OriginSpec, origin: Origin, *, via: str, request_id: str
) -> EdgeRequest:
    """The origin-bound request for ``viewer`` under ``behavior`` (see the module docstring)."""
    head_rules, cookie_rules, qs_rules = forwarding_lists(behavior)
    forward_all = any(r.behavior in _ALL for r in head_rules)
    cookies = [v for k, v in viewer.headers if k.lower() == "cookie"]
    forwarded = frozenset(
        k.lower() for k, _ in viewer.headers
        if k.lower() not in ("cookie", "accept-encoding") and _selected(head_rules, k, case_insensitive=True))
    headers = origin_headers(
        [(k, v) for k, v in viewer.headers if k.lower() != "cookie"],
        origin_domain=spec.domain_name, client_ip=viewer.client_ip, via=via, request_id=request_id,
        forwarded=forwarded, forward_all=forward_all,
    )
    cookie = filter_cookies(cookies, cookie_rules)
    if cookie is not None:
        headers.append(("Cookie", cookie))
    cp = behavior.cache_policy
    if cp.gzip or cp.brotli:
        ae = next((v for k, v in viewer.headers if k.lower() == "accept-encoding"), None)
        headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
        headers.append(("Accept-Encoding", _normalize_accept_encoding(ae, cp.gzip, cp.brotli)))
    return EdgeRequest(
        method=viewer.method, uri=viewer.uri, querystring=filter_query(viewer.querystring, qs_rules),
        headers=headers, client_ip=viewer.client_ip, body=viewer.body, origin=origin,
    )


def conditional(request: EdgeRequest, etag: str | None, last_modified: str | None) -> EdgeRequest:
    """``request`` turned into a revalidation (RFC 9111 §4.3.1): the stored validators replace any the
    viewer sent; Range is dropped so the full object comes back on a 200."""
    headers = [(k, v) for k, v in request.headers
               if k.lower() not in ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since",
                                    "if-range", "range")]
    if etag:
        headers.append(("If-None-Match", etag))
    if last_modified:
        headers.append(("If-Modified-Since", last_modified))
    return EdgeRequest(method="GET", uri=request.uri, querystring=request.querystring, headers=headers,
                       client_ip=request.client_ip, body=None, origin=request.origin)


async def run(ctx: PopContext, ex: Exchange, request: EdgeRequest) -> EdgeRequest | EdgeResponse:
    """Run the origin-request hook if associated: the request to forward, or a generated response."""
    assert ex.behavior is not None
    if not ctx.hooked(ex.behavior, Step.ORIGIN_REQUEST):
        return request
    result = await ctx.run_hook(ex, Step.ORIGIN_REQUEST, request)
    ex.mark(Step.ORIGIN_REQUEST, "generated" if isinstance(result, EdgeResponse) else "")
    return result
