"""The control process: Lambda REST API (with function URLs), CloudFront API (CloudFront Functions and
KeyValueStore, ``edge.control.cloudfront_api``), the AWS JSON APIs of ``POST /`` (CloudWatch Logs, SQS,
EventBridge), Prometheus ``/metrics``, admin API + dashboard on the API port, with the us-east-1 invocation core
(API ``Invoke`` calls run here) and the scheduler of scheduled rules. It deploys the functions declared in the
settings (Lambda and CloudFront) before it reports ready, so the POPs (started after it) find their associations
resolvable, reports the CloudFront function associations that do not resolve (one line each, with the next step),
and optionally watches the declarations. It owns the stack's distribution (``edge.control.cloudfront_api
.distributions``): the configuration in service, persisted in the state directory before the POPs start, changed
by UpdateDistribution or by saving the ``--distribution`` file (watched always, ``--watch`` or not) and deployed to
every POP by one deployer task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.control.admin.api import AdminContext, PopEndpoint, call_pops, make_admin_app, purge
from edge.control.admin.async_api import add_async_admin_routes
from edge.control.admin.dashboard import add_dashboard_routes
from edge.control.admin.prometheus import add_prometheus_route
from edge.control.admin.series import add_series_routes
from edge.control.aws_json.dispatch import JsonService, add_dispatcher
from edge.control.cloudfront_api.app import add_cloudfront_routes
from edge.control.cloudfront_api.distributions import DistributionService, watch_distribution_file
from edge.control.cloudfront_api.invalidations import InvalidationService
from edge.control.cloudfront_api.policies import PolicyService
from edge.control.events_api.api import EventsApi
from edge.control.events_api.scheduler import Scheduler, apply_declared
from edge.control.events_api.store import EventsStore
from edge.control.lambda_api.app import make_lambda_api_app
from edge.control.logs_api.api import LogsApi
from edge.control.sqs_api.api import SqsApi
from edge.control.stack.config import StackConfig
from edge.control.stack.declared import deploy_declared, watch_declared
from edge.control.stack.declared_cff import deploy_declared_cloudfront_functions, watch_declared_cloudfront_functions
from edge.control.stack.logview import log_view
from edge.control.stack.pop_node import make_service, metrics_of
from edge.control.stack.tiers import stack_tier_regions, tier_name
from edge.invocation import LambdaService
from edge.invocation.models import DEFAULT_REGION
from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.control")


def pop_endpoints(cfg: StackConfig) -> list[PopEndpoint]:
    return [PopEndpoint(p.name, p.region, f"http://{p.host}:{p.port}", cfg.admin_socket(p.name)) for p in cfg.pops]


def tier_endpoints(cfg: StackConfig) -> list[PopEndpoint]:
    """The tier nodes (regional edge caches / Origin Shield, ``tier_node``): invalidations, deployments, stats."""
    return [PopEndpoint(tier_name(r), r, "", cfg.admin_socket(tier_name(r)), tier=True) for r in stack_tier_regions(cfg)]


def association_pins(cfg: StackConfig) -> dict[str, list[tuple[str, str, str]]]:
    """Function name -> (event type, path pattern, qualifier) of each Lambda@Edge association naming it."""
    pins: dict[str, list[tuple[str, str, str]]] = {}
    for behavior in cfg.distribution.all_behaviors:
        for assoc in behavior.lambda_associations:
            pins.setdefault(assoc.function_name, []).append((assoc.event_type, behavior.path_pattern, assoc.qualifier))
    return pins


@dataclass
class CloudFrontServices:
    """The distribution-side services of the CloudFront API (one set per control process)."""

    distributions: DistributionService
    invalidations: InvalidationService
    policies: PolicyService


def open_cloudfront_services(cfg: StackConfig) -> CloudFrontServices:
    """The stack's distribution document, resolved before the POPs start (blocking: call it in a thread), and the
    invalidation and policy services over it."""
    policies = PolicyService(cfg.state_dir)
    distributions = DistributionService.open(cfg.state_dir, cfg.settings, cfg.distribution_path, policies.snapshot())
    policies.distributions = distributions
    distributions.policies = policies.snapshot
    invalidations = InvalidationService(cfg.state_dir, distributions)
    distributions.in_progress_invalidations = invalidations.in_progress
    return CloudFrontServices(distributions, invalidations, policies)


def report_cloudfront_associations(cfg: StackConfig, store: FunctionStore) -> None:
    """One line per CloudFront function association that does not resolve to a LIVE stage (its requests get 503
    FunctionExecutionError until it does; the POPs pick it up within a second of its publication)."""
    for behavior in cfg.distribution.all_behaviors:
        for assoc in behavior.function_associations:
            if store.live(assoc.function_name) is None:
                log.error("CloudFront function %s (%s of behavior %r) does not exist or was never published: its "
                          "requests get 503 FunctionExecutionError until you create and publish it (aws cloudfront "
                          "create-function + publish-function against this control port, `edgelab cff create "
                          "--publish`, or [[cloudfront_functions]] in the settings)", assoc.function_name,
                          assoc.event_type, behavior.path_pattern)


def aws_json_services(state_dir: Path, service: LambdaService, events: EventsApi | None = None) -> list[JsonService]:
    """The AWS JSON-protocol services of ``POST /`` (CloudWatch Logs, SQS, EventBridge when the scheduler runs)
    over ``service``'s state."""

    async def flush() -> None:
        if service.executor is not None:
            await service.executor.logs.flush()

    services = [LogsApi(state_dir, flush=flush).service(), SqsApi(service).json_service()]
    return services if events is None else [*services, events.service()]


def build_app(cfg: StackConfig, service: LambdaService, functions: FunctionStore | None = None,
              stores: KeyValueStoreService | None = None, events: EventsApi | None = None,
              cloudfront: CloudFrontServices | None = None) -> web.Application:
    app = make_lambda_api_app(service, cfg.settings.api_auth)  # [[api.auth]]: SigV4 required when keys are set
    add_dispatcher(app, aws_json_services(cfg.state_dir, service, events))  # POST / by X-Amz-Target
    if functions is not None and stores is not None and cloudfront is not None:  # /2020-05-31/..., /key-value-stores/
        add_cloudfront_routes(app, functions, stores, cloudfront.distributions, cloudfront.invalidations,
                              cloudfront.policies)
    elif functions is not None and stores is not None:
        add_cloudfront_routes(app, functions, stores)

    async def reset_local() -> dict[str, Any]:
        assert service.executor is not None
        await service.executor.reset()
        return {"environments_retired": True}

    ctx = AdminContext(pops=pop_endpoints(cfg), tiers=tier_endpoints(cfg), reset_local=reset_local,
                       local_metrics=lambda: metrics_of(service), read_logs=log_view(cfg, service, functions), async_metrics=service.async_metrics)
    admin = make_admin_app(ctx)
    if cloudfront is not None:  # the CloudFront API reaches the POPs through the admin API's fan-out
        cloudfront.distributions.push = lambda doc: call_pops(admin, "PUT", "/distribution", doc)
        cloudfront.invalidations.purge = lambda paths: purge(admin, paths)
    add_async_admin_routes(admin, service)  # /edgelab/v1/async and /edgelab/v1/queues...
    add_series_routes(admin)  # /edgelab/v1/series: the dashboard's time series, sampled every second
    app.add_subapp("/edgelab/v1", admin)
    add_prometheus_route(app, admin)  # GET /metrics (Prometheus text exposition)
    add_dashboard_routes(app)
    return app


async def run_control(cfg: StackConfig, stop: asyncio.Event, *, watch: bool = False) -> None:
    cloudfront = await asyncio.to_thread(open_cloudfront_services, cfg)  # before the POPs start (they read it)
    distributions = cloudfront.distributions
    cfg = replace(cfg, distribution=distributions.distribution)
    service = make_service(cfg, DEFAULT_REGION)
    await service.start()
    await service.start_async_delivery(cfg.settings.async_)  # only the control process delivers async events
    runner: web.AppRunner | None = None
    tasks = TaskOwner("edgelab-control")  # the declared-functions watchers
    cff_db = CffDatabase(cfg.state_dir)
    functions = FunctionStore(cff_db, in_use=lambda name: any(  # the configuration in service, as it changes
        a.function_name == name for b in distributions.distribution.all_behaviors for a in b.function_associations))
    stores = KeyValueStoreService(cff_db)
    store = EventsStore(cfg.state_dir / "events.db")
    scheduler = Scheduler(store, lambda name, qualifier, payload: service.invoke(
        name, qualifier, payload, invocation_type="Event"), region=DEFAULT_REGION)
    try:
        versions = await deploy_declared(service, cfg.settings.functions)
        if versions:
            log.info("declared functions: %s", ", ".join(f"{k}:{v}" for k, v in versions.items()))
        await deploy_declared_cloudfront_functions(functions, stores, cfg.settings.cloudfront_functions)
        await asyncio.to_thread(report_cloudfront_associations, cfg, functions)
        declared = await asyncio.to_thread(apply_declared, store, cfg.settings.schedules, DEFAULT_REGION,
                                           scheduler.clock())
        if declared:
            log.info("declared schedules: %s", ", ".join(declared))
        await scheduler.start()  # after the declared functions exist: a catch-up run can reach them
        events = EventsApi(store, scheduler, DEFAULT_REGION)
        runner = web.AppRunner(build_app(cfg, service, functions, stores, events, cloudfront), access_log=None,
                               handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", cfg.api_port).start()
        log.info("Lambda API and admin on http://127.0.0.1:%d", cfg.api_port)
        tasks.spawn(distributions.deploy_forever(), name="deploy-distribution")
        tasks.spawn(watch_distribution_file(distributions, stop), name="watch-distribution")
        if watch:
            tasks.spawn(watch_declared(service, cfg.settings.functions, stop, pins=association_pins(cfg)),
                        name="watch-functions")
            tasks.spawn(watch_declared_cloudfront_functions(functions, stores, cfg.settings.cloudfront_functions,
                                                            stop), name="watch-cloudfront-functions")
        await stop.wait()
    finally:
        await tasks.aclose()
        if runner is not None:
            await runner.cleanup()
        await scheduler.close()
        await asyncio.to_thread(store.close)
        await service.close()
        cff_db.close()
