"""The CloudWatch Logs API with boto3's ``logs`` client against a real loopback server, over log stores written
the way the invocation core writes them (and, in one test, by a real function invocation)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

from edge.control.aws_json.dispatch import add_dispatcher
from edge.control.logs_api.api import LogsApi
from edge.control.stack.control_node import aws_json_services
from edge.invocation import LogStore

NOW = int(time.time() * 1000)
STREAM_A = "2024/05/01/[$LATEST]" + "a" * 32
STREAM_B = "2024/05/01/[3]" + "b" * 32


def write(root: Path, group: str, stream: str, records: list[tuple[int, str, list[str]]]) -> None:
    async def go() -> None:
        store = LogStore(root)
        for ts, rid, lines in records:
            store.append(group, stream, lines, rid, ts_ms=ts)
        await store.flush()

    asyncio.run(go())


@pytest.fixture
def api(lambda_api_factory: Any, tmp_path: Path) -> Any:
    state = tmp_path / "state"
    east, fra = state / "logs" / "us-east-1", state / "logs" / "eu-central-1"
    write(east, "/aws/lambda/fn", STREAM_A, [(NOW - 3000, "r1", ["START r1", "hello ERROR 500", "END r1"]),
                                             (NOW - 1000, "r2", ['{"level": "warn", "ms": 250}'])])
    write(east, "/aws/lambda/fn", STREAM_B, [(NOW - 2000, "r3", ["from version 3 ERROR"])])
    write(east, "/aws/lambda/other", STREAM_A, [(NOW, "", ["x"])])
    write(fra, "/aws/lambda/us-east-1.fn", "2024/05/01/[1]" + "c" * 32, [(NOW, "r4", ["at the edge"])])
    write(fra, "/aws/cloudfront/LambdaEdge/E2EXAMPLE", "FRA/2024/05/01", [(NOW, "r4", ["invalid header"])])

    def extend(app: Any, service: Any) -> None:
        add_dispatcher(app, [LogsApi(state, live_tail_interval_s=0.05).service()])

    return lambda_api_factory(state, extend=extend)


def test_describe_log_groups_per_region(api: Any) -> None:
    east = api.client("logs")
    groups = east.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/aws/lambda/fn", "/aws/lambda/other"]
    fn = groups[0]
    assert fn["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn:*"
    assert fn["logGroupArn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn"
    assert fn["creationTime"] == NOW - 3000 and fn["storedBytes"] > 0
    fra = api.client("logs", region="eu-central-1")
    assert [g["logGroupName"] for g in fra.describe_log_groups()["logGroups"]] == [
        "/aws/cloudfront/LambdaEdge/E2EXAMPLE", "/aws/lambda/us-east-1.fn"]
    assert [g["logGroupName"] for g in fra.describe_log_groups(logGroupNamePrefix="/aws/lambda")["logGroups"]] == [
        "/aws/lambda/us-east-1.fn"]
    assert [g["logGroupName"] for g in fra.describe_log_groups(logGroupNamePattern="EDGE")["logGroups"]] == [
        "/aws/cloudfront/LambdaEdge/E2EXAMPLE"]
    first = east.describe_log_groups(limit=1)
    assert [g["logGroupName"] for g in first["logGroups"]] == ["/aws/lambda/fn"]
    second = east.describe_log_groups(limit=1, nextToken=first["nextToken"])
    assert [g["logGroupName"] for g in second["logGroups"]] == ["/aws/lambda/other"] and "nextToken" not in second
    pages = east.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 1})
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == ["/aws/lambda/fn", "/aws/lambda/other"]


def test_describe_log_streams(api: Any) -> None:
    logs = api.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/fn")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [STREAM_A, STREAM_B]  # by name ("$" < "3")
    a = streams[0]
    assert (a["firstEventTimestamp"], a["lastEventTimestamp"]) == (NOW - 3000, NOW - 1000)
    assert a["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn:log-stream:{STREAM_A}"
    latest = logs.describe_log_streams(logGroupName="/aws/lambda/fn", orderBy="LastEventTime", descending=True, limit=1)
    assert [s["logStreamName"] for s in latest["logStreams"]] == [STREAM_A] and latest["nextToken"]
    prefixed = logs.describe_log_streams(logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn",
                                         logStreamNamePrefix="2024/05/01/[$LATEST]")
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == [STREAM_A]
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(logGroupName="/aws/lambda/nope")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["Error"]["Message"] == "The specified log group does not exist."
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(logGroupName="/aws/lambda/fn", orderBy="LastEventTime", logStreamNamePrefix="x")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"


def test_get_log_events_tokens(api: Any) -> None:
    logs = api.client("logs")
    everything = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A)
    assert [e["message"] for e in everything["events"]] == ["START r1", "hello ERROR 500", "END r1",
                                                            '{"level": "warn", "ms": 250}']
    last_two = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, limit=2)
    assert [e["message"] for e in last_two["events"]] == ["END r1", '{"level": "warn", "ms": 250}']
    back = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, limit=2,
                               nextToken=last_two["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == ["START r1", "hello ERROR 500"]
    head = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, limit=3, startFromHead=True)
    assert len(head["events"]) == 3
    rest = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, nextToken=head["nextForwardToken"])
    assert [e["message"] for e in rest["events"]] == ['{"level": "warn", "ms": 250}']
    end = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, nextToken=rest["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == rest["nextForwardToken"]  # the CLI's end of paging
    timed = logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=STREAM_A, startTime=NOW - 2000)
    assert len(timed["events"]) == 1
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName="missing")
    assert exc.value.response["Error"]["Message"] == "The specified log stream does not exist."


def test_filter_log_events(api: Any) -> None:
    logs = api.client("logs")
    hits = logs.filter_log_events(logGroupName="/aws/lambda/fn", filterPattern="ERROR")["events"]
    assert [(e["logStreamName"], e["message"]) for e in hits] == [(STREAM_A, "hello ERROR 500"),
                                                                  (STREAM_B, "from version 3 ERROR")]
    assert all(re.fullmatch(r"\d+", e["eventId"]) for e in hits)
    assert [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/fn",
                                                         filterPattern="{ $.ms > 200 }")["events"]] == [
        '{"level": "warn", "ms": 250}']
    only_b = logs.filter_log_events(logGroupName="/aws/lambda/fn", logStreamNames=[STREAM_B])["events"]
    assert [e["message"] for e in only_b] == ["from version 3 ERROR"]
    windowed = logs.filter_log_events(logGroupName="/aws/lambda/fn", startTime=NOW - 2500, endTime=NOW - 1500)
    assert [e["message"] for e in windowed["events"]] == ["from version 3 ERROR"]
    first = logs.filter_log_events(logGroupName="/aws/lambda/fn", limit=2)
    rest = logs.filter_log_events(logGroupName="/aws/lambda/fn", nextToken=first["nextToken"])
    assert len(first["events"]) == 2 and len(rest["events"]) == 3 and "nextToken" not in rest
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/fn",
                                                             PaginationConfig={"PageSize": 1})
    assert len([e for p in pages for e in p["events"]]) == 5
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName="/aws/lambda/fn", filterPattern="{ $.ms > }")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Invalid filter pattern" in exc.value.response["Error"]["Message"]


def test_unknown_operation_and_service_get_json_errors(api: Any) -> None:
    import urllib.request

    for target in ("Logs_20140328.PutLogEvents", "Nope_2020.Thing"):
        req = urllib.request.Request(api.url + "/", data=b"{}", method="POST",
                                     headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        body = exc.value.read()
        assert exc.value.code == 400 and b'"__type":"UnknownOperationException"' in body, body


def test_live_tail_streams_new_events(api: Any, tmp_path: Path) -> None:
    """StartLiveTail: initial-response, sessionStart, then sessionUpdates carrying only what arrives after the
    session started, filtered by the pattern; boto3 decodes the event stream."""
    from botocore.config import Config  # noqa: F401 - documents the client option used below

    logs = api.client("logs", inject_host_prefix=False)
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn"
    resp = logs.start_live_tail(logGroupIdentifiers=[arn], logEventFilterPattern="ERROR")
    stream = iter(resp["responseStream"])
    start = next(stream)["sessionStart"]
    assert start["logGroupIdentifiers"] == [arn] and start["logEventFilterPattern"] == "ERROR"
    write(tmp_path / "state" / "logs" / "us-east-1", "/aws/lambda/fn", STREAM_A,
          [(NOW + 10, "r9", ["late ERROR", "late fine"])])
    write(tmp_path / "state" / "logs" / "us-east-1", "/aws/lambda/fn", "2024/05/02/[$LATEST]" + "d" * 32,
          [(NOW + 20, "r10", ["new stream ERROR"])])
    seen: list[str] = []
    for _ in range(200):  # updates every 50 ms here; bounded
        update = next(stream)["sessionUpdate"]
        seen += [r["message"] for r in update["sessionResults"]]
        if len(seen) >= 2:
            break
    resp["responseStream"].close()
    assert seen == ["late ERROR", "new stream ERROR"]


def test_eventstream_encoding_round_trips() -> None:
    from edge.control.logs_api.eventstream import event

    buf = EventStreamBuffer()
    buf.add_data(event("sessionUpdate", b'{"a": 1}') + event("initial-response", b"{}"))
    messages = list(buf)
    assert [m.headers[":event-type"] for m in messages] == ["sessionUpdate", "initial-response"]
    assert messages[0].payload == b'{"a": 1}'


def test_stack_wiring_serves_logs(lambda_api_factory: Any, tmp_path: Path) -> None:
    """The control process's service list (what build_app mounts) answers Logs calls."""
    state = tmp_path / "s2"
    write(state / "logs" / "us-east-1", "/aws/lambda/f", STREAM_A, [(NOW, "", ["one"])])
    api = lambda_api_factory(state, extend=lambda app, service: add_dispatcher(app, aws_json_services(state, service)))
    assert api.client("logs").describe_log_groups()["logGroups"][0]["logGroupName"] == "/aws/lambda/f"


def test_awscli_get_filter_and_live_tail(api: Any, tmp_path: Path) -> None:
    """``aws logs get-log-events``, ``filter-log-events`` and ``start-live-tail`` (CLI v1's live tail; it needs
    host prefix injection off against a local endpoint)."""
    import json
    import selectors

    from tests.control.awscli import aws, aws_popen

    got = aws(api.url, tmp_path, "logs", "get-log-events", "--log-group-name", "/aws/lambda/fn",
              "--log-stream-name", STREAM_B)
    assert got.returncode == 0, got.stderr
    assert [e["message"] for e in json.loads(got.stdout)["events"]] == ["from version 3 ERROR"]
    filtered = aws(api.url, tmp_path, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/fn",
                   "--filter-pattern", "?hello ?version")
    assert filtered.returncode == 0, filtered.stderr
    assert [e["message"] for e in json.loads(filtered.stdout)["events"]] == ["hello ERROR 500", "from version 3 ERROR"]
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/fn"
    proc = aws_popen(api.url, tmp_path, "logs", "start-live-tail", "--log-group-identifiers", arn,
                     AWS_DISABLE_HOST_PREFIX_INJECTION="true")
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line = ""
        deadline = time.monotonic() + 30
        n = 0
        while "tailed line" not in line and time.monotonic() < deadline:
            # the CLI shows only what arrives after its session started, which it does not announce: write a
            # line at each turn until one comes through
            n += 1
            write(tmp_path / "state" / "logs" / "us-east-1", "/aws/lambda/fn", STREAM_A, [(NOW + n, "", [f"tailed line {n}"])])
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
        assert "tailed line" in line, proc.stderr.read() if proc.poll() is not None else "no output"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_real_invocation_logs_under_aws_names(lambda_api_factory: Any, tmp_path: Path, make_zip: Any) -> None:
    """A function invoked through the API logs to ``/aws/lambda/NAME`` in a stream named as AWS names it, and the
    Logs API reads what the control process has not flushed yet."""
    from edge.invocation import Executor, ExecutorSettings

    state = tmp_path / "state"
    api = lambda_api_factory(state, executor_factory=lambda: Executor(ExecutorSettings(state_dir=state, logs_dir=state / "logs" / "us-east-1")),
                             extend=lambda app, service: add_dispatcher(app, aws_json_services(state, service)))
    lam = api.client()
    lam.create_function(FunctionName="talk", Runtime="python3.12", Role="arn:aws:iam::000000000000:role/r",
                        Handler="app.handler", Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    print('said', e['n'])\n"})})
    lam.invoke(FunctionName="talk", Payload=b'{"n": 42}')
    logs = api.client("logs")
    [stream] = logs.describe_log_streams(logGroupName="/aws/lambda/talk")["logStreams"]
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", stream["logStreamName"]), stream
    messages = [e["message"] for e in logs.filter_log_events(logGroupName="/aws/lambda/talk")["events"]]
    assert any(m.startswith("START RequestId:") for m in messages) and "said 42" in messages
    assert any(m.startswith("REPORT RequestId:") for m in messages)
