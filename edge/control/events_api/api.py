"""The EventBridge API subset for scheduled rules (JSON 1.1, ``X-Amz-Target: AWSEvents.<Operation>``):
PutRule, DescribeRule, ListRules, DeleteRule, EnableRule, DisableRule, PutTargets, RemoveTargets,
ListTargetsByRule (https://docs.aws.amazon.com/eventbridge/latest/APIReference/Welcome.html).

Only the default event bus and scheduled rules (``ScheduleExpression``) exist: a rule with an ``EventPattern``
needs events from AWS services edgelab does not have, and is refused with a ValidationException saying so.
Targets are Lambda functions of the region (``arn:aws:lambda:REGION:000000000000:function:NAME[:QUALIFIER]``),
at most 5 per rule; others come back in ``FailedEntries``. ``InputTransformer`` is not supported (refused per
entry); ``Input`` and ``InputPath`` are.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson

from edge.control.aws_json.dispatch import AwsError, Call, JsonService, member_int, member_str
from edge.control.events_api.schedule import ScheduleError, parse_schedule
from edge.control.events_api.scheduler import Scheduler, next_fire, rule_arn
from edge.control.events_api.store import EventsStore, Rule, Target

__all__ = ["EventsApi"]

TARGET_PREFIX = "AWSEvents"
MAX_TARGETS = 5
_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
_TARGET_ID = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


class EventsApi:
    def __init__(self, store: EventsStore, scheduler: Scheduler, region: str) -> None:
        self.store = store
        self.scheduler = scheduler
        self.region = region

    def service(self) -> JsonService:
        return JsonService(TARGET_PREFIX, "1.1", {
            "PutRule": self.put_rule, "DescribeRule": self.describe_rule, "ListRules": self.list_rules,
            "DeleteRule": self.delete_rule, "EnableRule": self.enable_rule, "DisableRule": self.disable_rule,
            "PutTargets": self.put_targets, "RemoveTargets": self.remove_targets,
            "ListTargetsByRule": self.list_targets_by_rule,
        })

    @staticmethod
    def _bus(body: dict[str, Any]) -> None:
        bus = body.get("EventBusName")
        if bus not in (None, "default") and not str(bus).endswith(":event-bus/default"):
            raise AwsError("ResourceNotFoundException", f"Event bus {bus} does not exist (edgelab has the default "
                                                        "bus only).")

    async def _rule(self, body: dict[str, Any], member: str = "Name") -> Rule:
        self._bus(body)
        name = member_str(body, member, required=True, code="ValidationException") or ""
        rule = await asyncio.to_thread(self.store.rule, name)
        if rule is None:
            raise AwsError("ResourceNotFoundException", f"Rule {name} does not exist on EventBus default.")
        return rule

    def _shape(self, rule: Rule) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": rule.name, "Arn": rule_arn(rule.name, self.region), "State": rule.state,
                               "ScheduleExpression": rule.schedule, "EventBusName": "default"}
        if rule.description:
            out["Description"] = rule.description
        if rule.role_arn:
            out["RoleArn"] = rule.role_arn
        if rule.managed_by:
            out["ManagedBy"] = f"edgelab:{rule.managed_by}"
        return out

    async def put_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        self._bus(body)
        name = member_str(body, "Name", required=True, code="ValidationException") or ""
        if not _NAME.match(name):
            raise _validation("Rule name must be 1-64 characters: letters, digits, '.', '-' or '_'.")
        if body.get("EventPattern"):
            raise _validation("edgelab's EventBridge runs scheduled rules only: an EventPattern needs events from "
                              "AWS services edgelab does not emulate. Use ScheduleExpression.")
        schedule = member_str(body, "ScheduleExpression", code="ValidationException")
        if not schedule:
            raise _validation("Parameter ScheduleExpression is required (edgelab runs scheduled rules only).")
        try:
            parse_schedule(schedule)
        except ScheduleError as exc:
            raise _validation(str(exc)) from None
        state = member_str(body, "State", code="ValidationException", default="ENABLED") or "ENABLED"
        if state not in ("ENABLED", "DISABLED"):
            raise _validation(f"State must be ENABLED or DISABLED, got {state!r}.")
        tags = {t["Key"]: t["Value"] for t in body.get("Tags") or [] if isinstance(t, dict) and "Key" in t}
        now = self.scheduler.clock()
        upcoming = next_fire(schedule, now, now) if state == "ENABLED" else None
        rule = await asyncio.to_thread(
            lambda: self.store.put_rule(name, schedule, state, str(body.get("Description") or ""),
                                        body.get("RoleArn"), tags, upcoming, now=now))
        self.scheduler.wake()
        return {"RuleArn": rule_arn(rule.name, self.region)}

    async def describe_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        rule = await self._rule(body)
        return {**self._shape(rule), "CreatedBy": "000000000000"}

    async def list_rules(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        self._bus(body)
        prefix = member_str(body, "NamePrefix") or ""
        limit = member_int(body, "Limit", 1, 100, code="ValidationException", default=100) or 100
        after = member_str(body, "NextToken")
        rules = [r for r in await asyncio.to_thread(self.store.rules)
                 if r.name.startswith(prefix) and (after is None or r.name > after)]
        out: dict[str, Any] = {"Rules": [self._shape(r) for r in rules[:limit]]}
        if len(rules) > limit:
            out["NextToken"] = rules[limit - 1].name
        return out

    async def delete_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        self._bus(body)
        name = member_str(body, "Name", required=True, code="ValidationException") or ""
        if await asyncio.to_thread(self.store.targets, name):
            raise _validation("Rule can't be deleted since it has targets.")
        await asyncio.to_thread(self.store.delete_rule, name)  # deleting a missing rule succeeds, as on AWS
        self.scheduler.wake()
        return {}

    async def _set_state(self, body: dict[str, Any], state: str) -> dict[str, Any]:
        rule = await self._rule(body)
        now = self.scheduler.clock()
        upcoming = next_fire(rule.schedule, now, now) if state == "ENABLED" else None
        if state == rule.state:
            return {}
        await asyncio.to_thread(self.store.set_state, rule.name, state, upcoming, now)
        self.scheduler.wake()
        return {}

    async def enable_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return await self._set_state(body, "ENABLED")

    async def disable_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        return await self._set_state(body, "DISABLED")

    def _check_target(self, raw: Any) -> Target | str:
        """A valid Target, or the reason it is refused."""
        if not isinstance(raw, dict) or not isinstance(raw.get("Id"), str) or not _TARGET_ID.match(raw["Id"]):
            return "Target Id must be 1-64 characters: letters, digits, '.', '-' or '_'."
        arn = raw.get("Arn")
        prefix = f"arn:aws:lambda:{self.region}:000000000000:function:"
        if not isinstance(arn, str) or not re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?",
                                                        arn):
            return (f"Target {arn} is not supported: edgelab's scheduled rules invoke Lambda functions "
                    f"({prefix}NAME[:QUALIFIER]).")
        if raw.get("InputTransformer"):
            return "InputTransformer is not supported by edgelab; use Input or InputPath."
        text = raw.get("Input")
        if text is not None:
            try:
                orjson.loads(str(text))
            except orjson.JSONDecodeError:
                return "Input must be valid JSON text."
        if raw.get("Input") is not None and raw.get("InputPath"):
            return "Only one of Input and InputPath may be given."
        return Target("", raw["Id"], arn, None if text is None else str(text), raw.get("InputPath") or None)

    async def put_targets(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        rule = await self._rule(body, "Rule")
        raw = body.get("Targets")
        if not isinstance(raw, list) or not raw:
            raise _validation("Targets must be a non-empty list.")
        ok: list[Target] = []
        failed = []
        for item in raw:
            checked = self._check_target(item)
            if isinstance(checked, str):
                tid = item.get("Id", "") if isinstance(item, dict) else ""
                failed.append({"TargetId": tid, "ErrorCode": "ValidationException", "ErrorMessage": checked})
            else:
                ok.append(checked)
        existing = {t.id for t in await asyncio.to_thread(self.store.targets, rule.name)}
        if len(existing | {t.id for t in ok}) > MAX_TARGETS:
            raise AwsError("LimitExceededException", f"The requested resource exceeds the maximum number allowed: "
                                                      f"a rule has at most {MAX_TARGETS} targets.")
        if ok:
            await asyncio.to_thread(self.store.put_targets, rule.name, ok)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def remove_targets(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        rule = await self._rule(body, "Rule")
        ids = body.get("Ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _validation("Ids must be a non-empty list of target ids.")
        missing = await asyncio.to_thread(self.store.remove_targets, rule.name, ids)
        failed = [{"TargetId": i, "ErrorCode": "ResourceNotFoundException",
                   "ErrorMessage": f"Target {i} does not exist on rule {rule.name}."} for i in missing]
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def list_targets_by_rule(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        rule = await self._rule(body, "Rule")
        out = []
        for t in await asyncio.to_thread(self.store.targets, rule.name):
            item: dict[str, Any] = {"Id": t.id, "Arn": t.arn}
            if t.input is not None:
                item["Input"] = t.input
            if t.input_path:
                item["InputPath"] = t.input_path
            out.append(item)
        return {"Targets": out}
