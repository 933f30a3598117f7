"""The CloudFront API on the control port: the ``cloudfront`` service (2020-05-31, rest-xml) under
``/2020-05-31/`` and the ``cloudfront-keyvaluestore`` data plane (2022-07-26, rest-json) under
``/key-value-stores/``, as botocore serialises them (boto3 and the AWS CLI work against ``--endpoint-url``).

Operations (CloudFront API Reference, https://docs.aws.amazon.com/cloudfront/latest/APIReference/, and the
KeyValueStore API reference): CreateFunction, UpdateFunction, DescribeFunction, GetFunction, PublishFunction,
TestFunction, ListFunctions, DeleteFunction; Create/Describe/Update/Delete/ListKeyValueStore(s); data plane
DescribeKeyValueStore, GetKey, PutKey, DeleteKey, ListKeys, UpdateKeys. The service layer is
``edge.cdn.cloudfront_functions`` (``FunctionStore``, ``KeyValueStoreService``): these handlers only parse and
serialise, and call it in a thread (SQLite, and TestFunction's engine).

Other CloudFront operations (distributions, invalidations, policies: a later issue) plug in as more routes of
:func:`make_cloudfront_app`; until then they are answered with the service's own ``UnsupportedOperation`` error
document, never an HTML 404. Signatures are not verified (the stack is local), including the data plane's SigV4A.

The data-plane client puts the account id of the store's ARN in front of the endpoint's host
(``https://<account>.cloudfront-kvs.global.api.aws``, botocore's endpoint rules); give it
``endpoint_url="http://kvs@127.0.0.1:9001"`` so that prefix lands in the URL's user part and the request still
reaches the control port (README).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from edge.cdn.cloudfront_functions.api_errors import CloudFrontApiError, api_error
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.control.cloudfront_api.xml import blob, config_of, error_document, parse_document, to_document

__all__ = ["API_VERSION", "add_cloudfront_routes", "make_cloudfront_app", "make_kvs_data_app"]

log = logging.getLogger("edgelab.control.cloudfront_api")

API_VERSION = "2020-05-31"
FUNCTIONS = web.AppKey("cloudfront_functions", FunctionStore)
STORES = web.AppKey("cloudfront_kvs", KeyValueStoreService)
_XML = "text/xml"
_MAX_ITEMS = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _request_id() -> str:
    return str(uuid.uuid4())


def _xml(root: str, value: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=to_document(root, value), content_type=_XML,
                        headers={"x-amz-request-id": _request_id(), **(headers or {})})


@web.middleware
async def _xml_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure of the control-plane API as CloudFront's XML error document."""
    try:
        return await handler(request)
    except CloudFrontApiError as exc:
        rid = _request_id()
        return web.Response(status=exc.status, body=error_document(exc.code, exc.message, rid), content_type=_XML,
                            headers={"x-amz-request-id": rid})
    except web.HTTPRequestEntityTooLarge:
        rid = _request_id()
        return web.Response(status=413, body=error_document("InvalidArgument", "The request body is too large.", rid),
                            content_type=_XML, headers={"x-amz-request-id": rid})
    except asyncio.CancelledError:
        raise
    except Exception:
        rid = _request_id()
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, rid)
        return web.Response(status=500, body=error_document("InternalError", "An internal error occurred.", rid,
                                                            sender=False),
                            content_type=_XML, headers={"x-amz-request-id": rid})


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _document(request: web.Request, root: str) -> dict[str, Any]:
    return parse_document(await request.read(), root)


def _max_items(request: web.Request) -> int:
    raw = request.query.get("MaxItems")
    if raw is None or raw == "":
        return _MAX_ITEMS
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_ITEMS:
        raise api_error("InvalidArgument", f"MaxItems must be an integer from 1 to {_MAX_ITEMS}.")
    return int(raw)


def _stage(request: web.Request, default: str | None = "DEVELOPMENT") -> str | None:
    stage = request.query.get("Stage") or default
    if stage is not None and stage not in ("DEVELOPMENT", "LIVE"):
        raise api_error("InvalidArgument", "Stage must be DEVELOPMENT or LIVE.")
    return stage


# ------------------------------------------------------------------------------------------- functions
async def create_function(request: web.Request) -> web.Response:
    doc = await _document(request, "CreateFunctionRequest")
    out = await _call(request.app[FUNCTIONS].create, doc.get("Name"), config_of(doc.get("FunctionConfig")),
                      blob(doc.get("FunctionCode"), "FunctionCode"))
    return _xml("FunctionSummary", out["FunctionSummary"], 201, {"ETag": out["ETag"], "Location": out["Location"],
                                                                 **_warnings(out)})


def _warnings(out: dict[str, Any]) -> dict[str, str]:
    """edgelab's addition: what the runtime will refuse at execution (CloudFront accepts such code silently)."""
    warnings = out.get("Warnings") or []
    return {"x-edgelab-warnings": " | ".join(warnings)[:4000]} if warnings else {}


async def update_function(request: web.Request) -> web.Response:
    doc = await _document(request, "UpdateFunctionRequest")
    out = await _call(request.app[FUNCTIONS].update, request.match_info["name"], request.headers.get("If-Match"),
                      config_of(doc.get("FunctionConfig")), blob(doc.get("FunctionCode"), "FunctionCode"))
    # botocore's model reads UpdateFunction's ETag from a header spelled "ETtag" (as CloudFront sends it): both
    return _xml("FunctionSummary", out["FunctionSummary"], 200, {"ETag": out["ETag"], "ETtag": out["ETag"],
                                                                 **_warnings(out)})


async def describe_function(request: web.Request) -> web.Response:
    out = await _call(request.app[FUNCTIONS].describe, request.match_info["name"], _stage(request))
    return _xml("FunctionSummary", out["FunctionSummary"], 200, {"ETag": out["ETag"]})


async def get_function(request: web.Request) -> web.Response:
    out = await _call(request.app[FUNCTIONS].get, request.match_info["name"], _stage(request))
    return web.Response(body=out["FunctionCode"], headers={"ETag": out["ETag"], "Content-Type": out["ContentType"],
                                                           "x-amz-request-id": _request_id()})


async def publish_function(request: web.Request) -> web.Response:
    out = await _call(request.app[FUNCTIONS].publish, request.match_info["name"], request.headers.get("If-Match"))
    return _xml("FunctionSummary", out["FunctionSummary"])


async def test_function(request: web.Request) -> web.Response:
    doc = await _document(request, "TestFunctionRequest")
    stage = doc.get("Stage") or "DEVELOPMENT"
    out = await _call(request.app[FUNCTIONS].test, request.match_info["name"], request.headers.get("If-Match"),
                      blob(doc.get("EventObject"), "EventObject"), stage)
    return _xml("TestResult", out["TestResult"])


async def list_functions(request: web.Request) -> web.Response:
    out = await _call(request.app[FUNCTIONS].list, request.query.get("Marker") or None, _max_items(request),
                      _stage(request, None))
    return _xml("FunctionList", out["FunctionList"])


async def delete_function(request: web.Request) -> web.Response:
    await _call(request.app[FUNCTIONS].delete, request.match_info["name"], request.headers.get("If-Match"))
    return web.Response(status=204, headers={"x-amz-request-id": _request_id()})


# --------------------------------------------------------------------------- key value stores (control plane)
async def create_key_value_store(request: web.Request) -> web.Response:
    doc = await _document(request, "CreateKeyValueStoreRequest")
    source = doc.get("ImportSource")
    out = await _call(request.app[STORES].create, doc.get("Name"), doc.get("Comment") or "",
                      source if isinstance(source, dict) else None)
    return _xml("KeyValueStore", out["KeyValueStore"], 201, {"ETag": out["ETag"], "Location": out["Location"]})


async def describe_key_value_store(request: web.Request) -> web.Response:
    out = await _call(request.app[STORES].describe, request.match_info["name"])
    return _xml("KeyValueStore", out["KeyValueStore"], 200, {"ETag": out["ETag"]})


async def update_key_value_store(request: web.Request) -> web.Response:
    doc = await _document(request, "UpdateKeyValueStoreRequest")
    out = await _call(request.app[STORES].update, request.match_info["name"], doc.get("Comment") or "",
                      request.headers.get("If-Match"))
    return _xml("KeyValueStore", out["KeyValueStore"], 200, {"ETag": out["ETag"]})


async def delete_key_value_store(request: web.Request) -> web.Response:
    await _call(request.app[STORES].delete, request.match_info["name"], request.headers.get("If-Match"))
    return web.Response(status=204, headers={"x-amz-request-id": _request_id()})


async def list_key_value_stores(request: web.Request) -> web.Response:
    out = await _call(request.app[STORES].list, request.query.get("Marker") or None, _max_items(request))
    return _xml("KeyValueStoreList", out["KeyValueStoreList"])


async def unsupported(request: web.Request) -> web.Response:
    raise api_error("UnsupportedOperation",
                    f"edgelab does not implement {request.method} {request.path} (its CloudFront API covers "
                    "CloudFront Functions and KeyValueStore; distributions are configured with --distribution).")


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/function", create_function),
    ("GET", "/function", list_functions),
    ("GET", "/function/{name}/describe", describe_function),
    ("POST", "/function/{name}/publish", publish_function),
    ("POST", "/function/{name}/test", test_function),
    ("GET", "/function/{name}", get_function),
    ("PUT", "/function/{name}", update_function),
    ("DELETE", "/function/{name}", delete_function),
    ("POST", "/key-value-store", create_key_value_store),
    ("GET", "/key-value-store", list_key_value_stores),
    ("GET", "/key-value-store/{name}", describe_key_value_store),
    ("PUT", "/key-value-store/{name}", update_key_value_store),
    ("DELETE", "/key-value-store/{name}", delete_key_value_store),
]


def make_cloudfront_app(functions: FunctionStore, stores: KeyValueStoreService) -> web.Application:
    """The ``cloudfront`` control plane, to mount at ``/2020-05-31``."""
    app = web.Application(middlewares=[_xml_errors])
    app[FUNCTIONS], app[STORES] = functions, stores
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, path + "/", handler)
    app.router.add_route("*", "/{tail:.*}", unsupported)  # anything else: the service's error, not a 404 page
    return app


# ------------------------------------------------------------------------------ key value stores (data plane)
def _json(value: dict[str, Any], etag: str | None = None) -> web.Response:
    headers = {"x-amzn-RequestId": _request_id()}
    if etag is not None:
        headers["ETag"] = etag
    return web.Response(body=orjson.dumps(value), content_type="application/json", headers=headers)


def _json_error(code: str, message: str, status: int) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"message": message}), content_type="application/json",
                        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": _request_id()})


def _epoch(out: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.timestamp() if hasattr(v, "timestamp") else v) for k, v in out.items()}


async def kvs_data(request: web.Request) -> web.Response:
    """One handler for the data plane: the store ARN and the key are percent-encoded path segments (``%2F`` in
    both), so the path is split before it is decoded."""
    stores = request.app[STORES]
    raw = request.raw_path.split("?", 1)[0]
    parts = [unquote(p) for p in raw.split("/")[2:]]  # "", "key-value-stores", ARN, ["keys", [KEY]]
    method = request.method
    if_match = request.headers.get("If-Match")
    try:
        if len(parts) == 1 and method == "GET":
            out = _epoch(await _call(stores.kvs_describe, parts[0]))
            etag = out.pop("ETag")
            return _json(out, etag)
        if len(parts) == 2 and parts[1] == "keys" and method == "GET":
            max_results = request.query.get("MaxResults")
            if max_results is not None and not max_results.isdigit():
                raise api_error("ValidationException", "MaxResults must be an integer.")
            return _json(await _call(stores.list_keys, parts[0], request.query.get("NextToken") or None,
                                     int(max_results) if max_results is not None else None))
        if len(parts) == 2 and parts[1] == "keys" and method == "POST":
            body = await _json_body(request)
            for put in body.get("Puts") or []:
                if not isinstance(put, dict) or not isinstance(put.get("Value"), str):
                    raise api_error("ValidationException", "Each of Puts needs a Key and a string Value.")
            out = await _call(stores.update_keys, parts[0], if_match, body.get("Puts") or [], body.get("Deletes") or [])
            return _json({k: v for k, v in out.items() if k != "ETag"}, out["ETag"])
        if len(parts) == 3 and parts[1] == "keys":
            arn, key = parts[0], parts[2]
            if method == "GET":
                return _json(await _call(stores.get_key, arn, key))
            if method == "PUT":
                value = (await _json_body(request)).get("Value")
                if not isinstance(value, str):
                    raise api_error("ValidationException", "Value is required and must be a string.")
                out = await _call(stores.put_key, arn, key, value, if_match)
                return _json({k: v for k, v in out.items() if k != "ETag"}, out["ETag"])
            if method == "DELETE":
                out = await _call(stores.delete_key, arn, key, if_match)
                return _json({k: v for k, v in out.items() if k != "ETag"}, out["ETag"])
    except CloudFrontApiError as exc:
        return _json_error(exc.code, exc.message, exc.status)
    return _json_error("UnknownOperationException", f"Unknown operation: {method} {request.path}", 404)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise api_error("ValidationException", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise api_error("ValidationException", "The request body must be a JSON object.")
    return data


def make_kvs_data_app(stores: KeyValueStoreService) -> web.Application:
    """The ``cloudfront-keyvaluestore`` data plane, to mount at ``/key-value-stores``."""
    app = web.Application()
    app[STORES] = stores
    app.router.add_route("*", "/{tail:.*}", kvs_data)
    return app


def add_cloudfront_routes(app: web.Application, functions: FunctionStore, stores: KeyValueStoreService) -> None:
    """Mount both planes on the control application ``app``."""
    app.add_subapp(f"/{API_VERSION}", make_cloudfront_app(functions, stores))
    app.add_subapp("/key-value-stores", make_kvs_data_app(stores))
