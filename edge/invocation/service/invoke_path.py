"""The synchronous invoke path of the service: validation, resolution, options, then ``executor.invoke``.

:class:`InvokePath` depends on the registry (name parsing, the in-memory resolution cache), the executor (None
in a process that only serves the control plane), the executing region, the alias-routing rng and a request id
source. It serves

- ``Invoke`` with ``RequestResponse`` / ``DryRun`` (:meth:`InvokePath.invoke`): payload checks (6 MB, JSON),
  client context, name/qualifier/alias resolution (weighted aliases drawn with the injected rng), then the
  executor; throttles and function errors come back as :class:`InvocationResult` values, bad requests raise
  :class:`~edge.invocation.errors.LambdaError` subclasses (AWS's error for each:
  https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html);
- queued events (:meth:`InvokePath.invoke_event_now`: it is the
  :class:`~edge.invocation.events.target.EventTarget` of async delivery and event source mappings);
- prepared targets for hot callers (:meth:`InvokePath.prepare`, :class:`PreparedInvoke`: the Lambda@Edge
  trigger runner), whose resolution, ARN and options are computed once per registry change, not per call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import secrets
import time
from collections.abc import Awaitable, Callable

import orjson

from edge.invocation.errors import (
    InvalidParameterValueException,
    InvalidRequestContentException,
    InvalidRuntimeException,
    RequestTooLargeException,
    ResourceConflictException,
    ServiceException,
    function_not_found,
    validation_error,
)
from edge.invocation.models import (
    ACTIVE,
    SYNC_PAYLOAD_LIMIT,
    FunctionSpec,
    InvocationResult,
    InvokeOptions,
    Outcome,
    function_arn,
)
from edge.invocation.registry.cache import FunctionSnapshot, pick_version
from edge.invocation.registry.config import is_runnable_runtime
from edge.invocation.registry.core import Registry
from edge.invocation.registry.names import FunctionRef
from edge.invocation.service.executor_sync import ExecutorLike

__all__ = ["CLIENT_CONTEXT_LIMIT", "InvokePath", "PreparedInvoke", "check_invocation_type",
           "check_payload", "request_id_source"]

CLIENT_CONTEXT_LIMIT = 3583
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_ID_BATCH = 4096
_MASK48 = (1 << 48) - 1


def request_id_source(rng: random.Random) -> Callable[[], str]:
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
            r = f"{bits(80):020x}"
            prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{'89ab'[bits(2)]}{r[17:20]}-%012x"
            left, value, step = _ID_BATCH, bits(48), bits(48) | 1
        left -= 1
        value = (value + step) & _MASK48
        return prefix % value

    return new_id


def check_invocation_type(invocation_type: str, log_type: str | None) -> None:
    """InvocationType and LogType as the Invoke API enumerates them (ValidationException otherwise)."""
    if invocation_type not in INVOCATION_TYPES:
        raise validation_error(
            invocation_type, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
        )
    if log_type not in (None, "None", "Tail"):
        raise validation_error(log_type, "logType", "Member must satisfy enum value set: [None, Tail]")


def check_payload(payload: bytes) -> bytes:
    """The payload a function receives: ``{}`` for an empty one (as AWS), else it must parse as JSON
    (InvalidRequestContentException)."""
    if not payload.strip():
        return b"{}"
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestContentException(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from None
    return payload


def decode_client_context(value: str | None) -> str | None:
    """ClientContext: at most 3,583 bytes of base64 of a JSON object; returns the decoded JSON text."""
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


def _check_size(payload: bytes) -> None:
    if len(payload) > SYNC_PAYLOAD_LIMIT:
        raise RequestTooLargeException(
            f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation"
        )



def trace_header(incoming: str | None, mode: str) -> str | None:
    """The ``_X_AMZN_TRACE_ID`` of an invocation: the caller's ``X-Amzn-Trace-Id`` header as it came (PassThrough
    and Active alike), else for ``TracingConfig`` Active a new sampled trace header
    (``Root=1-<epoch hex>-<96 random bits>;Parent=<64 random bits>;Sampled=1``, X-Ray's format:
    https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader), else None:
    with PassThrough and no incoming header the variable is unset (AWS would set a non-sampled id; edgelab keeps
    the hot path free of it)."""
    if incoming:
        return incoming
    if mode != "Active":
        return None
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"

class InvokePath:
    """Synchronous invocations of one process (see the module docstring)."""

    def __init__(self, registry: Registry, executor: ExecutorLike | None, *, region: str, rng: random.Random,
                 new_request_id: Callable[[], str]) -> None:
        self.registry = registry
        self.executor = executor
        self.region = region  # the executing region (pools, concurrency)
        self.rng = rng
        self.new_request_id = new_request_id

    async def invoke(
        self, function_name: str, qualifier: str | None, payload: bytes, *, dry_run: bool = False,
        log_type: str | None = None, client_context_b64: str | None = None, region: str | None = None,
        request_id: str | None = None, display_name: str | None = None, log_group: str | None = None,
        trace_id: str | None = None,
    ) -> InvocationResult:
        """A ``RequestResponse`` (or, ``dry_run``, a ``DryRun``) invocation; an empty payload is sent to the
        function as ``{}`` (as AWS does)."""
        _check_size(payload)
        ref = self.registry.parse(function_name, qualifier)
        snap = await self.snapshot(ref)
        version = pick_version(snap, ref.qualifier, self.rng, self.registry.region)
        body = check_payload(payload)
        client_context = decode_client_context(client_context_b64)
        request_id = request_id or self.new_request_id()
        if dry_run:
            return InvocationResult(outcome=Outcome.OK, payload=b"", request_id=request_id, executed_version=version)
        return await self.run(
            ref, snap, version, body, request_id, region=region, display_name=display_name, log_group=log_group,
            client_context=client_context, want_log_tail=log_type == "Tail", trace_id=trace_id,
        )

    async def run(
        self, ref: FunctionRef, snap: FunctionSnapshot, version: str, body: bytes, request_id: str, *,
        region: str | None = None, display_name: str | None = None, log_group: str | None = None,
        client_context: str | None = None, want_log_tail: bool = False, trace_id: str | None = None,
    ) -> InvocationResult:
        """Run ``version`` of a resolved function on the executor (``trace_id``: see :func:`trace_header`)."""
        spec = self.runnable(snap.specs[version])
        if self.executor.runtime_state(spec.runtime) is not ACTIVE:  # type: ignore[union-attr]  # runnable checked
            await self.ready(spec)
        options = InvokeOptions(
            request_id=request_id,
            invoked_arn=function_arn(ref.name, self.registry.region, ref.qualifier),
            region=region or self.region,
            display_name=display_name,
            log_group=log_group or snap.configs[version].log_group,
            client_context=client_context,
            want_log_tail=want_log_tail,
            trace_id=trace_header(trace_id, snap.configs[version].tracing_mode),
        )
        return await self.executor.invoke(spec, body, options,  # type: ignore[union-attr]  # runnable checked it
                                          reserved_concurrency=snap.reserved)

    def runnable(self, spec: FunctionSpec) -> FunctionSpec:
        """``spec`` if this process can execute it, else the AWS error an invoke gets."""
        if not is_runnable_runtime(spec.runtime):
            raise InvalidRuntimeException(
                f"The runtime parameter of {spec.runtime} is stored but cannot be executed: this edgelab build runs "
                "python3.x, nodejs18.x, nodejs20.x, nodejs22.x, nodejs24.x, provided.al2 and provided.al2023 "
                "functions. Next step: UpdateFunctionConfiguration with one of those runtimes."
            )
        if self.executor is None:
            raise ServiceException("This process has no executor: invocations are not available here.")
        return spec

    async def ready(self, spec: FunctionSpec) -> None:
        """Raise AWS's error for invoking a function that is not ``Active`` (its runtime being installed, or
        failed to install: https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html, "Lambda does not
        invoke a function during pending state"). The first check of a runtime in this process looks on disk."""
        st = await self.executor.check_runtime(spec.runtime)  # type: ignore[union-attr]  # runnable checked it
        if st.state != "Active":
            raise ResourceConflictException(
                "The operation cannot be performed at this time. The function is currently in the following state: "
                f"{st.state}" + (f". StateReason: {st.reason}" if st.reason else ""))

    async def snapshot(self, ref: FunctionRef) -> FunctionSnapshot:
        """In-memory on the hot path; one threaded SQLite load per function after each change."""
        found = self.registry.cache.cached(ref.name)
        if isinstance(found, FunctionSnapshot):
            return found
        snap = found if found is None else await asyncio.to_thread(self.registry.cache.snapshot, ref.name)
        if snap is None:
            raise function_not_found(ref.name, self.registry.region, ref.qualifier)
        return snap

    async def snapshot_of(self, function_name: str) -> FunctionSnapshot:
        """The cached snapshot of a function (404 ResourceNotFoundException when it does not exist)."""
        return await self.snapshot(self.registry.parse(function_name))

    async def invoke_event_now(self, function_name: str, qualifier: str | None, payload: bytes, request_id: str,
                               snap: FunctionSnapshot) -> InvocationResult:
        """Run one queued event (the async deliverer): weighted alias routing per attempt, as AWS."""
        ref = self.registry.parse(function_name, qualifier)
        version = pick_version(snap, ref.qualifier, self.rng, self.registry.region)
        return await self.run(ref, snap, version, payload if payload.strip() else b"{}", request_id)

    def prepare(self, function_name: str, qualifier: str | None, *, region: str | None = None,
                display_name: str | None = None, log_group: str | None = None) -> PreparedInvoke:
        """A reusable synchronous invocation target for ``function_name:qualifier`` with fixed options (see
        :class:`PreparedInvoke`). Raises for a malformed name; an unknown function only fails when invoked."""
        return PreparedInvoke(self, self.registry.parse(function_name, qualifier), region=region or self.region,
                              display_name=display_name, log_group=log_group)


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

    __slots__ = (
        "_active",
        "_arn",
        "_cache",
        "_display_name",
        "_generation",
        "_log_group",
        "_options_group",
        "_path",
        "_ref",
        "_region",
        "_reserved",
        "_route",
        "_run_spec",
        "_snap",
        "_spec",
    )

    def __init__(self, path: InvokePath, ref: FunctionRef, *, region: str, display_name: str | None,
                 log_group: str | None) -> None:
        self._path = path
        self._cache = path.registry.cache
        self._ref = ref
        self._region = region
        self._display_name = display_name
        self._log_group = log_group
        self._arn = function_arn(ref.name, path.registry.region, ref.qualifier)
        self._generation = -1  # nothing resolved yet
        self._snap: FunctionSnapshot | None = None
        self._spec: FunctionSpec | None = None  # None while resolved to a weighted alias (drawn per call)
        self._options_group: str | None = None
        self._reserved: int | None = None
        self._route: object = None  # the executor's Route for the resolved spec and these options
        self._run_spec = path.executor.invoke if path.executor is not None else None
        self._active = False  # the resolved version's TracingConfig is Active

    def invoke(self, payload: bytes, request_id: str | None = None,
               trace_id: str | None = None) -> Awaitable[InvocationResult]:
        """Invoke with ``payload`` (see the class contract); ``request_id`` defaults to a new UUID; ``trace_id``
        is an incoming X-Ray trace header (:func:`trace_header`).

        Returns an awaitable (the executor's coroutine itself when the resolution is current: no extra frame).
        """
        _check_size(payload)
        spec = self._spec
        if spec is None or self._generation != self._cache.generation:
            return self._invoke_resolving(payload, request_id, trace_id)
        return self._run_spec(spec, payload, self._options(request_id, trace_id),  # type: ignore[misc]  # runnable() checked the executor
                              reserved_concurrency=self._reserved, route=self._route)

    def submit(self, payload: bytes, request_id: str | None, trace_id: str | None,
               done: Callable[[InvocationResult], object]) -> bool:
        """:meth:`invoke` without a coroutine (``Executor.submit``): True when the invocation was submitted, and
        ``done(result)`` follows from the event loop; False, with nothing done, when it cannot be (a payload over
        the limit, a resolution that is not current, a weighted alias): the caller uses :meth:`invoke`."""
        spec = self._spec
        if spec is None or self._generation != self._cache.generation or len(payload) > SYNC_PAYLOAD_LIMIT:
            return False
        self._path.executor.submit(spec, payload, self._options(request_id, trace_id), done,  # type: ignore[union-attr]  # runnable() checked the executor
                                   reserved_concurrency=self._reserved, route=self._route)
        return True

    def _options(self, request_id: str | None, trace_id: str | None) -> InvokeOptions:
        if trace_id is not None or self._active:
            return InvokeOptions(request_id or self._path.new_request_id(), self._arn, self._region,
                                 self._display_name, self._options_group, None, False,
                                 trace_header(trace_id, "Active" if self._active else "PassThrough"))
        # InvokeOptions(request_id, invoked_arn, region, display_name, log_group), positionally: keywords to a
        # class go through a kwargs dict on Python 3.11 (~2k more instructions on this hot path)
        return InvokeOptions(request_id or self._path.new_request_id(), self._arn, self._region,
                             self._display_name, self._options_group)

    async def _invoke_resolving(self, payload: bytes, request_id: str | None, trace_id: str | None) -> InvocationResult:
        """The slow path: (re)resolve after a registry change, or draw a weighted alias's version."""
        path = self._path
        if self._snap is None or self._generation != self._cache.generation:
            self._spec = self._snap = None
            generation = self._cache.generation  # read first: a change during the load re-resolves
            snap = await path.snapshot(self._ref)
            version = pick_version(snap, self._ref.qualifier, path.rng, path.registry.region)
            alias = snap.aliases.get(self._ref.qualifier or "$LATEST")
            routed = alias is not None and bool(alias[1])
            self._snap, self._generation = snap, generation
            self._reserved = snap.reserved
            self._options_group = self._log_group or snap.configs[version].log_group
            if not routed:
                spec = path.runnable(snap.specs[version])
                if path.executor.runtime_state(spec.runtime) is not ACTIVE:  # type: ignore[union-attr]  # runnable() checked it
                    await path.ready(spec)
                self._spec = spec
                self._active = snap.configs[version].tracing_mode == "Active"
                self._route = path.executor.route(spec, self._region, self._display_name,  # type: ignore[union-attr]  # runnable() checked it
                                                  self._options_group)
        else:
            snap = self._snap
            version = pick_version(snap, self._ref.qualifier, path.rng, path.registry.region)
        return await path.run(self._ref, snap, version, payload, request_id or path.new_request_id(),
                              region=self._region, display_name=self._display_name, log_group=self._log_group,
                              trace_id=trace_id)
