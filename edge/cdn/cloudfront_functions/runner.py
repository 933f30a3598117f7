"""CloudFront Functions in a POP process: resolving associations, running the function, applying its result.

One :class:`CloudFrontFunctionRunner` per POP process (the ``edge.cdn.steps.cloudfront_functions`` step calls it;
``edge.cdn.pipeline`` decides when). It

1. resolves each ``FunctionAssociations`` item by name to the function's ``LIVE`` stage in the function store
   (functions created and published through the API, the CLI or ``[[cloudfront_functions]]`` in the settings):
   :class:`FunctionCatalog` keeps the LIVE stages of the functions the distribution names and the snapshots of
   their key value stores in memory, refreshed from the database by a background task through SQLite's change
   counter, in a thread, when the database's files were written (an inotify :class:`~edge.inotify.DatabaseWatch`
   on the event loop: at once, then at most once per ``poll_interval``, 100 ms; once a second in any case; every
   ``poll_interval`` where inotify is unavailable): a publish or a ``PutKey`` reaches every POP within a second,
   the request path never touches SQLite, and a loaded POP does not hand its GIL to a polling thread ten times a
   second (measured for the Lambda registry's feed in :mod:`edge.inotify`). An association that does not resolve is answered with
   CloudFront's ``503 FunctionExecutionError`` and logged once, with the next step;
2. keeps one :class:`~edge.cdn.cloudfront_functions.engine.FunctionEngine` per (function, LIVE ETag); building its
   context (evaluating the runtime prelude, ~60 ms) and loading a changed store snapshot happen in a thread, so
   the event loop only ever runs the function itself (bounded by the engine's CPU limit, 5 ms);
3. runs the function on the event (``event.build_event``; for viewer-request, and viewer-response on a response
   ``delta.response_fields`` takes, the engine builds it from ``delta.request_fields`` / ``response_fields`` and
   may answer with a delta, applied by ``delta.apply_request_delta`` / ``apply_response_delta`` - the same
   outcome, less work: ``FunctionEngine.invoke_request`` / ``invoke_response``), applies what it returned with CloudFront's validation
   (``event.apply_request_result`` / ``apply_response_result``): an exception, refused syntax or a limit -> 503
   ``FunctionExecutionError``; an invalid result -> 502 ``FunctionValidationError``; a returned response ->
   a generated response (``X-Cache: FunctionGeneratedResponse from cloudfront``, ``Server: CloudFront``);
4. turns the origin helpers the function called (``cf.updateRequestOrigin`` / ``selectRequestOriginById`` /
   ``createRequestOriginGroup``, "Helper methods for origin modification",
   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/helper-functions-origin-modification.html)
   into an :class:`~edge.cdn.cloudfront_functions.origin.OriginOverride` for the request, resolving origin ids
   against the distribution (``origin.resolve_origin_change``);
5. adds a ``Server-Timing`` entry per function (``fn-viewer-request;desc="NAME:LIVE cff cu=3";dur=0.02``: name,
   stage, compute utilization; `` memo`` after it when the engine answered a repeated event from memory,
   ``FunctionEngine``'s "Repeated events"), and writes the function's ``console.log`` lines to the log group
   CloudFront uses, ``/aws/cloudfront/function/<name>`` in us-east-1, framed ``<request id> START DistributionID:
   <id>`` ... ``<request id> END`` ("Edge function logs",
   https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-functions-logs.html). As on AWS only
   invocations that logged write anything; edgelab adds the compute utilization to the END line and, for a
   failed invocation, an ``ERROR`` line with the reason (AWS gives neither; documented in the README).

A viewer request the engine answered from memory (its event's second time) is kept by the request itself (method, uri,
query string, client IP, every header as it came, the function and distribution; up to 1,024 requests, each under the
engine's 4 KB of fields): from the third time on it goes on with the uri, query string and headers it went on with,
without building its fields or calling the engine, while nothing was reloaded since (``FunctionCatalog.loads``: a
publish, a store's new snapshot) and the engine forgot nothing (``memo_generation``: a rebuilt context, another
snapshot). The same for a viewer-response event of a cache entry's response (its header block describing exactly its
headers): kept by the request and the entry (block, status, description), the names and values the function added
are applied again (``delta.apply_response_delta``, itself worked out once per entry). Two comparisons, so the POP
answers such a cache hit without an ``Exchange`` (:meth:`again`, ``edge.cdn.lean.function_again`` / ``last_again``);
events that never repeat cost a lookup; a connection sending the same read again has the hit's answer kept, good
while :meth:`current` (``PopViewer.again``). All give what a call would (tests/cdn/cloudfront_functions/test_memo.py,
test_runner.py, tests/e2e/test_cloudfront_functions.py); what each saves: README, CloudFront Functions.

Origin settings that have no effect on a local connection are validated and then not applied: origin shield,
origin access control, SNI and allowed certificate names, connection attempts and timeouts, IP address type
(README, "deviations").
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from edge.cdn.cloudfront_functions.associations import CffAssociation
from edge.cdn.cloudfront_functions.db import CffDatabase
from edge.cdn.cloudfront_functions.delta import (
    apply_request_delta,
    apply_response_delta,
    request_fields,
    response_fields,
)
from edge.cdn.cloudfront_functions.engine import EngineLimits, FunctionEngine, Invocation, KvsView
from edge.cdn.cloudfront_functions.errors import FunctionError, FunctionExecutionError
from edge.cdn.cloudfront_functions.event import (
    GeneratedResponse,
    RequestResult,
    ResponseResult,
    apply_request_result,
    apply_response_result,
    build_event,
)
from edge.cdn.cloudfront_functions.functions import FunctionStore, LiveFunction, function_log_lines
from edge.cdn.cloudfront_functions.kvs import KvsSnapshots
from edge.cdn.cloudfront_functions.limits import VIEWER_REQUEST, VIEWER_RESPONSE
from edge.cdn.cloudfront_functions.origin import OriginOverride, resolve_origin_change
from edge.cdn.memo import remember
from edge.cdn.models import EdgeRequest, EdgeResponse, Origin, header_get, rewritten
from edge.cdn.responses import ServerTiming
from edge.inotify import DatabaseWatch
from edge.tasks import TaskOwner, wait_set

if TYPE_CHECKING:
    from edge.cdn.config.distribution import Distribution

__all__ = ["CloudFrontFunctionRunner", "FunctionCatalog", "LogSink", "RequestOutcome"]

log = logging.getLogger("edgelab.cdn.functions")

LOG_REGION = "us-east-1"  # edge-functions-logs: CloudFront Functions log to us-east-1 whatever the edge location
LogSink = Callable[[str, str, list[str], str], None]  # (group, stream, lines, request id)
_SAMPLES = 1024  # compute utilization samples kept per function (metrics)
_REPEATED_MAX = 1024  # viewer requests kept by CloudFrontFunctionRunner._repeated (all forgotten when full)


def _request_key(name: str, distribution: Distribution, method: str, uri: str, querystring: str, client_ip: str,
                 headers: Iterable[tuple[str, str]]) -> tuple[Any, ...]:
    """A viewer request as ``CloudFrontFunctionRunner._repeated`` keeps it: the function's name, the distribution's id
    and domain, and the request as it came (method, uri, query string, client IP, every header with its spelling)."""
    return (name, distribution.id, distribution.domain_name, method, uri, querystring, client_ip, tuple(headers))


class Repeated:
    """What ``CloudFrontFunctionRunner._repeated`` keeps: the catalog's ``loads`` and the engine's ``memo_generation`` it
    is good for, what it led to (``went_on``: the uri, query string and headers a viewer request went on with; the
    names and values a viewer-response function added), the call's compute utilization, its Server-Timing entry up to
    the duration, and the function's counts."""

    __slots__ = ("engine", "generation", "loads", "stats", "timing", "utilization", "went_on")

    def __init__(self, loads: int, engine: FunctionEngine, went_on: tuple[Any, ...], utilization: int, timing: str,
                 stats: FunctionStats) -> None:
        self.loads, self.engine, self.generation = loads, engine, engine.memo_generation
        self.went_on, self.utilization, self.timing, self.stats = went_on, utilization, timing, stats


def _timing_entry(event_type: str, name: str, utilization: int, memo: bool) -> str:
    """A function's Server-Timing entry up to its duration (milliseconds, two decimals, follow)."""
    return f'fn-{event_type};desc="{name}:LIVE cff cu={utilization}{" memo" if memo else ""}";dur='


def _next_step(name: str) -> str:
    return (f"create and publish the CloudFront function {name} (aws cloudfront create-function + "
            f"publish-function, `edgelab cff create --publish`, or [[cloudfront_functions]] in the settings)")


class FunctionCatalog:
    """The LIVE stages of the functions a distribution names, and their stores' snapshots, in memory.

    :meth:`refresh` (blocking: call it in a thread) reloads them when the database changed since the last look
    (SQLite's ``PRAGMA data_version``, a cheap read); the request path only reads :meth:`live` / :meth:`kvs`.
    """

    def __init__(self, db: CffDatabase, names: Iterable[str], *, store: FunctionStore | None = None,
                 snapshots: KvsSnapshots | None = None) -> None:
        self.db = db
        self.names = tuple(sorted(set(names)))
        self.store = store or FunctionStore(db)
        self.snapshots = snapshots or KvsSnapshots(db, account=self.store.account, poll_interval=0.0)
        self._live: dict[str, LiveFunction | None] = {}
        self._views: dict[str, KvsView | None] = {}
        self._data_version: int | None = None
        self.loads = 0  # how many times something was reloaded (tests, metrics)

    def refresh(self) -> bool:
        """Reload what changed; True when anything was (re)loaded. Blocking (SQLite)."""
        version = self.db.data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        live = {name: self.store.live(name) for name in self.names}
        views: dict[str, KvsView | None] = {}
        for fn in live.values():
            if fn is not None and fn.kvs_arn is not None and fn.kvs_arn not in views:
                views[fn.kvs_arn] = self.snapshots.view(fn.kvs_arn)
        self._live, self._views = live, views  # swapped whole: readers see the old or the new state
        self.loads += 1
        return True

    def follow(self, names: Iterable[str]) -> None:
        """Follow ``names`` from now on (a new distribution configuration associates them): the next
        :meth:`refresh` reloads whatever the database holds for them."""
        wanted = tuple(sorted(set(names)))
        if wanted != self.names:
            self.names, self._data_version = wanted, None

    def live(self, name: str) -> LiveFunction | None:
        return self._live.get(name)

    def close(self) -> None:
        self.db.close()

    def kvs(self, arn: str) -> KvsView | None:
        return self._views.get(arn)


@dataclass(slots=True)
class RequestOutcome:
    """What a viewer-request function decided: continue with ``request`` (and ``origin``, if it changed the origin),
    or send ``response`` (generated) to the viewer."""

    request: EdgeRequest
    response: EdgeResponse | None = None
    origin: OriginOverride | None = None


@dataclass(slots=True)
class FunctionStats:
    invocations: int = 0
    execution_errors: int = 0
    validation_errors: int = 0
    generated: int = 0
    memo_hits: int = 0  # invocations answered from memory (FunctionEngine, "Repeated events")
    utilization: deque[int] = field(default_factory=lambda: deque(maxlen=_SAMPLES))

    def snapshot(self) -> dict[str, Any]:
        cu = sorted(self.utilization)
        pick = (lambda q: cu[min(len(cu) - 1, int(q * len(cu)))]) if cu else (lambda q: None)
        return {"invocations": self.invocations, "execution_errors": self.execution_errors,
                "validation_errors": self.validation_errors, "generated_responses": self.generated,
                "memo_hits": self.memo_hits,
                "compute_utilization": {"p50": pick(0.5), "p99": pick(0.99), "max": cu[-1] if cu else None}}


class CloudFrontFunctionRunner:
    """Runs the CloudFront functions of one POP process (see the module docstring)."""

    def __init__(self, catalog: FunctionCatalog, *, edge_location: dict[str, str], log_sink: LogSink | None = None,
                 limits: EngineLimits | None = None, poll_interval: float = 0.1, stream_prefix: str = "",
                 memo: bool = True) -> None:
        self.catalog = catalog
        self.memo = memo  # repeated events answered from memory (FunctionEngine, "Repeated events")
        # _request_key (+ a cache entry's header block, status, description for viewer-response) -> Repeated: a
        # request (and entry) whose event the engine answered from memory; see the module docstring
        self._repeated: dict[tuple[Any, ...], Repeated] = {}
        self.edge_location = edge_location  # cf.edgeLocation: {name: IATA code, serverIp, region}
        self._location_json = orjson.dumps(edge_location).decode()
        self.log_sink = log_sink
        self.limits = limits or EngineLimits()
        self._engines: dict[str, tuple[str, FunctionEngine]] = {}  # name -> (LIVE ETag, engine)
        self._preparing: dict[tuple[str, str], asyncio.Future[None]] = {}  # (name, ETag) -> its build/load (thread)
        self._reported: dict[str, str | None] = {}
        self.stats: dict[str, FunctionStats] = {}
        self._tasks = TaskOwner("cloudfront-functions")
        self._watch = DatabaseWatch(catalog.db.path, poll_interval)  # opened by start()
        stamp = time.strftime("%Y/%m/%d", time.gmtime())
        self._stream = f"{stamp}/{stream_prefix}{uuid.uuid4().hex}"

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load the catalog once (so the first requests find their functions) and start following changes."""
        await self.refresh()
        self._watch.open()
        self._tasks.spawn(self._poll(), key="poll", name="cloudfront-functions poll")

    async def close(self) -> None:
        await self._tasks.aclose()
        self._watch.close()
        for _, engine in self._engines.values():
            engine.close()
        self._engines.clear()
        self.catalog.close()

    async def refresh(self) -> None:
        """Reload the catalog if the database changed, then prepare the engines of what it resolves (threads)."""
        if await asyncio.to_thread(self.catalog.refresh):
            for name in self.catalog.names:
                self._report(name)
                fn = self.catalog.live(name)
                if fn is not None:
                    await self._ready(fn)

    async def _poll(self) -> None:
        while True:
            await wait_set(self._watch.written, self._watch.timeout)
            self._watch.written.clear()  # before the refresh: a write during it wakes the next round
            try:
                await self.refresh()
            except Exception:  # a locked or vanished database: keep serving what we have, try again
                log.exception("CloudFront Functions: reloading the function store failed")

    def problem(self, name: str) -> str | None:
        """Why the function ``name`` cannot run (None: it resolves to a LIVE stage)."""
        if self.catalog.live(name) is not None:
            return None
        return (f"the CloudFront function {name} does not exist or was never published (no LIVE stage): "
                + _next_step(name))

    def _report(self, name: str) -> None:
        problem = self.problem(name)
        last = self._reported.get(name, "")
        if problem == last:
            return
        self._reported[name] = problem
        if last == "":  # first look: the control process reports unresolved associations at startup, once
            log.debug("CloudFront function %s: %s", name, problem or "resolved")
        elif problem is not None:
            log.error("CloudFront function association %s unusable (requests get 503 FunctionExecutionError): %s",
                      name, problem)
        elif last:
            log.info("CloudFront function %s usable again", name)

    # ------------------------------------------------------------------ engines
    def _engine(self, fn: LiveFunction) -> FunctionEngine:
        cached = self._engines.get(fn.name)
        if cached is not None and cached[0] == fn.etag:
            return cached[1]
        engine = FunctionEngine(fn.name, fn.code, fn.runtime, limits=self.limits, memo=self.memo)
        self._engines[fn.name] = (fn.etag, engine)
        if cached is not None:
            cached[1].close()
        return engine

    async def _ready(self, fn: LiveFunction) -> FunctionEngine:
        """The engine of ``fn``, its context built and its store's current snapshot loaded, in a thread (one at a
        time per engine: concurrent requests await the same preparation). Bounded: when the store keeps changing
        under it, the last load is left to the call itself (``FunctionEngine.invoke`` loads a newer snapshot)."""
        engine = self._engine(fn)
        key = (fn.name, fn.etag)
        for _ in range(3):
            pending = self._preparing.get(key)
            if pending is not None and not pending.done():  # (a done one must not be awaited in a loop: no yield)
                await asyncio.shield(pending)
                continue
            kvs = self.catalog.kvs(fn.kvs_arn) if fn.kvs_arn else None  # the current snapshot, not a stale one
            if not engine.needs_prepare(kvs):
                break
            future = asyncio.get_running_loop().run_in_executor(None, engine.prepare, kvs)
            self._preparing[key] = future
            try:
                await asyncio.shield(future)
            finally:
                if self._preparing.get(key) is future:
                    del self._preparing[key]
        return engine

    # ------------------------------------------------------------------ calls
    async def viewer_request(self, assoc: CffAssociation, distribution: Distribution, request: EdgeRequest,
                             request_id: str, timing: ServerTiming, base_origin: Origin) -> RequestOutcome:
        """Run the viewer-request function of ``assoc`` on ``request`` (the viewer request, CloudFront's generated
        headers included). Raises ``FunctionExecutionError`` (503) / ``FunctionValidationError`` (502)."""
        fn = self._resolved(assoc)
        engine = self._engine_ready(fn) or await self._load(fn, assoc)
        return self.viewer_request_now((fn, engine), assoc, distribution, request, request_id, timing, base_origin)

    def prepared(self, assoc: CffAssociation) -> tuple[LiveFunction, FunctionEngine] | None:
        """The function of ``assoc`` and its engine when it can run at once (the common case), else None (it
        must be loaded first: ``viewer_request``). Raises ``FunctionExecutionError`` when it does not exist."""
        fn = self._resolved(assoc)
        engine = self._engine_ready(fn)
        return (fn, engine) if engine is not None else None

    def viewer_request_now(self, ready: tuple[LiveFunction, FunctionEngine], assoc: CffAssociation,
                           distribution: Distribution, request: EdgeRequest, request_id: str, timing: ServerTiming,
                           base_origin: Origin) -> RequestOutcome:
        """``viewer_request`` with the function ``prepared`` returned, synchronously: the engine call never waits
        (the POP answers a cache hit behind a CloudFront function without a task, ``pipeline.begin``)."""
        fn, engine = ready
        key = None
        if self.memo:  # the same request as one the engine answered from memory: what it went on with, at once
            t0 = time.perf_counter()
            key = _request_key(fn.name, distribution, request.method, request.uri, request.querystring,
                               request.client_ip, request.headers)
            known = self._known(key)
            if known is not None:
                timing.add(self.answered_again(known, (time.perf_counter() - t0) * 1000.0))
                uri, querystring, headers = known.went_on
                return RequestOutcome(rewritten(request, uri, querystring, list(headers)))  # (positional)
        location = self._location_json
        # the engine builds the event from the request's strings and may answer with a delta (delta.request_fields,
        # FunctionEngine.invoke_request); the JSON event serves what it cannot take
        fields = request_fields(request, distribution_domain=distribution.domain_name, distribution_id=distribution.id,
                                request_id=request_id)
        if fields is not None:
            inv = self._run(fn, assoc, distribution, request_id, timing, lambda kvs: engine.invoke_request(
                fields, partial(apply_request_delta, request), kvs=kvs,
                edge_location_json=location))
            applied = inv.applied
            if key is not None and inv.memo and isinstance(applied, RequestResult):  # (a request seen twice; its
                # fields under engine.MEMO_FIELDS_MAX, or the engine would not have remembered it)
                went_on = applied.request
                self._keep(key, fn, engine, assoc, inv, (went_on.uri, went_on.querystring, tuple(went_on.headers)))
        else:
            event, raw_query = self._request_event(request, distribution, request_id)
            inv = self._run(fn, assoc, distribution, request_id, timing, lambda kvs: engine.invoke(
                event, raw_query=raw_query, kvs=kvs, edge_location_json=location))
        stats = self.stats[fn.name]
        try:
            if inv.applied is not None:
                result = inv.applied
            else:
                result = apply_request_result(request, self._request_event(request, distribution, request_id)[0],
                                              inv.value)
            if isinstance(result, GeneratedResponse):
                stats.generated += 1
                response = result.response
                if result.oversized:
                    log.warning("CloudFront function %s generated a response over 40 KB (request %s)", fn.name,
                                request_id)
                response.meta.generated_by = VIEWER_REQUEST
                if header_get(response.headers, "server") is None:
                    response.headers.insert(0, ("Server", "CloudFront"))
                return RequestOutcome(request=request, response=response)
            override = resolve_origin_change(inv.origin_ops, base_origin, distribution, result.request.headers)
        except FunctionError as err:
            self._failed(fn, assoc, err, stats, distribution, request_id)
            raise
        return RequestOutcome(result.request, None, override)  # (request, response, origin: positional)

    async def viewer_response(self, assoc: CffAssociation, distribution: Distribution, request: EdgeRequest,
                              response: EdgeResponse, request_id: str, timing: ServerTiming) -> EdgeResponse:
        """Run the viewer-response function of ``assoc``; the (possibly modified) response. Raises as above."""
        fn = self._resolved(assoc)
        engine = self._engine_ready(fn) or await self._load(fn, assoc)
        return self.viewer_response_now((fn, engine), assoc, distribution, request, response, request_id, timing)

    def viewer_response_now(self, ready: tuple[LiveFunction, FunctionEngine], assoc: CffAssociation,
                            distribution: Distribution, request: EdgeRequest, response: EdgeResponse,
                            request_id: str, timing: ServerTiming) -> EdgeResponse:
        """``viewer_response`` with the function ``prepared`` returned, synchronously (a cache hit behind a
        viewer-response function is answered without a task, ``pipeline.begin``)."""
        fn, engine = ready
        key = None
        meta = response.meta
        block = meta.header_block
        if self.memo and meta.clean and block is not None and block.count == len(response.headers):
            # a cache entry's response (its header block describes exactly its headers): the same request and entry
            # as one whose event the engine answered from memory get the same names and values added, at once
            t0 = time.perf_counter()
            key = (*_request_key(fn.name, distribution, request.method, request.uri, request.querystring,
                                 request.client_ip, request.headers), block, response.status, response.status_description)
            known = self._known(key)
            if known is not None:
                result = apply_response_delta(response, list(known.went_on))
                if result is not None:
                    timing.add(self.answered_again(known, (time.perf_counter() - t0) * 1000.0))
                    return result.response
        # as for viewer-request: the engine builds the event from strings and may answer with a delta
        # (delta.response_fields, FunctionEngine.invoke_response); the JSON event serves what it cannot take
        fields = request_fields(request, distribution_domain=distribution.domain_name, distribution_id=distribution.id,
                                request_id=request_id)
        response_text = response_fields(response) if fields is not None else None
        if fields is not None and response_text is not None:
            texts = (fields, response_text)
            added: list[list[str]] = []

            def apply(names_and_values: list[str]) -> ResponseResult | None:
                added.append(names_and_values)
                return apply_response_delta(response, names_and_values)

            inv = self._run(fn, assoc, distribution, request_id, timing, lambda kvs: engine.invoke_response(
                *texts, apply, kvs=kvs))
            if inv.applied is not None:
                if key is not None and inv.memo:  # (a request and entry seen twice)
                    self._keep(key, fn, engine, assoc, inv, tuple(added[-1]))
                return inv.applied.response
            # the delta did not apply: the full result, against the event the function saw
            event = self._response_event(request, response, distribution, request_id)[0]
        else:
            event, raw_query = self._response_event(request, response, distribution, request_id)
            inv = self._run(fn, assoc, distribution, request_id, timing, lambda kvs: engine.invoke(
                event, raw_query=raw_query, kvs=kvs, edge_location_json="{}"))
        try:
            result = apply_response_result(response, event, inv.value)
        except FunctionError as err:
            self._failed(fn, assoc, err, self.stats[fn.name], distribution, request_id)
            raise
        return result.response

    def again(self, assoc: CffAssociation, distribution: Distribution, uri: str, querystring: str, client_ip: str,
              headers: Iterable[tuple[str, str]], *entry: object) -> Repeated | None:
        """What a GET of ``uri`` went on with after ``assoc``'s viewer-request function (or, with ``entry``: a cache
        entry's header block, status and description, the names and values its viewer-response function added) when
        the same request (every header spelled the same) was kept: ``Repeated.went_on``, counted by
        :meth:`answered_again`; None: :meth:`viewer_request_now` (``viewer_response_now``) runs it."""
        return self._known(_request_key(assoc.function_name, distribution, "GET", uri, querystring, client_ip, headers)
                           + entry)

    def _known(self, key: tuple[Any, ...]) -> Repeated | None:
        """What ``_repeated`` keeps for ``key`` while it is :meth:`current`; else None."""
        known = self._repeated.get(key)
        return known if known is not None and self.current(known) else None

    def current(self, known: Repeated) -> bool:
        """Whether a call would still lead where ``known`` says: nothing reloaded in the catalog since (a published
        function, a store's new snapshot: ``FunctionCatalog.loads``) and nothing forgotten by the engine (a rebuilt
        context, another snapshot loaded: ``memo_generation``)."""
        return known.loads == self.catalog.loads and known.engine.memo_generation == known.generation

    @staticmethod
    def answered_again(known: Repeated, wall_ms: float) -> str:
        """A kept answer used (:meth:`again`, or the same request inside a call; found in ``wall_ms``): counted as an
        invocation answered from memory; its Server-Timing entry (:meth:`_count`'s)."""
        stats = known.stats
        stats.invocations += 1
        stats.memo_hits += 1
        stats.utilization.append(known.utilization)
        return f"{known.timing}{wall_ms:.2f}"

    def _keep(self, key: tuple[Any, ...], fn: LiveFunction, engine: FunctionEngine, assoc: CffAssociation,
              inv: Invocation, went_on: tuple[Any, ...]) -> None:
        """Keep what a call the engine answered from memory led to while ``fn`` and ``engine`` are what a call would
        use now (``loads`` read first: a reload landing meanwhile leaves it stale, never current for an old function)."""
        loads = self.catalog.loads
        current = self._engines.get(fn.name)
        if (self.catalog.live(fn.name) is not fn or current is None or current[1] is not engine
                or not engine.holds(self.catalog.kvs(fn.kvs_arn) if fn.kvs_arn else None)):
            return
        timing = _timing_entry(assoc.event_type, fn.name, inv.compute_utilization, True)
        remember(self._repeated, key, Repeated(loads, engine, went_on, inv.compute_utilization, timing,
                                               self.stats[fn.name]), _REPEATED_MAX)

    def _resolved(self, assoc: CffAssociation) -> LiveFunction:
        fn = self.catalog.live(assoc.function_name)
        if fn is None:
            raise FunctionExecutionError(self.problem(assoc.function_name) or "", function=assoc.function_name,
                                         event_type=assoc.event_type)
        return fn

    def _engine_ready(self, fn: LiveFunction) -> FunctionEngine | None:
        """The engine of ``fn`` when it can run now (the common case, no await), else None."""
        cached = self._engines.get(fn.name)
        if cached is None or cached[0] != fn.etag:
            return None
        pending = self._preparing.get((fn.name, fn.etag))
        if pending is not None and not pending.done():
            return None
        engine = cached[1]
        return None if engine.needs_prepare(self.catalog.kvs(fn.kvs_arn) if fn.kvs_arn else None) else engine

    async def _load(self, fn: LiveFunction, assoc: CffAssociation) -> FunctionEngine:
        try:
            return await self._ready(fn)
        except Exception as exc:  # e.g. the store's snapshot does not fit in the function's memory
            raise FunctionExecutionError(f"the function could not be loaded: {exc!r}", function=fn.name,
                                         event_type=assoc.event_type) from None

    @staticmethod
    def _response_event(request: EdgeRequest, response: EdgeResponse, distribution: Distribution,
                        request_id: str) -> tuple[dict[str, Any], str | None]:
        return build_event(request, event_type=VIEWER_RESPONSE, distribution_domain=distribution.domain_name,
                           distribution_id=distribution.id, request_id=request_id, response=response)

    @staticmethod
    def _request_event(request: EdgeRequest, distribution: Distribution, request_id: str) -> tuple[dict[str, Any], str | None]:
        return build_event(request, event_type=VIEWER_REQUEST, distribution_domain=distribution.domain_name,
                           distribution_id=distribution.id, request_id=request_id)

    def _run(self, fn: LiveFunction, assoc: CffAssociation, distribution: Distribution, request_id: str,
             timing: ServerTiming, call: Callable[[KvsView | None], Invocation]) -> Invocation:
        """``call(kvs)`` (one engine invocation) with the function's current store snapshot, timed, counted and
        logged; raises ``FunctionExecutionError`` when it failed."""
        kvs = self.catalog.kvs(fn.kvs_arn) if fn.kvs_arn else None
        t0 = time.perf_counter()
        inv = call(kvs)
        stats = self._count(fn, assoc, timing, inv.compute_utilization, inv.memo, (time.perf_counter() - t0) * 1000.0)
        if not inv.ok:
            stats.execution_errors += 1
            self._write_log(fn, inv, distribution, request_id, error=inv.error)
            raise FunctionExecutionError(inv.error or "", function=fn.name, event_type=assoc.event_type)
        self._write_log(fn, inv, distribution, request_id)
        return inv

    def _count(self, fn: LiveFunction, assoc: CffAssociation, timing: ServerTiming, utilization: int, memo: bool,
               wall_ms: float) -> FunctionStats:
        """One invocation of ``fn`` (``memo``: answered from memory) in its Server-Timing entry and its counts."""
        timing.add(f"{_timing_entry(assoc.event_type, fn.name, utilization, memo)}{wall_ms:.2f}")
        stats = self.stats.get(fn.name)
        if stats is None:
            stats = self.stats[fn.name] = FunctionStats()
        stats.invocations += 1
        if memo:
            stats.memo_hits += 1
        stats.utilization.append(utilization)
        return stats

    def _failed(self, fn: LiveFunction, assoc: CffAssociation, err: FunctionError, stats: FunctionStats,
                distribution: Distribution, request_id: str) -> None:
        err.function, err.event_type = fn.name, assoc.event_type
        if isinstance(err, FunctionExecutionError):
            stats.execution_errors += 1
        else:
            stats.validation_errors += 1
        self._write_log(fn, None, distribution, request_id, error=f"{err.__class__.__name__}: {err.detail}")

    def _write_log(self, fn: LiveFunction, inv: Invocation | None, distribution: Distribution, request_id: str,
                   *, error: str | None = None) -> None:
        """The function's console output (and, edgelab's addition, the error and compute utilization), framed as
        CloudFront frames it; nothing for an invocation that logged nothing and succeeded (as on AWS)."""
        if self.log_sink is None or (error is None and (inv is None or not inv.logs)):
            return
        lines = list(inv.logs) if inv is not None else []
        if inv is not None and inv.logs_truncated:
            lines.append("(log output truncated at 10 KB)")
        if error is not None:
            lines.append(f"ERROR {error}")
        group, framed = function_log_lines(fn.name, request_id, distribution.id, lines)
        if inv is not None:
            framed[-1] += f" ComputeUtilization: {inv.compute_utilization}"
        self.log_sink(group, self._stream, framed, request_id)

    def metrics(self) -> dict[str, Any]:
        return {name: s.snapshot() for name, s in sorted(self.stats.items())}
