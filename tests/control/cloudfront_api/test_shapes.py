"""The model-driven XML codec against botocore's own serializer and parser: what boto3 sends parses back to the
parameters it was given, what we render parses (as boto3 parses it) to the dict we rendered."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError
from edge.control.cloudfront_api.shapes import complete_required, parse_payload, render_payload, service_model

CONFIG: dict[str, Any] = {
    "CallerReference": "r", "Comment": "c & <d>", "Enabled": True, "DefaultRootObject": "index.html",
    "Aliases": {"Quantity": 1, "Items": ["www.example.com"]},
    "Origins": {"Quantity": 1, "Items": [{
        "Id": "o", "DomainName": "app.example.com", "OriginPath": "",
        "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-A", "HeaderValue": "1"}]},
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
                               "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                               "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5},
        "ConnectionAttempts": 3, "ConnectionTimeout": 10}]},
    "DefaultCacheBehavior": {
        "TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all", "Compress": False,
        "AllowedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"],
                           "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}, "Headers": {"Quantity": 0}},
        "MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000,
        "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
            "LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:1",
            "EventType": "viewer-request", "IncludeBody": False}]}},
    "CacheBehaviors": {"Quantity": 0},
    "CustomErrorResponses": {"Quantity": 1, "Items": [{"ErrorCode": 404, "ResponsePagePath": "/e.html",
                                                       "ResponseCode": "200", "ErrorCachingMinTTL": 10}]},
    "PriceClass": "PriceClass_All", "HttpVersion": "http2", "IsIPV6Enabled": True,
}


def test_what_boto3_sends_parses_back_to_its_parameters() -> None:
    op = service_model().operation_model("UpdateDistribution")
    request = create_serializer("rest-xml").serialize_to_request(
        {"Id": "E1", "IfMatch": "E2", "DistributionConfig": CONFIG}, op)
    assert parse_payload("UpdateDistribution", request["body"]) == CONFIG


def test_what_we_render_parses_as_boto3_parses_it() -> None:
    op = service_model().operation_model("GetDistributionConfig")
    body = render_payload("GetDistributionConfig", CONFIG)
    assert b"<Items><Origin><Id>o</Id>" in body and b"<Items><Method>GET</Method>" in body
    parsed = create_parser("rest-xml").parse({"status_code": 200, "headers": {"ETag": "E2"}, "body": body},
                                             op.output_shape)
    assert parsed["DistributionConfig"] == CONFIG and parsed["ETag"] == "E2"


@pytest.mark.parametrize(("body", "needle"), [
    (b"<DistributionConfig><Nope>1</Nope></DistributionConfig>", "DistributionConfig.Nope"),
    (b"<DistributionConfig><Enabled>yes</Enabled></DistributionConfig>", "DistributionConfig.Enabled"),
    (b"<DistributionConfig><Origins><Quantity>x</Quantity></Origins></DistributionConfig>",
     "DistributionConfig.Origins.Quantity"),
    (b"<DistributionConfig><Aliases><Items><Alias>a</Alias></Items></Aliases></DistributionConfig>", "<CNAME>"),
    (b"<InvalidationBatch/>", "Expected a DistributionConfig"),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><DistributionConfig/>', "DOCTYPE"),
])
def test_a_bad_document_is_invalid_argument_naming_the_element(body: bytes, needle: str) -> None:
    with pytest.raises(CloudFrontApiError) as exc:
        parse_payload("UpdateDistribution", body)
    assert exc.value.code == "InvalidArgument" and needle in exc.value.message


def test_an_empty_body_is_missing_body() -> None:
    with pytest.raises(CloudFrontApiError) as exc:
        parse_payload("CreateInvalidation", b"  ")
    assert exc.value.code == "MissingBody"


def test_complete_required_fills_what_cloudfront_returns() -> None:
    out = complete_required("DistributionConfig", {
        "CallerReference": "r",
        "Origins": {"Items": [{"Id": "o", "DomainName": "d", "CustomOriginConfig": {"OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                 "ForwardedValues": {"Headers": {"Items": ["Host"]}}}})
    assert out["Comment"] == "" and out["Enabled"] is True and out["Origins"]["Quantity"] == 1
    assert out["Origins"]["Items"][0]["CustomOriginConfig"] == {"OriginProtocolPolicy": "http-only", "HTTPPort": 80,
                                                                "HTTPSPort": 443}
    assert out["DefaultCacheBehavior"]["ForwardedValues"] == {"Headers": {"Items": ["Host"], "Quantity": 1},
                                                              "QueryString": False, "Cookies": {"Forward": "none"}}


def test_every_error_code_the_api_raises_has_the_models_status() -> None:
    from edge.cdn.cloudfront_functions.api_errors import STATUS

    model = {s.name: s.metadata["error"]["httpStatusCode"] for s in service_model().error_shapes
             if "error" in s.metadata}
    ours = {code: status for code, status in STATUS.items() if code in model}
    assert ours == {code: model[code] for code in ours}
    # the codes botocore's model does not name: KeyValueStore's (its own model) and the API reference's
    assert set(STATUS) - set(model) <= {"InvalidationBatchAlreadyExists", "ConflictException", "ValidationException",
                                        "ResourceNotFoundException", "ServiceQuotaExceededException",
                                        "AccessDeniedException", "InternalServerException"}
