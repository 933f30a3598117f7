"""Registry records -> AWS Lambda JSON shapes (FunctionConfiguration, AliasConfiguration, layers, ...). Pure.

Field set follows reference §1.3 (recorded from real AWS): functions are ``State: Active`` at once and
``LastUpdateStatus: Successful`` (the create response has no LastUpdateStatus, as on AWS), unless their runtime is
not ready in this process (a Node.js major installing: ``State: Pending``, ``StateReasonCode: Creating``,
``LastUpdateStatus: InProgress``; the install failed: ``State: Failed``, ``StateReasonCode: InternalError``,
``LastUpdateStatus: Failed``, with the reason; https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
"""

from __future__ import annotations

import hashlib
from typing import Any

from edge.invocation.models import (
    ACTIVE,
    UNZIPPED_CODE_LIMIT,
    ZIPPED_CODE_LIMIT,
    AccountSummary,
    AliasRecord,
    LayerVersionRecord,
    ProvisionedView,
    RuntimeState,
    VersionRecord,
    function_arn,
    layer_arn,
)

__all__ = [
    "account_settings",
    "alias_configuration",
    "function_configuration",
    "layer_version",
    "layer_version_item",
    "layers_item",
    "provisioned_config",
]

TOTAL_CODE_SIZE_LIMIT = 80_530_636_800


def function_configuration(
    rec: VersionRecord, region: str, *, arn_qualifier: str | None = None, created: bool = False,
    state: RuntimeState = ACTIVE,
) -> dict[str, Any]:
    """FunctionConfiguration. ``arn_qualifier`` is what FunctionArn ends with (alias, version, ``$LATEST``);
    ``state`` is what the function's runtime says (``LambdaService.runtime_state``)."""
    cfg = rec.config
    out: dict[str, Any] = {
        "FunctionName": rec.function_name,
        "FunctionArn": function_arn(rec.function_name, region, arn_qualifier),
        "Runtime": cfg.runtime,
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": rec.code.size,
        "Description": cfg.description,
        "Timeout": cfg.timeout,
        "MemorySize": cfg.memory_size,
        "LastModified": rec.last_modified,
        "CodeSha256": rec.code.code_sha256,
        "Version": rec.version,
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": rec.revision_id,
        "State": "Active",
        "PackageType": cfg.package_type,
        "Architectures": list(cfg.architectures),
        "EphemeralStorage": {"Size": cfg.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "RuntimeVersionConfig": {"RuntimeVersionArn": _runtime_version_arn(cfg.runtime, region)},
        "LoggingConfig": {"LogFormat": cfg.log_format, "LogGroup": cfg.log_group or f"/aws/lambda/{rec.function_name}"},
    }
    if state.state != "Active":
        out["State"] = state.state
        out["StateReason"] = state.reason or ""
        out["StateReasonCode"] = state.code or "InternalError"
    if not created:
        out["LastUpdateStatus"] = {"Pending": "InProgress", "Failed": "Failed"}.get(state.state, "Successful")
        if state.state == "Failed":
            out["LastUpdateStatusReason"] = state.reason or ""
            out["LastUpdateStatusReasonCode"] = state.code or "InternalError"
    if cfg.environment is not None:
        out["Environment"] = {"Variables": dict(cfg.environment)}
    if rec.layers:
        out["Layers"] = [{"Arn": a.arn, "CodeSize": a.size} for a in rec.layers]
    if cfg.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": cfg.dead_letter_target}
    return out


def _runtime_version_arn(runtime: str, region: str) -> str:
    digest = hashlib.sha256(runtime.encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


def alias_configuration(alias: AliasRecord, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": function_arn(alias.function_name, region, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def layer_version(rec: LayerVersionRecord, region: str, location: str) -> dict[str, Any]:
    """PublishLayerVersion / GetLayerVersion response."""
    return {
        "Content": {"Location": location, "CodeSha256": rec.code.code_sha256, "CodeSize": rec.code.size},
        "LayerArn": layer_arn(rec.name, region),
        **layer_version_item(rec, region),
    }


def layer_version_item(rec: LayerVersionRecord, region: str) -> dict[str, Any]:
    """LayerVersionsListItem."""
    out: dict[str, Any] = {
        "LayerVersionArn": layer_arn(rec.name, region, rec.version),
        "Version": rec.version,
        "Description": rec.description,
        "CreatedDate": rec.created_date,
        "CompatibleRuntimes": list(rec.compatible_runtimes),
        "CompatibleArchitectures": list(rec.compatible_architectures),
    }
    if rec.license_info is not None:
        out["LicenseInfo"] = rec.license_info
    return out


def layers_item(rec: LayerVersionRecord, region: str) -> dict[str, Any]:
    """LayersListItem (ListLayers): the layer with its latest version."""
    return {
        "LayerName": rec.name,
        "LayerArn": layer_arn(rec.name, region),
        "LatestMatchingVersion": layer_version_item(rec, region),
    }


def provisioned_config(view: ProvisionedView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": view.requested,
        "AvailableProvisionedConcurrentExecutions": view.allocated,
        "AllocatedProvisionedConcurrentExecutions": view.allocated,
        "Status": view.status,
        "LastModified": view.last_modified,
    }
    if view.reason:
        out["StatusReason"] = view.reason
    return out


def account_settings(summary: AccountSummary) -> dict[str, Any]:
    return {
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
            "CodeSizeUnzipped": UNZIPPED_CODE_LIMIT,
            "CodeSizeZipped": ZIPPED_CODE_LIMIT,
            "ConcurrentExecutions": summary.concurrent_executions,
            "UnreservedConcurrentExecutions": summary.unreserved,
        },
        "AccountUsage": {"TotalCodeSize": summary.total_code_size, "FunctionCount": summary.function_count},
    }
