"""The Lambda API's single error-mapping middleware (in-process aiohttp test client, no boto3)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.control.lambda_api.app import make_lambda_api_app
from edge.invocation import LambdaService


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LambdaService]:
    async with LambdaService(tmp_path / "state") as svc:
        yield svc


async def test_unexpected_exceptions_become_a_generic_500(aiohttp_client: Any, service: LambdaService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "list_functions", broken)
    client = await aiohttp_client(make_lambda_api_app(service))
    with caplog.at_level(logging.ERROR, logger="edgelab.control.lambda_api"):
        resp = await client.get("/2015-03-31/functions")
    assert resp.status == 500 and resp.headers["x-amzn-ErrorType"] == "ServiceException"
    body = await resp.json()
    assert body == {"Type": "Service", "Message": "An internal error occurred while processing the request."}
    assert "secret" not in await resp.text()
    assert "secret internal detail" in caplog.text  # logged with its traceback for the operator
    assert resp.headers["x-amzn-RequestId"] in caplog.text


async def test_request_body_over_the_create_function_limit_is_413(aiohttp_client: Any, service: LambdaService) -> None:
    client = await aiohttp_client(make_lambda_api_app(service))
    resp = await client.post("/2015-03-31/functions/fn/invocations", data=io.BytesIO(b"x" * (70_167_211 + 128 * 1024)))
    assert resp.status == 413 and resp.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert (await resp.json())["message"] == "Request must be smaller than 70167211 bytes for the Invoke operation"


async def test_trailing_slash_variants_and_invoke_async(aiohttp_client: Any, service: LambdaService) -> None:
    client = await aiohttp_client(make_lambda_api_app(service))
    assert (await client.get("/2015-03-31/functions/")).status == 200
    assert (await client.get("/2016-08-19/account-settings/")).status == 200
    resp = await client.post("/2014-11-13/functions/fn/invoke-async/", data=b"{}")
    assert resp.status == 404 and resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


async def test_query_parameter_errors(aiohttp_client: Any, service: LambdaService) -> None:
    client = await aiohttp_client(make_lambda_api_app(service))
    resp = await client.get("/2015-03-31/functions", params={"MaxItems": "lots"})
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    resp = await client.get("/2015-03-31/functions", params={"MaxItems": "0"})
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "ValidationException"
    resp = await client.get("/2018-10-31/layers/x/versions/abc")
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "ValidationException"
    resp = await client.get("/2019-09-30/functions/fn/provisioned-concurrency")
    assert resp.status == 400 and resp.headers["x-amzn-ErrorType"] == "ValidationException"


async def test_sub_app_http_errors_pass_through(aiohttp_client: Any, service: LambdaService) -> None:
    from aiohttp import web

    async def teapot(request: web.Request) -> web.Response:
        raise web.HTTPConflict(text="admin says no")

    admin = web.Application()
    admin.router.add_get("/thing", teapot)
    app = make_lambda_api_app(service)
    app.add_subapp("/edgelab/v1", admin)
    client = await aiohttp_client(app)
    resp = await client.get("/edgelab/v1/thing")
    assert resp.status == 409 and await resp.text() == "admin says no" and "x-amzn-ErrorType" not in resp.headers
    resp = await client.get("/edgelab/v1/missing")
    assert resp.status == 404 and resp.headers["x-amzn-ErrorType"] == "UnknownOperationException"
