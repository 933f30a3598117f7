"""One POP process: the POP's viewer-facing server, its admin socket, and its own invocation core for its region
(own warm pools, own concurrency limit), reading the shared registry under the state directory.

Startup report: every Lambda@Edge association of the distribution is resolved and checked once; problems are
logged (and answered with CloudFront's LambdaExecutionError while they last), never silently ignored.

CloudFront Functions (``FunctionAssociations``) run in the POP process itself (``CloudFrontFunctionRunner``, reading
the function store under the state directory); their ``console.log`` output goes to us-east-1's log directory, as
CloudFront sends it to us-east-1 whatever the edge location.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.runner import LOG_REGION, CloudFrontFunctionRunner, FunctionCatalog
from edge.cdn.lambda_edge.runner import EdgeTriggerRunner, FactsLookup, VersionFacts, distribution_associations
from edge.cdn.server.admin import make_admin_app
from edge.cdn.server.pop import start_pop
from edge.control.stack.config import StackConfig
from edge.invocation import Executor, ExecutorSettings, LambdaService, LogStore
from edge.invocation.errors import ResourceNotFoundException

log = logging.getLogger("edgelab.pop")

EXECUTOR_KEY = web.AppKey("executor", Executor)


def region_logs_dir(cfg: StackConfig, region: str) -> Path:
    """Logs are kept per executing region, as CloudWatch does (one log view merges them)."""
    return cfg.state_dir / "logs" / region


def make_service(cfg: StackConfig, region: str) -> LambdaService:
    """The invocation core of one process, for ``region`` (its pools and limits)."""
    lam = cfg.settings.lambda_
    limit = lam.account_concurrency.get(region, 1000)
    executor = Executor(ExecutorSettings(state_dir=cfg.state_dir, idle_ttl_s=lam.idle_ttl_s,
                                         account_concurrency=limit, logs_dir=region_logs_dir(cfg, region)))
    return LambdaService(cfg.state_dir, region=region, executor=executor, account_concurrency=limit)


def call_stream_date() -> str:
    return time.strftime("%Y/%m/%d", time.gmtime())


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
    names = [a.function_name for b in cfg.distribution.all_behaviors for a in b.function_associations]
    if not names:
        return None
    logs = LogStore(region_logs_dir(cfg, LOG_REGION))
    await logs.start()
    runner = CloudFrontFunctionRunner(
        FunctionCatalog(CffDatabase(cfg.state_dir), names),
        edge_location={"name": pop.name, "serverIp": pop.host, "region": pop.region},
        log_sink=lambda group, stream, lines, rid: logs.append(group, stream, lines, rid), stream_prefix=f"{pop.name}-")
    try:
        await runner.start()
    except BaseException:
        await logs.close()
        raise
    return runner, logs


async def run_pop_node(cfg: StackConfig, name: str, stop: asyncio.Event) -> None:
    pop = cfg.settings.pop(name)
    service = make_service(cfg, pop.region)
    await service.start()
    admin_runner: web.AppRunner | None = None
    running = None
    cff: tuple[CloudFrontFunctionRunner, LogStore] | None = None
    try:
        cff = await start_cloudfront_functions(cfg, name)
        assert service.executor is not None
        logs = service.executor.logs
        runner = EdgeTriggerRunner(service, region=pop.region, facts=facts_lookup(service),
                                   validation_log=lambda group, rid, lines: logs.append(
                                       group, f"{pop.name}/{call_stream_date()}", lines, rid),
                                   relax_limits=cfg.settings.edge.relax_limits)
        await report_associations(runner, cfg, name)
        running = await start_pop(pop, cfg.distribution, cfg.settings, triggers=runner,
                                  functions=cff[0] if cff is not None else None, tls_dir=cfg.tls_dir)
        admin = make_admin_app(running.state)
        _executor_routes(admin, service)
        admin_runner = web.AppRunner(admin, access_log=None, handle_signals=False)
        await admin_runner.setup()
        sock = cfg.admin_socket(name)
        sock.parent.mkdir(parents=True, exist_ok=True)
        sock.unlink(missing_ok=True)
        await web.UnixSite(admin_runner, str(sock)).start()
        await stop.wait()
    finally:
        if admin_runner is not None:
            await admin_runner.cleanup()
        if running is not None:
            await running.stop()
        if cff is not None:
            await cff[0].close()
            await cff[1].close()
        await service.close()


def metrics_of(service: LambdaService) -> dict[str, Any]:
    return service.executor.metrics.snapshot() if service.executor is not None else {}
