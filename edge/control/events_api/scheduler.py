"""The scheduler of the control process: fires each enabled scheduled rule at its times, invoking its Lambda
targets asynchronously (``InvocationType=Event``: queued durably, then delivered with the async retry rules)
with AWS's scheduled-event payload, as EventBridge invokes Lambda
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html)::

    {"version": "0", "id": "<uuid>", "detail-type": "Scheduled Event", "source": "aws.events",
     "account": "000000000000", "time": "2026-12-04T10:00:00Z", "region": "us-east-1",
     "resources": ["arn:aws:events:us-east-1:000000000000:rule/NAME"], "detail": {}}

``time`` is the scheduled time. A target's ``Input`` (constant JSON) replaces the event; ``InputPath`` selects a
part of it (``$``, ``$.detail``, ``$.time``, ...).

Durability and the catch-up rule: each rule's next scheduled time is stored (``events.db``). When the control
process starts (or the clock jumps), a rule whose next time has passed fires **once** (its event's ``time`` is
the first missed time), then continues from its next time after now: downtime never causes a storm of missed
runs, and a run that was due while edgelab was down is not silently lost either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from edge.cdn.config.settings import ScheduleDecl
from edge.control.events_api.schedule import Cron, Rate, ScheduleError, parse_schedule
from edge.control.events_api.store import EventsStore, Rule, Target
from edge.invocation.models import ACCOUNT_ID
from edge.tasks import TaskOwner

__all__ = ["Scheduler", "apply_declared", "next_fire", "rule_arn", "scheduled_event"]

log = logging.getLogger("edgelab.control.scheduler")

Invoke = Callable[[str, str | None, bytes], Awaitable[Any]]  # (function name, qualifier, payload)
IDLE_RECHECK_S = 60.0  # an idle scheduler re-reads the rules at least this often (other writers: none today)


def rule_arn(name: str, region: str) -> str:
    return f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{name}"


def next_fire(schedule: str, after: float, anchor: float) -> float | None:
    """The next time (epoch s) ``schedule`` fires strictly after ``after``; rate periods count from ``anchor``."""
    parsed = parse_schedule(schedule)
    after_dt = dt.datetime.fromtimestamp(after, dt.UTC)
    if isinstance(parsed, Rate):
        return parsed.next_after(after_dt, dt.datetime.fromtimestamp(anchor, dt.UTC)).timestamp()
    assert isinstance(parsed, Cron)
    found = parsed.next_after(after_dt)
    return None if found is None else found.timestamp()


def scheduled_event(rule: str, region: str, at: float) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": ACCOUNT_ID, "time": dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [rule_arn(rule, region)], "detail": {}}


def _input_path(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.removeprefix("$").strip(".").split(".") if path.strip() not in ("$", "") else []:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def target_payload(target: Target, event: dict[str, Any]) -> bytes:
    if target.input is not None:
        return target.input.encode()
    if target.input_path:
        return orjson.dumps(_input_path(event, target.input_path))
    return orjson.dumps(event)


def function_of(arn: str) -> tuple[str, str | None]:
    """(name, qualifier) of a Lambda function ARN target."""
    rest = arn.split(":function:", 1)[1]
    name, _, qualifier = rest.partition(":")
    return name, qualifier or None


class Scheduler:
    """Owned by the control process: ``await start()`` after the service, ``await close()`` before it."""

    def __init__(self, store: EventsStore, invoke: Invoke, *, region: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.invoke = invoke
        self.region = region
        self.clock = clock
        self.fired = 0  # invocations requested (for tests and metrics)
        self._wake = asyncio.Event()
        self._tasks = TaskOwner("edgelab-scheduler")
        self._idle = asyncio.Event()  # set whenever a pass over the rules is complete

    async def start(self) -> None:
        self._tasks.spawn(self._run(), name="scheduler")

    async def close(self) -> None:
        await self._tasks.aclose()

    def wake(self) -> None:
        """Rules changed (or the test clock moved): re-read them now."""
        self._idle.clear()
        self._wake.set()

    async def settled(self, timeout: float = 10.0) -> bool:
        """Wait until the scheduler has finished a pass over the rules after the last :meth:`wake`."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = await self._pass()
            self._idle.set()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _pass(self) -> float:
        """Fire what is due; the seconds until the next rule is due (at most IDLE_RECHECK_S)."""
        rules: list[Rule] = await asyncio.to_thread(self.store.rules)
        now = self.clock()
        soonest = now + IDLE_RECHECK_S
        for rule in rules:
            if rule.state != "ENABLED" or rule.next_fire is None:
                continue
            if rule.next_fire <= now:
                await self._fire(rule, rule.next_fire, now)
                continue
            soonest = min(soonest, rule.next_fire)
        return max(0.0, soonest - now)

    async def _fire(self, rule: Rule, scheduled: float, now: float) -> None:
        try:
            following = next_fire(rule.schedule, max(now, scheduled), rule.anchor)
        except ScheduleError:  # stored before a validation change: disable it rather than loop on it
            log.error("rule %s: schedule %r is no longer valid; not firing it", rule.name, rule.schedule)
            following = None
        await asyncio.to_thread(self.store.fired, rule.name, scheduled, following)
        event = scheduled_event(rule.name, self.region, scheduled)
        for target in await asyncio.to_thread(self.store.targets, rule.name):
            name, qualifier = function_of(target.arn)
            try:
                await self.invoke(name, qualifier, target_payload(target, event))
                self.fired += 1
            except Exception as exc:  # a missing function: EventBridge counts a failed invocation and moves on
                log.warning("rule %s: could not invoke target %s (%s): %s", rule.name, target.id, target.arn, exc)


def apply_declared(store: EventsStore, declared: Sequence[ScheduleDecl], region: str, now: float) -> list[str]:
    """Make the store's settings-managed rules match ``[[schedules]]`` (blocking). An unchanged rule keeps its
    stored next time (so the catch-up rule holds across restarts); a new or changed one starts now; one no
    longer declared is deleted. Returns the names of the declared rules."""
    names = []
    for decl in declared:
        state = "ENABLED" if decl.enabled else "DISABLED"
        current = store.rule(decl.name)
        arn = decl.function if decl.function.startswith("arn:") else \
            f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{decl.function}"
        target = Target(decl.name, "settings", arn, decl.input, None)
        unchanged = (current is not None and current.managed_by == "settings" and current.schedule == decl.schedule
                     and current.state == state and current.description == decl.description
                     and store.targets(decl.name) == [target])
        if not unchanged:
            upcoming = next_fire(decl.schedule, now, now) if decl.enabled else None
            store.put_rule(decl.name, decl.schedule, state, decl.description, None, {}, upcoming,
                           managed_by="settings", now=now)
            store.remove_targets(decl.name, [t.id for t in store.targets(decl.name)])
            store.put_targets(decl.name, [target])
        names.append(decl.name)
    for rule in store.rules():
        if rule.managed_by == "settings" and rule.name not in names:
            store.delete_rule(rule.name)
    return names
