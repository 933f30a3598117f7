"""Lambda REST handlers of asynchronous invocation: FunctionEventInvokeConfig (2019-09-25) and event source
mappings (2015-03-31), with AWS's shapes (``LastModified`` as epoch seconds)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge.control.lambda_api.http import json_body, json_response, page
from edge.control.lambda_api.http import qualifier_of as _qualifier
from edge.control.lambda_api.http import region_of as _region
from edge.control.lambda_api.http import service_of as _svc
from edge.invocation.models import EventInvokeConfig, MappingRecord, function_arn

__all__ = ["ROUTES", "event_invoke_config_shape", "mapping_shape"]


def event_invoke_config_shape(cfg: EventInvokeConfig, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LastModified": cfg.last_modified,
        "FunctionArn": function_arn(cfg.function_name, region, cfg.qualifier),
    }
    if cfg.max_retry is not None:
        out["MaximumRetryAttempts"] = cfg.max_retry
    if cfg.max_age is not None:
        out["MaximumEventAgeInSeconds"] = cfg.max_age
    out["DestinationConfig"] = {
        "OnSuccess": {"Destination": cfg.on_success} if cfg.on_success else {},
        "OnFailure": {"Destination": cfg.on_failure} if cfg.on_failure else {},
    }
    return out


def mapping_shape(rec: MappingRecord, region: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "UUID": rec.uuid,
        "BatchSize": rec.batch_size,
        "MaximumBatchingWindowInSeconds": rec.window_s,
        "EventSourceArn": rec.source_arn,
        "FunctionArn": function_arn(rec.function_name, region, rec.qualifier),
        "LastModified": rec.last_modified,
        "State": rec.state or ("Enabled" if rec.enabled else "Disabled"),
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": list(rec.response_types),
        "EventSourceMappingArn": f"arn:aws:lambda:{region}:000000000000:event-source-mapping:{rec.uuid}",
    }
    if rec.on_failure:
        out["DestinationConfig"] = {"OnFailure": {"Destination": rec.on_failure}}
    if rec.max_retry is not None:
        out["MaximumRetryAttempts"] = rec.max_retry
    return out


# -- event invoke config -----------------------------------------------------------------------------------


async def put_function_event_invoke_config(request: web.Request) -> web.Response:
    cfg = await _svc(request).put_event_invoke_config(request.match_info["name"], _qualifier(request),
                                                      await json_body(request), merge=False)
    return json_response(event_invoke_config_shape(cfg, _region(request)))


async def update_function_event_invoke_config(request: web.Request) -> web.Response:
    cfg = await _svc(request).put_event_invoke_config(request.match_info["name"], _qualifier(request),
                                                      await json_body(request), merge=True)
    return json_response(event_invoke_config_shape(cfg, _region(request)))


async def get_function_event_invoke_config(request: web.Request) -> web.Response:
    cfg = await _svc(request).get_event_invoke_config(request.match_info["name"], _qualifier(request))
    return json_response(event_invoke_config_shape(cfg, _region(request)))


async def delete_function_event_invoke_config(request: web.Request) -> web.Response:
    await _svc(request).delete_event_invoke_config(request.match_info["name"], _qualifier(request))
    return web.Response(status=204)


async def list_function_event_invoke_configs(request: web.Request) -> web.Response:
    configs = await _svc(request).list_event_invoke_configs(request.match_info["name"])
    items, marker = page(request, configs, key=lambda c: c.qualifier, max_limit=50)
    out: dict[str, Any] = {"FunctionEventInvokeConfigs": [event_invoke_config_shape(c, _region(request)) for c in items]}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


# -- event source mappings ---------------------------------------------------------------------------------


async def create_event_source_mapping(request: web.Request) -> web.Response:
    rec = await _svc(request).create_event_source_mapping(await json_body(request))
    return json_response(mapping_shape(rec, _region(request)), status=202)


async def list_event_source_mappings(request: web.Request) -> web.Response:
    recs = await _svc(request).list_event_source_mappings(
        source_arn=request.query.get("EventSourceArn") or None, function_name=request.query.get("FunctionName") or None
    )
    items, marker = page(request, recs, key=lambda r: r.uuid)
    out: dict[str, Any] = {"EventSourceMappings": [mapping_shape(r, _region(request)) for r in items]}
    if marker:
        out["NextMarker"] = marker
    return json_response(out)


async def get_event_source_mapping(request: web.Request) -> web.Response:
    rec = await _svc(request).get_event_source_mapping(request.match_info["uuid"])
    return json_response(mapping_shape(rec, _region(request)))


async def update_event_source_mapping(request: web.Request) -> web.Response:
    rec = await _svc(request).update_event_source_mapping(request.match_info["uuid"], await json_body(request))
    return json_response(mapping_shape(rec, _region(request)), status=202)


async def delete_event_source_mapping(request: web.Request) -> web.Response:
    rec = await _svc(request).delete_event_source_mapping(request.match_info["uuid"])
    return json_response(mapping_shape(rec, _region(request)), status=202)


EIC = "/2019-09-25/functions/{name}/event-invoke-config"
ESM = "/2015-03-31/event-source-mappings"
ROUTES: list[tuple[str, str, Any]] = [
    ("PUT", EIC, put_function_event_invoke_config),
    ("POST", EIC, update_function_event_invoke_config),
    ("GET", EIC, get_function_event_invoke_config),
    ("DELETE", EIC, delete_function_event_invoke_config),
    ("GET", EIC + "/list", list_function_event_invoke_configs),
    ("POST", ESM, create_event_source_mapping),
    ("GET", ESM, list_event_source_mappings),
    ("GET", ESM + "/{uuid}", get_event_source_mapping),
    ("PUT", ESM + "/{uuid}", update_event_source_mapping),
    ("DELETE", ESM + "/{uuid}", delete_event_source_mapping),
]
