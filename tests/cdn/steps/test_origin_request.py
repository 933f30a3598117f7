"""The origin-bound request built by ``build_origin_request`` (single pass, per-behavior ``ForwardingPlan``)
equals the one the straightforward rule-by-rule construction gives, for random viewer requests under every
behavior of the full fixture distribution (reference below: the contract's rules applied one after another)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.config.distribution import Behavior, load_distribution
from edge.cdn.models import EdgeRequest
from edge.cdn.origin.client import REMOVED_UNLESS_FORWARDED
from edge.cdn.origin.http1 import HOP_BY_HOP
from edge.cdn.steps.origin_request import (ForwardingPlan, _normalize_accept_encoding, _selected,
                                           build_origin_request, filter_cookies, filter_query, forwarding_lists)

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
    forward_all = any(r.behavior in _ALL for r in heads)
    kept, xff, via, has_host, has_ua = [], [], [], False, False
    for k, v in _strip([(k, v) for k, v in viewer.headers if k.lower() != "cookie"]):
        lk = k.lower()
        if lk == "x-forwarded-for":
            xff.append(v)
        elif lk == "via":
            via.append(v)
        elif lk in ("x-amz-cf-id",) or lk.startswith("x-edge-"):
            pass
        elif lk in REMOVED_UNLESS_FORWARDED and not (forward_all or _selected(heads, lk, case_insensitive=True)):
            pass
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
    cp = behavior.cache_policy
    if cp.gzip or cp.brotli:
        ae = next((v for k, v in viewer.headers if k.lower() == "accept-encoding"), None)
        kept = [(k, v) for k, v in kept if k.lower() != "accept-encoding"]
        kept.append(("Accept-Encoding", _normalize_accept_encoding(ae, cp.gzip, cp.brotli)))
    return kept, filter_query(viewer.querystring, qss)


NAMES = st.sampled_from(["Host", "host", "User-Agent", "Accept", "Accept-Encoding", "Cookie", "cookie", "Origin",
                         "X-Forwarded-For", "Via", "X-Amz-Cf-Id", "X-Edge-Foo", "Connection", "Keep-Alive",
                         "Proxy-Foo", "TE", "Authorization", "X-App", "Referer", "Accept-Language", "theme"])
VALUES = st.sampled_from(["a", "gzip, br", "br;q=0", "theme=dark; a=1", "x=1", "keep-alive, X-App", "close",
                          "Origin", "v=2"])
QUERIES = st.sampled_from(["", "v=1", "a=1&v=2", "v", "&&v=3&b", "x=1&y=2"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, VALUES), max_size=8), QUERIES, st.sampled_from(range(len(BEHAVIORS))))
def test_build_origin_request_matches_reference(headers: list[tuple[str, str]], qs: str, which: int) -> None:
    behavior = BEHAVIORS[which]
    spec = DIST.origin_for(behavior)
    viewer = EdgeRequest("GET", "/p", qs, headers, "192.0.2.7")
    plan = ForwardingPlan(behavior)
    for _ in range(2):  # the second time from the plan's memoised decisions
        got = build_origin_request(viewer, behavior, spec, spec.to_edge_origin(), via="V", request_id="ID",
                                   plan=plan)
        assert (got.headers, got.querystring) == reference(viewer, behavior, spec.domain_name)
