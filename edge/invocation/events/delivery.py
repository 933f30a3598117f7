"""AsyncDelivery: the deliverer of queued asynchronous events (runs in exactly one process: the control process).

Loop: claim due events (bounded by ``delivery_concurrency`` in flight), deliver each in its own task (the loop
and the deliveries are owned through :class:`~edge.tasks.TaskOwner` instances), write
the outcome as one group-committed set of operations (delete / reschedule the event, destination records,
DLQ messages, counters). Every claimed event ends in exactly one of

- success (``delivered``; OnSuccess record when configured),
- a retry later (``retried`` after a function error, ``throttled`` after a throttle),
- a final failure (``RetriesExhausted``, ``EventAgeExceeded`` counted as ``expired``, ``ZeroReservedConcurrency``)
  with its OnFailure record and/or DLQ message (``failure_destination``, ``dead_lettered``) — logged,
- ``dropped_no_function`` when the function was deleted meanwhile — logged.

A destination record for a function target becomes a new async event of that function, one level deeper;
records deeper than ``destination_depth_limit`` are not delivered (``loop_dropped``, logged).

Idle, the loop waits for a reason to look again: :meth:`AsyncDelivery.wake` (an event queued in this process), a
write to the queue's SQLite files by any process (an inotify :class:`~edge.inotify.DatabaseWatch` read by the event
loop, coalesced to one wake per ``poll_interval_s``), or the next event falling due (a retry's backoff), and at most
:data:`~edge.inotify.FALLBACK_POLL_S`; without inotify it polls every ``poll_interval_s`` as before. An idle
control process no longer sends a thread to SQLite twenty times a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import orjson

from edge.inotify import FALLBACK_POLL_S, DatabaseWatch
from edge.invocation.errors import LambdaError, ResourceNotFoundException
from edge.invocation.events.config import EventInvokeConfigOps
from edge.invocation.events.model import (
    AsyncSettings,
    Condition,
    EventInvokeConfig,
    decide,
    destination_record,
    dlq_attributes,
    parse_destination,
)
from edge.invocation.events.store import (
    AsyncStore,
    Count,
    Delete,
    GroupCommitter,
    Insert,
    Message,
    Op,
    Retry,
    StoredEvent,
)
from edge.invocation.events.target import EventTarget, PreparedTarget
from edge.invocation.models import SYNC_PAYLOAD_LIMIT, InvocationResult, Outcome, function_arn
from edge.invocation.registry.cache import ResolveCache
from edge.tasks import TaskOwner, wait_set

__all__ = ["AsyncDelivery"]

log = logging.getLogger("edgelab.invocation.async")


class AsyncDelivery:
    """Owned by the service's async operations (:class:`edge.invocation.service.async_ops.AsyncOps`:
    ``start_async_delivery`` / ``close``). Runs events through ``target``; reads event-invoke configurations from
    ``configs`` (reloaded when the registry ``cache`` generation moves) and dead-letter targets from ``cache``;
    ``region`` is the registry's (home) region, for ARNs."""

    def __init__(self, target: EventTarget, store: AsyncStore, settings: AsyncSettings, *,
                 configs: EventInvokeConfigOps, cache: ResolveCache, region: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.store = store
        self.configs = configs
        self.cache = cache
        self.region = region
        self.settings = settings
        self.clock = clock
        self._writer: GroupCommitter[Op] = GroupCommitter(store.apply, name="edgelab-async-outcomes")
        self._wake = asyncio.Event()
        self._loop_tasks = TaskOwner("edgelab-async-delivery")
        self._deliveries = TaskOwner("edgelab-async-deliveries")  # one task per claimed event
        self._configs: dict[tuple[str, str], EventInvokeConfig] = {}
        self._configs_generation = -1
        self._prepared_targets: dict[tuple[str, str | None], PreparedTarget] = {}
        self._prepared_generation = -1
        self._watch = DatabaseWatch(store.db.path, settings.poll_interval_s, on_write=self.wake)

    async def start(self) -> None:
        released = await asyncio.to_thread(self.store.release_all)
        if released:
            log.info("async delivery: %d event(s) left in flight by a previous run are queued again", released)
        self._writer.start()
        self._watch.open()
        self._loop_tasks.spawn(self._loop(), name="loop")

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop claiming; let in-flight deliveries finish for up to ``grace_s`` (fewer duplicates after a
        restart), then cancel the rest."""
        await self._loop_tasks.aclose()
        self._watch.close()
        await self._deliveries.join(grace_s)
        await self._deliveries.aclose()  # cancelled deliveries stay claimed in SQLite: the next start queues them again
        await self._writer.close()

    def wake(self) -> None:
        """New events were queued in this process: look now rather than at the next poll."""
        self._wake.set()

    # -- loop --------------------------------------------------------------------------------------------

    async def _loop(self) -> None:
        limit = self.settings.delivery_concurrency
        while True:
            free = limit - len(self._deliveries)
            claimed = 0
            if free > 0:
                try:
                    events = await asyncio.to_thread(self.store.claim_due, free)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep delivering: a transient SQLite error must not stop the loop
                    log.exception("async delivery: claiming events failed")
                    events = []
                claimed = len(events)
                for ev in events:
                    self._deliveries.spawn(self._deliver(ev), name=ev.request_id)
            if claimed and claimed == free:
                await self._wait(None)  # saturated: wait for a slot
            elif claimed == 0:
                await self._wait(await self._idle_timeout())
            # slots free up one by one: give completions a moment to batch before the next claim
            if len(self._deliveries):
                await asyncio.sleep(0.002)

    async def _idle_timeout(self) -> float:
        """How long the idle loop waits for a wake (see the module docstring): until the next event falls due, at
        least ``poll_interval_s`` (no tight loop on an event that is due but not claimable) and at most
        ``FALLBACK_POLL_S``; ``poll_interval_s`` without a watch."""
        interval = self.settings.poll_interval_s
        if not self._watch.active:
            return interval
        due = await asyncio.to_thread(self.store.next_due)
        if due is None:
            return FALLBACK_POLL_S
        return min(max(due - self.clock(), interval), FALLBACK_POLL_S)

    async def _wait(self, timeout: float | None) -> None:
        await wait_set(self._wake, timeout)  # (not asyncio.wait_for: see wait_set)
        self._wake.clear()

    # -- one event ---------------------------------------------------------------------------------------

    async def _deliver(self, ev: StoredEvent) -> None:
        try:
            await self._deliver_one(ev)
        finally:
            self._wake.set()  # a delivery slot is free

    async def _deliver_one(self, ev: StoredEvent) -> None:
        try:
            ops = await self._process(ev)
        except asyncio.CancelledError:
            raise
        except Exception:  # an internal error is a system error: requeue (like a 5xx at AWS), never drop
            log.exception(
                "async delivery of %s (%s) failed internally; retrying in 1 s", ev.request_id, ev.function_name
            )
            ops = [
                Retry(
                    event_id=ev.id,
                    due_at=self.clock() + 1.0,
                    attempts=ev.attempts,
                    throttles=ev.throttles,
                    last_version=ev.last_version,
                    last_error=ev.last_error,
                )
            ]
        try:
            await self._writer.submit_many(ops)
        except RuntimeError:
            pass  # shutting down: the event is still claimed and is queued again at the next start
        except Exception:
            log.exception("async delivery: recording the outcome of %s failed; it is delivered again after a restart",
                          ev.request_id)

    async def _config(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        generation = self.cache.generation
        if generation != self._configs_generation:
            # a small table, reloaded only when the registry changed
            self._configs = await asyncio.to_thread(self.configs.all)
            self._configs_generation = generation
        q = qualifier or "$LATEST"
        return self._configs.get((name, q)) or EventInvokeConfig(name, q)

    def _prepared(self, name: str, qualifier: str | None) -> PreparedTarget:
        """The prepared target of ``name:qualifier`` (``invoke_event_now``'s semantics; its resolution, executor
        route and options made once per registry change instead of per event: ~24k fewer instructions per
        delivered event, 499k -> 475k, callgrind of the bench server draining its backlog). Dropped when the
        registry changes, so deleted functions do not accumulate."""
        generation = self.cache.generation
        if generation != self._prepared_generation:
            self._prepared_targets.clear()
            self._prepared_generation = generation
        key = (name, qualifier)
        target = self._prepared_targets.get(key)
        if target is None:
            target = self._prepared_targets[key] = self.target.prepare(name, qualifier)
        return target

    async def _process(self, ev: StoredEvent) -> list[Op]:
        now = self.clock()
        try:
            snap = await self.target.snapshot_of(ev.function_name)
        except ResourceNotFoundException:
            log.error("async event %s dropped: function %s no longer exists (counted as dropped_no_function)",
                      ev.request_id, ev.function_name)
            return [Delete(ev.id), Count(ev.function_name, "dropped_no_function")]
        cfg = await self._config(ev.function_name, ev.qualifier)
        if now - ev.received_at > cfg.age:
            return self._final(ev, cfg, Condition.EVENT_AGE_EXCEEDED, ev.last_version, ev.last_error, now)
        if snap.reserved == 0:
            return self._final(ev, cfg, Condition.ZERO_RESERVED, None, None, now)
        try:
            if len(ev.payload) <= SYNC_PAYLOAD_LIMIT:
                target = self._prepared(ev.function_name, ev.qualifier)
                result = await target.invoke(ev.payload if ev.payload.strip() else b"{}", ev.request_id)
            else:  # only a destination record can be this large: the prepared target would refuse it as a request
                result = await self.target.invoke_event_now(ev.function_name, ev.qualifier, ev.payload,
                                                            ev.request_id, snap)
        except ResourceNotFoundException:  # the qualifier (alias/version) vanished
            log.error("async event %s dropped: %s:%s no longer exists", ev.request_id, ev.function_name, ev.qualifier)
            return [Delete(ev.id), Count(ev.function_name, "dropped_no_function")]
        except LambdaError as exc:  # e.g. a runtime this build cannot run: a function error for retries
            result = InvocationResult(
                outcome=Outcome.FUNCTION_ERROR,
                payload=_error_json(exc.code, exc.message),
                request_id=ev.request_id,
                executed_version=ev.qualifier or "$LATEST",
                error_type=exc.code,
            )
        return self._after_attempt(ev, cfg, result, self.clock())

    def _after_attempt(self, ev: StoredEvent, cfg: EventInvokeConfig, result: InvocationResult, now: float) -> list[Op]:
        outcome = {Outcome.OK: "ok", Outcome.FUNCTION_ERROR: "function_error", Outcome.THROTTLED: "throttled"}[result.outcome]
        attempts = ev.attempts + (outcome == "function_error")
        throttles = ev.throttles + (outcome == "throttled")
        d = decide(outcome=outcome, attempts=attempts, throttles=throttles, received_at=ev.received_at, now=now,
                   cfg=cfg, settings=self.settings)
        if outcome == "throttled":
            version, error = ev.last_version, ev.last_error
        else:
            version, error = result.executed_version, result.payload
        if d.retry_at is not None:
            return [
                Retry(
                    event_id=ev.id,
                    due_at=d.retry_at,
                    attempts=attempts,
                    throttles=throttles,
                    last_version=version,
                    last_error=error,
                ),
                Count(ev.function_name, "throttled" if d.throttled else "retried"),
            ]
        assert d.condition is not None
        return self._final(ev, cfg, d.condition, version, error if outcome != "ok" else result.payload, now,
                           ok=outcome == "ok", attempts=attempts)

    def _final(self, ev: StoredEvent, cfg: EventInvokeConfig, condition: Condition, version: str | None,
               response: bytes | None, now: float, *, ok: bool = False, attempts: int | None = None) -> list[Op]:
        """The operations that end ``ev`` (``attempts``: its function errors so far, this attempt's included;
        default ``ev.attempts``). The destination record is built only for a destination that receives it: for
        every success without OnSuccess it was built and dropped, ~46k instructions each (callgrind, 2,000
        records; its strftime alone imports ``time`` per call), a tenth of a delivered event."""
        fn = ev.function_name
        attempts = ev.attempts if attempts is None else attempts
        invoke_count = 0 if condition is Condition.ZERO_RESERVED else attempts + (1 if ok else 0)

        def record() -> bytes:
            return destination_record(
                request_id=ev.request_id, function_arn=function_arn(fn, self.region, ev.qualifier or "$LATEST"),
                condition=condition, invoke_count=invoke_count, request_payload=ev.payload, now=now,
                executed_version=version, response_payload=response, function_error=not ok,
            )

        ops: list[Op] = [Delete(ev.id)]
        if ok:
            ops.append(Count(fn, "delivered"))
            if cfg.on_success:
                ops += self._destination(cfg.on_success, record(), ev, now, "success_destination")
            return ops
        ops.append(Count(fn, "failed"))
        if condition is Condition.EVENT_AGE_EXCEEDED:
            ops.append(Count(fn, "expired"))
        targets = []
        if cfg.on_failure:
            ops += self._destination(cfg.on_failure, record(), ev, now, "failure_destination")
            targets.append(cfg.on_failure)
        dlq = self._dlq_target(fn, version or ev.qualifier)
        if dlq:
            try:
                dest = parse_destination(dlq, self.region, "DeadLetterConfig.TargetArn")
                if dest.kind != "sqs":
                    raise ValueError("not a queue")
                ops += [
                    Message(
                        queue=dest.name,
                        body=ev.payload.decode("utf-8", "replace"),
                        attributes=dlq_attributes(ev.request_id, response, condition),
                        function_name=fn,
                    ),
                    Count(fn, "dead_lettered"),
                ]
                targets.append(dlq)
            except (LambdaError, ValueError):
                log.error("function %s: DeadLetterConfig target %s is not a local queue ARN", fn, dlq)
                ops.append(Count(fn, "destination_failures"))
        log.warning("async event %s of %s failed (%s, %d invocation(s)); sent to %s", ev.request_id, fn,
                    condition, invoke_count, ", ".join(targets) or "no destination (counted)")
        return ops

    def _dlq_target(self, fn: str, version: str | None) -> str | None:
        """The DeadLetterConfig of the version that ran (or would run: an alias's primary version)."""
        snap = self.cache.cached(fn)
        configs = getattr(snap, "configs", None) or {}
        aliases = getattr(snap, "aliases", None) or {}
        key = version or "$LATEST"
        if key not in configs and key in aliases:
            key = aliases[key][0]
        cfg = configs.get(key) or configs.get("$LATEST")
        return cfg.dead_letter_target if cfg is not None else None

    def _destination(self, arn: str, record: bytes, ev: StoredEvent, now: float, counter: str) -> list[Op]:
        fn = ev.function_name
        try:
            dest = parse_destination(arn, self.region)
        except LambdaError as exc:
            log.error("function %s: destination %s is unusable: %s", fn, arn, exc.message)
            return [Count(fn, "destination_failures")]
        if dest.kind == "sqs":
            return [Message(queue=dest.name, body=record.decode(), attributes={}, function_name=fn), Count(fn, counter)]
        if ev.depth + 1 > self.settings.destination_depth_limit:
            log.error("destination chain of %s reached depth %d at %s -> %s: record not delivered (loop_dropped)",
                      ev.request_id, ev.depth + 1, fn, arn)
            return [Count(fn, "loop_dropped")]
        return [
            Insert(
                request_id=str(uuid.uuid4()),
                function_name=dest.name,
                qualifier=dest.qualifier,
                payload=record,
                received_at=now,
                depth=ev.depth + 1,
            ),
            Count(fn, counter),
        ]


def _error_json(code: str, message: str) -> bytes:
    return orjson.dumps({"errorType": code, "errorMessage": message})
