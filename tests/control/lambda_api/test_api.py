"""Lambda REST API end to end with boto3 against a real loopback server (no executor needed here)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from edge.invocation import zip_files as build_zip

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
CODE = build_zip({"app.py": "def handler(event, context):\n    return event\n"})


@pytest.fixture
def api(lambda_api_factory: Any) -> Any:
    return lambda_api_factory()


@pytest.fixture
def client(api: Any) -> Any:
    return api.client()


def create(client: Any, name: str = "fn", code: bytes = CODE, **extra: Any) -> dict[str, Any]:
    return client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler", Code={"ZipFile": code}, **extra
    )


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def raw(api: Any, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(api.url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


# -- functions ---------------------------------------------------------------------------------------------


def test_create_and_read_function(client: Any) -> None:
    created = create(client, Environment={"Variables": {"STAGE": "dev"}}, Timeout=10, MemorySize=256, Description="d")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["FunctionArn"] == ARN + "fn" and created["Version"] == "$LATEST"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(CODE).digest()).decode()
    assert created["CodeSize"] == len(CODE)
    assert (created["State"], created["PackageType"], created["Architectures"]) == ("Active", "Zip", ["x86_64"])
    assert created["EphemeralStorage"] == {"Size": 512} and created["TracingConfig"] == {"Mode": "PassThrough"}
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/fn"}
    assert created["Environment"] == {"Variables": {"STAGE": "dev"}}
    assert "LastUpdateStatus" not in created
    got = client.get_function(FunctionName="fn")
    cfg = got["Configuration"]
    assert (cfg["Timeout"], cfg["MemorySize"], cfg["Description"], cfg["LastUpdateStatus"]) == (10, 256, "d", "Successful")
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=10) as resp:
        assert resp.read() == CODE
    assert client.get_function_configuration(FunctionName=ARN + "fn")["RevisionId"] == cfg["RevisionId"]
    client.get_waiter("function_active_v2").wait(FunctionName="fn")
    client.get_waiter("function_updated_v2").wait(FunctionName="fn")


def test_create_errors(client: Any) -> None:
    create(client)
    with pytest.raises(ClientError) as exc:
        create(client)
    assert error_of(exc) == ("ResourceConflictException", "Function already exist: fn", 409)
    with pytest.raises(ClientError) as exc:
        create(client, "other", code=b"not a zip")
    assert error_of(exc)[0] == "InvalidParameterValueException" and "Could not unzip" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        create(client, "other", Timeout=901)
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        create(client, "other", Environment={"Variables": {"AWS_REGION": "x"}})
    assert "Reserved keys used in this request: AWS_REGION" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        create(client, "other", Layers=["arn:aws:lambda:us-east-1:000000000000:layer:nope:1"])
    assert error_of(exc)[:2] == ("InvalidParameterValueException", "Layer version arn:aws:lambda:us-east-1:000000000000:layer:nope:1 does not exist.")


def test_not_found_uses_capital_message_and_aws_headers(api: Any, client: Any) -> None:
    with pytest.raises(ClientError) as exc:
        client.get_function(FunctionName="missing")
    assert error_of(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}missing", 404)
    status, headers, body = raw(api, "GET", "/2015-03-31/functions/missing")
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert body == {"Type": "User", "Message": f"Function not found: {ARN}missing"}
    assert len(headers["x-amzn-RequestId"]) == 36


def test_list_functions_paginates(client: Any) -> None:
    for i in range(5):
        create(client, f"fn{i}")
    page = client.list_functions(MaxItems=2)
    assert [f["FunctionName"] for f in page["Functions"]] == ["fn0", "fn1"] and page["NextMarker"]
    names = [f["FunctionName"] for p in client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}) for f in p["Functions"]]
    assert names == [f"fn{i}" for i in range(5)]
    client.publish_version(FunctionName="fn0")
    all_versions = client.list_functions(FunctionVersion="ALL")["Functions"]
    assert [f["FunctionArn"] for f in all_versions[:2]] == [ARN + "fn0:$LATEST", ARN + "fn0:1"]


def test_updates_and_revision_ids(client: Any) -> None:
    rev0 = create(client)["RevisionId"]
    updated = client.update_function_configuration(FunctionName="fn", Timeout=20, Environment={"Variables": {"KEY": "v"}}, RevisionId=rev0)
    assert updated["Timeout"] == 20 and updated["RevisionId"] != rev0
    with pytest.raises(ClientError) as exc:
        client.update_function_configuration(FunctionName="fn", Timeout=21, RevisionId=rev0)
    assert error_of(exc)[0] == "PreconditionFailedException" and error_of(exc)[2] == 412
    new_zip = build_zip({"app.py": "def handler(event, context):\n    return 2\n"})
    code = client.update_function_code(FunctionName="fn", ZipFile=new_zip)
    assert code["CodeSha256"] == base64.b64encode(hashlib.sha256(new_zip).digest()).decode()
    assert code["Timeout"] == 20 and code["Environment"] == {"Variables": {"KEY": "v"}}
    published = client.update_function_code(FunctionName="fn", ZipFile=CODE, Publish=True)
    assert (published["Version"], published["FunctionArn"]) == ("1", ARN + "fn:1")
    with pytest.raises(ClientError) as exc:
        client.update_function_configuration(FunctionName="missing", Timeout=5)
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_versions(client: Any) -> None:
    sha = create(client)["CodeSha256"]
    v1 = client.publish_version(FunctionName="fn", Description="first")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (v1["Version"], v1["FunctionArn"], v1["Description"], v1["State"]) == ("1", ARN + "fn:1", "first", "Active")
    again = client.publish_version(FunctionName="fn")
    assert (again["Version"], again["RevisionId"]) == ("1", v1["RevisionId"])
    with pytest.raises(ClientError) as exc:
        client.publish_version(FunctionName="fn", CodeSha256="wrong")
    assert error_of(exc)[0] == "InvalidParameterValueException" and "is different from current CodeSHA256" in error_of(exc)[1]
    client.update_function_configuration(FunctionName="fn", MemorySize=512)
    assert client.publish_version(FunctionName="fn", CodeSha256=sha)["Version"] == "2"
    versions = client.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [(v["Version"], v["FunctionArn"]) for v in versions] == [("$LATEST", ARN + "fn:$LATEST"), ("1", ARN + "fn:1"), ("2", ARN + "fn:2")]
    assert client.get_function_configuration(FunctionName="fn", Qualifier="1")["MemorySize"] == 128
    page = client.list_versions_by_function(FunctionName="fn", MaxItems=2)
    assert len(page["Versions"]) == 2 and page["NextMarker"] == "2"


def test_delete_rules(client: Any) -> None:
    create(client)
    client.publish_version(FunctionName="fn")
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as exc:
        client.delete_function(FunctionName="fn", Qualifier="1")
    assert error_of(exc) == ("ResourceConflictException", "Unable to delete version because the following aliases reference it: [live]", 409)
    with pytest.raises(ClientError) as exc:
        client.delete_function(FunctionName="fn", Qualifier="$LATEST")
    assert error_of(exc)[:2] == ("InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function.")
    assert client.delete_function(FunctionName="fn")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        client.get_alias(FunctionName="fn", Name="live")
    assert error_of(exc)[0] == "ResourceNotFoundException"


# -- aliases -----------------------------------------------------------------------------------------------


def test_aliases(client: Any) -> None:
    create(client)
    client.publish_version(FunctionName="fn")
    client.update_function_configuration(FunctionName="fn", Timeout=9)
    client.publish_version(FunctionName="fn")
    alias = client.create_alias(FunctionName="fn", Name="live", FunctionVersion="1", Description="prod",
                                RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    assert alias["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (alias["AliasArn"], alias["RoutingConfig"]) == (ARN + "fn:live", {"AdditionalVersionWeights": {"2": 0.1}})
    assert client.get_alias(FunctionName="fn", Name="live")["RevisionId"] == alias["RevisionId"]
    updated = client.update_alias(FunctionName="fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {}}, RevisionId=alias["RevisionId"])
    assert "RoutingConfig" not in updated and updated["Description"] == "prod"
    with pytest.raises(ClientError) as exc:
        client.update_alias(FunctionName="fn", Name="live", FunctionVersion="2", RevisionId=alias["RevisionId"])
    assert error_of(exc)[0] == "PreconditionFailedException"
    client.create_alias(FunctionName="fn", Name="beta", FunctionVersion="2")
    assert [a["Name"] for a in client.list_aliases(FunctionName="fn")["Aliases"]] == ["beta", "live"]
    assert [a["Name"] for a in client.list_aliases(FunctionName="fn", FunctionVersion="2")["Aliases"]] == ["beta"]
    via_alias = client.get_function(FunctionName="fn", Qualifier="beta")["Configuration"]
    assert (via_alias["FunctionArn"], via_alias["Version"], via_alias["Timeout"]) == (ARN + "fn:beta", "2", 9)
    assert client.delete_alias(FunctionName="fn", Name="beta")["ResponseMetadata"]["HTTPStatusCode"] == 204


@pytest.mark.parametrize(
    ("version", "weights", "code", "message"),
    [
        ("1", {"2": 0.5, "3": 0.5}, "InvalidParameterValueException", "Number of items in AdditionalVersionWeights cannot be greater than 1"),
        ("$LATEST", {"2": 0.5}, "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to more than 1 version"),
        ("1", {"1": 0.5}, "InvalidParameterValueException", "Invalid function version 1. Function version 1 is already included in routing configuration."),
        ("1", {"9": 0.5}, "ResourceNotFoundException", f"Function not found: {ARN}fn:9"),
        ("7", {}, "ResourceNotFoundException", f"Function not found: {ARN}fn:7"),
    ],
)
def test_alias_errors(client: Any, version: str, weights: dict, code: str, message: str) -> None:
    create(client)
    client.publish_version(FunctionName="fn")
    client.update_function_configuration(FunctionName="fn", Timeout=9)
    client.publish_version(FunctionName="fn")
    with pytest.raises(ClientError) as exc:
        client.create_alias(FunctionName="fn", Name="live", FunctionVersion=version, RoutingConfig={"AdditionalVersionWeights": weights})
    assert error_of(exc)[:2] == (code, message)


def test_alias_conflicts_and_missing(client: Any) -> None:
    create(client)
    client.create_alias(FunctionName="fn", Name="live", FunctionVersion="$LATEST")
    with pytest.raises(ClientError) as exc:
        client.create_alias(FunctionName="fn", Name="live", FunctionVersion="$LATEST")
    assert error_of(exc)[0::2] == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as exc:
        client.get_alias(FunctionName="fn", Name="nope")
    assert error_of(exc) == ("ResourceNotFoundException", f"Alias not found: {ARN}fn:nope", 404)
    with pytest.raises(ClientError) as exc:
        client.create_alias(FunctionName="fn", Name="123", FunctionVersion="$LATEST")
    assert error_of(exc)[0] == "ValidationException"


# -- concurrency and account -------------------------------------------------------------------------------


def test_reserved_concurrency(client: Any) -> None:
    create(client)
    create(client, "other")
    assert client.get_function_concurrency(FunctionName="fn").get("ReservedConcurrentExecutions") is None
    assert client.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=800)["ReservedConcurrentExecutions"] == 800
    assert client.get_function_concurrency(FunctionName="fn")["ReservedConcurrentExecutions"] == 800
    assert client.get_function(FunctionName="fn")["Concurrency"] == {"ReservedConcurrentExecutions": 800}
    assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 200
    with pytest.raises(ClientError) as exc:
        client.put_function_concurrency(FunctionName="other", ReservedConcurrentExecutions=101)
    assert error_of(exc)[0] == "InvalidParameterValueException" and "minimum value of [100]" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        client.put_function_concurrency(FunctionName="fn:1", ReservedConcurrentExecutions=1)
    assert error_of(exc)[0] == "ValidationException"
    assert client.delete_function_concurrency(FunctionName="fn")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="fn")


def test_provisioned_concurrency(client: Any) -> None:
    create(client)
    client.publish_version(FunctionName="fn")
    put = client.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="1", ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (put["Status"], put["RequestedProvisionedConcurrentExecutions"], put["AllocatedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 2, 0)
    got = client.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")
    assert got["RequestedProvisionedConcurrentExecutions"] == 2 and got["Status"] in ("IN_PROGRESS", "READY", "FAILED")
    listed = client.list_provisioned_concurrency_configs(FunctionName="fn")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [ARN + "fn:1"]
    with pytest.raises(ClientError) as exc:
        client.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
    assert error_of(exc)[:2] == ("InvalidParameterValueException", "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    assert client.delete_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        client.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="1")
    assert error_of(exc)[0::2] == ("ProvisionedConcurrencyConfigNotFoundException", 404)


def test_account_settings(client: Any) -> None:
    settings = client.get_account_settings()
    assert settings["AccountLimit"] == {
        "TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000,
    }  # fmt: skip
    create(client)
    assert client.get_account_settings()["AccountUsage"] == {"TotalCodeSize": len(CODE), "FunctionCount": 1}


# -- layers ------------------------------------------------------------------------------------------------


def test_layers(client: Any) -> None:
    layer_zip = build_zip({"python/helper.py": "X = 1\n"})
    pub = client.publish_layer_version(LayerName="helpers", Content={"ZipFile": layer_zip}, Description="h",
                                       CompatibleRuntimes=["python3.12"], LicenseInfo="MIT")
    assert pub["ResponseMetadata"]["HTTPStatusCode"] == 201
    arn = "arn:aws:lambda:us-east-1:000000000000:layer:helpers"
    assert (pub["LayerArn"], pub["LayerVersionArn"], pub["Version"]) == (arn, arn + ":1", 1)
    assert pub["Content"]["CodeSize"] == len(layer_zip) and pub["LicenseInfo"] == "MIT"
    client.publish_layer_version(LayerName="helpers", Content={"ZipFile": layer_zip}, CompatibleRuntimes=["python3.11"])
    assert [v["Version"] for v in client.list_layer_versions(LayerName="helpers", CompatibleRuntime="python3.12")["LayerVersions"]] == [1]
    matching = client.list_layers(CompatibleRuntime="python3.12")["Layers"]
    assert [layer["LatestMatchingVersion"]["Version"] for layer in matching] == [1]
    assert client.list_layers(CompatibleRuntime="nodejs20.x")["Layers"] == []
    assert client.get_layer_version(LayerName="helpers", VersionNumber=1)["Description"] == "h"
    assert client.get_layer_version_by_arn(Arn=arn + ":2")["Version"] == 2
    assert [v["Version"] for v in client.list_layer_versions(LayerName="helpers")["LayerVersions"]] == [2, 1]
    layers = client.list_layers()["Layers"]
    assert [(layer["LayerName"], layer["LatestMatchingVersion"]["Version"]) for layer in layers] == [("helpers", 2)]
    fn = create(client, Layers=[arn + ":1"])
    assert fn["Layers"] == [{"Arn": arn + ":1", "CodeSize": len(layer_zip)}]
    assert client.delete_layer_version(LayerName="helpers", VersionNumber=1)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        client.get_layer_version(LayerName="helpers", VersionNumber=1)
    assert error_of(exc)[0::2] == ("ResourceNotFoundException", 404)


# -- protocol-level errors ---------------------------------------------------------------------------------


def test_malformed_json_unknown_routes_and_methods(api: Any) -> None:
    status, headers, body = raw(api, "POST", "/2015-03-31/functions", b"{not json")
    assert status == 400 and headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert body["Type"] == "User" and body["message"].startswith("Could not parse request body into json")
    status, headers, body = raw(api, "POST", "/2015-03-31/functions", b"[1, 2]")
    assert status == 400 and headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    status, headers, body = raw(api, "GET", "/2099-01-01/nothing")
    assert status == 404 and headers["x-amzn-ErrorType"] == "UnknownOperationException"
    status, headers, body = raw(api, "PATCH", "/2015-03-31/functions/fn")
    assert status == 405 and headers["x-amzn-ErrorType"] == "UnknownOperationException"
    status, _, body = raw(api, "POST", "/2015-03-31/functions", json.dumps({"FunctionName": "x", "Runtime": "python3.12", "Handler": "a.b", "Code": {"ZipFile": "***"}}).encode())
    assert status == 400 and "base64" in body["message"]
    status, _, body = raw(api, "POST", "/2015-03-31/functions", json.dumps({"FunctionName": "x", "Runtime": "python3.12", "Handler": "a.b", "Timeout": "soon", "Code": {"ZipFile": base64.b64encode(CODE).decode()}}).encode())
    assert status == 400 and body["message"] == "Timeout must be an integer"
    status, _, body = raw(api, "GET", "/_edgelab/code/../../etc/passwd.zip")
    assert status == 404


def test_function_name_forms_over_http(client: Any) -> None:
    create(client)
    client.publish_version(FunctionName="fn")
    assert client.get_function_configuration(FunctionName=ARN + "fn:1")["Version"] == "1"
    assert client.get_function_configuration(FunctionName="000000000000:function:fn")["Version"] == "$LATEST"
    assert client.get_function_configuration(FunctionName="fn:$LATEST")["FunctionArn"] == ARN + "fn:$LATEST"
    assert client.get_function(FunctionName="fn", Qualifier="1")["Configuration"]["FunctionArn"] == ARN + "fn:1"
    assert client.get_function(FunctionName="fn")["Configuration"]["FunctionArn"] == ARN + "fn"
    with pytest.raises(ClientError) as exc:
        client.get_function(FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:fn")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')")
    with pytest.raises(ClientError) as exc:
        client.get_function(FunctionName="fn:1", Qualifier="2")
    assert error_of(exc)[0] == "InvalidParameterValueException"


def test_restart_keeps_everything_acknowledged(lambda_api_factory: Any, tmp_path: Any) -> None:
    first = lambda_api_factory(tmp_path / "shared")
    c1 = first.client()
    create(c1, Environment={"Variables": {"KEEP": "me"}})
    v1 = c1.publish_version(FunctionName="fn")
    alias = c1.create_alias(FunctionName="fn", Name="live", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {}})
    c1.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=5)
    c1.put_provisioned_concurrency_config(FunctionName="fn", Qualifier="live", ProvisionedConcurrentExecutions=1)
    layer = c1.publish_layer_version(LayerName="lib", Content={"ZipFile": CODE})
    first.stop()

    second = lambda_api_factory(tmp_path / "shared")
    c2 = second.client()
    got = c2.get_function(FunctionName="fn")
    assert got["Configuration"]["Environment"] == {"Variables": {"KEEP": "me"}}
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    assert c2.get_function_configuration(FunctionName="fn", Qualifier="1")["RevisionId"] == v1["RevisionId"]
    assert c2.get_alias(FunctionName="fn", Name="live")["RevisionId"] == alias["RevisionId"]
    assert c2.get_provisioned_concurrency_config(FunctionName="fn", Qualifier="live")["RequestedProvisionedConcurrentExecutions"] == 1
    assert c2.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])["Content"]["CodeSha256"] == layer["Content"]["CodeSha256"]
    c2.update_function_configuration(FunctionName="fn", Timeout=5)
    assert c2.publish_version(FunctionName="fn")["Version"] == "2"
