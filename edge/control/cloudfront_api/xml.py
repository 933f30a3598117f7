"""The CloudFront API's wire format (rest-xml, 2020-05-31) as botocore writes requests and reads responses.

Requests: the operation's input structure as an XML document (``<CreateFunctionRequest xmlns=...>``), lists as
``<Items><Member>…</Member></Items>``, blobs base64. Responses: the payload member's structure as the root element
in CloudFront's namespace; timestamps ISO 8601; errors
``<ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error><RequestId>…</RequestId>``
(botocore's rest-xml error parser reads ``Error/Code`` and ``Error/Message``).

Request documents are parsed with the standard library's expat parser (bounded entity expansion) after refusing
any ``<!DOCTYPE``: no entities, no external references.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError, api_error

__all__ = ["NAMESPACE", "error_document", "parse_document", "to_document"]

NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
# list member element names (botocore's cloudfront model), keyed by the list's own element name and its parent
LIST_MEMBERS = {
    ("FunctionList", "Items"): "FunctionSummary",
    ("KeyValueStoreList", "Items"): "KeyValueStore",
    ("KeyValueStoreAssociations", "Items"): "KeyValueStoreAssociation",
    ("TestResult", "FunctionExecutionLogs"): "member",
}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return _escape(str(value))


def _element(name: str, value: Any, parent: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        inner = "".join(_element(k, v, name) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, list | tuple):
        member = LIST_MEMBERS.get((parent, name), "member")
        return f"<{name}>" + "".join(_element(member, v, name) for v in value) + f"</{name}>"
    return f"<{name}>{_scalar(value)}</{name}>"


def to_document(root: str, value: dict[str, Any]) -> bytes:
    """``value`` (a boto3-shaped dict) as the response document whose root element is ``root``."""
    inner = "".join(_element(k, v, root) for k, v in value.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def error_document(code: str, message: str, request_id: str, *, sender: bool = True) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{NAMESPACE}"><Error>'
            f'<Type>{"Sender" if sender else "Receiver"}</Type><Code>{_escape(code)}</Code>'
            f"<Message>{_escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(el: ElementTree.Element) -> Any:
    children = list(el)
    if not children:
        return el.text or ""
    if _local(el.tag) == "Items" or (all(_local(c.tag) == _local(children[0].tag) for c in children) and len(children) > 1):
        return [_value(c) for c in children]
    return {_local(c.tag): _value(c) for c in children}


def parse_document(body: bytes, root: str) -> dict[str, Any]:
    """The request document of an operation whose input element is ``root``; InvalidArgument when it is not one."""
    if not body.strip():
        return {}
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise api_error("InvalidArgument", "The request document must not contain a DOCTYPE or entities.")
    try:
        el = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise api_error("InvalidArgument", f"The request is not well-formed XML: {exc}.") from None
    if _local(el.tag) != root:
        raise api_error("InvalidArgument", f"Expected a {root} document, got {_local(el.tag)}.")
    value = _value(el)
    return value if isinstance(value, dict) else {}


def blob(value: Any, member: str) -> bytes:
    """A base64 blob member (botocore base64-encodes blobs in XML)."""
    if not isinstance(value, str) or not value:
        raise api_error("InvalidArgument", f"{member} is required.")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise api_error("InvalidArgument", f"{member} is not valid base64.") from None


def config_of(value: Any) -> dict[str, Any]:
    """``FunctionConfig`` as parsed XML -> the dict the function store takes (lists of associations normalised)."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    assoc = out.get("KeyValueStoreAssociations")
    if isinstance(assoc, dict):
        items = assoc.get("Items") or []
        items = items if isinstance(items, list) else [items]
        out["KeyValueStoreAssociations"] = {"Quantity": len(items), "Items": items}
    return out


__all__ += ["CloudFrontApiError", "blob", "config_of"]
