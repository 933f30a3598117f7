"""Resource-based policies, tags and function URLs with boto3 and the AWS CLI against a real loopback server;
function URLs invoked over HTTP (Host routing, payload format 2.0, CORS) and with curl."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.invocation import zip_files
from tests.control.awscli import aws

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
ECHO = zip_files({"app.py": """
import base64, json

def handler(event, context):
    if event.get("rawPath") == "/plain":
        return {"just": "data"}
    if event.get("rawPath") == "/boom":
        raise ValueError("boom")
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        body = base64.b64decode(body).hex()
    return {"statusCode": 201, "headers": {"X-Echo": "yes"}, "cookies": ["a=1", "b=2; Path=/"],
            "body": json.dumps({"event": {k: v for k, v in event.items() if k != "body"}, "body": body})}
"""})


@pytest.fixture
def api(lambda_api_factory: Any, tmp_path: Path) -> Any:
    from edge.invocation import Executor, ExecutorSettings

    state = tmp_path / "state"
    return lambda_api_factory(state, executor_factory=lambda: Executor(ExecutorSettings(state_dir=state)))


@pytest.fixture
def client(api: Any) -> Any:
    c = api.client()
    c.create_function(FunctionName="fn", Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": ECHO},
                      Tags={"team": "edge"})
    return c


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_policies(client: Any) -> None:
    added = client.add_permission(FunctionName="fn", StatementId="s3", Action="lambda:InvokeFunction",
                                  Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::bucket",
                                  SourceAccount="000000000000")
    assert json.loads(added["Statement"]) == {
        "Sid": "s3", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "lambda:InvokeFunction",
        "Resource": ARN + "fn",
        "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"},
                      "StringEquals": {"AWS:SourceAccount": "000000000000"}}}
    client.add_permission(FunctionName="fn", StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                          FunctionUrlAuthType="NONE")
    got = client.get_policy(FunctionName="fn")
    policy = json.loads(got["Policy"])
    assert (policy["Version"], policy["Id"]) == ("2012-10-17", "default")
    assert [s["Sid"] for s in policy["Statement"]] == ["s3", "url"]
    assert policy["Statement"][1]["Principal"] == "*"
    assert policy["Statement"][1]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    with pytest.raises(ClientError) as exc:
        client.add_permission(FunctionName="fn", StatementId="s3", Action="lambda:InvokeFunction", Principal="*")
    assert error_of(exc)[0] == "ResourceConflictException"
    with pytest.raises(ClientError) as exc:
        client.remove_permission(FunctionName="fn", StatementId="url", RevisionId="stale")
    assert error_of(exc)[0] == "PreconditionFailedException"
    client.remove_permission(FunctionName="fn", StatementId="url", RevisionId=got["RevisionId"])
    assert [s["Sid"] for s in json.loads(client.get_policy(FunctionName="fn")["Policy"])["Statement"]] == ["s3"]
    client.publish_version(FunctionName="fn")
    client.add_permission(FunctionName="fn", Qualifier="1", StatementId="v1", Action="lambda:*",
                          Principal="123456789012")
    v1 = json.loads(client.get_policy(FunctionName="fn", Qualifier="1")["Policy"])["Statement"][0]
    assert v1["Resource"] == ARN + "fn:1" and v1["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    client.remove_permission(FunctionName="fn", StatementId="s3")
    with pytest.raises(ClientError) as exc:
        client.get_policy(FunctionName="fn")
    assert error_of(exc) == ("ResourceNotFoundException", "The resource you requested does not exist.")
    with pytest.raises(ClientError) as exc:
        client.remove_permission(FunctionName="fn", StatementId="nope")
    assert error_of(exc) == ("ResourceNotFoundException", "Statement nope is not found in resource policy.")
    with pytest.raises(ClientError) as exc:
        client.add_permission(FunctionName="fn", StatementId="bad", Action="s3:GetObject", Principal="*")
    assert error_of(exc)[0] == "InvalidParameterValueException"


def test_tags(client: Any) -> None:
    assert client.list_tags(Resource=ARN + "fn")["Tags"] == {"team": "edge"}
    client.tag_resource(Resource=ARN + "fn", Tags={"stage": "dev", "team": "cdn"})
    assert client.list_tags(Resource=ARN + "fn")["Tags"] == {"team": "cdn", "stage": "dev"}
    client.untag_resource(Resource=ARN + "fn", TagKeys=["team"])
    assert client.list_tags(Resource=ARN + "fn")["Tags"] == {"stage": "dev"}
    assert client.get_function(FunctionName="fn")["Tags"] == {"stage": "dev"}
    with pytest.raises(ClientError) as exc:
        client.tag_resource(Resource=ARN + "fn", Tags={"aws:reserved": "x"})
    assert error_of(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        client.list_tags(Resource=ARN + "missing")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def call_url(api: Any, url: str, method: str = "GET", path: str = "/", body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    """A request to a function URL: to the control port, with the URL's host name as Host."""
    host = url.split("//", 1)[1].split("/", 1)[0]
    port = int(api.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    resp = conn.getresponse()
    out: dict[str, list[str]] = {}
    for k, v in resp.getheaders():
        out.setdefault(k.lower(), []).append(v)
    data = resp.read()
    conn.close()
    return resp.status, out, data


def test_function_url_config_and_invocation(api: Any, client: Any) -> None:
    created = client.create_function_url_config(FunctionName="fn", AuthType="NONE",
                                                Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
                                                      "MaxAge": 60})
    url = created["FunctionUrl"]
    port = api.url.rsplit(":", 1)[1]
    assert url.startswith("http://") and url.endswith(f".lambda-url.us-east-1.localhost:{port}/")
    assert len(url.split("//")[1].split(".")[0]) == 32
    assert created["FunctionArn"] == ARN + "fn" and created["InvokeMode"] == "BUFFERED"
    assert client.get_function_url_config(FunctionName="fn")["FunctionUrl"] == url
    with pytest.raises(ClientError) as exc:
        client.create_function_url_config(FunctionName="fn", AuthType="NONE")
    assert error_of(exc)[0] == "ResourceConflictException"

    status, headers, data = call_url(api, url, "POST", "/orders/9?x=1&x=2&y=z", b'{"n": 1}',
                                     {"Content-Type": "application/json", "Cookie": "c1=v1; c2=v2",
                                      "Origin": "https://app.example", "User-Agent": "tests"})
    assert status == 201 and headers["x-echo"] == ["yes"] and headers["set-cookie"] == ["a=1", "b=2; Path=/"]
    assert headers["access-control-allow-origin"] == ["https://app.example"]
    got = json.loads(data)
    event = got["event"]
    assert got["body"] == '{"n": 1}' and event["isBase64Encoded"] is False
    assert (event["version"], event["routeKey"], event["rawPath"], event["rawQueryString"]) == (
        "2.0", "$default", "/orders/9", "x=1&x=2&y=z")
    assert event["queryStringParameters"] == {"x": "1,2", "y": "z"}
    assert event["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in event["headers"]
    ctx = event["requestContext"]
    assert ctx["http"]["method"] == "POST" and ctx["http"]["userAgent"] == "tests" and ctx["stage"] == "$default"
    assert ctx["domainName"] == f"{ctx['apiId']}.lambda-url.us-east-1.on.aws"
    assert headers["x-amzn-requestid"] == [ctx["requestId"]]

    status, _, data = call_url(api, url, "PUT", "/bin", bytes([0, 255]), {"Content-Type": "application/octet-stream"})
    assert json.loads(data)["body"] == "00ff" and json.loads(data)["event"]["isBase64Encoded"] is True
    status, headers, data = call_url(api, url, path="/plain")
    assert (status, headers["content-type"], json.loads(data)) == (200, ["application/json"], {"just": "data"})
    status, _, data = call_url(api, url, path="/boom")
    assert status == 502 and json.loads(data) == {"Message": "Internal Server Error"}
    status, headers, _ = call_url(api, url, "OPTIONS", "/", headers={"Origin": "https://app.example",
                                                                     "Access-Control-Request-Method": "POST"})
    assert status == 200 and headers["access-control-allow-methods"] == ["GET,POST"]
    assert headers["access-control-max-age"] == ["60"]

    updated = client.update_function_url_config(FunctionName="fn", AuthType="AWS_IAM")
    assert updated["AuthType"] == "AWS_IAM" and updated["Cors"]["MaxAge"] == 60 and "LastModifiedTime" in updated
    assert [c["FunctionUrl"] for c in client.list_function_url_configs(FunctionName="fn")["FunctionUrlConfigs"]] == [url]
    client.delete_function_url_config(FunctionName="fn")
    assert call_url(api, url)[0] == 404
    with pytest.raises(ClientError) as exc:
        client.get_function_url_config(FunctionName="fn")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_function_url_qualifier_rules(client: Any) -> None:
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    live = client.create_function_url_config(FunctionName="fn", Qualifier="live", AuthType="NONE")
    assert live["FunctionArn"] == ARN + "fn:live"
    with pytest.raises(ClientError) as exc:
        client.create_function_url_config(FunctionName="fn", Qualifier="1", AuthType="NONE")
    assert error_of(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        client.create_function_url_config(FunctionName="fn", AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    assert "RESPONSE_STREAM is not supported" in error_of(exc)[1]


def test_awscli_permissions_and_function_url_with_curl(api: Any, client: Any, tmp_path: Path) -> None:
    added = aws(api.url, tmp_path, "lambda", "add-permission", "--function-name", "fn", "--statement-id", "public",
                "--action", "lambda:InvokeFunctionUrl", "--principal", "*", "--function-url-auth-type", "NONE")
    assert added.returncode == 0, added.stderr
    policy = aws(api.url, tmp_path, "lambda", "get-policy", "--function-name", "fn")
    assert policy.returncode == 0, policy.stderr
    assert json.loads(json.loads(policy.stdout)["Policy"])["Statement"][0]["Sid"] == "public"
    made = aws(api.url, tmp_path, "lambda", "create-function-url-config", "--function-name", "fn", "--auth-type", "NONE")
    assert made.returncode == 0, made.stderr
    url = json.loads(made.stdout)["FunctionUrl"]
    # curl resolves *.localhost to the loopback interface by itself: the printed URL works as is
    curl = subprocess.run(["curl", "-sS", "--max-time", "30", url + "hello?who=curl"], capture_output=True, text=True,
                          timeout=60)
    assert curl.returncode == 0, curl.stderr
    event = json.loads(curl.stdout)["event"]
    assert event["rawPath"] == "/hello" and event["queryStringParameters"] == {"who": "curl"}
