"""The function store and TestFunction (edge.cdn.cloudfront_functions.functions)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore, function_log_lines, parse_function_arn
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService, KvsSnapshots

REPO = Path(__file__).resolve().parents[3]
V1, V2 = "cloudfront-js-1.0", "cloudfront-js-2.0"
CODE = b"function handler(event) { var r = event.request; r.headers['x-a'] = {value: '1'}; console.log('ran'); return r; }"


@pytest.fixture
def store(tmp_path) -> FunctionStore:
    return FunctionStore(CffDatabase(tmp_path))


def cfg(runtime: str = V1, comment: str = "c", **extra) -> dict:
    return {"Comment": comment, "Runtime": runtime, **extra}


def test_lifecycle_with_stages_and_etags(store) -> None:
    created = store.create("fn", cfg(), CODE)
    summary = created["FunctionSummary"]
    assert summary["Status"] == "UNPUBLISHED" and summary["FunctionMetadata"]["Stage"] == "DEVELOPMENT"
    assert summary["FunctionMetadata"]["FunctionARN"] == "arn:aws:cloudfront::123456789012:function/fn"
    assert created["Warnings"] == []
    etag = created["ETag"]
    with pytest.raises(CloudFrontApiError) as exc:
        store.describe("fn", "LIVE")
    assert exc.value.code == "NoSuchFunctionExists" and "publish" in exc.value.message
    with pytest.raises(CloudFrontApiError) as exc:
        store.publish("fn", "stale")
    assert exc.value.code == "PreconditionFailed" and exc.value.status == 412
    published = store.publish("fn", etag)["FunctionSummary"]
    assert published["Status"] == "UNASSOCIATED" and published["FunctionMetadata"]["Stage"] == "LIVE"
    assert store.describe("fn")["FunctionSummary"]["Status"] == "UNASSOCIATED"
    updated = store.update("fn", etag, cfg(comment="v2"), b"function handler(e) { return e.request; }")
    assert updated["ETag"] != etag and updated["FunctionSummary"]["Status"] == "UNPUBLISHED"
    assert store.live("fn").code == CODE.decode()  # LIVE keeps the published code until the next publish
    assert store.get("fn")["FunctionCode"] == b"function handler(e) { return e.request; }"
    listed = store.list()["FunctionList"]
    assert [(i["Name"], i["FunctionMetadata"]["Stage"]) for i in listed["Items"]] == [("fn", "DEVELOPMENT"), ("fn", "LIVE")]
    assert store.list(stage="LIVE")["FunctionList"]["Quantity"] == 1
    with pytest.raises(CloudFrontApiError) as exc:
        store.delete("fn", None)
    assert exc.value.code == "InvalidIfMatchVersion"
    store.delete("fn", updated["ETag"])
    with pytest.raises(CloudFrontApiError) as exc:
        store.describe("fn")
    assert exc.value.code == "NoSuchFunctionExists" and exc.value.status == 404
    assert store.live("fn") is None


def test_create_errors(store) -> None:
    store.create("fn", cfg(), CODE)
    cases = [
        (("fn", cfg(), CODE), "FunctionAlreadyExists"),
        (("bad name", cfg(), CODE), "InvalidArgument"),
        (("x", cfg(runtime="cloudfront-js-3.0"), CODE), "InvalidArgument"),
        (("x", {"Runtime": V1}, CODE), "InvalidArgument"),
        (("x", cfg(comment="c" * 129), CODE), "InvalidArgument"),
        (("x", cfg(), b""), "InvalidArgument"),
        (("x", cfg(), b"\xff\xfe"), "InvalidArgument"),
        (("x", cfg(), b"/*" + b"x" * 10240 + b"*/"), "FunctionSizeLimitExceeded"),
        (("x", cfg(), b"x" * 40961), "InvalidArgument"),
        (("x", cfg(V2, KeyValueStoreAssociations={"Quantity": 1, "Items": [{"KeyValueStoreARN": "arn:aws:cloudfront::123456789012:key-value-store/nope"}]}), CODE), "InvalidArgument"),
    ]
    for args, code in cases:
        with pytest.raises(CloudFrontApiError) as exc:
            store.create(*args)
        assert exc.value.code == code, args[0]
    assert store.list()["FunctionList"]["Quantity"] == 1


def test_refused_code_is_accepted_with_a_warning_and_fails_in_test(store) -> None:
    code = b"function handler(event) {\n  for (var h of []) {}\n  return event.request;\n}"
    created = store.create("bad", cfg(V2), code)
    assert created["Warnings"] == ['SyntaxError: Token "of" not supported in this version in 2']
    result = store.test("bad", created["ETag"], json.dumps(_event()))["TestResult"]
    assert result["FunctionErrorMessage"] == ("The CloudFront function associated with the CloudFront distribution is invalid "
                                              'or could not run. SyntaxError: Token "of" not supported in this version in 2')
    assert result["FunctionOutput"] == ""


def _event(event_type: str = "viewer-request", **request) -> dict:
    ev = {"version": "1.0", "context": {"eventType": event_type}, "viewer": {"ip": "1.2.3.4"},
          "request": {"method": "GET", "uri": "/index.html", "querystring": {}, "headers": {"host": {"value": "x.test"}},
                      "cookies": {}, **request}}
    if event_type == "viewer-response":
        ev["response"] = {"statusCode": 200, "statusDescription": "OK", "headers": {}, "cookies": {}}
    return ev


def test_test_function_output(store) -> None:
    etag = store.create("fn", cfg(), CODE)["ETag"]
    result = store.test("fn", etag, json.dumps(_event()))["TestResult"]
    assert result["FunctionErrorMessage"] == "" and result["FunctionExecutionLogs"] == ["ran"]
    assert 0 <= int(result["ComputeUtilization"]) <= 100
    assert json.loads(result["FunctionOutput"]) == {"request": {"method": "GET", "uri": "/index.html", "querystring": {},
                                                                "headers": {"host": {"value": "x.test"}, "x-a": {"value": "1"}},
                                                                "cookies": {}}}
    assert result["FunctionSummary"]["Name"] == "fn"
    with pytest.raises(CloudFrontApiError) as exc:
        store.test("fn", "stale", json.dumps(_event()))
    assert exc.value.code == "PreconditionFailed"
    for blob in (b"{", json.dumps({"context": {"eventType": "origin-request"}, "request": {}}), b"x" * 40961):
        with pytest.raises(CloudFrontApiError) as exc:
            store.test("fn", etag, blob)
        assert exc.value.code == "InvalidArgument"


def test_test_many_events_and_generated_response(store) -> None:
    code = b"""function handler(event) {
  if (event.request.uri === '/redirect') {
    return {statusCode: 302, statusDescription: 'Found', headers: {location: {value: '/x?' + event.request.rawQueryString()}}};
  }
  if (event.request.uri === '/throw') { throw new Error('nope'); }
  return event.request;
}"""
    etag = store.create("multi", cfg(V2), code)["ETag"]
    qs = {"a": {"value": "1", "multiValue": [{"value": "1"}, {"value": "2"}]}}
    results = store.test_many("multi", etag, [json.dumps(_event(uri="/redirect", querystring=qs)), json.dumps(_event(uri="/throw")),
                                              json.dumps(_event())])
    assert json.loads(results[0]["FunctionOutput"]) == {"response": {"statusCode": 302, "statusDescription": "Found",
                                                                     "headers": {"location": {"value": "/x?a=1&a=2"}}, "cookies": {}}}
    assert results[1]["FunctionErrorMessage"].endswith("Error: nope") and results[1]["FunctionOutput"] == ""
    assert json.loads(results[2]["FunctionOutput"])["request"]["uri"] == "/index.html"


def test_test_function_with_kvs_and_viewer_response(tmp_path) -> None:
    db = CffDatabase(tmp_path)
    kvs = KeyValueStoreService(db)
    arn = kvs.create("s")["KeyValueStore"]["ARN"]
    kvs.put_key(arn, "greeting", "hello", kvs.kvs_describe(arn)["ETag"])
    store = FunctionStore(db, kvs_views=KvsSnapshots(CffDatabase(tmp_path)).view)
    code = b"""import cf from 'cloudfront';
async function handler(event) {
  var res = event.response;
  res.headers['x-greeting'] = {value: await cf.kvs().get('greeting')};
  return res;
}"""
    config = cfg(V2, KeyValueStoreAssociations={"Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]})
    etag = store.create("resp", config, code)["ETag"]
    assert store.describe("resp")["FunctionSummary"]["FunctionConfig"]["KeyValueStoreAssociations"]["Items"] == [{"KeyValueStoreARN": arn}]
    out = json.loads(store.test("resp", etag, json.dumps(_event("viewer-response")))["TestResult"]["FunctionOutput"])
    assert out["response"]["headers"]["x-greeting"] == {"value": "hello"}
    with pytest.raises(CloudFrontApiError) as exc:  # a store in use cannot be deleted
        kvs.delete("s", kvs.describe("s")["ETag"])
    assert exc.value.code == "CannotDeleteEntityWhileInUse"
    with pytest.raises(CloudFrontApiError, match=r"cloudfront-js-2\.0"):
        store.create("old", cfg(V1, KeyValueStoreAssociations={"Quantity": 1, "Items": [{"KeyValueStoreARN": arn}]}), CODE)


def test_in_use_functions_cannot_be_deleted_and_show_deployed(tmp_path) -> None:
    store = FunctionStore(CffDatabase(tmp_path), in_use=lambda name: name == "used")
    etag = store.create("used", cfg(), CODE)["ETag"]
    assert store.publish("used", etag)["FunctionSummary"]["Status"] == "DEPLOYED"
    with pytest.raises(CloudFrontApiError) as exc:
        store.delete("used", etag)
    assert exc.value.code == "FunctionInUse" and exc.value.status == 409


def test_arns_and_log_lines() -> None:
    assert parse_function_arn("arn:aws:cloudfront::123456789012:function/my-fn") == ("123456789012", "my-fn")
    for bad in ("arn:aws:lambda:us-east-1:1:function:f", "arn:aws:cloudfront::1:function/bad name", "x", None):
        assert parse_function_arn(bad) is None
    group, lines = function_log_lines("fn", "RID", "E1", ["a", "b"])
    assert group == "/aws/cloudfront/function/fn"
    assert lines == ["RID START DistributionID: E1", "RID a", "RID b", "RID END"]


def child(state_dir: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = "from pathlib import Path\nfrom edge.cdn.cloudfront_functions.db import CffDatabase\n" \
             "from edge.cdn.cloudfront_functions.functions import FunctionStore\n" \
             f"db = CffDatabase(Path({str(state_dir)!r}))\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_function_created_in_one_process_is_published_and_described_in_another(tmp_path) -> None:
    out = child(tmp_path, """
        store = FunctionStore(db)
        r = store.create("fn", {"Comment": "c", "Runtime": "cloudfront-js-1.0"}, b"function handler(e) { return e.request; }")
        print(r["ETag"])
    """)
    assert out.returncode == 0, out.stderr
    store = FunctionStore(CffDatabase(tmp_path))
    described = store.describe("fn")
    assert described["ETag"] == out.stdout.strip()
    store.publish("fn", described["ETag"])
    out = child(tmp_path, """
        live = FunctionStore(db).live("fn")
        print(live.runtime, live.arn)
    """)
    assert out.stdout.split() == ["cloudfront-js-1.0", "arn:aws:cloudfront::123456789012:function/fn"], out.stderr
