"""Which tier nodes a stack runs (edge.control.stack.tiers): names, regions, supervisor children."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.control.stack.config import load_stack_config
from edge.control.stack.serve import build_children
from edge.control.stack.tiers import stack_tier_regions, tier_name

SHIELDED = {"DistributionConfig": {
    "CallerReference": "t", "Comment": "", "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "o.example.test",
                                          "OriginShield": {"Enabled": True, "OriginShieldRegion": "us-east-2"},
                                          "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                             "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}}}


def test_tier_names_are_short_and_stable() -> None:
    assert [tier_name(r) for r in ("us-east-1", "eu-central-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1")] \
        == ["REC-USE1", "REC-EUC1", "REC-APNE1", "REC-APSE2", "REC-SAE1"]


def _cfg(tmp: Path, tiers: str = ""):  # type: ignore[no-untyped-def]
    import json

    (tmp / "d.json").write_text(json.dumps(SHIELDED))
    (tmp / "s.toml").write_text('[[pops]]\nname = "IAD"\nregion = "us-east-1"\nport = 18081\n'
                                '[[pops]]\nname = "FRA"\nregion = "eu-central-1"\nport = 18082\n' + tiers)
    return load_stack_config(state_dir=tmp / "state", settings=tmp / "s.toml", distribution=tmp / "d.json",
                             pop_overrides=[], api_port=19001, origin_port=18000, origin=None)


def test_a_node_per_pop_region_and_shield_region_started_after_the_pops(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert stack_tier_regions(cfg) == ["us-east-1", "eu-central-1", "us-east-2"]
    args = argparse.Namespace(pop=[], watch=False, log_level="INFO", no_origin=True)
    names = [(c.name, c.ready_later) for c in build_children(args, cfg)]
    assert names == [("control", False), ("pop-IAD", False), ("pop-FRA", False), ("tier-us-east-1", True),
                     ("tier-eu-central-1", True), ("tier-us-east-2", True)]


def test_tiers_can_be_switched_off(tmp_path: Path) -> None:
    assert stack_tier_regions(_cfg(tmp_path, "[tiers]\nenabled = false\n")) == []
