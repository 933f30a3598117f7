"""HTTP plumbing of the Lambda REST API: AppKeys, the one error-mapping middleware, request helpers.

Every response carries ``x-amzn-RequestId``; every error is ``{"Type": "User", "message"/"Message": ...}`` with
``x-amzn-ErrorType`` (botocore reads the code from that header first). Unknown routes and wrong methods are
``UnknownOperationException``; oversized bodies ``RequestEntityTooLargeException``; anything unexpected is
logged and answered with a generic 500 ``ServiceException`` (never a traceback). HTTP exceptions a handler
raises on purpose (sub-apps mounted on the same application, e.g. the admin API) pass through unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from typing import Any

import orjson
from aiohttp import web

from edge.invocation import LambdaService, paginate
from edge.invocation.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    LambdaError,
    RequestEntityTooLargeException,
    ServiceException,
    UnknownOperationException,
    validation_error,
)

__all__ = [
    "CREATE_FUNCTION_REQUEST_LIMIT",
    "REQUEST_ID",
    "SERVICE",
    "aws_errors",
    "b64_bytes",
    "json_body",
    "json_response",
    "page",
    "query_int",
]

log = logging.getLogger("edgelab.control.lambda_api")

SERVICE = web.AppKey("lambda_service", LambdaService)
# the request id of each API call (x-amzn-RequestId; also the Invoke request id)
REQUEST_ID: Any = web.RequestKey("edgelab_request_id", str) if hasattr(web, "RequestKey") else "edgelab_request_id"
CREATE_FUNCTION_REQUEST_LIMIT = 70_167_211


def service_of(request: web.Request) -> LambdaService:
    return request.app[SERVICE]


def region_of(request: web.Request) -> str:
    return request.app[SERVICE].registry.region


def function_name_of(request: web.Request) -> str:
    return request.match_info["name"]


def qualifier_of(request: web.Request) -> str | None:
    return request.query.get("Qualifier") or None


def error_response(exc: LambdaError) -> web.Response:
    return web.Response(
        status=exc.status,
        body=orjson.dumps(exc.body()),
        content_type="application/json",
        headers={"x-amzn-ErrorType": exc.code},
    )


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> LambdaError:
    if exc.status in (404, 405):
        err: LambdaError = UnknownOperationException(f"Unknown operation: {request.method} {request.path}")
        err.status = exc.status
        return err
    if exc.status == 413:
        return RequestEntityTooLargeException(
            f"Request must be smaller than {CREATE_FUNCTION_REQUEST_LIMIT} bytes for the {_operation(request)} operation"
        )
    err = InvalidRequestContentException(exc.reason or "Bad request")
    err.status = exc.status
    return err


def _operation(request: web.Request) -> str:
    """The operation name of the matched route, from its handler (``create_function`` -> ``CreateFunction``)."""
    handler = getattr(request.match_info.route, "handler", None)
    name = getattr(handler, "__name__", "") or "Unknown"
    return "".join(part.capitalize() for part in name.split("_"))


@web.middleware
async def aws_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """The single place where exceptions become AWS-style responses."""
    request_id = str(uuid.uuid4())
    request[REQUEST_ID] = request_id
    try:
        response: web.StreamResponse = await handler(request)
    except LambdaError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        routing_failed = request.match_info.http_exception is not None
        if exc.status < 400 or not (routing_failed or exc.status == 413):
            raise  # an HTTP response a handler chose on purpose (e.g. in a mounted sub-app such as the admin API)
        response = error_response(_from_http_exception(request, exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        response = error_response(ServiceException("An internal error occurred while processing the request."))
    response.headers["x-amzn-RequestId"] = request_id
    return response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is ``{}``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestContentException("Could not parse request body into json: expected a JSON object")
    return data


def b64_bytes(value: Any, member: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidParameterValueException(f"{member} must be a base64-encoded string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestContentException(f"Could not parse request body into json: {member} is not valid base64") from None


def query_int(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameterValueException(f"Invalid value for {name}: {raw!r}") from None
    if not low <= value <= high:
        raise validation_error(value, name[0].lower() + name[1:], f"Member must have value between {low} and {high}")
    return value


def page(request: web.Request, items: list[Any], key: Any, *, max_limit: int = 10_000) -> tuple[list[Any], str | None]:
    """Marker/MaxItems pagination (MaxItems 1..max_limit, default 50)."""
    return paginate(items, request.query.get("Marker") or None, query_int(request, "MaxItems", 1, max_limit), key)
