"""A tier node's listener: the regional edge cache (and Origin Shield) of one region, on 127.0.0.1.

It answers only the tier hop of :mod:`edge.cdn.tiers.upstream` (a request without ``X-Edgelab-Tier-Layer`` gets a
400 naming the POP ports to use instead): the request goes through :func:`edge.cdn.pipeline.handle_tier` with the
node's ``PopState`` (its own cache, collapsing, counters, origin client and trigger runner), and the answer goes
back with the stored headers, ``Age`` and the verdict header (:class:`~edge.cdn.tiers.upstream.TierVerdict`).
The node publishes its port in ``port_file`` (written atomically) once it listens, and removes it when it stops.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edge.cdn import pipeline
from edge.cdn.errors import EdgeError
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.responses import ERROR, REPLACED, error_response, new_request_id
from edge.cdn.server.pop import PopState
from edge.cdn.server.respond import SERVER_KWARGS
from edge.cdn.steps import Exchange
from edge.cdn.tiers import LAYER_REC, LAYER_SHIELD, TIER_HEADER_PREFIX
from edge.cdn.tiers.upstream import H_CLIENT, H_LAYER, H_RID, H_SCHEME, H_VERDICT, TierVerdict

__all__ = ["RunningTier", "serve_tier", "start_tier"]

log = logging.getLogger("edgelab.tiers")

_LAYERS = (LAYER_REC, LAYER_SHIELD)


def _verdict(ex: Exchange, layer: str) -> TierVerdict:
    timing = ex.timing
    fetched = timing.upstream_fbl_s is not None
    return TierVerdict(x_cache=ex.x_cache, origin_status=ex.origin_status, hit_layer=timing.hit_layer,
                       upstream_layer=timing.upstream_layer or (layer if fetched else ""),
                       upstream_fbl_s=timing.upstream_fbl_s, entries=tuple(timing.entries),
                       origin_timing=timing.origin_value)


async def serve_tier(state: PopState, request: web.BaseRequest) -> web.StreamResponse:
    """Answer one tier hop for the node ``state`` (see the module docstring)."""
    started = time.perf_counter()
    headers = request.headers
    layer = headers.get(H_LAYER, "")
    if layer not in _LAYERS:
        return web.Response(status=400, text=f"{state.pop.name} is a regional edge cache node: it answers POPs "
                                             "only; send viewer requests to a POP's port\n")
    request_id = headers.get(H_RID) or new_request_id()
    raw_path = request.raw_path
    uri, _, query = raw_path.partition("?")
    kept = [(k, v) for k, v in headers.items() if not k.lower().startswith(TIER_HEADER_PREFIX)]
    edge_req = EdgeRequest(method=request.method, uri=uri, querystring=query, headers=kept,
                           client_ip=headers.get(H_CLIENT, "127.0.0.1"), scheme=headers.get(H_SCHEME, "http"),
                           http_version=request.version)
    try:
        response, ex = await pipeline.handle_tier(state.ctx, edge_req, request_id, started, layer)
    except Exception:  # a bug: answer like CloudFront would (500 page) and keep serving
        log.exception("unhandled error for tier request %s %s", request.method, uri)
        ex = Exchange(request=edge_req, request_id=request_id, started=started, x_cache=ERROR)
        response = error_response(EdgeError("internal error"), request_id)
    return await _write(request, response, ex, layer)


async def _write(request: web.BaseRequest, response: EdgeResponse, ex: Exchange, layer: str) -> web.StreamResponse:
    out = [(k, v) for k, v in response.headers if k.lower() not in REPLACED]
    if ex.age is not None:
        out.append(("Age", str(ex.age)))
    out.append((H_VERDICT, _verdict(ex, layer).header()))
    reason = response.status_description or None
    if reason is not None and ("\n" in reason or "\r" in reason):
        reason = None
    body = response.body
    if isinstance(body, bytes):
        return web.Response(status=response.status, reason=reason, body=body, headers=out)
    resp = web.StreamResponse(status=response.status, reason=reason, headers=out)
    if response.meta.content_length is not None:
        resp.content_length = response.meta.content_length
    try:
        await resp.prepare(request)
        async for chunk in body:
            await resp.write(chunk)
        await resp.write_eof()
    except (EdgeError, ConnectionError) as exc:  # the origin broke mid-body or the POP went away
        log.info("tier stream for %s aborted: %r", request.path, exc)
        if request.transport is not None:
            request.transport.abort()
    finally:
        await response.aclose()
    return resp


@dataclass
class RunningTier:
    """A started tier node: its state, runner, port and port file; ``stop()`` undoes ``start_tier``."""

    state: PopState
    runner: web.BaseRunner
    port: int
    port_file: Path | None

    async def stop(self) -> None:
        try:
            if self.port_file is not None:
                self.port_file.unlink(missing_ok=True)
            await self.runner.cleanup()
        finally:
            await self.state.ctx.background.aclose()
            await self.state.origin_client.close()
            if self.state.ctx.upstream is not None:
                await self.state.ctx.upstream.close()


async def start_tier(state: PopState, *, host: str = "127.0.0.1", port: int = 0,
                     port_file: Path | None = None) -> RunningTier:
    """Serve the tier node ``state`` (built like a POP's, with its ``upstream`` for the Origin Shield hop) on
    ``host:port`` (0: any free port), then publish the bound port in ``port_file``."""
    await state.origin_client.start()
    if state.ctx.upstream is not None:
        await state.ctx.upstream.start()
    runner = web.ServerRunner(web.Server(lambda r: serve_tier(state, r), access_log=None, **SERVER_KWARGS),
                              handle_signals=False)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=1024).start()
        bound = runner.addresses[0][1]
        if port_file is not None:
            port_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = port_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(f"{bound}\n")
            tmp.replace(port_file)
    except BaseException:
        await runner.cleanup()
        await state.ctx.background.aclose()
        await state.origin_client.close()
        if state.ctx.upstream is not None:
            await state.ctx.upstream.close()
        raise
    log.info("tier node %s listening on %s:%d", state.pop.name, host, bound)
    return RunningTier(state=state, runner=runner, port=bound, port_file=port_file)
