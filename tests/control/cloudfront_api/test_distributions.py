"""The distribution, invalidation and policy calls of the CloudFront API through boto3 on a real socket, over the
control process's services with recording stand-ins for the POPs (the real deployment path is
tests/control/stack/test_distribution_stack.py)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.control.cloudfront_api.conftest import CloudFrontApiServer

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"


def dist_file(path: Path) -> Path:
    cfg = {"DistributionConfig": {
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "app.example.test",
                                              "CustomOriginConfig": {"HTTPPort": 8080,
                                                                     "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": CACHING_DISABLED},
    }}
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture
def api(tmp_path: Path) -> Iterator[CloudFrontApiServer]:
    server = CloudFrontApiServer(tmp_path / "state", distribution=dist_file(tmp_path / "dist.json")).start()
    try:
        yield server
    finally:
        server.stop()


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def wait_deployed(cf: Any, dist_id: str) -> dict[str, Any]:
    end = time.monotonic() + 5
    while (d := cf.get_distribution(Id=dist_id))["Distribution"]["Status"] != "Deployed":
        assert time.monotonic() < end, "the distribution stays InProgress"
        time.sleep(0.02)
    return d


def test_list_get_and_config_shapes(api: CloudFrontApiServer) -> None:
    cf = api.client()
    listed = cf.list_distributions()["DistributionList"]
    assert (listed["Quantity"], listed["IsTruncated"]) == (1, False)
    summary = listed["Items"][0]
    dist_id = summary["Id"]
    assert dist_id.startswith("E") and len(dist_id) == 14 and summary["DomainName"] == f"{dist_id.lower()}.cloudfront.net"
    assert summary["ARN"] == f"arn:aws:cloudfront::123456789012:distribution/{dist_id}"
    assert summary["Status"] == "Deployed" and summary["Origins"]["Items"][0]["Id"] == "o"
    got = cf.get_distribution(Id=dist_id)
    assert got["ETag"] == summary["ETag"] and got["Distribution"]["InProgressInvalidationBatches"] == 0
    assert got["Distribution"]["ActiveTrustedSigners"] == {"Enabled": False, "Quantity": 0}
    config = cf.get_distribution_config(Id=dist_id)
    assert config["ETag"] == got["ETag"]
    cfg = config["DistributionConfig"]
    # what a configuration file left out is filled in as CloudFront returns it, so it can be sent back as it is
    assert (cfg["CallerReference"], cfg["Comment"], cfg["Enabled"]) == (f"edgelab-{dist_id}", "", True)
    assert cfg["Origins"]["Items"][0]["CustomOriginConfig"] == {"HTTPPort": 8080, "HTTPSPort": 443,
                                                                "OriginProtocolPolicy": "http-only"}
    # and the fields UpdateDistribution requires, with CloudFront's values
    assert (cfg["PriceClass"], cfg["HttpVersion"], cfg["WebACLId"], cfg["Aliases"]) == ("PriceClass_All", "http2", "",
                                                                                       {"Quantity": 0})
    assert cfg["Restrictions"] == {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}}
    assert cfg["DefaultCacheBehavior"]["AllowedMethods"]["Items"] == ["HEAD", "GET"]
    assert cfg["DefaultCacheBehavior"]["SmoothStreaming"] is False
    with pytest.raises(ClientError) as exc:
        cf.get_distribution(Id="ENOSUCHDIST123")
    assert code_of(exc) == ("NoSuchDistribution", 404)
    assert cf.list_distributions(Marker=dist_id)["DistributionList"]["Quantity"] == 0


def test_update_with_if_match_and_etag(api: CloudFrontApiServer) -> None:
    cf = api.client()
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    got = cf.get_distribution_config(Id=dist_id)
    cfg = got["DistributionConfig"]
    cfg["Comment"] = "second"
    cfg["DefaultRootObject"] = "index.html"
    with pytest.raises(ClientError) as exc:
        cf.update_distribution(Id=dist_id, DistributionConfig=cfg)
    assert code_of(exc) == ("InvalidIfMatchVersion", 400)
    with pytest.raises(ClientError) as exc:
        cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch="E0000000000000")
    assert code_of(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        cf.update_distribution(Id="ENOSUCHDIST123", DistributionConfig=cfg, IfMatch=got["ETag"])
    assert code_of(exc) == ("NoSuchDistribution", 404)
    updated = cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])
    assert updated["ETag"] != got["ETag"] and updated["Distribution"]["Status"] == "InProgress"
    assert updated["Distribution"]["Id"] == dist_id  # the Id (and so the cache keys) stays
    assert updated["Distribution"]["DistributionConfig"]["DefaultRootObject"] == "index.html"
    deployed = wait_deployed(cf, dist_id)
    assert deployed["ETag"] == updated["ETag"]
    assert api.pushed[-1]["ETag"] == updated["ETag"]
    assert api.pushed[-1]["Distribution"]["DistributionConfig"]["Comment"] == "second"
    with pytest.raises(ClientError) as exc:  # the old ETag is stale now
        cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])
    assert code_of(exc) == ("PreconditionFailed", 412)
    # persisted: a new control process over the same state starts with it
    doc = json.loads((api.state_dir / "cloudfront" / "distribution.json").read_text())
    assert doc["ETag"] == updated["ETag"] and doc["Distribution"]["Status"] == "Deployed"


@pytest.mark.parametrize(("change", "code", "field"), [
    (lambda c: c["DefaultCacheBehavior"].update(ViewerProtocolPolicy="sometimes"), "InvalidArgument",
     "DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy"),
    (lambda c: c.update(DefaultRootObject="/index.html"), "InvalidArgument", "DistributionConfig.DefaultRootObject"),
    (lambda c: c["DefaultCacheBehavior"].update(TargetOriginId="nope"), "NoSuchOrigin",
     "DistributionConfig.DefaultCacheBehavior.TargetOriginId"),
    (lambda c: c["DefaultCacheBehavior"].update(CachePolicyId="11111111-2222-3333-4444-555555555555"),
     "NoSuchCachePolicy", "DistributionConfig.DefaultCacheBehavior.CachePolicyId"),
    (lambda c: c["Origins"].update(Quantity=2), "InconsistentQuantities", "DistributionConfig.Origins.Quantity"),
    (lambda c: c.update(CallerReference="another"), "IllegalUpdate", "CallerReference"),
    (lambda c: c.pop("Logging"), "InvalidArgument", "DistributionConfig.Logging is required in an UpdateDistribution"),
    (lambda c: c["DefaultCacheBehavior"].pop("Compress"), "InvalidArgument",
     "DistributionConfig.DefaultCacheBehavior.Compress is required"),
    (lambda c: c["DefaultCacheBehavior"].update(LambdaFunctionAssociations={"Quantity": 1, "Items": [{
        "LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
        "EventType": "viewer-request"}]}), "InvalidLambdaFunctionAssociation",
     "DistributionConfig.DefaultCacheBehavior.LambdaFunctionAssociations.Items[0]"),
])
def test_a_refused_configuration_names_the_field_and_changes_nothing(api: CloudFrontApiServer, change: Any,
                                                                     code: str, field: str) -> None:
    cf = api.client()
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    got = cf.get_distribution_config(Id=dist_id)
    cfg = copy.deepcopy(got["DistributionConfig"])
    change(cfg)
    with pytest.raises(ClientError) as exc:
        cf.update_distribution(Id=dist_id, DistributionConfig=cfg, IfMatch=got["ETag"])
    assert code_of(exc)[0] == code and field in exc.value.response["Error"]["Message"]
    after = cf.get_distribution_config(Id=dist_id)
    assert (after["ETag"], after["DistributionConfig"]) == (got["ETag"], got["DistributionConfig"])
    assert api.pushed == []


def test_invalidations(api: CloudFrontApiServer) -> None:
    cf = api.client()
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    batch = {"Paths": {"Quantity": 2, "Items": ["/img/*", "/index.html"]}, "CallerReference": "ref-1"}
    created = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=batch)
    inv = created["Invalidation"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["Location"].endswith(f"/2020-05-31/distribution/{dist_id}/invalidation/{inv['Id']}")
    assert inv["Id"].startswith("I") and len(inv["Id"]) == 14 and inv["Status"] == "Completed"
    assert inv["InvalidationBatch"] == batch and api.purged == [["/img/*", "/index.html"]]
    # the same CallerReference and paths: the same invalidation, no second purge; other paths: refused
    again = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=batch)["Invalidation"]
    assert again["Id"] == inv["Id"] and len(api.purged) == 1
    with pytest.raises(ClientError) as exc:
        cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/other"]}, "CallerReference": "ref-1"})
    assert code_of(exc) == ("InvalidationBatchAlreadyExists", 409)
    for bad, code in ((["no-slash"], "InvalidArgument"), (["/a*b"], "InvalidArgument")):
        with pytest.raises(ClientError) as exc:
            cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
                "Paths": {"Quantity": len(bad), "Items": bad}, "CallerReference": f"bad-{bad[0]}"})
        assert code_of(exc) == (code, 400)
    with pytest.raises(ClientError) as exc:
        cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
            "Paths": {"Quantity": 3, "Items": ["/x"]}, "CallerReference": "q"})
    assert code_of(exc) == ("InconsistentQuantities", 400)
    with pytest.raises(ClientError) as exc:
        cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
            "Paths": {"Quantity": 3001, "Items": [f"/{i}" for i in range(3001)]}, "CallerReference": "big"})
    assert code_of(exc) == ("BatchTooLarge", 413)
    second = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
        "Paths": {"Quantity": 1, "Items": ["/b"]}, "CallerReference": "ref-2"})["Invalidation"]
    assert cf.get_invalidation(DistributionId=dist_id, Id=inv["Id"])["Invalidation"] == inv
    listed = cf.list_invalidations(DistributionId=dist_id, MaxItems="1")["InvalidationList"]
    assert (listed["Quantity"], listed["IsTruncated"], listed["Items"][0]["Id"]) == (1, True, second["Id"])
    rest = cf.list_invalidations(DistributionId=dist_id, Marker=listed["NextMarker"])["InvalidationList"]
    assert [i["Id"] for i in rest["Items"]] == [inv["Id"]] and rest["IsTruncated"] is False
    with pytest.raises(ClientError) as exc:
        cf.get_invalidation(DistributionId=dist_id, Id="INOSUCH")
    assert code_of(exc) == ("NoSuchInvalidation", 404)
    with pytest.raises(ClientError) as exc:
        cf.create_invalidation(DistributionId="ENOSUCHDIST123", InvalidationBatch=batch)
    assert code_of(exc) == ("NoSuchDistribution", 404)


def test_an_invalidation_a_pop_missed_stays_in_progress(api: CloudFrontApiServer) -> None:
    cf = api.client()
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    api.fail_pops = True
    inv = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
        "Paths": {"Quantity": 1, "Items": ["/x"]}, "CallerReference": "r"})["Invalidation"]
    assert inv["Status"] == "InProgress"
    assert cf.get_distribution(Id=dist_id)["Distribution"]["InProgressInvalidationBatches"] == 1


POLICY = {"Name": "short", "Comment": "one minute", "MinTTL": 1, "DefaultTTL": 60, "MaxTTL": 120,
          "ParametersInCacheKeyAndForwardedToOrigin": {
              "EnableAcceptEncodingGzip": True, "EnableAcceptEncodingBrotli": False,
              "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["X-Variant"]}},
              "CookiesConfig": {"CookieBehavior": "none"},
              "QueryStringsConfig": {"QueryStringBehavior": "all"}}}
ORP = {"Name": "with-ua", "HeadersConfig": {"HeaderBehavior": "whitelist",
                                            "Headers": {"Quantity": 1, "Items": ["User-Agent"]}},
       "CookiesConfig": {"CookieBehavior": "all"}, "QueryStringsConfig": {"QueryStringBehavior": "none"}}


def test_cache_policy_lifecycle_and_use_by_the_distribution(api: CloudFrontApiServer) -> None:
    cf = api.client()
    created = cf.create_cache_policy(CachePolicyConfig=POLICY)
    pid = created["CachePolicy"]["Id"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201 and created["Location"].endswith(pid)
    assert created["CachePolicy"]["CachePolicyConfig"] == POLICY
    with pytest.raises(ClientError) as exc:
        cf.create_cache_policy(CachePolicyConfig=POLICY)
    assert code_of(exc) == ("CachePolicyAlreadyExists", 409)
    bad = copy.deepcopy(POLICY) | {"Name": "bad", "MinTTL": 200}
    with pytest.raises(ClientError) as exc:
        cf.create_cache_policy(CachePolicyConfig=bad)
    assert code_of(exc) == ("InvalidArgument", 400) and "MinTTL <= DefaultTTL" in exc.value.response["Error"]["Message"]
    listed = cf.list_cache_policies()["CachePolicyList"]["Items"]
    managed = {i["CachePolicy"]["CachePolicyConfig"]["Name"] for i in listed if i["Type"] == "managed"}
    assert {"Managed-CachingOptimized", "Managed-CachingDisabled"} <= managed
    assert [i["CachePolicy"]["Id"] for i in cf.list_cache_policies(Type="custom")["CachePolicyList"]["Items"]] == [pid]
    got = cf.get_cache_policy(Id=CACHING_DISABLED)
    assert got["CachePolicy"]["CachePolicyConfig"]["MaxTTL"] == 0 and got["ETag"]
    with pytest.raises(ClientError) as exc:
        cf.delete_cache_policy(Id=CACHING_DISABLED, IfMatch=got["ETag"])
    assert code_of(exc) == ("IllegalDelete", 400)

    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    cfg = cf.get_distribution_config(Id=dist_id)
    new = copy.deepcopy(cfg["DistributionConfig"])
    new["DefaultCacheBehavior"]["CachePolicyId"] = pid
    cf.update_distribution(Id=dist_id, DistributionConfig=new, IfMatch=cfg["ETag"])
    wait_deployed(cf, dist_id)
    assert api.pushed[-1]["CachePolicies"][pid]["MaxTTL"] == 120  # the POPs get the policy with the config
    with pytest.raises(ClientError) as exc:
        cf.delete_cache_policy(Id=pid, IfMatch=created["ETag"])
    assert code_of(exc) == ("CachePolicyInUse", 409)
    with pytest.raises(ClientError) as exc:
        cf.update_cache_policy(Id=pid, IfMatch="E0000000000000", CachePolicyConfig=POLICY)
    assert code_of(exc) == ("PreconditionFailed", 412)
    pushes = len(api.pushed)
    changed = copy.deepcopy(POLICY) | {"MaxTTL": 300}
    updated = cf.update_cache_policy(Id=pid, IfMatch=created["ETag"], CachePolicyConfig=changed)
    assert updated["ETag"] != created["ETag"]
    assert cf.get_cache_policy_config(Id=pid)["CachePolicyConfig"]["MaxTTL"] == 300
    end = time.monotonic() + 5  # a policy the distribution uses: redeployed to the POPs
    while len(api.pushed) == pushes or api.pushed[-1]["CachePolicies"][pid]["MaxTTL"] != 300:
        assert time.monotonic() < end, "the changed policy was not redeployed"
        time.sleep(0.02)


def test_origin_request_policy_lifecycle(api: CloudFrontApiServer) -> None:
    cf = api.client()
    created = cf.create_origin_request_policy(OriginRequestPolicyConfig=ORP)
    pid, etag = created["OriginRequestPolicy"]["Id"], created["ETag"]
    assert cf.get_origin_request_policy_config(Id=pid)["OriginRequestPolicyConfig"] == ORP
    names = {i["OriginRequestPolicy"]["OriginRequestPolicyConfig"]["Name"]
             for i in cf.list_origin_request_policies(Type="managed")["OriginRequestPolicyList"]["Items"]}
    assert "Managed-AllViewer" in names and "with-ua" not in names
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    cfg = cf.get_distribution_config(Id=dist_id)
    new = copy.deepcopy(cfg["DistributionConfig"])
    new["DefaultCacheBehavior"]["OriginRequestPolicyId"] = pid
    etag_d = cf.update_distribution(Id=dist_id, DistributionConfig=new, IfMatch=cfg["ETag"])["ETag"]
    with pytest.raises(ClientError) as exc:
        cf.delete_origin_request_policy(Id=pid, IfMatch=etag)
    assert code_of(exc) == ("OriginRequestPolicyInUse", 409)
    del new["DefaultCacheBehavior"]["OriginRequestPolicyId"]
    cf.update_distribution(Id=dist_id, DistributionConfig=new, IfMatch=etag_d)
    with pytest.raises(ClientError) as exc:
        cf.delete_origin_request_policy(Id=pid)
    assert code_of(exc) == ("InvalidIfMatchVersion", 400)
    cf.delete_origin_request_policy(Id=pid, IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        cf.get_origin_request_policy(Id=pid)
    assert code_of(exc) == ("NoSuchOriginRequestPolicy", 404)


def test_response_headers_policies_and_create_distribution_are_unsupported(api: CloudFrontApiServer) -> None:
    cf = api.client()
    with pytest.raises(ClientError) as exc:
        cf.list_response_headers_policies()
    assert code_of(exc) == ("UnsupportedOperation", 400)


def test_a_deployment_the_pops_refuse_stays_in_progress_and_is_retried(api: CloudFrontApiServer) -> None:
    cf = api.client()
    dist_id = cf.list_distributions()["DistributionList"]["Items"][0]["Id"]
    cfg = cf.get_distribution_config(Id=dist_id)
    api.fail_pops = True
    etag = cf.update_distribution(Id=dist_id, DistributionConfig=cfg["DistributionConfig"], IfMatch=cfg["ETag"])["ETag"]
    time.sleep(0.3)
    assert cf.get_distribution(Id=dist_id)["Distribution"]["Status"] == "InProgress"
    api.fail_pops = False
    assert wait_deployed(cf, dist_id)["ETag"] == etag  # the deployer retries every second


def test_a_restart_keeps_api_updates_while_the_file_is_unchanged(tmp_path: Path) -> None:
    from edge.cdn.config.settings import Settings
    from edge.control.cloudfront_api.distributions import DistributionService, document_path

    settings, state = Settings(pops=()), tmp_path / "state"
    source = dist_file(tmp_path / "dist.json")
    first = DistributionService.open(state, settings, source)
    doc = first.document()
    doc["ETag"], doc["Distribution"]["DistributionConfig"]["Comment"] = "EAPIUPDATE0001", "via the API"
    document_path(state).write_text(json.dumps(doc))  # what an UpdateDistribution persisted
    again = DistributionService.open(state, settings, source)
    assert (again.id, again.etag, again.document()["Distribution"]["DistributionConfig"]["Comment"]) == (
        first.id, "EAPIUPDATE0001", "via the API")
    edited = json.loads(source.read_text())
    edited["DistributionConfig"]["Comment"] = "from the file"
    source.write_text(json.dumps(edited))  # the file changed while the stack was down: it wins, the Id stays
    third = DistributionService.open(state, settings, source)
    assert third.id == first.id and third.etag != "EAPIUPDATE0001"
    assert third.document()["Distribution"]["DistributionConfig"]["Comment"] == "from the file"


async def test_an_invalid_file_edit_keeps_the_running_configuration(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from edge.cdn.config.settings import Settings
    from edge.control.cloudfront_api.distributions import DistributionService

    source = dist_file(tmp_path / "dist.json")
    service = await asyncio.to_thread(DistributionService.open, tmp_path / "state", Settings(pops=()), source)
    etag = service.etag
    bad = json.loads(source.read_text())
    bad["DistributionConfig"]["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "sometimes"
    source.write_text(json.dumps(bad))
    assert await service.file_changed() is False
    assert service.etag == etag and service.status == "Deployed"
    assert "DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy" in caplog.text and str(source) in caplog.text
    good = json.loads(source.read_text())
    good["DistributionConfig"]["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "redirect-to-https"
    source.write_text(json.dumps(good))
    assert await service.file_changed() is True
    assert service.etag != etag and service.status == "InProgress"
    assert service.distribution.default_behavior.viewer_protocol_policy == "redirect-to-https"
    assert await service.file_changed() is False  # the same contents again: nothing to deploy
