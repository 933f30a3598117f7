"""The dashboard at ``/edgelab/`` on the API port: live charts, POPs, functions, metrics and the one log view.

A static page (``static/dashboard.html`` / ``.js`` / ``.css``) that polls the admin API: ``/edgelab/v1/series``
every sample interval for the charts (:mod:`edge.control.admin.series`: request rate and hit ratio per POP,
invocations, cold starts, errors and throttles per function over time, cold vs warm latency histograms), and
``/edgelab/v1/status``, ``/edgelab/v1/metrics`` and the Lambda API's ``/2015-03-31/functions`` every 3 s for the
tables. The charts are drawn by uPlot (https://github.com/leeoniya/uPlot, MIT; the npm package's minified build,
vendored under ``static/`` with its licence): no build step and no external asset, since the machine may be
offline. Everything is served from package data at ``/edgelab/static/<name>``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web

__all__ = ["STATIC_FILES", "add_dashboard_routes"]

STATIC_FILES = {  # name -> content type: nothing else under static/ is served
    "dashboard.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}


@cache
def _static(name: str) -> bytes:
    return resources.files("edge.control.admin").joinpath("static", name).read_bytes()


async def dashboard(request: web.Request) -> web.Response:
    return web.Response(body=_static("dashboard.html"), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound(text=f"no dashboard asset named {name!r}; known: {', '.join(sorted(STATIC_FILES))}")
    return web.Response(body=_static(name), content_type=content_type, charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def add_dashboard_routes(app: web.Application) -> None:
    app.router.add_get("/edgelab", dashboard)
    app.router.add_get("/edgelab/", dashboard)
    app.router.add_get("/edgelab/static/{name}", static)
