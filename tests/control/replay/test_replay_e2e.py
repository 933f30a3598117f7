"""``edgelab replay`` end to end: a generated log sent to two real POPs (start_pop on 127.0.0.1, a real origin
server), the report's counts checked against what the POPs and the origin counted, timing preserved."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.plan import compile_distribution
from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
from edge.cdn.server.pop import RunningPop, start_pop
from edge.control.cli.main import main
from edge.control.replay.generator import GeneratorSpec, write_log
from edge.control.replay.popmap import load_pop_map
from edge.control.replay.readers import read_log
from edge.control.replay.replay import replay
from tests.cdn.scripted_origin import ORIGIN_DOMAIN, behavior_config, distribution_config

ALL = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


class CatchAllOrigin:
    """Answers every path with 200 and a small body (no Cache-Control: the behavior's DefaultTTL applies)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def any_path(request: web.Request) -> web.Response:
            self.hits[request.method] += 1
            return web.Response(body=b"x" * 200, content_type="application/octet-stream")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_path)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]


@pytest.fixture
async def stack() -> AsyncIterator[tuple[dict[str, RunningPop], CatchAllOrigin, dict]]:
    origin = CatchAllOrigin()
    await origin.start()
    config = distribution_config(default=behavior_config(methods=ALL),
                                 behaviors=[behavior_config("/api/*", methods=ALL, default_ttl=600)])
    pops_cfg = [PopSettings("IAD", "us-east-1", "127.0.0.1", 0), PopSettings("FRA", "eu-central-1", "127.0.0.1", 0)]
    settings = Settings(pops=tuple(pops_cfg), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin.port)})
    dist = load_distribution(config, settings)
    pops: dict[str, RunningPop] = {}
    try:
        for p in pops_cfg:
            pops[p.name] = await start_pop(p, dist, settings, port=0)
        yield pops, origin, config
    finally:
        for running in pops.values():
            await running.stop()
        assert origin.runner is not None
        await origin.runner.cleanup()


def _log(tmp_path: Path, **kw: object) -> Path:
    spec = GeneratorSpec(lines=240, seed=11, catalogue=60, duration=4.0, missing_share=0.0, head_share=0.0,
                         locations=(("IAD89-C1", 0.6), ("FRA56-P5", 0.4)), **kw)  # type: ignore[arg-type]
    out = io.BytesIO()
    write_log(spec, "tsv", out)
    path = tmp_path / "gen.log"
    path.write_bytes(out.getvalue())
    return path


async def test_replay_counts_match_the_stack(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pops, origin, config = stack
    records, stats = read_log(_log(tmp_path))
    urls = {name: f"http://127.0.0.1:{p.port}" for name, p in pops.items()}
    plan = compile_distribution(load_distribution(config), hooks=False)
    report = await replay(records, urls, load_pop_map(None, list(urls)), speed=2.0, concurrency=1, plan=plan,
                          stats=stats)
    data = report.as_json()
    assert data["total"]["requests"] == 240 and len(report.outcomes) == 240
    # per POP, edgelab's X-Cache counts in the report are what each POP counted itself
    for name, running in pops.items():
        counted = running.state.ctx.stats.by_x_cache
        mine = data["pops"][name]["edgelab"]
        assert sum(mine.values()) == running.state.ctx.stats.requests
        assert mine.get("Hit", 0) == counted["Hit from cloudfront"]
        assert mine.get("Miss", 0) == counted["Miss from cloudfront"]
    misses = sum(g["edgelab"].get("Miss", 0) for g in data["pops"].values())
    assert sum(origin.hits.values()) == misses  # every Miss went to the origin, no Hit did
    # the generator's cache model is CloudFront's for this traffic (one cache per location, the log spans less than
    # any TTL, POSTs go to the origin): replayed sequentially, everything agrees
    assert data["disagreements"] == 0, report.text()
    patterns = {g["pattern"] for g in data["groups"]}
    assert patterns == {"*", "/api/*"}
    assert data["pop_map"] == {"FRA": "FRA", "IAD": "IAD"}
    first, last = records[0].ts, records[-1].ts
    assert last - first == 3  # whole seconds 0..3: at speed 2, 1.5 s of replay, not as fast as possible
    assert 1.45 <= report.seconds < 15


async def test_disagreements_are_listed_and_bounded(stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pops, _, _ = stack
    records, stats = read_log(_log(tmp_path, ttl=0.0))  # the log says Miss where a cache would hit
    urls = {name: f"http://127.0.0.1:{p.port}" for name, p in pops.items()}
    report = await replay(records, urls, load_pop_map(None, list(urls)), speed=0, concurrency=8, stats=stats,
                          max_listed=3)
    data = report.as_json()
    hits = sum(g["edgelab"].get("Hit", 0) for g in data["pops"].values())
    assert data["disagreements"] >= hits > 0 and len(data["disagreeing"]) == 3
    text = report.text()
    assert "(first 3 listed)" in text and "log: Miss 200  edgelab: Hit 200" in text


async def test_unreachable_pop_is_reported_not_raised(tmp_path: Path) -> None:
    records, stats = read_log(_log(tmp_path))
    report = await replay(records[:3], {"IAD": "http://127.0.0.1:9", "FRA": "http://127.0.0.1:9"},
                          load_pop_map(None, ["IAD", "FRA"]), speed=0, stats=stats, timeout=5)
    assert all(o.status == 0 and "Connect" in o.error for o in report.outcomes)
    assert report.as_json()["pops"]["IAD"]["edgelab"].get("no answer", 0) + \
        report.as_json()["pops"].get("FRA", {"edgelab": {}})["edgelab"].get("no answer", 0) == 3


def test_cli_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _log(tmp_path)
    assert main(["replay", str(log), "--pop", "IAD"]) == 2
    assert "expected NAME=http://HOST:PORT" in capsys.readouterr().err
    assert main(["replay", str(log), "--pop", "IAD=http://127.0.0.1:9", "--speed", "-1"]) == 2
    assert main(["replay", str(tmp_path / "none.log"), "--pop", "IAD=http://127.0.0.1:9"]) == 2
    assert "cannot read the log" in capsys.readouterr().err
    bad_map = tmp_path / "m.json"
    bad_map.write_text('{"LHR": "NRT"}')
    assert main(["replay", str(log), "--pop", "IAD=http://127.0.0.1:9", "--pop-map", str(bad_map)]) == 2
    assert "not one of the stack's POPs" in capsys.readouterr().err


async def test_cli_replay_json_against_the_pops(stack, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The command line (its own event loop, in a thread) against the POPs running in this test's loop."""
    import asyncio
    import json

    pops, _, config = stack
    log = _log(tmp_path)
    dist = tmp_path / "dist.json"
    dist.write_text(json.dumps(config))
    pop_map = tmp_path / "map.json"
    pop_map.write_text('{"FRA": "IAD"}')  # everything to IAD
    argv = ["replay", str(log), "--speed", "0", "--concurrency", "1", "--json", "--distribution", str(dist),
            "--pop-map", str(pop_map), *[f"--pop={name}=http://127.0.0.1:{p.port}" for name, p in pops.items()]]
    assert await asyncio.to_thread(main, argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["pops"]) == ["IAD"] and data["total"]["requests"] == 240
    assert pops["IAD"].state.ctx.stats.requests == 240 and pops["FRA"].state.ctx.stats.requests == 0
    assert data["disagreements"] > 0  # FRA's recorded misses are IAD's hits now
