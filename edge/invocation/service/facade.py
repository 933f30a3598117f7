"""LambdaService: the per-process facade over the registry (SQLite, code store) and the executor.

One instance per process (control process: home region; each POP: its own region, same state dir). It

- exposes every control-plane operation as an ``async`` method (SQLite and file work via ``asyncio.to_thread``);
- validates and routes invocations: payload checks, name/qualifier/alias resolution (weighted, injected rng),
  then ``executor.invoke``; throttles and function errors come back as :class:`InvocationResult` values,
  bad requests raise :class:`~edge.invocation.errors.LambdaError` subclasses;
- offers a prepared invocation target for hot callers that invoke the same function again and again with
  payloads they encoded themselves (:meth:`LambdaService.prepare`, :class:`PreparedInvoke`: the Lambda@Edge
  trigger runner): resolution, ARN and options are computed once per registry change, not per call;
- owns the change-feed poll task (see :mod:`.executor_sync`) that drops stale caches and keeps the executor's
  reserved/provisioned concurrency and retired environments in line with the registry.

Operations take AWS-shaped parameters (the member names boto3 uses) and return registry records; the REST
layer (``edge.control.lambda_api.app``) turns those into AWS JSON.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from edge.invocation.errors import InvalidParameterValueException, InvalidRequestContentException, InvalidRuntimeException, RequestTooLargeException, ServiceException, function_not_found, validation_error
from edge.invocation.events.model import AsyncSettings
from edge.invocation.models import DEFAULT_REGION, SYNC_PAYLOAD_LIMIT, FunctionSpec, InvocationResult, InvokeOptions, Outcome, function_arn
from edge.invocation.registry.core import Registry
from edge.invocation.registry.cache import FunctionSnapshot, pick_version
from edge.invocation.registry.concurrency import DEFAULT_ACCOUNT_LIMIT
from edge.invocation.registry.config import is_runnable_runtime
from edge.invocation.registry.names import FunctionRef
from edge.invocation.service.async_ops import AsyncServiceOps
from edge.invocation.service.control_ops import ServiceOps
from edge.invocation.service.executor_sync import ExecutorSync

if TYPE_CHECKING:
    from edge.invocation.execution.executor import Executor

__all__ = ["LambdaService", "PreparedInvoke", "CLIENT_CONTEXT_LIMIT", "request_id_source"]

CLIENT_CONTEXT_LIMIT = 3583
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_ID_BATCH = 4096
_MASK48 = (1 << 48) - 1


def request_id_source(rng: random.Random):  # type: ignore[no-untyped-def]
    """A function returning a new UUID4-format string per call, drawn from ``rng``.

    Invocation request ids only need to be unique, not unpredictable, and they are made on the trigger hot path
    (formatting a random 128-bit UUID costs ~9k interpreter instructions; this ~2k). Each batch of 4,096 ids
    shares a random 74-bit prefix (``xxxxxxxx-xxxx-4xxx-[89ab]xxx-``, version and variant as RFC 4122); the last
    12 hex digits walk a random odd step from a random start modulo 2**48, so ids within a batch never repeat,
    and batches differ by their prefix (a collision needs two equal 74-bit draws)."""
    bits = rng.getrandbits
    left = value = step = 0
    prefix = ""

    def new_id() -> str:
        nonlocal left, value, step, prefix
        if not left:  # a new batch
            r = "%020x" % bits(80)
            prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{'89ab'[bits(2)]}{r[17:20]}-%012x"
            left, value, step = _ID_BATCH, bits(48), bits(48) | 1
        left -= 1
        value = (value + step) & _MASK48
        return prefix % value

    return new_id


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
        self.new_request_id = request_id_source(random.Random())  # own generator: never shifts alias draws
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
        request_id = request_id or self.new_request_id()
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
        spec = self._runnable(snap.specs[version])
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

    def _runnable(self, spec: FunctionSpec) -> FunctionSpec:
        """``spec`` if this process can execute it, else the AWS error an invoke gets."""
        if not is_runnable_runtime(spec.runtime):
            raise InvalidRuntimeException(
                f"The runtime parameter of {spec.runtime} is stored but cannot be executed: "
                "this edgelab build runs Python (python3.x) functions only."
            )
        if self.executor is None:
            raise ServiceException("This process has no executor: invocations are not available here.")
        return spec

    def prepare(self, function_name: str, qualifier: str | None, *, region: str | None = None,
                display_name: str | None = None, log_group: str | None = None) -> PreparedInvoke:
        """A reusable synchronous invocation target for ``function_name:qualifier`` with fixed options (see
        :class:`PreparedInvoke`). Raises for a malformed name; an unknown function only fails when invoked."""
        return PreparedInvoke(self, self.registry.parse(function_name, qualifier), region=region or self.region,
                              display_name=display_name, log_group=log_group)

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



class PreparedInvoke:
    """``LambdaService.prepare(name, qualifier, region=, display_name=, log_group=)``: synchronous invocations of
    one function qualifier with fixed options, for a caller that invokes it on a hot path (one per Lambda@Edge
    association in a POP).

    The resolution (snapshot, version, spec, reserved concurrency, invoked ARN, log group) is computed on first
    use and again whenever the registry cache's generation moves, i.e. after any registry change seen by this
    process (its own commits at once, other processes' through the change feed, as for ``invoke``). A weighted
    alias still draws its version per call. Errors are the ones ``LambdaService.invoke`` raises.

    Trusted-caller contract: ``invoke``'s payload is a JSON document the caller encoded itself (e.g. with
    ``orjson.dumps``): it is not parsed again, and an empty payload is not turned into ``{}``. Only the
    6 MB request limit is checked. Use ``LambdaService.invoke`` for payloads from outside.
    """

    __slots__ = ("_service", "_cache", "_ref", "_region", "_display_name", "_log_group", "_arn", "_generation",
                 "_snap", "_spec", "_options_group", "_reserved", "_run_spec")

    def __init__(self, service: LambdaService, ref: FunctionRef, *, region: str, display_name: str | None,
                 log_group: str | None) -> None:
        self._service = service
        self._cache = service.registry.cache
        self._ref = ref
        self._region = region
        self._display_name = display_name
        self._log_group = log_group
        self._arn = function_arn(ref.name, service.registry.region, ref.qualifier)
        self._generation = -1  # nothing resolved yet
        self._snap: FunctionSnapshot | None = None
        self._spec: FunctionSpec | None = None  # None while resolved to a weighted alias (drawn per call)
        self._options_group: str | None = None
        self._reserved: int | None = None
        self._run_spec = service.executor.invoke if service.executor is not None else None

    def invoke(self, payload: bytes, request_id: str | None = None) -> Awaitable[InvocationResult]:
        """Invoke with ``payload`` (see the class contract); ``request_id`` defaults to a new UUID.

        Returns an awaitable (the executor's coroutine itself when the resolution is current: no extra frame).
        """
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            raise RequestTooLargeException(
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation"
            )
        spec = self._spec
        if spec is None or self._generation != self._cache.generation:
            return self._invoke_resolving(payload, request_id)
        options = InvokeOptions(request_id or self._service.new_request_id(), self._arn, self._region,
                                self._display_name, self._options_group)
        return self._run_spec(spec, payload, options,  # type: ignore[misc]  # _runnable checked the executor
                              reserved_concurrency=self._reserved)

    async def _invoke_resolving(self, payload: bytes, request_id: str | None) -> InvocationResult:
        """The slow path: (re)resolve after a registry change, or draw a weighted alias's version."""
        service = self._service
        if self._snap is None or self._generation != service.registry.cache.generation:
            self._spec = self._snap = None
            generation = service.registry.cache.generation  # read first: a change during the load re-resolves
            snap = await service._snapshot(self._ref)
            version = pick_version(snap, self._ref.qualifier, service.rng, service.registry.region)
            alias = snap.aliases.get(self._ref.qualifier or "$LATEST")
            routed = alias is not None and bool(alias[1])
            self._snap, self._generation = snap, generation
            self._reserved = snap.reserved
            self._options_group = self._log_group or snap.configs[version].log_group
            if not routed:
                self._spec = service._runnable(snap.specs[version])
        else:
            snap = self._snap
            version = pick_version(snap, self._ref.qualifier, service.rng, service.registry.region)
        return await service._run(self._ref, snap, version, payload, request_id or service.new_request_id(),
                                  region=self._region, display_name=self._display_name, log_group=self._log_group)
