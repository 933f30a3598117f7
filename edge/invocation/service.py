"""LambdaService: the per-process facade over the registry (SQLite, code store) and the executor.

One instance per process (control process: home region; each POP: its own region, same state dir). It

- exposes every control-plane operation as an ``async`` method (SQLite and file work via ``asyncio.to_thread``);
- validates and routes invocations: payload checks, name/qualifier/alias resolution (weighted, injected rng),
  then ``executor.invoke``; throttles and function errors come back as :class:`InvocationResult` values,
  bad requests raise :class:`~edge.invocation.errors.LambdaError` subclasses;
- owns the change-feed poll task (see :mod:`.service_sync`) that drops stale caches and keeps the executor's
  reserved/provisioned concurrency and retired environments in line with the registry.

Operations take AWS-shaped parameters (the member names boto3 uses) and return registry records; the REST
layer (``edge.control.lambda_api``) turns those into AWS JSON.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from .errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    InvalidRuntimeException,
    RequestTooLargeException,
    ServiceException,
    function_not_found,
    validation_error,
)
from .async_model import AsyncSettings
from .models import DEFAULT_REGION, SYNC_PAYLOAD_LIMIT, InvocationResult, InvokeOptions, Outcome, function_arn
from .registry import Registry
from .registry_cache import FunctionSnapshot, pick_version
from .registry_concurrency import DEFAULT_ACCOUNT_LIMIT
from .registry_config import is_runnable_runtime
from .registry_names import FunctionRef
from .service_async import AsyncServiceOps
from .service_ops import ServiceOps
from .service_sync import ExecutorSync

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["LambdaService", "CLIENT_CONTEXT_LIMIT"]

CLIENT_CONTEXT_LIMIT = 3583
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


class LambdaService(AsyncServiceOps, ServiceOps):
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
        executor: Executor | None = None,
        rng: random.Random | None = None,
        account_concurrency: int | None = None,
        poll_interval_s: float = 0.1,
        async_settings: AsyncSettings | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.region = region
        self.executor = executor
        self.rng = rng or random.Random()
        self.registry = Registry(self.state_dir, home_region=home_region, refresh_interval_s=poll_interval_s)
        self.account_limit = account_concurrency or DEFAULT_ACCOUNT_LIMIT
        self._sync = ExecutorSync(self.registry, executor, self.account_limit, poll_interval_s, region)
        self._init_async(async_settings or AsyncSettings())
        self._started = False
        self._closed = False

    async def start(self) -> None:
        """Start the executor (if any), apply concurrency settings, start the change-feed poll task."""
        if self._started:
            return
        self._started = True
        if self.executor is not None:
            await self.executor.start()
        await self._sync.start()
        self._start_async()

    async def close(self) -> None:
        """Stop the poll task, close the executor, close SQLite. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._close_async()
        await self._sync.close()
        if self.executor is not None and self._started:
            await self.executor.close()
        await asyncio.to_thread(self.registry.close)
        await asyncio.to_thread(self.async_store.close)

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
    ) -> InvocationResult:
        """Invoke synchronously, DryRun, or asynchronously (Event: stored durably, then an OK result with an empty
        payload; the REST layer answers 202). Raises LambdaError for bad requests; throttles/function errors are
        InvocationResult values. An empty payload is sent to the function as ``{}`` (as AWS does)."""
        self._check_invocation_type(invocation_type, log_type)
        if invocation_type == "Event":
            return await self.invoke_event(function_name, qualifier, payload, request_id=request_id)
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeException(
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation"
            )
        ref = self.registry.parse(function_name, qualifier)
        snap = await self._snapshot(ref)
        version = pick_version(snap, ref.qualifier, self.rng, self.registry.region)
        body = self._check_payload(payload)
        client_context = self._decode_client_context(client_context_b64)
        request_id = request_id or str(uuid.uuid4())
        if invocation_type == "DryRun":
            return InvocationResult(Outcome.OK, b"", request_id, version)
        return await self._run(
            ref, snap, version, body, request_id, region=region, display_name=display_name, log_group=log_group,
            client_context=client_context, want_log_tail=log_type == "Tail",
        )

    async def _run(
        self, ref: FunctionRef, snap: FunctionSnapshot, version: str, body: bytes, request_id: str, *,
        region: str | None = None, display_name: str | None = None, log_group: str | None = None,
        client_context: str | None = None, want_log_tail: bool = False,
    ) -> InvocationResult:
        spec = snap.specs[version]
        if not is_runnable_runtime(spec.runtime):
            raise InvalidRuntimeException(
                f"The runtime parameter of {spec.runtime} is stored but cannot be executed: "
                "this edgelab build runs Python (python3.x) functions only."
            )
        if self.executor is None:
            raise ServiceException("This process has no executor: invocations are not available here.")
        options = InvokeOptions(
            request_id=request_id,
            invoked_arn=function_arn(ref.name, self.registry.region, ref.qualifier),
            region=region or self.region,
            display_name=display_name,
            log_group=log_group or snap.configs[version].log_group,
            client_context=client_context,
            want_log_tail=want_log_tail,
        )
        return await self.executor.invoke(spec, body, options, reserved_concurrency=snap.reserved)

    async def snapshot_of(self, function_name: str) -> FunctionSnapshot:
        """The cached snapshot of a function (404 ResourceNotFoundException when it does not exist)."""
        return await self._snapshot(self.registry.parse(function_name))

    async def invoke_event_now(
        self, function_name: str, qualifier: str | None, payload: bytes, request_id: str, snap: FunctionSnapshot
    ) -> InvocationResult:
        """Run one queued event (the async deliverer): weighted alias routing per attempt, as AWS."""
        ref = self.registry.parse(function_name, qualifier)
        version = pick_version(snap, ref.qualifier, self.rng, self.registry.region)
        return await self._run(ref, snap, version, payload if payload.strip() else b"{}", request_id)

    async def _snapshot(self, ref: FunctionRef) -> FunctionSnapshot:
        """In-memory on the hot path; one threaded SQLite load per function after each change."""
        found = self.registry.cache.cached(ref.name)
        if isinstance(found, FunctionSnapshot):
            return found
        snap = found if found is None else await asyncio.to_thread(self.registry.cache.snapshot, ref.name)
        if snap is None:
            raise function_not_found(ref.name, self.registry.region, ref.qualifier)
        return snap

    @staticmethod
    def _check_invocation_type(invocation_type: str, log_type: str | None) -> None:
        if invocation_type not in INVOCATION_TYPES:
            raise validation_error(
                invocation_type, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )
        if log_type not in (None, "None", "Tail"):
            raise validation_error(log_type, "logType", "Member must satisfy enum value set: [None, Tail]")

    @staticmethod
    def _check_payload(payload: bytes) -> bytes:
        if not payload.strip():
            return b"{}"
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: Could not parse payload into json: {exc}"
            ) from None
        return payload

    @staticmethod
    def _decode_client_context(value: str | None) -> str | None:
        if not value:
            return None
        if len(value) > CLIENT_CONTEXT_LIMIT:
            raise InvalidParameterValueException(
                f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes (base64-encoded)"
            )
        try:
            text = base64.b64decode(value, validate=True).decode("utf-8")
            if not isinstance(orjson.loads(text), dict):
                raise ValueError("not an object")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidRequestContentException("Client context must be a valid Base64-encoded JSON object.") from None
        return text

    # -- concurrency read-backs needing the executor ------------------------------------------------------

    def provisioned_status(self, function_name: str, version: str) -> tuple[int, str, str | None]:
        """(allocated, status, reason) of the provisioned environments of one version in this process."""
        return self._sync.provisioned_status(function_name, version)

