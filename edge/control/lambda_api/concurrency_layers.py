"""Lambda REST handlers: concurrency (2017-10-31 / 2019-09-30), account settings (2016-08-19), layers
(2018-10-31), and the code download behind GetFunction's ``Code.Location``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge.control.lambda_api.http import b64_bytes, json_body, json_response, page
from edge.control.lambda_api.http import function_name_of as _name
from edge.control.lambda_api.http import region_of as _region
from edge.control.lambda_api.http import service_of as _svc
from edge.control.lambda_api.shapes import (
    account_settings,
    layer_version,
    layer_version_item,
    layers_item,
    provisioned_config,
)
from edge.invocation.errors import InvalidParameterValueException, validation_error
from edge.invocation.models import function_arn

__all__ = ["ROUTES"]


def _required_qualifier(request: web.Request) -> str:
    qualifier = request.query.get("Qualifier")
    if not qualifier:
        raise validation_error(None, "qualifier", "Member must not be null")
    return qualifier


def _layer_location(request: web.Request, sha256_hex: str) -> str:
    return f"{request.scheme}://{request.host}/_edgelab/code/{sha256_hex}.zip"


def _int_member(body: dict[str, Any], member: str) -> int:
    value = body.get(member)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{member} must be an integer")
    return value


# -- reserved concurrency ----------------------------------------------------------------------------------


async def put_function_concurrency(request: web.Request) -> web.Response:
    body = await json_body(request)
    count = await _svc(request).put_function_concurrency(_name(request), _int_member(body, "ReservedConcurrentExecutions"))
    return json_response({"ReservedConcurrentExecutions": count})


async def get_function_concurrency(request: web.Request) -> web.Response:
    count = await _svc(request).get_function_concurrency(_name(request))
    return json_response({} if count is None else {"ReservedConcurrentExecutions": count})


async def delete_function_concurrency(request: web.Request) -> web.Response:
    await _svc(request).delete_function_concurrency(_name(request))
    return web.Response(status=204)


# -- provisioned concurrency -------------------------------------------------------------------------------


async def put_provisioned(request: web.Request) -> web.Response:
    body = await json_body(request)
    view = await _svc(request).put_provisioned_concurrency(
        _name(request), _required_qualifier(request), _int_member(body, "ProvisionedConcurrentExecutions")
    )
    return json_response(provisioned_config(view), status=202)


async def get_provisioned(request: web.Request) -> web.Response:
    if request.query.get("List") == "ALL":
        views = await _svc(request).list_provisioned_concurrency(_name(request))
        items, marker = page(request, views, key=lambda v: v.qualifier, max_limit=50)
        region = _region(request)
        configs = [
            {"FunctionArn": function_arn(v.function_name, region, v.qualifier), **provisioned_config(v)}
            for v in items
        ]  # fmt: skip
        out: dict[str, Any] = {"ProvisionedConcurrencyConfigs": configs}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)
    view = await _svc(request).get_provisioned_concurrency(_name(request), _required_qualifier(request))
    return json_response(provisioned_config(view))


async def delete_provisioned(request: web.Request) -> web.Response:
    await _svc(request).delete_provisioned_concurrency(_name(request), _required_qualifier(request))
    return web.Response(status=204)


# -- account -----------------------------------------------------------------------------------------------


async def get_account_settings(request: web.Request) -> web.Response:
    return json_response(account_settings(await _svc(request).get_account_settings()))


# -- layers ------------------------------------------------------------------------------------------------


def _layer_version_number(request: web.Request) -> int:
    raw = request.match_info["version"]
    if not raw.isdigit():
        raise validation_error(raw, "versionNumber", "Member must be a number")
    return int(raw)


async def publish_layer_version(request: web.Request) -> web.Response:
    body = await json_body(request)
    content = body.get("Content")
    if isinstance(content, dict) and "ZipFile" in content:
        body["Content"] = {**content, "ZipFile": b64_bytes(content["ZipFile"], "Content.ZipFile")}
    record = await _svc(request).publish_layer_version(request.match_info["layer"], body)
    return json_response(layer_version(record, _region(request), _layer_location(request, record.code.sha256_hex)), status=201)


async def get_layer_version(request: web.Request) -> web.Response:
    record = await _svc(request).get_layer_version(request.match_info["layer"], _layer_version_number(request))
    return json_response(layer_version(record, _region(request), _layer_location(request, record.code.sha256_hex)))


async def delete_layer_version(request: web.Request) -> web.Response:
    await _svc(request).delete_layer_version(request.match_info["layer"], _layer_version_number(request))
    return web.Response(status=204)


def _compatible(request: web.Request, records: list[Any]) -> list[Any]:
    """ListLayers / ListLayerVersions filters: ``CompatibleRuntime`` and ``CompatibleArchitecture``."""
    runtime = request.query.get("CompatibleRuntime")
    arch = request.query.get("CompatibleArchitecture")
    return [
        r for r in records
        if (not runtime or runtime in r.compatible_runtimes) and (not arch or arch in r.compatible_architectures)
    ]  # fmt: skip


async def list_layer_versions(request: web.Request) -> web.Response:
    records = _compatible(request, await _svc(request).list_layer_versions(request.match_info["layer"]))
    items, marker = page(request, records, key=lambda r: str(r.version), max_limit=50)
    out: dict[str, Any] = {"LayerVersions": [layer_version_item(r, _region(request)) for r in items]}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


async def list_layers_or_find(request: web.Request) -> web.Response:
    """GET /2018-10-31/layers is ListLayers, or GetLayerVersionByArn when ``find=LayerVersion``."""
    if request.query.get("find") == "LayerVersion":
        record = await _svc(request).get_layer_version_by_arn(request.query.get("Arn", ""))
        return json_response(layer_version(record, _region(request), _layer_location(request, record.code.sha256_hex)))
    records = await _svc(request).list_layers()
    if request.query.get("CompatibleRuntime") or request.query.get("CompatibleArchitecture"):
        # the latest *matching* version of each layer
        names = sorted({r.name for r in records})
        matching = [await _latest_matching(request, name) for name in names]
        records = [r for r in matching if r is not None]
    items, marker = page(request, records, key=lambda r: r.name, max_limit=50)
    out: dict[str, Any] = {"Layers": [layers_item(r, _region(request)) for r in items]}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


async def _latest_matching(request: web.Request, name: str) -> Any:
    found = _compatible(request, await _svc(request).list_layer_versions(name))
    return found[0] if found else None


async def download_code(request: web.Request) -> web.Response:
    data = await _svc(request).read_code(request.match_info["sha"])
    return web.Response(body=data, content_type="application/zip")


ROUTES: list[tuple[str, str, Any]] = [
    ("PUT", "/2017-10-31/functions/{name}/concurrency", put_function_concurrency),
    ("DELETE", "/2017-10-31/functions/{name}/concurrency", delete_function_concurrency),
    ("GET", "/2019-09-30/functions/{name}/concurrency", get_function_concurrency),
    ("PUT", "/2019-09-30/functions/{name}/provisioned-concurrency", put_provisioned),
    ("GET", "/2019-09-30/functions/{name}/provisioned-concurrency", get_provisioned),
    ("DELETE", "/2019-09-30/functions/{name}/provisioned-concurrency", delete_provisioned),
    ("GET", "/2016-08-19/account-settings", get_account_settings),
    ("GET", "/2018-10-31/layers", list_layers_or_find),
    ("POST", "/2018-10-31/layers/{layer}/versions", publish_layer_version),
    ("GET", "/2018-10-31/layers/{layer}/versions", list_layer_versions),
    ("GET", "/2018-10-31/layers/{layer}/versions/{version}", get_layer_version),
    ("DELETE", "/2018-10-31/layers/{layer}/versions/{version}", delete_layer_version),
    ("GET", "/_edgelab/code/{sha}.zip", download_code),
]
