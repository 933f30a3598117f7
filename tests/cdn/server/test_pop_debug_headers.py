"""``[edge] debug_headers``: the POP adds X-Edgelab-Trace / -Behavior / -Error, without touching cached entries."""

from __future__ import annotations

from tests.cdn.scripted_origin import PopHarness, ScriptedOrigin, behavior_config, distribution_config


async def test_debug_headers_on_hits_misses_and_errors() -> None:
    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"a", headers={"Cache-Control": "max-age=60"})
        config = distribution_config(behaviors=[behavior_config("/static/*")])
        async with PopHarness(origin, config) as pop:
            assert pop.state.debug_headers is False  # off by default
            _, headers, _ = await pop.get("/a")
            assert "X-Edgelab-Trace" not in headers
            pop.state.debug_headers = True
            _, headers, _ = await pop.get("/a")
            assert headers["X-Cache"] == "Hit from cloudfront"
            assert "cache-lookup:hit" in headers["X-Edgelab-Trace"]
            assert headers["X-Edgelab-Behavior"] == "*"
            pop.state.debug_headers = False
            _, headers, _ = await pop.get("/a")  # the cached entry did not keep the debug headers
            assert "X-Edgelab-Trace" not in headers and "X-Edgelab-Behavior" not in headers
    async with PopHarness(origin, config) as pop:  # origin stopped: 502 with the reason
        pop.state.debug_headers = True
        status, headers, _ = await pop.get("/b")
        assert status == 502
        assert headers["X-Edgelab-Error"].startswith("OriginUnavailable")
        assert "error:502" in headers["X-Edgelab-Trace"]
