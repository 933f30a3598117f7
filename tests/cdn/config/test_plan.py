"""compile_distribution: each behavior's plan holds what the request path derives from it, computed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cdn.cache.policy import StoreContext
from edge.cdn.config.behaviors import match_behavior
from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.plan import compile_distribution, generated_header_names
from tests.cdn.scripted_origin import behavior_config, distribution_config

DIST = load_distribution(Path(__file__).parents[1] / "fixtures" / "full-distribution.json")


def test_one_plan_per_behavior_with_its_derived_data() -> None:
    plans = compile_distribution(DIST)
    assert [p.behavior for p in (*plans.behaviors, plans.default)] == list(DIST.all_behaviors)
    for plan in (*plans.behaviors, plans.default):
        b = plan.behavior
        assert plan.store == StoreContext.for_behavior(DIST, b)
        assert plan.origin is DIST.origin_for(b) and plan.edge_origin == plan.origin.to_edge_origin()
        assert plan.viewer_headers == generated_header_names(b)
        assert dict(plan.hooks) == {a.event_type: a for a in b.lambda_associations}
    api, css, _, default = (*plans.behaviors, plans.default)
    assert api.cached_methods == frozenset()  # CachingDisabled
    assert css.cached_methods == css.behavior.cached_methods
    assert set(default.hooks) == {"viewer-request", "viewer-response"} and set(api.hooks) == {"origin-request"}


def test_without_a_trigger_runner_no_hook_runs() -> None:
    plans = compile_distribution(DIST, hooks=False)
    assert all(not p.hooks for p in (*plans.behaviors, plans.default))


@pytest.mark.parametrize("path", ["/api/x", "/static/a.css", "static/a.css", "/img/ab/c.jpg", "/img/abc/c.jpg", "/",
                                  "/other"])
def test_match_selects_the_plan_of_match_behavior(path: str) -> None:
    plans = compile_distribution(DIST)
    assert plans.match(path).behavior is match_behavior(DIST, path)


def test_match_memo_answers_as_match_behavior_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from edge.cdn.config import plan as plan_module

    monkeypatch.setattr(plan_module, "MATCH_MEMO_ENTRIES", 16)
    plans = compile_distribution(DIST)
    rng = random.Random(7)
    parts = ["api", "static", "img", "ab", "abc", "x.css", "c.jpg", "", "%2F", "A"]
    paths = ["/" * rng.randint(0, 1) + "/".join(rng.choice(parts) for _ in range(rng.randint(0, 4))) for _ in range(400)]
    paths.append("/api/" + "x" * plan_module.MATCH_MEMO_PATH)  # too long to be remembered
    for path in paths + paths:  # the second pass answers from the memo where it can
        assert plans.match(path).behavior is match_behavior(DIST, path)
        assert len(plans._memo) <= 16
    assert all(len(p) <= plan_module.MATCH_MEMO_PATH for p in plans._memo)


def test_generated_viewer_headers_in_cloudfront_order() -> None:
    dist = load_distribution(distribution_config(default=behavior_config(
        headers=("CloudFront-Viewer-Http-Version", "cloudfront-is-mobile-viewer", "X-Other"))))
    assert generated_header_names(dist.default_behavior) == ("CloudFront-Is-Mobile-Viewer",
                                                             "CloudFront-Viewer-Http-Version")
