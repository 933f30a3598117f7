"""The CloudFront Functions engine: QuickJS (quickjs-ng) embedded in the POP process, one context per function.

Engine choice (measured on this 2-core machine, medians of 5,000-20,000 calls, warm; the call builds nothing in
Python: one viewer-request function that adds a header, event passed as JSON text and returned as JSON text):

=========================================  ===============  ==================================================
candidate                                  per call (p50)   limits / notes
=========================================  ===============  ==================================================
quickjs-ng 0.17 (PyPI ``quickjs-ng``)      9 µs             own JSRuntime per context: memory limit (bytes),
  in process                                                CPU time limit (stops ``for(;;){}`` within 1 ms of
                                                            the limit), stack limit; process survives both
mini-racer 0.14 (V8, PyPI ``mini-racer``)  164 µs           timeout and heap limit work, but every call hops to
  in process                                                V8's own thread; after an OOM stop the interpreter
                                                            hung at exit (killed); heap limit is isolate-wide,
                                                            far above CloudFront's 2 MB
njs 0.7.9 (Debian ``njs``) CLI             2,781 µs         a process per call (the CLI has no request loop);
                                                            the engine whose error texts CloudFront shows —
                                                            used as the checker's oracle in tests instead
=========================================  ===============  ==================================================

With everything edgelab adds (``python -m bench cff``, medians of 20,000 calls on the same machine):
``FunctionEngine.invoke`` of that function 18.1 µs; the whole viewer-request step (event from an ``EdgeRequest``
+ invoke + ``apply_request_result``) 35.7 µs [target <= 50 µs added p50]; one ``await kvs.get()`` 2.5 µs more
[target <= 20 µs]; one SHA-256 in ``require('crypto')`` (JavaScript) 97 µs.

The viewer-request fast path (``invoke_request``; issue 13's performance work). Counted with callgrind, the
JSON across the boundary was most of a call: in a POP, ``JSON.stringify`` of the result ~70,000 instructions and
``JSON.parse`` of the event ~45,000 of the call's ~143,000, and in Python ``build_event`` ~22,000, ``orjson``
~7,000 and ``apply_request_result`` ~107,000 (it re-reads and validates every header). Now the engine builds the
event itself from the request's strings joined by NUL (``delta.request_fields``; ``prelude.js``,
``buildRequestEvent``, the same event as ``build_event``: tests compare them), and when the function returned
the event's own request with at most a new uri and appended headers (plain data, nothing logged, no origin
helper) it answers with ``"\x02" n:uri \x01 name \x01 value …`` only; ``delta.apply_request_delta`` validates and
merges just that (~65,000 instructions: the visible headers once, the new ones). Any other result comes back as
JSON and goes through ``apply_request_result`` as before (``test_request_delta`` compares both paths on random
requests and results). Per call (callgrind, 2,000 calls, harness included): before 22,300 (event) + 6,600
(JSON) + 186,600 (invoke) + 106,800 (apply) = ~322,000 instructions; after 7,000 (fields) + 140,600
(``invoke_request``) + 64,600 (apply) = ~212,000. Allocations are what a QuickJS call mostly pays for (malloc and
free under the memory limit's accounting cost about as much as the bytecode): the event's records are flat arrays
made on first use, the per-call arrays are emptied rather than replaced (172,000 -> 140,600). What stays: the
event's ~15 objects, ``Object.keys`` of the returned ones, re-running the function's top-level code per call (the
isolation above); an empty handler on a tiny event costs ~77,000 through ``invoke``, a third of it
``JSON.stringify`` of the five-field result. Through a POP (``python -m bench.cff_instructions``) the function's
cost per cache hit went from +352,600 to +248,300 instructions (plain hit ~207,000-212,000): 36.9 % -> 46.1 % of
plain-hit throughput, short of issue 13's 70 % (README, Performance).

Viewer-response events the same way (``invoke_response``; ``delta.response_fields``: a response without
Set-Cookie, hidden headers or repeated names): the engine builds the event and, when the function returned the
event's response with header names added and nothing else changed, answers with those; on a cache hit the entry's
serialised header lines stay and only the added ones are serialised. Later changes (2026-12-05, fifth stop;
``python -m bench.cff_instructions``, POP instructions per cache hit, plain ~142,000): the header-adding
viewer-request function +220,600 -> +183,800 (the delta reads the request and its entries field by field instead
of ``Object.keys`` per object, a "plain" request's headers are merged without grouping, no heap-size read per 64
calls); AWS's security-headers viewer-response example +715,200 -> +332,400 (16.6 % -> 30.0 % of plain-hit
throughput).

Only QuickJS fits the issue's budget (<= 50 µs added per viewer-request call; KVS get <= 20 µs). quickjs-ng is
the maintained fork of Bellard's QuickJS (the PetterS ``quickjs`` binding is archived); the PyPI wrapper is a
thin, recently released binding (a single maintainer: pin it, and keep this module the only place that
imports it). Its one restriction shapes the design: Python callables cannot be called while a time limit is set
("Can not call into Python with a time limit set"), so nothing here calls back into Python during a call: the
runtime surface (crypto, querystring, Buffer, the ``cloudfront`` module) is JavaScript in ``prelude.js`` and the
function's KeyValueStore is mirrored into its context (a null-prototype object, reloaded when the store's change
generation moves), which makes ``kvs.get`` a property lookup inside the engine.

Isolation (cloudfront-function-restrictions; functions-javascript-runtime-10/-20):

- one QuickJS context (and JSRuntime) per function: functions share nothing;
- the function's top-level code runs again on every call (it is compiled as the body of a factory function), so
  its variables never survive a call; the prelude freezes every intrinsic and the global object, so a call cannot
  leave state in built-ins either. CloudFront (njs) gives each request a fresh VM instead; the difference a
  function can observe: changing a built-in (``String.prototype.x = …``, ``globalThis.x = …``) throws
  ``TypeError`` here (overriding common members such as ``toString``/``name``/``message`` on one's own objects
  still works: the prelude turns them into accessors);
- no timers, no network, no file system, no ``process``: QuickJS has none of the ``os``/``std`` modules loaded,
  and the prelude deletes every global the allow-list does not name (``Map``, ``Proxy``, ``queueMicrotask``…);
  ``eval`` and the ``Function`` constructors throw; every ``Date`` read returns the call's start time;
- limits per call: ``MEMORY_BYTES`` (2 MB) above the context's resting size (prelude + code + mirrored store),
  ``HARD_TIME_LIMIT_MS`` of CPU time, a 256 KB stack. A stopped call fails with ``FunctionExecutionError`` and
  the context is rebuilt before the next call.

Repeated events (``invoke_request`` / ``invoke_response``; ``memo``, on by default; ``[edge] cff_memo = false`` turns
it off). A CloudFront function keeps nothing from one request to the next (a fresh VM per request on AWS,
cloudfront-function-restrictions; here the top-level code runs again on frozen intrinsics), so what a call returns is
a function of what it can read: its event, the store's snapshot, ``cf.edgeLocation``, the time, ``Math.random``. The
prelude marks a call ``varied`` when it reads the time (a ``Date`` made or called without a value, ``Date.now()``),
``Math.random()`` or the event's ``context.requestId`` (an accessor, the only field that differs between two requests
whose other fields are the same). A call that read none of them, returned a delta (so logged nothing and called no
origin helper) and used under half the hard time limit is remembered: the same event again (the request's and
response's fields but the request id, and the same ``cf.edgeLocation``) gets the same delta without running the
function, applied to its own request or response as a call's would be, with the call's CPU time and compute
utilization; the ``Invocation`` says ``memo``. What is remembered is forgotten when the store's snapshot changes or
the context is rebuilt, and all of it once 1,024 events are remembered; an event whose fields are over 4 KB is not (a
few MB at most per function); a new version of the code is a new engine. A viewer sees the same bytes
(tests/cdn/cloudfront_functions/test_memo.py runs each case with and without); the function's metrics count the
invocation, its logs get nothing (as for any call that logged nothing). Measured through a POP (``python -m
bench.cff_instructions``): the header-adding viewer-request function +207,300 -> +124,300 instructions per cache hit;
AWS's security-headers viewer-response example +376,500 -> +181,200. A load whose events all differ (a header with a
counter, a cookie per user) runs every call.

Compute utilization (TestResult.ComputeUtilization, "the amount of time that the function took to run as a
percentage of the maximum allowed time"): CPU time of the thread while in the engine, as a percentage of
``COMPUTE_BUDGET_MS`` (AWS does not publish the maximum), rounded up, capped at 100.

Calls are synchronous and bounded by the hard limit: at 9 µs a call costs less than handing it to a thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson
import quickjs

from edge.cdn.cloudfront_functions.checker import CheckResult, check_code
from edge.cdn.cloudfront_functions.limits import (
    COMPUTE_BUDGET_MS,
    HARD_TIME_LIMIT_MS,
    MEMORY_BYTES,
    RUNTIME_2,
)
from edge.cdn.memo import remember

__all__ = ["EngineLimits", "FunctionEngine", "Invocation", "KvsView"]

_STACK_BYTES = 256 * 1024
# Garbage: QuickJS frees by reference counting as values die; only cycles wait for its collector, which scans the
# whole heap (the frozen prelude included: 2-4 ms a run). QuickJS runs it by itself when an object allocation finds
# the heap above its threshold (1.5x the size the last run left), so a function's cycles never pile up to its memory
# limit (tests/cdn/cloudfront_functions/test_engine.py); nothing here reads the heap size per call (``ctx.memory()``
# walks the whole heap: ~140,000 instructions).
# What an allocation failure looks like once caught: QuickJS's "out of memory" InternalError, or ``null`` when it
# could not even allocate that error object. (A function that itself throws null is reported as out of memory.)
_OOM_TEXTS = frozenset({"InternalError: out of memory", "Error: null"})
_MEMO_MAX = 1024  # repeated events remembered per function (all forgotten when full)
MEMO_FIELDS_MAX = 4096  # an event whose fields are longer is not remembered (what is kept stays a few MB)


def _without_request_id(fields: str) -> str:
    """``delta.request_fields`` without its third field, the request id (the two before it hold no NUL)."""
    start = fields.index("\0", fields.index("\0") + 1) + 1
    return fields[:start] + fields[fields.index("\0", start):]


@lru_cache(maxsize=1)
def _prelude_source() -> str:
    return resources.files("edge.cdn.cloudfront_functions").joinpath("prelude.js").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class EngineLimits:
    memory_bytes: int = MEMORY_BYTES
    hard_time_limit_ms: float = HARD_TIME_LIMIT_MS
    compute_budget_ms: float = COMPUTE_BUDGET_MS


@dataclass(frozen=True, slots=True)
class KvsView:
    """What a function sees of its key value store: an immutable snapshot at one change generation."""

    store_id: str  # the id in the store's ARN (``cf.kvs(id)`` may name it)
    generation: int
    data: dict[str, str]
    meta: dict[str, Any]  # {creationDateTime, lastUpdatedDateTime, keyCount}


@dataclass(slots=True)
class Invocation:
    """The outcome of one call.

    ``error`` is CloudFront's text for an execution failure (``TypeError: …``, ``SyntaxError: … in 3``), or None;
    ``value`` is what the handler returned (already JSON-decoded); ``origin_ops`` the recorded calls to the
    ``cloudfront`` module's origin helpers, in order, as ``[name, arg1, arg2]``.
    """

    value: Any = None
    error: str | None = None
    limit_exceeded: str | None = None  # "time" | "memory" when the engine stopped the call
    logs: list[str] = field(default_factory=list)
    logs_truncated: bool = False
    origin_ops: list[list[Any]] = field(default_factory=list)
    cpu_ns: int = 0
    compute_utilization: int = 0
    applied: Any = None  # invoke_request: what apply_delta made of the result (``value`` is then None)
    memo: bool = False  # answered from memory: the same event's earlier call (FunctionEngine, "Repeated events")

    @property
    def ok(self) -> bool:
        return self.error is None


class FunctionEngine:
    """One CloudFront function's code, compiled in its own QuickJS context. Thread-safe (calls serialise)."""

    def __init__(self, name: str, code: str, runtime: str, *, limits: EngineLimits | None = None,
                 memo: bool = True) -> None:
        self.name = name
        self.code = code
        self.runtime = runtime
        self.limits = limits or EngineLimits()
        self.check: CheckResult = check_code(code, runtime)
        self._lock = threading.Lock()
        self._ctx: Any = None
        self._driver: Any = None
        self._kvs_generation: int | None = None
        self._kvs_store_id: str | None = None
        self._cu_unit_ns = self.limits.compute_budget_ms * 10_000  # 1 % of the compute budget
        self.rebuilds = 0
        # Repeated events (see the module docstring): (cf.edgeLocation's JSON, the request's fields without the
        # request id, the response's fields or None) -> (the delta, its call's CPU time and compute utilization)
        self.memo = memo
        self._memo: dict[tuple[str, str, str | None], tuple[str, int, int]] = {}
        self._memo_cpu_ns = int(self.limits.hard_time_limit_ms * 500_000)  # half the hard limit: not near it
        self.memo_hits = 0
        self.memo_generation = 0  # moves whenever what is remembered is forgotten (see holds)

    # ------------------------------------------------------------------ setup
    def _wrapped_source(self) -> str:
        code = self.code
        imp = self.check.cloudfront_import
        if imp is not None:
            raw = code.encode("utf-8")
            stmt = raw[imp.start_byte : imp.end_byte].decode("utf-8")
            binding = f"var {imp.name} = __cf_module;"
            # same line count (the import is on the first line), so error line numbers stay the user's
            binding += " " * max(0, len(stmt) - len(binding)) + "\n" * stmt.count("\n")
            code = (raw[: imp.start_byte].decode("utf-8") + binding + raw[imp.end_byte :].decode("utf-8"))
        # The prefix shares the first line with the user's code: reported line numbers are the user's.
        return (
            "(function (__cf_module, require, console) {'use strict';"
            + code
            + "\n;return typeof handler === 'function' ? handler : undefined; })"
        )

    def _build(self, kvs: KvsView | None) -> None:
        ctx = quickjs.Context()
        ctx.set_max_stack_size(_STACK_BYTES)
        driver = ctx.eval("(" + _prelude_source() + ")(" + orjson.dumps(self.runtime).decode() + ")")
        factory = ctx.eval(self._wrapped_source())
        driver("define", factory)
        self._ctx, self._driver = ctx, driver
        self._load_kvs(kvs)

    def _load_kvs(self, kvs: KvsView | None) -> None:
        ctx = self._ctx
        ctx.set_memory_limit(-1)
        if kvs is None:
            self._driver("loadKvs", None, None, "")
        else:
            self._driver("loadKvs", orjson.dumps(kvs.data).decode(), orjson.dumps(kvs.meta).decode(), kvs.store_id)
        ctx.gc()
        self._forget()  # what a call answered may have come from the store
        self._kvs_generation = None if kvs is None else kvs.generation
        self._kvs_store_id = None if kvs is None else kvs.store_id
        resting = ctx.memory()["malloc_size"]
        ctx.set_memory_limit(resting + self.limits.memory_bytes)
        ctx.set_time_limit(self.limits.hard_time_limit_ms / 1000.0)

    def needs_prepare(self, kvs: KvsView | None = None) -> bool:
        """Whether the next call would first build the context (or reload the store's snapshot into it): work of
        tens of milliseconds (the prelude is evaluated) that a server does in a thread with :meth:`prepare`."""
        if not self.check.ok:
            return False
        return not self.holds(kvs)

    def prepare(self, kvs: KvsView | None = None) -> None:
        """Build the context and load ``kvs`` now, so that the next :meth:`invoke` only runs the function.
        Safe from any thread (calls serialise on the engine's lock); measured: ~60 ms for a build."""
        if not self.check.ok:
            return
        with self._lock:
            if self._ctx is None:
                self._build(kvs)
                self.rebuilds += 1
            elif not self.holds(kvs):
                self._load_kvs(kvs)

    def _drop(self) -> None:
        self._ctx = self._driver = None
        self._kvs_generation = None
        self._forget()

    def _forget(self) -> None:
        self._memo.clear()
        self.memo_generation += 1

    def holds(self, kvs: KvsView | None) -> bool:
        """Whether a call with ``kvs`` would run in the context as it is (built, with that snapshot of the store;
        else it builds or reloads first: :meth:`needs_prepare`): a caller that keeps what a call answered from memory
        led to (``Invocation.memo``) may reuse it while this holds and ``memo_generation`` has not moved."""
        return self._ctx is not None and (None if kvs is None else kvs.generation) == self._kvs_generation and (
            kvs is None or kvs.store_id == self._kvs_store_id)

    # ------------------------------------------------------------------ calls
    def invoke(
        self,
        event: dict[str, Any],
        *,
        raw_query: str | None = None,
        kvs: KvsView | None = None,
        edge_location: dict[str, str] | None = None,
        start_ms: int | None = None,
        edge_location_json: str | None = None,
    ) -> Invocation:
        """Run the handler on ``event`` (a CloudFront Functions event object).

        ``raw_query`` backs ``request.rawQueryString()`` (2.0; None = the URL had no ``?``); ``kvs`` is the
        associated store's current snapshot; ``edge_location`` is ``cf.edgeLocation`` (viewer-request only);
        ``start_ms`` what every ``Date`` read returns (default: now); ``edge_location_json``, when given, is
        ``edge_location`` already serialised (a server passes its own once instead of per call).
        """
        return self._call("invoke", event, raw_query, kvs, edge_location, start_ms, edge_location_json, None)

    def invoke_request(
        self,
        fields: str,
        apply_delta: Callable[[str, list[str], bool], Any],
        *,
        kvs: KvsView | None = None,
        edge_location_json: str = "{}",
        start_ms: int | None = None,
    ) -> Invocation:
        """:meth:`invoke` for a viewer-request event the engine builds itself from ``fields``
        (``delta.request_fields``: the request's strings joined by NUL, no JSON) and whose result it may hand back
        as a delta.

        When the handler returned the event's request with at most its uri set and new headers appended (and
        logged nothing, called no origin helper), the engine sends back only the uri and ``[name, value, …]`` and
        this calls ``apply_delta(uri, added, plain)`` (``delta.apply_request_delta`` bound to the request; ``plain``
        as that function says): a non-None
        answer is the Invocation's ``applied`` (``value`` stays None). Otherwise, or when ``apply_delta`` answers
        None (not provably valid), ``value`` is the full result, as :meth:`invoke` returns it.
        """
        if not self.check.ok:
            return Invocation(error=self.check.first_error)
        start = int(time.time() * 1000) if start_ms is None else start_ms
        with self._lock:
            return self._invoke_locked("invokeRequest", fields, None, kvs, edge_location_json, start, apply_delta)

    def invoke_response(
        self,
        fields: str,
        response_fields: str,
        apply_delta: Callable[[list[str]], Any],
        *,
        kvs: KvsView | None = None,
        start_ms: int | None = None,
    ) -> Invocation:
        """:meth:`invoke` for a viewer-response event the engine builds itself from the request's ``fields``
        (``delta.request_fields``) and ``response_fields`` (``delta.response_fields``), whose result it may hand
        back as a delta: when the handler returned the event's response with header names added and nothing else
        changed (and logged nothing), this calls ``apply_delta(added)`` (``delta.apply_response_delta`` bound to the
        response; ``added`` = ``[name, value, …]``); a non-None answer is the Invocation's ``applied``. Otherwise
        ``value`` is the full result, as :meth:`invoke` returns it."""
        if not self.check.ok:
            return Invocation(error=self.check.first_error)
        start = int(time.time() * 1000) if start_ms is None else start_ms
        with self._lock:
            return self._invoke_locked("invokeResponse", fields, response_fields, kvs, "", start, apply_delta)

    def request_event_json(self, fields: str) -> str:
        """The event :meth:`invoke_request` builds from ``fields``, as JSON (tests compare it with ``build_event``'s)."""
        with self._lock:
            if self._ctx is None:
                self._build(None)
            return str(self._driver("requestEvent", fields))

    def response_event_json(self, fields: str, response_fields: str) -> str:
        """The event :meth:`invoke_response` builds, as JSON (tests compare it with ``build_event``'s)."""
        with self._lock:
            if self._ctx is None:
                self._build(None)
            return str(self._driver("responseEvent", fields, response_fields))

    def _call(self, op: str, event: dict[str, Any], raw_query: str | None, kvs: KvsView | None,
              edge_location: dict[str, str] | None, start_ms: int | None, edge_location_json: str | None,
              apply_delta: Callable[[str, list[str], bool], Any] | None) -> Invocation:
        if not self.check.ok:
            # functions-event-structure / test-function: such code is accepted at create time and fails here
            return Invocation(error=self.check.first_error)
        event_json = orjson.dumps(event).decode()
        start = int(time.time() * 1000) if start_ms is None else start_ms
        loc = edge_location_json if edge_location_json is not None else orjson.dumps(edge_location or {}).decode()
        with self._lock:
            return self._invoke_locked(op, event_json, raw_query, kvs, loc, start, apply_delta)

    def _invoke_locked(self, op: str, payload: str, second: str | None, kvs: KvsView | None, loc: str, start: int,
                       apply_delta: Callable[..., Any] | None) -> Invocation:
        """One call of the driver: ``invoke`` (``payload`` the event as JSON, ``second`` the raw query string),
        ``invokeRequest`` (``payload`` the request's fields, ``second`` None) or ``invokeResponse`` (``payload`` and
        ``second`` the request's and the response's fields), the last two with their ``apply_delta``."""
        if self._ctx is None:
            self._build(kvs)
            self.rebuilds += 1
        elif not self.holds(kvs):
            self._load_kvs(kvs)
        key = None
        if apply_delta is not None and self.memo and len(payload) + len(second or "") <= MEMO_FIELDS_MAX:
            key = (loc, _without_request_id(payload), second)
            known = self._memo.get(key)
            if known is not None:
                applied = self._applied(known[0], second, apply_delta)
                if applied is not None:
                    self.memo_hits += 1
                    return Invocation(None, None, None, [], False, [], known[1], known[2], applied, True)
        driver = self._driver
        cpu0 = time.thread_time_ns()
        try:
            if apply_delta is None:
                out = driver(op, payload, second, start, loc)
            elif second is None:
                out = driver(op, start, loc, payload)
            else:
                out = driver(op, start, payload, second)
            if out is None:  # an async handler: run its jobs until the promise settles, within the same budget
                ctx = self._ctx
                limit_ns = int(self.limits.hard_time_limit_ms * 1_000_000)
                while ctx.execute_pending_job():
                    if time.thread_time_ns() - cpu0 > limit_ns:
                        raise quickjs.JSException("InternalError: interrupted")
                out = driver("settle")
        except quickjs.JSException as exc:
            cpu = time.thread_time_ns() - cpu0
            return self._stopped(str(exc), cpu)
        except quickjs.StackOverflow:
            cpu = time.thread_time_ns() - cpu0
            self._drop()
            return Invocation(error="RangeError: Maximum call stack size exceeded", cpu_ns=cpu,
                              compute_utilization=self._utilization(cpu))
        cpu = time.thread_time_ns() - cpu0
        if apply_delta is not None and out[0] < "\x04":  # a delta (_applied)
            applied = self._applied(out, second, apply_delta)
            if applied is not None:
                utilization = self._utilization(cpu)
                if key is not None and out[1] == "=" and cpu < self._memo_cpu_ns:
                    remember(self._memo, key, (out, cpu, utilization), _MEMO_MAX)
                return Invocation(None, None, None, [], False, [], cpu, utilization, applied)
            out = driver("full")
        result = orjson.loads(out)
        inv = Invocation(
            logs=result.get("logs", []),
            logs_truncated=bool(result.get("truncated")),
            origin_ops=result.get("origin", []),
            cpu_ns=cpu,
            compute_utilization=self._utilization(cpu),
        )
        if result.get("ok"):
            inv.value = result.get("value")
            return inv
        error = result.get("error") or "Error: unknown error"
        if error in _OOM_TEXTS:  # QuickJS's allocation failure, caught on its way out of the handler
            stopped = self._stopped("out of memory", cpu)
            stopped.logs, stopped.logs_truncated = inv.logs, inv.logs_truncated
            return stopped
        inv.error = error
        return inv

    @staticmethod
    def _applied(out: str, second: str | None, apply_delta: Callable[..., Any]) -> Any:
        """What ``apply_delta`` makes of the delta ``out``: ``\\x02`` or ``\\x03`` (a plain request; always ``\\x03``
        for a response), ``=`` when the call read nothing that varies between requests (prelude.js, ``varied``), the
        number of names and values, for a request ``:`` and its uri, then each name and value, ``\\x01``-joined; None
        when it is not a delta after all (a ``\\x01`` inside a string) or ``apply_delta`` found it not provably
        valid."""
        added = out.split("\x01")
        head = added.pop(0)
        count, _, uri = head[2 if head[1:2] == "=" else 1:].partition(":")
        if len(added) != 2 * int(count):
            return None
        if second is None:  # invokeRequest: the uri, and whether the request is plain
            return apply_delta(uri, added, head[0] == "\x03")
        return apply_delta(added)

    def _stopped(self, text: str, cpu: int) -> Invocation:
        """The engine (not the function) stopped the call: time or memory limit. The context is rebuilt."""
        first = text.strip().splitlines()[0] if text.strip() else "null"
        self._drop()
        if "interrupted" in first:
            return Invocation(
                error=f"Error: the function exceeded the maximum allowed compute time ({self.limits.hard_time_limit_ms:g} ms)",
                limit_exceeded="time", cpu_ns=cpu, compute_utilization=100,
            )
        if "out of memory" in first or first == "null":
            label = "MemoryError" if self.runtime != RUNTIME_2 else "InternalError"
            return Invocation(
                error=f"{label}: the function exceeded its memory limit ({self.limits.memory_bytes // 1024} KB)",
                limit_exceeded="memory", cpu_ns=cpu, compute_utilization=self._utilization(cpu),
            )
        return Invocation(error=first, cpu_ns=cpu, compute_utilization=self._utilization(cpu))

    def _utilization(self, cpu_ns: int) -> int:
        pct = math.ceil(cpu_ns / self._cu_unit_ns)
        return 0 if pct < 0 else 100 if pct > 100 else pct

    def close(self) -> None:
        with self._lock:
            self._drop()
