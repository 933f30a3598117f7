"""CloudFront ``LambdaFunctionAssociations``: parsing and the association-time checks (contract §3.4).

Pure functions. The distribution loader calls :func:`parse_associations` on a cache behavior's
``LambdaFunctionAssociations`` (ARN shape, region, qualifier, event type, IncludeBody), and the trigger
runner calls :func:`check_function_config` with the configuration the registry holds for the resolved
version (timeout, memory, code size, environment, layers, runtime, architecture, ephemeral storage).
Failures raise :class:`InvalidLambdaFunctionAssociation` (HTTP 400) with CloudFront's message.

Local extensions, both off by default so the defaults behave like CloudFront:

* ``allow_unpublished``: accept ``$LATEST`` and alias qualifiers (edgelab's registry supports them);
* ``relax_limits``: ``True`` or a collection of check names (:data:`CHECKS`) to report as warnings
  instead of errors.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge.cdn.lambda_edge.rules import (
    EDGE_REGION,
    EDGE_RUNTIMES,
    EVENT_TYPES,
    MAX_CODE_SIZE,
    MAX_EPHEMERAL_STORAGE_MB,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_S,
    REQUEST_EVENTS,
    SUPPORTED_ARCHITECTURES,
)

__all__ = [
    "CHECKS",
    "FunctionAssociation",
    "FunctionRef",
    "InvalidLambdaFunctionAssociation",
    "check_function_config",
    "function_config_problems",
    "parse_association",
    "parse_associations",
    "parse_function_arn",
]

CHECKS = ("timeout", "memory", "code_size", "environment", "layers", "runtime", "architecture", "ephemeral_storage")

# arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
_ARN_RE = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9$_-]{1,128}))?$"
)
_VERSION_RE = re.compile(r"^[1-9][0-9]*$")

INCLUDE_BODY_MESSAGE = "The IncludeBody option can only be used with viewer-request or origin-request events."


class InvalidLambdaFunctionAssociation(Exception):
    """CloudFront's 400 ``InvalidLambdaFunctionAssociation`` (``code``/``status``/``message`` for the API layer)."""

    code = "InvalidLambdaFunctionAssociation"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A parsed function ARN. ``qualifier`` is a version number, or (with allow_unpublished) ``$LATEST``/alias."""

    arn: str
    region: str
    account: str
    name: str
    qualifier: str

    @property
    def is_version(self) -> bool:
        return bool(_VERSION_RE.match(self.qualifier))


@dataclass(frozen=True, slots=True)
class FunctionAssociation:
    """One ``LambdaFunctionAssociation`` of a cache behavior."""

    event_type: str
    function: FunctionRef
    include_body: bool = False


def parse_function_arn(arn: Any, *, allow_unpublished: bool = False) -> FunctionRef:
    """Parse and check a ``LambdaFunctionARN`` as CloudFront does at association time."""
    if not isinstance(arn, str) or not (m := _ARN_RE.match(arn)):
        raise InvalidLambdaFunctionAssociation(f"The function ARN is not a valid Lambda function ARN. ARN: {arn}")
    if m["region"] != EDGE_REGION:
        raise InvalidLambdaFunctionAssociation(f"The function must be in region '{EDGE_REGION}'. ARN: {arn}")
    qualifier = m["qualifier"] or ""
    if not _VERSION_RE.match(qualifier) and not (allow_unpublished and qualifier):
        raise InvalidLambdaFunctionAssociation(
            "The function ARN must reference a specific function version. "
            f"(The ARN must end with the version number.) ARN: {arn}"
        )
    return FunctionRef(arn=arn, region=m["region"], account=m["account"], name=m["name"], qualifier=qualifier)


def parse_association(item: Mapping[str, Any], *, allow_unpublished: bool = False) -> FunctionAssociation:
    """One ``{"LambdaFunctionARN", "EventType", "IncludeBody"?}`` item (CloudFront API field names)."""
    if not isinstance(item, Mapping):
        raise InvalidLambdaFunctionAssociation("A Lambda function association must be an object.")
    event_type = item.get("EventType")
    if event_type not in EVENT_TYPES:
        raise InvalidLambdaFunctionAssociation(
            f"The event type '{event_type}' is not valid. Valid values: {', '.join(EVENT_TYPES)}."
        )
    function = parse_function_arn(item.get("LambdaFunctionARN"), allow_unpublished=allow_unpublished)
    include_body = item.get("IncludeBody", False)
    if not isinstance(include_body, bool):
        raise InvalidLambdaFunctionAssociation(f"IncludeBody must be true or false, got {include_body!r}.")
    if include_body and event_type not in REQUEST_EVENTS:
        raise InvalidLambdaFunctionAssociation(INCLUDE_BODY_MESSAGE)
    return FunctionAssociation(event_type=event_type, function=function, include_body=include_body)


def parse_associations(value: Any, *, allow_unpublished: bool = False) -> tuple[FunctionAssociation, ...]:
    """A behavior's ``LambdaFunctionAssociations``: ``{"Quantity": n, "Items": [...]}`` or a plain list.

    At most one association per event type (so at most four).
    """
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = value.get("Items") or []
        quantity = value.get("Quantity", len(items))
        if quantity != len(items):
            raise InvalidLambdaFunctionAssociation(
                f"The parameter Quantity ({quantity}) does not match the number of Items ({len(items)})."
            )
    else:
        items = value
    if not isinstance(items, list):
        raise InvalidLambdaFunctionAssociation("LambdaFunctionAssociations Items must be a list.")
    result = tuple(parse_association(item, allow_unpublished=allow_unpublished) for item in items)
    seen: set[str] = set()
    for assoc in result:
        if assoc.event_type in seen:
            raise InvalidLambdaFunctionAssociation(
                f"More than one Lambda function association was specified for event type {assoc.event_type}."
            )
        seen.add(assoc.event_type)
    return result


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def function_config_problems(
    event_type: str,
    function_arn: str,
    *,
    timeout_s: float,
    memory_mb: int,
    code_size: int,
    environment: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    layers: Collection[str] = (),
    runtime: str = "python3.11",
    architecture: str = "x86_64",
    ephemeral_storage_mb: int = 512,
) -> list[tuple[str, str]]:
    """Every association-time violation as ``(check name, CloudFront message)``, in CloudFront's order."""
    arn = function_arn
    out: list[tuple[str, str]] = []
    env = list(environment.items() if isinstance(environment, Mapping) else environment)
    if env:
        out.append(("environment", f"The function cannot have environment variables. Function: {arn}"))
    if layers:
        out.append(("layers", f"The function cannot have layers. Function: {arn}"))
    if runtime not in EDGE_RUNTIMES:
        # CloudFront's message names the languages; which versions it accepts is added for the reader
        out.append((
            "runtime",
            f"The function runtime {runtime} is not supported for functions that are triggered by a CloudFront "
            f"event. Use a Node.js or Python runtime. Function: {arn}"
            + ("" if not runtime.startswith(("nodejs", "python")) else
               " (Lambda@Edge runtimes: nodejs18.x, nodejs20.x, nodejs22.x, python3.7 to python3.13)"),
        ))
    if architecture not in SUPPORTED_ARCHITECTURES:
        out.append((
            "architecture",
            f"The function architecture {architecture} is not supported for functions that are triggered by a "
            f"CloudFront event. Use x86_64. Function: {arn}",
        ))
    for check, value, limit, what in (
        ("timeout", timeout_s, MAX_TIMEOUT_S[event_type], "function timeout is larger than the maximum allowed"),
        ("memory", memory_mb, MAX_MEMORY_MB[event_type], "function memory size is larger than the maximum allowed"),
        (
            "code_size",
            code_size,
            MAX_CODE_SIZE[event_type],
            "function code size is larger than the maximum allowed size",
        ),
        (
            "ephemeral_storage",
            ephemeral_storage_mb,
            MAX_EPHEMERAL_STORAGE_MB,
            "function ephemeral storage is larger than the maximum allowed",
        ),
    ):
        if value > limit:
            out.append((
                check,
                f"The {what} for functions that are triggered by a CloudFront event: {_num(value)} "
                f"Max allowed: {_num(limit)} Function: {arn}",
            ))
    return out


def check_function_config(
    event_type: str,
    function_arn: str,
    *,
    relax_limits: bool | Collection[str] = False,
    **config: Any,
) -> list[str]:
    """Raise the first non-relaxed violation; return the messages of relaxed ones (to log as warnings).

    ``config`` takes the keyword arguments of :func:`function_config_problems`.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown Lambda@Edge event type: {event_type!r}")
    warnings: list[str] = []
    for check, message in function_config_problems(event_type, function_arn, **config):
        if relax_limits is True or (not isinstance(relax_limits, bool) and check in relax_limits):
            warnings.append(message)
        else:
            raise InvalidLambdaFunctionAssociation(message)
    return warnings
