"""The control process: Lambda REST API (with function URLs), CloudFront API (CloudFront Functions and
KeyValueStore, ``edge.control.cloudfront_api``), the AWS JSON APIs of ``POST /`` (CloudWatch Logs, SQS,
EventBridge), Prometheus ``/metrics``, admin API + dashboard on the API port, with the us-east-1 invocation core
(API ``Invoke`` calls run here) and the scheduler of scheduled rules. It deploys the functions declared in the
settings (Lambda and CloudFront) before it reports ready, so the POPs (started after it) find their associations
resolvable, reports the CloudFront function associations that do not resolve (one line each, with the next step),
and optionally watches the declarations.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.functions import FunctionStore
from edge.cdn.cloudfront_functions.kvs import KeyValueStoreService
from edge.cdn.lambda_edge.rules import EDGE_REGION
from edge.control.admin.api import AdminContext, PopEndpoint, make_admin_app
from edge.control.admin.async_api import add_async_admin_routes
from edge.control.admin.dashboard import add_dashboard_routes
from edge.control.admin.prometheus import add_prometheus_route
from edge.control.aws_json.dispatch import JsonService, add_dispatcher
from edge.control.cloudfront_api.app import add_cloudfront_routes
from edge.control.events_api.api import EventsApi
from edge.control.events_api.scheduler import Scheduler, apply_declared
from edge.control.events_api.store import EventsStore
from edge.control.lambda_api.app import make_lambda_api_app
from edge.control.logs_api.api import LogsApi
from edge.control.sqs_api.api import SqsApi
from edge.control.stack.config import StackConfig
from edge.control.stack.declared import deploy_declared, watch_declared
from edge.control.stack.declared_cff import deploy_declared_cloudfront_functions, watch_declared_cloudfront_functions
from edge.control.stack.pop_node import make_service, metrics_of
from edge.invocation import LambdaService, LogStore
from edge.invocation.models import DEFAULT_REGION
from edge.tasks import TaskOwner

log = logging.getLogger("edgelab.control")


def pop_endpoints(cfg: StackConfig) -> list[PopEndpoint]:
    return [PopEndpoint(p.name, p.region, f"http://{p.host}:{p.port}", cfg.admin_socket(p.name)) for p in cfg.pops]


def log_reader(cfg: StackConfig, service: LambdaService) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    """Read a function's events across the groups it logs to, in every region: ``/aws/lambda/NAME`` (API
    invokes, us-east-1) and ``/aws/lambda/us-east-1.NAME`` (Lambda@Edge replicas, in each POP's region), merged by
    time and labelled with their region (one log view, unlike CloudWatch). A CloudFront function's lines are in
    ``/aws/cloudfront/function/NAME`` (us-east-1, written by every POP)."""

    def read_all(function: str, request_id: str | None, region: str | None) -> list[dict[str, Any]]:
        root = cfg.state_dir / "logs"
        regions = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        events: list[dict[str, Any]] = []
        for rdir in regions:
            if region and rdir.name != region:
                continue
            store = LogStore(rdir)
            for group in (f"/aws/lambda/{function}", f"/aws/lambda/{EDGE_REGION}.{function}",
                          f"/aws/cloudfront/function/{function}"):
                events.extend({**ev, "group": group, "region": rdir.name}
                              for ev in store.read(group, request_id=request_id))
        events.sort(key=lambda e: e["timestamp"])
        return events

    async def read(*, function: str, request_id: str | None, tail: int, region: str | None) -> list[dict[str, Any]]:
        assert service.executor is not None
        await service.executor.logs.flush()  # this process's pending lines; the POPs flush every 50 ms
        events = await asyncio.to_thread(read_all, function, request_id, region)
        return events[-tail:] if tail > 0 else events

    return read


def cloudfront_function_names(cfg: StackConfig) -> frozenset[str]:
    """The CloudFront functions the distribution associates (by name)."""
    return frozenset(a.function_name for b in cfg.distribution.all_behaviors for a in b.function_associations)


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
              stores: KeyValueStoreService | None = None, events: EventsApi | None = None) -> web.Application:
    app = make_lambda_api_app(service)
    add_dispatcher(app, aws_json_services(cfg.state_dir, service, events))  # POST / by X-Amz-Target
    if functions is not None and stores is not None:
        add_cloudfront_routes(app, functions, stores)  # /2020-05-31/... and /key-value-stores/...

    async def reset_local() -> dict[str, Any]:
        assert service.executor is not None
        await service.executor.reset()
        return {"environments_retired": True}

    ctx = AdminContext(pops=pop_endpoints(cfg), reset_local=reset_local, local_metrics=lambda: metrics_of(service),
                       read_logs=log_reader(cfg, service), async_metrics=service.async_metrics)
    admin = make_admin_app(ctx)
    add_async_admin_routes(admin, service)  # /edgelab/v1/async and /edgelab/v1/queues...
    app.add_subapp("/edgelab/v1", admin)
    add_prometheus_route(app, admin)  # GET /metrics (Prometheus text exposition)
    add_dashboard_routes(app)
    return app


async def run_control(cfg: StackConfig, stop: asyncio.Event, *, watch: bool = False) -> None:
    service = make_service(cfg, DEFAULT_REGION)
    await service.start()
    await service.start_async_delivery(cfg.settings.async_)  # only the control process delivers async events
    runner: web.AppRunner | None = None
    tasks = TaskOwner("edgelab-control")  # the declared-functions watchers
    cff_db = CffDatabase(cfg.state_dir)
    associated = cloudfront_function_names(cfg)
    functions = FunctionStore(cff_db, in_use=associated.__contains__)
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
        runner = web.AppRunner(build_app(cfg, service, functions, stores, events), access_log=None,
                               handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", cfg.api_port).start()
        log.info("Lambda API and admin on http://127.0.0.1:%d", cfg.api_port)
        if watch:
            tasks.spawn(watch_declared(service, cfg.settings.functions, stop), name="watch-functions")
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
