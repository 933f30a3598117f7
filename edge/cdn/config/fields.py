"""How edgelab treats every field of a CloudFront ``DistributionConfig``: the table the loader's startup lines and
the README's field table come from (tests/cdn/config/test_fields.py checks that it covers every member of botocore's
``DistributionConfig``, ``Origin``, ``CacheBehavior`` and origin config shapes).

Three kinds of treatment:

* ``EMULATED``: the field changes what the POPs do, as CloudFront does (the module that does it is named);
* ``NO_LOCAL_EFFECT``: the field means nothing on one machine (certificates, WAF, logging buckets, price classes,
  IPv6...); the stack starts and prints one line per such field that is set, saying how it is treated
  (:func:`notice`);
* ``REFUSED``: the field would change behaviour edgelab cannot reproduce; a configuration that sets it is refused with
  the field, the reason and the next step (:func:`refusal`).

Sources: the CloudFront API Reference (``DistributionConfig``, ``Origin``, ``CacheBehavior``,
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_DistributionConfig.html) and "Values that you
specify when you create or update a distribution"
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/distribution-web-values-specify.html).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = ["FIELDS", "FieldTreatment", "markdown_table", "notice", "refusal"]

Kind = Literal["emulated", "no-local-effect", "refused"]


@dataclass(frozen=True, slots=True)
class FieldTreatment:
    """What edgelab does with one field: ``kind`` and, for the README and the startup line, ``text``; ``next_step``
    for refused fields (what to do instead)."""

    kind: Kind
    text: str
    next_step: str = ""


def _e(text: str) -> FieldTreatment:
    return FieldTreatment("emulated", text)


def _n(text: str) -> FieldTreatment:
    return FieldTreatment("no-local-effect", text)


def _r(text: str, next_step: str) -> FieldTreatment:
    return FieldTreatment("refused", text, next_step)


# Keyed by the field's name within its shape: "DistributionConfig.X", "Origin.X", "CacheBehavior.X" (also the default
# behavior), "CustomOriginConfig.X", "S3OriginConfig.X", "VpcOriginConfig.X".
FIELDS: Mapping[str, FieldTreatment] = MappingProxyType({
    # --- DistributionConfig ------------------------------------------------------------------------------------------
    "DistributionConfig.CallerReference": _n("identifies the create request to CloudFront (idempotency); not used"),
    "DistributionConfig.Aliases": _n("every POP answers any Host; aliases are not checked and need no certificate "
                                     "locally (signed-URL resources are rebuilt from the Host the viewer used)"),
    "DistributionConfig.DefaultRootObject": _e("a request for exactly / asks the origin for this object "
                                               "(steps/viewer_request); the lone '/' that the API accepts means "
                                               "the root itself"),
    "DistributionConfig.Origins": _e("custom, S3 and VPC origins, reached where the settings' [origins] map them"),
    "DistributionConfig.OriginGroups": _e("failover to the secondary origin on the listed statuses, connection "
                                          "failures and timeouts, for GET/HEAD/OPTIONS (steps/origin_fetch)"),
    "DistributionConfig.DefaultCacheBehavior": _e("the behavior of every path no other behavior matches"),
    "DistributionConfig.CacheBehaviors": _e("path patterns in order, first match wins (config/behaviors)"),
    "DistributionConfig.CustomErrorResponses": _e("error pages and codes, error caching TTLs (pipeline)"),
    "DistributionConfig.Comment": _n("a note for people; not used"),
    "DistributionConfig.Logging": _n("standard logs go to an S3 bucket on AWS; edgelab writes no access logs "
                                     "(the POPs' stats and the function logs are at /edgelab/)"),
    "DistributionConfig.PriceClass": _n("selects edge locations on AWS; every POP of the settings serves"),
    "DistributionConfig.Enabled": _e("false: every request is refused with CloudFront's 403"),
    "DistributionConfig.ViewerCertificate": _n("the viewer TLS certificate on AWS; no certificate is loaded from "
                                               "ACM/IAM, the POPs use edgelab's own listener setup"),
    "DistributionConfig.Restrictions": _e("GeoRestriction allow/block lists against each POP's simulated viewer "
                                          "location, CloudFront's 403 (steps/geo)"),
    "DistributionConfig.WebACLId": _n("AWS WAF rules are not evaluated: requests are not filtered (a viewer-request "
                                      "function such as functions/bot-filter can play a rule locally)"),
    "DistributionConfig.HttpVersion": _n("the POPs speak HTTP/1.1 to viewers whatever the value"),
    "DistributionConfig.IsIPV6Enabled": _n("the POPs listen on the addresses of the settings"),
    "DistributionConfig.ContinuousDeploymentPolicyId": _n("continuous deployment: the POPs serve this (primary) "
                                                          "configuration; no traffic goes to a staging copy"),
    "DistributionConfig.Staging": _n("a staging distribution is served like a primary one"),
    "DistributionConfig.AnycastIpListId": _n("anycast static IPs do not exist locally; the POPs listen on their "
                                             "configured ports"),
    "DistributionConfig.TenantConfig": _n("multi-tenant parameters: the distribution is served as one tenant, each "
                                          "{{parameter}} in an origin's DomainName/OriginPath replaced by its "
                                          "DefaultValue"),
    "DistributionConfig.ConnectionMode": _n("direct or tenant-only: the POPs serve the distribution itself, as its "
                                            "one tenant (see TenantConfig)"),
    "DistributionConfig.ViewerMtlsConfig": _r("viewer mutual TLS (Mode required) would refuse viewers without a "
                                              "client certificate, which edgelab's listeners do not ask for",
                                              "set ViewerMtlsConfig.Mode to optional (or remove it) for local runs"),
    "DistributionConfig.ConnectionFunctionAssociation": _n("connection functions (viewer mTLS) are not run"),
    "DistributionConfig.CacheTagConfig": _n("cache tags are not recorded; invalidate by path (edgelab invalidate)"),
    # --- Origin --------------------------------------------------------------------------------------------------------
    "Origin.Id": _e("what behaviors and origin groups name"),
    "Origin.DomainName": _e("the origin's name; where it is really reached comes from [origins] in the settings"),
    "Origin.OriginPath": _e("prefixed to every origin request path"),
    "Origin.CustomHeaders": _e("added to every origin request"),
    "Origin.S3OriginConfig": _e("an S3 origin: a local directory or URL from [origins]"),
    "Origin.CustomOriginConfig": _e("a custom HTTP origin"),
    "Origin.VpcOriginConfig": _e("a VPC origin: reached like a custom origin at its DomainName (HTTP, port 80, "
                                 "unless [origins] maps it)"),
    "Origin.ConnectionAttempts": _e("connection attempts before 502 (or failover)"),
    "Origin.ConnectionTimeout": _e("connection timeout per attempt"),
    "Origin.ResponseCompletionTimeout": _n("not enforced: OriginReadTimeout bounds each read instead"),
    "Origin.OriginShield": _e("the origin's misses go through the shield tier of OriginShieldRegion "
                              "(edge.cdn.tiers; its own cache and request collapsing)"),
    "Origin.OriginAccessControlId": _n("OAC signs requests to S3 on AWS; local S3 directories need no signature"),
    "CustomOriginConfig.HTTPPort": _e("the port for HTTP (unless [origins] maps the domain elsewhere)"),
    "CustomOriginConfig.HTTPSPort": _e("the port for HTTPS"),
    "CustomOriginConfig.OriginProtocolPolicy": _e("http-only, https-only or match-viewer"),
    "CustomOriginConfig.OriginSslProtocols": _n("TLS protocol versions toward the origin: the local origin client's "
                                                "defaults apply"),
    "CustomOriginConfig.OriginReadTimeout": _e("504 when the origin does not answer in time"),
    "CustomOriginConfig.OriginKeepaliveTimeout": _e("idle origin connections are closed after it"),
    "CustomOriginConfig.IpAddressType": _n("ipv4/ipv6/dualstack: loopback origins"),
    "CustomOriginConfig.OriginMtlsConfig": _n("no client certificate is presented to origins"),
    "CustomOriginConfig.OriginHttpVersion": _n("origins are reached over HTTP/1.1"),
    "S3OriginConfig.OriginAccessIdentity": _e("shown to functions as the origin's auth method"),
    "S3OriginConfig.OriginReadTimeout": _n("local S3 directories answer at once"),
    "VpcOriginConfig.VpcOriginId": _n("the VPC origin resource does not exist locally: DomainName is reached"),
    "VpcOriginConfig.OwnerAccountId": _n("cross-account VPC origins: no accounts locally"),
    "VpcOriginConfig.OriginReadTimeout": _e("504 when the origin does not answer in time"),
    "VpcOriginConfig.OriginKeepaliveTimeout": _e("idle origin connections are closed after it"),
    "VpcOriginConfig.OriginHttpVersion": _n("origins are reached over HTTP/1.1"),
    # --- CacheBehavior (and DefaultCacheBehavior) ---------------------------------------------------------------------
    "CacheBehavior.PathPattern": _e("CloudFront's pattern syntax, case-sensitive (config/behaviors)"),
    "CacheBehavior.TargetOriginId": _e("an origin or an origin group"),
    "CacheBehavior.TrustedSigners": _e("legacy signers: signed URLs and cookies checked with the key pairs listed "
                                       "under [trusted_signers] in the settings (steps/signed_access)"),
    "CacheBehavior.TrustedKeyGroups": _e("signed URLs and cookies checked with the public keys of [key_groups] in the "
                                         "settings, CloudFront's 403s (steps/signed_access)"),
    "CacheBehavior.ViewerProtocolPolicy": _e("allow-all, redirect-to-https, https-only"),
    "CacheBehavior.AllowedMethods": _e("other methods get CloudFront's 403; CachedMethods says what is cached"),
    "CacheBehavior.SmoothStreaming": _n("Microsoft Smooth Streaming: files are served as they are"),
    "CacheBehavior.Compress": _e("compression of eligible responses"),
    "CacheBehavior.LambdaFunctionAssociations": _e("Lambda@Edge functions at the four events"),
    "CacheBehavior.FunctionAssociations": _e("CloudFront Functions at the viewer events"),
    "CacheBehavior.FieldLevelEncryptionId": _r("field-level encryption would encrypt POST form fields before the "
                                               "origin sees them, which edgelab does not do",
                                               "remove FieldLevelEncryptionId for local runs (or encrypt the fields "
                                               "in an origin-request function)"),
    "CacheBehavior.RealtimeLogConfigArn": _n("real-time logs go to Kinesis on AWS; none are sent"),
    "CacheBehavior.CachePolicyId": _e("managed policies by ID or name, custom ones from [cache_policies]"),
    "CacheBehavior.OriginRequestPolicyId": _e("the managed origin request policies"),
    "CacheBehavior.ResponseHeadersPolicyId": _e("managed policies by ID or name, custom ones from "
                                                "[response_headers_policies] (steps/response_headers)"),
    "CacheBehavior.GrpcConfig": _r("gRPC needs HTTP/2 from the viewer to the origin; the POPs speak HTTP/1.1",
                                   "set GrpcConfig.Enabled to false for local runs"),
    "CacheBehavior.ForwardedValues": _e("legacy cache key and forwarding settings"),
    "CacheBehavior.MinTTL": _e("legacy TTLs (with ForwardedValues)"),
    "CacheBehavior.DefaultTTL": _e("legacy TTLs (with ForwardedValues)"),
    "CacheBehavior.MaxTTL": _e("legacy TTLs (with ForwardedValues)"),
})


def notice(shape_field: str, path: str, detail: str = "") -> str:
    """The startup line for a no-local-effect field set at ``path``: ``path: <how it is treated>``."""
    text = FIELDS[shape_field].text
    return f"{path}: {detail + '; ' if detail else ''}{text}"


def refusal(shape_field: str) -> str:
    """The error message for a refused field: the reason and the next step."""
    t = FIELDS[shape_field]
    return f"not supported by edgelab: {t.text}; next step: {t.next_step}"


_KIND_LABEL = {"emulated": "emulated", "no-local-effect": "accepted, no local effect (startup line)",
               "refused": "refused"}


def markdown_table() -> str:
    """The README's table of every field (tests/cdn/config/test_fields.py keeps the README in step with it)."""
    rows = ["| field | edgelab | what it does locally |", "|---|---|---|"]
    for name, t in FIELDS.items():
        text = f"{t.text}; next step: {t.next_step}" if t.kind == "refused" else t.text
        rows.append(f"| `{name}` | {_KIND_LABEL[t.kind]} | {text.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
