"""Asynchronous invocation against a real control process (real workers, real SQLite state): retries, DLQ,
destinations, expiry, event source mappings, and a kill -9 in the middle of a backlog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.invocation import zip_files
from tests.control.stack.async_node import ControlNode, wait_for

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HANDLER = '''
import time

def handler(event, context):
    if "Records" in event:  # an SQS batch from an event source mapping
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"] == "bad"]}
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("asked to fail " + str(event.get("id")))
    return {"id": event.get("id"), "version": context.function_version}
'''
# retries after ~60 ms / 120 ms; a throttle would be retried only after 70 s (beyond a 60 s maximum age)
SETTINGS = """
[async]
retry_backoff_scale = 0.001
throttle_backoff_base_s = 70000
throttle_backoff_max_s = 70000
poll_interval_s = 0.02
"""


def q(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:000000000000:{name}"


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:000000000000:function:{name}"


def create(client: Any, name: str, **extra: Any) -> None:
    client.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": zip_files({"app.py": HANDLER})}, Timeout=10, **extra)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlNode]:
    n = ControlNode(tmp_path_factory.mktemp("async") / "state", SETTINGS).start()
    yield n
    n.stop()


def test_retries_then_dlq_and_failure_destination_and_success_to_a_function(node: ControlNode) -> None:
    client = node.client()
    for queue in ("dlq", "failures"):
        node.admin("POST", "/queues", {"name": queue})
    create(client, "audit")
    create(client, "worker", DeadLetterConfig={"TargetArn": q("dlq")})
    client.put_function_event_invoke_config(FunctionName="worker", DestinationConfig={
        "OnFailure": {"Destination": q("failures")}, "OnSuccess": {"Destination": fn_arn("audit")}})
    assert client.invoke(FunctionName="worker", InvocationType="Event",
                         Payload=json.dumps({"id": "bad", "fail": True}))["StatusCode"] == 202
    assert client.invoke(FunctionName="worker", InvocationType="Event", Payload=b'{"id": "good"}')["StatusCode"] == 202
    [failure] = wait_for(lambda: node.messages("failures"))
    record = json.loads(failure["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorMessage"] == "asked to fail bad"
    [dead] = wait_for(lambda: node.messages("dlq"))
    assert json.loads(dead["Body"]) == {"id": "bad", "fail": True}
    assert dead["MessageAttributes"]["ErrorMessage"]["StringValue"] == "asked to fail bad"
    wait_for(lambda: node.stats("audit").get("delivered") == 1)  # the Success record reached the audit function
    stats = node.stats("worker")
    assert (stats["received"], stats["delivered"], stats["retried"], stats["failed"], stats["dead_lettered"]) == (2, 1, 2, 1, 1)


def test_throttled_event_expires_explicitly(node: ControlNode) -> None:
    client = node.client()
    node.admin("POST", "/queues", {"name": "expired"})
    create(client, "single")
    client.put_function_concurrency(FunctionName="single", ReservedConcurrentExecutions=1)
    client.put_function_event_invoke_config(FunctionName="single", MaximumEventAgeInSeconds=60,
                                            DestinationConfig={"OnFailure": {"Destination": q("expired")}})
    for i in range(2):  # one runs for a while; the other is throttled and may not wait 70 s
        client.invoke(FunctionName="single", InvocationType="Event", Payload=json.dumps({"id": i, "sleep": 1.0}))
    [msg] = wait_for(lambda: node.messages("expired"))
    record = json.loads(msg["Body"])
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    wait_for(lambda: node.stats("single").get("delivered") == 1)
    stats = node.stats("single")
    assert (stats["expired"], stats["throttled"], stats["queue"]["depth"]) == (1, 0, 0)


def test_event_source_mapping_with_partial_batch_failures(node: ControlNode) -> None:
    client = node.client()
    for queue in ("jobs", "jobs-failed"):
        node.admin("POST", "/queues", {"name": queue, "visibility_timeout": 0.1})
    create(client, "consumer")
    for body in ("a", "bad", "b"):
        node.admin("POST", "/queues/jobs/messages", {"body": body})
    mapping = client.create_event_source_mapping(
        EventSourceArn=q("jobs"), FunctionName="consumer", BatchSize=10, MaximumRetryAttempts=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": q("jobs-failed")}})
    [failed] = wait_for(lambda: node.messages("jobs-failed"))
    record = json.loads(failed["Body"])
    assert [r["body"] for r in record["requestPayload"]["Records"]] == ["bad"]
    wait_for(lambda: node.admin("GET", "/queues/jobs")["messages"] == 0)
    assert client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"
    assert node.stats("consumer")["esm_batches"] >= 2


def test_kill_9_in_the_middle_of_a_backlog_loses_nothing(tmp_path: Path) -> None:
    settings = "[async]\nretry_backoff_scale = 0.001\npoll_interval_s = 0.02\ndelivery_concurrency = 4\n"
    node = ControlNode(tmp_path / "state", settings).start()
    try:
        client = node.client()
        node.admin("POST", "/queues", {"name": "done"})
        create(client, "slow")
        client.put_function_concurrency(FunctionName="slow", ReservedConcurrentExecutions=2)
        client.put_function_event_invoke_config(FunctionName="slow", DestinationConfig={
            "OnSuccess": {"Destination": q("done")}})
        n = 120
        for i in range(n):
            payload = {"id": i, "sleep": 0.02} if i % 10 else {"id": i, "sleep": 0.02, "fail": i == 50}
            assert client.invoke(FunctionName="slow", InvocationType="Event", Payload=json.dumps(payload))["StatusCode"] == 202
        wait_for(lambda: len(node.messages("done")) >= 10)
        assert node.stats("slow")["queue"]["depth"] > 0  # a backlog remains
        node.kill9()
        node.start()
        wait_for(lambda: node.stats("slow")["queue"]["depth"] == 0, timeout=40)
        ids = [json.loads(m["Body"])["requestPayload"]["id"] for m in node.messages("done")]
        stats = node.stats("slow")
        assert stats["received"] == n  # counters are durable too
        assert set(ids) == set(range(n)) - {50}  # at least once: every event, duplicates possible
        assert stats["failed"] == 1 and stats["delivered"] >= n - 1
    finally:
        node.stop()


def test_queue_cli_against_the_running_node(node: ControlNode) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge.control.cli.main", "queue", *args, "--api", node.url],
                              capture_output=True, text=True, timeout=30)

    assert "cli-q" in cli("create", "cli-q", "--visibility-timeout", "5").stdout
    assert cli("send", "cli-q", "hello").returncode == 0
    assert "messages      1" in cli("show", "cli-q").stdout
    [line] = cli("messages", "cli-q", "--delete").stdout.splitlines()
    assert json.loads(line)["Body"] == "hello"
    assert "messages      0" in cli("list").stdout.split("cli-q", 1)[1].splitlines()[0]
    assert "purged 0" in cli("purge", "cli-q").stdout
    assert '"functions"' in cli("stats").stdout
    assert cli("delete", "cli-q").returncode == 0
    missing = cli("show", "cli-q")
    assert missing.returncode != 0 and "Queue not found" in missing.stderr


def test_metrics_route_includes_async(node: ControlNode) -> None:
    data = node.admin("GET", "/metrics")
    assert "functions" in data["async"] and "depth" in data["async"] and data["async"]["delivering"] is True
