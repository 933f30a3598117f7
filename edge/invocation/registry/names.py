"""Parsing of FunctionName / qualifier / layer ARN inputs (reference §1.4). Pure.

Accepted FunctionName forms (URL-unquoted first)::

    my-function                                              bare name (1-64 chars)
    my-function:prod                                         name with qualifier
    arn:aws:lambda:us-east-1:000000000000:function:my-fn[:q] full ARN
    000000000000:function:my-fn[:q]                          partial ARN
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from edge.invocation.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    function_not_found,
    validation_error,
)
from edge.invocation.models import ACCOUNT_ID, layer_arn

__all__ = [
    "FunctionRef",
    "LayerRef",
    "layer_arn",
    "parse_function_name",
    "parse_layer_name",
    "parse_layer_version_arn",
    "validate_alias_name",
    "validate_qualifier",
]

FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:)?(?:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):)?(?:(?P<account>\d{12}):)?"
    r"(?P<function>function:)?(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)
_QUALIFIER = re.compile(r"^(\$LATEST|[a-zA-Z0-9_-]+)$")
_ALIAS = re.compile(r"^(?!^[0-9]+$)([a-zA-Z0-9_-]+)$")
_LAYER_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_LAYER_VERSION_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9_-]+):(?P<version>[0-9]+)$"
)
_LAYER_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9_-]+)$"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    name: str
    qualifier: str | None  # None = unqualified ($LATEST for reads and invokes)


@dataclass(frozen=True, slots=True)
class LayerRef:
    name: str
    version: int


def parse_function_name(raw: str, qualifier: str | None, region: str) -> FunctionRef:
    """Split a FunctionName (+ optional Qualifier parameter) into name and qualifier.

    Raises ValidationException for malformed names, ResourceNotFoundException for a foreign region or
    account, InvalidParameterValueException when the name's qualifier contradicts the Qualifier parameter.
    """
    text = unquote(raw or "")
    match = _FUNCTION_NAME.match(text) if 1 <= len(text) <= 140 else None
    if match is None:
        raise validation_error(
            text, "functionName", f"Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
    name = match["name"]
    if len(name) > 64:
        raise validation_error(text, "functionName", "Member must have length less than or equal to 64")
    if match["region"] and match["region"] != region:
        raise ResourceNotFoundException(
            f"Functions from '{match['region']}' are not reachable in this region ('{region}')"
        )
    if match["account"] and match["account"] != ACCOUNT_ID:
        raise function_not_found(name, region, match["qualifier"])
    derived = match["qualifier"]
    if qualifier is not None:
        validate_qualifier(qualifier)
        if derived is not None and derived != qualifier:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
    return FunctionRef(name, derived if derived is not None else qualifier)


def validate_qualifier(qualifier: str) -> None:
    if not (1 <= len(qualifier) <= 128 and _QUALIFIER.match(qualifier)):
        raise validation_error(
            qualifier, "qualifier", "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
        )


def validate_alias_name(name: str) -> None:
    if not (1 <= len(name) <= 128 and _ALIAS.match(name)):
        raise validation_error(
            name, "name", "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )


def parse_layer_name(raw: str, region: str) -> str:
    """A LayerName path parameter: a bare name or a layer ARN (without version)."""
    text = unquote(raw or "")
    match = _LAYER_ARN.match(text)
    if match:
        if match["region"] != region or match["account"] != ACCOUNT_ID:
            raise ResourceNotFoundException(f"Layer not found: {text}")
        return match["name"]
    if not (1 <= len(text) <= 64 and _LAYER_NAME.match(text)):
        raise validation_error(
            text, "layerName", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"
        )
    return text


def parse_layer_version_arn(arn: str, region: str) -> LayerRef:
    """``arn:aws:lambda:<region>:<acct>:layer:<name>:<n>`` -> LayerRef; region must match the function's."""
    match = _LAYER_VERSION_ARN.match(arn or "")
    if match is None:
        raise validation_error(
            arn,
            "layers",
            "Member must satisfy regular expression pattern: "
            r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+",
        )
    if match["region"] != region:
        raise InvalidParameterValueException(
            f"Layers are not in the same region as the function. Layers are expected to be in region {region}."
        )
    if match["account"] != ACCOUNT_ID:
        raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
    return LayerRef(match["name"], int(match["version"]))
