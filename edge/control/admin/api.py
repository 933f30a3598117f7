"""The admin API of the control process, under ``/edgelab/v1`` on the API port.

- ``GET  /edgelab/v1/health``         liveness
- ``GET  /edgelab/v1/pops``           machine-readable list of POPs: name, region, url
- ``POST /edgelab/v1/invalidations``  CloudFront path syntax, for every POP or one (``{"paths": [...], "pop": "IAD"}``
  or CloudFront's own ``InvalidationBatch`` shape ``{"Paths": {"Quantity": n, "Items": [...]}, "CallerReference": ...}``)
- ``POST /edgelab/v1/reset``          drop warm environments (every region) and every POP's cache
- ``GET  /edgelab/v1/metrics``        function metrics (per process/region), POP cache/request stats, and
  ``async``: asynchronous invocation counters and queue depths (also at ``/edgelab/v1/async``)
- ``GET  /edgelab/v1/logs``           ``name`` (a function or a log group; ``function`` is the same), ``request_id``
  (a Lambda request id or an ``X-Amz-Cf-Id``), ``tail``, ``region``, ``since`` (epoch ms): log events merged across
  regions and groups (:mod:`edge.control.logs_api.merged`; 404 for an unknown name); no name: the log groups
- ``GET  /edgelab/v1/status``         summary for the CLI and the dashboard
- ``PUT|GET|DELETE /edgelab/v1/chaos`` edge chaos scenarios (:mod:`edge.control.admin.chaos`)

POPs run in their own processes; the control process reaches each through its admin unix socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from edge.cdn.server.admin import validate_paths


@dataclass(frozen=True)
class PopEndpoint:
    """How the control process sees one POP."""

    name: str
    region: str
    url: str  # viewer-facing URL, e.g. http://127.0.0.1:8081
    admin_socket: Path  # unix socket of the POP's admin app
    tier: bool = False  # a regional edge cache / Origin Shield node (edge.cdn.tiers)


@dataclass
class AdminContext:
    pops: list[PopEndpoint]
    reset_local: Callable[[], Awaitable[object]]  # drop the control process's own warm environments
    local_metrics: Callable[[], dict[str, Any]]  # the control process's function metrics
    # (name, request_id, tail, region, since_ms) -> {"groups", "events"}; LookupError for an unknown name
    read_logs: Callable[..., Awaitable[dict[str, Any]]]
    extra_status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    async_metrics: Callable[[], Awaitable[dict[str, Any]]] | None = None  # async invocation counters and queues
    tiers: list[PopEndpoint] = field(default_factory=list)  # regional edge cache / Origin Shield nodes (same socket API)
    started_at: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())


ADMIN_CTX = web.AppKey("admin_ctx", AdminContext)
POP_SESSIONS = web.AppKey("pop_sessions", dict)
MAX_INVALIDATION_PATHS = 3000  # CloudFront: paths per invalidation batch


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"Type": "User", "code": code, "message": message}), status=status,
                        content_type="application/json", headers={"x-amzn-ErrorType": code})


async def _pop_call(app: web.Application, pop: PopEndpoint, method: str, path: str,
                    body: object | None = None) -> tuple[str, Any]:
    """Call one POP's admin socket; failures are reported per POP, not raised."""
    session: aiohttp.ClientSession = app[POP_SESSIONS][pop.name]
    if pop.tier and not pop.admin_socket.exists():  # a tier node still starting: it starts empty, with the
        return pop.name, {"running": False}  # persisted distribution, so there is nothing to purge or deploy
    try:
        async with session.request(method, f"http://pop{path}", json=body) as resp:
            payload = await resp.json(content_type=None)
            if resp.status >= 400:
                return pop.name, {"error": f"HTTP {resp.status}", "detail": payload}
            return pop.name, payload
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        return pop.name, {"error": f"POP {pop.name} unreachable: {exc.__class__.__name__}: {exc}"}


async def _fan_out(app: web.Application, pops: list[PopEndpoint], method: str, path: str,
                   body: object | None = None) -> dict[str, Any]:
    results = await asyncio.gather(*(_pop_call(app, p, method, path, body) for p in pops))
    return dict(results)


def parse_invalidation_paths(body: Any) -> list[str]:
    """Accept ``{"paths": [...]}`` or CloudFront's ``InvalidationBatch``; the path rules are the POP's own
    (:func:`edge.cdn.server.admin.validate_paths`), checked here too so that a bad batch reaches no POP."""
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object")
    batch = body.get("InvalidationBatch", body)
    if isinstance(batch.get("Paths"), dict):
        paths_obj = batch["Paths"]
        items = paths_obj.get("Items", [])
        if "Quantity" in paths_obj and paths_obj["Quantity"] != len(items):
            raise ValueError(f"Paths.Quantity is {paths_obj['Quantity']} but Paths.Items has {len(items)} entries")
    else:
        items = batch.get("paths", batch.get("Paths"))
    if isinstance(items, list) and len(items) > MAX_INVALIDATION_PATHS:
        raise ValueError(f"at most {MAX_INVALIDATION_PATHS} paths per invalidation")
    return validate_paths({"paths": items})


async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def list_pops(request: web.Request) -> web.Response:
    ctx = request.app[ADMIN_CTX]
    return _json({"pops": [{"name": p.name, "region": p.region, "url": p.url} for p in ctx.pops]})


def _select_pops(ctx: AdminContext, name: str | None) -> list[PopEndpoint] | None:
    if name is None:
        return ctx.pops
    chosen = [p for p in ctx.pops if p.name.upper() == str(name).upper()]
    return chosen or None


async def call_pops(admin: web.Application, method: str, path: str, body: object | None = None,
                    pops: list[PopEndpoint] | None = None) -> dict[str, Any]:
    """Call every POP's admin socket (or ``pops``) at once: POP name -> its JSON answer, or ``{"error": ...}`` for
    a POP that failed or answered an error (``admin`` is the admin sub-application). The other control-port APIs
    reach the POPs through this (the CloudFront API's invalidations and distribution deployments); without
    ``pops``, the tier nodes are called too (an invalidation purges every tier, a deployment reaches every tier)."""
    ctx = admin[ADMIN_CTX]
    return await _fan_out(admin, [*ctx.pops, *ctx.tiers] if pops is None else pops, method, path, body)


async def purge(admin: web.Application, paths: list[str], pops: list[PopEndpoint] | None = None) -> dict[str, Any]:
    """Invalidate ``paths`` (already validated: :func:`parse_invalidation_paths`) in every POP (or ``pops``):
    per-POP results as :func:`call_pops` gives them."""
    return await call_pops(admin, "POST", "/invalidate", {"paths": paths}, pops)


async def create_invalidation(request: web.Request) -> web.Response:
    ctx = request.app[ADMIN_CTX]
    try:
        body = orjson.loads(await request.read() or b"{}")
        paths = parse_invalidation_paths(body)
    except (ValueError, orjson.JSONDecodeError) as exc:
        return _error(400, "InvalidArgument", str(exc))
    pops = _select_pops(ctx, body.get("pop"))
    if pops is ctx.pops:  # every POP: every tier too (CloudFront's invalidations purge the regional caches too)
        pops = [*ctx.pops, *ctx.tiers]
    if pops is None:
        return _error(404, "NoSuchPop", f"no POP named {body.get('pop')!r}; known: {[p.name for p in ctx.pops]}")
    started = dt.datetime.now(dt.UTC)
    results = await purge(request.app, paths, pops)
    failed = {k: v for k, v in results.items() if isinstance(v, dict) and "error" in v}
    inv = {
        "Id": "I" + secrets.token_hex(7).upper(),
        "Status": "Completed" if not failed else "Failed",
        "CreateTime": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "InvalidationBatch": {"Paths": {"Quantity": len(paths), "Items": paths},
                              "CallerReference": str(body.get("CallerReference", started.timestamp()))},
    }
    status = 201 if not failed else 502
    return _json({"Invalidation": inv, "pops": results}, status=status)


async def reset(request: web.Request) -> web.Response:
    ctx = request.app[ADMIN_CTX]
    local, caches, envs = await asyncio.gather(
        ctx.reset_local(), _fan_out(request.app, [*ctx.pops, *ctx.tiers], "POST", "/reset", {}),
        _fan_out(request.app, [*ctx.pops, *ctx.tiers], "POST", "/functions/reset", {}))
    pops = {name: {"cache": caches[name], "functions": envs[name]} for name in caches}
    failed = any(isinstance(v, dict) and "error" in v for p in pops.values() for v in p.values())
    return _json({"control": local if isinstance(local, dict) else {"reset": True}, "pops": pops},
                 status=502 if failed else 200)


async def gather_metrics(admin: web.Application) -> dict[str, Any]:
    """Everything ``GET /edgelab/v1/metrics`` answers (``admin`` is the admin sub-application): the control
    process's function metrics, each POP's counters and function metrics (an unreachable POP: ``{"error"}``)
    and the async invocation metrics. The Prometheus exposition renders the same data."""
    ctx = admin[ADMIN_CTX]
    stats, functions = await asyncio.gather(_fan_out(admin, ctx.pops, "GET", "/stats"),
                                            _fan_out(admin, ctx.pops, "GET", "/functions/metrics"))
    pops = {name: {**(stats[name] if isinstance(stats[name], dict) else {}), "functions": functions[name]}
            for name in stats}
    data: dict[str, Any] = {"control": ctx.local_metrics(), "pops": pops}
    if ctx.tiers:  # one row per regional edge cache / Origin Shield node: its cache and origin counters
        tier_stats = await _fan_out(admin, ctx.tiers, "GET", "/stats")
        data["tiers"] = {t.name: {"region": t.region, **(tier_stats[t.name] if isinstance(tier_stats[t.name], dict)
                                                       else {})} for t in ctx.tiers}
    if ctx.async_metrics is not None:
        data["async"] = await ctx.async_metrics()
    return data


async def metrics(request: web.Request) -> web.Response:
    return _json(await gather_metrics(request.app))


async def logs(request: web.Request) -> web.Response:
    ctx = request.app[ADMIN_CTX]
    q = request.query
    name = q.get("name") or q.get("function") or ""
    try:
        tail = int(q.get("tail", "100"))
        since = int(q["since"]) if q.get("since") else None
    except ValueError:
        return _error(400, "InvalidParameterValueException", "'tail' and 'since' (epoch milliseconds) must be integers")
    try:
        found = await ctx.read_logs(name=name, request_id=q.get("request_id") or None, tail=tail,
                                    region=q.get("region") or None, since_ms=since)
    except LookupError as exc:
        return _error(404, "ResourceNotFoundException", str(exc.args[0]) if exc.args else str(exc))
    return _json(found)


async def status(request: web.Request) -> web.Response:
    ctx = request.app[ADMIN_CTX]
    pops = await _fan_out(request.app, ctx.pops, "GET", "/health")
    data: dict[str, Any] = {"pops": [{"name": p.name, "region": p.region, "url": p.url, "health": pops.get(p.name)}
                                     for p in ctx.pops]}
    if ctx.extra_status:
        data.update(await ctx.extra_status())
    return _json(data)


async def _pop_sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    ctx = app[ADMIN_CTX]
    timeout = aiohttp.ClientTimeout(total=10)
    app[POP_SESSIONS] = {p.name: aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(p.admin_socket)),
                                                        timeout=timeout) for p in [*ctx.pops, *ctx.tiers]}
    yield
    await asyncio.gather(*(s.close() for s in app[POP_SESSIONS].values()))


def make_admin_app(ctx: AdminContext) -> web.Application:
    """The ``/edgelab/v1`` sub-application (mount it with ``app.add_subapp("/edgelab/v1", ...)``)."""
    app = web.Application()
    app[ADMIN_CTX] = ctx
    app.cleanup_ctx.append(_pop_sessions_ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/pops", list_pops)
    app.router.add_post("/invalidations", create_invalidation)
    app.router.add_post("/reset", reset)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/logs", logs)
    app.router.add_get("/status", status)
    from edge.control.admin.chaos import add_chaos_routes  # it imports this module's helpers

    add_chaos_routes(app)
    return app
