"""CloudFront Functions and KeyValueStore APIs end to end through boto3 (and the AWS CLI) on a real socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.control.cloudfront_api.conftest import CloudFrontApiServer

V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"
CODE = b"function handler(event) { event.request.headers['x-a'] = {value: '1'}; console.log('hi'); return event.request; }"
EVENT = {"version": "1.0", "context": {"eventType": "viewer-request"}, "viewer": {"ip": "1.2.3.4"},
         "request": {"method": "GET", "uri": "/", "querystring": {}, "headers": {}, "cookies": {}}}


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_function_lifecycle_with_etags(cf_api: CloudFrontApiServer) -> None:
    cf = cf_api.client()
    created = cf.create_function(Name="f", FunctionConfig={"Comment": "c", "Runtime": V1}, FunctionCode=CODE)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201 and created["ETag"]
    summary = created["FunctionSummary"]
    assert (summary["Name"], summary["Status"], summary["FunctionMetadata"]["Stage"]) == ("f", "UNPUBLISHED", "DEVELOPMENT")
    assert summary["FunctionMetadata"]["FunctionARN"].endswith(":function/f") and created["Location"].endswith("/f")
    with pytest.raises(ClientError) as exc:
        cf.describe_function(Name="f", Stage="LIVE")
    assert code_of(exc) == ("NoSuchFunctionExists", 404)
    with pytest.raises(ClientError) as exc:
        cf.publish_function(Name="f", IfMatch="stale")
    assert code_of(exc) == ("PreconditionFailed", 412)
    cf.publish_function(Name="f", IfMatch=created["ETag"])
    live = cf.describe_function(Name="f", Stage="LIVE")
    assert live["FunctionSummary"]["FunctionMetadata"]["Stage"] == "LIVE" and live["ETag"] != created["ETag"]
    assert cf.get_function(Name="f", Stage="LIVE")["FunctionCode"].read() == CODE
    updated = cf.update_function(Name="f", IfMatch=created["ETag"], FunctionConfig={"Comment": "c2", "Runtime": V2},
                                 FunctionCode=CODE.replace(b"'1'", b"'2'"))
    assert updated["FunctionSummary"]["FunctionConfig"] == {"Comment": "c2", "Runtime": V2}
    names = [(s["Name"], s["FunctionMetadata"]["Stage"]) for s in cf.list_functions()["FunctionList"]["Items"]]
    assert names == [("f", "DEVELOPMENT"), ("f", "LIVE")]
    assert [s["FunctionMetadata"]["Stage"] for s in cf.list_functions(Stage="LIVE")["FunctionList"]["Items"]] == ["LIVE"]
    cf.delete_function(Name="f", IfMatch=updated["ETag"])
    assert cf.list_functions()["FunctionList"]["Quantity"] == 0


def test_test_function_any_number_of_events_same_fields_as_aws(cf_api: CloudFrontApiServer) -> None:
    cf = cf_api.client()
    etag = cf.create_function(Name="t", FunctionConfig={"Comment": "", "Runtime": V1}, FunctionCode=CODE)["ETag"]
    result = cf.test_function(Name="t", IfMatch=etag, EventObject=json.dumps(EVENT).encode())["TestResult"]
    assert json.loads(result["FunctionOutput"])["request"]["headers"] == {"x-a": {"value": "1"}}
    assert result["FunctionExecutionLogs"] == ["hi"] and result["FunctionErrorMessage"] == ""
    assert 0 <= int(result["ComputeUtilization"]) <= 100 and result["FunctionSummary"]["Name"] == "t"
    bad = cf.update_function(Name="t", IfMatch=etag, FunctionConfig={"Comment": "", "Runtime": V2},
                             FunctionCode=b"function handler(e) { for (var x of []) {} return e.request; }")
    assert 'Token "of" not supported' in bad["ResponseMetadata"]["HTTPHeaders"]["x-edgelab-warnings"]
    failed = cf.test_function(Name="t", IfMatch=bad["ETag"], EventObject=json.dumps(EVENT).encode())["TestResult"]
    assert failed["FunctionErrorMessage"].startswith("The CloudFront function associated with the CloudFront "
                                                     "distribution is invalid or could not run. SyntaxError:")


@pytest.mark.parametrize(("call", "code", "status"), [
    (lambda cf: cf.create_function(Name="big", FunctionConfig={"Comment": "", "Runtime": V1},
                                   FunctionCode=b"x" * 11000), "FunctionSizeLimitExceeded", 413),
    (lambda cf: cf.create_function(Name="r", FunctionConfig={"Comment": "", "Runtime": "js-3"}, FunctionCode=CODE),
     "InvalidArgument", 400),
    (lambda cf: cf.describe_function(Name="nope"), "NoSuchFunctionExists", 404),
    (lambda cf: cf.get_distribution(Id="E123"), "UnsupportedOperation", 400),
])
def test_errors_in_cloudfronts_xml_shape(cf_api: CloudFrontApiServer, call: Any, code: str, status: int) -> None:
    with pytest.raises(ClientError) as exc:
        call(cf_api.client())
    assert code_of(exc) == (code, status) and exc.value.response["Error"]["Message"]


def test_unknown_path_is_an_xml_error_not_a_404_page(cf_api: CloudFrontApiServer) -> None:
    req = urllib.request.Request(cf_api.url + "/2020-05-31/nothing-here", method="GET")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    body = exc.value.read()
    assert exc.value.code == 400 and b"<Code>UnsupportedOperation</Code>" in body and b"<ErrorResponse" in body


def test_function_in_use_cannot_be_deleted(cf_api: CloudFrontApiServer) -> None:
    cf = cf_api.client()
    etag = cf.create_function(Name="associated", FunctionConfig={"Comment": "", "Runtime": V1},
                              FunctionCode=CODE)["ETag"]
    cf.publish_function(Name="associated", IfMatch=etag)
    assert cf.describe_function(Name="associated", Stage="LIVE")["FunctionSummary"]["Status"] == "DEPLOYED"
    with pytest.raises(ClientError) as exc:
        cf.delete_function(Name="associated", IfMatch=etag)
    assert code_of(exc) == ("FunctionInUse", 409)


def test_key_value_stores_both_planes(cf_api: CloudFrontApiServer, tmp_path: Path) -> None:
    cf, kvs = cf_api.client(), cf_api.client("cloudfront-keyvaluestore")
    source = tmp_path / "import.json"
    source.write_text(json.dumps({"data": [{"key": "a/b c", "value": "1"}]}))
    created = cf.create_key_value_store(Name="s", Comment="c",
                                        ImportSource={"SourceType": "S3", "SourceARN": str(source)})
    store = created["KeyValueStore"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201 and store["Status"] == "READY"
    arn = store["ARN"]
    described = kvs.describe_key_value_store(KvsARN=arn)
    assert (described["ItemCount"], described["KvsARN"]) == (1, arn)
    assert kvs.get_key(KvsARN=arn, Key="a/b c")["Value"] == "1"  # a key with / and a space survives the path
    put = kvs.put_key(KvsARN=arn, Key="k", Value="v", IfMatch=described["ETag"])
    with pytest.raises(ClientError) as exc:
        kvs.put_key(KvsARN=arn, Key="k", Value="w", IfMatch=described["ETag"])  # stale ETag
    assert code_of(exc) == ("ConflictException", 409)
    batch = kvs.update_keys(KvsARN=arn, IfMatch=put["ETag"], Puts=[{"Key": "x", "Value": "1"}], Deletes=[{"Key": "k"}])
    assert batch["ItemCount"] == 2
    assert [i["Key"] for i in kvs.list_keys(KvsARN=arn, MaxResults=1)["Items"]] == ["a/b c"]
    deleted = kvs.delete_key(KvsARN=arn, Key="x", IfMatch=batch["ETag"])
    assert deleted["ItemCount"] == 1
    with pytest.raises(ClientError) as exc:
        kvs.get_key(KvsARN=arn, Key="x")
    assert code_of(exc) == ("ResourceNotFoundException", 404)
    etag = cf.describe_key_value_store(Name="s")["ETag"]
    updated = cf.update_key_value_store(Name="s", Comment="new", IfMatch=etag)
    assert [s["Comment"] for s in cf.list_key_value_stores()["KeyValueStoreList"]["Items"]] == ["new"]
    cf.delete_key_value_store(Name="s", IfMatch=updated["ETag"])
    with pytest.raises(ClientError) as exc:
        cf.describe_key_value_store(Name="s")
    assert code_of(exc) == ("EntityNotFound", 404)


def test_aws_cli_drives_both_services(cf_api: CloudFrontApiServer, tmp_path: Path) -> None:
    aws = str(Path(sys.executable).with_name("aws"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    def run(url: str, *args: str) -> dict[str, Any]:
        out = subprocess.run([aws, "--endpoint-url", url, "--output", "json", *args], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    code = tmp_path / "fn.js"
    code.write_bytes(CODE)
    created = run(cf_api.url, "cloudfront", "create-function", "--name", "cli", "--function-config",
                  f"Comment=c,Runtime={V1}", "--function-code", f"fileb://{code}")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    tested = run(cf_api.url, "cloudfront", "test-function", "--name", "cli", "--if-match", created["ETag"],
                 "--event-object", f"fileb://{event}")
    assert tested["TestResult"]["FunctionErrorMessage"] == ""
    store = run(cf_api.url, "cloudfront", "create-key-value-store", "--name", "cli-store")["KeyValueStore"]
    kvs_url = cf_api.url.replace("http://", "http://kvs@")
    etag = run(kvs_url, "cloudfront-keyvaluestore", "describe-key-value-store", "--kvs-arn", store["ARN"])["ETag"]
    put = run(kvs_url, "cloudfront-keyvaluestore", "put-key", "--kvs-arn", store["ARN"], "--key", "k", "--value", "v",
              "--if-match", etag)
    assert put["ItemCount"] == 1
