"""Edge chaos end to end: a scenario applied through the control admin API (and the CLI) to a real POP's admin
socket, faults observed by a client through the POP; the realistic cold-start model seen in Server-Timing."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edge.control.admin.api import AdminContext, PopEndpoint, make_admin_app
from edge.control.admin.prometheus import render
from edge.control.cli.main import main as cli_main
from edge.control.stack.pop_chaos import add_chaos_routes
from edge.invocation import ColdStartModel, StartShaper
from edge.invocation.execution.coldstart import package_bytes
from tests.e2e.conftest import VR, EdgeStack, assoc

HELLO = """
def handler(event, context):
    return event["Records"][0]["cf"]["request"]
"""


class Api:
    """The control process's admin API (in this loop, on 127.0.0.1:0) over the POP's real admin socket."""

    def __init__(self, edge: EdgeStack, sock: Path) -> None:
        self.edge, self.sock = edge, sock
        self.url = ""

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[Api]:
        pop = self.edge.pop
        assert pop is not None
        admin = web.Application()
        add_chaos_routes(admin, pop.state, self.edge.executor)
        pop_runner = web.AppRunner(admin, access_log=None)
        await pop_runner.setup()
        await web.UnixSite(pop_runner, str(self.sock)).start()
        ctx = AdminContext(pops=[PopEndpoint("TST", "us-east-1", self.edge.url, self.sock)],
                           reset_local=lambda: asyncio.sleep(0), local_metrics=dict,
                           read_logs=lambda **kw: asyncio.sleep(0))
        app = web.Application()
        app.add_subapp("/edgelab/v1", make_admin_app(ctx))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield self
        finally:
            await runner.cleanup()
            await pop_runner.cleanup()

    async def call(self, method: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(method, self.url + "/edgelab/v1/chaos",
                                                           data=body) as resp:
            return resp.status, await resp.json()

    async def cli(self, *argv: str) -> int:
        return await asyncio.to_thread(cli_main, ["chaos", *argv, "--api", self.url])


async def timed_get(edge: EdgeStack, path: str) -> tuple[int, Any, bytes, float]:
    t0 = time.perf_counter()
    status, headers, body = await edge.get(path)
    return status, headers, body, time.perf_counter() - t0


ORIGIN_SCENARIO = """
name = "e2e"
[[fault]]
kind = "origin-latency"
paths = ["/slow/*"]
latency_ms = 300
[[fault]]
kind = "origin-error"
paths = ["/err/*"]
status = 503
body = "chaos says no"
[[fault]]
kind = "origin-timeout"
paths = ["/hang/*"]
[[fault]]
kind = "origin-refused"
paths = ["/refused/*"]
[[fault]]
kind = "origin-error"
paths = ["/brief/*"]
status = 500
duration = 1
[[fault]]
kind = "origin-refused"
pops = ["FRA"]
"""


async def test_origin_faults_applied_by_the_cli_seen_by_a_viewer(edge: EdgeStack, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for path in ("/slow/a", "/err/a", "/hang/a", "/refused/a", "/refused/b", "/brief/a", "/brief/b", "/ok"):
        edge.origin.script(path, body="origin", headers={"Cache-Control": "no-store"})
    await edge.start(read_timeout=1)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(ORIGIN_SCENARIO)
    async with Api(edge, tmp_path / "pop.sock").serve() as api:
        assert await api.cli("apply", str(scenario)) == 0
        applied = time.perf_counter()
        assert "applied" in capsys.readouterr().out
        assert (await edge.get("/brief/a"))[0] == 500  # its window lasts 1 s from the apply

        status, headers, body, took = await timed_get(edge, "/slow/a")
        assert (status, body) == (200, b"origin") and took >= 0.3
        assert 'chaos;desc="origin-latency";dur=300.0' in headers["Server-Timing"]
        origin_ms = float(re.search(r"origin;dur=([0-9.]+)", headers["Server-Timing"]).group(1))  # type: ignore[union-attr]
        assert origin_ms >= 300.0  # the injected latency is origin time

        status, headers, body, _ = await timed_get(edge, "/err/a")
        assert (status, body, headers["X-Cache"]) == (503, b"chaos says no", "Error from cloudfront")
        assert 'chaos;desc="origin-error"' in headers["Server-Timing"]

        status, headers, _, took = await timed_get(edge, "/hang/a")
        assert status == 504 and took >= 1.0  # after the origin's read timeout (1 s)

        status, headers, _, _ = await timed_get(edge, "/refused/a")
        assert status == 502 and 'chaos;desc="origin-refused"' in headers["Server-Timing"]

        assert (await edge.get("/ok"))[0] == 200  # no fault on that path; FRA's fault is not this POP's
        await asyncio.sleep(max(0.0, 1.1 - (time.perf_counter() - applied)))  # the /brief/* window is over
        assert (await edge.get("/brief/b"))[0] == 200
        assert edge.origin.hits["/brief/b"] == 1 and edge.origin.hits["/err/a"] == 0

        assert await api.cli("status") == 0
        out = capsys.readouterr().out
        assert "#5 expired" in out and "#4 active   injected=1" in out

        code, data = await api.call("GET")
        counts = data["pops"]["TST"]["counts"]
        assert code == 200 and counts == {"origin-latency": 1, "origin-error": 2, "origin-timeout": 1,
                                          "origin-refused": 1}
        stats = edge.pop.state.stats_snapshot()  # type: ignore[union-attr]
        prometheus = render({"pops": {"TST": stats}}, {"TST": "us-east-1"}).decode()
        assert 'edgelab_pop_chaos_faults_total{kind="origin-error",pop="TST",region="us-east-1"} 2.0' in prometheus

        assert await api.cli("clear") == 0
        assert (await edge.get("/refused/b"))[0] == 200


async def test_bad_scenarios_are_refused_by_the_api_and_touch_no_pop(edge: EdgeStack, tmp_path: Path) -> None:
    await edge.start()
    async with Api(edge, tmp_path / "pop.sock").serve() as api:
        code, data = await api.call("PUT", "[[fault]]\nkind = 'origin-error'\nstatus = 200\n")
        assert code == 400 and data["code"] == "InvalidArgument"
        assert "line 3: fault[1].status: 200 is out of range 400..599" in data["message"]
        code, data = await api.call("PUT", '{"scenario": 3}')
        assert code == 400 and "JSON body must be" in data["message"]
        assert edge.pop.state.ctx.chaos is None  # type: ignore[union-attr]
        bad = tmp_path / "bad.toml"
        bad.write_text("[[fault]]\nkind = 'throttle'\nfunction = 'f'\n")
        with pytest.raises(SystemExit, match="needs exactly one of count"):
            await api.cli("apply", str(bad))


def fn_entry(headers: Any) -> str:
    return next(e.strip() for e in headers["Server-Timing"].split(", fn-")[1:] if e.startswith(VR))


async def test_forced_cold_start_and_throttle(edge: EdgeStack, tmp_path: Path) -> None:
    version = await edge.function("hello", HELLO)
    edge.origin.script("/x", body="origin", headers={"Cache-Control": "no-store"})
    await edge.start(associations=[assoc(VR, "hello", version)])
    await edge.get("/x")  # the first call is cold anyway
    _, headers, _ = await edge.get("/x")
    assert " warm" in fn_entry(headers)
    async with Api(edge, tmp_path / "pop.sock").serve() as api:
        code, _ = await api.call("PUT", "[[fault]]\nkind = 'cold-start'\nfunction = 'hello'\ncount = 1\n"
                                        "extra_init_ms = 200\n[[fault]]\nkind = 'throttle'\nfunction = 'hello'\n"
                                        "count = 1\nstart = 0\n")
        assert code == 200
        _, headers, _ = await edge.get("/x")
        entry = fn_entry(headers)
        assert f"hello:{version} cold init=" in entry and 'chaos;desc="cold-start";dur=200.0' in entry
        init = float(re.search(r"init=([0-9.]+)", entry).group(1))  # type: ignore[union-attr]
        assert init >= 200.0
        status, headers, _ = await edge.get("/x")  # the cold-start fault is spent: the throttle is next
        assert status == 503 and 'throttled' in fn_entry(headers) and 'chaos;desc="throttle"' in headers["Server-Timing"]
        _, headers, _ = await edge.get("/x")
        assert " warm" in fn_entry(headers) and "chaos" not in headers["Server-Timing"]
        assert edge.pop.state.ctx.stats.chaos_faults == {"cold-start": 1, "throttle": 1}  # type: ignore[union-attr]
        code, data = await api.call("DELETE")
        assert code == 200 and data["pops"]["TST"] == {"cleared": True}
    assert edge.executor.shaper is None  # nothing left on the invocation hot path


async def test_realistic_cold_start_model_in_server_timing(edge: EdgeStack) -> None:
    version = await edge.function("hello", HELLO, memory=128)
    edge.origin.script("/x", body="origin", headers={"Cache-Control": "no-store"})
    model = ColdStartModel(seed=9)
    edge.executor.shaper = StartShaper(model=model)
    await edge.start(associations=[assoc(VR, "hello", version)])
    _, headers, _ = await edge.get("/x")
    entry = fn_entry(headers)
    m = re.search(r"cold init=([0-9.]+) model=([0-9.]+) real=([0-9.]+)", entry)
    assert m is not None, entry
    init, modelled, real = (float(g) for g in m.groups())
    spec = next(iter(edge.executor.environments())).spec
    expected = model.delay_ms("python3.11", 128, package_bytes([spec.code_dir]), "hello", version, 0)
    assert modelled == pytest.approx(expected, abs=0.051)
    assert 100.0 < modelled < 400.0  # a 128 MB Python function: ~180 ms median, jitter sigma 0.25
    assert init == pytest.approx(modelled + real, abs=0.11)
    _, headers, _ = await edge.get("/x")
    assert " warm" in fn_entry(headers) and "model=" not in headers["Server-Timing"]
