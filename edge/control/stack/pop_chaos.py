"""A POP process's chaos routes (on its admin socket) and the wiring of its scenario into its invocation core.

The control process validates a scenario and fans it out (``edge.control.admin.chaos``) the way it pushes a
distribution (``PUT /distribution``): each POP gets ``PUT /chaos`` ``{"source": <the TOML text>, "applied_at":
<epoch seconds>}``, parses it again (the same code) and applies its own faults: the origin faults to its pipeline
(``PopState.apply_chaos``), the function faults to its executor (``StartShaper.faults``). ``GET /chaos`` answers
the POP's status (each fault: pending / active / spent / expired, how many times injected), ``DELETE /chaos`` clears.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from edge.cdn.chaos.engine import PopChaos
from edge.cdn.chaos.scenario import ScenarioError, parse_scenario
from edge.cdn.server.pop import PopState
from edge.invocation import Executor, StartShaper


def install_faults(executor: Executor | None, faults: PopChaos | None) -> None:
    """Make ``faults`` the fault source of ``executor`` (None: none); the executor keeps no shaper when neither
    faults nor the realistic cold-start model need one (its hot path is then one None check)."""
    if executor is None:
        return
    shaper = executor.shaper or StartShaper()
    shaper.faults = faults
    executor.shaper = shaper if shaper.active else None


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def add_chaos_routes(admin: web.Application, state: PopState, executor: Executor | None) -> None:
    """``PUT``/``GET``/``DELETE /chaos`` on the POP's admin app (module docstring)."""

    async def put(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict) or not isinstance(body.get("source"), str):
                raise ScenarioError('body must be {"source": "<scenario TOML>", "applied_at": <epoch seconds>}')
            applied_at = body.get("applied_at")
            if isinstance(applied_at, bool) or not isinstance(applied_at, int | float):
                raise ScenarioError("applied_at must be the epoch seconds the scenario was applied at")
            scenario = parse_scenario(body["source"])
        except (orjson.JSONDecodeError, ScenarioError) as exc:
            return _json({"error": f"not applied: {exc}"}, 400)
        chaos = state.apply_chaos(scenario, float(applied_at))
        install_faults(executor, chaos)
        return _json(chaos.status())

    async def get(request: web.Request) -> web.Response:
        chaos = state.ctx.chaos
        return _json({"scenario": None, "counts": dict(state.ctx.stats.chaos_faults)} if chaos is None else
                     {"scenario": chaos.status(), "counts": dict(state.ctx.stats.chaos_faults)})

    async def delete(request: web.Request) -> web.Response:
        install_faults(executor, None)
        return _json({"cleared": state.clear_chaos()})

    admin.router.add_put("/chaos", put)
    admin.router.add_get("/chaos", get)
    admin.router.add_delete("/chaos", delete)
