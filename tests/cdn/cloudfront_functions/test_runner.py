"""The runner's pure parts: origin changes resolved against the distribution, the catalog's change detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.errors import FunctionValidationError
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.cdn.cloudfront_functions.origin import resolve_origin_change
from edge.cdn.cloudfront_functions.runner import FunctionCatalog
from edge.cdn.config.distribution import load_distribution
from edge.cdn.models import CustomOrigin, S3Origin
from tests.cdn.scripted_origin import distribution_config

DIST = load_distribution(distribution_config())
CUSTOM = DIST.origins["o1"].to_edge_origin()


def test_update_inherits_what_it_does_not_set_and_a_new_domain_drops_the_local_mapping() -> None:
    assert isinstance(CUSTOM, CustomOrigin) and CUSTOM.connect_host
    same = resolve_origin_change([["updateRequestOrigin", {"originPath": "/v2"}]], CUSTOM, DIST, [])
    assert same is not None and same.origin == CustomOrigin(**{**_fields(CUSTOM), "path": "/v2"})
    moved = resolve_origin_change([["updateRequestOrigin", {"domainName": "b.example.com", "timeouts": {
        "readTimeout": 7}, "customOriginConfig": {"protocol": "https"}}]], CUSTOM, DIST, [])
    assert moved is not None
    o = moved.origin
    assert isinstance(o, CustomOrigin) and (o.domain_name, o.protocol, o.port, o.read_timeout) == (
        "b.example.com", "https", 443, 7.0)
    assert o.connect_host is None and o.origin_id == ""  # reached through [origins], like any new domain


def test_update_of_an_s3_origin_stays_s3_unless_given_a_custom_config() -> None:
    s3 = S3Origin(domain_name="b.s3.amazonaws.com", origin_id="s3")
    o = resolve_origin_change([["updateRequestOrigin", {"domainName": "c.s3.amazonaws.com"}]], s3, DIST, [])
    assert o is not None and o.origin == S3Origin(domain_name="c.s3.amazonaws.com")
    c = resolve_origin_change([["updateRequestOrigin", {"domainName": "api.example.com",
                                                        "customOriginConfig": {"port": 8443, "protocol": "https"}}]],
                              s3, DIST, [])
    assert c is not None and isinstance(c.origin, CustomOrigin) and c.origin.port == 8443


def test_select_and_group_resolve_ids_and_the_last_call_wins() -> None:
    ops = [["updateRequestOrigin", {"domainName": "x.example.com"}],
           ["selectRequestOriginById", "o1", {"hostHeader": "h.example.com"}]]
    sel = resolve_origin_change(ops, CUSTOM, DIST, [])
    assert sel is not None and sel.origin == CUSTOM and sel.host_header == "h.example.com"
    grp = resolve_origin_change([["createRequestOriginGroup", {"originIds": ["o1", "o1"],
                                                               "failoverCriteria": {"statusCodes": [500, 503]}}]],
                                CUSTOM, DIST, [])
    assert grp is not None and grp.failover == CUSTOM and grp.failover_statuses == {500, 503}


@pytest.mark.parametrize("ops", [
    [["selectRequestOriginById", "nope"]],
    [["updateRequestOrigin", {"customHeaders": {"x-a": "1"}}]],  # also a request header
])
def test_invalid_origin_changes_are_validation_errors(ops: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(FunctionValidationError) as err:
        resolve_origin_change(ops, CUSTOM, DIST, [("X-A", "viewer")])
    assert err.value.status == 502 and err.value.message == "The CloudFront function returned an invalid origin."


def test_catalog_reloads_only_when_the_database_changed(tmp_path: Path) -> None:
    control = CffDatabase(tmp_path)
    store, kvs = FunctionStore(control), KeyValueStoreService(control)
    arn = kvs.create("k")["KeyValueStore"]["ARN"]
    catalog = FunctionCatalog(CffDatabase(tmp_path), ["f"])
    assert catalog.refresh() and catalog.live("f") is None and not catalog.refresh()
    etag = store.create("f", {"Comment": "", "Runtime": "cloudfront-js-2.0", "KeyValueStoreAssociations": {
        "Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}}, "function handler(e) { return e.request; }")["ETag"]
    store.publish("f", etag)
    assert catalog.refresh()
    live = catalog.live("f")
    assert live is not None and live.kvs_arn == arn and catalog.kvs(arn) is not None
    kvs.put_key(arn, "a", "1", kvs.kvs_describe(arn)["ETag"])
    assert catalog.refresh() and catalog.kvs(arn).data == {"a": "1"}  # type: ignore[union-attr]


def _fields(o: CustomOrigin) -> dict:  # type: ignore[type-arg]
    return {f: getattr(o, f) for f in o.__dataclass_fields__}


@pytest.mark.timeout(30)  # the bug this guards against hangs the event loop (no wait_for can fire)
async def test_requests_keep_flowing_while_the_store_changes_under_them(tmp_path: Path) -> None:
    """Regression: a request that found the engine's preparation already finished (but not yet forgotten) spun
    without yielding, so the event loop hung while a KVS changed (seen in a real stack after PutKey)."""
    import asyncio

    from edge.cdn.cloudfront_functions.associations import CffAssociation
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
    from edge.cdn.models import EdgeRequest
    from edge.cdn.responses import ServerTiming

    control = CffDatabase(tmp_path)
    store, kvs = FunctionStore(control), KeyValueStoreService(control)
    arn = kvs.create("g")["KeyValueStore"]["ARN"]
    code = ("import cf from 'cloudfront';\nconst kvs = cf.kvs();\nasync function handler(e) { let v = 'unset';"
            " try { v = await kvs.get('k'); } catch (x) { } return {statusCode: 200, body: v}; }")
    store.publish("f", store.create("f", {"Comment": "", "Runtime": "cloudfront-js-2.0", "KeyValueStoreAssociations": {
        "Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}}, code)["ETag"])
    runner = CloudFrontFunctionRunner(FunctionCatalog(CffDatabase(tmp_path), ["f"]), poll_interval=0.01,
                                      edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
    await runner.start()
    assoc = CffAssociation("viewer-request", "arn:aws:cloudfront::1:function/f", "f", "1")
    req = EdgeRequest(method="GET", uri="/", querystring="", headers=[("Host", "x")], client_ip="1.1.1.1")
    served = 0

    async def requests() -> None:
        nonlocal served
        while True:  # yields only when a request awaits (engine preparation) and every 50 requests
            await runner.viewer_request(assoc, DIST, req, "r", ServerTiming(), CUSTOM)
            served += 1
            if served % 50 == 0:
                await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(requests())]
    try:
        for i in range(60):
            kvs.put_key(arn, "k", f"v{i}", kvs.kvs_describe(arn)["ETag"])
            await asyncio.sleep(0.005)
        # the loop never hung (each call is bounded) and the snapshot converges to the last put within a bound
        deadline = asyncio.get_running_loop().time() + 3.0
        while True:
            last = await asyncio.wait_for(runner.viewer_request(assoc, DIST, req, "r", ServerTiming(), CUSTOM), 2)
            if last.response is not None and last.response.body == b"v59":
                break
            assert asyncio.get_running_loop().time() < deadline, f"still {last.response} 3 s after the last put"
            await asyncio.sleep(0.01)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.close()
        control.close()
    assert served > 60


async def test_runner_reloads_when_the_store_is_written_not_on_a_timer(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog is re-read when the store's files were written (edge.inotify), at most every poll_interval;
    idle, once per FALLBACK_POLL_S: a PutKey made by another connection (another process) is served at once."""
    import asyncio

    from edge.cdn.cloudfront_functions.associations import CffAssociation
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
    from edge.cdn.models import EdgeRequest
    from edge.cdn.responses import ServerTiming
    from edge.inotify import FALLBACK_POLL_S

    control = CffDatabase(tmp_path)
    store, kvs = FunctionStore(control), KeyValueStoreService(control)
    arn = kvs.create("g")["KeyValueStore"]["ARN"]
    kvs.put_key(arn, "k", "v0", kvs.kvs_describe(arn)["ETag"])
    code = ("import cf from 'cloudfront';\nconst kvs = cf.kvs();\nasync function handler(e) {"
            " return {statusCode: 200, body: await kvs.get('k')}; }")
    store.publish("f", store.create("f", {"Comment": "", "Runtime": "cloudfront-js-2.0", "KeyValueStoreAssociations": {
        "Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}}, code)["ETag"])
    catalog = FunctionCatalog(CffDatabase(tmp_path), ["f"])
    runner = CloudFrontFunctionRunner(catalog, poll_interval=0.05,
                                      edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
    await runner.start()
    assoc = CffAssociation("viewer-request", "arn:aws:cloudfront::1:function/f", "f", "1")
    req = EdgeRequest(method="GET", uri="/", querystring="", headers=[("Host", "x")], client_ip="1.1.1.1")
    loop = asyncio.get_running_loop()
    try:
        first = await runner.viewer_request(assoc, DIST, req, "r", ServerTiming(), CUSTOM)
        assert first.response is not None and first.response.body == b"v0"
        refreshes: list[int] = []
        real_refresh = catalog.refresh

        def counting_refresh() -> bool:
            refreshes.append(1)
            return real_refresh()

        monkeypatch.setattr(catalog, "refresh", counting_refresh)
        await asyncio.sleep(0.5)
        assert len(refreshes) <= 1, f"{len(refreshes)} refreshes in 0.5 s of quiet (fallback every {FALLBACK_POLL_S} s)"
        started = loop.time()
        kvs.put_key(arn, "k", "v1", kvs.kvs_describe(arn)["ETag"])
        while True:
            out = await runner.viewer_request(assoc, DIST, req, "r", ServerTiming(), CUSTOM)
            if out.response is not None and out.response.body == b"v1":
                break
            assert loop.time() - started < 0.5, "the PutKey was not served within 0.5 s"
            await asyncio.sleep(0.01)
    finally:
        await runner.close()
        control.close()


async def test_an_answer_is_not_kept_for_a_function_the_catalog_has_replaced_meanwhile(tmp_path: Path) -> None:
    """``CloudFrontFunctionRunner._keep``: a call that resolved its function before the catalog reloaded (a publish
    landing in the thread while the call runs) may finish with the old function, but what it led to is not kept under
    the new reload's stamp, where ``again`` would serve it for the new function."""
    from edge.cdn.cloudfront_functions.associations import CffAssociation
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
    from edge.cdn.models import EdgeRequest
    from edge.cdn.responses import ServerTiming

    control = CffDatabase(tmp_path)
    store = FunctionStore(control)
    config = {"Comment": "", "Runtime": "cloudfront-js-1.0"}
    code = "function handler(e) { e.request.uri = '%s'; return e.request; }"
    store.publish("f", store.create("f", config, code % "/one")["ETag"])
    runner = CloudFrontFunctionRunner(FunctionCatalog(CffDatabase(tmp_path), ["f"]),
                                      edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
    await runner.start()  # (no poll task runs a refresh before the catalog's own below: nothing written since)
    assoc = CffAssociation("viewer-request", "arn:aws:cloudfront::1:function/f", "f", "1")
    req = EdgeRequest("GET", "/a", "", [("Host", "x")], "192.0.2.1")

    def went(ready: object) -> str:
        out = runner.viewer_request_now(ready, assoc, DIST, req, "r", ServerTiming(), CUSTOM)  # type: ignore[arg-type]
        return out.request.uri

    try:
        for _ in range(3):  # the second is answered from the engine's memory and kept; the third from what was kept
            assert went(runner.prepared(assoc)) == "/one"
        kept = runner.again(assoc, DIST, "/a", "", "192.0.2.1", [("Host", "x")])
        assert kept is not None and kept.went_on[0] == "/one"
        old = runner.prepared(assoc)
        store.update("f", store.describe("f")["ETag"], config, code % "/two")
        store.publish("f", store.describe("f")["ETag"])
        assert runner.catalog.refresh()  # the reload lands between the call's resolution and its end
        assert runner.again(assoc, DIST, "/a", "", "192.0.2.1", [("Host", "x")]) is None
        assert [went(old) for _ in range(2)] == ["/one", "/one"]  # the old engine, its memory again
        assert runner.again(assoc, DIST, "/a", "", "192.0.2.1", [("Host", "x")]) is None  # not kept for the new one
        assert runner.prepared(assoc) is None  # the new function's engine is built by the next request (in a thread)
    finally:
        await runner.close()
        control.close()
