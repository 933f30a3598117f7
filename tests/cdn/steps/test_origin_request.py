"""The origin-bound request built by ``build_origin_request`` (single pass, per-behavior ``Forwarding``)
equals the one the straightforward rule-by-rule construction gives, for random viewer requests under every
behavior of the full fixture distribution (reference below: the contract's rules applied one after another)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.config.distribution import Behavior, load_distribution
from edge.cdn.config.plan import Forwarding, forwarding_lists, generated_header_names
from edge.cdn.config.policies import cloudfront_owned
from edge.cdn.models import EdgeRequest
from edge.cdn.origin.http1 import HOP_BY_HOP
from edge.cdn.steps.origin_request import (
    ALWAYS_FORWARDED,
    REMOVED_UNLESS_FORWARDED,
    _normalize_accept_encoding,
    _selected,
    build_origin_request,
    filter_cookies,
    filter_query,
    origin_headers,
)

DIST = load_distribution(json.loads((Path(__file__).parents[1] / "fixtures" / "full-distribution.json").read_text()))
BEHAVIORS = [*DIST.behaviors, DIST.default_behavior]
_ALL = frozenset({"all", "allViewer", "allViewerAndWhitelistCloudFront"})


def _strip(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = set(HOP_BY_HOP)
    for k, v in headers:
        if k.lower() == "connection":
            named.update(t.strip().lower() for t in v.split(",") if t.strip())
    return [(k, v) for k, v in headers if k.lower() not in named and not k.lower().startswith("proxy-")]


def reference(viewer: EdgeRequest, behavior: Behavior, domain: str) -> tuple[list[tuple[str, str]], str]:
    """(headers, querystring) by the contract's rules, one at a time (contract §5.2, §5.5)."""
    heads, cooks, qss = forwarding_lists(behavior)
    cp = behavior.cache_policy
    forward_all = any(r.behavior in _ALL for r in heads) or (cp.legacy and cp.forward_all_headers)
    generated = {n.lower() for n in generated_header_names(behavior)}
    kept, xff, via, has_host, has_ua = [], [], [], False, False
    for k, v in _strip([(k, v) for k, v in viewer.headers if k.lower() != "cookie"]):
        lk = k.lower()
        selected = forward_all or _selected(heads, lk, case_insensitive=True)
        if lk == "x-forwarded-for":
            xff.append(v)
        elif lk == "via":
            via.append(v)
        elif lk in ("x-amz-cf-id", "expect") or lk.startswith("x-edge-"):
            pass  # CloudFront's own headers, and the expectation the POP answered itself
        elif lk == "authorization" and not (any(kl.behavior == "whitelist" and "authorization" in {
                n.lower() for n in kl.names} for kl in heads) or (forward_all and cp.caching_disabled)):
            pass  # only from the cache key, or all viewer headers without caching
        elif lk in REMOVED_UNLESS_FORWARDED and lk != "authorization" and not selected:
            pass  # removed unless the behavior forwards them
        elif cloudfront_owned(lk) and lk not in generated:
            pass  # a viewer's copy of a header CloudFront owns
        elif not cp.legacy and not selected and lk not in ALWAYS_FORWARDED and not lk.startswith("content-"):
            pass  # a cache policy forwards what the policies select, and nothing more
        else:
            has_host, has_ua = has_host or lk == "host", has_ua or lk == "user-agent"
            kept.append((k, v))
    if not has_host:
        kept.insert(0, ("Host", domain))
    if not has_ua:
        kept.append(("User-Agent", "Amazon CloudFront"))
    kept += [("X-Forwarded-For", ", ".join([*xff, viewer.client_ip])), ("Via", ", ".join([*via, "V"])),
             ("X-Amz-Cf-Id", "ID")]
    cookie = filter_cookies([v for k, v in viewer.headers if k.lower() == "cookie"], cooks)
    if cookie is not None:
        kept.append(("Cookie", cookie))
    if cp.gzip or cp.brotli:
        ae = next((v for k, v in viewer.headers if k.lower() == "accept-encoding"), None)
        kept = [(k, v) for k, v in kept if k.lower() != "accept-encoding"]
        kept.append(("Accept-Encoding", _normalize_accept_encoding(ae, cp.gzip, cp.brotli)))
    return kept, filter_query(viewer.querystring, qss)


NAMES = st.sampled_from(["Host", "host", "User-Agent", "Accept", "Accept-Encoding", "Cookie", "cookie", "Origin",
                         "X-Forwarded-For", "Via", "X-Amz-Cf-Id", "X-Edge-Foo", "Connection", "Keep-Alive",
                         "Proxy-Foo", "TE", "Authorization", "X-App", "Referer", "Accept-Language", "theme",
                         "CloudFront-Viewer-Country", "CloudFront-Is-Mobile-Viewer", "Expect", "Content-Type",
                         "If-None-Match", "X-Forwarded-Host", "Cache-Control"])
VALUES = st.sampled_from(["a", "gzip, br", "br;q=0", "theme=dark; a=1", "x=1", "keep-alive, X-App", "close",
                          "Origin", "v=2"])
QUERIES = st.sampled_from(["", "v=1", "a=1&v=2", "v", "&&v=3&b", "x=1&y=2"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8), QUERIES, st.sampled_from(range(len(BEHAVIORS))))
def test_build_origin_request_matches_reference(headers: list[tuple[str, str]], qs: str, which: int) -> None:
    behavior = BEHAVIORS[which]
    spec = DIST.origin_for(behavior)
    viewer = EdgeRequest("GET", "/p", qs, headers, "192.0.2.7")
    got = build_origin_request(viewer, Forwarding.of(behavior), spec.to_edge_origin(), via="V", request_id="ID")
    assert (got.headers, got.querystring) == reference(viewer, behavior, spec.domain_name)


def test_origin_headers_shape() -> None:
    viewer = [("Host", "d111.cloudfront.net"), ("User-Agent", "curl"), ("Accept-Language", "de"),
              ("X-Forwarded-For", "10.0.0.1"), ("Cookie", "a=1"), ("X-Edge-Foo", "1"), ("X-App", "v")]
    out = origin_headers(viewer, origin_domain="origin.example", client_ip="192.0.2.1",
                         via="1.1 abc.cloudfront.net (CloudFront)", request_id="ID==")
    assert out[0] == ("Host", "origin.example")
    assert ("X-App", "v") in out and ("User-Agent", "Amazon CloudFront") in out
    assert ("X-Forwarded-For", "10.0.0.1, 192.0.2.1") in out
    assert ("Via", "1.1 abc.cloudfront.net (CloudFront)") in out and ("X-Amz-Cf-Id", "ID==") in out
    names = {k.lower() for k, _ in out}
    assert not names & {"accept-language", "cookie", "x-edge-foo"}
    fwd = origin_headers(viewer, origin_domain="o", client_ip="1.1.1.1", via="v", request_id="i",
                         forwarded=frozenset({"user-agent", "accept-language", "host"}))
    assert ("User-Agent", "curl") in fwd and ("Accept-Language", "de") in fwd and ("Host", "d111.cloudfront.net") in fwd


@pytest.mark.parametrize("behavior", BEHAVIORS, ids=lambda b: b.path_pattern)
@pytest.mark.parametrize("name", ["host", "user-agent", "accept", "authorization", "origin", "x-app", "referer",
                                  "cloudfront-is-mobile-viewer", "accept-language"])
def test_forwarding_decides_like_the_rules(behavior: Behavior, name: str) -> None:
    heads, _, _ = forwarding_lists(behavior)
    assert (name in Forwarding.of(behavior)) == _selected(heads, name, case_insensitive=True)
