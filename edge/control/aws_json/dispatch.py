"""One ``POST /`` route for every AWS JSON-protocol service of the control port (CloudWatch Logs, SQS,
EventBridge), chosen by the ``X-Amz-Target: <prefix>.<Operation>`` header, as AWS's JSON 1.0 / 1.1 protocols
address them (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html).

- every answer carries ``x-amzn-RequestId``; successes are ``application/x-amz-json-<version>``;
- errors are the service's own shape: ``{"__type": "<Code>", "message": "..."}`` (HTTP 400 for a caller's
  mistake, 500 for edgelab's), and for services marked ``awsQueryCompatible`` (SQS) the
  ``x-amzn-query-error: <query code>;Sender`` header botocore reads the classic error code from
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html);
- an unknown service or operation is ``UnknownOperationException`` in that shape, never an HTML 404;
- a form-encoded body without ``X-Amz-Target`` (the query protocol of SQS clients older than late 2023) gets the
  query protocol's XML ``InvalidAction`` error naming the fix (upgrade the client): the AWS CLI and botocore
  edgelab tests with speak JSON to SQS (botocore's sqs model: ``"protocols": ["json"]``).

The caller's region is the one its SigV4 ``Authorization`` header is scoped to (signatures are not verified:
any credentials work), defaulting to us-east-1.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import orjson
from aiohttp import web

from edge.control.lambda_api.http import REQUEST_ID
from edge.invocation.models import DEFAULT_REGION

__all__ = ["AwsError", "Call", "JsonService", "add_dispatcher", "region_of_request"]

log = logging.getLogger("edgelab.control.aws_json")

_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/([a-z0-9-]+)/")


class AwsError(Exception):
    """An error in the service's own shape: ``code`` goes to ``__type`` (with ``type_prefix`` of the
    service), ``query_code`` (SQS) to ``x-amzn-query-error``; ``sender`` False marks a server fault."""

    def __init__(self, code: str, message: str, *, status: int = 400, query_code: str | None = None,
                 sender: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.query_code = query_code
        self.sender = sender


@dataclass(frozen=True, slots=True)
class Call:
    """One API call: the aiohttp request, its request id and the region its signature names."""

    request: web.Request
    request_id: str
    region: str


Operation = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any] | web.StreamResponse]]


@dataclass(frozen=True)
class JsonService:
    """A service of the dispatcher: its ``X-Amz-Target`` prefix, JSON version, operations by name."""

    target_prefix: str
    json_version: str
    operations: Mapping[str, Operation]
    type_prefix: str = ""  # SQS answers "com.amazonaws.sqs#QueueDoesNotExist"
    query_compatible: bool = False

    @property
    def content_type(self) -> str:
        return f"application/x-amz-json-{self.json_version}"


def region_of_request(request: web.BaseRequest) -> str:
    """The region of the SigV4 credential scope (``Credential=AKID/20240101/eu-central-1/logs/aws4_request``)."""
    m = _SCOPE.search(request.headers.get("Authorization", ""))
    return m.group(1) if m else DEFAULT_REGION


def _request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)  # the Lambda app's middleware (it wraps this route too) gave the call its id
    return str(rid) if rid else str(uuid.uuid4())


def error_response(service: JsonService | None, err: AwsError, request_id: str) -> web.Response:
    prefix = service.type_prefix if service is not None else ""
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": err.code}
    if service is not None and service.query_compatible:
        headers["x-amzn-query-error"] = f"{err.query_code or err.code};{'Sender' if err.sender else 'Receiver'}"
    return web.Response(status=err.status, body=orjson.dumps({"__type": prefix + err.code, "message": err.message}),
                        content_type=service.content_type if service else "application/x-amz-json-1.1",
                        headers=headers)


def query_error_response(code: str, message: str, request_id: str, status: int = 400) -> web.Response:
    """The query protocol's XML error (``ErrorResponse``)."""
    body = (f'<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error>'
            f"<Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message><Detail/></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return web.Response(status=status, text=body, content_type="text/xml", headers={"x-amzn-RequestId": request_id})


def add_dispatcher(app: web.Application, services: list[JsonService]) -> None:
    """Route ``POST /`` of ``app`` to ``services`` by ``X-Amz-Target`` (see the module docstring)."""
    by_prefix = {s.target_prefix: s for s in services}

    async def dispatch(request: web.Request) -> web.StreamResponse:
        request_id = _request_id(request)
        call = Call(request, request_id, region_of_request(request))
        target = request.headers.get("X-Amz-Target", "")
        if not target:
            return await _query(call)
        prefix, _, name = target.rpartition(".")
        service = by_prefix.get(prefix)
        if service is None:
            known = ", ".join(sorted(by_prefix))
            return error_response(None, AwsError("UnknownOperationException",
                                                 f"Unknown service target {target!r}: this endpoint serves {known}."),
                                  request_id)
        op = service.operations.get(name)
        try:
            if op is None:
                raise AwsError("UnknownOperationException",
                               f"Operation {name!r} is not supported by edgelab's {prefix} API.",
                               query_code="AWS.SimpleQueueService.UnsupportedOperation")
            body = await _json_body(request)
            result = await op(call, body)
        except AwsError as err:
            return error_response(service, err, request_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error in %s (request %s)", target, request_id)
            return error_response(service, AwsError("InternalFailure", "An internal error occurred.", status=500,
                                                    sender=False), request_id)
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=orjson.dumps(result), content_type=service.content_type,
                            headers={"x-amzn-RequestId": request_id})

    app.router.add_post("/", dispatch)


async def _query(call: Call) -> web.StreamResponse:
    request = call.request
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        return query_error_response("InvalidAction", f"The action {params.get('Action')!r} came in the query "
                                    "protocol: edgelab's SQS speaks the JSON protocol (X-Amz-Target: AmazonSQS.*) "
                                    "that botocore and the AWS CLI use since late 2023; upgrade the client.",
                                    call.request_id)
    return error_response(None, AwsError("UnknownOperationException", "POST / needs an X-Amz-Target header naming "
                                         "the operation (an AWS SDK or the AWS CLI sends it)."), call.request_id)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AwsError("SerializationException", f"Could not parse the request body as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object.")
    return data


# -- member helpers shared by the services --------------------------------------------------------------


def member_str(body: Mapping[str, Any], name: str, *, required: bool = False, code: str = "InvalidParameterException",
               default: str | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise AwsError(code, f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: "
                                 "Member must not be null")
        return default
    if not isinstance(value, str):
        raise AwsError(code, f"{name} must be a string")
    return value


def member_int(body: Mapping[str, Any], name: str, low: int, high: int, *, code: str = "InvalidParameterException",
               default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        else:
            raise AwsError(code, f"{name} must be an integer")
    if not low <= value <= high:
        raise AwsError(code, f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
                             f"Member must have value between {low} and {high}")
    return value
