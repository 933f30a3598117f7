"""The POP-side admin app, served on the POP's unix socket and called by the control process.

Routes (JSON in, JSON out):

* ``POST /invalidate`` ``{"paths": ["/img/*", "/index.html"]}`` -> ``{"invalidated": n, "paths": [...]}``
  (CloudFront invalidation paths: case-sensitive, must start with ``/``, ``*`` only as the last character);
* ``GET /stats`` -> the POP's counters plus cache occupancy;
* ``POST /reset`` -> clears the cache (and the counters with ``{"stats": true}``) -> ``{"cleared": n}``;
* ``GET /health`` -> ``{"status": "ok", "pop": "IAD89-C1", ...}``.

Bad input answers 400 ``{"error": "..."}``. Invalidation is a synchronous in-memory purge, so it completes in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web


class AdminTarget(Protocol):
    """What the admin app needs from a POP (implemented by ``edge.cdn.server.pop.PopState``)."""

    def invalidate(self, paths: Sequence[str]) -> int: ...

    def reset(self, *, stats: bool) -> int: ...

    def stats_snapshot(self) -> dict[str, object]: ...

    def health(self) -> dict[str, object]: ...


ADMIN_TARGET = web.AppKey("admin_target", AdminTarget)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def validate_paths(body: object) -> list[str]:
    """The invalidation paths of ``body``, or ValueError with a message for the caller."""
    if not isinstance(body, dict):
        raise ValueError('body must be a JSON object like {"paths": ["/img/*"]}')
    paths = body.get("paths")
    if not isinstance(paths, list) or not paths:
        raise ValueError('"paths" must be a non-empty list of strings')
    for p in paths:
        if not isinstance(p, str) or not p.startswith("/"):
            raise ValueError(f"invalid path {p!r}: must be a string starting with '/'")
        if "*" in p[:-1]:
            raise ValueError(f"invalid path {p!r}: '*' is only allowed as the last character")
    return paths


async def _body(request: web.Request) -> object:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(body=orjson.dumps({"error": f"invalid JSON: {exc}"}),
                                 content_type="application/json") from None


async def invalidate(request: web.Request) -> web.Response:
    try:
        paths = validate_paths(await _body(request))
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    n = request.app[ADMIN_TARGET].invalidate(paths)
    return _json({"invalidated": n, "paths": paths})


async def stats(request: web.Request) -> web.Response:
    return _json(request.app[ADMIN_TARGET].stats_snapshot())


async def reset(request: web.Request) -> web.Response:
    body = await _body(request)
    with_stats = isinstance(body, dict) and body.get("stats") is True
    return _json({"cleared": request.app[ADMIN_TARGET].reset(stats=with_stats)})


async def health(request: web.Request) -> web.Response:
    return _json(request.app[ADMIN_TARGET].health())


def make_admin_app(target: AdminTarget) -> web.Application:
    """The admin app for one POP (runs on the POP's loop, usually on a UnixSite)."""
    app = web.Application()
    app[ADMIN_TARGET] = target
    app.router.add_post("/invalidate", invalidate)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_get("/health", health)
    return app


async def serve_admin(app: web.Application, sock: Path) -> web.AppRunner:
    """Serve ``app`` on the unix socket ``sock`` (its folder made, a stale socket file replaced); the runner, which
    the caller cleans up (on a failure here it is cleaned up before the error propagates)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        _clear_socket_path(sock)
        await web.UnixSite(runner, str(sock)).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def _clear_socket_path(sock: Path) -> None:
    """The socket's folder made and a stale socket file removed (local metadata calls, once at start-up: as the
    callers did inline before, not worth a thread)."""
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
