"""The dashboard's time series (edge.control.admin.series): differences of cumulative counters, hit ratio, rates,
a POP that stops answering or restarts, functions summed over processes with warm and cold latency kept apart, the
bounded ring; then the sampler and ``/edgelab/v1/series`` against POP admin apps on real unix sockets, and the
dashboard's assets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edge.control.admin.api import AdminContext, PopEndpoint, make_admin_app
from edge.control.admin.dashboard import STATIC_FILES, add_dashboard_routes
from edge.control.admin.series import MetricsSeries, add_series_routes, hit_ratio
from edge.invocation.execution.metrics import BUCKETS_MS, Metrics

HIT, MISS, REFRESH = "Hit from cloudfront", "Miss from cloudfront", "RefreshHit from cloudfront"


def pop(requests: int, hits: int = 0, misses: int = 0, refresh: int = 0, errors: int = 0) -> dict[str, Any]:
    return {"requests": requests, "errors": errors, "hits": 999,  # the lookup counter: not what viewers got
            "by_x_cache": {HIT: hits, MISS: misses, REFRESH: refresh}, "functions": {}}


def snapshot(pops: dict[str, Any], control: Metrics | None = None,
             pop_functions: dict[str, Metrics] | None = None) -> dict[str, Any]:
    data = {"control": control.snapshot() if control else {}, "pops": pops}
    for name, m in (pop_functions or {}).items():
        data["pops"][name]["functions"] = m.snapshot()
    return data


def invoke(m: Metrics, fn: str, duration: float, init: float | None = None, region: str = "us-east-1",
           version: str = "1") -> None:
    """What the executor records for one invocation (cold when ``init`` is given)."""
    fm = m.get(region, fn, version)
    fm.invocations += 1
    if init is not None:
        fm.cold_starts += 1
        fm.init_duration.add(init)
        fm.cold_duration.add(duration)
        fm.cold_latency.add(duration + init)
    fm.duration.add(duration)


def bucket(ms: float) -> int:
    return next((i for i, b in enumerate(BUCKETS_MS) if ms <= b), len(BUCKETS_MS))


def test_hit_ratio_is_cloudfronts_cache_hit_rate() -> None:
    assert hit_ratio(9, 3) == 0.75 and hit_ratio(0, 0) is None and hit_ratio(0, 2) == 0.0


def test_pop_counters_become_per_interval_counts_rates_and_hit_ratios() -> None:
    s = MetricsSeries(interval_s=1.0, pop_names=["IAD", "FRA"])
    s.add(100.0, snapshot({"IAD": pop(0), "FRA": pop(5, hits=1, misses=1)}))
    s.add(101.0, snapshot({"IAD": pop(3, misses=3), "FRA": pop(5, hits=1, misses=1)}))
    s.add(103.0, snapshot({"IAD": pop(12, hits=8, refresh=1, misses=3, errors=1), "FRA": pop(5, hits=1, misses=1)}))
    out = s.to_json()
    assert out["t"] == [100.0, 101.0, 103.0]
    iad, fra = out["pops"]["IAD"], out["pops"]["FRA"]
    assert iad["requests"] == [0, 3, 9] and iad["hits"] == [0, 0, 9] and iad["misses"] == [0, 3, 0]
    assert iad["hit_ratio"] == [None, 0.0, 1.0] and iad["errors"] == [0, 0, 1]
    assert iad["rate"] == [0.0, 3.0, 4.5]  # 9 requests over the 2 s since the previous sample
    assert iad["totals"] == {"requests": 12, "hits": 9, "misses": 3, "errors": 1, "hit_ratio": 0.75}
    assert fra["requests"] == [5, 0, 0]  # the first sample counts what happened before it
    assert list(out["pops"]) == ["IAD", "FRA"]


def test_regional_tiers_are_rows_after_the_pops_from_their_own_counters() -> None:
    """A regional edge cache node (``gather_metrics``' ``tiers``) counts its own hits and misses (no X-Cache)."""
    s = MetricsSeries(interval_s=1.0, pop_names=["IAD"])
    tier0 = {"region": "us-east-1", "requests": 0, "hits": 0, "refresh_hits": 0, "misses": 0, "errors": 0}
    tier1 = {**tier0, "requests": 4, "hits": 2, "refresh_hits": 1, "misses": 1}
    s.add(100.0, {**snapshot({"IAD": pop(0)}), "tiers": {"REC-USE1": tier0}})
    s.add(101.0, {**snapshot({"IAD": pop(6, hits=2, misses=4)}), "tiers": {"REC-USE1": tier1}})
    out = s.to_json()
    assert list(out["pops"]) == ["IAD", "REC-USE1"]
    rec = out["pops"]["REC-USE1"]
    assert rec["requests"] == [0, 4] and rec["hits"] == [0, 3] and rec["misses"] == [0, 1]
    assert rec["totals"]["hit_ratio"] == 0.75


def test_an_unreachable_pop_leaves_a_gap_and_a_restarted_one_counts_afresh() -> None:
    s = MetricsSeries(pop_names=["IAD", "NRT"])
    s.add(1.0, snapshot({"IAD": pop(10, hits=5, misses=5)}))  # NRT never answered
    s.add(2.0, snapshot({"IAD": {"error": "POP IAD unreachable: ClientConnectorError"}}))
    s.add(3.0, snapshot({"IAD": pop(14, hits=8, misses=6)}))  # the gap's requests land here
    s.add(4.0, snapshot({"IAD": pop(2, hits=1, misses=1)}))  # restarted: counters went down
    iad = s.to_json()["pops"]["IAD"]
    assert iad["requests"] == [10, None, 4, 2] and iad["hit_ratio"] == [0.5, None, 0.75, 0.5]
    assert iad["rate"] == [10.0, None, 4.0, 2.0]
    assert s.to_json()["pops"]["NRT"]["requests"] == [None] * 4


def test_functions_are_summed_over_processes_with_warm_and_cold_latency_apart() -> None:
    control, iad = Metrics(), Metrics()
    s = MetricsSeries(pop_names=["IAD"])
    s.add(1.0, snapshot({"IAD": pop(0)}, control, {"IAD": iad}))
    invoke(iad, "greeter", 0.4, init=6.0)  # cold: 0.4 ms + 6 ms of Init
    invoke(iad, "greeter", 0.3)
    invoke(control, "greeter", 30.0, region="us-east-1", version="$LATEST")
    control.get("us-east-1", "limited", "$LATEST").throttles += 1
    s.add(2.0, snapshot({"IAD": pop(2)}, control, {"IAD": iad}))
    invoke(iad, "greeter", 0.2)
    iad.get("us-east-1", "greeter", "1").errors += 1
    s.add(3.0, snapshot({"IAD": pop(3)}, control, {"IAD": iad}))
    s.add(4.0, snapshot({"IAD": pop(3)}, control, {"IAD": iad}))
    out = s.to_json()
    greeter, limited = out["functions"]["greeter"], out["functions"]["limited"]
    assert greeter["invocations"] == [0, 3, 1, 0] and greeter["cold_starts"] == [0, 1, 0, 0]
    assert greeter["errors"] == [0, 0, 1, 0] and limited["throttles"] == [0, 1, 0, 0]
    assert greeter["totals"] == {"invocations": 4, "cold_starts": 1, "errors": 1, "throttles": 0}
    assert out["bounds_ms"] == list(BUCKETS_MS)
    warm, cold = greeter["latency"]["warm"], greeter["latency"]["cold"]
    assert len(warm) == len(cold) == len(BUCKETS_MS) + 1
    assert sum(warm) == 3 and warm[bucket(0.3)] == 2 and warm[bucket(30.0)] == 1  # the cold 0.4 ms is not warm
    assert sum(cold) == 1 and cold[bucket(6.4)] == 1
    assert sum(limited["latency"]["warm"]) == sum(limited["latency"]["cold"]) == 0


def test_a_process_counting_afresh_is_not_a_negative_sample() -> None:
    first = Metrics()
    s = MetricsSeries(pop_names=["IAD"])
    for _ in range(5):
        invoke(first, "f", 1.0)
    s.add(1.0, snapshot({"IAD": pop(0)}, pop_functions={"IAD": first}))
    restarted = Metrics()
    invoke(restarted, "f", 1.0, init=2.0)
    s.add(2.0, snapshot({"IAD": pop(0)}, pop_functions={"IAD": restarted}))
    f = s.to_json()["functions"]["f"]
    assert f["invocations"] == [5, 1] and f["cold_starts"] == [0, 1]
    assert sum(f["latency"]["warm"]) == 5 and sum(f["latency"]["cold"]) == 1


def test_the_ring_is_bounded_and_bad_sizes_are_refused() -> None:
    s = MetricsSeries(capacity=3, pop_names=["IAD"])
    for i in range(10):
        s.add(float(i), snapshot({"IAD": pop(i)}))
    out = s.to_json()
    assert out["t"] == [7.0, 8.0, 9.0] and out["pops"]["IAD"]["requests"] == [1, 1, 1]
    with pytest.raises(ValueError, match="capacity >= 1"):
        MetricsSeries(capacity=0)
    with pytest.raises(ValueError, match="interval_s > 0"):
        MetricsSeries(interval_s=0)


async def _pop_admin(sock: Path, counter: list[int]) -> web.AppRunner:
    """A POP admin app on a real unix socket whose counters grow by 2 requests (1 hit, 1 miss) per scrape."""
    app = web.Application()

    async def stats(request: web.Request) -> web.Response:
        counter[0] += 2
        n = counter[0]
        return web.json_response({"requests": n, "errors": 0, "by_x_cache": {HIT: n // 2, MISS: n // 2}})

    async def fn_metrics(request: web.Request) -> web.Response:
        m = Metrics()
        invoke(m, "f", 1.0, init=3.0)
        return web.json_response(m.snapshot())

    app.router.add_get("/stats", stats)
    app.router.add_get("/functions/metrics", fn_metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(sock)).start()
    return runner


async def test_the_sampler_feeds_the_endpoint_and_stops_with_the_app(tmp_path: Path, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    counter = [0]
    pop_runner = await _pop_admin(tmp_path / "iad.sock", counter)

    async def nothing() -> dict[str, Any]:
        return {}

    async def no_logs(**kw: Any) -> dict[str, Any]:
        return {}

    ctx = AdminContext(pops=[PopEndpoint("IAD", "us-east-1", "http://127.0.0.1:1", tmp_path / "iad.sock"),
                             PopEndpoint("NRT", "ap-northeast-1", "http://127.0.0.1:2", tmp_path / "missing.sock")],
                       reset_local=nothing, local_metrics=lambda: {}, read_logs=no_logs)
    admin = make_admin_app(ctx)
    series = add_series_routes(admin, interval_s=0.05, capacity=4)
    root = web.Application()
    root.add_subapp("/edgelab/v1", admin)
    add_dashboard_routes(root)
    client = await aiohttp_client(root)
    try:
        for _ in range(200):  # bounded: 10 s
            if counter[0] >= 12 and len(series.samples) == series.capacity:  # 6 scrapes: the ring is full
                break
            await asyncio.sleep(0.05)
        out = await (await client.get("/edgelab/v1/series")).json()
        assert len(out["t"]) == 4 and out["interval_s"] == 0.05  # the ring keeps the last 4
        iad = out["pops"]["IAD"]
        assert all(n == 2 for n in iad["requests"]) and all(r == 0.5 for r in iad["hit_ratio"]), iad
        assert out["pops"]["NRT"]["requests"] == [None] * 4  # its socket does not exist: a gap, not an error
        # the function's counters never change after the first sample: nothing new in the window
        assert "f" not in out["functions"] or out["functions"]["f"]["totals"]["invocations"] == 0
        page = await client.get("/edgelab/")
        assert page.status == 200 and "/edgelab/static/uPlot.iife.min.js" in await page.text()
        for name, content_type in STATIC_FILES.items():
            r = await client.get(f"/edgelab/static/{name}")
            assert r.status == 200 and r.content_type == content_type and len(await r.read()) > 100, name
        assert "(v1.6.32)" in (await (await client.get("/edgelab/static/uPlot.iife.min.js")).text())[:80]
        missing = await client.get("/edgelab/static/..%2Fapi.py")
        assert missing.status == 404 and "no dashboard asset" in await missing.text()
    finally:
        await client.close()
        await pop_runner.cleanup()
    scraped = counter[0]
    await asyncio.sleep(0.2)
    assert counter[0] == scraped  # the sampler stopped with the app
