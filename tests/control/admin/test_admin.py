"""The control process's admin API: invalidation parsing and fan-out to POP admin sockets (real unix sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edge.control.admin.api import AdminContext, PopEndpoint, make_admin_app, parse_invalidation_paths


def test_paths_simple_and_cloudfront_batch() -> None:
    assert parse_invalidation_paths({"paths": ["/a", "/img/*"]}) == ["/a", "/img/*"]
    batch = {"InvalidationBatch": {"Paths": {"Quantity": 2, "Items": ["/x", "/*"]}, "CallerReference": "r"}}
    assert parse_invalidation_paths(batch) == ["/x", "/*"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"paths": []}, "non-empty list"),
        ({"paths": ["img/*"]}, "starting with '/'"),
        ({"paths": ["/a"] * 3001}, "at most 3000"),
        ({"paths": ["/a*/b"]}, "only allowed as the last"),
        ({"Paths": {"Quantity": 3, "Items": ["/a"]}}, "Quantity is 3"),
        ([], "JSON object"),
    ],
)
def test_paths_rejected_with_reason(body: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("*", r"\*").replace("(", r"\(")):
        parse_invalidation_paths(body)


class FakePop:
    """A POP admin app on a real unix socket that records what it was asked."""

    def __init__(self) -> None:
        self.invalidated: list[list[str]] = []
        self.resets = 0
        self.env_resets = 0

    def app(self) -> web.Application:
        app = web.Application()

        async def invalidate(request: web.Request) -> web.Response:
            body = await request.json()
            self.invalidated.append(body["paths"])
            return web.json_response({"invalidated": len(body["paths"])})

        async def reset(request: web.Request) -> web.Response:
            self.resets += 1
            return web.json_response({"cache_cleared": True})

        async def stats(request: web.Request) -> web.Response:
            return web.json_response({"requests": 3})

        async def health(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def fn_reset(request: web.Request) -> web.Response:
            self.env_resets += 1
            return web.json_response({"environments_retired": True})

        async def fn_metrics(request: web.Request) -> web.Response:
            return web.json_response({"us-east-1": {}})

        app.router.add_post("/functions/reset", fn_reset)
        app.router.add_get("/functions/metrics", fn_metrics)
        app.router.add_post("/invalidate", invalidate)
        app.router.add_post("/reset", reset)
        app.router.add_get("/stats", stats)
        app.router.add_get("/health", health)
        return app


@pytest.fixture
async def stack(tmp_path: Path, aiohttp_client):  # type: ignore[no-untyped-def]
    pops: dict[str, FakePop] = {"IAD": FakePop(), "FRA": FakePop()}
    runners = []
    endpoints = []
    for name, pop in pops.items():
        runner = web.AppRunner(pop.app())
        await runner.setup()
        sock = tmp_path / f"{name}.sock"
        await web.UnixSite(runner, str(sock)).start()
        runners.append(runner)
        endpoints.append(PopEndpoint(name, "us-east-1" if name == "IAD" else "eu-central-1",
                                     f"http://127.0.0.1:1/{name}", sock))
    endpoints.append(PopEndpoint("NRT", "ap-northeast-1", "http://127.0.0.1:2", tmp_path / "missing.sock"))
    local_resets: list[int] = []

    async def reset_local() -> dict[str, Any]:
        local_resets.append(1)
        return {"retired": 0}

    async def read_logs(**kw: Any) -> dict[str, Any]:
        if kw["name"] == "nosuchfn":
            raise LookupError("no function or log group named 'nosuchfn'")
        if not kw["name"]:
            return {"groups": [{"group": "/aws/lambda/f", "region": "us-east-1"}], "events": []}
        return {"groups": [], "events": [{"message": f"log for {kw['name']} since {kw['since_ms']}"}]}

    ctx = AdminContext(pops=endpoints, reset_local=reset_local, local_metrics=lambda: {"functions": {}},
                       read_logs=read_logs)
    root = web.Application()
    root.add_subapp("/edgelab/v1", make_admin_app(ctx))
    client = await aiohttp_client(root)
    yield client, pops, local_resets
    for r in runners:
        await r.cleanup()


async def test_pops_listed(stack) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = stack
    data = await (await client.get("/edgelab/v1/pops")).json()
    assert [p["name"] for p in data["pops"]] == ["IAD", "FRA", "NRT"]
    assert data["pops"][1]["region"] == "eu-central-1"


async def test_invalidation_fans_out_and_reports_unreachable_pop(stack) -> None:  # type: ignore[no-untyped-def]
    client, pops, _ = stack
    resp = await client.post("/edgelab/v1/invalidations", json={"paths": ["/img/*"]})
    data = await resp.json()
    assert pops["IAD"].invalidated == [["/img/*"]] and pops["FRA"].invalidated == [["/img/*"]]
    assert "error" in data["pops"]["NRT"]  # the third POP's socket does not exist
    assert resp.status == 502 and data["Invalidation"]["Status"] == "Failed"


async def test_invalidation_of_one_pop(stack) -> None:  # type: ignore[no-untyped-def]
    client, pops, _ = stack
    resp = await client.post("/edgelab/v1/invalidations", json={"paths": ["/a"], "pop": "fra"})
    data = await resp.json()
    assert resp.status == 201, data
    assert data["Invalidation"]["Status"] == "Completed"
    assert data["Invalidation"]["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": ["/a"]}
    assert pops["FRA"].invalidated == [["/a"]] and pops["IAD"].invalidated == []


async def test_bad_invalidation_and_unknown_pop(stack) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = stack
    resp = await client.post("/edgelab/v1/invalidations", data=b"{not json")
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "InvalidArgument"
    resp = await client.post("/edgelab/v1/invalidations", json={"paths": ["/a"], "pop": "XXX"})
    assert resp.status == 404


async def test_reset_reaches_control_and_pops(stack) -> None:  # type: ignore[no-untyped-def]
    client, pops, local_resets = stack
    resp = await client.post("/edgelab/v1/reset", json={})
    data = await resp.json()
    assert local_resets == [1] and pops["IAD"].resets == 1 and pops["FRA"].resets == 1
    assert pops["IAD"].env_resets == 1 and pops["FRA"].env_resets == 1
    assert data["pops"]["IAD"] == {"cache": {"cache_cleared": True}, "functions": {"environments_retired": True}}
    assert resp.status == 502  # the NRT socket is missing: reported, not hidden
    assert "error" in data["pops"]["NRT"]["cache"]


async def test_metrics_merge_pop_stats_and_function_metrics(stack) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = stack
    data = await (await client.get("/edgelab/v1/metrics")).json()
    assert data["pops"]["IAD"] == {"requests": 3, "functions": {"us-east-1": {}}}
    assert data["control"] == {"functions": {}}


async def test_logs_by_name_since_unknown_names_and_group_listing(stack) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = stack
    listing = await (await client.get("/edgelab/v1/logs")).json()  # no name: the groups
    assert listing["groups"] == [{"group": "/aws/lambda/f", "region": "us-east-1"}]
    data = await (await client.get("/edgelab/v1/logs?function=f")).json()
    assert data["events"] == [{"message": "log for f since None"}]
    data = await (await client.get("/edgelab/v1/logs?name=f&since=1700000000000")).json()
    assert data["events"] == [{"message": "log for f since 1700000000000"}]
    unknown = await client.get("/edgelab/v1/logs?name=nosuchfn")
    assert unknown.status == 404 and "nosuchfn" in (await unknown.json())["message"]
    assert (await client.get("/edgelab/v1/logs?name=f&since=yesterday")).status == 400
