"""Lambda REST handlers: functions, versions, aliases, Invoke (2015-03-31 URIs)."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from edge.control.lambda_api.http import REQUEST_ID, b64_bytes, json_body, json_response, page
from edge.control.lambda_api.http import function_name_of as _name
from edge.control.lambda_api.http import qualifier_of as _qualifier
from edge.control.lambda_api.http import region_of as _region
from edge.control.lambda_api.http import service_of as _svc
from edge.control.lambda_api.shapes import alias_configuration, function_configuration
from edge.invocation.errors import InvalidParameterValueException, TooManyRequestsException
from edge.invocation.models import UNSET, Outcome, VersionRecord

__all__ = ["INVOKE_ROUTES", "ROUTES"]

LOG_TAIL_BYTES = 4096


def _arn_qualifier(request: web.Request, version: str, alias: str | None) -> str | None:
    """What FunctionArn ends with: the alias, or the version when one was asked for (in the name or query)."""
    if alias:
        return alias
    asked = _svc(request).registry.parse(_name(request), _qualifier(request)).qualifier
    return version if asked is not None else None


async def _configuration(request: web.Request, rec: VersionRecord, **kwargs: Any) -> dict[str, Any]:
    """FunctionConfiguration of ``rec`` with the State its runtime has in this process."""
    state = await _svc(request).runtime_state(rec.config.runtime)
    return function_configuration(rec, _region(request), state=state, **kwargs)


async def _configurations(request: web.Request, records: list[VersionRecord], all_versions: bool) -> list[dict[str, Any]]:
    states = {rt: await _svc(request).runtime_state(rt) for rt in {r.config.runtime for r in records}}
    return [function_configuration(r, _region(request), arn_qualifier=r.version if all_versions else None,
                                   state=states[r.config.runtime]) for r in records]


def _code_location(request: web.Request, sha256_hex: str) -> str:
    return f"{request.scheme}://{request.host}/_edgelab/code/{sha256_hex}.zip"


# -- functions ---------------------------------------------------------------------------------------------


async def create_function(request: web.Request) -> web.Response:
    body = await json_body(request)
    code = body.get("Code")
    if isinstance(code, dict) and "ZipFile" in code:
        body["Code"] = {**code, "ZipFile": b64_bytes(code["ZipFile"], "Code.ZipFile")}
    record = await _svc(request).create_function(body)
    qualifier = record.version if record.version != "$LATEST" else None
    return json_response(
        await _configuration(request, record, arn_qualifier=qualifier, created=record.version == "$LATEST"),
        status=201,
    )


async def get_function(request: web.Request) -> web.Response:
    details = await _svc(request).get_function(_name(request), _qualifier(request))
    rec = details.record
    qualifier = _arn_qualifier(request, rec.version, details.alias)
    out: dict[str, Any] = {
        "Configuration": await _configuration(request, rec, arn_qualifier=qualifier),
        "Code": {"RepositoryType": "S3", "Location": _code_location(request, rec.code.sha256_hex)},
    }
    if details.tags:
        out["Tags"] = details.tags
    if details.reserved is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": details.reserved}
    return json_response(out)


async def get_function_configuration(request: web.Request) -> web.Response:
    rec, alias = await _svc(request).get_function_configuration(_name(request), _qualifier(request))
    qualifier = _arn_qualifier(request, rec.version, alias)
    return json_response(await _configuration(request, rec, arn_qualifier=qualifier))


async def list_functions(request: web.Request) -> web.Response:
    all_versions = request.query.get("FunctionVersion") == "ALL"
    if request.query.get("FunctionVersion") not in (None, "ALL"):
        raise InvalidParameterValueException("FunctionVersion must be ALL when given")
    records = await _svc(request).list_functions(all_versions=all_versions)
    items, marker = page(request, records, key=lambda r: f"{r.function_name}:{r.version}")
    out: dict[str, Any] = {"Functions": await _configurations(request, items, all_versions)}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


async def update_function_code(request: web.Request) -> web.Response:
    body = await json_body(request)
    if "ZipFile" in body:
        body["ZipFile"] = b64_bytes(body["ZipFile"], "ZipFile")
    record = await _svc(request).update_function_code(_name(request), body)
    qualifier = record.version if record.version != "$LATEST" else None
    return json_response(await _configuration(request, record, arn_qualifier=qualifier))


async def update_function_configuration(request: web.Request) -> web.Response:
    body = await json_body(request)
    record = await _svc(request).update_function_configuration(_name(request), body)
    return json_response(await _configuration(request, record))


async def delete_function(request: web.Request) -> web.Response:
    await _svc(request).delete_function(_name(request), _qualifier(request))
    return web.Response(status=204)


# -- versions ----------------------------------------------------------------------------------------------


async def publish_version(request: web.Request) -> web.Response:
    body = await json_body(request)
    record = await _svc(request).publish_version(
        _name(request),
        code_sha256=body.get("CodeSha256") or None,
        description=body.get("Description"),
        revision_id=body.get("RevisionId") or None,
    )
    return json_response(await _configuration(request, record, arn_qualifier=record.version), status=201)


async def list_versions(request: web.Request) -> web.Response:
    records = await _svc(request).list_versions(_name(request))
    items, marker = page(request, records, key=lambda r: r.version)
    out: dict[str, Any] = {"Versions": await _configurations(request, items, True)}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


# -- aliases -----------------------------------------------------------------------------------------------


def _weights(body: dict[str, Any]) -> Any:
    routing = body.get("RoutingConfig")
    if routing is None:
        return UNSET
    if not isinstance(routing, dict):
        raise InvalidParameterValueException("RoutingConfig must be an object")
    return routing.get("AdditionalVersionWeights") or {}


async def create_alias(request: web.Request) -> web.Response:
    body = await json_body(request)
    weights = _weights(body)
    alias = await _svc(request).create_alias(
        _name(request),
        str(body.get("Name") or ""),
        str(body.get("FunctionVersion") or ""),
        description=str(body.get("Description") or ""),
        weights=None if weights is UNSET else weights,
    )
    return json_response(alias_configuration(alias, _region(request)), status=201)


async def get_alias(request: web.Request) -> web.Response:
    alias = await _svc(request).get_alias(_name(request), request.match_info["alias"])
    return json_response(alias_configuration(alias, _region(request)))


async def update_alias(request: web.Request) -> web.Response:
    body = await json_body(request)
    alias = await _svc(request).update_alias(
        _name(request),
        request.match_info["alias"],
        function_version=body.get("FunctionVersion") or None,
        description=body.get("Description"),
        weights=_weights(body),
        revision_id=body.get("RevisionId") or None,
    )
    return json_response(alias_configuration(alias, _region(request)))


async def list_aliases(request: web.Request) -> web.Response:
    aliases = await _svc(request).list_aliases(_name(request), request.query.get("FunctionVersion") or None)
    items, marker = page(request, aliases, key=lambda a: a.name)
    out: dict[str, Any] = {"Aliases": [alias_configuration(a, _region(request)) for a in items]}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


async def delete_alias(request: web.Request) -> web.Response:
    await _svc(request).delete_alias(_name(request), request.match_info["alias"])
    return web.Response(status=204)


# -- invoke ------------------------------------------------------------------------------------------------


async def invoke(request: web.Request) -> web.Response:
    invocation_type = request.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    result = await _svc(request).invoke(
        _name(request),
        _qualifier(request),
        await request.read(),
        invocation_type=invocation_type,
        log_type=request.headers.get("X-Amz-Log-Type") or None,
        client_context_b64=request.headers.get("X-Amz-Client-Context") or None,
        request_id=request[REQUEST_ID],
        trace_id=request.headers.get("X-Amzn-Trace-Id") or None,
    )
    if invocation_type == "DryRun":
        return web.Response(status=204)
    if invocation_type == "Event":  # stored durably before this answer (AWS sends no ExecutedVersion here)
        return web.Response(status=202)
    if result.outcome is Outcome.THROTTLED:
        raise TooManyRequestsException(str(result.throttle_reason or "ConcurrentInvocationLimitExceeded"))
    headers = {"X-Amz-Executed-Version": result.executed_version}
    if result.outcome is Outcome.FUNCTION_ERROR:
        headers["X-Amz-Function-Error"] = "Unhandled"
    if result.log_tail is not None:
        tail = result.log_tail.encode("utf-8", "replace")[-LOG_TAIL_BYTES:]
        headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode("ascii")
    return web.Response(status=200, body=result.payload, content_type="application/json", headers=headers)


async def invoke_async(request: web.Request) -> web.Response:
    """InvokeAsync (deprecated): 256 KB; 202 ``{"Status": 202}``."""
    await _svc(request).invoke_async(_name(request), await request.read(), request_id=request[REQUEST_ID])
    return json_response({"Status": 202}, status=202)


F = "/2015-03-31/functions"
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", F, create_function),
    ("GET", F, list_functions),
    ("GET", F + "/{name}", get_function),
    ("DELETE", F + "/{name}", delete_function),
    ("GET", F + "/{name}/configuration", get_function_configuration),
    ("PUT", F + "/{name}/configuration", update_function_configuration),
    ("PUT", F + "/{name}/code", update_function_code),
    ("POST", F + "/{name}/versions", publish_version),
    ("GET", F + "/{name}/versions", list_versions),
    ("POST", F + "/{name}/aliases", create_alias),
    ("GET", F + "/{name}/aliases", list_aliases),
    ("GET", F + "/{name}/aliases/{alias}", get_alias),
    ("PUT", F + "/{name}/aliases/{alias}", update_alias),
    ("DELETE", F + "/{name}/aliases/{alias}", delete_alias),
    ("POST", "/2014-11-13/functions/{name}/invoke-async", invoke_async),
]
INVOKE_ROUTES: list[tuple[str, str, Any]] = [("POST", F + "/{name}/invocations", invoke)]  # registered first (app.py)
