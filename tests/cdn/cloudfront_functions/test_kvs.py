"""KeyValueStore: both APIs' semantics, import, limits, snapshots (edge.cdn.cloudfront_functions.kvs)."""

from __future__ import annotations

import json

import pytest

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService, KvsLimits, KvsSnapshots, parse_import


@pytest.fixture
def svc(tmp_path) -> KeyValueStoreService:
    return KeyValueStoreService(CffDatabase(tmp_path), s3_root=tmp_path / "s3")


def code_of(exc: pytest.ExceptionInfo[CloudFrontApiError]) -> str:
    return exc.value.code


def test_control_plane_create_describe_update_list_delete(svc) -> None:
    created = svc.create("store-1", "first")
    kv = created["KeyValueStore"]
    assert kv["Name"] == "store-1" and kv["Status"] == "READY" and kv["ARN"].endswith(kv["Id"])
    assert kv["ARN"].startswith("arn:aws:cloudfront::123456789012:key-value-store/")
    with pytest.raises(CloudFrontApiError) as exc:
        svc.create("store-1")
    assert code_of(exc) == "EntityAlreadyExists" and exc.value.status == 409
    etag = svc.describe("store-1")["ETag"]
    assert etag == created["ETag"]
    with pytest.raises(CloudFrontApiError) as exc:
        svc.update("store-1", "x", "stale")
    assert code_of(exc) == "PreconditionFailed"
    with pytest.raises(CloudFrontApiError) as exc:
        svc.update("store-1", "x", None)
    assert code_of(exc) == "InvalidIfMatchVersion"
    updated = svc.update("store-1", "second", etag)
    assert updated["KeyValueStore"]["Comment"] == "second" and updated["ETag"] != etag
    svc.create("store-2")
    page = svc.list(max_items=1)["KeyValueStoreList"]
    assert page["Quantity"] == 1 and page["NextMarker"] == "store-1"
    assert [i["Name"] for i in svc.list(marker="store-1")["KeyValueStoreList"]["Items"]] == ["store-2"]
    svc.delete("store-1", updated["ETag"])
    with pytest.raises(CloudFrontApiError) as exc:
        svc.describe("store-1")
    assert code_of(exc) == "EntityNotFound" and exc.value.status == 404
    for bad in ("bad name", "x" * 65, ""):
        with pytest.raises(CloudFrontApiError, match="InvalidArgument"):
            svc.create(bad)


def test_data_plane_etag_semantics(svc) -> None:
    arn = svc.create("s")["KeyValueStore"]["ARN"]
    d = svc.kvs_describe(arn)
    assert d["ItemCount"] == 0 and d["TotalSizeInBytes"] == 0 and d["Status"] == "READY"
    e1 = d["ETag"]
    r1 = svc.put_key(arn, "k", "vé", e1)
    assert r1["ItemCount"] == 1 and r1["TotalSizeInBytes"] == len("k") + len("vé".encode()) and r1["ETag"] != e1
    with pytest.raises(CloudFrontApiError) as exc:  # stale ETag
        svc.put_key(arn, "k2", "v", e1)
    assert code_of(exc) == "ConflictException" and exc.value.status == 409
    with pytest.raises(CloudFrontApiError) as exc:
        svc.put_key(arn, "k2", "v", None)
    assert code_of(exc) == "ValidationException"
    assert svc.get_key(arn, "k") == {"Key": "k", "Value": "vé", "ItemCount": 1, "TotalSizeInBytes": 4}
    with pytest.raises(CloudFrontApiError) as exc:
        svc.get_key(arn, "nope")
    assert code_of(exc) == "ResourceNotFoundException"
    r2 = svc.update_keys(arn, r1["ETag"], puts=[{"Key": f"p{i}", "Value": str(i)} for i in range(12)], deletes=[{"Key": "k"}])
    assert r2["ItemCount"] == 12
    # all or nothing: a bad put leaves the store (and its ETag) unchanged
    with pytest.raises(CloudFrontApiError):
        svc.update_keys(arn, r2["ETag"], puts=[{"Key": "ok", "Value": "1"}, {"Key": "big", "Value": "x" * 1025}])
    assert svc.kvs_describe(arn)["ETag"] == r2["ETag"] and svc.kvs_describe(arn)["ItemCount"] == 12
    first = svc.list_keys(arn)
    assert len(first["Items"]) == 10 and first["NextToken"]
    rest = svc.list_keys(arn, next_token=first["NextToken"], max_results=50)
    assert len(rest["Items"]) == 2 and "NextToken" not in rest
    assert sorted(i["Key"] for i in first["Items"] + rest["Items"]) == sorted(f"p{i}" for i in range(12))
    with pytest.raises(CloudFrontApiError, match="ValidationException"):
        svc.list_keys(arn, max_results=51)
    r3 = svc.delete_key(arn, "p0", r2["ETag"])
    assert r3["ItemCount"] == 11
    with pytest.raises(CloudFrontApiError, match="ResourceNotFoundException"):
        svc.delete_key(arn, "p0", r3["ETag"])
    with pytest.raises(CloudFrontApiError, match="ResourceNotFoundException"):
        svc.kvs_describe(arn[:-3] + "xyz")


def test_limits(tmp_path) -> None:
    svc = KeyValueStoreService(CffDatabase(tmp_path), limits=KvsLimits(max_store_bytes=100))
    arn = svc.create("s")["KeyValueStore"]["ARN"]
    etag = svc.kvs_describe(arn)["ETag"]
    with pytest.raises(CloudFrontApiError, match="1 to 512"):
        svc.put_key(arn, "k" * 513, "v", etag)
    with pytest.raises(CloudFrontApiError, match="larger than 1024 bytes"):
        svc.put_key(arn, "k", "é" * 513, etag)
    with pytest.raises(CloudFrontApiError) as exc:
        svc.put_key(arn, "k", "v" * 100, etag)
    assert exc.value.code == "ServiceQuotaExceededException"
    assert svc.kvs_describe(arn)["ItemCount"] == 0


def test_import_at_creation(svc, tmp_path) -> None:
    (tmp_path / "s3" / "bucket").mkdir(parents=True)
    (tmp_path / "s3" / "bucket" / "data.json").write_text(json.dumps({"data": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}))
    arn = svc.create("imp", import_source={"SourceType": "S3", "SourceARN": "arn:aws:s3:::bucket/data.json"})["KeyValueStore"]["ARN"]
    assert svc.kvs_describe(arn)["ItemCount"] == 2
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"data": [{"key": "x", "value": "y"}]}))
    arn2 = svc.create("imp2", import_source={"SourceType": "S3", "SourceARN": str(local)})["KeyValueStore"]["ARN"]
    assert svc.get_key(arn2, "x")["Value"] == "y"
    with pytest.raises(CloudFrontApiError, match="outside"):
        svc.create("imp3", import_source={"SourceType": "S3", "SourceARN": "arn:aws:s3:::../../etc/passwd"})
    with pytest.raises(CloudFrontApiError, match="Cannot read"):
        svc.create("imp4", import_source={"SourceType": "S3", "SourceARN": "arn:aws:s3:::bucket/missing.json"})


@pytest.mark.parametrize(
    "doc, message",
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b'{"items": []}', '{"data"'),
        (b'{"data": [{"key": "a"}]}', "data[0]"),
        (b'{"data": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}', "more than once"),
    ],
)
def test_import_format_errors(doc: bytes, message: str) -> None:
    with pytest.raises(CloudFrontApiError, match="InvalidArgument") as exc:
        parse_import(doc)
    assert message in exc.value.message


def test_snapshots_follow_writes_and_feed_functions(tmp_path) -> None:
    svc = KeyValueStoreService(CffDatabase(tmp_path))
    arn = svc.create("s")["KeyValueStore"]["ARN"]
    etag = svc.put_key(arn, "k", "v1", svc.kvs_describe(arn)["ETag"])["ETag"]
    snaps = KvsSnapshots(CffDatabase(tmp_path), poll_interval=0)  # its own connection, as in another process
    view = snaps.view(arn)
    assert view.data == {"k": "v1"} and view.meta["keyCount"] == 1 and view.meta["creationDateTime"].endswith("Z")
    assert snaps.view(arn) is view  # nothing changed: same snapshot, no reload
    svc.put_key(arn, "k", "v2", etag)
    view2 = snaps.view(arn)
    assert view2.data == {"k": "v2"} and view2.generation > view.generation
    assert snaps.view(arn.replace(view.store_id, "00000000-0000-0000-0000-000000000000")) is None
