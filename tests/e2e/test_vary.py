"""CloudFront's Vary filtering through a real POP and a real origin on 127.0.0.1.

CloudFront keeps only Accept-Encoding, Cookie and the headers it forwards to the origin in a cached response's
``Vary`` (contract §5.5, "Request and response behavior for custom origins",
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorCustomOrigin.html):
an origin cannot vary on a header it never receives. Behind Managed-CachingOptimized the origin sees
``User-Agent: Amazon CloudFront`` whatever the viewer sent, so ``Vary: User-Agent`` must not split the cache.
"""

from __future__ import annotations

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
USER_AGENT_REFERER = "acba4595-bd28-49b8-b9fe-13317c0390fa"  # Managed-UserAgentRefererHeaders (ORP)


async def test_vary_on_a_header_not_forwarded_does_not_split_the_cache() -> None:
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_OPTIMIZED))
    async with ScriptedOrigin() as origin:
        origin.script("/v", body=b"same for everyone",
                      headers={"Cache-Control": "max-age=60", "Vary": "User-Agent", "Content-Type": "text/plain"})
        async with PopHarness(origin, dist) as pop:
            s1, h1, b1 = await pop.get("/v", headers={"User-Agent": "viewer-one/1.0"})
            s2, h2, b2 = await pop.get("/v", headers={"User-Agent": "viewer-two/2.0"})
    assert (s1, b1, h1["X-Cache"]) == (200, b"same for everyone", "Miss from cloudfront")
    assert (s2, b2, h2["X-Cache"]) == (200, b"same for everyone", "Hit from cloudfront")
    assert origin.hits["/v"] == 1
    assert origin.requests["/v"][0].header("User-Agent") == "Amazon CloudFront"
    assert h2["Vary"] == "User-Agent"  # the viewer still gets the origin's Vary


async def test_vary_on_a_forwarded_header_still_selects_variants() -> None:
    """An origin request policy that forwards User-Agent keeps it in Vary: one variant per User-Agent."""
    dist = distribution_config(default=behavior_config(cache_policy=CACHING_OPTIMIZED,
                                                       origin_request_policy=USER_AGENT_REFERER))
    async with ScriptedOrigin() as origin:
        origin.script("/v", body=b"v", headers={"Cache-Control": "max-age=60", "Vary": "User-Agent"})
        async with PopHarness(origin, dist) as pop:
            caches = [(await pop.get("/v", headers={"User-Agent": ua}))[1]["X-Cache"]
                      for ua in ("viewer-one/1.0", "viewer-two/2.0", "viewer-one/1.0")]
    assert caches == ["Miss from cloudfront", "Miss from cloudfront", "Hit from cloudfront"]
    assert [r.header("User-Agent") for r in origin.requests["/v"]] == ["viewer-one/1.0", "viewer-two/2.0"]
