"""The loader's input forms and its treatment of every field that means nothing locally: the update-distribution
wrapper, create-with-tags, a UTF-8 byte order mark, DefaultRootObject '/', VPC origins, multi-tenant fields, one
startup line per no-local-effect field, and refusals that give the reason and the next step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.cdn.config.distribution import ConfigError, load_distribution
from edge.cdn.config.settings import parse_settings

FULL = Path(__file__).parents[1] / "fixtures" / "full-distribution.json"


def cfg() -> dict[str, Any]:
    return json.loads(FULL.read_text())["DistributionConfig"]


def test_update_distribution_cli_input_json_wrapper() -> None:
    d = load_distribution({"Id": "E1FRFF3JQNGRE1", "IfMatch": "E22JRKFI962P9U", "DistributionConfig": cfg()})
    assert (d.id, d.etag, d.domain_name) == ("E1FRFF3JQNGRE1", "E22JRKFI962P9U", "e1frff3jqngre1.cloudfront.net")


def test_create_with_tags_wrapper() -> None:
    d = load_distribution({"DistributionConfigWithTags": {"DistributionConfig": cfg(),
                                                          "Tags": {"Items": [{"Key": "k", "Value": "v"}]}}})
    assert d.default_root_object == "index.html"
    with pytest.raises(ConfigError, match="only top-level field"):
        load_distribution({"DistributionConfigWithTags": {"DistributionConfig": cfg()}, "Id": "E1"})


def test_unknown_wrapper_key_is_refused() -> None:
    with pytest.raises(ConfigError) as ei:
        load_distribution({"Id": "E1", "IfMatch": "X", "Etag": "typo", "DistributionConfig": cfg()})
    assert ei.value.path == "Etag"


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.json"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps({"DistributionConfig": cfg()}).encode())
    assert load_distribution(f).default_root_object == "index.html"


def test_default_root_object_slash_means_the_root() -> None:
    c = cfg()
    c["DefaultRootObject"] = "/"
    d = load_distribution(c)
    assert d.default_root_object == ""
    assert any(n.startswith("DistributionConfig.DefaultRootObject: '/' names the root") for n in d.notices)


def test_vpc_origin_is_reached_at_its_domain_or_mapping() -> None:
    c = cfg()
    c["Origins"]["Items"][0] = {"Id": "app-origin", "DomainName": "ip-10-0-0-1.eu-west-2.compute.internal",
                                "VpcOriginConfig": {"VpcOriginId": "vo_abc", "OriginReadTimeout": 20}}
    d = load_distribution(c)
    o = d.origins["app-origin"]
    assert (o.protocol_policy, o.connect_host, o.connect_port, o.read_timeout) == (
        "http-only", "ip-10-0-0-1.eu-west-2.compute.internal", 80, 20.0)
    s = parse_settings({"origins": {"ip-10-0-0-1.eu-west-2.compute.internal": "127.0.0.1:8111"}})
    assert load_distribution(c, s).origins["app-origin"].connect_port == 8111
    assert any("VpcOriginId: vo_abc -> ip-10-0-0-1" in n for n in d.notices)
    c["Origins"]["Items"][0]["CustomOriginConfig"] = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}
    with pytest.raises(ConfigError, match="exactly one of CustomOriginConfig, S3OriginConfig and VpcOriginConfig"):
        load_distribution(c)


def test_multi_tenant_parameters_take_their_default_values() -> None:
    c = cfg()
    c["ConnectionMode"] = "tenant-only"
    c["TenantConfig"] = {"ParameterDefinitions": [{"Name": "tenantName", "Definition": {
        "StringSchema": {"Comment": "", "DefaultValue": "root", "Required": False}}}]}
    c["Origins"]["Items"][1]["OriginPath"] = "/{{tenantName}}"
    d = load_distribution(c)
    assert d.origins["assets-bucket"].path == "/root"
    assert any(n.startswith("DistributionConfig.ConnectionMode: tenant-only;") for n in d.notices)
    c["Origins"]["Items"][1]["OriginPath"] = "/{{nope}}"
    with pytest.raises(ConfigError, match="not a TenantConfig parameter"):
        load_distribution(c)


def test_one_line_per_field_without_local_effect() -> None:
    c = cfg()
    c.update(WebACLId="arn:aws:wafv2:us-east-1:1:global/webacl/x", PriceClass="PriceClass_100",
             ContinuousDeploymentPolicyId="cd-1", Staging=False, AnycastIpListId="aip-1",
             Logging={"Enabled": True, "IncludeCookies": False, "Bucket": "logs.s3.amazonaws.com", "Prefix": "p"})
    c["DefaultCacheBehavior"]["RealtimeLogConfigArn"] = "arn:aws:cloudfront::1:realtime-log-config/x"
    fields = [n.split(":", 1)[0] for n in load_distribution(c).notices]
    for f in ("WebACLId", "PriceClass", "ContinuousDeploymentPolicyId", "AnycastIpListId", "Logging", "Aliases"):
        assert fields.count(f"DistributionConfig.{f}") == 1, f
    assert "DistributionConfig.Staging" not in fields  # false: nothing to say
    assert "DistributionConfig.DefaultCacheBehavior.RealtimeLogConfigArn" in fields
    waf = next(n for n in load_distribution(c).notices if n.startswith("DistributionConfig.WebACLId"))
    assert "not evaluated" in waf and "functions/bot-filter" in waf


def test_refusals_name_the_reason_and_the_next_step() -> None:
    c = cfg()
    c["DefaultCacheBehavior"]["FieldLevelEncryptionId"] = "C3KM2WVD605UIQ"
    with pytest.raises(ConfigError) as ei:
        load_distribution(c)
    assert ei.value.path == "DistributionConfig.DefaultCacheBehavior.FieldLevelEncryptionId"
    assert "field-level encryption" in ei.value.message and "next step:" in ei.value.message
