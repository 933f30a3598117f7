"""Viewer locations (POP defaults, the settings' table, the test header) and GeoRestriction parsing."""

from __future__ import annotations

import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.geo import GeoRestriction, ViewerLocation, parse_location_header
from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import parse_settings
from edge.cdn.steps.viewer_headers import location_values, with_viewer_headers
from tests.cdn.scripted_origin import distribution_config


def test_default_pops_have_locations_and_the_settings_can_move_them() -> None:
    s = parse_settings({})
    assert [p.location.country for p in s.pops if p.location] == ["US", "DE", "JP"]
    s = parse_settings({"pops": [{"name": "AMS", "region": "eu-west-1", "location": {"country": "nl", "city": "Amsterdam"}},
                                 {"name": "XYZ", "region": "sa-east-1"}]})
    assert s.pops[0].location == ViewerLocation("NL", city="Amsterdam") and s.pops[1].location is None
    with pytest.raises(ConfigError, match=r"pops\[0\]\.location\.country"):
        parse_settings({"pops": [{"name": "A", "region": "us-east-1", "location": {"country": "ZZ"}}]})


def test_location_header_values() -> None:
    fra = parse_settings({}).pops[1].location
    v = location_values(fra)
    assert (v["CloudFront-Viewer-Country"], v["CloudFront-Viewer-Country-Name"], v["CloudFront-Viewer-Country-Region"],
            v["CloudFront-Viewer-Country-Region-Name"], v["CloudFront-Viewer-Time-Zone"]) == (
        "DE", "Germany", "HE", "Hessen", "Europe/Berlin")
    assert "CloudFront-Viewer-Metro-Code" not in v  # US only
    assert location_values(ViewerLocation("DE", city="München"))["CloudFront-Viewer-City"] == "M%C3%BCnchen"
    got = dict(with_viewer_headers([("CloudFront-Viewer-Country", "XX"), ("Accept", "*/*")],
                                   ("CloudFront-Viewer-Country", "CloudFront-Viewer-Address",
                                    "CloudFront-Viewer-Header-Order", "CloudFront-Viewer-Header-Count"),
                                   location=fra, address="127.0.0.1:5000"))
    assert got["CloudFront-Viewer-Country"] == "DE"  # never the viewer's copy
    assert (got["CloudFront-Viewer-Address"], got["CloudFront-Viewer-Header-Order"],
            got["CloudFront-Viewer-Header-Count"]) == ("127.0.0.1:5000", "cloudfront-viewer-country:accept", "2")


def test_location_header_forms() -> None:
    assert parse_location_header("jp") == ViewerLocation("JP")
    assert parse_location_header("country=DE; city=Berlin; region=BE; tz=Europe/Berlin") == ViewerLocation(
        "DE", region="BE", city="Berlin", time_zone="Europe/Berlin")
    assert parse_location_header("nowhere") is None


def test_geo_restriction() -> None:
    def dist(kind: str, items: list[str]) -> GeoRestriction | None:
        c = distribution_config()
        c["DistributionConfig"]["Restrictions"] = {"GeoRestriction": {"RestrictionType": kind, "Quantity": len(items),
                                                                      "Items": items}}
        return load_distribution(c).geo

    allow = dist("whitelist", ["US"])
    assert allow is not None and not allow.blocks(ViewerLocation("US")) and allow.blocks(ViewerLocation("DE"))
    assert not allow.blocks(None)  # unknown location: served
    deny = dist("blacklist", ["DE", "FR"])
    assert deny is not None and deny.blocks(ViewerLocation("FR")) and not deny.blocks(ViewerLocation("JP"))
    assert dist("none", []) is None
    for kind, items, text in (("whitelist", [], "at least one"), ("whitelist", ["USA"], "ISO 3166-1"),
                              ("sometimes", ["US"], "none, whitelist or blacklist")):
        with pytest.raises(ConfigError, match=text):
            dist(kind, items)
