"""Custom cache policies and origin request policies through CloudFront's API: Create / Get / GetConfig / Update /
Delete / List (API reference: API_CreateCachePolicy ... API_ListOriginRequestPolicies,
https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateCachePolicy.html), usable by
``UpdateDistribution`` (``CachePolicyId`` / ``OriginRequestPolicyId``).

* A configuration is validated by the loader's parsers (:func:`edge.cdn.config.policies.parse_cache_policy_config`,
  :func:`~edge.cdn.config.policies.parse_origin_request_policy_config`): ``InvalidArgument`` naming the field.
  Names are unique per kind, managed names included (``CachePolicyAlreadyExists`` /
  ``OriginRequestPolicyAlreadyExists``). Ids are UUIDs, as CloudFront's.
* ``List...Policies`` lists the managed policies edgelab emulates (``Type: managed``, named ``Managed-...`` as AWS
  lists them) and the custom ones (``Type: custom``), filtered by ``Type``; managed policies cannot be updated
  (``IllegalUpdate``) or deleted (``IllegalDelete``).
* Updating a policy the distribution uses redeploys the distribution to every POP (CloudFront propagates a policy
  change to the distributions that use it); deleting one it uses is ``CachePolicyInUse`` /
  ``OriginRequestPolicyInUse``. ``IfMatch`` works as for distributions (``InvalidIfMatchVersion``,
  ``PreconditionFailed``).
* Records persist in ``<state>/cloudfront/policies.json``; the distribution document carries the custom
  configurations to the POPs (:func:`edge.control.cloudfront_api.distributions.effective_settings`).

Response headers policies are not part of this API yet (another change builds them).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.cdn.cloudfront_functions.api_errors import api_error
from edge.cdn.config.policies import (
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    CachePolicy,
    ConfigError,
    KeyList,
    OriginRequestPolicy,
    parse_cache_policy_config,
    parse_origin_request_policy_config,
)
from edge.control.cloudfront_api.distributions import DistributionService, new_etag, now_iso

__all__ = ["CACHE", "ORIGIN_REQUEST", "PolicyKind", "PolicyService"]

log = logging.getLogger("edgelab.control.policies")


@dataclass(frozen=True)
class PolicyKind:
    key: str  # in policies.json and the distribution document
    label: str  # CachePolicy | OriginRequestPolicy
    reference: str  # the behavior field that names it
    parse: Callable[[str, Any, str], Any]
    managed: Mapping[str, Any]
    render: Callable[[Any], dict[str, Any]]  # a managed policy's configuration

    @property
    def config_key(self) -> str:
        return f"{self.label}Config"


def _key_list(kl: KeyList, behavior: str, names: str) -> dict[str, Any]:
    out: dict[str, Any] = {behavior: kl.behavior}
    if kl.names:
        out[names] = {"Quantity": len(kl.names), "Items": list(kl.names)}
    return out


def _cache_config(p: CachePolicy) -> dict[str, Any]:
    return {"Name": f"Managed-{p.name}", "DefaultTTL": p.default_ttl, "MaxTTL": p.max_ttl, "MinTTL": p.min_ttl,
            "ParametersInCacheKeyAndForwardedToOrigin": {
                "EnableAcceptEncodingGzip": p.gzip, "EnableAcceptEncodingBrotli": p.brotli,
                "HeadersConfig": _key_list(p.headers, "HeaderBehavior", "Headers"),
                "CookiesConfig": _key_list(p.cookies, "CookieBehavior", "Cookies"),
                "QueryStringsConfig": _key_list(p.query_strings, "QueryStringBehavior", "QueryStrings")}}


def _origin_request_config(p: OriginRequestPolicy) -> dict[str, Any]:
    return {"Name": f"Managed-{p.name}",
            "HeadersConfig": _key_list(p.headers, "HeaderBehavior", "Headers"),
            "CookiesConfig": _key_list(p.cookies, "CookieBehavior", "Cookies"),
            "QueryStringsConfig": _key_list(p.query_strings, "QueryStringBehavior", "QueryStrings")}


CACHE = PolicyKind("CachePolicies", "CachePolicy", "CachePolicyId", parse_cache_policy_config,
                   MANAGED_CACHE_POLICIES, _cache_config)
ORIGIN_REQUEST = PolicyKind("OriginRequestPolicies", "OriginRequestPolicy", "OriginRequestPolicyId",
                            parse_origin_request_policy_config, MANAGED_ORIGIN_REQUEST_POLICIES,
                            _origin_request_config)


def _managed_etag(policy_id: str) -> str:
    return "E" + hashlib.sha256(policy_id.encode()).hexdigest()[:13].upper()


class PolicyService:
    """Both kinds of policy; ``kind`` is :data:`CACHE` or :data:`ORIGIN_REQUEST`."""

    def __init__(self, state_dir: Path, distributions: DistributionService | None = None) -> None:
        self.path = state_dir / "cloudfront" / "policies.json"
        self.distributions = distributions
        self._lock = asyncio.Lock()
        self._records: dict[str, dict[str, dict[str, Any]]] = self._read()  # kind key -> id -> record

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s): no custom policies", self.path, exc)
            data = {}
        return {k.key: dict(data.get(k.key) or {}) for k in (CACHE, ORIGIN_REQUEST)}

    def _write(self, records: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(json.dumps(records, indent=1).encode())
        os.replace(tmp, self.path)

    def snapshot(self) -> dict[str, Any]:
        """The custom configurations by id, as the distribution document carries them to the POPs."""
        return {k.key: {pid: copy.deepcopy(r["Config"]) for pid, r in self._records[k.key].items()}
                for k in (CACHE, ORIGIN_REQUEST)}

    # ------------------------------------------------------------------------------------------ reads
    def _policy(self, kind: PolicyKind, pid: str, config: dict[str, Any], modified: str) -> dict[str, Any]:
        return {"Id": pid, "LastModifiedTime": modified, kind.config_key: copy.deepcopy(config)}

    def get(self, kind: PolicyKind, pid: str) -> tuple[dict[str, Any], str]:
        """Get...Policy: the policy and its ETag (managed ones too)."""
        if pid in kind.managed:
            return self._policy(kind, pid, kind.render(kind.managed[pid]), "2020-01-01T00:00:00.000Z"), \
                _managed_etag(pid)
        record = self._records[kind.key].get(pid)
        if record is None:
            raise api_error(f"No{'Such' + kind.label}", f"The {kind.label} {pid!r} does not exist (aws cloudfront "
                                                        f"list-{_cli(kind)}-policies).")
        return self._policy(kind, pid, record["Config"], record["LastModifiedTime"]), record["ETag"]

    def list_policies(self, kind: PolicyKind, type_filter: str | None, marker: str | None,
                      max_items: int) -> dict[str, Any]:
        if type_filter not in (None, "", "managed", "custom"):
            raise api_error("InvalidArgument", "Type must be managed or custom.")
        entries: list[dict[str, Any]] = []
        if type_filter in (None, "", "managed"):
            entries += [{"Type": "managed", kind.label: self.get(kind, pid)[0]} for pid in kind.managed]
        if type_filter in (None, "", "custom"):
            entries += [{"Type": "custom", kind.label: self.get(kind, pid)[0]} for pid in self._records[kind.key]]
        start = 0
        if marker:
            ids = [e[kind.label]["Id"] for e in entries]
            start = ids.index(marker) + 1 if marker in ids else len(ids)
        page = entries[start:start + max_items]
        out: dict[str, Any] = {"MaxItems": max_items, "Quantity": len(page), "Items": page}
        if start + max_items < len(entries):
            out["NextMarker"] = page[-1][kind.label]["Id"]
        return out

    # ------------------------------------------------------------------------------------------ changes
    def _validate(self, kind: PolicyKind, pid: str, config: Any) -> None:
        try:
            kind.parse(pid, config, kind.config_key)
        except ConfigError as exc:
            raise api_error("InvalidArgument", f"{exc.path}: {exc.message}") from None
        name = config.get("Name")
        clash = [p for p in kind.managed.values() if f"Managed-{p.name}" == name or p.name == name]
        clash += [other for other, r in self._records[kind.key].items() if other != pid and r["Config"]["Name"] == name]
        if clash:
            raise api_error(f"{kind.label}AlreadyExists", f"A {kind.label} named {name!r} already exists: choose "
                                                          "another Name.")

    def _check_custom(self, kind: PolicyKind, pid: str, if_match: str | None, verb: str) -> dict[str, Any]:
        if pid in kind.managed:
            raise api_error(f"Illegal{verb}", f"{pid} is an AWS managed {kind.label}: it cannot be "
                                              f"{verb.lower()}d; create a custom policy instead.")
        record = self._records[kind.key].get(pid)
        if record is None:
            self.get(kind, pid)  # raises NoSuch...
            raise AssertionError(pid)
        if not if_match:
            raise api_error("InvalidIfMatchVersion", f"The If-Match version is missing: pass the ETag of get-"
                                                     f"{_cli(kind)}-policy (--if-match).")
        if if_match != record["ETag"]:
            raise api_error("PreconditionFailed", f"The If-Match version {if_match!r} is not the current one "
                                                  f"({record['ETag']}).")
        return record

    async def create(self, kind: PolicyKind, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
        async with self._lock:
            pid = str(uuid.uuid4())
            self._validate(kind, pid, config)
            record: dict[str, Any] = {"ETag": new_etag(), "LastModifiedTime": now_iso(), "Config": config}
            self._records[kind.key][pid] = record
            await asyncio.to_thread(self._write, copy.deepcopy(self._records))
        return self._policy(kind, pid, config, record["LastModifiedTime"]), record["ETag"]

    async def update(self, kind: PolicyKind, pid: str, if_match: str | None,
                     config: dict[str, Any]) -> tuple[dict[str, Any], str]:
        async with self._lock:
            self._check_custom(kind, pid, if_match, "Update")
            self._validate(kind, pid, config)
            record: dict[str, Any] = {"ETag": new_etag(), "LastModifiedTime": now_iso(), "Config": config}
            self._records[kind.key][pid] = record
            await asyncio.to_thread(self._write, copy.deepcopy(self._records))
        if self.distributions is not None and self.distributions.policy_in_use(kind.reference, pid):
            await self.distributions.redeploy()  # the POPs get the new policy
        return self._policy(kind, pid, config, record["LastModifiedTime"]), record["ETag"]

    async def delete(self, kind: PolicyKind, pid: str, if_match: str | None) -> None:
        async with self._lock:
            self._check_custom(kind, pid, if_match, "Delete")
            if self.distributions is not None and self.distributions.policy_in_use(kind.reference, pid):
                raise api_error(f"{kind.label}InUse", f"{pid} is used by distribution {self.distributions.id}: "
                                                      f"point the behaviors at another {kind.reference} first.")
            del self._records[kind.key][pid]
            await asyncio.to_thread(self._write, copy.deepcopy(self._records))


def _cli(kind: PolicyKind) -> str:
    return "cache" if kind is CACHE else "origin-request"
