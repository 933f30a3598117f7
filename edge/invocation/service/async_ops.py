"""Asynchronous-invocation operations of the service: :class:`AsyncOps`, one component of
:class:`~edge.invocation.service.facade.LambdaService` (which forwards these methods).

- accepting events (Invoke ``Event``, InvokeAsync): validated, stored durably by a group committer (the
  inserts of concurrent requests share one transaction), then answered; a stored event is never lost
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html);
- ``start_async_delivery(settings)``: makes this instance the deliverer (control process only) of queued
  events and event source mappings: it builds :class:`~edge.invocation.events.delivery.AsyncDelivery` and
  :class:`~edge.invocation.events.mapping_runner.EsmRunner` around the invoke path (their
  :class:`~edge.invocation.events.target.EventTarget`) and the tables they use;
- FunctionEventInvokeConfig, local queues, event source mappings, async metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from edge.invocation.errors import RequestTooLargeException, function_not_found
from edge.invocation.events.config import EventInvokeConfigOps, check_destination
from edge.invocation.events.delivery import AsyncDelivery
from edge.invocation.events.mapping_runner import EsmRunner
from edge.invocation.events.mappings import EsmOps, MappingRecord
from edge.invocation.events.model import INVOKE_ASYNC_PAYLOAD_LIMIT, AsyncSettings, EventInvokeConfig
from edge.invocation.events.queues import DEFAULT_VISIBILITY_TIMEOUT, QueueInfo, QueueMessage, QueueOps
from edge.invocation.events.store import AsyncStore, GroupCommitter, Insert
from edge.invocation.models import ASYNC_PAYLOAD_LIMIT, InvocationResult, Outcome
from edge.invocation.registry.core import Registry
from edge.invocation.service.invoke_path import InvokePath, check_payload
from edge.invocation.service.refs import split_name, unqualified_name

__all__ = ["AsyncOps"]


class AsyncOps:
    """Depends on the ``registry`` (its SQLite file, clock, change notifications) and the ``invoke`` path
    (snapshots, request ids; the target of delivery). ``start()`` / ``close()`` are called by the facade."""

    def __init__(self, registry: Registry, invoke: InvokePath, settings: AsyncSettings) -> None:
        self.registry = registry
        self._invoke = invoke
        self.settings = settings
        self.store = AsyncStore(registry.db.path, clock=registry.clock)
        self.queues = QueueOps(self.store.db, registry.region, registry.clock)
        self.invoke_configs = EventInvokeConfigOps(
            registry.db, registry.region, registry.clock, registry.notify_changed, self.queues.exists
        )
        self.mappings = EsmOps(registry.db, registry.region, registry.clock, registry.notify_changed,
                               self.queues.exists)
        self._accept: GroupCommitter[Insert] = GroupCommitter(self.store.apply, name="edgelab-async-accept")
        self.delivery: AsyncDelivery | None = None
        self.esm: EsmRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._accept.start()

    async def start_async_delivery(self, settings: AsyncSettings | None = None) -> None:
        """Deliver queued async events and run event source mappings from this process (the control process;
        exactly one process per state directory). Events left in flight by a crash are queued again."""
        if self.delivery is not None:
            return
        if self._invoke.executor is None:
            raise RuntimeError("start_async_delivery needs a LambdaService with an executor")
        if settings is not None:
            self.settings = settings
        region = self.registry.region
        self.delivery = AsyncDelivery(self._invoke, self.store, self.settings, configs=self.invoke_configs,
                                      cache=self.registry.cache, region=region)
        await self.delivery.start()
        self.esm = EsmRunner(self._invoke, self.settings, mappings=self.mappings, queues=self.queues,
                             store=self.store, region=region)
        await self.esm.start()

    async def close(self) -> None:
        """Stop the mapping runner and the deliverer, then the accepting committer (the store stays open: the
        facade closes it after everything else)."""
        if self.esm is not None:
            await self.esm.close()
        if self.delivery is not None:
            await self.delivery.close()
        await self._accept.close()

    def _name(self, function_name: str, qualifier: str | None = None) -> tuple[str, str | None]:
        return split_name(self.registry, function_name, qualifier)

    def _unqualified(self, function_name: str) -> str:
        return unqualified_name(self.registry, function_name)

    # -- accepting events --------------------------------------------------------------------------------

    async def invoke_event(
        self, function_name: str, qualifier: str | None, payload: bytes, *, request_id: str | None = None,
        limit: int = ASYNC_PAYLOAD_LIMIT, operation: str = "InvokeFunction",
    ) -> InvocationResult:
        """Queue one event durably; returns once it is committed (the caller then answers 202)."""
        if len(payload) > limit:
            raise RequestTooLargeException(f"Request must be smaller than {limit} bytes for the {operation} operation")
        ref = self.registry.parse(function_name, qualifier)
        snap = await self._invoke.snapshot(ref)
        if ref.qualifier is not None and ref.qualifier not in snap.specs and ref.qualifier not in snap.aliases:
            raise function_not_found(ref.name, self.registry.region, ref.qualifier)
        payload = check_payload(payload)  # the sync path's JSON check; an empty payload becomes {}
        request_id = request_id or self._invoke.new_request_id()
        await self._accept.submit(
            Insert(
                request_id=request_id,
                function_name=ref.name,
                qualifier=ref.qualifier,
                payload=payload,
                received_at=self.registry.clock(),
            )
        )
        if self.delivery is not None:
            self.delivery.wake()
        return InvocationResult(outcome=Outcome.OK, payload=b"", request_id=request_id, executed_version="")

    async def invoke_async(self, function_name: str, payload: bytes, *, request_id: str | None = None) -> InvocationResult:
        """InvokeAsync (deprecated API): 256 KB limit; otherwise an Event invoke."""
        return await self.invoke_event(function_name, None, payload, request_id=request_id,
                                       limit=INVOKE_ASYNC_PAYLOAD_LIMIT, operation="InvokeAsync")

    # -- event invoke configs ----------------------------------------------------------------------------

    async def put_event_invoke_config(self, function_name: str, qualifier: str | None, params: Mapping[str, Any],
                                      *, merge: bool = False) -> EventInvokeConfig:
        name, q = self._name(function_name, qualifier)
        return await asyncio.to_thread(self.invoke_configs.put, name, q, params, merge=merge)

    async def get_event_invoke_config(self, function_name: str, qualifier: str | None) -> EventInvokeConfig:
        name, q = self._name(function_name, qualifier)
        return await asyncio.to_thread(self.invoke_configs.get, name, q)

    async def delete_event_invoke_config(self, function_name: str, qualifier: str | None) -> None:
        name, q = self._name(function_name, qualifier)
        await asyncio.to_thread(self.invoke_configs.delete, name, q)

    async def list_event_invoke_configs(self, function_name: str) -> list[EventInvokeConfig]:
        return await asyncio.to_thread(self.invoke_configs.list, self._unqualified(function_name))

    def check_dead_letter_target(self, arn: str, function_name: str) -> None:
        """DeadLetterConfig.TargetArn: a local queue (blocking; called from the registry-update thread)."""
        check_destination(arn, region=self.registry.region, function_exists=lambda n: False,
                          queue_exists=self.queues.exists, own_name=function_name, member="DeadLetterConfig.TargetArn")

    # -- local queues ------------------------------------------------------------------------------------

    async def create_queue(self, name: str, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT) -> QueueInfo:
        return await asyncio.to_thread(self.queues.create, name, visibility_timeout)

    async def list_queues(self) -> list[QueueInfo]:
        return await asyncio.to_thread(self.queues.list)

    async def get_queue(self, name: str) -> QueueInfo:
        return await asyncio.to_thread(self.queues.get, name)

    async def delete_queue(self, name: str) -> None:
        await asyncio.to_thread(self.queues.delete, name)

    async def purge_queue(self, name: str) -> int:
        return await asyncio.to_thread(self.queues.purge, name)

    async def send_queue_message(self, name: str, body: str, attributes: dict[str, Any] | None = None) -> str:
        return await asyncio.to_thread(self.queues.send, name, body, attributes)

    async def read_queue(self, name: str, limit: int, *, delete: bool = False) -> list[QueueMessage]:
        """Peek at up to ``limit`` messages (oldest first); ``delete`` removes what was returned."""

        def work() -> list[QueueMessage]:
            messages = self.queues.peek(name, limit)
            if delete and messages:
                self.queues.delete_ids(name, [m.id for m in messages])
            return messages

        return await asyncio.to_thread(work)

    # -- event source mappings ---------------------------------------------------------------------------

    async def create_event_source_mapping(self, params: Mapping[str, Any]) -> MappingRecord:
        record = await asyncio.to_thread(self.mappings.create, params)
        if self.esm is not None:
            self.esm.wake()
        return record

    async def get_event_source_mapping(self, uuid_: str) -> MappingRecord:
        return await asyncio.to_thread(self.mappings.get, uuid_)

    async def update_event_source_mapping(self, uuid_: str, params: Mapping[str, Any]) -> MappingRecord:
        record = await asyncio.to_thread(self.mappings.update, uuid_, params)
        if self.esm is not None:
            self.esm.wake()
        return record

    async def delete_event_source_mapping(self, uuid_: str) -> MappingRecord:
        record = await asyncio.to_thread(self.mappings.delete, uuid_)
        if self.esm is not None:
            self.esm.wake()
        return record

    async def list_event_source_mappings(self, *, source_arn: str | None = None, function_name: str | None = None) -> list[MappingRecord]:
        fn = self._name(function_name)[0] if function_name else None
        return await asyncio.to_thread(self.mappings.list, source_arn, fn)

    # -- observability -----------------------------------------------------------------------------------

    async def async_metrics(self) -> dict[str, Any]:
        """Per function: counters (received, delivered, retried, throttled, failed, expired, dead_lettered, ...)
        and the queue (depth, in flight, age of the oldest event); plus each local queue's depth."""

        def work() -> dict[str, Any]:
            stats = self.store.stats()
            depth = self.store.queue_depth()
            functions: dict[str, Any] = {}
            for fn in sorted(set(stats) | set(depth)):
                queue = depth.get(fn, {"depth": 0, "in_flight": 0, "oldest_age_s": None})
                functions[fn] = {**stats.get(fn, {}), "queue": queue}
            queues = {q.name: {"messages": q.messages, "visible": q.visible, "oldest_age_s": q.oldest_age_s}
                      for q in self.queues.list()}
            total = sum(v["depth"] for v in depth.values())
            oldest = max((v["oldest_age_s"] for v in depth.values()), default=None)
            return {"functions": functions, "queues": queues, "depth": total, "oldest_age_s": oldest,
                    "delivering": self.delivery is not None, "at": time.time()}

        return await asyncio.to_thread(work)
