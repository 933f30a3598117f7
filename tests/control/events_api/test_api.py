"""The EventBridge API with boto3's ``events`` client and the AWS CLI against a real loopback server; the scheduler
(fake clock, woken explicitly: no waiting for real minutes) invoking functions asynchronously with AWS's
scheduled-event payload; durability and the catch-up rule across a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.cdn.config.settings import ScheduleDecl
from edge.control.aws_json.dispatch import add_dispatcher
from edge.control.events_api.api import EventsApi
from edge.control.events_api.scheduler import Scheduler, apply_declared
from edge.control.events_api.store import EventsStore
from edge.invocation import zip_files
from tests.control.awscli import aws
from tests.invocation.async_support import FAST, ScriptedExecutor

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:tick"
T0 = dt.datetime(2026, 12, 4, 10, 0, 30, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class EventsServer:
    """The Lambda API server of the tests plus the EventBridge API and a scheduler on its loop."""

    def __init__(self, factory: Any, state: Path, clock: Clock) -> None:
        self.clock = clock
        self.scheduler: Scheduler | None = None

        def extend(app: Any, service: Any) -> None:
            store = EventsStore(state / "events.db")
            self.scheduler = Scheduler(store, lambda n, q, p: service.invoke(n, q, p, invocation_type="Event"),
                                       region="us-east-1", clock=clock)
            add_dispatcher(app, [EventsApi(store, self.scheduler, "us-east-1").service()])

            async def start(_: Any) -> None:
                assert self.scheduler is not None
                await service.start_async_delivery()
                await self.scheduler.start()

            async def stop(_: Any) -> None:
                assert self.scheduler is not None
                await self.scheduler.close()
                store.close()

            app.on_startup.append(start)
            app.on_cleanup.append(stop)

        self.api = factory(state, executor_factory=ScriptedExecutor, async_settings=FAST, extend=extend)
        self.events = self.api.client("events")

    def advance(self, seconds: float) -> None:
        """Move the clock and let the scheduler finish a pass over the rules."""
        self.clock.now += seconds
        loop = self.api._loop
        assert self.scheduler is not None
        loop.call_soon_threadsafe(self.scheduler.wake)
        assert asyncio.run_coroutine_threadsafe(self.scheduler.settled(), loop).result(10)

    def calls(self, function: str = "tick", n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.api.service.executor.calls_of(function)
            if len(got) >= n:
                return list(got)
            time.sleep(0.01)
        return list(self.api.service.executor.calls_of(function))


@pytest.fixture
def server(lambda_api_factory: Any, tmp_path: Path) -> EventsServer:
    s = EventsServer(lambda_api_factory, tmp_path / "state", Clock(T0))
    s.api.client().create_function(FunctionName="tick", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                   Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})})
    return s


def test_rule_operations(server: EventsServer) -> None:
    ev = server.events
    arn = ev.put_rule(Name="nightly", ScheduleExpression="cron(0 3 * * ? *)", Description="d")["RuleArn"]
    assert arn == "arn:aws:events:us-east-1:000000000000:rule/nightly"
    rule = ev.describe_rule(Name="nightly")
    assert (rule["State"], rule["ScheduleExpression"], rule["Description"], rule["EventBusName"]) == (
        "ENABLED", "cron(0 3 * * ? *)", "d", "default")
    ev.put_rule(Name="often", ScheduleExpression="rate(5 minutes)", State="DISABLED")
    assert [r["Name"] for r in ev.list_rules()["Rules"]] == ["nightly", "often"]
    assert [r["Name"] for r in ev.list_rules(NamePrefix="of")["Rules"]] == ["often"]
    page = ev.list_rules(Limit=1)
    assert [r["Name"] for r in ev.list_rules(Limit=1, NextToken=page["NextToken"])["Rules"]] == ["often"]
    put = ev.put_targets(Rule="nightly", Targets=[{"Id": "fn", "Arn": FN_ARN, "Input": '{"k": 1}'},
                                                  {"Id": "q", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}])
    assert put["FailedEntryCount"] == 1 and put["FailedEntries"][0]["TargetId"] == "q"
    assert ev.list_targets_by_rule(Rule="nightly")["Targets"] == [{"Id": "fn", "Arn": FN_ARN, "Input": '{"k": 1}'}]
    with pytest.raises(ClientError) as exc:
        ev.delete_rule(Name="nightly")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    removed = ev.remove_targets(Rule="nightly", Ids=["fn", "nope"])
    assert removed["FailedEntryCount"] == 1 and removed["FailedEntries"][0]["TargetId"] == "nope"
    ev.delete_rule(Name="nightly")
    with pytest.raises(ClientError) as exc:
        ev.describe_rule(Name="nightly")
    assert exc.value.response["Error"] == {"Code": "ResourceNotFoundException",
                                           "Message": "Rule nightly does not exist on EventBus default."}
    for kwargs in ({"Name": "x", "ScheduleExpression": "rate(1 minutes)"}, {"Name": "x", "EventPattern": '{"source": ["aws.ec2"]}'},
                   {"Name": "bad name", "ScheduleExpression": "rate(1 minute)"}):
        with pytest.raises(ClientError) as exc:
            ev.put_rule(**kwargs)
        assert exc.value.response["Error"]["Code"] == "ValidationException", kwargs


def test_scheduler_invokes_with_the_scheduled_event(server: EventsServer) -> None:
    ev = server.events
    ev.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
    ev.put_targets(Rule="every-minute", Targets=[{"Id": "t", "Arn": FN_ARN}])
    server.advance(30)  # half a period: nothing yet
    assert server.api.service.executor.calls_of("tick") == []
    server.advance(31)
    [event] = server.calls()
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/every-minute"]
    assert event["time"] == "2026-12-04T10:01:30Z" and event["detail"] == {} and event["account"] == "000000000000"
    server.advance(60)
    assert len(server.calls(n=2)) == 2
    ev.disable_rule(Name="every-minute")
    server.advance(600)
    assert len(server.api.service.executor.calls_of("tick")) == 2
    ev.enable_rule(Name="every-minute")  # periods count from the enabling
    server.advance(60)
    assert len(server.calls(n=3)) == 3


def test_input_and_input_path(server: EventsServer) -> None:
    ev = server.events
    ev.put_rule(Name="r", ScheduleExpression="cron(* * * * ? *)")
    ev.put_targets(Rule="r", Targets=[{"Id": "a", "Arn": FN_ARN, "Input": '{"fixed": true}'},
                                      {"Id": "b", "Arn": FN_ARN + ":$LATEST", "InputPath": "$.time"}])
    server.advance(60)
    calls = server.calls(n=2)
    assert {"fixed": True} in calls and "2026-12-04T10:01:00Z" in calls


def test_restart_fires_one_catch_up_run(tmp_path: Path) -> None:
    """Rules and their next time survive a restart; a rule whose time passed while the scheduler was down fires
    once (for the first missed time), never once per missed period."""
    fired: list[tuple[str, dict[str, Any]]] = []

    async def invoke(name: str, qualifier: str | None, payload: bytes) -> None:
        fired.append((name, json.loads(payload)))

    async def run(now: float, steps: list[float]) -> None:
        clock = Clock(now)
        store = EventsStore(tmp_path / "events.db")
        scheduler = Scheduler(store, invoke, region="us-east-1", clock=clock)
        await scheduler.start()
        try:
            for step in steps:
                clock.now += step
                scheduler.wake()
                assert await scheduler.settled()
        finally:
            await scheduler.close()
            store.close()

    store = EventsStore(tmp_path / "events.db")
    apply_declared(store, [ScheduleDecl("hourly", "cron(0 * * * ? *)", "tick")], "us-east-1", T0)
    store.close()
    asyncio.run(run(T0, [3600]))  # 11:00 fires
    assert [e["time"] for _, e in fired] == ["2026-12-04T11:00:00Z"]
    asyncio.run(run(T0 + 3600 + 10 * 3600 + 600, [0]))  # down for ten hours: one catch-up run (12:00 was due)
    assert [e["time"] for _, e in fired] == ["2026-12-04T11:00:00Z", "2026-12-04T12:00:00Z"]
    store = EventsStore(tmp_path / "events.db")
    rule = store.rule("hourly")
    assert rule is not None and rule.next_fire == dt.datetime(2026, 12, 4, 22, tzinfo=dt.UTC).timestamp()
    # an unchanged declaration keeps the stored next time; a removed one is deleted
    apply_declared(store, [ScheduleDecl("hourly", "cron(0 * * * ? *)", "tick")], "us-east-1", T0 + 50_000)
    assert store.rule("hourly") == rule
    apply_declared(store, [], "us-east-1", T0)
    assert store.rule("hourly") is None
    store.close()


def test_awscli_put_rule_and_targets(server: EventsServer, tmp_path: Path) -> None:
    made = aws(server.api.url, tmp_path, "events", "put-rule", "--name", "cli-rule",
               "--schedule-expression", "rate(1 day)")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["RuleArn"].endswith(":rule/cli-rule")
    targets = aws(server.api.url, tmp_path, "events", "put-targets", "--rule", "cli-rule",
                  "--targets", f"Id=1,Arn={FN_ARN}")
    assert targets.returncode == 0, targets.stderr
    assert json.loads(targets.stdout)["FailedEntryCount"] == 0
    listed = aws(server.api.url, tmp_path, "events", "list-targets-by-rule", "--rule", "cli-rule")
    assert json.loads(listed.stdout)["Targets"][0]["Arn"] == FN_ARN
    bad = aws(server.api.url, tmp_path, "events", "put-rule", "--name", "x", "--schedule-expression", "cron(0 0 * * * *)")
    assert bad.returncode == 255 and "ValidationException" in bad.stderr
