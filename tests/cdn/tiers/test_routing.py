"""The tiers' pure rules: which regions get a node, where a miss goes next, the verdict a tier sends back."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.plan import BehaviorPlan
from edge.cdn.config.settings import PopSettings
from edge.cdn.errors import OriginUnavailable
from edge.cdn.tiers import LAYER_REC, LAYER_SHIELD, tier_regions
from edge.cdn.tiers.upstream import Hop, TierUpstream, TierVerdict


def _dist(shield: str | None):  # type: ignore[no-untyped-def]
    origin: dict[str, object] = {"Id": "o", "DomainName": "o.example.test",
                                 "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}
    if shield:
        origin["OriginShield"] = {"Enabled": True, "OriginShieldRegion": shield}
    return load_distribution({"DistributionConfig": {
        "CallerReference": "t", "Comment": "", "Enabled": True, "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}}})


def _plan(shield: str | None) -> BehaviorPlan:
    d = _dist(shield)
    return BehaviorPlan.of(d, d.default_behavior)


def test_a_node_per_pop_region_then_per_shield_region_once_each() -> None:
    pops = [PopSettings("IAD", "us-east-1"), PopSettings("BOS", "us-east-1"), PopSettings("FRA", "eu-central-1"),
            PopSettings("LHR", "eu-west-2", rec_region="eu-central-1")]  # LHR uses Frankfurt's REC
    assert tier_regions(pops, [_dist("us-east-2"), _dist("us-east-1"), _dist(None)]) == [
        "us-east-1", "eu-central-1", "us-east-2"]
    assert pops[3].tier_region == "eu-central-1" and pops[0].tier_region == "us-east-1"


@pytest.mark.parametrize(("region", "layer", "shield", "hop"), [
    ("us-east-1", "", None, Hop("us-east-1", LAYER_REC)),  # a POP: its REC
    ("us-east-1", "", "eu-central-1", Hop("us-east-1", LAYER_REC)),  # ... whatever the origin's shield
    ("us-east-1", LAYER_REC, None, None),  # the REC: the origin
    ("us-east-1", LAYER_REC, "eu-central-1", Hop("eu-central-1", LAYER_SHIELD)),  # the REC: the shield's Region
    ("eu-central-1", LAYER_REC, "eu-central-1", None),  # a REC in the shield's Region is the shield
    ("eu-central-1", LAYER_SHIELD, "eu-central-1", None),  # the shield: the origin
])
def test_where_a_miss_goes_next(tmp_path: Path, region: str, layer: str, shield: str | None,
                                hop: Hop | None) -> None:
    assert TierUpstream(tmp_path, region, stream_threshold=1024).next_hop(layer, _plan(shield)) == hop


def test_the_verdict_round_trips_and_refuses_anything_else() -> None:
    v = TierVerdict(x_cache="Miss from cloudfront", origin_status=200, upstream_layer=LAYER_SHIELD,
                    upstream_fbl_s=0.012, entries=('fn-origin-request;desc="a:1 warm";dur=1.0',), origin_timing="db;dur=3")
    assert TierVerdict.parse(v.header()) == v
    assert TierVerdict.parse(TierVerdict(x_cache="Hit from cloudfront", hit_layer=LAYER_REC).header()).hit_layer == "REC"
    for bad in ("", "{}", "[1]", '{"x": 1}', "not json"):
        with pytest.raises(OriginUnavailable):
            TierVerdict.parse(bad)


async def test_a_region_without_a_published_port_is_skipped_and_looked_up_again(tmp_path: Path) -> None:
    up = TierUpstream(tmp_path, "us-east-1", stream_threshold=1024)
    from edge.cdn.models import EdgeRequest

    req = EdgeRequest(method="GET", uri="/a", querystring="", headers=[], client_ip="127.0.0.1")
    assert await up.fetch(Hop("us-east-1", LAYER_REC), req, "rid", "GET") is None
    assert up.unavailable == 1 and up.hops == 0
