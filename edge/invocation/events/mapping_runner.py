"""The deliverer side of event source mappings: one poller task per enabled mapping (see :mod:`.mappings`
for the semantics; the supervisor and the pollers are owned through :class:`~edge.tasks.TaskOwner` instances), the
SQS-shaped event and the ReportBatchItemFailures parser."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from edge.invocation.errors import LambdaError, ResourceNotFoundException
from edge.invocation.events.mappings import EsmOps, MappingRecord
from edge.invocation.events.model import AsyncSettings, iso_timestamp, parse_destination
from edge.invocation.events.queues import QueueMessage, QueueOps
from edge.invocation.events.store import AsyncStore, Count, Insert, Message, Op
from edge.invocation.events.target import EventTarget
from edge.invocation.models import ACCOUNT_ID, Outcome, function_arn
from edge.tasks import TaskOwner, wait_set

__all__ = ["EsmRunner", "failed_items", "sqs_event"]

log = logging.getLogger("edgelab.invocation.esm")


def sqs_event(messages: list[QueueMessage], source_arn: str, region: str) -> bytes:
    """The SQS event a function receives from an SQS event source mapping."""
    records = [
        {
            "messageId": m.message_id,
            "receiptHandle": m.receipt_handle,
            "body": m.body,
            "attributes": {
                "ApproximateReceiveCount": str(m.receive_count),
                "SentTimestamp": str(int(m.sent_at * 1000)),
                "SenderId": ACCOUNT_ID,
                "ApproximateFirstReceiveTimestamp": str(int((m.first_received_at or m.sent_at) * 1000)),
            },
            "messageAttributes": {k: {"stringValue": v.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                                      "dataType": v.get("DataType", "String")}
                                  for k, v in m.attributes.items() if isinstance(v, dict)},
            "md5OfBody": m.md5_of_body,
            "eventSource": "aws:sqs",
            "eventSourceARN": source_arn,
            "awsRegion": region,
        }
        for m in messages
    ]  # fmt: skip
    return orjson.dumps({"Records": records})


def failed_items(payload: bytes, ids: set[str]) -> set[str] | None:
    """ReportBatchItemFailures: the reported message ids; None when the response is invalid (whole batch
    failed, as AWS treats an unparsable report or an unknown/empty itemIdentifier)."""
    try:
        data = orjson.loads(payload) if payload.strip() else None
    except orjson.JSONDecodeError:
        return None
    if data is None or not isinstance(data, dict) or data.get("batchItemFailures") is None:
        return set()
    items = data["batchItemFailures"]
    if not isinstance(items, list):
        return None
    out: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in ids:
            return None
        out.add(ident)
    return out


class EsmRunner:
    """One poller task per enabled mapping; reconciles with the table on :meth:`wake` and every second.

    Runs batches through ``target``; reads the mappings from ``mappings``, messages from ``queues``, records its
    counters in ``store``; ``region`` is the registry's (home) region, for ARNs and the event's ``awsRegion``."""

    def __init__(self, target: EventTarget, settings: AsyncSettings, *, mappings: EsmOps, queues: QueueOps,
                 store: AsyncStore, region: str) -> None:
        self.target = target
        self.settings = settings
        self.mappings = mappings
        self.queues = queues
        self.store = store
        self.region = region
        # the mapping each running poller was started for (its task is owned by _poller_tasks, keyed by uuid)
        self._pollers: dict[str, tuple[MappingRecord, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._supervisor = TaskOwner("edgelab-esm")
        self._poller_tasks = TaskOwner("edgelab-esm-pollers")

    async def start(self) -> None:
        self._supervisor.spawn(self._supervise(), name="supervisor")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self._supervisor.aclose()
        await self._poller_tasks.aclose()
        self._pollers.clear()

    async def _supervise(self) -> None:
        while True:
            try:
                await self._reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event source mappings: reconcile failed")
            await wait_set(self._wake, 1.0)  # (not asyncio.wait_for: see wait_set)
            self._wake.clear()

    async def _reconcile(self) -> None:
        wanted = {r.uuid: r for r in await asyncio.to_thread(self.mappings.list) if r.enabled}
        for key, (rec, task) in list(self._pollers.items()):
            if key not in wanted or replace(wanted[key], state="") != replace(rec, state=""):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                del self._pollers[key]
        for key, rec in wanted.items():
            if key not in self._pollers:
                poller = self._poller_tasks.spawn(self._poll(rec), key=key)
                if poller is not None:  # None: closing
                    self._pollers[key] = (rec, poller)

    async def _poll(self, rec: MappingRecord) -> None:
        queues = self.queues
        problem = ""  # logged once per change, not once per poll
        while True:
            try:
                batch = await asyncio.to_thread(queues.receive, rec.queue, rec.batch_size)
                problem = ""
                if not batch:
                    await asyncio.sleep(self.settings.esm_poll_interval_s)
                    continue
                if len(batch) < rec.batch_size and rec.window_s > 0:
                    deadline = time.monotonic() + rec.window_s
                    while len(batch) < rec.batch_size and time.monotonic() < deadline:
                        await asyncio.sleep(min(self.settings.esm_poll_interval_s, max(deadline - time.monotonic(), 0)))
                        batch += await asyncio.to_thread(queues.receive, rec.queue, rec.batch_size - len(batch))
                await self._handle(rec, batch)
            except asyncio.CancelledError:
                raise
            except ResourceNotFoundException as exc:  # queue or function deleted: wait for the mapping to change
                if exc.message != problem:
                    log.error("event source mapping %s paused: %s", rec.uuid, exc.message)
                    problem = exc.message
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("event source mapping %s: batch handling failed", rec.uuid)
                await asyncio.sleep(1.0)

    async def _handle(self, rec: MappingRecord, batch: list[QueueMessage]) -> None:
        region = self.region
        payload = sqs_event(batch, rec.source_arn, region)
        request_id = str(uuid.uuid4())
        snap = await self.target.snapshot_of(rec.function_name)
        try:
            result = await self.target.invoke_event_now(rec.function_name, rec.qualifier, payload, request_id, snap)
        except LambdaError as exc:
            log.error("event source mapping %s: invoking %s failed: %s", rec.uuid, rec.function_name, exc.message)
            result = None
        fn = rec.function_name
        ops: list[Op] = [Count(fn, "esm_batches")]
        if result is not None and result.outcome is Outcome.THROTTLED:
            await asyncio.to_thread(self.queues.release, rec.queue, [m.id for m in batch],
                                    self.settings.throttle_backoff_base_s * self.settings.retry_backoff_scale)
            await asyncio.to_thread(self.store.apply, [*ops, Count(fn, "esm_throttled")])
            return
        ok = result is not None and result.outcome is Outcome.OK
        failed: set[str]
        if result is not None and ok and "ReportBatchItemFailures" in rec.response_types:
            reported = failed_items(result.payload, {m.message_id for m in batch})
            failed = {m.message_id for m in batch} if reported is None else reported
        else:
            failed = set() if ok else {m.message_id for m in batch}
        done = [m.id for m in batch if m.message_id not in failed]
        exhausted = [m for m in batch if m.message_id in failed and rec.on_failure and rec.retries >= 0
                     and m.receive_count >= 1 + rec.retries]
        if failed:
            ops.append(Count(fn, "esm_batch_failures"))
        if exhausted:
            ops += self._failure_ops(rec, exhausted, request_id, result, region)
            done += [m.id for m in exhausted]
        if done:
            await asyncio.to_thread(self.queues.delete_ids, rec.queue, done)
        await asyncio.to_thread(self.store.apply, ops)

    def _failure_ops(self, rec: MappingRecord, messages: list[QueueMessage], request_id: str, result: Any,
                     region: str) -> list[Op]:
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": iso_timestamp(time.time()),
            "requestContext": {
                "requestId": request_id,
                "functionArn": function_arn(rec.function_name, region, rec.qualifier or "$LATEST"),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": max(m.receive_count for m in messages),
            },
            "requestPayload": orjson.loads(sqs_event(messages, rec.source_arn, region)),
            "SQSBatchInfo": {"eventSourceArn": rec.source_arn, "batchSize": len(messages),
                             "messageIds": [m.message_id for m in messages]},
        }
        if result is not None:
            response: dict[str, Any] = {"statusCode": 200, "executedVersion": result.executed_version}
            if result.outcome is Outcome.FUNCTION_ERROR:
                response["functionError"] = "Unhandled"
            record["responseContext"] = response
            try:
                record["responsePayload"] = orjson.loads(result.payload) if result.payload.strip() else None
            except orjson.JSONDecodeError:
                record["responsePayload"] = result.payload.decode("utf-8", "replace")
        body = orjson.dumps(record)
        dest = parse_destination(rec.on_failure, region)
        log.warning("event source mapping %s: %d message(s) failed %d time(s); sent to %s", rec.uuid, len(messages),
                    1 + rec.retries, rec.on_failure)
        fn = rec.function_name
        if dest.kind == "sqs":
            return [
                Message(queue=dest.name, body=body.decode(), attributes={}, function_name=fn),
                Count(fn, "esm_failure_destination", len(messages)),
            ]
        return [
            Insert(
                request_id=str(uuid.uuid4()),
                function_name=dest.name,
                qualifier=dest.qualifier,
                payload=body,
                received_at=time.time(),
                depth=1,
            ),
            Count(fn, "esm_failure_destination", len(messages)),
        ]
