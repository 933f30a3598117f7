"""CloudFront's rest-xml documents read and written by the service model botocore ships
(``botocore/data/cloudfront/2020-05-31/service-2.json``): the same model boto3 and the AWS CLI serialise requests
and parse responses with, so element names, list member names (``<Items><Origin>…``, ``<Items><Method>…``) and
scalar types (integers, longs, booleans, timestamps) are CloudFront's own, for every field of a DistributionConfig,
a cache / origin request policy or an invalidation batch, without a hand-written table.

* :func:`parse_payload` reads the payload document of an operation's request (``UpdateDistribution`` ->
  ``<DistributionConfig>``) into the dict boto3 would have been given (the shape of ``aws cloudfront
  get-distribution-config``'s JSON); an element the model does not know, a bad integer or boolean is
  ``InvalidArgument`` naming it (botocore never sends such a document; a hand-written one gets the reason).
* :func:`render_payload` writes an operation's response payload (``GetDistribution`` -> ``<Distribution>``) from
  such a dict, members in the model's order; keys the model does not know are a bug here (``KeyError``).

Documents are parsed with :func:`edge.control.cloudfront_api.xml.parse_element` (no DOCTYPE, no entities).
"""

from __future__ import annotations

import base64
import functools
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from botocore.model import ListShape, ServiceModel, Shape, StructureShape
from botocore.session import get_session

from edge.cdn.cloudfront_functions.api_errors import api_error
from edge.cdn.config.policies import is_empty
from edge.control.cloudfront_api.xml import NAMESPACE, escape, format_timestamp, local_name, parse_element

__all__ = ["complete_required", "parse_payload", "render_payload", "service_model"]


@functools.cache
def service_model() -> ServiceModel:
    """CloudFront's 2020-05-31 model, loaded once per process."""
    return get_session().get_service_model("cloudfront", api_version="2020-05-31")


def _payload(operation: str, *, output: bool) -> tuple[str, Shape]:
    op = service_model().operation_model(operation)
    shape = op.output_shape if output else op.input_shape
    assert isinstance(shape, StructureShape), operation
    name = shape.serialization["payload"]
    member = shape.members[name]
    return member.serialization.get("name", name), member


# ------------------------------------------------------------------------------------------------ reading
def parse_payload(operation: str, body: bytes) -> dict[str, Any]:
    """The request payload of ``operation`` as boto3's dict; ``MissingBody`` / ``InvalidArgument`` otherwise."""
    root, shape = _payload(operation, output=False)
    if not body.strip():
        raise api_error("MissingBody", f"{operation} needs a {root} document in the request body.")
    el = parse_element(body)
    if local_name(el.tag) != root:
        raise api_error("InvalidArgument", f"Expected a {root} document, got {local_name(el.tag)}.")
    value = _read(el, shape, root)
    assert isinstance(value, dict)
    return value


def _read(el: ElementTree.Element, shape: Shape, path: str) -> Any:
    if isinstance(shape, StructureShape):
        by_name = {m.serialization.get("name", k): (k, m) for k, m in shape.members.items()}
        out: dict[str, Any] = {}
        for child in el:
            tag = local_name(child.tag)
            if tag not in by_name:
                raise api_error("InvalidArgument", f"{path}.{tag}: not a field of {shape.name}.")
            key, member = by_name[tag]
            out[key] = _read(child, member, f"{path}.{key}")
        return out
    if isinstance(shape, ListShape):
        member_name = shape.member.serialization.get("name", "member")
        items = []
        for i, child in enumerate(el):
            if local_name(child.tag) != member_name:
                raise api_error("InvalidArgument", f"{path}: list members are <{member_name}>, "
                                                   f"got <{local_name(child.tag)}>.")
            items.append(_read(child, shape.member, f"{path}[{i}]"))
        return items
    if len(el):
        raise api_error("InvalidArgument", f"{path}: expected a {shape.type_name}, got nested elements.")
    return _scalar_in(el.text or "", shape, path)


def _scalar_in(text: str, shape: Shape, path: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        try:
            return int(text.strip())
        except ValueError:
            raise api_error("InvalidArgument", f"{path}: {text!r} is not an integer.") from None
    if kind == "boolean":
        if text.strip() not in ("true", "false"):
            raise api_error("InvalidArgument", f"{path}: {text!r} is not true or false.")
        return text.strip() == "true"
    if kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            raise api_error("InvalidArgument", f"{path} is not valid base64.") from None
    return text  # string, timestamp (kept as sent)


# ------------------------------------------------------------------------------------------------ writing
def render_payload(operation: str, value: dict[str, Any]) -> bytes:
    """The response document of ``operation`` with payload ``value``."""
    root, shape = _payload(operation, output=True)
    inner = _members(value, shape)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def _members(value: dict[str, Any], shape: Shape) -> str:
    """The members of a structure; a key the model does not know is left out when empty (the loader accepts
    ``"Field": ""`` of an unknown field) and is a bug here otherwise (``KeyError``: the loader refuses those)."""
    assert isinstance(shape, StructureShape), shape.name
    unknown = [k for k in value if k not in shape.members and not is_empty(value[k])]
    if unknown:
        raise KeyError(f"{shape.name} has no member {unknown[0]!r}")
    return "".join(_write(m.serialization.get("name", k), value[k], m)
                   for k, m in shape.members.items() if value.get(k) is not None)


def _write(name: str, value: Any, shape: Shape) -> str:
    if isinstance(shape, StructureShape):
        return f"<{name}>{_members(value, shape)}</{name}>"
    if isinstance(shape, ListShape):
        member_name = shape.member.serialization.get("name", "member")
        return f"<{name}>" + "".join(_write(member_name, v, shape.member) for v in value) + f"</{name}>"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime):
        text = format_timestamp(value)
    elif isinstance(value, bytes):
        text = base64.b64encode(value).decode("ascii")
    else:
        text = escape(str(value))
    return f"<{name}>{text}</{name}>"


# Values CloudFront fills in for required members a configuration file may leave out (what its API returns for
# them; the loader's defaults, edge.cdn.config.distribution): (structure shape, member) -> value.
_DEFAULTS: dict[tuple[str, str], Any] = {
    ("DistributionConfig", "Comment"): "",
    ("DistributionConfig", "Enabled"): True,
    ("CustomOriginConfig", "HTTPPort"): 80,
    ("CustomOriginConfig", "HTTPSPort"): 443,
    ("S3OriginConfig", "OriginAccessIdentity"): "",
    ("TrustedSigners", "Enabled"): False,
    ("TrustedKeyGroups", "Enabled"): False,
    ("OriginShield", "Enabled"): False,
    ("ForwardedValues", "QueryString"): False,
    ("ForwardedValues", "Cookies"): {"Forward": "none"},
    ("GeoRestriction", "RestrictionType"): "none",
}


def complete_required(shape_name: str, value: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``value`` (a ``shape_name`` structure, e.g. a DistributionConfig read from a file) with the
    required members CloudFront would return filled in (``Quantity`` from ``Items``, the defaults above), so that
    what ``get-distribution-config`` prints passes botocore's parameter validation when it is sent back with
    ``update-distribution``. A required member with no known default is left out (the loader requires those)."""
    shape = service_model().shape_for(shape_name)
    out = _complete(value, shape)
    assert isinstance(out, dict)
    return out


def _complete(value: Any, shape: Shape) -> Any:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        out = {k: (_complete(v, shape.members[k]) if k in shape.members else v) for k, v in value.items()}
        for name in shape.required_members:
            if name in out:
                continue
            if name == "Quantity":
                out[name] = len(out.get("Items") or [])
            elif (shape.name, name) in _DEFAULTS:
                out[name] = _complete(_DEFAULTS[shape.name, name], shape.members[name])
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_complete(v, shape.member) for v in value]
    return value
