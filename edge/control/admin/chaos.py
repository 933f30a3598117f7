"""Edge chaos on the admin API: apply a scenario to every POP of the running stack, read its status, clear it.

- ``PUT    /edgelab/v1/chaos``  the scenario's TOML text (or ``{"scenario": "<TOML text>"}``): validated here with
  the POPs' own parser (400 ``InvalidArgument`` naming the key and line, and no POP touched), then pushed to every
  POP's admin socket (``PUT /chaos``, :mod:`edge.control.stack.pop_chaos`) with the instant it was applied, so that
  relative windows start together everywhere; replaces the scenario in service. 502 when a POP failed.
- ``GET    /edgelab/v1/chaos``  each POP's scenario status (faults pending / active / spent / expired, injections)
  and its fault counters.
- ``DELETE /edgelab/v1/chaos``  stop injecting, everywhere.

A POP started after a scenario was applied has none (it is not persisted: chaos is an experiment, not
configuration).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from edge.cdn.chaos.scenario import ScenarioError, parse_scenario
from edge.control.admin.api import ADMIN_CTX, PopEndpoint, _error, _json, call_pops

__all__ = ["add_chaos_routes"]

MAX_SCENARIO_BYTES = 256 * 1024


def _failed(results: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and "error" in v for v in results.values())


def scenario_text(raw: bytes) -> str:
    """The TOML text of a ``PUT`` body: the text itself, or the ``scenario`` member of a JSON object."""
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"scenario of {len(raw)} bytes: at most {MAX_SCENARIO_BYTES}")
    if raw.lstrip().startswith(b"{"):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            text = body.get("scenario")
            if not isinstance(text, str):
                raise ScenarioError('a JSON body must be {"scenario": "<the scenario TOML text>"}')
            return text
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ScenarioError("the scenario is not UTF-8 text") from None


async def put_chaos(request: web.Request) -> web.Response:
    try:
        text = scenario_text(await request.read())
        scenario = parse_scenario(text)
    except ScenarioError as exc:
        return _error(400, "InvalidArgument", f"scenario not applied: {exc}")
    results = await call_pops(request.app, "PUT", "/chaos", {"source": scenario.source, "applied_at": time.time()}, pops=_pops(request))
    data = {"scenario": {"name": scenario.name, "faults": [f.to_json() for f in scenario.faults]}, "pops": results}
    return _json(data, status=502 if _failed(results) else 200)


async def get_chaos(request: web.Request) -> web.Response:
    results = await call_pops(request.app, "GET", "/chaos", pops=_pops(request))
    return _json({"pops": results}, status=502 if _failed(results) else 200)


async def delete_chaos(request: web.Request) -> web.Response:
    results = await call_pops(request.app, "DELETE", "/chaos", pops=_pops(request))
    return _json({"pops": results}, status=502 if _failed(results) else 200)


def add_chaos_routes(app: web.Application) -> None:
    """Register the routes on the ``/edgelab/v1`` admin sub-application."""
    app.router.add_put("/chaos", put_chaos)
    app.router.add_get("/chaos", get_chaos)
    app.router.add_delete("/chaos", delete_chaos)


def _pops(request: web.Request) -> list[PopEndpoint]:
    """The POPs only: a scenario lives in the POPs (the regional tier nodes have no chaos endpoint; with a scenario
    applied a POP fetches its misses from the origin itself, where the faults stand in; edge.cdn.pipeline)."""
    return list(request.app[ADMIN_CTX].pops)
