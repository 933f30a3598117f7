"""The AWS Lambda REST API (rest-json, botocore model 2015-03-31) served over a :class:`LambdaService`.

``make_lambda_api_app(service)`` returns an aiohttp Application; boto3 / awscli work against it with any
credentials, unless ``auth_keys`` are given: then every request must be SigV4-signed by one of them
(:mod:`.auth`). The caller owns the service's lifecycle (``await service.start()`` before
serving, ``await service.close()`` after the runner is cleaned up).

Operations: CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction (204), PublishVersion, ListVersionsByFunction, CreateAlias,
GetAlias, UpdateAlias, ListAliases, DeleteAlias (204), Invoke (RequestResponse, DryRun, Event: 202 once
stored durably), InvokeAsync, Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s),
Create/Get/Update/Delete/ListEventSourceMapping(s), Put/Get/DeleteFunctionConcurrency,
Put/Get/Delete/ListProvisionedConcurrencyConfig(s), GetAccountSettings, PublishLayerVersion, GetLayerVersion,
GetLayerVersionByArn, ListLayerVersions, ListLayers, DeleteLayerVersion, AddPermission, RemovePermission,
GetPolicy, TagResource, UntagResource, ListTags, Create/Get/Update/Delete/ListFunctionUrlConfig(s). Plus
``GET /_edgelab/code/<sha>.zip`` (GetFunction's ``Code.Location``) and the function URLs themselves (requests
whose Host is ``<url-id>.lambda-url.<region>.localhost`` or ``.on.aws``: :mod:`.resources`).

Paths are matched with and without a trailing slash (older botocore models used ``/functions/``,
``/account-settings/``, ``/invoke-async/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from edge.control.lambda_api import async_invoke, concurrency_layers, functions, resources
from edge.control.lambda_api.auth import sigv4_middleware
from edge.control.lambda_api.http import CREATE_FUNCTION_REQUEST_LIMIT, SERVICE, aws_errors
from edge.invocation import LambdaService

__all__ = ["SERVICE", "add_lambda_routes", "make_lambda_api_app"]

# CreateFunction may carry a 50 MB zip as base64 (~70 MB of JSON); larger bodies get RequestEntityTooLarge
CLIENT_MAX_SIZE = CREATE_FUNCTION_REQUEST_LIMIT + 64 * 1024


def add_lambda_routes(app: web.Application) -> None:
    """Register every Lambda route (each also with a trailing slash) on ``app``.

    Invoke is registered first. aiohttp's router tries the resources filed under a path's static prefix
    (``/2015-03-31/functions`` for every ``/functions/{name}/...`` route) one regular expression at a time, in
    registration order (a coroutine and a regular expression each); behind the 24 function, version and alias
    resources, routing an Invoke cost ~164k interpreter instructions, a third of an accepted Event invoke
    (callgrind of the bench server over 1,000 Events: 515k -> 351k per event). No two of these paths match the
    same URL, so the order changes nothing but that cost."""
    routes: list[tuple[str, str, Any]] = [
        *functions.INVOKE_ROUTES, *functions.ROUTES, *concurrency_layers.ROUTES, *async_invoke.ROUTES,
        *resources.ROUTES,
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
        if not path.endswith(".zip"):
            app.router.add_route(method, path + "/", handler)


def make_lambda_api_app(service: LambdaService, auth_keys: Mapping[str, str] | None = None) -> web.Application:
    """An Application serving the Lambda API for ``service`` (errors mapped AWS-style by one middleware); with
    ``auth_keys`` (access key id -> secret access key), requests must be signed by one of them."""
    # function URLs (by Host) first: their answers are the function's, not the API's error shapes
    middlewares: list[Any] = [resources.function_url_middleware, aws_errors]
    if auth_keys:
        middlewares.append(sigv4_middleware(auth_keys))  # inside aws_errors: refusals get an x-amzn-RequestId
    app = web.Application(middlewares=middlewares, client_max_size=CLIENT_MAX_SIZE)
    app[SERVICE] = service
    add_lambda_routes(app)
    return app
