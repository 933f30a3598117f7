"""Event source mappings with a local queue as the source (AWS's SQS event source, on edgelab's queues).

:class:`EsmOps` (blocking, registry connection): Create/Get/Update/Delete/List with AWS's validation rules
(BatchSize 1..10000, default 10, more than 10 needs MaximumBatchingWindowInSeconds >= 1; window 0..300;
FunctionResponseTypes ⊆ [ReportBatchItemFailures]; one mapping per (queue, function)).

:class:`~.async_esm_runner.EsmRunner` (the deliverer process): one poller task per enabled mapping. A poller receives up to
BatchSize messages (hiding them for the queue's visibility timeout), waits up to the batching window to fill
the batch, invokes the function synchronously with an SQS-shaped event, then

- success: deletes the batch (with ReportBatchItemFailures: all but the reported ``itemIdentifier`` s; an
  invalid report fails the whole batch, as AWS);
- function error: leaves the messages to reappear after the visibility timeout (SQS-style retry);
- throttle: makes the messages visible again after a short backoff without counting the receive;
- a message received more than ``1 + MaximumRetryAttempts`` times (edgelab extension, default 2 retries)
  while ``DestinationConfig.OnFailure`` is set goes to that destination (an invocation record whose
  requestPayload is the failed records) and is deleted. Without a failure destination messages are retried
  until the user purges them (AWS SQS behaviour without a redrive policy).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from edge.invocation.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
    function_not_found,
    validation_error,
)
from edge.invocation.events.config import check_destination
from edge.invocation.events.model import parse_destination
from edge.invocation.registry.db import Database

__all__ = ["EsmOps", "MappingRecord"]

DEFAULT_BATCH_SIZE = 10
DEFAULT_ESM_RETRIES = 2
_COLS = "uuid, function_name, qualifier, source_arn, config, enabled, last_modified"


@dataclass(frozen=True, slots=True)
class MappingRecord:
    uuid: str
    function_name: str
    qualifier: str | None
    source_arn: str
    batch_size: int
    window_s: int
    response_types: tuple[str, ...]
    on_failure: str | None
    max_retry: int | None  # None: not set (default 2 when a failure destination exists)
    enabled: bool
    last_modified: float
    state: str = ""  # transient state reported by the call that returned the record

    @property
    def queue(self) -> str:
        return self.source_arn.rsplit(":", 1)[1]

    @property
    def retries(self) -> int:
        return DEFAULT_ESM_RETRIES if self.max_retry is None else self.max_retry

    def config_json(self) -> str:
        return json.dumps({"BatchSize": self.batch_size, "MaximumBatchingWindowInSeconds": self.window_s,
                           "FunctionResponseTypes": list(self.response_types), "OnFailure": self.on_failure,
                           "MaximumRetryAttempts": self.max_retry})


def _from_row(r: tuple[Any, ...]) -> MappingRecord:
    cfg = json.loads(r[4])
    return MappingRecord(
        uuid=r[0],
        function_name=r[1],
        qualifier=r[2],
        source_arn=r[3],
        batch_size=cfg["BatchSize"],
        window_s=cfg["MaximumBatchingWindowInSeconds"],
        response_types=tuple(cfg["FunctionResponseTypes"]),
        on_failure=cfg["OnFailure"],
        max_retry=cfg.get("MaximumRetryAttempts"),
        enabled=bool(r[5]),
        last_modified=r[6],
        state="Enabled" if r[5] else "Disabled",
    )


class EsmOps:
    def __init__(self, db: Database, region: str, clock: Callable[[], float], changed: Callable[[], None],
                 queue_exists: Callable[[str], bool]) -> None:
        self.db = db
        self.region = region
        self.clock = clock
        self._changed = changed
        self._queue_exists = queue_exists

    def _function(self, cur: sqlite3.Cursor, value: Any) -> tuple[str, str | None]:
        from edge.invocation.registry.names import parse_function_name

        if not isinstance(value, str) or not value:
            raise InvalidParameterValueException("FunctionName is required")
        ref = parse_function_name(value, None, self.region)
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (ref.name,)).fetchone() is None:
            raise function_not_found(ref.name, self.region, ref.qualifier)
        q = ref.qualifier
        if q is not None and not (
            cur.execute("SELECT 1 FROM versions WHERE function_name=? AND version=?", (ref.name, q)).fetchone()
            or cur.execute("SELECT 1 FROM aliases WHERE function_name=? AND name=?", (ref.name, q)).fetchone()
        ):
            raise function_not_found(ref.name, self.region, q)
        return ref.name, q

    def _source(self, value: Any) -> str:
        dest = parse_destination(value, self.region, "EventSourceArn")
        if dest.kind != "sqs":
            raise InvalidParameterValueException(
                "EventSourceArn must be a local queue (arn:aws:sqs:REGION:000000000000:NAME): edgelab's event "
                "source mappings read local queues only."
            )
        if not self._queue_exists(dest.name):
            raise InvalidParameterValueException(f"The event source {value} does not exist (no such local queue).")
        return str(value)

    def _apply(self, cur: sqlite3.Cursor, rec: MappingRecord, params: Mapping[str, Any]) -> MappingRecord:
        changes: dict[str, Any] = {}
        if params.get("BatchSize") is not None:
            changes["batch_size"] = _int(params["BatchSize"], "batchSize", 1, 10000)
        if params.get("MaximumBatchingWindowInSeconds") is not None:
            changes["window_s"] = _int(params["MaximumBatchingWindowInSeconds"], "maximumBatchingWindowInSeconds", 0, 300)
        if params.get("MaximumRetryAttempts") is not None:
            changes["max_retry"] = _int(params["MaximumRetryAttempts"], "maximumRetryAttempts", -1, 10000)
        if params.get("Enabled") is not None:
            if not isinstance(params["Enabled"], bool):
                raise InvalidParameterValueException("Enabled must be a boolean")
            changes["enabled"] = params["Enabled"]
        if params.get("FunctionResponseTypes") is not None:
            types = params["FunctionResponseTypes"]
            if not isinstance(types, list) or any(t != "ReportBatchItemFailures" for t in types):
                raise validation_error(types, "functionResponseTypes",
                                       "Member must satisfy enum value set: [ReportBatchItemFailures]")
            changes["response_types"] = tuple(dict.fromkeys(types))
        if params.get("DestinationConfig") is not None:
            dc = params["DestinationConfig"]
            target = (dc.get("OnFailure") or {}) if isinstance(dc, Mapping) else None
            if not isinstance(target, Mapping):
                raise InvalidParameterValueException("DestinationConfig.OnFailure must be an object")
            arn = target.get("Destination")
            changes["on_failure"] = None if not arn else check_destination(
                arn, region=self.region, own_name=None, member="OnFailure destination", queue_exists=self._queue_exists,
                function_exists=lambda n: cur.execute("SELECT 1 FROM functions WHERE name=?", (n,)).fetchone() is not None,
            )
        if params.get("FunctionName") is not None:
            changes["function_name"], changes["qualifier"] = self._function(cur, params["FunctionName"])
        out = replace(rec, **changes)
        if out.batch_size > 10 and out.window_s < 1:
            raise InvalidParameterValueException(
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
            )
        return out

    def create(self, params: Mapping[str, Any]) -> MappingRecord:
        with self.db.write() as cur:
            source = self._source(params.get("EventSourceArn"))
            name, qualifier = self._function(cur, params.get("FunctionName"))
            for (other,) in cur.execute("SELECT uuid FROM event_source_mappings WHERE source_arn=? AND function_name=?",
                                        (source, name)).fetchall():
                raise ResourceConflictException(
                    f'An event source mapping with SQS arn (" {source} ") and function (" {name} ") already exists. '
                    f"Please update or delete the existing mapping with UUID {other}"
                )
            base = MappingRecord(
                uuid=str(uuid.uuid4()),
                function_name=name,
                qualifier=qualifier,
                source_arn=source,
                batch_size=DEFAULT_BATCH_SIZE,
                window_s=0,
                response_types=(),
                on_failure=None,
                max_retry=None,
                enabled=True,
                last_modified=0.0,
            )
            rec = replace(self._apply(cur, base, {k: v for k, v in params.items() if k != "FunctionName"}),
                          last_modified=round(self.clock(), 3))
            self._write(cur, rec)
        self._changed()
        return replace(rec, state="Creating")

    def _write(self, cur: sqlite3.Cursor, rec: MappingRecord) -> None:
        cur.execute(f"INSERT OR REPLACE INTO event_source_mappings({_COLS}) VALUES (?,?,?,?,?,?,?)",
                    (rec.uuid, rec.function_name, rec.qualifier, rec.source_arn, rec.config_json(), int(rec.enabled),
                     rec.last_modified))

    def _get(self, cur: sqlite3.Cursor, uuid_: str) -> MappingRecord:
        row = cur.execute(f"SELECT {_COLS} FROM event_source_mappings WHERE uuid=?", (uuid_,)).fetchone()
        if row is None:
            raise ResourceNotFoundException(f"The resource you requested does not exist. (Service: Lambda, UUID: {uuid_})")
        return _from_row(row)

    def get(self, uuid_: str) -> MappingRecord:
        with self.db.read() as cur:
            return self._get(cur, uuid_)

    def update(self, uuid_: str, params: Mapping[str, Any]) -> MappingRecord:
        with self.db.write() as cur:
            current = self._get(cur, uuid_)
            rec = replace(self._apply(cur, current, params), last_modified=round(self.clock(), 3))
            self._write(cur, rec)
        self._changed()
        if rec.enabled != current.enabled:
            return replace(rec, state="Enabling" if rec.enabled else "Disabling")
        return replace(rec, state="Updating")

    def delete(self, uuid_: str) -> MappingRecord:
        with self.db.write() as cur:
            rec = self._get(cur, uuid_)
            cur.execute("DELETE FROM event_source_mappings WHERE uuid=?", (uuid_,))
        self._changed()
        return replace(rec, state="Deleting")

    def list(self, source_arn: str | None = None, function_name: str | None = None) -> list[MappingRecord]:
        with self.db.read() as cur:
            rows = cur.execute(f"SELECT {_COLS} FROM event_source_mappings ORDER BY last_modified, uuid").fetchall()
        recs = [_from_row(r) for r in rows]
        return [r for r in recs if (source_arn is None or r.source_arn == source_arn)
                and (function_name is None or r.function_name == function_name)]


def _int(value: Any, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{member} must be an integer")
    if not low <= value <= high:
        raise validation_error(value, member, f"Member must have value between {low} and {high}")
    return value
