"""How a POP answers a viewer request: ``PopViewer``, the app of ``edge.cdn.server.viewer``'s protocol.

A parsed request becomes an ``EdgeRequest``; ``pipeline.begin`` answers a fresh hit synchronously, a warm
viewer-request hook is started without a task (``pipeline.start_viewer_request``; ``_hooked`` goes on when the
function's result comes) and ``pipeline.resume`` (in a task) does everything else; the response goes out decorated
with CloudFront's headers,
serialised by ``edge.cdn.server.wire`` (buffered) or chunk by chunk with the viewer's back-pressure (streamed).
CloudFront's refusals (413 over its URL and header limits, 400 for malformed input, HTTP/0.9 or another major
version refused on an HTTP/1.1 status line, 408 for a stalled body, 417 for an unknown expectation) get its error
page and a close, each cause logged once then rate-limited (``CauseLog``). WebSocket upgrades a behavior relays
are handed over to aiohttp's protocol, whose WebSocket support ``edge.cdn.server.websocket`` uses on both sides.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Coroutine
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

from aiohttp import web

from edge.cdn import lean, pipeline
from edge.cdn.cache.policy import fresh_age
from edge.cdn.errors import BadRequest, EdgeError, LambdaError
from edge.cdn.models import EdgeRequest, EdgeResponse, header_get
from edge.cdn.responses import HIT, HIT_TIMING, REPLACED, decorate, error_response, new_request_id
from edge.cdn.server import websocket
from edge.cdn.server.viewer import ViewerProtocol, ViewerRequest
from edge.cdn.server.wire import EMPTY_BODY_STATUS, framed, safe_value, serialize
from edge.cdn.steps import Exchange, Step
from edge.cdn.steps.viewer_request import admit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, Repeated
    from edge.cdn.config.plan import BehaviorPlan
    from edge.cdn.server.pop import PopState
    from edge.cdn.steps.cloudfront_functions import Ready
    from edge.cdn.steps.context import PopContext
    from edge.tasks import TaskOwner

__all__ = ["CLIENT_MAX_SIZE", "SERVER_KWARGS", "ParserLimits", "PopViewer", "debug_decorated", "refusal_bytes"]

log = logging.getLogger("edgelab.pop")


class ParserLimits(TypedDict):
    """aiohttp's HTTP parser limits (keyword arguments of ``web.Server``)."""

    max_line_size: int
    max_field_size: int
    max_headers: int


# aiohttp parser limits (tier nodes, WebSocket relays), above CloudFront's so that oversize input gets its 413.
SERVER_KWARGS: ParserLimits = {"max_line_size": 65536, "max_field_size": 32768, "max_headers": 1024}
_STREAM_DROP = frozenset({"content-length", "transfer-encoding"})  # a streamed body's framing is the POP's
CLIENT_MAX_SIZE = 64 * 1024 * 1024  # request bodies (POST/PUT through the POP)


class _Later(enum.Enum):
    """What ``PopViewer._plain_hit`` returns once the request is answered later, from a callback (``respond``'s
    None; its own None means "not answered here")."""

    LATER = 1


_LATER = _Later.LATER


class PopViewer:
    """The :class:`~edge.cdn.server.viewer.ViewerApp` of one POP listener (``scheme``: ``https`` on the HTTPS
    listener): a parsed request becomes an ``EdgeRequest``, ``pipeline.begin`` answers a fresh hit at once and
    ``pipeline.resume`` (in a task) everything else; the response goes out decorated with CloudFront's headers.
    CloudFront's refusals (413 over its URL and header limits, 400 for malformed input, HTTP/0.9 or another major
    version refused on an HTTP/1.1 status line) get its error page and a close, each cause logged once then
    rate-limited (``CauseLog``). A WebSocket upgrade the behavior relays is handed over to aiohttp's protocol
    (``edge.cdn.server.websocket`` terminates WebSockets with aiohttp on both sides)."""

    __slots__ = ("body_timeout", "guard", "handlers", "max_body", "relays", "scheme", "state", "upgrades")

    def __init__(self, state: PopState, scheme: str, handlers: TaskOwner) -> None:
        self.state = state
        self.scheme = scheme
        self.guard = state.guard
        self.handlers = handlers
        self.body_timeout = state.viewer.body_timeout_s
        self.max_body = CLIENT_MAX_SIZE
        self.upgrades: web.Server | None = None  # aiohttp's server for the connections handed over, made on demand
        self.relays: dict[Any, tuple[EdgeRequest, str, float]] = {}  # transport -> the upgrade it carries

    # --- ViewerApp --------------------------------------------------------------------------------------
    def parse_error(self, conn: ViewerProtocol, exc: Exception) -> EdgeError:
        return BadRequest(f"{type(exc).__name__}: {' '.join(str(exc).split()) or 'malformed request'}")

    def respond(self, conn: ViewerProtocol, req: ViewerRequest) -> bool | Coroutine[Any, Any, None] | None:
        state = self.state
        started = time.perf_counter()
        if (req.method == "GET" and req.body is None and req.refusal is None and req.expect is None
                and not req.upgrade and req.version[0] == 1 and not state.debug_headers):
            answered = self._plain_hit(conn, req, started)
            if answered is not None:
                return None if answered is _LATER else answered
        refusal = req.refusal
        cause: tuple[object, ...] | None = None  # the refusal's log line key (default: its status)
        if refusal is None and req.version[0] != 1:
            version = f"HTTP/{req.version[0]}.{req.version[1]}"  # HTTP/0.9, HTTP/2.0: refused, not answered in kind
            refusal, cause = BadRequest(f"{version} request"), ("version", version)
        request_id = new_request_id()
        if refusal is None:
            try:
                edge_req = self._edge_request(conn, req)
            except EdgeError as err:
                refusal = err
        if refusal is not None:
            state.ctx.stats.bad_requests += 1
            state.causes.report(logging.INFO, cause or ("viewer", refusal.status),
                                "refused a viewer request from %s: %d %s", conn.client_ip, refusal.status,
                                refusal.detail[:200])
            conn.write(refusal_bytes(state, refusal, started, request_id, req.method))
            return False
        if req.upgrade and self._relayed(conn, req, edge_req, request_id, started):
            return False
        if req.body is not None:
            edge_req.body = req.body[0] if len(req.body) == 1 else b"".join(req.body)
        interim = conn.interim if req.version == (1, 1) else None
        ctx = state.ctx  # read once: a distribution applied meanwhile serves the next request, not this one
        try:
            ex, response, at = pipeline.begin(ctx, edge_req, request_id, started, interim)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex, response, at = self._bug(edge_req, request_id, started, exc), None, EdgeError("internal error")
        if response is None and at is None and pipeline.start_viewer_request(
                ctx, ex, lambda result: self._hooked(conn, req, ctx, ex, result)):
            return None  # answered by _hooked, from the event loop
        return self._go_on(conn, req, ctx, ex, response, at)

    def _plain_hit(self, conn: ViewerProtocol, req: ViewerRequest,
                   started: float) -> bool | Coroutine[Any, Any, None] | _Later | None:
        """A GET answered from a fresh entry without the pipeline's objects (``lean.lean_plan``,
        ``lean.plain_hit``), or after the behavior's viewer-request CloudFront function (``_function_first``):
        the same bytes ``begin`` + ``_send`` write, the keep-alive verdict; ``_LATER`` once a viewer-request hook
        started without a task (``_hook_first``: ``_hooked`` answers); None, with nothing written or counted, when
        the request needs ``begin``."""
        target = req.target
        if "#" in target or target[:1] != "/":
            return None
        uri, _, query = target.partition("?")
        ctx = self.state.ctx
        selected = lean.lean_plan(ctx, uri, self.scheme)
        if selected is None:
            return None
        plan, uri = selected
        if plan.lean_function:
            return self._function_first(conn, req, ctx, plan, uri, query, started)
        if plan.lean_hook:
            return self._hook_first(conn, req, ctx, plan, uri, query, started)
        if plan.lean_response:
            return self._function_last(conn, req, ctx, plan, uri, query, started)
        hit = lean.plain_hit(ctx, plan, uri, query, req.headers)
        if hit is None:
            return None
        keep_alive = self._write_hit(conn, req, ctx, hit, new_request_id(),
                                     HIT_TIMING % ((time.perf_counter() - started) * 1000))
        if req.repeat and keep_alive:
            self._keep(req, ctx, plan, hit, (uri, query, req.headers), None)
        return keep_alive

    def _keep(self, req: ViewerRequest, ctx: PopContext, plan: BehaviorPlan, hit: lean.Hit,
              looked_up: tuple[str, str, Sequence[tuple[str, str]]],
              function: tuple[CloudFrontFunctionRunner, Repeated] | None) -> None:
        """A ``repeat`` request answered with ``hit`` (found for ``looked_up``: uri, query string, headers), the
        connection kept alive: its answer kept for the same read (``lean.keep_hit``, ``again``)."""
        entry, block, _ = hit
        req.kept = lean.keep_hit(ctx, plan, self.scheme, *looked_up, entry,
                                 framed(block, entry.status, req.version, True, len(entry.body)), function)

    def again(self, conn: ViewerProtocol, kept: lean.KeptHit) -> bytes | None:
        """A plain hit's answer kept by ``_plain_hit`` (``lean.keep_hit``), given again for the same read on the same
        connection (``ViewerApp.again``) while it is what ``_plain_hit`` would answer: the distribution the same
        (``PopState.apply_distribution`` swaps the context), no chaos scenario applied, the store's entry for the
        request the same one (looked up: marked recently used, as ``plain_hit`` does) and still fresh, the answer of
        the function it went through (``KeptHit.function``) still current; counted as ``_plain_hit`` (and
        ``lean.function_again`` / ``last_again``) count it, its bytes with their own id, age, Date and
        Server-Timing."""
        started = time.perf_counter()
        ctx = kept.ctx
        if ctx is not self.state.ctx or ctx.chaos is not None:
            return None
        entry = ctx.store.peek_variant(kept.variant)
        if entry is None or entry.served is not kept.served:  # (the same served form: the same entry)
            return None
        age = fresh_age(entry, ctx.clock())
        if age is None:
            return None
        function = kept.function
        function_entry = b"" if function is None else lean.function_kept(ctx, function)
        if function_entry is None:
            return None
        body = entry.body
        lean.count_plain_hit(ctx, entry.status, len(body), function is not None)
        return kept.data(age, self.state.http_date(), new_request_id(),
                         int((time.perf_counter() - started) * 10000.0 + 0.5), function_entry, body)

    def _function_first(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, plan: BehaviorPlan,
                        uri: str, query: str, started: float) -> bool | Coroutine[Any, Any, None] | None:
        """``_plain_hit`` of a ``BehaviorPlan.lean_function`` behavior: its function runs (``lean.function_first``)
        when it is ready (else None: ``begin`` loads it), and whatever the request it returns gets is answered here:
        a fresh hit as ``_plain_hit`` writes it, anything else as ``respond`` goes on after ``begin``; a request the
        function's runner kept is answered without an ``Exchange`` (``lean.function_again``)."""
        again = lean.function_again(ctx, plan, uri, query, conn.peer[0], req.headers)
        if again is not None:
            return self._write_again(conn, req, ctx, plan, again, started)
        ready = _ready(ctx, plan, Step.VIEWER_REQUEST)
        if ready is None:
            return None
        request, ex = self._lean_exchange(conn, req, plan, uri, query, started)
        try:
            response, at, hit = lean.function_first(ctx, ex, ready)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex, response, at, hit = self._bug(request, ex.request_id, started, exc), None, EdgeError("internal error"), None
        if hit is not None:
            return self._write_hit(conn, req, ctx, hit, ex.request_id, self._timing(ex), counted=True)
        return self._go_on(conn, req, ctx, ex, response, at)

    def _hook_first(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, plan: BehaviorPlan,
                    uri: str, query: str, started: float) -> _Later | None:
        """``_plain_hit`` of a ``BehaviorPlan.lean_hook`` behavior: its viewer-request hook starts without ``begin``
        (``lean.hook_first``) and ``_hooked`` answers later (``_LATER``); None, with nothing done, when the hook cannot
        start without a task (``begin`` runs it)."""
        ex = self._lean_exchange(conn, req, plan, uri, query, started)[1]
        return _LATER if lean.hook_first(ctx, ex, partial(self._hooked, conn, req, ctx, ex)) else None

    def _function_last(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, plan: BehaviorPlan,
                       uri: str, query: str, started: float) -> bool | Coroutine[Any, Any, None] | None:
        """``_plain_hit`` of a ``BehaviorPlan.lean_response`` behavior: a fresh hit (``lean.plain_hit``) goes through
        its viewer-response function when that is ready (``lean.function_last``) and out as ``begin``'s answer
        does; None, with nothing done, when there is no such hit or the function must be loaded first. A hit whose
        function's answer the runner kept is written as ``_plain_hit`` writes one (``lean.last_again``)."""
        hit = lean.plain_hit(ctx, plan, uri, query, req.headers)
        if hit is None:
            return None
        again = lean.last_again(ctx, plan, hit, uri, query, conn.peer[0], req.headers)
        if again is not None:
            return self._write_again(conn, req, ctx, plan, again, started)
        ready = _ready(ctx, plan, Step.VIEWER_RESPONSE)
        if ready is None:
            return None
        request, ex = self._lean_exchange(conn, req, plan, uri, query, started)
        try:
            response, at = lean.function_last(ctx, ex, hit, ready)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex, response, at = self._bug(request, ex.request_id, started, exc), None, EdgeError("internal error")
        return self._go_on(conn, req, ctx, ex, response, at)

    def _lean_exchange(self, conn: ViewerProtocol, req: ViewerRequest, plan: BehaviorPlan, uri: str, query: str,
                       started: float) -> tuple[EdgeRequest, Exchange]:
        """The ``EdgeRequest`` and ``Exchange`` ``begin`` would have made for a GET of ``plan``'s behavior."""
        peer = conn.peer
        # positional: keywords to a class go through a kwargs dict on Python 3.11 (~0.8 us for these two, timeit)
        request = EdgeRequest("GET", uri, query, req.headers, peer[0], None, None, peer[1], self.scheme, req.version)
        ex = Exchange(request, new_request_id(), started, plan)
        if req.version == (1, 1):
            ex.interim = conn.interim
        return request, ex

    def _go_on(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, ex: Exchange,
               response: EdgeResponse | None, at: pipeline.Resume) -> bool | Coroutine[Any, Any, None]:
        """What ``respond`` does after ``begin``: send its answer, or go on in ``pipeline.resume`` (a task)."""
        if response is None:
            return self._finish(conn, req, ctx, ex, at)
        sent = self._deliver(conn, req, response, ex)
        return sent if isinstance(sent, bool) else self._answer(conn, req, sent)

    def _write_hit(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext,
                   hit: lean.Hit, request_id: str, timing: str,
                   counted: bool = False) -> bool:
        """Write a ``lean.plain_hit`` (its entry's head cut once, ``wire.framed``; the POP's lines between) and
        count it (``counted``: ``begin`` counted the request); the keep-alive verdict."""
        entry, block, age = hit
        state = self.state
        lines = state.identity.decoration_lines(request_id=request_id, x_cache=HIT, server_timing=timing, age=age)
        body = entry.body
        keep_alive = req.keep_alive
        head = framed(block, entry.status, req.version, keep_alive, len(body))
        if head is None:  # plain_hit returns no entry whose status has no body (the only case framed declines)
            raise AssertionError(f"no framing for a {entry.status} entry")
        before, after, dated = head
        if dated is None:
            data = b"".join((before, lines.encode(), after, body))
        else:
            data = b"".join((before, lines.encode(), after, state.http_date().encode(), dated, body))
        lean.count_plain_hit(ctx, entry.status, len(body), counted)
        conn.write(data)
        return keep_alive

    def _write_again(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, plan: BehaviorPlan,
                     again: lean.Again, started: float) -> bool:
        """Write a hit after a CloudFront function whose answer its runner kept (``lean.function_again`` /
        ``last_again``: the hit, the function's Server-Timing entry) as ``_plain_hit`` writes one, the entry after
        the POP's own (``ServerTiming.render``'s value for a HIT); kept as ``_plain_hit`` keeps one."""
        hit, entry, whence = again
        timing = HIT_TIMING % ((time.perf_counter() - started) * 1000)
        keep_alive = self._write_hit(conn, req, ctx, hit, new_request_id(), f"{timing}, {entry}", counted=True)
        if req.repeat and keep_alive:
            self._keep(req, ctx, plan, hit, *whence)
        return keep_alive

    def _hooked(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, ex: Exchange,
                result: EdgeResponse | LambdaError | None) -> None:
        """The viewer-request hook ``pipeline.start_viewer_request`` ran without a task has its result: the rest of
        ``begin`` (a fresh hit is answered here and then: written as ``_plain_hit`` writes one when
        ``lean.hooked_hit`` finds it), else the rest in a task as for any request."""
        if result is None:
            try:
                hit = lean.hooked_hit(ctx, ex)
                answered = None if hit is None else self._write_hit(conn, req, ctx, hit, ex.request_id,
                                                                     self._timing(ex), counted=True)
            except Exception:
                self._broken(conn, req)
                return
            if answered is not None:
                conn.answered(answered)
                return
        try:
            response, at = pipeline.after_viewer_request(ctx, ex, result)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex, response, at = self._bug(ex.request, ex.request_id, ex.started, exc), None, EdgeError("internal error")
        sending = self._finish(conn, req, ctx, ex, at) if response is None else self._reply(conn, req, response, ex)
        if sending is not None and self.handlers.spawn(sending, name="viewer", answers_errors=True) is None:
            conn.abort()  # the POP is stopping

    def _reply(self, conn: ViewerProtocol, req: ViewerRequest, response: EdgeResponse,
               ex: Exchange) -> Coroutine[Any, Any, None] | None:
        """Send ``response``: None once answered (``conn.answered``, or the connection aborted after a bug while
        writing), else the coroutine that still has to send it (``_answer``)."""
        try:
            sent = self._deliver(conn, req, response, ex)
        except Exception:
            self._broken(conn, req)
            return None
        if isinstance(sent, bool):
            conn.answered(sent)
            return None
        return self._answer(conn, req, sent)

    # --- the request --------------------------------------------------------------------------------------
    def _edge_request(self, conn: ViewerProtocol, req: ViewerRequest) -> EdgeRequest:
        """ViewerRequest -> EdgeRequest; raises BadRequest (400) for a target that is not origin-form (CloudFront's
        size limits were checked by the parser)."""
        raw_path = req.target
        if "#" in raw_path:  # a fragment is not part of the request (rare: clients do not send one)
            uri, _, query = raw_path.partition("?")
            uri, query = uri.split("#", 1)[0], query.split("#", 1)[0]
        else:
            uri, _, query = raw_path.partition("?")
        if not uri.startswith("/"):
            raise BadRequest(f"request target {raw_path[:100]!r} is not origin-form")
        peer = conn.peer
        return EdgeRequest(req.method, uri, query, req.headers, peer[0], None, None, peer[1], self.scheme, req.version)

    def _bug(self, edge_req: EdgeRequest, request_id: str, started: float, exc: Exception) -> Exchange:
        self.state.causes.report(logging.ERROR, ("pipeline", type(exc).__name__), "unhandled error for %s %s",
                                 edge_req.method, edge_req.uri[:200], exc=exc)
        return Exchange(request=edge_req, request_id=request_id, started=started, x_cache="Error from cloudfront")

    async def _finish(self, conn: ViewerProtocol, req: ViewerRequest, ctx: PopContext, ex: Exchange,
                      at: pipeline.Resume) -> None:
        """Everything but a fresh hit (the request's task): the rest of the pipeline, then the response (streamed or
        not), then ``conn.answered``."""
        try:
            response = await pipeline.resume(ctx, ex, at)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex = self._bug(ex.request, ex.request_id, ex.started, exc)
            response = error_response(EdgeError("internal error"), ex.request_id)
        sending = self._reply(conn, req, response, ex)
        if sending is not None:
            await sending

    async def _answer(self, conn: ViewerProtocol, req: ViewerRequest, sending: Coroutine[Any, Any, bool]) -> None:
        """A response only ``_write`` sends (streamed, or with headers to check), then ``conn.answered``."""
        try:
            keep_alive = await sending
        except Exception:
            self._broken(conn, req)
            return
        conn.answered(keep_alive)

    @staticmethod
    def _broken(conn: ViewerProtocol, req: ViewerRequest) -> None:
        """A bug while writing (called in its ``except``): logged with its traceback; the connection cannot go on."""
        log.exception("viewer request %s %s failed", req.method, req.target[:200])
        conn.abort()

    # --- WebSocket upgrades -----------------------------------------------------------------------------
    def _relayed(self, conn: ViewerProtocol, req: ViewerRequest, edge_req: EdgeRequest, request_id: str,
                 started: float) -> bool:
        """Hand a WebSocket upgrade the behavior relays over to aiohttp's protocol (its handler ``_relay``); False
        for the normal path (a refusal, or a behavior that does not forward the handshake headers)."""
        if (header_get(edge_req.headers, "upgrade") or "").lower() != "websocket":
            return False
        try:
            plan = admit(self.state.ctx, Exchange(request=replace(edge_req), request_id=request_id, started=started))
        except EdgeError:
            return False  # the normal path refuses it, the same way
        if not websocket.wants_relay(plan):
            return False
        if self.upgrades is None:
            self.upgrades = web.Server(self._relay, access_log=None, **SERVER_KWARGS)
        assert conn.transport is not None
        self.relays[conn.transport] = (edge_req, request_id, started)
        conn.hand_over(self.upgrades(), req)
        return True

    async def _relay(self, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp's handler on a connection handed over: the WebSocket relay, then the connection closes."""
        state = self.state
        pending = self.relays.pop(request.transport, None)
        guard = state.guard
        conn = guard.begin(request.transport)
        try:
            answered = None
            if pending is not None:
                viewer, request_id, started = pending
                answered = await websocket.relay(state.ctx, state.origin_client, request, viewer, request_id,
                                                 started)
            if answered is None:  # nothing relayable on this connection any more
                answered = web.Response(status=400, text="Bad request.")
            answered.force_close()
            return answered
        finally:
            guard.end(conn)

    # --- writing ----------------------------------------------------------------------------------------
    def _deliver(self, conn: ViewerProtocol, req: ViewerRequest, response: EdgeResponse,
                 ex: Exchange) -> bool | Coroutine[Any, Any, bool]:
        """Send ``response`` (with the debug headers when switched on): the keep-alive verdict when it went out at
        once (``_send``), else the coroutine that sends it (``_write``)."""
        if self.state.debug_headers:
            response = debug_decorated(response, ex)
        keep_alive = self._send(conn, req, response, ex)
        return keep_alive if keep_alive is not None else self._write(conn, req, response, ex)

    def _timing(self, ex: Exchange) -> str:
        """The response's Server-Timing value, timed now."""
        total_s = time.perf_counter() - ex.started
        edge_s = total_s - ex.origin_seconds
        return ex.timing.render(ex.x_cache, edge_s if edge_s > 0.0 else 0.0, pop_code=self.state.identity.pop_code,
                                request_id=ex.request_id, total_seconds=total_s)

    def _send(self, conn: ViewerProtocol, req: ViewerRequest, response: EdgeResponse, ex: Exchange) -> bool | None:
        """Write a buffered ``response`` decorated with CloudFront's headers, serialised by ``edge.cdn.server.wire``
        (a cache entry's headers from their block serialised once per entry, the POP's own headers from
        ``PopIdentity.decoration_lines``); the keep-alive verdict, or None for what only ``_write`` sends (a
        streamed body, a header that needs checking line by line)."""
        body = response.body
        if not isinstance(body, bytes):
            return None
        state = self.state
        timing = self._timing(ex)
        if (ex.timing.entries or ex.timing.origin_value) and not safe_value(timing):
            return None
        meta = response.meta
        clean = meta.clean
        reason = response.status_description or None
        if reason is not None and ("\n" in reason or "\r" in reason):
            reason = None
        head_length = meta.content_length if req.method == "HEAD" else None
        block = meta.header_block if clean else None
        if block is not None and block.count != len(response.headers):
            block = None
        lines = state.identity.decoration_lines(request_id=ex.request_id, x_cache=ex.x_cache, server_timing=timing,
                                                age=ex.age)
        keep_alive = req.keep_alive
        data = serialize(req.method, req.version, keep_alive, response.status, reason,
                         () if block is not None else response.headers, body, state.http_date, block=block,
                         trailer=lines, content_length=head_length, drop=frozenset() if clean else REPLACED)
        if data is None:
            return None
        if head_length is None:
            state.ctx.stats.bytes_sent += len(body)
        conn.write(data)
        return keep_alive

    async def _write(self, conn: ViewerProtocol, req: ViewerRequest, response: EdgeResponse, ex: Exchange) -> bool:
        """What ``_send`` declines: a streamed body, sent chunk by chunk without holding it in memory (chunked on
        HTTP/1.1 when its length is unknown, close-delimited on HTTP/1.0), or a buffered one with headers that
        needed checking: framing headers that do not apply are dropped (as aiohttp's ``web.Response`` did),
        undecodable bytes go out as they came, a control character in a header is CloudFront's 500."""
        state = self.state
        timing = self._timing(ex)
        headers = decorate(response.headers, state.identity, request_id=ex.request_id, x_cache=ex.x_cache,
                           server_timing=timing, age=ex.age, clean=response.meta.clean)
        reason = response.status_description or None
        if reason is not None and not safe_value(reason):
            reason = None
        length = response.meta.content_length
        head = req.method == "HEAD"
        body = response.body
        keep_alive = req.keep_alive
        no_body = head or response.status in EMPTY_BODY_STATUS
        if isinstance(body, bytes):
            drop = {"transfer-encoding"} | ({"content-length"} if no_body else set())
            data = serialize(req.method, req.version, keep_alive, response.status, reason, headers, body,
                             state.http_date, content_length=length if head else None, drop=frozenset(drop),
                             undecodable=True)
            if data is None:
                state.causes.report(logging.ERROR, ("response", "header"), "a response to %s %s has a header "
                                    "that cannot be sent: answered 500", req.method, req.target[:200])
                data = refusal_bytes(state, EdgeError("response header cannot be sent"), ex.started, ex.request_id,
                                req.method)
                keep_alive = False
            elif not head:
                state.ctx.stats.bytes_sent += len(body)
            conn.write(data)
            return keep_alive
        try:
            chunked = length is None and not no_body and req.version == (1, 1)
            if length is None and not no_body and not chunked:
                keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
            data = serialize(req.method, req.version, keep_alive, response.status, reason, headers, b"",
                             state.http_date, trailer="Transfer-Encoding: chunked\r\n" if chunked else "",
                             content_length=None if no_body and not head else length, drop=_STREAM_DROP,
                             undecodable=True, streamed=True)
            if data is None:
                raise EdgeError("response header cannot be sent")
            conn.write(data)
            if not no_body:
                async for chunk in body:
                    if not chunk:
                        continue
                    conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                    state.ctx.stats.bytes_sent += len(chunk)
                    await conn.drain()
                if chunked:
                    conn.write(b"0\r\n\r\n")
        except (EdgeError, ConnectionError) as exc:
            # origin broke mid-body or the viewer went away: the only honest signal is to drop the connection
            log.info("stream for %s aborted: %r", req.target[:200], exc)
            conn.abort()
            return False
        finally:
            await response.aclose()
        return keep_alive


def _ready(ctx: PopContext, plan: BehaviorPlan, step: Step) -> Ready | None:
    """``plan``'s CloudFront function for ``step`` when it can run at once; None when it must be loaded first, or
    cannot run at all (``begin`` then loads it, or answers its 503)."""
    functions = ctx.functions
    if functions is None:
        return None
    try:
        return functions.prepared(plan.functions[step])
    except EdgeError:  # not associable
        return None


def debug_decorated(response: EdgeResponse, ex: Exchange) -> EdgeResponse:
    """``[edge] debug_headers``: the step sequence, the matched behavior and the reason of an error page, as
    ``X-Edgelab-*`` headers (on a copy: a cached response's header list is shared with the cache entry)."""
    extra = [("X-Edgelab-Trace", ",".join(ex.trace))]
    if ex.plan is not None:
        extra.append(("X-Edgelab-Behavior", ex.plan.behavior.path_pattern))
    if ex.error_detail:
        extra.append(("X-Edgelab-Error", " ".join(ex.error_detail.split())[:1000]))
    return replace(response, headers=[*response.headers, *extra])


def refusal_bytes(state: PopState, err: EdgeError, started: float, request_id: str | None = None,
             method: str = "GET") -> bytes:
    """CloudFront's error page for ``err`` on an HTTP/1.1 status line with ``Connection: close`` (the caller's
    connection is closed after it, whatever the request asked for); to a HEAD request, its head only."""
    request_id = request_id or new_request_id()
    ex = Exchange(request=EdgeRequest(method="GET", uri="/", querystring="", headers=[], client_ip=""),
                  request_id=request_id, started=started, x_cache=err.x_cache)
    response = error_response(err, request_id)
    total_s = time.perf_counter() - started
    timing = ex.timing.render(ex.x_cache, total_s, pop_code=state.identity.pop_code, request_id=request_id,
                              total_seconds=total_s)
    headers = decorate(response.headers, state.identity, request_id=request_id, x_cache=err.x_cache,
                       server_timing=timing, clean=True)
    body = response.body
    assert isinstance(body, bytes)
    head = method == "HEAD"
    data = serialize("HEAD" if head else "GET", (1, 1), False, err.status, None, headers, body,
                     state.http_date, content_length=len(body) if head else None)
    assert data is not None  # a CloudFront error page is plain ASCII
    return data
