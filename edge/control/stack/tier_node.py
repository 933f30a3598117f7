"""One tier node process: the regional edge cache (and Origin Shield) of one region (:mod:`edge.cdn.tiers`).

Started by the supervisor before the POPs (``python -m edge.control.stack.node tier --region us-east-1``), one per
region of :func:`edge.cdn.tiers.tier_regions`. It is built like a POP process (``pop_node``): its own cache,
counters and origin client, its own invocation core for its region (the origin-facing Lambda@Edge functions run
where CloudFront calls the origin), the same admin socket routes (invalidations, stats, reset, health, the
distribution deployment), and a loopback listener on a free port published in the run directory for the POPs and
the other tiers (``TierUpstream``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
from aiohttp import web

from edge.cdn.config.settings import DEFAULT_REGION_LATENCY_MS, PopSettings
from edge.cdn.lambda_edge.runner import EdgeTriggerRunner
from edge.cdn.server.admin import make_admin_app, serve_admin
from edge.cdn.server.pop import PopState
from edge.cdn.tiers import port_file_name
from edge.cdn.tiers.server import RunningTier, start_tier
from edge.cdn.tiers.upstream import TierUpstream
from edge.control.stack.config import StackConfig
from edge.control.stack.pop_node import (
    _executor_routes,
    call_stream_date,
    facts_lookup,
    log,
    make_service,
    newest_lookup,
    persisted_distribution,
    read_distribution,
    watch_pins,
)
from edge.control.stack.tiers import tier_name
from edge.tasks import TaskOwner


def tier_settings(cfg: StackConfig, region: str) -> PopSettings:
    """The node as a POP-like record: its region, the tiers' cache budget, the region's simulated origin latency."""
    return PopSettings(name=tier_name(region), region=region, port=0,
                       origin_latency_ms=DEFAULT_REGION_LATENCY_MS.get(region, 0.0),
                       cache_max_bytes=cfg.settings.tiers.cache_max_bytes)


def _distribution_route(admin: web.Application, cfg: StackConfig, state: PopState) -> None:
    """``PUT /distribution``: as a POP's (``pop_node``), without CloudFront Functions (they run at the POPs)."""

    async def put(request: web.Request) -> web.Response:
        distribution = await read_distribution(request, cfg)
        if isinstance(distribution, web.Response):
            return distribution
        state.apply_distribution(distribution)
        log.info("tier %s: distribution %s ETag %s in service", state.pop.name, distribution.id,
                 distribution.etag)
        return web.Response(body=orjson.dumps({"applied": distribution.etag}), content_type="application/json")

    admin.router.add_put("/distribution", put)


async def run_tier_node(cfg: StackConfig, region: str, stop: asyncio.Event, *, watch: bool = False) -> None:
    """Run the tier node of ``region`` until ``stop``; ``watch`` as for a POP (``pop_node.run_pop_node``)."""
    node = tier_settings(cfg, region)
    cfg = replace(cfg, distribution=await asyncio.to_thread(persisted_distribution, cfg))
    service = make_service(cfg, region)
    await service.start()
    admin_runner: web.AppRunner | None = None
    running: RunningTier | None = None
    tasks = TaskOwner(f"edgelab-tier-{region}")
    try:
        assert service.executor is not None
        logs = service.executor.logs
        runner = EdgeTriggerRunner(service, region=region, facts=facts_lookup(service),
                                   validation_log=lambda group, rid, lines: logs.append(
                                       group, f"{node.name}/{call_stream_date()}", lines, rid),
                                   relax_limits=cfg.settings.edge.relax_limits, newest=newest_lookup(service),
                                   follow_newest=[d.name for d in cfg.settings.functions] if watch else (),
                                   name=node.name)
        upstream = TierUpstream(cfg.run_dir, region, stream_threshold=cfg.settings.cache.max_object_bytes)
        state = PopState(node, cfg.distribution, cfg.settings, triggers=runner, upstream=upstream)
        # the admin socket first: from the moment POPs can reach this node (its port file), invalidations reach it
        admin = make_admin_app(state)
        _executor_routes(admin, service)
        _distribution_route(admin, cfg, state)
        admin_runner = await serve_admin(admin, cfg.admin_socket(node.name))
        running = await start_tier(state, port_file=cfg.run_dir / port_file_name(region))
        tasks.spawn(watch_pins(runner, lambda: state.ctx.distribution, stop), name="watch-pins")
        await stop.wait()
    finally:
        await tasks.aclose()
        if admin_runner is not None:
            await admin_runner.cleanup()
        if running is not None:
            await running.stop()
        await service.close()

