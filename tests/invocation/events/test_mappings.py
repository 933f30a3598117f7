"""Event source mappings over local queues (scripted executor): batches, batching window, partial batch
failures, retries then the failure destination, enable/disable, validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from edge.invocation.errors import InvalidParameterValueException, ResourceConflictException, ResourceNotFoundException
from edge.invocation.models import InvocationResult, Outcome
from edge.invocation.service.facade import LambdaService
from tests.invocation.async_support import (
    FAST,
    ScriptedExecutor,
    arn_q,
    bodies,
    create,
    eventually,
    make_code_dir,
    stat,
)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[LambdaService, ScriptedExecutor, Path]]:
    ex = ScriptedExecutor()
    svc = LambdaService(tmp_path / "state", executor=ex, poll_interval_s=0.02, async_settings=FAST)
    await svc.start()
    await svc.start_async_delivery()
    code = make_code_dir(tmp_path)
    await create(svc, code, "consumer")
    await svc.create_queue("src", visibility_timeout=0.05)
    await svc.create_queue("failed")
    yield svc, ex, code
    await svc.close()


def failing(spec: Any, event: dict[str, Any], options: Any) -> InvocationResult | None:
    """Any batch holding a body "fail" is a function error."""
    if any(r["body"] == "fail" for r in event.get("Records", [])):
        return InvocationResult(Outcome.FUNCTION_ERROR, b'{"errorMessage": "bad batch", "errorType": "ValueError"}',
                                options.request_id, "$LATEST", error_type="ValueError")
    return None


def batches(ex: ScriptedExecutor) -> list[list[dict[str, Any]]]:
    return [p["Records"] for f, _, p in ex.invocations if f == "consumer"]


async def test_batch_is_delivered_as_an_sqs_event_and_deleted(env: Any) -> None:
    svc, ex, _ = env
    for i in range(5):
        await svc.send_queue_message("src", orjson.dumps({"n": i}).decode(),
                                     {"kind": {"DataType": "String", "StringValue": "test"}})
    rec = await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer",
                                                 "BatchSize": 10, "MaximumBatchingWindowInSeconds": 0})
    assert rec.state == "Creating" and rec.batch_size == 10
    await eventually(lambda: sum(len(b) for b in batches(ex)) == 5)
    first = batches(ex)[0][0]
    assert set(first) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                          "eventSource", "eventSourceARN", "awsRegion"}
    assert first["eventSource"] == "aws:sqs" and first["eventSourceARN"] == arn_q("src") and first["body"] == '{"n":0}'
    assert first["messageAttributes"]["kind"]["stringValue"] == "test"
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    await eventually(lambda: svc.get_queue("src"), timeout=1)
    assert (await eventually(lambda: _empty(svc, "src")))


async def _empty(svc: LambdaService, name: str) -> bool:
    return (await svc.get_queue(name)).messages == 0


async def test_batching_window_gathers_a_full_batch(env: Any) -> None:
    svc, ex, _ = env
    await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer",
                                           "BatchSize": 3, "MaximumBatchingWindowInSeconds": 1})
    for i in range(3):
        await svc.send_queue_message("src", str(i))
    await eventually(lambda: batches(ex))
    assert [len(b) for b in batches(ex)] == [3]


async def test_report_batch_item_failures_retries_only_those_then_failure_destination(env: Any) -> None:
    svc, ex, _ = env

    def report(spec: Any, event: dict[str, Any], options: Any) -> InvocationResult | None:
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        return InvocationResult(Outcome.OK, orjson.dumps({"batchItemFailures": failures}), options.request_id, "$LATEST")

    ex.hook = report
    await svc.send_queue_message("src", "good")
    await svc.send_queue_message("src", "bad")
    await svc.create_event_source_mapping({
        "EventSourceArn": arn_q("src"), "FunctionName": "consumer", "BatchSize": 10, "MaximumRetryAttempts": 1,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": arn_q("failed")}},
    })
    [record] = await eventually(lambda: bodies(svc, "failed"))
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert [r["body"] for r in record["requestPayload"]["Records"]] == ["bad"]
    bodies_seen = [[r["body"] for r in b] for b in batches(ex)]
    assert bodies_seen[0] == ["good", "bad"] and bodies_seen[1:] == [["bad"]]
    assert await eventually(lambda: _empty(svc, "src"))
    assert await stat(svc, "consumer", "esm_failure_destination") == 1


async def test_function_error_fails_the_whole_batch_and_invalid_reports_too(env: Any) -> None:
    svc, ex, _ = env
    ex.hook = lambda spec, event, options: InvocationResult(
        Outcome.OK, b'{"batchItemFailures": [{"itemIdentifier": "not-a-message"}]}', options.request_id, "$LATEST")
    await svc.send_queue_message("src", "x")
    await svc.send_queue_message("src", "y")
    await svc.create_event_source_mapping({
        "EventSourceArn": arn_q("src"), "FunctionName": "consumer", "MaximumRetryAttempts": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": arn_q("failed")}},
    })
    [record] = await eventually(lambda: bodies(svc, "failed"))
    assert sorted(r["body"] for r in record["requestPayload"]["Records"]) == ["x", "y"]


async def test_without_failure_destination_messages_stay_and_are_retried(env: Any) -> None:
    svc, ex, _ = env
    ex.hook = failing
    await svc.send_queue_message("src", "fail")
    rec = await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer"})
    await eventually(lambda: len(batches(ex)) >= 3)
    assert (await svc.get_queue("src")).messages == 1
    disabled = await svc.update_event_source_mapping(rec.uuid, {"Enabled": False})
    assert disabled.state == "Disabling" and (await svc.get_event_source_mapping(rec.uuid)).state == "Disabled"
    await eventually(lambda: not svc.events.esm._pollers)
    seen = len(batches(ex))
    await svc.purge_queue("src")
    await svc.send_queue_message("src", "later")
    await svc.update_event_source_mapping(rec.uuid, {"Enabled": True})
    await eventually(lambda: len(batches(ex)) > seen)
    assert batches(ex)[-1][0]["body"] == "later"
    deleted = await svc.delete_event_source_mapping(rec.uuid)
    assert deleted.state == "Deleting"
    with pytest.raises(ResourceNotFoundException):
        await svc.get_event_source_mapping(rec.uuid)


async def test_function_error_batches_use_the_failure_destination(env: Any) -> None:
    svc, ex, _ = env
    ex.hook = failing
    await svc.send_queue_message("src", "fail")
    await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer",
                                           "DestinationConfig": {"OnFailure": {"Destination": arn_q("failed")}}})
    [record] = await eventually(lambda: bodies(svc, "failed"))
    assert record["requestContext"]["approximateInvokeCount"] == 3  # default: 2 retries
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert len(batches(ex)) == 3


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"EventSourceArn": arn_q("nope")}, InvalidParameterValueException, "no such local queue"),
    ({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}, InvalidParameterValueException, "invalid"),
    ({"FunctionName": "nobody"}, ResourceNotFoundException, "Function not found"),
    ({"BatchSize": 0}, Exception, "between 1 and 10000"),
    ({"BatchSize": 11}, InvalidParameterValueException, "Maximum batch window"),
    ({"MaximumBatchingWindowInSeconds": 301}, Exception, "between 0 and 300"),
    ({"FunctionResponseTypes": ["Other"]}, Exception, "ReportBatchItemFailures"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:000000000000:t"}}},
     InvalidParameterValueException, "sns"),
])
async def test_mapping_validation(env: Any, params: dict, error: type, match: str) -> None:
    svc, _, _ = env
    with pytest.raises(error, match=match):
        await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer", **params})


async def test_duplicate_mapping_conflicts_and_listing_filters(env: Any) -> None:
    svc, _, code = env
    await create(svc, code, "other")
    a = await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer", "Enabled": False})
    with pytest.raises(ResourceConflictException, match=a.uuid):
        await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "consumer"})
    await svc.create_event_source_mapping({"EventSourceArn": arn_q("src"), "FunctionName": "other", "Enabled": False})
    assert len(await svc.list_event_source_mappings()) == 2
    assert [m.uuid for m in await svc.list_event_source_mappings(function_name="consumer")] == [a.uuid]
    assert len(await svc.list_event_source_mappings(source_arn=arn_q("failed"))) == 0
