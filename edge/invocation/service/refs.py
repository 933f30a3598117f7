"""Function names as the control-plane operations take them (shared by :mod:`.control_ops` and :mod:`.async_ops`)."""

from __future__ import annotations

from edge.invocation.errors import validation_error
from edge.invocation.registry.core import Registry
from edge.invocation.registry.names import FUNCTION_NAME_PATTERN

__all__ = ["split_name", "unqualified_name"]


def split_name(registry: Registry, function_name: str, qualifier: str | None = None) -> tuple[str, str | None]:
    """(name, qualifier) of a function name, partial ARN or ARN, and an optional separate qualifier."""
    ref = registry.parse(function_name, qualifier)
    return ref.name, ref.qualifier


def unqualified_name(registry: Registry, function_name: str) -> str:
    """The name of an unqualified function reference; a qualified one is the ValidationException AWS answers
    for operations that only take the unqualified name."""
    name, qualifier = split_name(registry, function_name)
    if qualifier is not None:
        raise validation_error(
            function_name, "functionName",
            f"Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN.split('(:(')[0]}",
        )  # fmt: skip
    return name
