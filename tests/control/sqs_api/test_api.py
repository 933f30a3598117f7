"""The SQS API with boto3's ``sqs`` client (JSON protocol) and the AWS CLI against a real loopback server, over
the local queues the async deliverer and event source mappings use."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.control.aws_json.dispatch import add_dispatcher
from edge.control.sqs_api.api import SqsApi, md5_of_attributes
from edge.invocation import zip_files
from tests.control.awscli import aws
from tests.invocation.async_support import FAST, ScriptedExecutor

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture
def server(lambda_api_factory: Any) -> Any:
    server = lambda_api_factory(executor_factory=ScriptedExecutor, async_settings=FAST,
                                extend=lambda app, service: add_dispatcher(app, [SqsApi(service, poll_interval_s=0.02).json_service()]))
    asyncio.run_coroutine_threadsafe(server.service.start_async_delivery(), server._loop).result(10)
    return server


@pytest.fixture
def sqs(server: Any) -> Any:
    return server.client("sqs")


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_queue_lifecycle(server: Any, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "5", "DelaySeconds": "0"})["QueueUrl"]
    assert url == f"{server.url}/000000000000/jobs"
    assert sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "5"})["QueueUrl"] == url  # idempotent
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "6"})
    assert code_of(exc) == "QueueAlreadyExists"
    assert sqs.get_queue_url(QueueName="jobs")["QueueUrl"] == url
    sqs.create_queue(QueueName="other")
    assert sqs.list_queues()["QueueUrls"] == [url, f"{server.url}/000000000000/other"]
    assert sqs.list_queues(QueueNamePrefix="oth")["QueueUrls"] == [f"{server.url}/000000000000/other"]
    page = sqs.list_queues(MaxResults=1)
    assert page["QueueUrls"] == [url] and sqs.list_queues(MaxResults=1, NextToken=page["NextToken"])["QueueUrls"] == [
        f"{server.url}/000000000000/other"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:jobs"
    assert (attrs["VisibilityTimeout"], attrs["ApproximateNumberOfMessages"], attrs["DelaySeconds"]) == ("5", "0", "0")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "9", "MessageRetentionPeriod": "600"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "MessageRetentionPeriod"])
    assert got["Attributes"] == {"VisibilityTimeout": "9", "MessageRetentionPeriod": "600"}
    sqs.tag_queue(QueueUrl=url, Tags={"team": "edge"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "edge"}
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_url(QueueName="jobs")
    assert code_of(exc) == "AWS.SimpleQueueService.NonExistentQueue"
    assert isinstance(exc.value, sqs.exceptions.QueueDoesNotExist)


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"QueueName": "bad.name"}, "InvalidParameterValue"),
    ({"QueueName": "q.fifo", "Attributes": {"FifoQueue": "true"}}, "InvalidParameterValue"),
    ({"QueueName": "q", "Attributes": {"FifoQueue": "true"}}, "InvalidAttributeName"),
    ({"QueueName": "q", "Attributes": {"VisibilityTimeout": "99999"}}, "InvalidAttributeValue"),
    ({"QueueName": "q", "Attributes": {"Bogus": "1"}}, "InvalidAttributeName"),
    ({"QueueName": "q", "Attributes": {"RedrivePolicy": '{"deadLetterTargetArn": "x", "maxReceiveCount": 1}'}},
     "InvalidAttributeValue"),
])
def test_create_queue_errors(sqs: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(**kwargs)
    assert code_of(exc) == code, exc.value.response


def test_send_receive_delete_with_visibility(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="work", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    attrs = {"kind": {"DataType": "String", "StringValue": "order"}, "n": {"DataType": "Number", "StringValue": "3"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    # AWS's documented digest of these attributes, computed independently of the server's answer
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(
        {"kind": attrs["kind"], "n": attrs["n"], "blob": {"DataType": "Binary", "BinaryValue": "AAE="}})
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
    [msg] = got["Messages"]
    assert msg["Body"] == "hello" and msg["MessageId"] == sent["MessageId"]
    assert msg["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"
    assert msg["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # in flight: invisible
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    assert counts["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert again["Attributes"] == {"ApproximateReceiveCount": "2"}
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])  # stale handle: succeeds, deletes nothing
    third = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    with pytest.raises(ClientError) as exc:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    assert code_of(exc) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"], VisibilityTimeout=5)
    assert code_of(exc) == "AWS.SimpleQueueService.MessageNotInflight"


def test_batches(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="batch")["QueueUrl"]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2"},
                                                         {"Id": "c", "MessageBody": ""}])
    assert [s["Id"] for s in sent["Successful"]] == ["a", "b"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in sent["Failed"]] == [("c", "InvalidParameterValue", True)]
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["1", "2"]
    changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "x", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 60},
        {"Id": "y", "ReceiptHandle": "nope", "VisibilityTimeout": 60}])
    assert [s["Id"] for s in changed["Successful"]] == ["x"] and changed["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                              for i, m in enumerate(received)])
    assert len(deleted["Successful"]) == 2 and deleted["Failed"] == []
    for entries, code in (([], "AWS.SimpleQueueService.EmptyBatchRequest"),
                          ([{"Id": "a", "MessageBody": "x"}] * 2, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
                          ([{"Id": str(i), "MessageBody": "x"} for i in range(11)],
                           "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")):
        with pytest.raises(ClientError) as exc:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert code_of(exc) == code


def test_delay_purge_and_redrive(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    url = sqs.create_queue(QueueName="src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dead", "maxReceiveCount": 2})})["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(2):  # received twice, never deleted
        assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0]["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # moved at the third receive
    moved = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
    assert moved["Body"] == "poison" and moved["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    delayed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert delayed["Attributes"] == {"ApproximateNumberOfMessagesDelayed": "1"}
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.purge_queue(QueueUrl=url)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "0"
    with pytest.raises(ClientError) as exc:
        sqs.purge_queue(QueueUrl=url)
    assert code_of(exc) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_long_polling_is_woken_by_a_send_and_does_not_block_others(server: Any, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="lp")["QueueUrl"]
    result: dict[str, Any] = {}
    started = threading.Event()

    def poll() -> None:
        started.set()
        t0 = time.monotonic()
        result["messages"] = server.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
        result["waited"] = time.monotonic() - t0

    thread = threading.Thread(target=poll)
    thread.start()
    started.wait(5)
    # while the poll waits, the server keeps answering other calls (the wait is on the event loop, not a thread)
    assert sqs.get_queue_url(QueueName="lp")["QueueUrl"] == url
    sqs.send_message(QueueUrl=url, MessageBody="wake up")
    thread.join(25)
    assert [m["Body"] for m in result["messages"]] == ["wake up"] and result["waited"] < 10
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert time.monotonic() - t0 >= 0.9


def test_dead_letter_queue_filled_by_async_delivery(server: Any, sqs: Any) -> None:
    """A function's DLQ (a local queue the async deliverer writes) read with boto3's sqs client."""
    url = sqs.create_queue(QueueName="fn-dlq")["QueueUrl"]
    lam = server.client()
    lam.create_function(FunctionName="fails", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})},
                        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:fn-dlq"})
    lam.put_function_event_invoke_config(FunctionName="fails", MaximumRetryAttempts=0)
    lam.invoke(FunctionName="fails", InvocationType="Event", Payload=b'{"fail": -1}')
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(got[0]["Body"]) == {"fail": -1}
    assert got[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "failure 1"


def test_unknown_sqs_operation_and_form_bodies(server: Any) -> None:
    import urllib.request

    req = urllib.request.Request(server.url + "/", data=b"{}", method="POST",
                                 headers={"X-Amz-Target": "AmazonSQS.StartMessageMoveTask",
                                          "Content-Type": "application/x-amz-json-1.0"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.UnsupportedOperation;Sender"
    assert json.loads(exc.value.read())["__type"] == "com.amazonaws.sqs#UnknownOperationException"
    form = urllib.request.Request(server.url + "/", data=b"Action=ListQueues&Version=2012-11-05", method="POST",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(form, timeout=10)
    body = exc.value.read().decode()
    assert exc.value.code == 400 and "<Code>InvalidAction</Code>" in body and "JSON protocol" in body


def test_awscli_send_and_receive(server: Any, tmp_path: Path) -> None:
    made = aws(server.url, tmp_path, "sqs", "create-queue", "--queue-name", "cli")
    assert made.returncode == 0, made.stderr
    url = json.loads(made.stdout)["QueueUrl"]
    sent = aws(server.url, tmp_path, "sqs", "send-message", "--queue-url", url, "--message-body", "from the cli")
    assert sent.returncode == 0, sent.stderr
    got = aws(server.url, tmp_path, "sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "1")
    assert got.returncode == 0, got.stderr
    [msg] = json.loads(got.stdout)["Messages"]
    assert msg["Body"] == "from the cli"
    deleted = aws(server.url, tmp_path, "sqs", "delete-message", "--queue-url", url, "--receipt-handle", msg["ReceiptHandle"])
    assert deleted.returncode == 0, deleted.stderr
    missing = aws(server.url, tmp_path, "sqs", "receive-message", "--queue-url", url.replace("/cli", "/nope"))
    assert missing.returncode == 255 and "NonExistentQueue" in missing.stderr
