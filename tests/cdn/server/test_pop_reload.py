"""A POP takes a new distribution without a restart (``PopState.apply_distribution``): the next request uses the new
plans, a request in flight finishes on the plans it started with, cached objects stay."""

from __future__ import annotations

import asyncio

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config


async def test_in_flight_requests_finish_on_the_old_plan_and_the_cache_stays() -> None:
    from edge.cdn.config.distribution import load_distribution
    from tests.cdn.scripted_origin import pop_settings_for

    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"cached", headers={"Cache-Control": "max-age=300"})
        for path in ("/gone-1", "/gone-2"):
            origin.script(path, status=404, body=b"origin 404", headers={"Cache-Control": "no-store"}, delay=0.4)
        origin.script("/sorry.html", body=b"custom page", headers={"Cache-Control": "max-age=300"})
        async with PopHarness(origin, distribution_config()) as pop:
            assert (await pop.get("/a"))[1]["X-Cache"] == "Miss from cloudfront"
            new = distribution_config(
                default=behavior_config(default_ttl=5),
                errors=[{"ErrorCode": 404, "ResponsePagePath": "/sorry.html", "ResponseCode": "200",
                         "ErrorCachingMinTTL": 0}])
            _, settings = pop_settings_for(origin)
            in_flight = asyncio.ensure_future(pop.get("/gone-1"))
            await asyncio.sleep(0.15)  # it is waiting for the origin now
            old_plans = pop.state.ctx.plans
            current = pop.state.ctx.distribution  # an update keeps the distribution's Id and domain (cache keys)
            pop.state.apply_distribution(load_distribution({"Distribution": {
                "Id": current.id, "DomainName": current.domain_name, **new}}, settings))
            assert pop.state.ctx.plans is not old_plans and pop.state.ctx.store is not None
            status, _, body = await in_flight
            assert (status, body) == (404, b"origin 404")  # started before the change: no custom error page
            status, _, body = await pop.get("/gone-2")
            assert (status, body) == (200, b"custom page")  # the new configuration's CustomErrorResponses
            status, headers, body = await pop.get("/a")
            assert (status, body, headers["X-Cache"]) == (200, b"cached", "Hit from cloudfront")
    assert origin.hits["/a"] == 1


async def test_a_new_origin_gets_its_connection_settings() -> None:
    from edge.cdn.config.distribution import load_distribution
    from tests.cdn.scripted_origin import pop_settings_for

    async with ScriptedOrigin() as origin:
        origin.script("/x", body=b"x")
        async with PopHarness(origin, distribution_config()) as pop:
            cfg = distribution_config()
            origin_cfg = cfg["DistributionConfig"]["Origins"]["Items"][0]
            origin_cfg.update(ConnectionAttempts=1, ConnectionTimeout=2)
            _, settings = pop_settings_for(origin)
            pop.state.apply_distribution(load_distribution(cfg, settings))
            assert pop.state.origin_client.config.connect["origin.test"] == (1, 2.0)
            assert (await pop.get("/x"))[0] == 200
