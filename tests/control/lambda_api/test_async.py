"""boto3 against the Lambda REST API: Invoke Event / InvokeAsync, FunctionEventInvokeConfig and event source
mapping operations (AWS shapes); the admin routes of queues and async metrics (aiohttp test client)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from edge.control.admin.api import AdminContext, make_admin_app
from edge.control.admin.async_api import add_async_admin_routes
from edge.invocation import LambdaService, zip_files
from tests.invocation.async_support import FAST, ScriptedExecutor, arn_fn, arn_q

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture
def api(lambda_api_factory: Any) -> Any:
    server = lambda_api_factory(executor_factory=ScriptedExecutor, async_settings=FAST)
    run = lambda coro: asyncio.run_coroutine_threadsafe(coro, server._loop).result(10)  # noqa: E731
    run(server.service.start_async_delivery())
    client = server.client()
    for name in ("fn", "target"):
        client.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})})
    run(server.service.create_queue("q1"))
    return server, client, run


def wait_for(pred: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met")


def test_invoke_event_and_invoke_async_are_accepted_and_delivered(api: Any) -> None:
    server, client, _run = api
    resp = client.invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"id": 1}')
    assert resp["StatusCode"] == 202 and resp["Payload"].read() == b""
    out = client.invoke_async(FunctionName="fn", InvokeArgs=b'{"id": 2}')
    assert out["Status"] == 202
    ex: ScriptedExecutor = server.service.executor
    wait_for(lambda: len(ex.calls_of("fn")) == 2)
    with pytest.raises(ClientError) as err:
        client.invoke_async(FunctionName="fn", InvokeArgs=b'"' + b"x" * 262_144 + b'"')
    assert err.value.response["Error"]["Code"] == "RequestTooLargeException"
    with pytest.raises(ClientError) as err:
        client.invoke(FunctionName="nope", InvocationType="Event", Payload=b"{}")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_event_invoke_config_operations(api: Any) -> None:
    _, client, _ = api
    out = client.put_function_event_invoke_config(
        FunctionName="fn", MaximumRetryAttempts=1,
        DestinationConfig={"OnSuccess": {"Destination": arn_q("q1")}, "OnFailure": {"Destination": arn_fn("target")}},
    )
    assert out["FunctionArn"] == arn_fn("fn") + ":$LATEST" and out["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in out and isinstance(out["LastModified"], dt.datetime)
    assert out["DestinationConfig"]["OnFailure"] == {"Destination": arn_fn("target")}
    upd = client.update_function_event_invoke_config(FunctionName="fn", MaximumEventAgeInSeconds=3600)
    assert (upd["MaximumRetryAttempts"], upd["MaximumEventAgeInSeconds"]) == (1, 3600)
    got = client.get_function_event_invoke_config(FunctionName="fn")
    assert got["DestinationConfig"]["OnSuccess"] == {"Destination": arn_q("q1")}
    client.publish_version(FunctionName="fn")
    client.put_function_event_invoke_config(FunctionName="fn", Qualifier="1", MaximumRetryAttempts=0)
    listed = client.list_function_event_invoke_configs(FunctionName="fn")["FunctionEventInvokeConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["$LATEST", "1"]
    assert listed[1]["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    paged = client.list_function_event_invoke_configs(FunctionName="fn", MaxItems=1)
    assert len(paged["FunctionEventInvokeConfigs"]) == 1 and paged["NextMarker"]
    resp = client.delete_function_event_invoke_config(FunctionName="fn", Qualifier="1")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        client.get_function_event_invoke_config(FunctionName="fn", Qualifier="1")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "doesn't have an EventInvokeConfig" in err.value.response["Error"]["Message"]


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"DestinationConfig": {"OnFailure": {"Destination": arn_fn("fn")}}}, "InvalidParameterValueException"),
    ({"DestinationConfig": {"OnFailure": {"Destination": arn_q("missing")}}}, "InvalidParameterValueException"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:000000000000:t"}}}, "InvalidParameterValueException"),
])
def test_event_invoke_config_errors(api: Any, kwargs: dict, code: str) -> None:
    _, client, _ = api
    with pytest.raises(ClientError) as err:
        client.put_function_event_invoke_config(FunctionName="fn", **kwargs)
    assert err.value.response["Error"]["Code"] == code


def test_event_source_mapping_operations(api: Any) -> None:
    _, client, _ = api
    created = client.create_event_source_mapping(EventSourceArn=arn_q("q1"), FunctionName="fn", BatchSize=5,
                                                 FunctionResponseTypes=["ReportBatchItemFailures"], Enabled=False)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202 and created["State"] == "Creating"
    uuid = created["UUID"]
    assert created["FunctionArn"] == arn_fn("fn") and created["EventSourceArn"] == arn_q("q1")
    assert created["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and created["BatchSize"] == 5
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Disabled" and got["MaximumBatchingWindowInSeconds"] == 0
    upd = client.update_event_source_mapping(UUID=uuid, Enabled=True, BatchSize=7)
    assert upd["State"] == "Enabling" and upd["BatchSize"] == 7
    assert client.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
    listed = client.list_event_source_mappings(FunctionName="fn")["EventSourceMappings"]
    assert [m["UUID"] for m in listed] == [uuid]
    assert client.list_event_source_mappings(EventSourceArn=arn_q("q1"))["EventSourceMappings"][0]["UUID"] == uuid
    with pytest.raises(ClientError) as err:
        client.create_event_source_mapping(EventSourceArn=arn_q("q1"), FunctionName="fn")
    assert err.value.response["Error"]["Code"] == "ResourceConflictException"
    deleted = client.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    with pytest.raises(ClientError) as err:
        client.get_event_source_mapping(UUID=uuid)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        client.create_event_source_mapping(EventSourceArn=arn_q("nope"), FunctionName="fn")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_dead_letter_config_round_trips(api: Any) -> None:
    _, client, _ = api
    out = client.update_function_configuration(FunctionName="fn", DeadLetterConfig={"TargetArn": arn_q("q1")})
    assert out["DeadLetterConfig"] == {"TargetArn": arn_q("q1")}
    client.publish_version(FunctionName="fn")
    assert client.get_function_configuration(FunctionName="fn", Qualifier="1")["DeadLetterConfig"]["TargetArn"] == arn_q("q1")
    with pytest.raises(ClientError) as err:
        client.update_function_configuration(FunctionName="fn", DeadLetterConfig={"TargetArn": arn_q("absent")})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


# -- admin routes ------------------------------------------------------------------------------------------


async def _noop() -> dict[str, Any]:
    return {}


async def _no_logs(**_: Any) -> dict[str, Any]:
    return {"groups": [], "events": []}


async def test_admin_queue_routes_and_async_metrics(aiohttp_client: Any, tmp_path: Path) -> None:
    svc = LambdaService(tmp_path / "state", executor=ScriptedExecutor(), async_settings=FAST)
    await svc.start()
    try:
        admin = make_admin_app(AdminContext(pops=[], reset_local=_noop, local_metrics=dict, read_logs=_no_logs))
        add_async_admin_routes(admin, svc)
        app = web.Application()
        app.add_subapp("/edgelab/v1", admin)
        client = await aiohttp_client(app)
        resp = await client.post("/edgelab/v1/queues", json={"name": "dlq", "visibility_timeout": 5})
        assert resp.status == 201 and (await resp.json())["arn"] == arn_q("dlq")
        assert (await client.post("/edgelab/v1/queues", json={"name": "dlq"})).status == 409
        assert (await client.post("/edgelab/v1/queues", json={"name": "bad name"})).status == 400
        assert (await client.post("/edgelab/v1/queues", data=b"[")).status == 400
        for body in ("one", "two", "three"):
            assert (await client.post("/edgelab/v1/queues/dlq/messages", json={"body": body})).status == 201
        listed = await (await client.get("/edgelab/v1/queues")).json()
        assert listed["queues"][0]["messages"] == 3
        peek = await (await client.get("/edgelab/v1/queues/dlq/messages", params={"max": "2"})).json()
        assert [m["Body"] for m in peek["messages"]] == ["one", "two"] and not peek["deleted"]
        taken = await (await client.get("/edgelab/v1/queues/dlq/messages", params={"max": "1", "delete": "true"})).json()
        assert [m["Body"] for m in taken["messages"]] == ["one"]
        assert (await (await client.get("/edgelab/v1/queues/dlq")).json())["messages"] == 2
        assert (await client.get("/edgelab/v1/queues/dlq/messages", params={"max": "x"})).status == 400
        assert (await (await client.post("/edgelab/v1/queues/dlq/purge")).json())["purged"] == 2
        assert (await client.get("/edgelab/v1/queues/nope")).status == 404
        metrics = await (await client.get("/edgelab/v1/async")).json()
        assert metrics["queues"]["dlq"]["messages"] == 0 and metrics["depth"] == 0 and metrics["delivering"] is False
        assert (await client.delete("/edgelab/v1/queues/dlq")).status == 204
        assert json.loads(await (await client.get("/edgelab/v1/queues")).text()) == {"queues": []}
    finally:
        await svc.close()


def test_range_errors_over_raw_http(api: Any) -> None:
    """boto3 validates these ranges client-side; other clients reach the server's ValidationException."""
    import urllib.error
    import urllib.request

    server, _, _ = api
    for body in ({"MaximumRetryAttempts": 5}, {"MaximumEventAgeInSeconds": 30}, {"MaximumEventAgeInSeconds": 21601}):
        req = urllib.request.Request(f"{server.url}/2019-09-25/functions/fn/event-invoke-config",
                                     data=json.dumps(body).encode(), method="PUT")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400 and err.value.headers["x-amzn-ErrorType"] == "ValidationException"
