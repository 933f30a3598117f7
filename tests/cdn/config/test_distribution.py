"""Distribution loading: the three accepted input shapes, every honoured field, and errors naming fields."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edge.cdn.config.distribution import ConfigError, load_distribution
from edge.cdn.config.settings import parse_settings
from edge.cdn.models import CustomOrigin, S3Origin

FIXTURES = Path(__file__).parents[1] / "fixtures"
FULL = FIXTURES / "full-distribution.json"


def full() -> dict[str, Any]:
    return json.loads(FULL.read_text())


def cfg() -> dict[str, Any]:
    return full()["DistributionConfig"]


def error_of(source: Any, settings: Any = None) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        load_distribution(source, settings)
    return ei.value


class TestShapes:
    def test_get_distribution_config_output(self) -> None:
        d = load_distribution(FULL)
        assert d.etag == "E2QWRUHAPOMQZL"
        assert d.enabled and d.default_root_object == "index.html"
        assert d.aliases == ("www.example.com",) and d.http_version == "http2and3"
        assert [b.path_pattern for b in d.all_behaviors] == ["/api/*", "static/*.css", "/img/??/*.jpg", "*"]

    def test_bare_config_and_dict_input(self) -> None:
        a, b = load_distribution(cfg()), load_distribution(full())
        assert a.behaviors == b.behaviors and a.id == b.id  # id derives from the config content

    def test_get_distribution_output_keeps_id_and_domain(self) -> None:
        d = load_distribution({"ETag": "X", "Distribution": {"Id": "E1ABC", "DomainName": "d1.cloudfront.net",
                                                             "DistributionConfig": cfg()}})
        assert (d.id, d.domain_name) == ("E1ABC", "d1.cloudfront.net")

    def test_unreadable_and_invalid_files(self, tmp_path: Path) -> None:
        assert "cannot read" in str(error_of(tmp_path / "nope.json"))
        bad = tmp_path / "bad.json"
        bad.write_text("{not json")
        assert "invalid JSON" in str(error_of(bad))

    def test_unexpected_top_level_field(self) -> None:
        src = full()
        src["Extra"] = 1
        assert error_of(src).path == "Extra"


class TestOrigins:
    def test_custom_origin_fields(self) -> None:
        o = load_distribution(FULL).origins["app-origin"]
        assert (o.http_port, o.https_port, o.protocol_policy) == (80, 443, "http-only")
        assert (o.read_timeout, o.keepalive_timeout, o.connection_attempts, o.connection_timeout) == (30, 5, 3, 10)
        assert o.custom_headers == (("X-Origin-Secret", "s3cr3t"),)
        eo = o.to_edge_origin()
        assert isinstance(eo, CustomOrigin) and eo.connect_host == "app.example.com:80" and eo.origin_id == "app-origin"

    def test_local_mapping_from_settings(self, tmp_path: Path) -> None:
        s = parse_settings({"origins": {"app.example.com": "127.0.0.1:8000",
                                        "assets-bucket.s3.eu-central-1.amazonaws.com": "dir:static"}}, tmp_path)
        d = load_distribution(FULL, s)
        assert d.origins["app-origin"].to_edge_origin().connect_host == "127.0.0.1:8000"
        s3 = d.origins["assets-bucket"]
        assert s3.is_s3 and s3.s3_directory == (tmp_path / "static").resolve() and s3.path == "/v2"
        eo = s3.to_edge_origin()
        assert isinstance(eo, S3Origin) and eo.region == "eu-central-1" and eo.auth_method == "origin-access-identity"

    def test_match_viewer_protocol(self) -> None:
        c = cfg()
        c["Origins"]["Items"][0]["CustomOriginConfig"]["OriginProtocolPolicy"] = "match-viewer"
        o = load_distribution(c).origins["app-origin"]
        assert o.to_edge_origin("https").port == 443 and o.to_edge_origin("http").port == 80  # type: ignore[union-attr]

    def test_both_origin_configs_is_error(self) -> None:
        c = cfg()
        c["Origins"]["Items"][0]["S3OriginConfig"] = {"OriginAccessIdentity": ""}
        assert "exactly one" in str(error_of(c))

    def test_quantity_mismatch_names_field(self) -> None:
        c = cfg()
        c["Origins"]["Quantity"] = 3
        e = error_of(c)
        assert e.path == "DistributionConfig.Origins.Quantity" and "Items has 2" in e.message

    def test_origin_shield_is_read_with_its_region(self) -> None:
        """OriginShield is emulated (edge.cdn.tiers): the Region is kept when enabled, ignored when disabled."""
        c = cfg()
        c["Origins"]["Items"][1]["OriginShield"] = {"Enabled": True, "OriginShieldRegion": "eu-central-1"}
        c["Origins"]["Items"][0]["OriginShield"] = {"Enabled": False, "OriginShieldRegion": "us-east-2"}
        origins = list(load_distribution(c).origins.values())
        assert [o.shield_region for o in origins[:2]] == ["", "eu-central-1"]

    @pytest.mark.parametrize(("shield", "path", "words"), [
        ({"Enabled": True}, "OriginShield.OriginShieldRegion", "required when Enabled"),
        ({"Enabled": True, "OriginShieldRegion": "mars-north-1"}, "OriginShield.OriginShieldRegion", "us-east-2"),
        ({"Enabled": True, "OriginShieldRegion": "US East (Ohio)"}, "OriginShield.OriginShieldRegion", "Region code"),
        ({"Enabled": True, "OriginShieldRegion": "eu-north-1"}, "OriginShield.OriginShieldRegion", "not a Region"),
        ({"OriginShieldRegion": "eu-west-1"}, "OriginShield.Enabled", "required"),
        ({"Enabled": "yes", "OriginShieldRegion": "eu-west-1"}, "OriginShield.Enabled", "true or false"),
    ])
    def test_origin_shield_errors_name_the_field_and_the_regions(self, shield: dict[str, Any], path: str,
                                                                 words: str) -> None:
        c = cfg()
        c["Origins"]["Items"][1]["OriginShield"] = shield
        e = error_of(c)
        assert e.path == f"DistributionConfig.Origins.Items[1].{path}" and words in e.message, e

    @staticmethod
    def _group(**kw: Any) -> dict[str, Any]:
        ids = [o["Id"] for o in cfg()["Origins"]["Items"]][:2]
        g = {"Id": "g", "FailoverCriteria": {"StatusCodes": {"Quantity": 2, "Items": [500, 503]}},
             "Members": {"Quantity": 2, "Items": [{"OriginId": i} for i in ids]}}
        return {**g, **kw}

    def test_origin_groups(self) -> None:
        c = cfg()
        c["OriginGroups"] = {"Quantity": 1, "Items": [self._group()]}
        c["DefaultCacheBehavior"]["TargetOriginId"] = "g"
        d = load_distribution(c)
        primary, secondary = (o["Id"] for o in cfg()["Origins"]["Items"][:2])
        assert d.origin_for(d.default_behavior).id == primary
        failover = d.failover_for(d.default_behavior)
        assert failover is not None and failover[0].id == secondary and failover[1] == {500, 503}

    @pytest.mark.parametrize(("change", "path", "text"), [
        ({"Id": None}, "Items[0].Id", "required"),
        ({"FailoverCriteria": {"StatusCodes": {"Quantity": 1, "Items": [302]}}},
         "Items[0].FailoverCriteria.StatusCodes.Items[0]", "is not one of 400, 403"),
        ({"Members": {"Quantity": 1, "Items": [{"OriginId": "nope"}]}}, "Items[0].Members", "exactly two"),
        ({"SelectionCriteria": "media-quality-based"}, "Items[0].SelectionCriteria", "next step: use default"),
    ])
    def test_origin_group_errors(self, change: dict[str, Any], path: str, text: str) -> None:
        c = cfg()
        c["OriginGroups"] = {"Quantity": 1, "Items": [self._group(**change)]}
        e = error_of(c)
        assert e.path.startswith(f"DistributionConfig.OriginGroups.{path}") and text in str(e), str(e)

    def test_bad_timeout_range(self) -> None:
        c = cfg()
        c["Origins"]["Items"][0]["CustomOriginConfig"]["OriginReadTimeout"] = 0
        assert error_of(c).path.endswith("CustomOriginConfig.OriginReadTimeout")


class TestBehaviors:
    def test_methods_and_policies(self) -> None:
        d = load_distribution(FULL)
        api, _css, img, default = d.all_behaviors
        assert api.allowed_methods == frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"})
        assert api.cached_methods == frozenset({"GET", "HEAD", "OPTIONS"})
        assert api.cache_policy.name == "CachingDisabled" and api.cache_policy.caching_disabled
        assert api.origin_request_policy is not None and api.origin_request_policy.name == "AllViewer"
        assert img.cache_policy.min_ttl == 1 and not img.cache_policy.gzip
        assert default.is_default and default.cache_policy.name == "CachingOptimized" and default.compress
        assert default.origin_request_policy and default.origin_request_policy.name == "AllViewerExceptHostHeader"

    def test_legacy_forwarded_values(self) -> None:
        p = load_distribution(FULL).behaviors[1].cache_policy
        assert p.legacy and (p.min_ttl, p.default_ttl, p.max_ttl) == (0, 3600, 86400)
        assert p.query_strings.behavior == "whitelist" and p.query_strings.names == ("v",)
        assert p.forward_query_strings and p.cookies.names == ("theme",)
        assert p.headers.names == ("Origin",) and p.gzip and p.brotli

    def test_legacy_forward_all_headers_disables_caching(self) -> None:
        c = cfg()
        c["CacheBehaviors"]["Items"][1]["ForwardedValues"]["Headers"] = {"Quantity": 1, "Items": ["*"]}
        assert load_distribution(c).behaviors[1].cache_policy.caching_disabled

    def test_legacy_ttl_defaults_follow_min(self) -> None:
        c = cfg()
        b = c["CacheBehaviors"]["Items"][1]
        b["MinTTL"] = 100_000
        del b["DefaultTTL"], b["MaxTTL"]
        p = load_distribution(c).behaviors[1].cache_policy
        assert (p.min_ttl, p.default_ttl, p.max_ttl) == (100_000, 100_000, 31_536_000)

    def test_lambda_associations(self) -> None:
        d = load_distribution(FULL)
        a = d.behaviors[0].association("origin-request")
        assert a and a.include_body and a.function_name == "auth" and a.qualifier == "7"
        assert [x.event_type for x in d.default_behavior.lambda_associations] == ["viewer-request", "viewer-response"]

    def test_custom_cache_policy_from_settings(self) -> None:
        s = parse_settings({"cache_policies": {"my-policy": {
            "Name": "Mine", "MinTTL": 5, "DefaultTTL": 50, "MaxTTL": 500,
            "ParametersInCacheKeyAndForwardedToOrigin": {
                "EnableAcceptEncodingGzip": True, "EnableAcceptEncodingBrotli": False,
                "HeadersConfig": {"HeaderBehavior": "none"}, "CookiesConfig": {"CookieBehavior": "all"},
                "QueryStringsConfig": {"QueryStringBehavior": "allExcept",
                                       "QueryStrings": {"Quantity": 1, "Items": ["utm"]}}}}}})
        c = cfg()
        c["CacheBehaviors"]["Items"][2]["CachePolicyId"] = "my-policy"
        p = load_distribution(c, s).behaviors[2].cache_policy
        assert (p.name, p.min_ttl, p.gzip, p.brotli, p.query_strings.behavior) == ("Mine", 5, True, False, "allExcept")
        c["CacheBehaviors"]["Items"][2]["CachePolicyId"] = "Mine"  # by name too
        assert load_distribution(c, s).behaviors[2].cache_policy == p

    @pytest.mark.parametrize(("mutate", "path", "text"), [
        (lambda b: b.update(FieldLevelEncryptionId="abc"), "CacheBehaviors.Items[2].FieldLevelEncryptionId",
         "not supported by edgelab"),
        (lambda b: b.update(FunctionAssociations={"Quantity": 1, "Items": [{}]}),
         "CacheBehaviors.Items[2].FunctionAssociations.Items[0]", "InvalidFunctionAssociation"),
        (lambda b: b.update(TargetOriginId="nope"), "CacheBehaviors.Items[2].TargetOriginId", "no origin"),
        (lambda b: b.update(CachePolicyId="00000000-dead-beef-0000-000000000000"),
         "CacheBehaviors.Items[2].CachePolicyId", "unknown cache policy"),
        (lambda b: b.update(OriginRequestPolicyId="nope"), "CacheBehaviors.Items[2].OriginRequestPolicyId",
         "unknown origin request policy"),
        (lambda b: b.update(ResponseHeadersPolicyId="67f7725c-6f97-4210-82d7-5512b31e9d0"),
         "CacheBehaviors.Items[2].ResponseHeadersPolicyId", "unknown response headers policy"),
        (lambda b: b.update(FieldLevelEncryptionId="C3KM2WVD605UIQ"),
         "CacheBehaviors.Items[2].FieldLevelEncryptionId", "next step: remove FieldLevelEncryptionId"),
        (lambda b: b.update(GrpcConfig={"Enabled": True}), "CacheBehaviors.Items[2].GrpcConfig", "HTTP/2"),
        (lambda b: b.update(TrustedKeyGroups={"Enabled": True, "Quantity": 1, "Items": ["k"]}),
         "CacheBehaviors.Items[2].TrustedKeyGroups.Items[0]", "define it under [key_groups.k]"),
        (lambda b: b.update(TrustedSigners={"Enabled": True, "Quantity": 0}),
         "CacheBehaviors.Items[2].TrustedSigners.Items", "at least one"),
        (lambda b: b.update(ViewerProtocolPolicy="sometimes"), "CacheBehaviors.Items[2].ViewerProtocolPolicy", ""),
        (lambda b: b.update(PathPattern="/a b"), "CacheBehaviors.Items[2].PathPattern", "invalid path pattern"),
        (lambda b: b.update(PathPattern="/api/*"), "CacheBehaviors.Items[2].PathPattern", "duplicate"),
        (lambda b: b.update(ForwardedValues={"QueryString": False}), "CacheBehaviors.Items[2].ForwardedValues",
         "cannot be combined"),
        (lambda b: b.pop("CachePolicyId"), "CacheBehaviors.Items[2]", "either CachePolicyId or ForwardedValues"),
        (lambda b: b.update(MaxTTL=5), "CacheBehaviors.Items[2].MaxTTL", "cannot be combined"),
        (lambda b: b["AllowedMethods"].update(Quantity=1, Items=["GET"]), "CacheBehaviors.Items[2].AllowedMethods",
         "must be"),
        (lambda b: b["AllowedMethods"]["CachedMethods"].update(Quantity=3, Items=["GET", "HEAD", "OPTIONS"]),
         "CacheBehaviors.Items[2].AllowedMethods.CachedMethods", "must be"),
        (lambda b: b.update(Unheard="of"), "CacheBehaviors.Items[2].Unheard", "not supported by edgelab"),
    ])
    def test_behavior_errors_name_the_field(self, mutate: Any, path: str, text: str) -> None:
        c = cfg()
        mutate(c["CacheBehaviors"]["Items"][2])
        e = error_of(c)
        assert e.path.startswith(f"DistributionConfig.{path}") and text in str(e)

    @pytest.mark.parametrize(("assoc", "text"), [
        ({"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f", "EventType": "viewer-request"},
         "must reference a specific function version"),
        ({"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST",
          "EventType": "viewer-request"}, "must reference a specific function version"),
        ({"LambdaFunctionARN": "arn:aws:lambda:eu-west-1:123456789012:function:f:1",
          "EventType": "viewer-request"}, "must be in region 'us-east-1'"),
        ({"LambdaFunctionARN": "not-an-arn", "EventType": "viewer-request"}, "not a valid Lambda function ARN"),
        ({"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:1", "EventType": "viewer-reply"},
         "is not valid"),
        ({"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:1", "EventType": "origin-response",
          "IncludeBody": True}, "IncludeBody option can only be used"),
        ({"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:1", "EventType": "origin-response",
          "Extra": 1}, "not supported by edgelab"),
    ])
    def test_association_errors(self, assoc: dict[str, Any], text: str) -> None:
        c = cfg()
        c["CacheBehaviors"]["Items"][2]["LambdaFunctionAssociations"] = {"Quantity": 1, "Items": [assoc]}
        e = error_of(c)
        assert e.path.startswith("DistributionConfig.CacheBehaviors.Items[2].LambdaFunctionAssociations.Items[0]")
        assert text in e.message

    def test_unpublished_qualifier_allowed_by_switch(self) -> None:
        c = cfg()
        arn = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"
        c["DefaultCacheBehavior"]["LambdaFunctionAssociations"] = {
            "Quantity": 1, "Items": [{"LambdaFunctionARN": arn, "EventType": "origin-response"}]}
        d = load_distribution(c, parse_settings({"edge": {"allow_unpublished_qualifiers": True}}))
        assert d.default_behavior.lambda_associations[0].qualifier == "$LATEST"

    def test_duplicate_event_type(self) -> None:
        c = cfg()
        items = c["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"]
        items.append(dict(items[0]))
        c["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Quantity"] = 3
        assert "duplicate" in error_of(c).message


CFF_ARN = "arn:aws:cloudfront::797438674243:function/"
LE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:1"


class TestFunctionAssociations:
    """CloudFront Functions associations with CloudFront's rules ("Restrictions on all edge functions")."""

    @staticmethod
    def _with(fa: list[dict[str, Any]], le: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        c = cfg()
        b = c["CacheBehaviors"]["Items"][2]
        b["FunctionAssociations"] = {"Quantity": len(fa), "Items": fa}
        b["LambdaFunctionAssociations"] = {"Quantity": len(le or []), "Items": le or []}
        return c

    def test_viewer_events_parsed_with_names_from_any_account(self) -> None:
        c = self._with([{"FunctionARN": CFF_ARN + "rewrite", "EventType": "viewer-request"},
                        {"FunctionARN": "arn:aws:cloudfront::111111111111:function/hdrs", "EventType": "viewer-response"}],
                       [{"LambdaFunctionARN": LE_ARN, "EventType": "origin-request"}])
        b = load_distribution(c).behaviors[2]
        assert [(a.event_type, a.function_name, a.account) for a in b.function_associations] == [
            ("viewer-request", "rewrite", "797438674243"), ("viewer-response", "hdrs", "111111111111")]
        assert [a.event_type for a in b.lambda_associations] == ["origin-request"]  # allowed combination

    @pytest.mark.parametrize(("fa", "le", "text"), [
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "origin-request"}], [], "origin-facing event types"),
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "viewer-reply"}], [], "not valid for a CloudFront function"),
        ([{"FunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:f:1", "EventType": "viewer-request"}], [],
         "not a valid CloudFront function ARN"),
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "viewer-request"},
          {"FunctionARN": CFF_ARN + "g", "EventType": "viewer-request"}], [], "one edge function per event type"),
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "viewer-request"}],
         [{"LambdaFunctionARN": LE_ARN, "EventType": "viewer-response"}], "can't combine CloudFront Functions"),
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "viewer-response"}],
         [{"LambdaFunctionARN": LE_ARN, "EventType": "viewer-response"}], "can't combine CloudFront Functions"),
        ([{"FunctionARN": CFF_ARN + "f", "EventType": "viewer-request", "IncludeBody": True}], [], "Unknown field"),
    ])
    def test_refused_with_cloudfronts_error(self, fa: list[dict[str, Any]], le: list[dict[str, Any]],
                                            text: str) -> None:
        e = error_of(self._with(fa, le))
        assert e.path.startswith("DistributionConfig.CacheBehaviors.Items[2].FunctionAssociations")
        assert "InvalidFunctionAssociation" in e.message and text in e.message


class TestTopLevel:
    def test_custom_error_responses(self) -> None:
        d = load_distribution(FULL)
        assert d.custom_error_responses[403].response_code == 200  # "200" string in API output
        assert d.error_caching_ttl(404) == 30 and d.error_caching_ttl(500) is None

    @pytest.mark.parametrize(("item", "field"), [
        ({"ErrorCode": 418}, "ErrorCode"),
        ({"ErrorCode": 404, "ResponsePagePath": "/x.html"}, "ResponseCode"),
        ({"ErrorCode": 404, "ResponsePagePath": "x.html", "ResponseCode": "404"}, "ResponsePagePath"),
        ({"ErrorCode": 404, "ResponseCode": "299"}, "ResponseCode"),
    ])
    def test_custom_error_response_errors(self, item: dict[str, Any], field: str) -> None:
        c = cfg()
        c["CustomErrorResponses"] = {"Quantity": 1, "Items": [item]}
        assert error_of(c).path == f"DistributionConfig.CustomErrorResponses.Items[0].{field}"

    def test_no_local_effect_fields_accepted_with_values(self) -> None:
        c = cfg()
        c["WebACLId"] = "arn:aws:wafv2:us-east-1:1:global/webacl/x"
        c["Logging"] = {"Enabled": True, "IncludeCookies": False, "Bucket": "logs.s3.amazonaws.com", "Prefix": "p"}
        assert load_distribution(c).enabled

    @pytest.mark.parametrize(("field", "value"), [
        ("DefaultRootObject", "/index.html"),
        ("ViewerMtlsConfig", {"Mode": "required", "TrustStoreConfig": {"TrustStoreId": "ts-1"}}),
    ])
    def test_top_level_errors(self, field: str, value: Any) -> None:
        c = cfg()
        c[field] = value
        assert error_of(c).path.startswith(f"DistributionConfig.{field}")

    def test_default_values_of_unknown_fields_are_fine(self) -> None:
        c = cfg()
        c["AnycastIpListId"] = ""
        c["DefaultCacheBehavior"]["GrpcConfig"] = {"Enabled": False}
        c["TenantConfig"] = {"ParameterDefinitions": {"Quantity": 0}}
        load_distribution(c)

    def test_no_origins(self) -> None:
        c = cfg()
        c["Origins"] = {"Quantity": 0, "Items": []}
        assert "at least one origin" in error_of(c).message

    def test_too_many_behaviors_unless_relaxed(self) -> None:
        c = cfg()
        base = c["CacheBehaviors"]["Items"][2]
        c["CacheBehaviors"]["Items"] = [dict(copy.deepcopy(base), PathPattern=f"/p{i}/*") for i in range(26)]
        c["CacheBehaviors"]["Quantity"] = 26
        assert "at most 25" in error_of(c).message
        assert len(load_distribution(c, parse_settings({"edge": {"relax_limits": True}})).behaviors) == 26


def test_custom_header_quota() -> None:
    c = cfg()
    c["Origins"]["Items"][0]["CustomHeaders"] = {
        "Quantity": 11, "Items": [{"HeaderName": f"X-H{i}", "HeaderValue": "v"} for i in range(11)]}
    assert error_of(c).path == "DistributionConfig.Origins.Items[0].CustomHeaders"
    d = load_distribution(c, parse_settings({"edge": {"relax_limits": True}}))
    assert len(d.origins["app-origin"].custom_headers) == 11


def test_non_string_list_items_are_config_errors() -> None:
    c = cfg()
    c["CacheBehaviors"]["Items"][2]["AllowedMethods"]["Items"] = [["GET"], "HEAD"]
    assert error_of(c).path.endswith("AllowedMethods.Items[0]")
    c = cfg()
    c["CacheBehaviors"]["Items"][1]["ForwardedValues"]["QueryStringCacheKeys"]["Items"] = [7]
    assert error_of(c).path.endswith("QueryStringCacheKeys.Items[0]")
