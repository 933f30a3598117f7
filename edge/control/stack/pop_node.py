"""One POP process: the POP's viewer-facing server, its admin socket, and its own invocation core for its region
(own warm pools, own concurrency limit), reading the shared registry under the state directory.

Startup report: every Lambda@Edge association of the distribution is resolved and checked once; problems are
logged (and answered with CloudFront's LambdaExecutionError while they last), never silently ignored. Then every
second (:func:`watch_pins`), so that a newer published version is warned about (or re-pointed to under
``--watch``) without waiting for a request.

CloudFront Functions (``FunctionAssociations``) run in the POP process itself (``CloudFrontFunctionRunner``, reading
the function store under the state directory); their ``console.log`` output goes to us-east-1's log directory, as
CloudFront sends it to us-east-1 whatever the edge location.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.runner import LOG_REGION, CloudFrontFunctionRunner, FunctionCatalog
from edge.cdn.config.distribution import Distribution
from edge.cdn.config.policies import ConfigError
from edge.cdn.lambda_edge.runner import (
    EdgeTriggerRunner,
    FactsLookup,
    NewestLookup,
    VersionFacts,
    distribution_associations,
)
from edge.cdn.server.admin import make_admin_app, serve_admin
from edge.cdn.server.pop import RunningPop, start_pop
from edge.cdn.tiers.upstream import TierUpstream
from edge.control.cloudfront_api.distributions import load_document, read_document
from edge.control.stack.config import StackConfig
from edge.control.stack.pop_chaos import add_chaos_routes
from edge.invocation import ColdStartModel, Executor, ExecutorSettings, LambdaService, LogStore, StartShaper
from edge.invocation.errors import ResourceNotFoundException
from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.pop")

EXECUTOR_KEY = web.AppKey("executor", Executor)


def region_logs_dir(cfg: StackConfig, region: str) -> Path:
    """Logs are kept per executing region, as CloudWatch does (one log view merges them)."""
    return cfg.state_dir / "logs" / region


def make_service(cfg: StackConfig, region: str) -> LambdaService:
    """The invocation core of one process, for ``region`` (its pools; its concurrency limits are shared with
    every process of the stack executing in the same region, through ``<state>/concurrency``)."""
    lam = cfg.settings.lambda_
    limit = lam.account_concurrency.get(region, 1000)
    executor = Executor(ExecutorSettings(state_dir=cfg.state_dir, idle_ttl_s=lam.idle_ttl_s,
                                         account_concurrency=limit, logs_dir=region_logs_dir(cfg, region),
                                         concurrency_dir=cfg.state_dir / "concurrency"))
    if lam.realistic_cold_starts:  # [lambda] realistic_cold_starts: modelled Init delays (coldstart model)
        executor.shaper = StartShaper(model=ColdStartModel(seed=lam.cold_start_seed))
    return LambdaService(cfg.state_dir, region=region, executor=executor, account_concurrency=limit)


async def read_distribution(request: web.Request, cfg: StackConfig) -> Distribution | web.Response:
    """The DistributionConfig a ``PUT /distribution`` carries, loaded with the stack's settings (off the loop), or
    the 400 ``{"error"}`` answer for a document that does not load here (the configuration in service stays)."""
    try:
        doc = orjson.loads(await request.read())
        return await asyncio.to_thread(load_document, doc, cfg.settings)
    except (orjson.JSONDecodeError, ConfigError, KeyError, TypeError) as exc:
        return web.Response(status=400, body=orjson.dumps({"error": f"not applied: {exc}"}),
                            content_type="application/json")


def call_stream_date() -> str:
    return time.strftime("%Y/%m/%d", time.gmtime())


def newest_lookup(service: LambdaService) -> NewestLookup:
    """name -> the newest published version number of the function (None: none published, or no such function),
    from the registry cache (in memory after the first load)."""

    async def newest(name: str) -> str | None:
        try:
            snap = await service.snapshot_of(name)
        except ResourceNotFoundException:
            return None
        numbers = [int(v) for v in snap.specs if v.isdigit()]
        return str(max(numbers)) if numbers else None

    return newest


def facts_lookup(service: LambdaService) -> FactsLookup:
    """(name, qualifier) -> facts of every version the qualifier may route to (None: does not resolve)."""

    async def facts(name: str, qualifier: str) -> list[VersionFacts] | None:
        try:
            record, alias = await service.get_function_configuration(name, qualifier)
            records = [record]
            if alias is not None:
                alias_rec = await service.get_alias(name, alias)
                records += [(await service.get_function_configuration(name, extra))[0] for extra in alias_rec.weights]
        except ResourceNotFoundException:
            return None
        return [VersionFacts(version=r.version, revision=r.config_revision, timeout_s=float(r.config.timeout),
                             memory_mb=r.config.memory_size, code_size=r.code.size,
                             environment=tuple(sorted((r.config.environment or {}).items())),
                             layers=tuple(a.arn for a in r.layers) if r.layers else tuple(r.config.layers),
                             runtime=r.config.runtime,
                             architecture=(r.config.architectures or ("x86_64",))[0],
                             ephemeral_storage_mb=r.config.ephemeral_storage) for r in records]

    return facts


async def report_associations(runner: EdgeTriggerRunner, cfg: StackConfig, pop_name: str) -> None:
    """Check every association once at startup. A problem is logged by the runner itself (once, when it appears,
    and again when it is resolved); the usable ones are listed here."""
    for assoc in distribution_associations(cfg.distribution):
        if await runner.check_association(assoc) is None:
            log.info("POP %s: %s -> %s ok", pop_name, assoc.event_type, assoc.arn)


PIN_CHECK_INTERVAL_S = 1.0


async def watch_pins(runner: EdgeTriggerRunner, current: Callable[[], Distribution], stop: asyncio.Event) -> None:
    """Re-check every association of the distribution in service (``current()``: an UpdateDistribution or an
    edited file changes it) each second, until ``stop``, so that a newer published version is warned about (or,
    under ``--watch``, re-pointed to) without waiting for a request. Cheap: the checks are cached, and read the
    registry's in-memory snapshots once it changed."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PIN_CHECK_INTERVAL_S):
                await stop.wait()
        if stop.is_set():
            return
        for assoc in distribution_associations(current()):
            try:
                await runner.check_association(assoc)
            except Exception:  # never stop watching: the next round retries (and requests check on their own)
                log.exception("checking the association %s failed", assoc.arn)


def _executor_routes(admin: web.Application, service: LambdaService) -> None:
    async def reset(request: web.Request) -> web.Response:
        assert service.executor is not None
        await service.executor.reset()
        return web.Response(body=orjson.dumps({"environments_retired": True}), content_type="application/json")

    async def metrics(request: web.Request) -> web.Response:
        assert service.executor is not None
        return web.Response(body=orjson.dumps(service.executor.metrics.snapshot()), content_type="application/json")

    admin.router.add_post("/functions/reset", reset)
    admin.router.add_get("/functions/metrics", metrics)


async def start_cloudfront_functions(cfg: StackConfig, name: str) -> tuple[CloudFrontFunctionRunner, LogStore] | None:
    """The POP's CloudFront Functions runner and its log store (None when the distribution associates none)."""
    pop = cfg.settings.pop(name)
    names = function_names(cfg.distribution)
    if not names:
        return None
    logs = LogStore(region_logs_dir(cfg, LOG_REGION))
    await logs.start()
    runner = CloudFrontFunctionRunner(
        FunctionCatalog(CffDatabase(cfg.state_dir), names),
        edge_location={"name": pop.name, "serverIp": pop.host, "region": pop.region},
        log_sink=lambda group, stream, lines, rid: logs.append(group, stream, lines, rid), stream_prefix=f"{pop.name}-",
        memo=cfg.settings.edge.cff_memo)
    try:
        await runner.start()
    except BaseException:
        await logs.close()
        raise
    return runner, logs


def persisted_distribution(cfg: StackConfig) -> Distribution:
    """The distribution the control process persisted (blocking), else the ``--distribution`` file's."""
    doc = read_document(cfg.state_dir)
    if doc is None:
        return cfg.distribution
    try:
        return load_document(doc, cfg.settings)
    except (ConfigError, KeyError, TypeError) as exc:
        log.error("the persisted distribution does not load here (%s): starting with the --distribution file", exc)
        return cfg.distribution


def function_names(distribution: Distribution) -> list[str]:
    return [a.function_name for b in distribution.all_behaviors for a in b.function_associations]


def _distribution_route(admin: web.Application, cfg: StackConfig, name: str, running: RunningPop,
                        cff: list[tuple[CloudFrontFunctionRunner, LogStore]]) -> None:
    """``PUT /distribution`` (the control process's deployment of a new configuration, see the module
    docstring); answers 400 ``{"error"}`` for a document that does not load here (the configuration in service
    stays)."""

    async def put(request: web.Request) -> web.Response:
        distribution = await read_distribution(request, cfg)
        if isinstance(distribution, web.Response):
            return distribution
        names = function_names(distribution)
        runner: CloudFrontFunctionRunner | None = None
        if names and not cff:
            started = await start_cloudfront_functions(replace(cfg, distribution=distribution), name)
            if started is not None:
                cff.append(started)
                runner = started[0]
        elif names:
            cff[0][0].catalog.follow(names)
            await cff[0][0].refresh()
        running.state.apply_distribution(distribution, runner)
        log.info("POP %s: distribution %s ETag %s in service", name, distribution.id, distribution.etag)
        return web.Response(body=orjson.dumps({"applied": distribution.etag}), content_type="application/json")

    admin.router.add_put("/distribution", put)


async def run_pop_node(cfg: StackConfig, name: str, stop: asyncio.Event, *, watch: bool = False) -> None:
    """``watch`` (``edgelab serve --watch``): the declared functions' associations run their newest published
    version whatever version they pin (see :mod:`edge.cdn.lambda_edge.runner`)."""
    pop = cfg.settings.pop(name)
    cfg = replace(cfg, distribution=await asyncio.to_thread(persisted_distribution, cfg))
    service = make_service(cfg, pop.region)
    await service.start()
    admin_runner: web.AppRunner | None = None
    running = None
    cff: list[tuple[CloudFrontFunctionRunner, LogStore]] = []
    tasks = TaskOwner(f"edgelab-pop-{name}")  # the association re-checks
    try:
        started = await start_cloudfront_functions(cfg, name)
        if started is not None:
            cff.append(started)
        assert service.executor is not None
        logs = service.executor.logs
        runner = EdgeTriggerRunner(service, region=pop.region, facts=facts_lookup(service),
                                   validation_log=lambda group, rid, lines: logs.append(
                                       group, f"{pop.name}/{call_stream_date()}", lines, rid),
                                   relax_limits=cfg.settings.edge.relax_limits, newest=newest_lookup(service),
                                   follow_newest=[d.name for d in cfg.settings.functions] if watch else (),
                                   name=pop.name)
        await report_associations(runner, cfg, name)
        upstream = (TierUpstream(cfg.run_dir, pop.tier_region, stream_threshold=cfg.settings.cache.max_object_bytes)
                    if cfg.settings.tiers.enabled else None)  # misses go through its regional edge cache
        running = await start_pop(pop, cfg.distribution, cfg.settings, triggers=runner,
                                  functions=cff[0][0] if cff else None, tls_dir=cfg.tls_dir, upstream=upstream)
        state = running.state
        tasks.spawn(watch_pins(runner, lambda: state.ctx.distribution, stop), name="watch-pins")
        admin = make_admin_app(state)
        _executor_routes(admin, service)
        _distribution_route(admin, cfg, name, running, cff)
        add_chaos_routes(admin, state, service.executor if isinstance(service.executor, Executor) else None)
        admin_runner = await serve_admin(admin, cfg.admin_socket(name))
        await stop.wait()
    finally:
        await tasks.aclose()
        if admin_runner is not None:
            await admin_runner.cleanup()
        if running is not None:
            await running.stop()
        for functions, logs_store in cff:
            await functions.close()
            await logs_store.close()
        await service.close()


def metrics_of(service: LambdaService) -> dict[str, Any]:
    return service.executor.metrics.snapshot() if service.executor is not None else {}
