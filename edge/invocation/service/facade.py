"""LambdaService: the per-process facade over the registry (SQLite, code store), the async event queue and the
executor, assembled from components with explicit dependencies.

One instance per process (control process: home region; each POP: its own region, same state dir). It builds

- ``registry``  :class:`~edge.invocation.registry.core.Registry` (SQLite records, code store, resolution cache);
- ``sync``      :class:`~.executor_sync.ExecutorSync`: the change-feed poll task that drops stale caches and
                keeps the executor's reserved/provisioned concurrency and retired environments in line with the
                registry (registry, executor);
- ``invoke_path`` :class:`~.invoke_path.InvokePath`: validation, resolution and options of synchronous
                invocations, prepared targets for hot callers (:meth:`prepare`, :class:`PreparedInvoke`: the
                Lambda@Edge trigger runner), and the target that queued events run through (registry, executor);
- ``events``    :class:`~.async_ops.AsyncOps`: accepting events durably, delivery (control process only),
                event-invoke configs, local queues, event source mappings (registry, invoke path);
- ``control``   :class:`~.control_ops.ControlOps`: every control-plane operation as an ``async`` method
                (SQLite and file work via ``asyncio.to_thread``) (registry, sync, the events' dead-letter check);
- ``resources`` :class:`~.resource_ops.ResourceOps`: resource-based policies, tags, function URL configs (registry);

and forwards their public methods under the names the REST layer (``edge.control.lambda_api``) and the POPs
call. Operations take AWS-shaped parameters (the member names boto3 uses) and return registry records; the
REST layer turns those into AWS JSON. Bad requests raise :class:`~edge.invocation.errors.LambdaError`
subclasses; throttles and function errors are :class:`InvocationResult` values.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from edge.invocation.events.config import EventInvokeConfigOps
from edge.invocation.events.mappings import EsmOps
from edge.invocation.events.model import AsyncSettings
from edge.invocation.events.queues import QueueOps
from edge.invocation.events.store import AsyncStore
from edge.invocation.models import DEFAULT_REGION, InvocationResult
from edge.invocation.registry.concurrency import DEFAULT_ACCOUNT_LIMIT
from edge.invocation.registry.core import Registry
from edge.invocation.service.async_ops import AsyncOps
from edge.invocation.service.control_ops import ControlOps
from edge.invocation.service.executor_sync import ExecutorLike, ExecutorSync
from edge.invocation.service.invoke_path import (
    CLIENT_CONTEXT_LIMIT,
    InvokePath,
    PreparedInvoke,
    check_invocation_type,
    request_id_source,
)
from edge.invocation.service.resource_ops import ResourceOps

__all__ = ["CLIENT_CONTEXT_LIMIT", "LambdaService", "PreparedInvoke", "request_id_source"]

P = ParamSpec("P")
R = TypeVar("R")


def _forward(component: str, method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[LambdaService, P], R]:
    """A facade method calling ``method`` on the component held in attribute ``component`` (same name,
    signature and docstring)."""
    name = method.__name__

    @functools.wraps(method)
    def forward(self: LambdaService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return getattr(getattr(self, component), name)(*args, **kwargs)

    return forward


class LambdaService:
    """Facade: ``await start()`` before use, ``await close()`` at shutdown (cancels and awaits its tasks).

    Asynchronous invocations (``InvocationType=Event``) are accepted by every instance (stored durably before
    the call returns); only the instance on which :meth:`start_async_delivery` was called (the control
    process) delivers them."""

    def __init__(
        self,
        state_dir: Path,
        *,
        region: str = DEFAULT_REGION,
        home_region: str = DEFAULT_REGION,
        executor: ExecutorLike | None = None,
        rng: random.Random | None = None,
        account_concurrency: int | None = None,
        poll_interval_s: float = 0.1,
        async_settings: AsyncSettings | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.region = region
        self.executor = executor
        self.account_limit = account_concurrency or DEFAULT_ACCOUNT_LIMIT
        self.registry = Registry(self.state_dir, home_region=home_region, refresh_interval_s=poll_interval_s)
        self.sync = ExecutorSync(self.registry, executor, self.account_limit, poll_interval_s, region)
        self.invoke_path = InvokePath(self.registry, executor, region=region, rng=rng or random.Random(),
                                      # own generator: never shifts alias draws
                                      new_request_id=request_id_source(random.Random()))
        self.events = AsyncOps(self.registry, self.invoke_path, async_settings or AsyncSettings())
        self.control = ControlOps(self.registry, self.sync, self.account_limit, self.events.check_dead_letter_target)
        self.resources = ResourceOps(self.registry)
        self._started = False
        self._closed = False

    # the async side's store, settings and tables (admin routes, tests)
    @property
    def async_store(self) -> AsyncStore:
        return self.events.store

    @property
    def async_settings(self) -> AsyncSettings:
        return self.events.settings

    @property
    def queues(self) -> QueueOps:
        return self.events.queues

    @property
    def invoke_configs(self) -> EventInvokeConfigOps:
        return self.events.invoke_configs

    @property
    def mappings(self) -> EsmOps:
        return self.events.mappings

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the executor (if any), apply concurrency settings, start the change-feed poll task and the
        accepting side of async invocation."""
        if self._started:
            return
        self._started = True
        if self.executor is not None:
            await self.executor.start()
        await self.sync.start()
        self.events.start()

    async def close(self) -> None:
        """Stop delivery and the poll task, close the executor, close SQLite. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.events.close()
        await self.sync.close()
        if self.executor is not None and self._started:
            await self.executor.close()
        await asyncio.to_thread(self.registry.close)
        await asyncio.to_thread(self.events.store.close)

    async def __aenter__(self) -> LambdaService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- invoke ------------------------------------------------------------------------------------------

    async def invoke(
        self,
        function_name: str,
        qualifier: str | None,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        log_type: str | None = None,
        client_context_b64: str | None = None,
        region: str | None = None,
        request_id: str | None = None,
        display_name: str | None = None,
        log_group: str | None = None,
        trace_id: str | None = None,
    ) -> InvocationResult:
        """Invoke synchronously, DryRun, or asynchronously (Event: stored durably, then an OK result with an empty
        payload; the REST layer answers 202). Raises LambdaError for bad requests; throttles/function errors are
        InvocationResult values. An empty payload is sent to the function as ``{}`` (as AWS does).
        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html"""
        check_invocation_type(invocation_type, log_type)
        if invocation_type == "Event":
            return await self.events.invoke_event(function_name, qualifier, payload, request_id=request_id)
        return await self.invoke_path.invoke(
            function_name, qualifier, payload, dry_run=invocation_type == "DryRun", log_type=log_type,
            client_context_b64=client_context_b64, region=region, request_id=request_id,
            display_name=display_name, log_group=log_group, trace_id=trace_id,
        )  # fmt: skip

    prepare = _forward("invoke_path", InvokePath.prepare)
    snapshot_of = _forward("invoke_path", InvokePath.snapshot_of)
    invoke_event_now = _forward("invoke_path", InvokePath.invoke_event_now)

    def new_request_id(self) -> str:
        """A new request id (UUID4 form)."""
        return self.invoke_path.new_request_id()

    def provisioned_status(self, function_name: str, version: str) -> tuple[int, str, str | None]:
        """(allocated, status, reason) of the provisioned environments of one version in this process."""
        return self.sync.provisioned_status(function_name, version)

    # -- asynchronous invocation (AsyncOps) --------------------------------------------------------------

    start_async_delivery = _forward("events", AsyncOps.start_async_delivery)
    invoke_event = _forward("events", AsyncOps.invoke_event)
    invoke_async = _forward("events", AsyncOps.invoke_async)
    put_event_invoke_config = _forward("events", AsyncOps.put_event_invoke_config)
    get_event_invoke_config = _forward("events", AsyncOps.get_event_invoke_config)
    delete_event_invoke_config = _forward("events", AsyncOps.delete_event_invoke_config)
    list_event_invoke_configs = _forward("events", AsyncOps.list_event_invoke_configs)
    check_dead_letter_target = _forward("events", AsyncOps.check_dead_letter_target)
    create_queue = _forward("events", AsyncOps.create_queue)
    list_queues = _forward("events", AsyncOps.list_queues)
    get_queue = _forward("events", AsyncOps.get_queue)
    delete_queue = _forward("events", AsyncOps.delete_queue)
    purge_queue = _forward("events", AsyncOps.purge_queue)
    send_queue_message = _forward("events", AsyncOps.send_queue_message)
    read_queue = _forward("events", AsyncOps.read_queue)
    create_event_source_mapping = _forward("events", AsyncOps.create_event_source_mapping)
    get_event_source_mapping = _forward("events", AsyncOps.get_event_source_mapping)
    update_event_source_mapping = _forward("events", AsyncOps.update_event_source_mapping)
    delete_event_source_mapping = _forward("events", AsyncOps.delete_event_source_mapping)
    list_event_source_mappings = _forward("events", AsyncOps.list_event_source_mappings)
    async_metrics = _forward("events", AsyncOps.async_metrics)

    # -- control plane (ControlOps) ----------------------------------------------------------------------

    create_function = _forward("control", ControlOps.create_function)
    get_function = _forward("control", ControlOps.get_function)
    get_function_configuration = _forward("control", ControlOps.get_function_configuration)
    list_functions = _forward("control", ControlOps.list_functions)
    update_function_code = _forward("control", ControlOps.update_function_code)
    update_function_configuration = _forward("control", ControlOps.update_function_configuration)
    delete_function = _forward("control", ControlOps.delete_function)
    publish_version = _forward("control", ControlOps.publish_version)
    list_versions = _forward("control", ControlOps.list_versions)
    create_alias = _forward("control", ControlOps.create_alias)
    get_alias = _forward("control", ControlOps.get_alias)
    update_alias = _forward("control", ControlOps.update_alias)
    list_aliases = _forward("control", ControlOps.list_aliases)
    delete_alias = _forward("control", ControlOps.delete_alias)
    put_function_concurrency = _forward("control", ControlOps.put_function_concurrency)
    get_function_concurrency = _forward("control", ControlOps.get_function_concurrency)
    delete_function_concurrency = _forward("control", ControlOps.delete_function_concurrency)
    put_provisioned_concurrency = _forward("control", ControlOps.put_provisioned_concurrency)
    get_provisioned_concurrency = _forward("control", ControlOps.get_provisioned_concurrency)
    list_provisioned_concurrency = _forward("control", ControlOps.list_provisioned_concurrency)
    delete_provisioned_concurrency = _forward("control", ControlOps.delete_provisioned_concurrency)
    get_account_settings = _forward("control", ControlOps.get_account_settings)
    publish_layer_version = _forward("control", ControlOps.publish_layer_version)
    get_layer_version = _forward("control", ControlOps.get_layer_version)
    get_layer_version_by_arn = _forward("control", ControlOps.get_layer_version_by_arn)
    list_layer_versions = _forward("control", ControlOps.list_layer_versions)
    list_layers = _forward("control", ControlOps.list_layers)
    delete_layer_version = _forward("control", ControlOps.delete_layer_version)
    read_code = _forward("control", ControlOps.read_code)

    # -- policies, tags, function URLs (ResourceOps) -----------------------------------------------------

    add_permission = _forward("resources", ResourceOps.add_permission)
    remove_permission = _forward("resources", ResourceOps.remove_permission)
    get_policy = _forward("resources", ResourceOps.get_policy)
    tag_resource = _forward("resources", ResourceOps.tag_resource)
    untag_resource = _forward("resources", ResourceOps.untag_resource)
    list_tags = _forward("resources", ResourceOps.list_tags)
    create_function_url_config = _forward("resources", ResourceOps.create_function_url_config)
    update_function_url_config = _forward("resources", ResourceOps.update_function_url_config)
    get_function_url_config = _forward("resources", ResourceOps.get_function_url_config)
    delete_function_url_config = _forward("resources", ResourceOps.delete_function_url_config)
    list_function_url_configs = _forward("resources", ResourceOps.list_function_url_configs)
    function_url_by_id = _forward("resources", ResourceOps.function_url_by_id)
