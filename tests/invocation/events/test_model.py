"""Pure logic of asynchronous invocation: retry/throttle/expiry decisions, records, destination ARNs."""

from __future__ import annotations

import json

import pytest

from edge.invocation.errors import InvalidParameterValueException
from edge.invocation.events.model import (
    AsyncSettings,
    Condition,
    EventInvokeConfig,
    decide,
    destination_record,
    dlq_attributes,
    iso_timestamp,
    parse_destination,
)

AWS = AsyncSettings()
CFG = EventInvokeConfig("fn", "$LATEST")


def test_function_errors_retry_after_60_then_120_seconds_then_exhaust() -> None:
    first = decide(outcome="function_error", attempts=1, throttles=0, received_at=0, now=10, cfg=CFG, settings=AWS)
    assert first.retry_at == 70 and first.condition is None
    second = decide(outcome="function_error", attempts=2, throttles=0, received_at=0, now=80, cfg=CFG, settings=AWS)
    assert second.retry_at == 200
    third = decide(outcome="function_error", attempts=3, throttles=0, received_at=0, now=210, cfg=CFG, settings=AWS)
    assert third.condition is Condition.RETRIES_EXHAUSTED and third.retry_at is None


def test_max_retry_zero_and_scale() -> None:
    cfg = EventInvokeConfig("fn", "$LATEST", max_retry=0)
    assert decide(outcome="function_error", attempts=1, throttles=0, received_at=0, now=0, cfg=cfg,
                  settings=AWS).condition is Condition.RETRIES_EXHAUSTED
    fast = AsyncSettings(retry_backoff_scale=0.001)
    assert decide(outcome="function_error", attempts=1, throttles=0, received_at=0, now=5, cfg=CFG,
                  settings=fast).retry_at == pytest.approx(5.06)


def test_throttles_back_off_exponentially_capped_and_do_not_use_attempts() -> None:
    delays = [decide(outcome="throttled", attempts=0, throttles=n, received_at=0, now=0, cfg=CFG, settings=AWS).retry_at
              for n in range(1, 12)]
    assert delays[:4] == [1, 2, 4, 8] and max(delays) == 300 and delays[-1] == 300


def test_event_age_is_checked_ahead() -> None:
    cfg = EventInvokeConfig("fn", "$LATEST", max_age=60)
    d = decide(outcome="function_error", attempts=1, throttles=0, received_at=0, now=1, cfg=cfg, settings=AWS)
    assert d.condition is Condition.EVENT_AGE_EXCEEDED  # the 60 s retry would start after the maximum age
    d = decide(outcome="throttled", attempts=0, throttles=9, received_at=0, now=0, cfg=cfg, settings=AWS)
    assert d.condition is Condition.EVENT_AGE_EXCEEDED and d.throttled


def test_zero_reserved_and_success() -> None:
    assert decide(outcome="throttled", attempts=0, throttles=1, received_at=0, now=0, cfg=CFG, settings=AWS,
                  reserved_zero=True).condition is Condition.ZERO_RESERVED
    assert decide(outcome="ok", attempts=0, throttles=0, received_at=0, now=0, cfg=CFG,
                  settings=AWS).condition is Condition.SUCCESS


def test_destination_record_shapes() -> None:
    rec = json.loads(destination_record(
        request_id="r1", function_arn="arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
        condition=Condition.RETRIES_EXHAUSTED, invoke_count=3, request_payload=b'{"a": 1}', now=1574636905.651,
        executed_version="$LATEST", response_payload=b'{"errorMessage": "x", "errorType": "E"}', function_error=True,
    ))
    assert rec == {
        "version": "1.0", "timestamp": "2019-11-24T23:08:25.651Z",
        "requestContext": {"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"a": 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "x", "errorType": "E"},
    }
    zero = json.loads(destination_record(request_id="r2", function_arn="a", condition=Condition.ZERO_RESERVED,
                                         invoke_count=0, request_payload=b"{}", now=0))
    assert "responseContext" not in zero and "responsePayload" not in zero
    assert zero["requestContext"]["approximateInvokeCount"] == 0 and zero["requestContext"]["condition"] == "ZeroReservedConcurrency"
    ok = json.loads(destination_record(request_id="r3", function_arn="a", condition=Condition.SUCCESS, invoke_count=1,
                                       request_payload=b"{}", now=0, executed_version="2", response_payload=b"[1]"))
    assert ok["responseContext"] == {"statusCode": 200, "executedVersion": "2"} and ok["responsePayload"] == [1]


def test_dlq_attributes() -> None:
    attrs = dlq_attributes("rid", b'{"errorMessage": "' + b"m" * 2000 + b'"}', Condition.RETRIES_EXHAUSTED)
    assert attrs["RequestID"] == {"DataType": "String", "StringValue": "rid"}
    assert attrs["ErrorCode"] == {"DataType": "Number", "StringValue": "200"}
    assert len(attrs["ErrorMessage"]["StringValue"]) == 1024
    assert "MaximumEventAgeInSeconds" in dlq_attributes("r", None, Condition.EVENT_AGE_EXCEEDED)["ErrorMessage"]["StringValue"]


def test_iso_timestamp() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(("arn", "kind", "name", "qualifier"), [
    ("arn:aws:lambda:us-east-1:000000000000:function:target", "lambda", "target", None),
    ("arn:aws:lambda:us-east-1:000000000000:function:target:live", "lambda", "target", "live"),
    ("arn:aws:lambda:us-east-1:000000000000:function:target:$LATEST", "lambda", "target", "$LATEST"),
    ("arn:aws:sqs:us-east-1:000000000000:failures", "sqs", "failures", None),
])
def test_parse_destination(arn: str, kind: str, name: str, qualifier: str | None) -> None:
    d = parse_destination(arn, "us-east-1")
    assert (d.kind, d.name, d.qualifier) == (kind, name, qualifier)


@pytest.mark.parametrize(("arn", "match"), [
    ("arn:aws:sns:us-east-1:000000000000:topic", "only lambda function ARNs and local queues"),
    ("arn:aws:events:us-east-1:000000000000:event-bus/default", "only lambda"),
    ("arn:aws:sqs:eu-west-1:000000000000:q", "must be in region us-east-1"),
    ("arn:aws:sqs:us-east-1:123456789012:q", "account 000000000000"),
    ("not-an-arn", "is invalid"),
    ("", "non-empty"),
    (7, "non-empty"),
])
def test_parse_destination_errors(arn: object, match: str) -> None:
    with pytest.raises(InvalidParameterValueException, match=match):
        parse_destination(arn, "us-east-1")
