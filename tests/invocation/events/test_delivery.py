"""Asynchronous delivery through LambdaService with a scripted executor: retries, throttles, expiry,
destinations, DLQ, loops, counters (the real executor and real processes are used in tests/control/stack)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.invocation.errors import InvalidParameterValueException, RequestTooLargeException, ResourceNotFoundException
from edge.invocation.events.store import Insert
from edge.invocation.models import SYNC_PAYLOAD_LIMIT
from edge.invocation.service.facade import LambdaService
from tests.invocation.async_support import (
    FAST,
    ScriptedExecutor,
    arn_fn,
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
    await create(svc, code)
    await svc.create_queue("failures")
    await svc.create_queue("successes")
    yield svc, ex, code
    await svc.close()


async def test_success_goes_to_on_success_with_aws_record(env: Any) -> None:
    svc, _ex, _ = env
    await svc.put_event_invoke_config("fn", None, {"DestinationConfig": {"OnSuccess": {"Destination": arn_q("successes")}}})
    result = await svc.invoke("fn", None, b'{"id": "a"}', invocation_type="Event", request_id="req-a")
    assert result.payload == b"" and result.request_id == "req-a"
    [record] = await eventually(lambda: bodies(svc, "successes"))
    assert record["requestContext"] == {"requestId": "req-a", "functionArn": arn_fn("fn") + ":$LATEST",
                                        "condition": "Success", "approximateInvokeCount": 1}
    assert record["requestPayload"] == {"id": "a"} and record["responsePayload"] == {"echo": {"id": "a"}}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert await stat(svc, "fn", "received") == 1 and await stat(svc, "fn", "delivered") == 1


async def test_function_errors_are_retried_then_on_failure_and_dlq(env: Any) -> None:
    svc, ex, _ = env
    await svc.create_queue("dlq")
    await svc.update_function_configuration("fn", {"DeadLetterConfig": {"TargetArn": arn_q("dlq")}})
    await svc.put_event_invoke_config("fn", None, {"DestinationConfig": {"OnFailure": {"Destination": arn_q("failures")}}})
    await svc.invoke("fn", None, b'{"id": "b", "fail": -1}', invocation_type="Event", request_id="req-b")
    await svc.invoke("fn", None, b'{"id": "c", "fail": 1}', invocation_type="Event", request_id="req-c")
    [record] = await eventually(lambda: bodies(svc, "failures"))
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3  # 1 + MaximumRetryAttempts (default 2)
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "failure 3"
    [dlq] = await eventually(lambda: svc.read_queue("dlq", 10))
    assert dlq.body == '{"id": "b", "fail": -1}'  # the original event body, unchanged
    assert dlq.attributes["RequestID"]["StringValue"] == "req-b"
    assert dlq.attributes["ErrorCode"] == {"DataType": "Number", "StringValue": "200"}
    assert dlq.attributes["ErrorMessage"]["StringValue"] == "failure 3"
    await eventually(lambda: stat(svc, "fn", "delivered"))
    assert len(ex.calls_of("fn")) == 5  # b: 3 attempts, c: failed once then succeeded
    m = (await svc.async_metrics())["functions"]["fn"]
    assert (m["received"], m["delivered"], m["retried"], m["failed"], m["dead_lettered"], m["failure_destination"]) == (2, 1, 3, 1, 1, 1)
    assert m["queue"]["depth"] == 0


async def test_max_retry_zero_per_qualifier(env: Any) -> None:
    svc, _ex, _ = env
    await svc.publish_version("fn")
    await svc.create_alias("fn", "live", "1")
    await svc.put_event_invoke_config("fn", "live", {"MaximumRetryAttempts": 0,
                                                     "DestinationConfig": {"OnFailure": {"Destination": arn_q("failures")}}})
    await svc.invoke("fn", "live", b'{"id": "d", "fail": -1}', invocation_type="Event")
    [record] = await eventually(lambda: bodies(svc, "failures"))
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"] == arn_fn("fn") + ":live"
    assert record["responseContext"]["executedVersion"] == "1"


async def test_throttles_retry_without_using_attempts(env: Any) -> None:
    svc, ex, _ = env
    await svc.put_event_invoke_config("fn", None, {"MaximumRetryAttempts": 0})
    await svc.invoke("fn", None, b'{"id": "t", "throttle": 3}', invocation_type="Event")
    await eventually(lambda: stat(svc, "fn", "delivered"))
    assert len(ex.calls_of("fn")) == 4 and await stat(svc, "fn", "throttled") == 3


async def test_event_age_exceeded_is_counted_and_sent_on(env: Any) -> None:
    svc, ex, _ = env
    await svc.put_event_invoke_config("fn", None, {"MaximumEventAgeInSeconds": 60,
                                                   "DestinationConfig": {"OnFailure": {"Destination": arn_q("failures")}}})
    # an event queued 2 minutes ago (e.g. while the server was down): not invoked, expired
    await asyncio.to_thread(svc.async_store.apply, [Insert("old", "fn", None, b'{"id": "old"}', time.time() - 120)])
    [record] = await eventually(lambda: bodies(svc, "failures"))
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0 and ex.calls_of("fn") == []
    assert await stat(svc, "fn", "expired") == 1


async def test_event_age_checked_ahead_of_a_throttle_retry(env: Any) -> None:
    svc, ex, _ = env
    svc.events.delivery.settings = dataclasses.replace(FAST, retry_backoff_scale=1.0, throttle_backoff_base_s=1.0,
                                                 throttle_backoff_max_s=300.0)
    await svc.put_event_invoke_config("fn", None, {"MaximumEventAgeInSeconds": 60})
    # 59.5 s old: the first retry (1 s after the throttle) could only start after the maximum age
    await asyncio.to_thread(svc.async_store.apply, [Insert("edge", "fn", None, b'{"id": "e", "throttle": 99}', time.time() - 59.5)])
    await eventually(lambda: stat(svc, "fn", "expired"))
    assert len(ex.calls_of("fn")) == 1


async def test_zero_reserved_concurrency_goes_straight_to_failure(env: Any) -> None:
    svc, ex, _ = env
    await svc.put_function_concurrency("fn", 0)
    await svc.put_event_invoke_config("fn", None, {"DestinationConfig": {"OnFailure": {"Destination": arn_q("failures")}}})
    await svc.invoke("fn", None, b'{"id": "z"}', invocation_type="Event")
    [record] = await eventually(lambda: bodies(svc, "failures"))
    assert record["requestContext"]["condition"] == "ZeroReservedConcurrency"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and ex.calls_of("fn") == []


async def test_function_destination_receives_the_record_as_an_async_event(env: Any) -> None:
    svc, ex, code = env
    await create(svc, code, "audit")
    await svc.put_event_invoke_config("fn", None, {"DestinationConfig": {"OnFailure": {"Destination": arn_fn("audit")}}})
    await svc.invoke("fn", None, b'{"id": "f", "fail": -1}', invocation_type="Event", request_id="req-f")
    [event] = await eventually(lambda: ex.calls_of("audit"))
    assert event["requestContext"]["requestId"] == "req-f" and event["requestPayload"]["id"] == "f"
    assert await eventually(lambda: stat(svc, "audit", "delivered")) == 1


async def test_destination_loops_are_bounded_and_counted(env: Any) -> None:
    svc, ex, code = env
    await create(svc, code, "ping")
    await create(svc, code, "pong")
    svc.events.delivery.settings = dataclasses.replace(FAST, destination_depth_limit=5)
    await svc.put_event_invoke_config("ping", None, {"DestinationConfig": {"OnSuccess": {"Destination": arn_fn("pong")}}})
    await svc.put_event_invoke_config("pong", None, {"DestinationConfig": {"OnSuccess": {"Destination": arn_fn("ping")}}})
    await svc.invoke("ping", None, b"{}", invocation_type="Event")
    dropped = await eventually(lambda: _loop_dropped(svc))
    assert dropped == 1
    assert len(ex.calls_of("ping")) + len(ex.calls_of("pong")) == 6  # the client's event + 5 destination levels


async def _loop_dropped(svc: LambdaService) -> int:
    m = (await svc.async_metrics())["functions"]
    return sum(f.get("loop_dropped", 0) for f in m.values())


async def test_deleted_function_events_are_dropped_explicitly(env: Any) -> None:
    svc, _ex, code = env
    await create(svc, code, "gone")
    # due a little later, so that the function is gone by then
    await asyncio.to_thread(svc.async_store.apply, [Insert("g", "gone", None, b"{}", time.time(), due_at=time.time() + 0.3)])
    await svc.delete_function("gone")
    assert await eventually(lambda: stat(svc, "gone", "dropped_no_function")) == 1


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"MaximumRetryAttempts": 3}, Exception, "less than or equal to 2"),
    ({"MaximumEventAgeInSeconds": 59}, Exception, "greater than or equal to 60"),
    ({"MaximumEventAgeInSeconds": 21601}, Exception, "less than or equal to 21600"),
    ({"DestinationConfig": {"OnFailure": {"Destination": arn_fn("fn")}}}, InvalidParameterValueException, "its own destination"),
    ({"DestinationConfig": {"OnFailure": {"Destination": arn_fn("nobody")}}}, InvalidParameterValueException, "does not exist"),
    ({"DestinationConfig": {"OnSuccess": {"Destination": arn_q("nothere")}}}, InvalidParameterValueException, "create the local queue"),
    ({"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:000000000000:t"}}}, InvalidParameterValueException, "sns"),
    ({"DestinationConfig": "x"}, InvalidParameterValueException, "must be an object"),
])
async def test_event_invoke_config_validation(env: Any, params: dict, error: type, match: str) -> None:
    svc, _, _ = env
    with pytest.raises(error, match=match):
        await svc.put_event_invoke_config("fn", None, params)


async def test_event_invoke_config_crud(env: Any) -> None:
    svc, _, _ = env
    with pytest.raises(ResourceNotFoundException, match=r"function:fn:\$LATEST doesn't have an EventInvokeConfig"):
        await svc.get_event_invoke_config("fn", None)
    with pytest.raises(ResourceNotFoundException):
        await svc.put_event_invoke_config("fn", None, {"MaximumRetryAttempts": 1}, merge=True)
    await svc.put_event_invoke_config("fn", None, {"MaximumRetryAttempts": 1})
    cfg = await svc.put_event_invoke_config("fn", None, {"MaximumEventAgeInSeconds": 100}, merge=True)
    assert (cfg.max_retry, cfg.max_age) == (1, 100)
    cfg = await svc.put_event_invoke_config("fn", None, {"MaximumEventAgeInSeconds": 200})
    assert (cfg.max_retry, cfg.max_age) == (None, 200)  # Put overwrites the whole config
    with pytest.raises(ResourceNotFoundException, match="Function not found"):
        await svc.put_event_invoke_config("fn", "nope", {})
    await svc.publish_version("fn")
    await svc.put_event_invoke_config("fn", "1", {"MaximumRetryAttempts": 0})
    assert [c.qualifier for c in await svc.list_event_invoke_configs("fn")] == ["$LATEST", "1"]
    await svc.delete_event_invoke_config("fn", "1")
    with pytest.raises(ResourceNotFoundException):
        await svc.delete_event_invoke_config("fn", "1")


async def test_accept_validation_and_dead_letter_checks(env: Any, tmp_path: Path) -> None:
    svc, _, code = env
    with pytest.raises(RequestTooLargeException, match="262144 bytes for the InvokeAsync"):
        await svc.invoke_async("fn", b'"' + b"x" * 262_144 + b'"')
    with pytest.raises(ResourceNotFoundException):
        await svc.invoke("nobody", None, b"{}", invocation_type="Event")
    with pytest.raises(ResourceNotFoundException):
        await svc.invoke("fn", "7", b"{}", invocation_type="Event")
    with pytest.raises(InvalidParameterValueException, match="create the local queue"):
        await svc.update_function_configuration("fn", {"DeadLetterConfig": {"TargetArn": arn_q("nope")}})
    with pytest.raises(InvalidParameterValueException, match="sns"):
        await create(svc, code, "other", DeadLetterConfig={"TargetArn": "arn:aws:sns:us-east-1:000000000000:t"})
    assert (await svc.invoke_async("fn", b"{}")).request_id


async def test_dlq_of_the_alias_primary_version_when_nothing_ran(env: Any) -> None:
    svc, ex, _ = env
    await svc.create_queue("dlq-v1")
    await svc.update_function_configuration("fn", {"DeadLetterConfig": {"TargetArn": arn_q("dlq-v1")}})
    await svc.publish_version("fn")
    await svc.update_function_configuration("fn", {"DeadLetterConfig": {"TargetArn": arn_q("failures")}})
    await svc.create_alias("fn", "live", "1")
    await svc.put_function_concurrency("fn", 0)
    await svc.invoke("fn", "live", b'{"id": "v"}', invocation_type="Event")
    [msg] = await eventually(lambda: svc.read_queue("dlq-v1", 10))
    assert msg.body == '{"id": "v"}' and "ReservedConcurrentExecutions" in msg.attributes["ErrorMessage"]["StringValue"]
    assert await svc.read_queue("failures", 10) == [] and ex.calls_of("fn") == []


async def test_vanished_destination_queue_is_counted_and_logged(env: Any, caplog: pytest.LogCaptureFixture) -> None:
    svc, _ex, _ = env
    await svc.create_queue("temp")
    await svc.put_event_invoke_config("fn", None, {"DestinationConfig": {"OnSuccess": {"Destination": arn_q("temp")}}})
    await svc.delete_queue("temp")
    await svc.invoke("fn", None, b'{"id": "q"}', invocation_type="Event")
    assert await eventually(lambda: stat(svc, "fn", "destination_failures")) == 1
    assert await stat(svc, "fn", "delivered") == 1
    assert any("queue temp does not exist" in r.getMessage() for r in caplog.records)


async def test_shutdown_leaves_unfinished_events_queued_for_the_next_start(tmp_path: Path) -> None:
    ex = ScriptedExecutor()
    svc = LambdaService(tmp_path / "state", executor=ex, async_settings=FAST)
    await svc.start()
    await create(svc, make_code_dir(tmp_path))
    for i in range(20):  # accepted by a process that does not deliver (like a POP)
        await svc.invoke("fn", None, b'{"id": %d}' % i, invocation_type="Event")
    await svc.close()
    assert ex.invocations == []
    again = LambdaService(tmp_path / "state", executor=ex, async_settings=FAST)
    await again.start()
    await again.start_async_delivery()
    try:
        assert await eventually(lambda: stat(again, "fn", "delivered")) and await eventually(
            lambda: _delivered(again, 20))
        assert sorted(p["id"] for p in ex.calls_of("fn")) == list(range(20))
    finally:
        await again.close()


async def _delivered(svc: LambdaService, n: int) -> bool:
    return await stat(svc, "fn", "delivered") == n


async def test_an_event_above_the_synchronous_request_limit_is_still_delivered(env: Any) -> None:
    """A destination record can exceed Invoke's 6 MB request limit (request and response payloads together):
    delivery runs it as before, not through the prepared target (whose request check would refuse it)."""
    svc, ex, _ = env
    big = b'{"id": "big", "pad": "' + b"x" * SYNC_PAYLOAD_LIMIT + b'"}'
    await asyncio.to_thread(svc.async_store.apply, [Insert("big", "fn", None, big, time.time())])
    await svc.invoke("fn", None, b'{"id": "small"}', invocation_type="Event")


    async def both_delivered() -> bool:
        return await stat(svc, "fn", "delivered") == 2

    await eventually(both_delivered)
    assert sorted(event["id"] for _fn, _version, event in ex.invocations) == ["big", "small"]
    assert await stat(svc, "fn", "failed") == 0


async def test_idle_delivery_waits_for_writes_and_due_times_instead_of_polling(env: Any,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle, the loop looks again when the queue's files are written (edge.inotify), when the next event falls due,
    or once per FALLBACK_POLL_S; not every poll_interval_s (10 ms here). Events queued by another process (another
    connection: no wake() in this one) and events due later are still delivered on time."""
    from edge.inotify import FALLBACK_POLL_S
    from edge.invocation.events.store import AsyncStore

    svc, ex, _ = env
    await asyncio.sleep(0.2)  # the fixture's writes are seen; the loop is idle
    claims: list[int] = []
    real_claim = svc.async_store.claim_due

    def counting_claim(limit: int) -> Any:
        claims.append(limit)
        return real_claim(limit)

    monkeypatch.setattr(svc.async_store, "claim_due", counting_claim)
    await asyncio.sleep(0.5)
    assert len(claims) <= 1, f"{len(claims)} claims in 0.5 s of quiet (fallback every {FALLBACK_POLL_S} s)"
    other = AsyncStore(svc.async_store.db.path)  # as another process would queue one
    try:
        started = time.monotonic()
        await asyncio.to_thread(other.apply, [Insert("x1", "fn", None, b'{"id": "x1"}', time.time())])
        await eventually(lambda: len(ex.calls_of("fn")) == 1)
        assert time.monotonic() - started < 0.5
        # due in 0.6 s: written now (the wake finds nothing due), delivered when due, not at the 1 s fallback
        due = time.time() + 0.6
        await asyncio.to_thread(other.apply, [Insert("x2", "fn", None, b'{"id": "x2"}', time.time(), due_at=due)])
        await eventually(lambda: len(ex.calls_of("fn")) == 2)
        assert due - 0.05 <= time.time() < due + 0.3
    finally:
        await asyncio.to_thread(other.close)
