"""Asynchronous invocation: settings, configuration values, ARNs of destinations, and the pure decision logic.

Nothing here does I/O. The semantics follow reference §0 (facts 10, 11), §4.3 and §4.5:

- function errors (exception, timeout, crash) are retried up to ``MaximumRetryAttempts`` (0..2, default 2),
  about 60 s and then 120 s later (scaled by :attr:`AsyncSettings.retry_backoff_scale`);
- throttles are retried with exponential backoff from 1 s to 5 min (scaled) without using up attempts;
- an event older than ``MaximumEventAgeInSeconds`` (60..21600, default 21600) is not retried: it fails with
  ``EventAgeExceeded``. Like LocalStack, the age is checked *ahead*: a retry that could only start after the
  maximum age is not scheduled;
- ``ReservedConcurrentExecutions = 0``: straight to failure with ``ZeroReservedConcurrency`` (no invoke).

Destination targets supported by edgelab: another function (``arn:aws:lambda:...:function:NAME[:QUALIFIER]``)
and a local queue (``arn:aws:sqs:REGION:000000000000:NAME``). SNS, EventBridge and S3 targets are refused
with a clear error.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

from edge.invocation.errors import InvalidParameterValueException
from edge.invocation.models import ACCOUNT_ID

__all__ = [
    "AsyncSettings",
    "Condition",
    "Decision",
    "Destination",
    "EventInvokeConfig",
    "decide",
    "destination_record",
    "dlq_attributes",
    "iso_timestamp",
    "parse_destination",
    "queue_arn",
]

DEFAULT_MAX_RETRY = 2
DEFAULT_MAX_AGE = 21_600
RETRY_DELAYS_S = (60.0, 120.0)  # before the first and the second retry after a function error
INVOKE_ASYNC_PAYLOAD_LIMIT = 262_144
DLQ_ERROR_MESSAGE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class AsyncSettings:
    """Knobs of asynchronous delivery (``[async]`` in the settings TOML).

    ``retry_backoff_scale`` multiplies every delay: 1.0 is AWS (60 s / 120 s retries, 1 s .. 5 min throttle
    backoff); tests use e.g. 0.001. ``destination_depth_limit`` bounds chains of function destinations
    (a function that is, directly or not, its own destination): deeper records are not delivered, the
    reason is logged and counted (``loop_dropped``).
    """

    retry_backoff_scale: float = 1.0
    throttle_backoff_base_s: float = 1.0
    throttle_backoff_max_s: float = 300.0
    delivery_concurrency: int = 64
    poll_interval_s: float = 0.05  # idle re-check of the durable queue (other processes may enqueue)
    destination_depth_limit: int = 16
    esm_poll_interval_s: float = 0.2  # idle event source mapping poll


class Condition(enum.StrEnum):
    SUCCESS = "Success"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"
    ZERO_RESERVED = "ZeroReservedConcurrency"


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed destination ARN: ``kind`` is ``lambda`` (name, qualifier) or ``sqs`` (queue name)."""

    arn: str
    kind: str
    name: str
    qualifier: str | None = None


_LAMBDA_ARN = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9_-]{1,64})"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)
_SQS_ARN = re.compile(r"^arn:aws:sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>[a-zA-Z0-9_-]{1,80})$")
_QUEUE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,80}$")


def valid_queue_name(name: str) -> bool:
    return bool(_QUEUE_NAME.match(name))


def queue_arn(name: str, region: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"


def parse_destination(arn: Any, region: str, member: str = "Destination") -> Destination:
    """Validate a destination/DLQ/event-source ARN; only lambda and sqs (local queue) ARNs are supported."""
    if not isinstance(arn, str) or not arn:
        raise InvalidParameterValueException(f"{member} must be a non-empty ARN string")
    m = _LAMBDA_ARN.match(arn)
    kind = "lambda"
    if m is None:
        m, kind = _SQS_ARN.match(arn), "sqs"
    if m is None:
        service = arn.split(":")[2] if arn.count(":") >= 2 else ""
        if service in ("sns", "events", "s3", "kafka"):
            raise InvalidParameterValueException(
                f"The {member} {arn} is a {service} ARN: edgelab supports only lambda function ARNs and local "
                f"queues addressed as arn:aws:sqs:{region}:{ACCOUNT_ID}:NAME."
            )
        raise InvalidParameterValueException(f"The {member} ARN {arn} is invalid.")
    if m["region"] != region or m["account"] != ACCOUNT_ID:
        raise InvalidParameterValueException(
            f"The {member} {arn} must be in region {region} and account {ACCOUNT_ID} (edgelab's local account)."
        )
    return Destination(arn, kind, m["name"], m.groupdict().get("qualifier"))


@dataclass(frozen=True, slots=True)
class EventInvokeConfig:
    """One FunctionEventInvokeConfig (per function qualifier). ``None`` members were not set."""

    function_name: str
    qualifier: str
    max_retry: int | None = None
    max_age: int | None = None
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = 0.0

    @property
    def retries(self) -> int:
        return DEFAULT_MAX_RETRY if self.max_retry is None else self.max_retry

    @property
    def age(self) -> int:
        return DEFAULT_MAX_AGE if self.max_age is None else self.max_age


DEFAULT_CONFIG = EventInvokeConfig("", "$LATEST")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with an event after one delivery attempt: ``retry_at`` (epoch s) or a final ``condition``."""

    retry_at: float | None = None
    condition: Condition | None = None
    throttled: bool = False


def decide(
    *, outcome: str, attempts: int, throttles: int, received_at: float, now: float, cfg: EventInvokeConfig,
    settings: AsyncSettings, reserved_zero: bool = False,
) -> Decision:
    """Decide after an attempt. ``outcome``: ``ok`` | ``function_error`` | ``throttled``; ``attempts`` and
    ``throttles`` already include this attempt."""
    if outcome == "ok":
        return Decision(condition=Condition.SUCCESS)
    if outcome == "throttled":
        if reserved_zero:
            return Decision(condition=Condition.ZERO_RESERVED)
        delay = min(settings.throttle_backoff_base_s * 2 ** max(throttles - 1, 0), settings.throttle_backoff_max_s)
        return _retry_or_expire(now, delay * settings.retry_backoff_scale, received_at, cfg, throttled=True)
    if attempts > cfg.retries:
        return Decision(condition=Condition.RETRIES_EXHAUSTED)
    delay = RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S)) - 1] * settings.retry_backoff_scale
    return _retry_or_expire(now, delay, received_at, cfg, throttled=False)


def _retry_or_expire(now: float, delay: float, received_at: float, cfg: EventInvokeConfig, *, throttled: bool) -> Decision:
    at = now + delay
    if at - received_at > cfg.age:
        return Decision(condition=Condition.EVENT_AGE_EXCEEDED, throttled=throttled)
    return Decision(retry_at=at, throttled=throttled)


def iso_timestamp(epoch_s: float) -> str:
    """``2019-11-24T23:08:25.651Z`` (ms, Z), as in AWS destination records."""
    t = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _json_or_text(payload: bytes) -> Any:
    try:
        return orjson.loads(payload) if payload.strip() else None
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")


def destination_record(
    *, request_id: str, function_arn: str, condition: Condition, invoke_count: int, request_payload: bytes,
    now: float, executed_version: str | None = None, response_payload: bytes | None = None,
    function_error: bool = False,
) -> bytes:
    """AWS's invocation record (version 1.0). For ZeroReservedConcurrency there is no responseContext and no
    responsePayload (AWS snapshot); otherwise statusCode 200, executedVersion, functionError when failed."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_timestamp(now),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": str(condition),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(request_payload),
    }
    if condition is not Condition.ZERO_RESERVED and executed_version is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            response["functionError"] = "Unhandled"
        record["responseContext"] = response
        record["responsePayload"] = _json_or_text(response_payload or b"")
    return orjson.dumps(record)


def dlq_attributes(request_id: str, error_payload: bytes | None, condition: Condition) -> dict[str, Any]:
    """SQS MessageAttributes of a DLQ message: RequestID, ErrorCode (Number, "200"), ErrorMessage (<= 1 KB)."""
    message = ""
    parsed = _json_or_text(error_payload or b"")
    if isinstance(parsed, dict):
        message = str(parsed.get("errorMessage") or parsed.get("errorType") or "")
    if not message:
        message = {
            Condition.EVENT_AGE_EXCEEDED: "Event age exceeded MaximumEventAgeInSeconds",
            Condition.ZERO_RESERVED: "Function has ReservedConcurrentExecutions set to 0",
        }.get(condition, "Function invocation failed")
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": message.encode()[:DLQ_ERROR_MESSAGE_LIMIT].decode("utf-8", "ignore")},
    }
