"""Admin routes of asynchronous invocation, added to the ``/edgelab/v1`` sub-application of the control process.

- ``GET    /edgelab/v1/async``                       counters per function (received, delivered, retried,
  throttled, failed, expired, dead_lettered, ...), queue depth and age of the oldest event, local queue depths
- ``GET    /edgelab/v1/queues``                      local queues (name, arn, messages, visible, oldest age)
- ``POST   /edgelab/v1/queues``                      ``{"name": "dlq", "visibility_timeout": 30}`` -> 201
- ``GET    /edgelab/v1/queues/{name}``               one queue
- ``DELETE /edgelab/v1/queues/{name}``               delete it and its messages -> 204
- ``POST   /edgelab/v1/queues/{name}/purge``         delete every message -> ``{"purged": n}``
- ``GET    /edgelab/v1/queues/{name}/messages?max=10&delete=false``  read (and optionally remove) messages
- ``POST   /edgelab/v1/queues/{name}/messages``      ``{"body": "...", "attributes": {...}}`` (send)

Errors are ``{"Type": "User", "code", "message"}`` with the status of the underlying Lambda-style error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from edge.invocation import LambdaService
from edge.invocation.errors import LambdaError
from edge.invocation.models import QueueInfo

__all__ = ["add_async_admin_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"Type": "User", "code": code, "message": message}), status=status,
                        content_type="application/json", headers={"x-amzn-ErrorType": code})


def _queue(info: QueueInfo) -> dict[str, Any]:
    return {"name": info.name, "arn": info.arn, "visibility_timeout": info.visibility_timeout,
            "messages": info.messages, "visible": info.visible, "oldest_age_s": info.oldest_age_s,
            "created_at": info.created_at}


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("request body must be a JSON object")
    return data


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except LambdaError as exc:
            return _error(exc.status, exc.code, exc.message)
        except ValueError as exc:
            return _error(400, "InvalidParameterValueException", str(exc))

    wrapped.__name__ = handler.__name__
    return wrapped


def add_async_admin_routes(admin: web.Application, service: LambdaService) -> None:
    """Register the routes above on the admin sub-application (before it is mounted)."""

    async def async_metrics(request: web.Request) -> web.Response:
        return _json(await service.async_metrics())

    async def list_queues(request: web.Request) -> web.Response:
        return _json({"queues": [_queue(q) for q in await service.list_queues()]})

    async def create_queue(request: web.Request) -> web.Response:
        body = await _body(request)
        vt = body.get("visibility_timeout", 30)
        return _json(_queue(await service.create_queue(str(body.get("name") or ""), vt)), status=201)

    async def get_queue(request: web.Request) -> web.Response:
        return _json(_queue(await service.get_queue(request.match_info["name"])))

    async def delete_queue(request: web.Request) -> web.Response:
        await service.delete_queue(request.match_info["name"])
        return web.Response(status=204)

    async def purge_queue(request: web.Request) -> web.Response:
        return _json({"purged": await service.purge_queue(request.match_info["name"])})

    async def read_messages(request: web.Request) -> web.Response:
        raw_max = request.query.get("max", "10")
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= 10_000:
            raise ValueError("'max' must be an integer between 1 and 10000")
        delete = request.query.get("delete", "false").lower()
        if delete not in ("true", "false", "1", "0"):
            raise ValueError("'delete' must be true or false")
        messages = await service.read_queue(request.match_info["name"], int(raw_max), delete=delete in ("true", "1"))
        return _json({"messages": [m.as_dict() for m in messages], "deleted": delete in ("true", "1")})

    async def send_message(request: web.Request) -> web.Response:
        body = await _body(request)
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise ValueError("'attributes' must be an object (SQS MessageAttributes)")
        mid = await service.send_queue_message(request.match_info["name"], body.get("body", ""), attributes)
        return _json({"MessageId": mid}, status=201)

    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/async", async_metrics),
        ("GET", "/queues", list_queues),
        ("POST", "/queues", create_queue),
        ("GET", "/queues/{name}", get_queue),
        ("DELETE", "/queues/{name}", delete_queue),
        ("POST", "/queues/{name}/purge", purge_queue),
        ("GET", "/queues/{name}/messages", read_messages),
        ("POST", "/queues/{name}/messages", send_message),
    ]
    for method, path, handler in routes:
        admin.router.add_route(method, path, _guard(handler))
