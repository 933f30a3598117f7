"""FunctionConfig: the mutable configuration of ``$LATEST`` (snapshotted by each version) and its validation.

Requests use AWS's member names (``Runtime``, ``Handler``, ``Timeout``...), as boto3 sends them. Validation
follows the Lambda model and service limits (reference §1.2, §4.7):

- Runtime: any runtime in AWS's enum is accepted and stored; anything else is InvalidParameterValueException
  (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#lambda-CreateFunction-request-Runtime).
  This build *executes* ``python3.x``, ``nodejs18.x``-``nodejs24.x`` and ``provided.al2``/``provided.al2023``
  (``edge.invocation.execution.runtimes``); invoking a function with another runtime (java, ruby, dotnet,
  ``go1.x``, older Node.js) fails with 502 InvalidRuntimeException saying so (decided here so that configurations
  written for AWS can still be created, listed and versioned).
- Handler: only AWS's API constraint (pattern ``[^\\s]+``, at most 128 characters). A handler the runtime cannot resolve
  (``index`` without an export, ``../x.h``, a missing file) is not an API error at AWS but an Init error
  (``Runtime.MalformedHandlerName``, ``Runtime.HandlerNotFound``, ``Runtime.ImportModuleError``), and so here.
- Timeout 1..900, MemorySize 128..10240, EphemeralStorage 512..10240, Handler <= 128 non-blank chars,
  Description <= 256, Environment <= 4 KB as compact JSON with no reserved keys, Layers <= 5.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from edge.invocation.errors import InvalidParameterValueException, validation_error
from edge.invocation.execution.runtimes import runtime_kind
from edge.invocation.models import ACCOUNT_ID, ENV_VARS_LIMIT, MAX_LAYERS

__all__ = ["DEFAULT_ROLE", "FunctionConfig", "config_from_request", "is_runnable_runtime", "update_config"]

DEFAULT_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/edgelab-lambda"
RUNTIMES = frozenset(
    {f"python3.{m}" for m in range(7, 15)}
    | {f"nodejs{v}.x" for v in (12, 14, 16, 18, 20, 22, 24)}
    | {"java8", "java8.al2", "java11", "java17", "java21", "dotnet6", "dotnet8", "ruby3.2", "ruby3.3", "ruby3.4"}
    | {"provided", "provided.al2", "provided.al2023", "go1.x"}
)
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
    }
)  # fmt: skip
_ROLE = re.compile(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+$")
_HANDLER = re.compile(r"^[^\s]+$")
_ENV_KEY = re.compile(r"^[a-zA-Z]([a-zA-Z0-9_])+$")
_ARCHITECTURES = frozenset({"x86_64", "arm64"})


def is_runnable_runtime(runtime: str) -> bool:
    """Whether this build can execute ``runtime`` (see the module docstring)."""
    return runtime_kind(runtime) is not None


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """Everything a version snapshots besides its code."""

    runtime: str
    handler: str
    role: str = DEFAULT_ROLE
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    ephemeral_storage: int = 512
    environment: dict[str, str] | None = None  # None: no Environment was ever given
    layers: tuple[str, ...] = ()  # layer version ARNs, attach order
    architectures: tuple[str, ...] = ("x86_64",)
    tracing_mode: str = "PassThrough"
    dead_letter_target: str | None = None
    log_format: str = "Text"
    log_group: str | None = None  # None: /aws/lambda/<name>
    package_type: str = "Zip"
    extra: dict[str, Any] = field(default_factory=dict)  # reserved for forward-compatible fields

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FunctionConfig:
        data = json.loads(text)
        data["layers"] = tuple(data.get("layers", ()))
        data["architectures"] = tuple(data.get("architectures", ("x86_64",)))
        return cls(**data)


def config_from_request(req: Mapping[str, Any]) -> FunctionConfig:
    """Build and validate the config of a CreateFunction request (defaults as AWS)."""
    base = FunctionConfig(runtime=_str(req, "Runtime", required=True), handler=_str(req, "Handler", required=True))
    return update_config(base, req)


def update_config(cfg: FunctionConfig, req: Mapping[str, Any]) -> FunctionConfig:
    """Apply the members present in an UpdateFunctionConfiguration-style request; validate the result.

    Environment replaces the whole map (as AWS). Layers replaces the list; layer existence is checked by the
    registry, which knows the database.
    """
    changes: dict[str, Any] = {}
    simple = {
        "Runtime": "runtime", "Handler": "handler", "Role": "role", "Description": "description",
    }  # fmt: skip
    for member, attr in simple.items():
        if member in req and req[member] is not None:
            changes[attr] = _str(req, member)
    for member, attr in (("Timeout", "timeout"), ("MemorySize", "memory_size")):
        if req.get(member) is not None:
            changes[attr] = _int(req, member)
    if req.get("EphemeralStorage") is not None:
        changes["ephemeral_storage"] = _int(_dict(req, "EphemeralStorage"), "Size")
    if req.get("Environment") is not None:
        variables = _dict(req, "Environment").get("Variables") or {}
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            raise InvalidParameterValueException("Environment variables must be a map of strings to strings")
        changes["environment"] = dict(variables)
    if req.get("Layers") is not None:
        layers = req["Layers"]
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidParameterValueException("Layers must be a list of layer version ARNs")
        changes["layers"] = tuple(layers)
    changes.update(_nested_changes(req))
    new = replace(cfg, **changes)
    validate_config(new)
    return new


def _nested_changes(req: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if req.get("Architectures") is not None:
        archs = req["Architectures"]
        if not isinstance(archs, list) or len(archs) != 1 or archs[0] not in _ARCHITECTURES:
            raise validation_error(archs, "architectures", "Member must have length less than or equal to 1")
        changes["architectures"] = tuple(archs)
    if req.get("TracingConfig") is not None:
        mode = _dict(req, "TracingConfig").get("Mode", "PassThrough")
        if mode not in ("Active", "PassThrough"):
            raise validation_error(mode, "tracingConfig.mode", "Member must satisfy enum value set: [Active, PassThrough]")
        changes["tracing_mode"] = mode
    if req.get("DeadLetterConfig") is not None:
        changes["dead_letter_target"] = _dict(req, "DeadLetterConfig").get("TargetArn") or None
    if req.get("LoggingConfig") is not None:
        logging = _dict(req, "LoggingConfig")
        if "LogFormat" in logging:
            if logging["LogFormat"] not in ("Text", "JSON"):
                raise validation_error(logging["LogFormat"], "loggingConfig.logFormat", "Member must satisfy enum value set: [Text, JSON]")
            changes["log_format"] = logging["LogFormat"]
        if logging.get("LogGroup"):
            changes["log_group"] = str(logging["LogGroup"])
    if req.get("PackageType") not in (None, "Zip"):
        raise InvalidParameterValueException("This build supports PackageType Zip only (container images are not supported)")
    return changes


def validate_config(cfg: FunctionConfig) -> None:
    if cfg.runtime not in RUNTIMES:
        raise InvalidParameterValueException(
            f"Value {cfg.runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(sorted(RUNTIMES))}] or be a valid ARN"
        )
    if not (1 <= len(cfg.handler) <= 128 and _HANDLER.match(cfg.handler)):
        raise validation_error(cfg.handler, "handler", r"Member must satisfy regular expression pattern: [^\s]+")
    if not _ROLE.match(cfg.role):
        raise validation_error(
            cfg.role, "role", r"Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
        )
    if len(cfg.description) > 256:
        raise validation_error(cfg.description, "description", "Member must have length less than or equal to 256")
    _range(cfg.timeout, "timeout", 1, 900)
    _range(cfg.memory_size, "memorySize", 128, 10240)
    _range(cfg.ephemeral_storage, "ephemeralStorage.size", 512, 10240)
    _validate_environment(cfg.environment or {})
    if len(cfg.layers) > MAX_LAYERS:
        raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")


def _validate_environment(env: Mapping[str, str]) -> None:
    bad = [k for k in env if not _ENV_KEY.match(k)]
    if bad:
        raise validation_error(
            bad[0], "environment.variables",
            "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
        )
    reserved = sorted(k for k in env if k in RESERVED_ENV_KEYS)
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided contains reserved keys that are currently not supported for modification. Reserved keys used "
            f"in this request: {','.join(reserved)}"
        )
    measured = json.dumps(dict(env), separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode("utf-8")) > ENV_VARS_LIMIT:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            f"provided exceeded the 4KB limit. String measured: {measured}"
        )


def _range(value: int, member: str, low: int, high: int) -> None:
    if value < low:
        raise validation_error(value, member, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise validation_error(value, member, f"Member must have value less than or equal to {high}")


def _str(req: Mapping[str, Any], member: str, *, required: bool = False) -> str:
    value = req.get(member)
    if value is None and required:
        raise InvalidParameterValueException(f"{member} is required")
    if not isinstance(value, str):
        raise InvalidParameterValueException(f"{member} must be a string")
    return value


def _int(req: Mapping[str, Any], member: str) -> int:
    value = req.get(member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{member} must be an integer")
    return value


def _dict(req: Mapping[str, Any], member: str) -> Mapping[str, Any]:
    value = req.get(member)
    if not isinstance(value, dict):
        raise InvalidParameterValueException(f"{member} must be an object")
    return value
