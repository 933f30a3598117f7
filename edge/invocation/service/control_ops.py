"""Control-plane operations of the service (async wrappers over the registry): functions, versions, aliases,
concurrency, layers, code downloads. :class:`ControlOps` is one component of
:class:`~edge.invocation.service.facade.LambdaService`, which forwards these methods.

Parameters use AWS member names where the request is a structure (``params`` mappings as boto3 would send
them, with ``Code.ZipFile`` / ``Content.ZipFile`` already base64-decoded to bytes). Blocking work runs in
``asyncio.to_thread``. Unqualified-only operations reject a qualified name. After a write that changes what
runs or how much may run (delete, concurrency), the executor is brought in line at once
(:meth:`ExecutorSync.reconcile`) rather than at the next change-feed poll.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.invocation.errors import InvalidParameterValueException, ResourceNotFoundException
from edge.invocation.models import UNSET
from edge.invocation.registry.concurrency import AccountSummary
from edge.invocation.registry.config import DEFAULT_ROLE, FunctionConfig, config_from_request, update_config
from edge.invocation.registry.core import Registry
from edge.invocation.registry.db import AliasRecord, LayerVersionRecord, VersionRecord
from edge.invocation.registry.names import parse_layer_name
from edge.invocation.registry.packages import PackageInfo, zip_directory
from edge.invocation.service.executor_sync import ExecutorSync
from edge.invocation.service.refs import split_name, unqualified_name

__all__ = ["ControlOps", "FunctionDetails", "ProvisionedView"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class FunctionDetails:
    """GetFunction: the resolved version, the alias it was reached through, tags and reserved concurrency."""

    record: VersionRecord
    alias: str | None
    tags: dict[str, str]
    reserved: int | None


@dataclass(frozen=True, slots=True)
class ProvisionedView:
    """A provisioned concurrency configuration with its allocation in this process (GetProvisionedConcurrencyConfig)."""

    function_name: str
    qualifier: str
    requested: int
    allocated: int
    status: str  # IN_PROGRESS | READY | FAILED
    reason: str | None
    last_modified: str


class ControlOps:
    """Function, version, alias, concurrency and layer operations.

    Depends on the ``registry``, the ``sync`` that keeps this process's executor in line with it (reconcile
    after writes, provisioned status), the account concurrency limit, and ``check_dead_letter_target`` (the
    async operations' check that a DeadLetterConfig target is a local queue; blocking)."""

    def __init__(self, registry: Registry, sync: ExecutorSync, account_limit: int,
                 check_dead_letter_target: Callable[[str, str], None]) -> None:
        self.registry = registry
        self.account_limit = account_limit
        self._sync = sync
        self._check_dead_letter_target = check_dead_letter_target

    def _checked(self, config: FunctionConfig, name: str) -> FunctionConfig:
        """DeadLetterConfig.TargetArn must name an existing local queue (blocking)."""
        if config.dead_letter_target:
            self._check_dead_letter_target(config.dead_letter_target, name)
        return config

    # -- helpers -----------------------------------------------------------------------------------------

    def _name(self, function_name: str, qualifier: str | None = None) -> tuple[str, str | None]:
        return split_name(self.registry, function_name, qualifier)

    def _unqualified(self, function_name: str) -> str:
        return unqualified_name(self.registry, function_name)

    def _package(self, code: Any, code_dir: Path | None, member: str = "Code") -> PackageInfo:
        """Blocking: zip ``code_dir`` or take ``Code.ZipFile`` bytes, then store and extract."""
        if code_dir is not None:
            return self.registry.store_code(zip_directory(Path(code_dir)))
        if not isinstance(code, Mapping):
            raise InvalidParameterValueException(f"{member} is required: provide ZipFile")
        data = code.get("ZipFile")
        if isinstance(data, bytes | bytearray) and data:
            return self.registry.store_code(bytes(data))
        if code.get("S3Bucket") or code.get("S3Key") or code.get("ImageUri"):
            raise InvalidParameterValueException(
                "S3 and container-image code locations are not supported by edgelab: upload the zip as ZipFile"
            )
        raise InvalidParameterValueException(f"{member} must contain a non-empty ZipFile")

    # -- functions ---------------------------------------------------------------------------------------

    async def create_function(self, params: Mapping[str, Any], *, code_dir: Path | None = None) -> VersionRecord:
        """CreateFunction. ``code_dir`` (development) is zipped deterministically instead of ``Code.ZipFile``.
        ``Role`` defaults to an edgelab role ARN when absent."""
        name = self._unqualified(str(params.get("FunctionName") or ""))
        config = config_from_request({"Role": DEFAULT_ROLE, **params})
        tags = params.get("Tags") or {}
        if not isinstance(tags, dict):
            raise InvalidParameterValueException("Tags must be a map of strings")

        def work() -> VersionRecord:
            self._checked(config, name)
            package = self._package(params.get("Code"), code_dir)
            return self.registry.create_function(name, config, package, publish=bool(params.get("Publish")), tags=tags)

        return await asyncio.to_thread(work)

    async def get_function(self, function_name: str, qualifier: str | None = None) -> FunctionDetails:
        name, q = self._name(function_name, qualifier)
        record, alias = await asyncio.to_thread(self.registry.get_version, name, q)
        tags, reserved = await asyncio.to_thread(self.registry.function_extras, name)
        return FunctionDetails(record=record, alias=alias, tags=tags, reserved=reserved)

    async def get_function_configuration(self, function_name: str, qualifier: str | None = None) -> tuple[VersionRecord, str | None]:
        name, q = self._name(function_name, qualifier)
        return await asyncio.to_thread(self.registry.get_version, name, q)

    async def list_functions(self, *, all_versions: bool = False) -> list[VersionRecord]:
        return await asyncio.to_thread(self.registry.list_functions, all_versions=all_versions)

    async def update_function_code(self, function_name: str, params: Mapping[str, Any], *, code_dir: Path | None = None) -> VersionRecord:
        """UpdateFunctionCode (ZipFile or ``code_dir``; Publish, RevisionId, Architectures, DryRun)."""
        name = self._unqualified(function_name)
        archs = params.get("Architectures")
        architectures = tuple(update_config(_probe(), {"Architectures": archs}).architectures) if archs else None

        def work() -> VersionRecord:
            package = self._package({k: params.get(k) for k in ("ZipFile", "S3Bucket", "S3Key", "ImageUri")}, code_dir, "ZipFile")
            if params.get("DryRun"):
                record, _ = self.registry.get_version(name)
                return record
            return self.registry.update_function_code(
                name, package, revision_id=params.get("RevisionId"), publish=bool(params.get("Publish")),
                architectures=architectures,
            )  # fmt: skip

        return await asyncio.to_thread(work)

    async def update_function_configuration(self, function_name: str, params: Mapping[str, Any]) -> VersionRecord:
        name = self._unqualified(function_name)
        return await asyncio.to_thread(
            self.registry.update_function_configuration, name, lambda cfg: self._checked(update_config(cfg, params), name),
            revision_id=params.get("RevisionId"),
        )  # fmt: skip

    async def delete_function(self, function_name: str, qualifier: str | None = None) -> None:
        name, q = self._name(function_name, qualifier)
        await asyncio.to_thread(self.registry.delete_function, name, q)
        await self._sync.reconcile()  # retire its environments now rather than at the next poll

    # -- versions ----------------------------------------------------------------------------------------

    async def publish_version(
        self, function_name: str, *, code_sha256: str | None = None, description: str | None = None, revision_id: str | None = None
    ) -> VersionRecord:
        name = self._unqualified(function_name)
        return await asyncio.to_thread(
            self.registry.publish_version, name, code_sha256=code_sha256, description=description, revision_id=revision_id
        )

    async def list_versions(self, function_name: str) -> list[VersionRecord]:
        return await asyncio.to_thread(self.registry.list_versions, self._unqualified(function_name))

    # -- aliases -----------------------------------------------------------------------------------------

    async def create_alias(
        self, function_name: str, name: str, function_version: str, *, description: str = "", weights: Mapping[str, Any] | None = None
    ) -> AliasRecord:
        fn = self._unqualified(function_name)
        return await asyncio.to_thread(self.registry.aliases.create, fn, name, function_version, description, weights)

    async def get_alias(self, function_name: str, name: str) -> AliasRecord:
        return await asyncio.to_thread(self.registry.aliases.get, self._unqualified(function_name), name)

    async def update_alias(
        self, function_name: str, name: str, *, function_version: str | None = None, description: str | None = None,
        weights: Mapping[str, Any] | None = UNSET, revision_id: str | None = None,
    ) -> AliasRecord:
        """``weights=UNSET`` keeps the routing config; ``{}`` removes it."""
        fn = self._unqualified(function_name)
        return await asyncio.to_thread(
            lambda: self.registry.aliases.update(
                fn, name, version=function_version, description=description, weights=weights, revision_id=revision_id
            )
        )

    async def list_aliases(self, function_name: str, function_version: str | None = None) -> list[AliasRecord]:
        return await asyncio.to_thread(self.registry.aliases.list, self._unqualified(function_name), function_version)

    async def delete_alias(self, function_name: str, name: str) -> None:
        await asyncio.to_thread(self.registry.aliases.delete, self._unqualified(function_name), name)
        await self._sync.reconcile()

    # -- concurrency -------------------------------------------------------------------------------------

    async def put_function_concurrency(self, function_name: str, count: int) -> int:
        name = self._unqualified(function_name)
        result = await asyncio.to_thread(self.registry.concurrency.put_reserved, name, count, self.account_limit)
        await self._sync.reconcile()
        return result

    async def get_function_concurrency(self, function_name: str) -> int | None:
        return await asyncio.to_thread(self.registry.concurrency.get_reserved, self._unqualified(function_name))

    async def delete_function_concurrency(self, function_name: str) -> None:
        await asyncio.to_thread(self.registry.concurrency.delete_reserved, self._unqualified(function_name))
        await self._sync.reconcile()

    async def put_provisioned_concurrency(self, function_name: str, qualifier: str, count: int) -> ProvisionedView:
        name = self._unqualified(function_name)
        record = await asyncio.to_thread(self.registry.concurrency.put_provisioned, name, qualifier, count, self.account_limit)
        await self._sync.reconcile()
        # AWS answers the PUT with IN_PROGRESS / Allocated 0 whatever happens next
        return ProvisionedView(
            function_name=name,
            qualifier=qualifier,
            requested=record.requested,
            allocated=0,
            status="IN_PROGRESS",
            reason=None,
            last_modified=record.last_modified,
        )

    async def get_provisioned_concurrency(self, function_name: str, qualifier: str) -> ProvisionedView:
        name = self._unqualified(function_name)

        def work() -> tuple[Any, str]:
            record = self.registry.concurrency.get_provisioned(name, qualifier)
            with self.registry.db.read() as cur:
                return record, self.registry.concurrency.target_version(cur, name, qualifier)

        record, version = await asyncio.to_thread(work)
        allocated, status, reason = self._sync.provisioned_status(name, version)
        return ProvisionedView(
            function_name=name,
            qualifier=qualifier,
            requested=record.requested,
            allocated=allocated,
            status=status,
            reason=reason,
            last_modified=record.last_modified,
        )

    async def list_provisioned_concurrency(self, function_name: str) -> list[ProvisionedView]:
        name = self._unqualified(function_name)
        items = await asyncio.to_thread(self.registry.concurrency.list_provisioned, name)
        views = []
        for record, version in items:
            allocated, status, reason = self._sync.provisioned_status(name, version)
            views.append(
                ProvisionedView(
                    function_name=name,
                    qualifier=record.qualifier,
                    requested=record.requested,
                    allocated=allocated,
                    status=status,
                    reason=reason,
                    last_modified=record.last_modified,
                )
            )
        return views

    async def delete_provisioned_concurrency(self, function_name: str, qualifier: str) -> None:
        await asyncio.to_thread(self.registry.concurrency.delete_provisioned, self._unqualified(function_name), qualifier)
        await self._sync.reconcile()

    async def get_account_settings(self) -> AccountSummary:
        return await asyncio.to_thread(self.registry.concurrency.account_summary, self.account_limit)

    # -- layers ------------------------------------------------------------------------------------------

    async def publish_layer_version(self, layer_name: str, params: Mapping[str, Any], *, content_dir: Path | None = None) -> LayerVersionRecord:
        name = parse_layer_name(layer_name, self.registry.region)

        def work() -> LayerVersionRecord:
            package = self._package(params.get("Content"), content_dir, "Content")
            return self.registry.layers.publish(
                name, package, description=str(params.get("Description") or ""),
                compatible_runtimes=list(params.get("CompatibleRuntimes") or []),
                compatible_architectures=list(params.get("CompatibleArchitectures") or []),
                license_info=params.get("LicenseInfo"),
            )  # fmt: skip

        return await asyncio.to_thread(work)

    async def get_layer_version(self, layer_name: str, version: int) -> LayerVersionRecord:
        name = parse_layer_name(layer_name, self.registry.region)
        return await asyncio.to_thread(self.registry.layers.get, name, version)

    async def get_layer_version_by_arn(self, arn: str) -> LayerVersionRecord:
        return await asyncio.to_thread(self.registry.layers.get_by_arn, arn)

    async def list_layer_versions(self, layer_name: str) -> list[LayerVersionRecord]:
        name = parse_layer_name(layer_name, self.registry.region)
        return await asyncio.to_thread(self.registry.layers.list_versions, name)

    async def list_layers(self) -> list[LayerVersionRecord]:
        return await asyncio.to_thread(self.registry.layers.list_latest)

    async def delete_layer_version(self, layer_name: str, version: int) -> None:
        name = parse_layer_name(layer_name, self.registry.region)
        await asyncio.to_thread(self.registry.layers.delete, name, version)

    async def read_code(self, sha256_hex: str) -> bytes:
        """The stored zip for GetFunction's Code.Location download (404 for anything but a stored hex digest)."""
        if not _HEX64.fullmatch(sha256_hex) or not self.registry.code.has(sha256_hex):
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return await asyncio.to_thread(self.registry.code.read_zip, sha256_hex)


def _probe() -> FunctionConfig:
    """A valid config used to run the Architectures validator on its own."""
    return FunctionConfig(runtime="python3.12", handler="x.y")
