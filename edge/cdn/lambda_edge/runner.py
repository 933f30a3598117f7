"""The Lambda@Edge trigger runner: the one place the data plane calls the invocation core.

For each hook point the pipeline asks :meth:`EdgeTriggerRunner.run`, which

1. resolves the behavior's association (``NAME:QUALIFIER``) against the registry, which changes live: a
   function created, published or re-aliased through the API takes effect here within the registry's
   change-feed interval (~100 ms), without a restart;
2. applies CloudFront's association-time checks to the version that will run (viewer triggers 128 MB / 5 s,
   origin triggers 30 s, package size, no environment variables or layers, runtime) unless relaxed; an
   association that cannot resolve or fails a check answers CloudFront's ``LambdaExecutionError`` (503);
3. builds the event (:mod:`edge.cdn.lambda_edge.events`), invokes the function in this POP's region with the Lambda@Edge
   naming (``us-east-1.NAME``, log group ``/aws/lambda/us-east-1.NAME``) through a target prepared once per
   association (``Invoker.prepare``: resolution and options cached until the registry changes), maps
   throttles to ``LambdaLimitExceeded`` and function errors to ``LambdaExecutionError`` (both 503);
4. validates the result (:mod:`edge.cdn.lambda_edge.results`, given the event's own header maps so that headers the
   function kept are not re-validated one by one): invalid results, and results Lambda refused for exceeding
   its 6 MB payload limit ("The JSON output is not parsable"), are ``LambdaValidationError`` (502) and the
   detailed reason goes to the validation log group ``/aws/cloudfront/LambdaEdge/<DistributionId>``;
5. appends a ``Server-Timing`` entry naming the function, executed version, cold/warm and duration, e.g.
   ``fn-viewer-request;desc="hello:3 cold init=11.2";dur=14.03``, so load tests can split cold from warm.

Pinned versions. An association names one version (``NAME:3``, "you must specify the ARN of a function
version": https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_LambdaFunctionAssociation.html), and
CloudFront runs that version until the distribution is updated to another version's ARN ("When you publish a new
version of a function, Lambda doesn't automatically copy triggers from the previous version to the new version":
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-edge-edit-function.html). The runner
does the same, and warns (once per association and newest version) when a newer version has been published.
Local extension (``edgelab serve --watch``): the functions named in ``follow_newest`` run their newest published
version whatever version their associations pin; the switch is logged ("re-pointed"), and the next request is a
cold start of the new version (its own environments).

Lambda request ids. Each invocation's request id is derived from the viewer request's ``X-Amz-Cf-Id`` and the
event type (:func:`edge_request_id`: a version-4-shaped UUID from a BLAKE2b hash), so ``edgelab logs
--request-id <X-Amz-Cf-Id>`` finds a request's Lambda log lines without the POP storing anything (on AWS the two
ids are unrelated).

It never raises anything but the three ``LambdaError`` subclasses of :mod:`edge.cdn.errors`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from edge.cdn.errors import LambdaError, LambdaExecutionError, LambdaLimitExceeded, LambdaValidationError
from edge.cdn.lambda_edge.associations import InvalidLambdaFunctionAssociation, check_function_config
from edge.cdn.lambda_edge.events import (
    EventConfig,
    HeaderMap,
    build_event_dict,
    encode_event,
    encode_viewer_request,
    event_header_maps,
    viewer_request_prefix,
)
from edge.cdn.lambda_edge.fields import PAGE_NOT_PARSABLE
from edge.cdn.lambda_edge.results import RequestResult, ResponseResult, parse_result
from edge.cdn.lambda_edge.rules import EDGE_REGION, EVENT_TYPES, VIEWER_REQUEST
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.steps import TriggerCall
from edge.invocation.errors import LambdaError as ControlPlaneError
from edge.invocation.models import InvocationResult, Outcome

if TYPE_CHECKING:
    from edge.cdn.config.distribution import Distribution, LambdaAssociation

log = logging.getLogger("edgelab.cdn.hooks")

_TOO_LARGE = "Function.ResponseSizeTooLarge"  # the invocation core's errorType for results over 6 MB
# read on every run: on Python 3.11 ``Outcome.OK`` goes through EnumType.__getattr__'s slot, ~1,100 instructions
_OK, _THROTTLED = Outcome.OK, Outcome.THROTTLED


class PreparedCall(Protocol):
    """One association's invocation target (``edge.invocation.service.facade.PreparedInvoke`` satisfies it): invokes
    the function with a payload the runner encoded itself. Raises the invocation core's ``LambdaError``s."""

    def invoke(self, payload: bytes, request_id: str | None = None,
               trace_id: str | None = None) -> Awaitable[InvocationResult]: ...

    def submit(self, payload: bytes, request_id: str | None, trace_id: str | None,
               done: Callable[[InvocationResult], object]) -> bool:
        """``invoke`` without a coroutine: True when submitted (``done(result)`` follows from the event loop),
        False (nothing done) when the caller must use ``invoke``."""
        ...


class Invoker(Protocol):
    """What the runner needs from the invocation core (``LambdaService`` satisfies it): a prepared target per
    association, made once and reused for every request (it follows registry changes by itself)."""

    def prepare(self, function_name: str, qualifier: str | None, *, region: str | None = None,
                display_name: str | None = None, log_group: str | None = None) -> PreparedCall: ...


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """The configuration values CloudFront checks at association time, for one resolved version."""

    version: str
    revision: str
    timeout_s: float
    memory_mb: int
    code_size: int
    environment: tuple[tuple[str, str], ...]
    layers: tuple[str, ...]
    runtime: str
    architecture: str
    ephemeral_storage_mb: int


# (function name, qualifier) -> facts of every version the qualifier may route to; None when it cannot resolve.
FactsLookup = Callable[[str, str], Awaitable[list[VersionFacts] | None]]
ValidationLog = Callable[[str, str, list[str]], None]  # (group, request id, lines)
# function name -> its newest published version number (None: none published, or no such function)
NewestLookup = Callable[[str], Awaitable[str | None]]


def edge_function_name(name: str) -> str:
    """Lambda@Edge replicas are named ``us-east-1.NAME`` in every region."""
    return f"{EDGE_REGION}.{name}"


# one keyed hasher per event type, copied per call (cheaper than a new one with its parameters)
_ID_HASHERS = {event_type: hashlib.blake2b(f"{event_type}\0".encode(), digest_size=16) for event_type in EVENT_TYPES}


def edge_request_id(cf_id: str, event_type: str) -> str:
    """The Lambda request id of the ``event_type`` function run for the viewer request ``cf_id``
    (``X-Amz-Cf-Id``): a UUID of version-4 shape made from a BLAKE2b hash of both, so the ids of one viewer
    request can be recomputed from its ``X-Amz-Cf-Id`` (``edgelab logs --request-id``). Unique per request and
    event type as long as Cf-Ids are (the POP makes them from 40 random bytes); the one exception is a custom error
    page's own origin-request run, which shares its viewer request's id with the first run."""
    h = _ID_HASHERS[event_type].copy()
    h.update(cf_id.encode())
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-8{x[17:20]}-{x[20:]}"  # version 4, variant 10 (RFC 4122)


def edge_request_ids(cf_id: str) -> dict[str, str]:
    """Every Lambda request id a viewer request ``cf_id`` may have caused: event type -> request id."""
    return {event_type: edge_request_id(cf_id, event_type) for event_type in EVENT_TYPES}


class _Hook:
    """What the runner keeps per association (one per ``LambdaAssociation`` value of the distribution): its names
    and the prepared invocation target (made on first use)."""

    __slots__ = ("assoc", "check_key", "edge_name", "event_type", "target")

    def __init__(self, assoc: LambdaAssociation) -> None:
        self.assoc = assoc
        self.event_type = assoc.event_type
        self.check_key = (assoc.event_type, assoc.function_name, assoc.qualifier)
        self.edge_name = edge_function_name(assoc.function_name)
        self.target: PreparedCall | None = None  # prepared on first use (after the association check passed)


def server_timing_entry(event_type: str, name: str, result: InvocationResult, wall_ms: float) -> str:
    if result.shaping is not None:
        return _shaped_entry(event_type, name, result, wall_ms)
    if result.outcome is _THROTTLED:  # it never ran: neither cold nor warm
        return f'fn-{event_type};desc="{name}:{result.executed_version} throttled";dur={wall_ms:.2f}'
    state = "cold" if result.cold_start else "warm"
    init = f" init={result.init_duration_ms:.1f}" if result.cold_start and result.init_duration_ms else ""
    return f'fn-{event_type};desc="{name}:{result.executed_version} {state}{init}";dur={wall_ms:.2f}'


def _shaped_entry(event_type: str, name: str, result: InvocationResult, wall_ms: float) -> str:
    """The entry of an invocation edgelab shaped (``edge.invocation.execution.coldstart``): ``init`` is the total
    Init, ``model`` the realistic cold-start model's part and ``real`` the process's own; a chaos fault adds its
    own ``chaos`` entry (``chaos;desc="cold-start";dur=<extra Init ms>``, ``chaos;desc="throttle"``)."""
    shaping = result.shaping
    assert shaping is not None
    entry = server_timing_entry(event_type, name, replace(result, shaping=None), wall_ms)
    if result.cold_start and result.init_duration_ms and shaping.model_ms:
        real = result.init_duration_ms - shaping.model_ms - shaping.extra_init_ms
        entry = entry.replace('";dur=', f' model={shaping.model_ms:.1f} real={max(real, 0.0):.1f}";dur=', 1)
    if shaping.fault:
        entry += f', chaos;desc="{shaping.fault}"'
        if shaping.extra_init_ms:
            entry += f";dur={shaping.extra_init_ms:.1f}"
    return entry


class EdgeTriggerRunner:
    """Implements the pipeline's ``TriggerRunner`` protocol for one POP (one region)."""

    def __init__(self, invoker: Invoker, *, region: str, facts: FactsLookup,
                 validation_log: ValidationLog | None = None, relax_limits: bool = False,
                 checks_ttl_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 newest: NewestLookup | None = None, follow_newest: Collection[str] = (),
                 name: str = "") -> None:
        """``newest``: the newest published version of a function, for the stale-pin warning and
        ``follow_newest`` (names of the functions whose version-pinned associations run their newest version:
        ``edgelab serve --watch``); ``name``: the POP's name, for log lines."""
        self.invoker = invoker
        self.region = region
        self.facts = facts
        self.validation_log = validation_log
        self.relax_limits = relax_limits
        self.newest = newest
        self.follow_newest = frozenset(follow_newest)
        self.name = name
        self._effective: dict[tuple[str, str, str], str] = {}  # association -> qualifier run (when re-pointed)
        self._pin_reported: dict[tuple[str, str, str], str] = {}  # association -> newest version last reported
        self._checked: dict[tuple[str, str, str], tuple[float, str | None]] = {}
        self._reported: dict[tuple[str, str, str], str | None] = {}  # last problem logged per association
        # the distribution's associations (a fixed, small set) by (event type, ARN, IncludeBody), which determine the
        # rest of a LambdaAssociation (parsed from the ARN): hashing the dataclass itself runs its generated
        # Python __hash__ over six fields, ~1.5k instructions per run against ~0.3k (callgrind)
        self._hooks: dict[tuple[str, str, bool], _Hook] = {}
        self._vr_prefixes: dict[tuple[str, str], bytes] = {}  # (distribution id, domain) -> viewer_request_prefix
        self._refreshing: set[tuple[str, str, str]] = set()
        self._checks_ttl_s = checks_ttl_s
        self._clock = clock

    async def check_association(self, assoc: LambdaAssociation) -> str | None:
        """None when the association resolves and passes CloudFront's checks, else the reason (cached briefly,
        so that registry changes are picked up within ``checks_ttl_s``)."""
        key = (assoc.event_type, assoc.function_name, assoc.qualifier)
        fresh = self._fresh_check(key)
        if fresh is not None:
            return fresh[1]
        now = self._clock()
        self._refreshing.add(key)
        try:
            problem = await self._check(assoc)
        finally:
            self._refreshing.discard(key)
        self._checked[key] = (now, problem)
        self._report(key, assoc, problem)
        return problem

    def _fresh_check(self, key: tuple[str, str, str]) -> tuple[float, str | None] | None:
        """The cached (time, problem) of an association's check when it is fresh, or being refreshed by another
        request (no herd of registry lookups); None when it must be checked (again)."""
        cached = self._checked.get(key)
        if cached is not None and (self._clock() - cached[0] < self._checks_ttl_s or key in self._refreshing):
            return cached
        return None

    def _report(self, key: tuple[str, str, str], assoc: LambdaAssociation, problem: str | None) -> None:
        """Log a problem when it appears or changes, and its resolution: once, not on every request."""
        last = self._reported.get(key)
        if problem == last:
            return
        self._reported[key] = problem
        if problem is not None:
            log.error("%s association %s unusable (requests get 503 LambdaExecutionError): %s",
                      assoc.event_type, assoc.arn, problem)
        elif last is not None:
            log.info("%s association %s usable again", assoc.event_type, assoc.arn)

    async def _resolve_pin(self, assoc: LambdaAssociation) -> str:
        """The qualifier to run for ``assoc``: its own, or the newest published version when the function is
        followed (``follow_newest``). Logs a stale pin (or the re-pointing) once per newest version."""
        key = (assoc.event_type, assoc.function_name, assoc.qualifier)
        if self.newest is None or not assoc.qualifier.isdigit():  # $LATEST and aliases move by themselves
            return assoc.qualifier
        try:
            newest = await self.newest(assoc.function_name)
        except ControlPlaneError:
            newest = None
        if newest is None or int(newest) <= int(assoc.qualifier):
            self._pin_reported.pop(key, None)
            self._retarget(key, assoc.qualifier)
            return assoc.qualifier
        followed = assoc.function_name in self.follow_newest
        if self._pin_reported.get(key) != newest:
            self._pin_reported[key] = newest
            where = f"POP {self.name}: " if self.name else ""
            if followed:
                log.warning("%s%s association %s re-pointed to version %s, the newest published (--watch: declared "
                            "functions run their newest version whatever the association pins; CloudFront would "
                            "keep running version %s until the distribution is updated)", where, assoc.event_type,
                            assoc.arn, newest, assoc.qualifier)
            else:
                log.warning("%s%s association %s pins version %s, but version %s is the newest published: requests "
                            "keep running version %s, as on CloudFront. Point the association at :%s (update the "
                            "distribution), or run `edgelab serve --watch` to re-point declared functions",
                            where, assoc.event_type, assoc.arn, assoc.qualifier, newest, assoc.qualifier, newest)
        qualifier = newest if followed else assoc.qualifier
        self._retarget(key, qualifier)
        return qualifier

    def _retarget(self, key: tuple[str, str, str], qualifier: str) -> None:
        """Remember the qualifier ``key`` runs; a change drops the prepared targets (the next call prepares the new
        one: a cold start of its version), so the hot path never looks it up."""
        if self._effective.get(key, key[2]) == qualifier:
            return
        self._effective[key] = qualifier
        for hook in self._hooks.values():
            if hook.check_key == key:
                hook.target = None

    async def _check(self, assoc: LambdaAssociation) -> str | None:
        qualifier = await self._resolve_pin(assoc)
        try:
            versions = await self.facts(assoc.function_name, qualifier)
        except ControlPlaneError as exc:
            return f"{exc.__class__.__name__}: {exc}"
        if not versions:
            return (f"The function {assoc.arn} associated with {assoc.event_type} does not exist: "
                    "create and publish it (API, CLI or [[functions]] in the settings)")
        for v in versions:
            try:
                for warning in check_function_config(
                        assoc.event_type, f"arn:aws:lambda:{EDGE_REGION}:000000000000:function:"
                        f"{assoc.function_name}:{v.version}", relax_limits=self.relax_limits,
                        timeout_s=v.timeout_s, memory_mb=v.memory_mb, code_size=v.code_size,
                        environment=v.environment, layers=v.layers, runtime=v.runtime,
                        architecture=v.architecture, ephemeral_storage_mb=v.ephemeral_storage_mb):
                    log.debug("relaxed Lambda@Edge limit: %s", warning)
            except InvalidLambdaFunctionAssociation as exc:
                return f"InvalidLambdaFunctionAssociation: {exc.message}"
        return None

    async def run(self, call: TriggerCall) -> EdgeRequest | EdgeResponse:
        """Run the function associated with ``call``'s event (see the module docstring).

        A response whose body is streamed (too large to cache; the function never sees it) is released here
        when the function replaces its body, fails or is cancelled, so the origin connection is not leaked."""
        hook = self._hook(call.association)
        event_type = hook.event_type
        response = call.response
        try:
            fresh = self._fresh_check(hook.check_key)
            problem = fresh[1] if fresh is not None else await self.check_association(call.association)
            if problem is not None:
                raise LambdaExecutionError(problem, event_type=event_type, function=hook.assoc.function_name)
            payload, seen, seen_response = self._payload(call, hook)
            target = hook.target or self._prepare(hook)
            t0 = time.perf_counter()
            try:
                result = await target.invoke(payload, edge_request_id(call.request_id, event_type), _trace_of(seen))
            except ControlPlaneError as exc:  # vanished between the check and the call, payload too large...
                raise LambdaExecutionError(f"{exc.__class__.__name__}: {exc}", event_type=event_type,
                                           function=hook.assoc.function_name) from None
            out = self._outcome(call, hook, seen, seen_response, result, t0)
        except BaseException:  # a Lambda error, or the viewer went away (cancelled): the body is not used
            if response is not None:
                await response.aclose()
            raise
        if response is not None and out is not response and out.body is not response.body:
            await response.aclose()
        return out

    def start(self, call: TriggerCall, done: Callable[[EdgeRequest | EdgeResponse | LambdaError], object]) -> bool:
        """:meth:`run` of a request event without a coroutine, when it can be: the association's check is fresh and
        passed, and its target is prepared and takes submissions (``PreparedCall.submit``; a warm function runs
        with no task at all, ``Executor.submit``). True when started: ``done`` gets, from the event loop, what
        ``run`` returns or the ``LambdaError`` it raises. False, with nothing done (nothing invoked, nothing
        counted): use ``run``."""
        if call.response is not None:
            return False
        hook = self._hook(call.association)
        fresh = self._fresh_check(hook.check_key)
        target = hook.target
        if fresh is None or fresh[1] is not None or target is None:
            return False
        payload, seen, seen_response = self._payload(call, hook)
        t0 = time.perf_counter()

        def finished(result: InvocationResult) -> None:
            try:
                out: EdgeRequest | EdgeResponse | LambdaError = self._outcome(call, hook, seen, seen_response, result,
                                                                              t0)
            except LambdaError as err:
                out = err
            done(out)

        return target.submit(payload, edge_request_id(call.request_id, hook.event_type), _trace_of(seen), finished)

    def _hook(self, assoc: LambdaAssociation) -> _Hook:
        key = (assoc.event_type, assoc.arn, assoc.include_body)
        hook = self._hooks.get(key)
        if hook is None:
            hook = self._hooks[key] = _Hook(assoc)
        return hook

    def _payload(self, call: TriggerCall, hook: _Hook) -> tuple[bytes, HeaderMap, HeaderMap | None]:
        """The event's JSON and the header maps the result is compared with: a viewer-request event without its body
        straight to bytes (``events.encode_viewer_request``), any other through the event's dicts."""
        if hook.event_type == VIEWER_REQUEST and not hook.assoc.include_body:
            dist = call.distribution
            key = (dist.id, dist.domain_name)
            prefix = self._vr_prefixes.get(key)
            if prefix is None:
                prefix = self._vr_prefixes[key] = viewer_request_prefix(dist.domain_name, dist.id)
            fast = encode_viewer_request(prefix, call.request_id, call.request)
            if fast is not None:
                return fast[0], fast[1], None
        event = self._event(call, hook)
        return (encode_event(event), *event_header_maps(event))

    @staticmethod
    def _event(call: TriggerCall, hook: _Hook) -> dict[str, Any]:
        # (distribution domain name, distribution id, request id) positionally: a keyword call to the named
        # tuple's __new__ builds a kwargs dict on Python 3.11
        config = EventConfig(call.distribution.domain_name, call.distribution.id, call.request_id)
        return build_event_dict(hook.event_type, config=config, request=call.request, response=call.response,
                                include_body=hook.assoc.include_body)

    def _outcome(self, call: TriggerCall, hook: _Hook, seen: HeaderMap, seen_response: HeaderMap | None,
                 result: InvocationResult, t0: float) -> EdgeRequest | EdgeResponse:
        """What the pipeline continues with after the invocation that started at ``t0`` (raises CloudFront's
        error: a throttle, a function error, an invalid result); ``seen`` / ``seen_response``: the event's header
        maps (``events.event_header_maps``)."""
        self._account(call, hook, result, (time.perf_counter() - t0) * 1000.0)
        return self._continue_with(call, hook.assoc, result, seen, seen_response)

    def _prepare(self, hook: _Hook) -> PreparedCall:
        fn = hook.assoc.function_name
        qualifier = self._effective.get(hook.check_key, hook.assoc.qualifier)
        try:
            hook.target = self.invoker.prepare(fn, qualifier, region=self.region,
                                               display_name=hook.edge_name, log_group=f"/aws/lambda/{hook.edge_name}")
        except ControlPlaneError as exc:
            raise LambdaExecutionError(f"{exc.__class__.__name__}: {exc}", event_type=hook.event_type,
                                       function=fn) from None
        return hook.target

    def _account(self, call: TriggerCall, hook: _Hook, result: InvocationResult, wall_ms: float) -> None:
        """Add the run's Server-Timing entry; raise CloudFront's error for a throttle or a function error."""
        event_type = hook.event_type
        fn = hook.assoc.function_name
        call.timing.add(server_timing_entry(event_type, fn, result, wall_ms))
        if result.outcome is not _OK:
            err = outcome_error(event_type, fn, result)
            if isinstance(err, LambdaValidationError):
                self._log_validation(call, hook.assoc, result, err)
            raise err

    def _continue_with(self, call: TriggerCall, assoc: LambdaAssociation, result: InvocationResult,
                       seen: HeaderMap, seen_response: HeaderMap | None) -> EdgeRequest | EdgeResponse:
        event_type = assoc.event_type
        try:
            parsed = parse_result(event_type, result.payload, original_request=call.request,
                                  original_response=call.response, include_body=assoc.include_body,
                                  allow_ip_origins=self.relax_limits, event_headers=seen,
                                  event_response_headers=seen_response)
        except LambdaValidationError as err:
            err.function = assoc.function_name
            self._log_validation(call, assoc, result, err)
            raise
        if isinstance(parsed, RequestResult):  # a request event: the request to continue with
            return parsed.request
        if isinstance(parsed, ResponseResult):  # a response event: the (possibly modified) response
            return parsed.response
        out = parsed.response  # a request event answered by the function itself
        out.meta.generated_by = event_type
        if not any(k.lower() == "server" for k, _ in out.headers):
            # CloudFront answers generated responses as itself (contract §2.2), unless the function says
            out.headers.insert(0, ("Server", "CloudFront"))
        return out

    def _log_validation(self, call: TriggerCall, assoc: LambdaAssociation, result: InvocationResult,
                        err: LambdaValidationError) -> None:
        log.warning("%s %s:%s result failed validation: %s", call.event_type.value, assoc.function_name,
                    result.executed_version, err.detail)
        if self.validation_log is not None:
            group = f"/aws/cloudfront/LambdaEdge/{call.distribution.id}"
            line = (f"{call.request_id} ERROR Validation error: {err.detail} "
                    f"(function: {assoc.function_name}:{result.executed_version}, event: {call.event_type.value})")
            self.validation_log(group, call.request_id, [line])


def outcome_error(event_type: str, fn: str, result: InvocationResult) -> LambdaError:
    """CloudFront's error for an invocation that did not return normally (``result.outcome`` is not OK): a throttle
    is ``LambdaLimitExceeded`` (503), a function error ``LambdaExecutionError`` (503), and a response Lambda
    refused for exceeding its 6 MB payload limit a ``LambdaValidationError`` (502): CloudFront reports what it got
    as unparsable JSON (contract §3.3, §4.1;
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/troubleshooting-response-errors.html)."""
    if result.outcome is Outcome.THROTTLED:
        return LambdaLimitExceeded(f"{fn}:{result.executed_version} throttled ({result.throttle_reason})",
                                   event_type=event_type, function=fn)
    if result.error_type == _TOO_LARGE:
        return LambdaValidationError(f"{PAGE_NOT_PARSABLE} ({_error_message(result.payload)})",
                                     event_type=event_type, function=fn, page_line=PAGE_NOT_PARSABLE)
    return LambdaExecutionError(f"{fn}:{result.executed_version} {result.error_type}: "
                                f"{_error_message(result.payload)}", event_type=event_type, function=fn)


def _error_message(payload: bytes) -> str:
    """The ``errorMessage`` of a function error payload (AWS's error JSON), shortened; "" if there is none."""
    try:
        obj: Any = orjson.loads(payload)
        return str(obj.get("errorMessage", ""))[:300] if isinstance(obj, dict) else ""
    except ValueError:
        return ""


def distribution_associations(distribution: Distribution) -> list[LambdaAssociation]:
    """Every association of every behavior (for the startup report)."""
    return [a for b in distribution.all_behaviors for a in b.lambda_associations]


def _trace_of(headers: HeaderMap) -> str | None:
    """The viewer's ``X-Amzn-Trace-Id`` (one dict lookup in the event's lower-cased request headers), which the
    function sees as ``_X_AMZN_TRACE_ID``."""
    found = headers.get("x-amzn-trace-id")
    return found[0]["value"] if found else None
