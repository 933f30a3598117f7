"""CloudFront Functions through a real POP: one test per rule (issue 13).

A POP (``start_pop`` on 127.0.0.1:0) with the production ``CloudFrontFunctionRunner`` over a temporary state dir,
a ``ScriptedOrigin``, and the function store / key value store service of the same database standing in for the
control process: functions are created and published through the service layer the API uses, and reach the POP
only through the database's change feed, as in a stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.cdn.cloudfront_functions import runner as runner_mod
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, FunctionCatalog
from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import OriginTarget
from edge.cdn.server.pop import RunningPop, start_pop
from edge.invocation import LogStore
from tests.cdn.scripted_origin import ScriptedOrigin, behavior_config, distribution_config, pop_settings_for

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"
VR, VRS = "viewer-request", "viewer-response"
ACCOUNT = "797438674243"  # any account: functions are resolved by name
OTHER = "other.example.com"


def fa(event_type: str, name: str) -> dict[str, str]:
    return {"FunctionARN": f"arn:aws:cloudfront::{ACCOUNT}:function/{name}", "EventType": event_type}


class CffPop:
    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.db = CffDatabase(self.state)  # the control process's connection
        self.store = FunctionStore(self.db)
        self.kvs = KeyValueStoreService(self.db)
        self.origin = ScriptedOrigin()
        self.other = ScriptedOrigin()
        self.logs = LogStore(tmp / "logs", flush_interval_s=0.02)
        self.pop: RunningPop | None = None
        self.runner: CloudFrontFunctionRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> CffPop:
        await self.origin.start()
        await self.other.start()
        await self.logs.start()
        self.session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def close(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.origin.stop)
            stack.push_async_callback(self.other.stop)
            stack.push_async_callback(self.logs.close)
            if self.runner is not None:
                stack.push_async_callback(self.runner.close)
            if self.pop is not None:
                stack.push_async_callback(self.pop.stop)
            if self.session is not None:
                stack.push_async_callback(self.session.close)
        self.db.close()

    def function(self, name: str, code: str, runtime: str = V2, *, publish: bool = True,
                 kvs_arn: str | None = None) -> None:
        config: dict[str, Any] = {"Comment": "test", "Runtime": runtime}
        if kvs_arn is not None:
            config["KeyValueStoreAssociations"] = {"Quantity": 1, "Items": [{"KeyValueStoreARN": kvs_arn}]}
        etag = self.store.create(name, config, code)["ETag"]
        if publish:
            self.store.publish(name, etag)

    async def start(self, *, functions: Iterable[dict[str, str]] = (), behavior: dict[str, Any] | None = None,
                    config: dict[str, Any] | None = None, memo: bool = True) -> RunningPop:
        if config is None:
            b = dict(behavior or behavior_config())
            items = list(functions)
            b["FunctionAssociations"] = {"Quantity": len(items), "Items": items}
            config = distribution_config(default=b)
            config["DistributionConfig"]["Origins"]["Items"].append({
                "Id": "o2", "DomainName": OTHER,
                "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}})
            config["DistributionConfig"]["Origins"]["Quantity"] = 2
        pop, settings = pop_settings_for(self.origin)
        settings = dataclasses.replace(settings, origins={**settings.origins,
                                                          OTHER: OriginTarget(host="127.0.0.1", port=self.other.port)})
        dist = load_distribution(config, settings)
        names = [a.function_name for b in dist.all_behaviors for a in b.function_associations]
        self.runner = CloudFrontFunctionRunner(
            FunctionCatalog(CffDatabase(self.state), names), poll_interval=0.05,
            edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"},
            log_sink=lambda group, stream, lines, rid: self.logs.append(group, stream, lines, rid), memo=memo)
        await self.runner.start()
        self.pop = await start_pop(pop, dist, settings, port=0, functions=self.runner)
        return self.pop

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, bytes]:
        assert self.session is not None and self.pop is not None
        async with self.session.get(f"http://127.0.0.1:{self.pop.port}{path}", allow_redirects=False, **kw) as r:
            return r.status, r.headers, await r.read()

    async def log_lines(self, name: str) -> list[str]:
        await self.logs.flush()
        return [str(e["message"]) for e in await self.logs.aread(f"/aws/cloudfront/function/{name}")]


@pytest.fixture
async def cff(tmp_path: Path) -> AsyncIterator[CffPop]:
    stack = await CffPop(tmp_path).open()
    try:
        yield stack
    finally:
        await stack.close()


ADD_HEADER = """function handler(event) {
  var r = event.request; r.headers['x-fn'] = {value: 'yes'}; console.log('saw ' + r.uri); return r;
}"""


async def test_viewer_request_modifies_the_request_on_misses_and_hits(cff: CffPop) -> None:
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    cff.function("add", ADD_HEADER, V1)
    await cff.start(functions=[fa(VR, "add")])
    s1, h1, b1 = await cff.get("/a")
    _, h2, _ = await cff.get("/a")
    assert (s1, b1, h1["X-Cache"], h2["X-Cache"]) == (200, b"A", "Miss from cloudfront", "Hit from cloudfront")
    assert cff.origin.requests["/a"][0].header("X-Fn") == "yes" and cff.origin.hits["/a"] == 1
    for h in (h1, h2):  # the function runs on hits too, with its Server-Timing entry
        assert 'fn-viewer-request;desc="add:LIVE cff cu=' in h["Server-Timing"]
    lines = await cff.log_lines("add")
    assert lines[0].endswith(" START DistributionID: " + cff.pop.state.ctx.distribution.id)  # type: ignore[union-attr]
    assert lines[1].endswith(" saw /a") and " END ComputeUtilization: " in lines[2]


@pytest.mark.parametrize("memo", [True, False])
async def test_a_repeated_request_is_answered_from_memory_and_server_timing_says_so(cff: CffPop, memo: bool) -> None:
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    cff.function("pure", "function handler(event) { var r = event.request;"
                         " r.headers['x-fn'] = {value: r.uri + (r.headers['x-v'] ? r.headers['x-v'].value : '')};"
                         " return r; }", V1)
    cff.function("stamp", "function handler(event) { var h = event.response.headers;"
                          " h['x-vrs'] = {value: event.request.uri}; return event.response; }", V1)
    await cff.start(functions=[fa(VR, "pure"), fa(VRS, "stamp")], memo=memo)
    seen = []
    for v in ("", "", "1", "1", ""):
        status, headers, body = await cff.get("/a", headers={"X-V": v} if v else {})
        assert (status, body, headers["X-Vrs"]) == (200, b"A", "/a")
        timing = headers["Server-Timing"]
        seen.append(('desc="pure:LIVE cff cu=' in timing and ' memo";' in timing.split("fn-viewer-request")[1]
                     .split(",")[0], ' memo";' in timing.split("fn-viewer-response")[1].split(",")[0]))
    # the second request repeats the first's events, the fourth the third's, the fifth the first's (a miss's response
    # and a hit's show the function the same headers)
    want = [(False, False), (True, True), (False, False), (True, True), (True, True)]
    assert seen == (want if memo else [(False, False)] * 5)
    assert cff.origin.hits["/a"] == 1 and [r.header("X-Fn") for r in cff.origin.requests["/a"]] == ["/a"]
    metrics = cff.runner.metrics()  # type: ignore[union-attr]
    for name in ("pure", "stamp"):
        assert metrics[name]["invocations"] == 5 and metrics[name]["memo_hits"] == (3 if memo else 0)
    assert await cff.log_lines("pure") == []  # a call that logged nothing writes nothing, from memory or not


async def test_a_request_answered_from_memory_before_a_put_goes_where_the_store_says_after_it(cff: CffPop) -> None:
    for path in ("/one", "/two", "/b"):
        cff.origin.script(path, body=path.encode())
    arn = cff.kvs.create("routes")["KeyValueStore"]["ARN"]
    cff.kvs.put_key(arn, "k", "/one", cff.kvs.kvs_describe(arn)["ETag"])
    cff.function("route", """import cf from 'cloudfront';
    const kvs = cf.kvs();
    async function handler(event) {
      const req = event.request, k = await kvs.get('k');
      if (req.uri === '/a') req.uri = k; else req.headers['x-k'] = {value: k};
      return req;
    }""", V2, kvs_arn=arn)
    await cff.start(functions=[fa(VR, "route")], behavior=behavior_config(default_ttl=0, max_ttl=0))
    for _ in range(3):  # remembered, then answered from memory
        assert (await cff.get("/a"))[2] == b"/one"
    cff.kvs.put_key(arn, "k", "/two", cff.kvs.kvs_describe(arn)["ETag"])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while cff.origin.requests["/b"][-1].header("X-K") != "/two" if cff.origin.hits["/b"] else True:
        assert loop.time() - t0 < 1.0, "the put did not reach the POP within a second"
        await cff.get("/b")  # another request: the engine loads the store's new snapshot for it
        await asyncio.sleep(0.02)
    assert (await cff.get("/a"))[2] == b"/two"  # not what the old snapshot led to
    assert (await cff.get("/a"))[2] == b"/two"


ROUTE_CODE = {"publish": "function handler(event) { var r = event.request; r.uri = '%s'; return r; }",
              "put": """import cf from 'cloudfront';
    const kvs = cf.kvs();
    async function handler(event) { const r = event.request; r.uri = await kvs.get('k'); return r; }"""}


@pytest.mark.parametrize("prepared", [True, False], ids=["engine-prepared", "catalog-only"])
@pytest.mark.parametrize("change", ["publish", "put"])
async def test_a_hit_answered_from_what_the_runner_kept_follows_a_publish_or_a_put(
        cff: CffPop, change: str, prepared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache hit after a function whose answer to the same request the runner kept (``lean.function_again``: the
    POP answers it without an Exchange) goes where a call would once the catalog reloaded the function or the store:
    within a second, kept again from then on. ``catalog-only``: the runner's own refresh (which then prepares the
    engines in a thread) is left out and only the catalog reloads: the next request must not be answered from what
    was kept before it (``FunctionCatalog.loads``), whether or not anything else has moved yet."""
    for path in ("/one", "/two"):
        cff.origin.script(path, body=path.encode(), headers={"Cache-Control": "max-age=60"})
    arn = None
    if change == "put":
        arn = cff.kvs.create("routes")["KeyValueStore"]["ARN"]
        cff.kvs.put_key(arn, "k", "/one", cff.kvs.kvs_describe(arn)["ETag"])
        cff.function("route", ROUTE_CODE["put"], V2, kvs_arn=arn)
    else:
        cff.function("route", ROUTE_CODE["publish"] % "/one", V1)
    await cff.start(functions=[fa(VR, "route")])

    async def answer() -> tuple[bytes, bool]:
        _, headers, body = await cff.get("/a")
        return body, ' memo";' in headers["Server-Timing"]

    assert [await answer() for _ in range(4)] == [(b"/one", False), (b"/one", True), (b"/one", True),
                                                  (b"/one", True)]
    assert cff.runner is not None and cff.runner.metrics()["route"]["memo_hits"] == 3
    if not prepared:
        async def refresh() -> None:
            pass

        monkeypatch.setattr(cff.runner, "refresh", refresh)  # the poll task's: the catalog is reloaded below
    if arn is not None:
        cff.kvs.put_key(arn, "k", "/two", cff.kvs.kvs_describe(arn)["ETag"])
    else:
        cff.store.update("route", cff.store.describe("route", "DEVELOPMENT")["ETag"], {"Comment": "test", "Runtime": V1},
                         ROUTE_CODE["publish"] % "/two")
        cff.store.publish("route", cff.store.describe("route", "DEVELOPMENT")["ETag"])
    if not prepared:
        assert await asyncio.to_thread(cff.runner.catalog.refresh)
        assert await answer() == (b"/two", False)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (body := (await answer())[0]) != b"/two":
        assert body == b"/one" and loop.time() - t0 < 1.0, "the change did not reach the POP's hits within a second"
        await asyncio.sleep(0.02)
    assert [await answer() for _ in range(3)] == [(b"/two", True)] * 3  # the new answer, kept in turn
    assert cff.origin.hits["/one"] == cff.origin.hits["/two"] == 1


@pytest.mark.parametrize("prepared", [True, False], ids=["engine-prepared", "catalog-only"])
async def test_a_viewer_response_hit_answered_from_what_the_runner_kept_follows_a_publish(
        cff: CffPop, prepared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for a viewer-response function (``lean.last_again``): the headers it adds to a hit change with the
    function published, within a second (at once when only the catalog reloaded), and are kept again."""
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    code = "function handler(event) { event.response.headers['x-v'] = {value: '%s'}; return event.response; }"
    cff.function("stamp", code % "1", V1)
    await cff.start(functions=[fa(VRS, "stamp")])

    async def answer() -> tuple[str, bool]:
        _, headers, body = await cff.get("/a")
        assert body == b"A"
        return headers["X-V"], ' memo";' in headers["Server-Timing"]

    assert [await answer() for _ in range(4)] == [("1", False), ("1", True), ("1", True), ("1", True)]
    assert cff.runner is not None
    if not prepared:
        async def refresh() -> None:
            pass

        monkeypatch.setattr(cff.runner, "refresh", refresh)
    cff.store.update("stamp", cff.store.describe("stamp")["ETag"], {"Comment": "test", "Runtime": V1}, code % "2")
    cff.store.publish("stamp", cff.store.describe("stamp")["ETag"])
    if not prepared:
        assert await asyncio.to_thread(cff.runner.catalog.refresh)
        assert await answer() == ("2", False)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (value := (await answer())[0]) != "2":
        assert value == "1" and loop.time() - t0 < 1.0, "the publish did not reach the POP's hits within a second"
        await asyncio.sleep(0.02)
    assert [await answer() for _ in range(3)] == [("2", True)] * 3
    assert cff.origin.hits["/a"] == 1


async def test_a_hit_answered_from_what_the_runner_kept_is_not_once_the_engine_forgot(cff: CffPop) -> None:
    """The engine rebuilds its context after a call it stopped (here: the time limit) and forgets what it remembered
    (``memo_generation``): the next same request runs the function again, on a hit too."""
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    cff.function("add", "function handler(event) { var r = event.request; if (r.uri === '/loop') { for (;;) {} }"
                        " r.headers['x-fn'] = {value: '1'}; return r; }", V1)
    await cff.start(functions=[fa(VR, "add")])

    async def memo() -> bool:
        status, headers, _ = await cff.get("/a")
        assert status == 200
        return ' memo";' in headers["Server-Timing"]

    assert [await memo() for _ in range(4)] == [False, True, True, True]
    assert (await cff.get("/loop"))[0] == 503
    assert [await memo() for _ in range(3)] == [False, True, True]
    assert cff.runner is not None and cff.runner.metrics()["add"]["invocations"] == 8


async def test_a_repeated_event_spelled_differently_goes_on_with_its_own_spelling(cff: CffPop) -> None:
    cff.origin.script("/a", body=b"A")
    cff.function("pure", "function handler(event) { var r = event.request;"
                         " r.headers['x-fn'] = {value: r.headers['x-v'].value}; return r; }", V1)
    await cff.start(functions=[fa(VR, "pure")], behavior=behavior_config(default_ttl=0, max_ttl=0))
    spellings = ["X-V", "x-v", "X-V", "x-V", "x-v", "x-V"]
    for name in spellings:
        assert (await cff.get("/a", headers={name: "1"}))[0] == 200
    seen = [[(k, v) for k, v in r.headers if k.lower() in ("x-v", "x-fn")] for r in cff.origin.requests["/a"]]
    assert seen == [[(name, "1"), ("X-Fn", "1")] for name in spellings]
    assert cff.runner.metrics()["pure"]["memo_hits"] == 5  # type: ignore[union-attr]


async def test_a_repeated_viewer_response_event_follows_its_cache_entry(cff: CffPop,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []  # the events whose fields were built: the first two of each request and entry (a call,
    real = runner_mod.request_fields  # then the engine's memory), not the runner's (the third on)

    def request_fields(request: Any, **kw: Any) -> Any:
        built.append(request.uri)
        return real(request, **kw)

    monkeypatch.setattr(runner_mod, "request_fields", request_fields)
    cff.origin.script("/v", body=b"v", headers={"Cache-Control": "max-age=60", "ETag": '"1"'})
    cff.function("etag", "function handler(event) { var h = event.response.headers;"
                         " h['x-etag'] = {value: h['etag'].value + event.request.uri}; return event.response; }", V1)
    await cff.start(functions=[fa(VRS, "etag")])

    async def etags(n: int) -> list[str]:
        return [(await cff.get("/v"))[1]["X-Etag"] for _ in range(n)]

    assert await etags(4) == ['"1"/v'] * 4 and len(built) == 2
    assert cff.pop is not None and cff.runner is not None
    cff.origin.script("/v", body=b"v", headers={"Cache-Control": "max-age=60", "ETag": '"2"'})
    cff.pop.state.ctx.store.clear()  # the entry goes: the next request stores the origin's new one
    assert await etags(4) == ['"2"/v'] * 4 and len(built) == 4  # the new entry's, not what the old one led to
    assert cff.origin.hits["/v"] == 2 and cff.runner.metrics()["etag"]["memo_hits"] >= 4


async def test_generated_response_is_not_cached_and_skips_viewer_response(cff: CffPop) -> None:
    cff.function("redirect", """function handler(event) {
      return {statusCode: 302, statusDescription: 'Found', headers: {location: {value: '/new'}}};
    }""", V1)
    cff.function("stamp", "function handler(event) { event.response.headers['x-vrs'] = {value: '1'}; "
                          "return event.response; }", V1)
    await cff.start(functions=[fa(VR, "redirect"), fa(VRS, "stamp")])
    for _ in range(2):
        status, headers, _ = await cff.get("/old")
        assert (status, headers["Location"], headers["X-Cache"]) == (302, "/new", "FunctionGeneratedResponse from cloudfront")
        assert headers["Server"] == "CloudFront" and "X-Vrs" not in headers
    assert cff.origin.hits["/old"] == 0


async def test_execution_error_refused_syntax_runaway_loop_and_memory_are_503(cff: CffPop) -> None:
    cff.origin.script("/ok", body=b"ok")
    cff.function("thrower", "function handler(event) { throw new Error('boom'); }", V1)
    cff.function("forof", "function handler(event) { for (var x of [1]) {} return event.request; }", V2)
    cff.function("loop", "function handler(event) { for (;;) {} }", V1)
    cff.function("hog", "function handler(event) { var a = []; for (;;) { a.push(new Array(1000).join('x') + a.length); } }", V1)
    behaviors = {"/t*": "thrower", "/f*": "forof", "/l*": "loop", "/h*": "hog"}
    config = distribution_config(default=behavior_config(), behaviors=[
        {**behavior_config(p), "FunctionAssociations": {"Quantity": 1, "Items": [fa(VR, n)]}}
        for p, n in behaviors.items()])
    await cff.start(config=config)
    for path in ("/t", "/f", "/l", "/h"):
        status, headers, body = await cff.get(path)
        assert (status, headers["X-Cache"]) == (503, "FunctionExecutionError from cloudfront"), path
        assert b"The CloudFront function associated with the CloudFront distribution is invalid or could not run." in body
    assert (await cff.get("/ok"))[0] == 200  # the POP keeps serving
    assert any("ERROR FunctionExecutionError" not in x and "Error: boom" in x for x in await cff.log_lines("thrower"))
    assert any('Token "of" not supported in this version' in x for x in await cff.log_lines("forof"))
    assert any("exceeded its memory limit" in x or "compute time" in x for x in await cff.log_lines("hog"))
    assert cff.origin.hits["/t"] == cff.origin.hits["/f"] == cff.origin.hits["/l"] == 0


async def test_invalid_result_is_502_validation_error(cff: CffPop) -> None:
    cff.function("readonly", "function handler(event) { event.request.headers.host = {value: 'x'}; "
                             "return event.request; }", V1)
    await cff.start(functions=[fa(VR, "readonly")])
    status, headers, body = await cff.get("/a")
    assert (status, headers["X-Cache"]) == (502, "FunctionValidationError from cloudfront")
    assert b"The CloudFront function tried to add, delete, or change a read-only header." in body


async def test_viewer_response_runs_on_success_may_change_status_and_is_skipped_on_origin_errors(cff: CffPop) -> None:
    cff.origin.script("/a", body=b"A", headers={"Cache-Control": "max-age=60"})
    cff.origin.script("/missing", status=404, body=b"no")
    cff.function("vrs", """function handler(event) {
      var res = event.response; res.headers['strict-transport-security'] = {value: 'max-age=1'};
      res.cookies['seen'] = {value: '1', attributes: 'Path=/'};
      if (event.request.uri === '/a') { res.statusCode = 203; res.body = {encoding: 'text', data: 'replaced'}; }
      return res;
    }""", V1)
    await cff.start(functions=[fa(VRS, "vrs")])
    for _ in range(2):  # miss, then hit: both run the function
        status, headers, body = await cff.get("/a")
        assert (status, body, headers["Strict-Transport-Security"]) == (203, b"replaced", "max-age=1")
        assert headers["Set-Cookie"] == "seen=1; Path=/"
    status, headers, _ = await cff.get("/missing")
    assert status == 404 and "Strict-Transport-Security" not in headers


async def test_unresolved_association_is_503_until_the_function_is_published(cff: CffPop) -> None:
    cff.origin.script("/a", body=b"A")
    await cff.start(functions=[fa(VR, "later")])
    status, headers, _ = await cff.get("/a")
    assert (status, headers["X-Cache"]) == (503, "FunctionExecutionError from cloudfront")
    cff.function("later", ADD_HEADER, V1, publish=False)
    await asyncio.sleep(0.3)
    assert (await cff.get("/a"))[0] == 503  # DEVELOPMENT only: not associable
    cff.store.publish("later", cff.store.describe("later")["ETag"])
    for _ in range(40):  # within a second
        if (await cff.get("/a"))[0] == 200:
            break
        await asyncio.sleep(0.025)
    assert cff.origin.requests["/a"][-1].header("X-Fn") == "yes"


async def test_origin_helpers_change_where_the_request_goes(cff: CffPop) -> None:
    cff.origin.script("/u", body=b"primary", status=503)
    cff.other.script("/u", body=b"other")
    cff.other.script("/s", body=b"selected")
    cff.other.script("/g", body=b"secondary")
    cff.origin.script("/g", status=503, body=b"down")
    cff.function("route", """import cf from 'cloudfront';
    function handler(event) {
      var uri = event.request.uri;
      if (uri === '/u') cf.updateRequestOrigin({domainName: 'other.example.com', customHeaders: {'x-o': 'up'}});
      if (uri === '/s') cf.selectRequestOriginById('o2', {hostHeader: 'picked.example.com'});
      if (uri === '/g') cf.createRequestOriginGroup({originIds: ['o1', 'o2'], failoverCriteria: {statusCodes: [503]}});
      if (uri === '/x') cf.selectRequestOriginById('nope');
      return event.request;
    }""", V2)
    await cff.start(functions=[fa(VR, "route")])
    assert (await cff.get("/u"))[2] == b"other" and cff.other.requests["/u"][0].header("X-O") == "up"
    assert cff.other.requests["/u"][0].header("Host") == OTHER
    assert (await cff.get("/s"))[2] == b"selected"
    assert cff.other.requests["/s"][0].header("Host") == "picked.example.com"
    assert (await cff.get("/g"))[2] == b"secondary" and cff.origin.hits["/g"] == 1  # failed over on 503
    status, headers, body = await cff.get("/x")
    assert (status, headers["X-Cache"]) == (502, "FunctionValidationError from cloudfront")
    assert b"The CloudFront function returned an invalid origin." in body


async def test_kvs_get_in_a_function_sees_a_put_within_a_second(cff: CffPop) -> None:
    cff.origin.script("/new", body=b"new")
    cff.origin.script("/old", body=b"old")
    store = cff.kvs.create("routes")["KeyValueStore"]
    arn = store["ARN"]
    etag = cff.kvs.kvs_describe(arn)["ETag"]
    cff.kvs.put_key(arn, "route:/old", "/old", etag)
    cff.function("kvs", """import cf from 'cloudfront';
    const kvs = cf.kvs();
    async function handler(event) {
      const req = event.request;
      try { req.uri = await kvs.get('route:' + req.uri); } catch (e) { }
      return req;
    }""", V2, kvs_arn=arn)
    behavior = behavior_config(default_ttl=0, max_ttl=0)
    await cff.start(functions=[fa(VR, "kvs")], behavior=behavior)
    assert (await cff.get("/old"))[2] == b"old"
    cff.kvs.put_key(arn, "route:/old", "/new", cff.kvs.kvs_describe(arn)["ETag"])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (await cff.get("/old"))[2] != b"new":
        assert loop.time() - t0 < 1.0, "the put did not reach the POP within a second"
        await asyncio.sleep(0.02)


async def test_viewer_request_function_sees_cloudfront_generated_headers(cff: CffPop) -> None:
    cff.function("device", """function handler(event) {
      var h = event.request.headers['cloudfront-is-mobile-viewer'];
      return {statusCode: 200, body: h ? h.value : 'absent'};
    }""", V1)
    policy_headers = behavior_config(headers=("CloudFront-Is-Mobile-Viewer",))
    await cff.start(functions=[fa(VR, "device")], behavior=policy_headers)
    assert (await cff.get("/", headers={"User-Agent": "Mozilla/5.0 (iPhone) Mobile"}))[2] == b"true"


async def test_viewer_function_then_lambda_edge_origin_request_sees_its_request_and_origin(edge: Any,
                                                                                           tmp_path: Path) -> None:
    """The documented order: CloudFront viewer-request function -> cache -> Lambda@Edge origin-request, which sees
    the request as the function left it and the origin it chose."""
    from tests.e2e.conftest import OR, assoc
    from tests.e2e.conftest import behavior_config as le_behavior

    db = CffDatabase(edge.state_dir)
    store = FunctionStore(db)
    etag = store.create("tag", {"Comment": "t", "Runtime": V2}, """import cf from 'cloudfront';
    function handler(event) {
      event.request.headers['x-fn'] = {value: 'set-by-cff'};
      cf.updateRequestOrigin({domainName: 'green.example.com'});
      return event.request;
    }""")["ETag"]
    store.publish("tag", etag)
    await edge.function("echo", """
import json
def handler(event, context):
    req = event["Records"][0]["cf"]["request"]
    seen = {"x-fn": req["headers"]["x-fn"][0]["value"], "origin": req["origin"]["custom"]["domainName"]}
    return {"status": "200", "body": json.dumps(seen)}
""")
    runner = CloudFrontFunctionRunner(FunctionCatalog(CffDatabase(edge.state_dir), ["tag"]),
                                      edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
    await runner.start()
    try:
        default = {**le_behavior(headers=("X-Fn",)), "FunctionAssociations": {"Quantity": 1, "Items": [fa(VR, "tag")]}}
        await edge.start(default=default, associations=[assoc(OR, "echo")], functions=runner)
        status, headers, body = await edge.get("/x")
        assert status == 200, (headers.get("X-Cache"), body[-600:])
        assert json.loads(body) == {"x-fn": "set-by-cff", "origin": "green.example.com"}
        timing = headers["Server-Timing"]
        assert timing.index("fn-viewer-request") < timing.index("fn-origin-request")
    finally:
        await runner.close()
        db.close()


async def test_security_headers_on_hits_come_after_the_entrys_headers_as_on_misses(cff: CffPop) -> None:
    """AWS's security-headers example on a miss (the response from the origin) and on hits (the cache entry's
    prepared header lines kept, the added ones serialised after them): the same headers in the same order, the
    added ones after the origin's and before the POP's own."""
    from bench.cff_pop_bench import RESPONSE_CODE

    cff.origin.script("/s", body=b"S", headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain",
                                                "X-Origin": "o"})
    cff.function("sec", RESPONSE_CODE, V1)
    await cff.start(functions=[fa(VRS, "sec")])
    answers = [await cff.get("/s") for _ in range(3)]
    added = ["strict-transport-security", "content-security-policy", "x-content-type-options", "x-frame-options",
             "x-xss-protection", "referrer-policy"]
    varying = {"age", "date", "x-amz-cf-id", "server-timing", "x-cache", "content-length"}
    orders = []
    for status, headers, body in answers:
        assert (status, body) == (200, b"S")
        names = [k.lower() for k in headers if k.lower() not in varying]
        start = names.index(added[0])
        assert names[start:start + len(added)] == added
        assert names.index("x-origin") < start and names[start + len(added):] == ["via", "x-amz-cf-pop"]
        assert "fn-viewer-response" in headers["Server-Timing"]
        orders.append(names)
    assert [h["X-Cache"] for _, h, _ in answers] == ["Miss from cloudfront"] + ["Hit from cloudfront"] * 2
    assert orders[0] == orders[1] == orders[2]
    assert answers[1][1]["Strict-Transport-Security"] == "max-age=63072000; includeSubdomains; preload"
