"""Invoke through the Lambda REST API with boto3 and the real Executor (worker processes on this machine)."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.invocation import Executor, ExecutorSettings
from edge.invocation import zip_files as build_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
HANDLER = """
import json, time

def handler(event, context):
    print("handling", json.dumps(event))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    custom = context.client_context.custom if context.client_context else None
    return {"event": event, "version": context.function_version, "arn": context.invoked_function_arn,
            "custom": custom, "request_id": context.aws_request_id}
"""


@pytest.fixture
def start_api(lambda_api_factory: Any, tmp_path: Path) -> Any:
    def start(state_dir: Path | None = None, **kwargs: Any) -> Any:
        state = state_dir or tmp_path / "state"
        factory = lambda: Executor(ExecutorSettings(state_dir=state))  # noqa: E731 - built on the server's loop
        return lambda_api_factory(state, executor_factory=factory, **kwargs)

    return start


@pytest.fixture
def client(start_api: Any) -> Any:
    c = start_api().client()
    c.create_function(FunctionName="fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                      Code={"ZipFile": build_zip({"app.py": HANDLER})})
    return c


def body(resp: dict[str, Any]) -> Any:
    return json.loads(resp["Payload"].read())


def test_request_response_ok_with_log_tail(client: Any) -> None:
    resp = client.invoke(FunctionName="fn", Payload=json.dumps({"a": 1}).encode(), LogType="Tail")
    assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST" and "FunctionError" not in resp
    out = body(resp)
    assert out["event"] == {"a": 1} and out["version"] == "$LATEST"
    assert out["request_id"] == resp["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(resp["LogResult"]).decode()
    assert f"START RequestId: {out['request_id']} Version: $LATEST" in log and 'handling {"a": 1}' in log
    assert f"REPORT RequestId: {out['request_id']}" in log


def test_function_error_is_200_unhandled(client: Any) -> None:
    resp = client.invoke(FunctionName="fn", Payload=b'{"fail": true}')
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    err = body(resp)
    assert (err["errorType"], err["errorMessage"]) == ("ValueError", "asked to fail")


def test_timeout_is_sandbox_timedout(client: Any) -> None:
    client.update_function_configuration(FunctionName="fn", Timeout=1)
    resp = client.invoke(FunctionName="fn", Payload=b'{"sleep": 5}')
    assert resp["FunctionError"] == "Unhandled"
    err = body(resp)
    assert err["errorType"] == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in err["errorMessage"]


def test_versions_aliases_and_weighted_routing(client: Any) -> None:
    client.publish_version(FunctionName="fn")
    client.update_function_configuration(FunctionName="fn", Description="second")
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    resp = client.invoke(FunctionName="fn", Qualifier="live", Payload=b"{}")
    out = body(resp)
    assert resp["ExecutedVersion"] == "2" and out["version"] == "2"
    assert out["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn:live"
    client.update_alias(FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    seen = {client.invoke(FunctionName="fn:live", Payload=b"{}")["ExecutedVersion"] for _ in range(40)}
    assert seen == {"1", "2"}
    assert client.invoke(FunctionName="fn", Qualifier="1", Payload=b"{}")["ExecutedVersion"] == "1"


def test_client_context_reaches_the_handler(client: Any) -> None:
    ctx = base64.b64encode(json.dumps({"custom": {"user": "u1"}}).encode()).decode()
    assert body(client.invoke(FunctionName="fn", ClientContext=ctx, Payload=b"{}"))["custom"] == {"user": "u1"}


def test_dry_run_event_and_request_errors(client: Any) -> None:
    assert client.invoke(FunctionName="fn", InvocationType="DryRun")["StatusCode"] == 204
    resp = client.invoke(FunctionName="fn", InvocationType="Event", Payload=b"{}")
    assert resp["StatusCode"] == 202 and "ExecutedVersion" not in resp
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="fn", InvocationType="Event", Payload=b"[" + b" " * 1_048_576 + b"]")
    assert exc.value.response["Error"]["Code"] == "RequestTooLargeException"
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="fn", Payload=b"{oops")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="fn", Payload=b"1" * (6_291_456 + 1))
    assert (exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("RequestTooLargeException", 413)
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="missing", Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_reserved_zero_throttles_with_reason(client: Any) -> None:
    client.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as exc:
        client.invoke(FunctionName="fn", Payload=b"{}")
    resp = exc.value.response
    assert (resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]) == ("TooManyRequestsException", 429)
    assert resp["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    client.delete_function_concurrency(FunctionName="fn")
    assert client.invoke(FunctionName="fn", Payload=b"{}")["StatusCode"] == 200


def test_account_limit_throttles_with_reason(start_api: Any) -> None:
    client = start_api(account_concurrency=1).client()
    client.create_function(FunctionName="slow", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": build_zip({"app.py": HANDLER})})
    client.invoke(FunctionName="slow", Payload=b"{}")  # warm: the concurrent calls below are not cold starts
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def long_call() -> None:
        barrier.wait(5)
        try:
            outcomes.append(client.invoke(FunctionName="slow", Payload=b'{"sleep": 1.0}')["StatusCode"])
        except ClientError as exc:
            outcomes.append((exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response.get("Reason")))

    threads = [threading.Thread(target=long_call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    # one call holds the only slot for a second; the other, arriving meanwhile, is throttled by the account limit
    assert sorted(outcomes, key=str) == [(429, "ConcurrentInvocationLimitExceeded"), 200]


def test_invoke_after_restart(start_api: Any, tmp_path: Path) -> None:
    first = start_api(tmp_path / "shared")
    c1 = first.client()
    c1.create_function(FunctionName="fn", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                       Code={"ZipFile": build_zip({"app.py": HANDLER})}, Publish=True)
    first.stop()
    c2 = start_api(tmp_path / "shared").client()
    resp = c2.invoke(FunctionName="fn", Qualifier="1", Payload=b'{"x": 2}')
    assert resp["ExecutedVersion"] == "1" and body(resp)["event"] == {"x": 2}
