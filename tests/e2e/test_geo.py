"""Geo through a real POP: the example function ``functions/redirect-country`` works as on AWS (origin-request,
CloudFront-Viewer-Country in the cache policy) from a POP located in Germany, the test header moves a viewer only
when the settings switch it on, the location headers a policy selects reach the origin (never the viewer's copy),
and GeoRestriction answers CloudFront's 403 (replaced by a custom error response for 403)."""

from __future__ import annotations

import copy
from typing import Any

from edge.cdn.config.geo import DEFAULT_LOCATIONS
from edge.cdn.config.settings import EdgeSwitches
from tests.cdn.scripted_origin import distribution_config
from tests.e2e.conftest import OR, EdgeStack, assoc, behavior_config

COUNTRY = ("CloudFront-Viewer-Country",)


async def test_redirect_country_example_from_a_german_pop(edge: EdgeStack) -> None:
    await edge.function("redirect-country", example="redirect-country")
    edge.origin.script("/shop", body=b"shop", headers={"Cache-Control": "max-age=60"})
    await edge.start(default=behavior_config(headers=COUNTRY), associations=[assoc(OR, "redirect-country")],
                     settings_overrides={"pop": {"location": DEFAULT_LOCATIONS["FRA"]},
                                         "edge": EdgeSwitches(viewer_location_header=True)})
    s, h, _ = await edge.get("/shop?item=3", headers={"CloudFront-Viewer-Country": "US"})  # spoofed: ignored
    assert (s, h["Location"], h["X-Cache"]) == (302, "/de/shop?item=3", "LambdaGeneratedResponse from cloudfront")
    s, h, b = await edge.get("/shop?item=3", headers={"X-Edgelab-Viewer-Location": "US"})
    assert (s, b) == (200, b"shop")
    seen = edge.origin.requests["/shop"][-1]
    assert seen.header("CloudFront-Viewer-Country") == "US" and seen.header("X-Edgelab-Viewer-Location") is None
    s, h, _ = await edge.get("/shop?item=3", headers={"X-Edgelab-Viewer-Location": "country=JP; city=Osaka"})
    assert (s, h["Location"]) == (302, "/jp/shop?item=3")
    s, h, _ = await edge.get("/shop?item=3")  # cached per country: the German redirect again
    assert (s, h["Location"], h["X-Cache"]) == (302, "/de/shop?item=3", "Hit from cloudfront")


async def _restart(edge: EdgeStack, cfg: dict[str, Any], pop: str) -> None:
    if edge.pop is not None:
        await edge.pop.stop()
        edge.pop = None
    await edge.start(config=copy.deepcopy(cfg), settings_overrides={"pop": {"location": DEFAULT_LOCATIONS[pop]}})


async def test_geo_restriction_and_the_switched_off_test_header(edge: EdgeStack) -> None:
    edge.origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
    edge.origin.script("/blocked.html", body=b"not in your country", headers={"Cache-Control": "max-age=60"})
    ctry = ("CloudFront-Viewer-Country", "CloudFront-Viewer-City", "CloudFront-Viewer-Time-Zone")
    cfg = distribution_config(default=behavior_config(headers=ctry))
    geo = {"RestrictionType": "whitelist", "Quantity": 1, "Items": ["US"]}
    cfg["DistributionConfig"]["Restrictions"] = {"GeoRestriction": geo}
    await _restart(edge, cfg, "FRA")
    s, h, b = await edge.get("/a", headers={"X-Edgelab-Viewer-Location": "US"})  # switched off: no effect
    assert (s, h["X-Cache"], h["Content-Type"]) == (403, "Error from cloudfront", "text/html")
    assert b"configured to block access from your country" in b and edge.origin.hits["/a"] == 0
    geo.update(RestrictionType="blacklist", Items=["DE"])
    cfg["DistributionConfig"]["CustomErrorResponses"] = {"Quantity": 1, "Items": [
        {"ErrorCode": 403, "ResponsePagePath": "/blocked.html", "ResponseCode": "403", "ErrorCachingMinTTL": 10}]}
    await _restart(edge, cfg, "NRT")
    s, _, b = await edge.get("/a", headers={"CloudFront-Viewer-City": "Spoofed"})
    assert (s, b) == (200, b"a")
    seen = edge.origin.requests["/a"][-1]
    assert (seen.header("CloudFront-Viewer-Country"), seen.header("CloudFront-Viewer-City"),
            seen.header("CloudFront-Viewer-Time-Zone")) == ("JP", "Tokyo", "Asia/Tokyo")
    await _restart(edge, cfg, "FRA")
    s, _, b = await edge.get("/a")
    assert (s, b) == (403, b"not in your country")  # the custom error response for 403
