"""Lambda REST handlers: resource-based policies (2015-03-31), tags (2017-03-31), function URL configurations
(2021-10-31), and the function URL endpoints themselves.

Policies are stored and returned as AWS does; they are not enforced: edgelab's API does not check SigV4
signatures, so there is no caller identity to evaluate them against (a function URL with AuthType AWS_IAM is
served without a signature check for the same reason).

Function URLs: AWS's are ``https://<url-id>.lambda-url.<region>.on.aws/``. Here ``FunctionUrl`` is
``http://<url-id>.lambda-url.<region>.localhost:<control port>/``: ``*.localhost`` names the loopback interface
(RFC 6761; curl and browsers resolve it without DNS), so the URL works as printed. The control port serves a
request as that function URL when its Host is ``<url-id>.lambda-url.<region>.localhost`` or the AWS name
``<url-id>.lambda-url.<region>.on.aws`` (what a POP sends for a distribution origin with that domain), with
AWS's payload format 2.0 (:mod:`.url_payload`), CORS answered from the URL's configuration
(https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors), and the invocation
through the service like any synchronous Invoke.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from edge.control.lambda_api.http import SERVICE, json_body, json_response
from edge.control.lambda_api.http import function_name_of as _name
from edge.control.lambda_api.http import qualifier_of as _qualifier
from edge.control.lambda_api.http import region_of as _region
from edge.control.lambda_api.http import service_of as _svc
from edge.control.lambda_api.url_payload import request_event, response_of
from edge.invocation.errors import InvalidParameterValueException, LambdaError
from edge.invocation.models import SYNC_PAYLOAD_LIMIT, FunctionUrlRecord, Outcome, function_arn

__all__ = ["ROUTES", "function_url_middleware", "function_url_of"]

URL_HOST = re.compile(r"^([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.(on\.aws|localhost)(?::\d+)?$")


# -- policies --------------------------------------------------------------------------------------------


async def add_permission(request: web.Request) -> web.Response:
    statement = await _svc(request).add_permission(_name(request), _qualifier(request), await json_body(request))
    return json_response({"Statement": json.dumps(statement)}, status=201)


async def get_policy(request: web.Request) -> web.Response:
    policy, revision = await _svc(request).get_policy(_name(request), _qualifier(request))
    return json_response({"Policy": json.dumps(policy), "RevisionId": revision})


async def remove_permission(request: web.Request) -> web.Response:
    await _svc(request).remove_permission(_name(request), _qualifier(request), request.match_info["sid"],
                                          request.query.get("RevisionId") or None)
    return web.Response(status=204)


# -- tags -------------------------------------------------------------------------------------------------


async def tag_resource(request: web.Request) -> web.Response:
    body = await json_body(request)
    await _svc(request).tag_resource(request.match_info["arn"], body.get("Tags"))
    return web.Response(status=204)


async def untag_resource(request: web.Request) -> web.Response:
    keys = request.query.getall("tagKeys", [])
    if not keys:
        raise InvalidParameterValueException("tagKeys must name at least one tag key")
    await _svc(request).untag_resource(request.match_info["arn"], keys)
    return web.Response(status=204)


async def list_tags(request: web.Request) -> web.Response:
    return json_response({"Tags": await _svc(request).list_tags(request.match_info["arn"])})


# -- function URL configs ----------------------------------------------------------------------------------


def function_url_of(record: FunctionUrlRecord, region: str, host: str) -> str:
    """The local FunctionUrl: the url id as a ``*.localhost`` name on the control port's port."""
    port = host.rpartition(":")[2] if ":" in host else "80"
    return f"http://{record.url_id}.lambda-url.{region}.localhost:{port}/"


def url_config_shape(record: FunctionUrlRecord, request: web.Request, *, created: bool = False) -> dict[str, Any]:
    region = _region(request)
    out: dict[str, Any] = {
        "FunctionUrl": function_url_of(record, region, request.host),
        "FunctionArn": function_arn(record.function_name, region, record.qualifier or None),
        "AuthType": record.auth_type,
        "CreationTime": record.created,
        "InvokeMode": record.invoke_mode,
    }
    if record.cors is not None:
        out["Cors"] = record.cors
    if not created:
        out["LastModifiedTime"] = record.modified
    return out


async def create_function_url_config(request: web.Request) -> web.Response:
    record = await _svc(request).create_function_url_config(_name(request), _qualifier(request), await json_body(request))
    return json_response(url_config_shape(record, request, created=True), status=201)


async def get_function_url_config(request: web.Request) -> web.Response:
    record = await _svc(request).get_function_url_config(_name(request), _qualifier(request))
    return json_response(url_config_shape(record, request))


async def update_function_url_config(request: web.Request) -> web.Response:
    record = await _svc(request).update_function_url_config(_name(request), _qualifier(request), await json_body(request))
    return json_response(url_config_shape(record, request))


async def delete_function_url_config(request: web.Request) -> web.Response:
    await _svc(request).delete_function_url_config(_name(request), _qualifier(request))
    return web.Response(status=204)


async def list_function_url_configs(request: web.Request) -> web.Response:
    records = await _svc(request).list_function_url_configs(_name(request))
    return json_response({"FunctionUrlConfigs": [url_config_shape(r, request) for r in records]})


# -- the function URL endpoints ----------------------------------------------------------------------------


def _message(status: int, message: str, request_id: str = "") -> web.Response:
    headers = {"x-amzn-RequestId": request_id} if request_id else {}
    return web.Response(status=status, body=json.dumps({"Message": message}).encode(), content_type="application/json",
                        headers=headers)


def _cors_headers(cors: dict[str, Any] | None, origin: str | None) -> dict[str, str]:
    if not cors or not origin:
        return {}
    allowed = cors.get("AllowOrigins") or []
    if "*" not in allowed and origin not in allowed:
        return {}
    out = {"Access-Control-Allow-Origin": "*" if "*" in allowed and not cors.get("AllowCredentials") else origin}
    if cors.get("AllowCredentials"):
        out["Access-Control-Allow-Credentials"] = "true"
    if cors.get("ExposeHeaders"):
        out["Access-Control-Expose-Headers"] = ",".join(cors["ExposeHeaders"])
    return out


async def serve_function_url(request: web.Request, url_id: str, region: str) -> web.StreamResponse:
    service = request.app[SERVICE]
    record = await service.function_url_by_id(url_id) if region == service.registry.region else None
    if record is None:
        return _message(404, "Not Found")
    cors = _cors_headers(record.cors, request.headers.get("Origin"))
    if request.method == "OPTIONS" and record.cors and request.headers.get("Access-Control-Request-Method"):
        preflight = dict(cors)
        if cors:
            preflight["Access-Control-Allow-Methods"] = ",".join(record.cors.get("AllowMethods") or ["*"])
            if record.cors.get("AllowHeaders"):
                preflight["Access-Control-Allow-Headers"] = ",".join(record.cors["AllowHeaders"])
            if record.cors.get("MaxAge") is not None:
                preflight["Access-Control-Max-Age"] = str(record.cors["MaxAge"])
        return web.Response(status=200, headers=preflight)
    body = await request.read()
    request_id = service.new_request_id()
    if len(body) > SYNC_PAYLOAD_LIMIT:
        return _message(413, f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction "
                             "operation", request_id)
    raw = request.raw_path
    path, _, query = raw.partition("?")
    event = request_event(method=request.method, raw_path=path, raw_query=query, headers=request.headers.items(),
                          body=body, source_ip=request.remote or "", url_id=url_id, region=region,
                          request_id=request_id, protocol=f"HTTP/{request.version.major}.{request.version.minor}")
    try:
        result = await service.invoke(record.function_name, record.qualifier or None, json.dumps(event).encode(),
                                      request_id=request_id, trace_id=request.headers.get("X-Amzn-Trace-Id") or None)
    except LambdaError as exc:  # the function or alias is gone since the URL was configured
        return _message(exc.status if exc.status < 500 else 502, exc.message, request_id)
    if result.outcome is Outcome.THROTTLED:
        return _message(429, "Rate Exceeded.", request_id)
    if result.outcome is Outcome.FUNCTION_ERROR:
        return _message(502, "Internal Server Error", request_id)
    try:
        status, headers, data = response_of(result.payload)
    except ValueError:
        return _message(502, "Internal Server Error", request_id)
    out = web.Response(status=status, body=data)
    for name, value in headers:
        out.headers.add(name, value)
    for name, value in cors.items():
        out.headers[name] = value
    out.headers["x-amzn-RequestId"] = request_id
    return out


@web.middleware
async def function_url_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Requests whose Host is a function URL's go to that function; everything else to the API routes."""
    m = URL_HOST.match(request.host.lower())
    if m is None:
        return await handler(request)
    return await serve_function_url(request, m.group(1), m.group(2))


P = "/2015-03-31/functions/{name}/policy"
U = "/2021-10-31/functions/{name}"
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", P, add_permission),
    ("GET", P, get_policy),
    ("DELETE", P + "/{sid}", remove_permission),
    ("POST", "/2017-03-31/tags/{arn:.+}", tag_resource),
    ("GET", "/2017-03-31/tags/{arn:.+}", list_tags),
    ("DELETE", "/2017-03-31/tags/{arn:.+}", untag_resource),
    ("POST", U + "/url", create_function_url_config),
    ("GET", U + "/url", get_function_url_config),
    ("PUT", U + "/url", update_function_url_config),
    ("DELETE", U + "/url", delete_function_url_config),
    ("GET", U + "/urls", list_function_url_configs),
]
