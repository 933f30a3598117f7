"""The POP server: the aiohttp boundary of one edge location and its runner helpers.

* ``start_pop(...)`` builds the POP's state (``PopState``) and serves it with aiohttp's low-level ``web.Server``
  (``make_viewer_server``: one catch-all handler, no router) on a TCPSite, plus the admin app on a UnixSite;
  ``RunningPop.stop()`` closes both, then cancels and awaits the background refresh tasks and closes the origin
  ClientSession. ``run_pop(...)`` does that and waits until cancelled. This is the one way a POP is served: a
  ``web.Application`` with a catch-all route costs ~28,000 more instructions per request (+13 % on a cache hit,
  +7 % on a miss; ``bench.pop_instructions``, net of idle) for routing the POP does not use.
* ``serve_viewer(state, request)`` answers ``Expect`` (RFC 9110 §10.1.1, as aiohttp's router would), turns the
  request into an ``EdgeRequest``, runs ``pipeline.handle`` and writes the response decorated with CloudFront's
  headers; buffered responses are serialised by ``edge.cdn.server.wire`` (the bytes ``web.Response`` would send,
  cache entries' headers serialised once per entry).
* Viewer input limits (contract / CloudFront quotas): URL over 8,192 bytes or request headers over 20,480
  bytes -> 413 with the CloudFront error page, and the connection is closed, as CloudFront does ("Maximum length
  of a request and maximum length of a URL", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
  RequestAndResponseBehaviorCustomOrigin.html). aiohttp's own parser limits are raised above those
  (``SERVER_KWARGS``) so that it does not answer first; a line over even those (a 100 KiB URL) is answered the same
  413 (``ViewerHandler.handle_error``), so every over-long URL gets one answer. Malformed requests get CloudFront's
  400 page and a close; an HTTP/0.9 request (``GET /`` without a version), or one claiming another major
  version, is refused with that 400 on an HTTP/1.1 status line, never answered in kind. Each refusal cause is
  logged once, then rate-limited (``CauseLog``).
* Viewer connections: ``ViewerServer`` runs every accepted connection through ``edge.cdn.server.limits``
  (``[viewer]`` settings: connection budget, header / body / keep-alive timeouts).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from edge.cdn import pipeline
from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.policy import PolicyOptions
from edge.cdn.cache.store import CacheStore
from edge.cdn.chaos.engine import PopChaos
from edge.cdn.chaos.scenario import Scenario
from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
from edge.cdn.config.distribution import Distribution
from edge.cdn.config.plan import compile_distribution
from edge.cdn.config.settings import PopSettings, Settings
from edge.cdn.errors import BadRequest, EdgeError, RequestTooLarge
from edge.cdn.models import EdgeRequest, EdgeResponse
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig
from edge.cdn.origin.failures import FailureLog
from edge.cdn.origin.http1 import Head, InterimSink
from edge.cdn.responses import REPLACED, PopIdentity, decorate, error_response, new_request_id
from edge.cdn.server import websocket
from edge.cdn.server.admin import make_admin_app
from edge.cdn.server.limits import CauseLog, ConnectionGuard, ViewerConnection, effective_max_connections, read_body
from edge.cdn.server.tls import ensure_certificates, server_context
from edge.cdn.server.wire import HttpDate, RawResponse, safe_value, serialize
from edge.cdn.stats import PopStats
from edge.cdn.steps import Exchange, TriggerRunner
from edge.cdn.steps.context import PopContext
from edge.cdn.tiers.upstream import TierUpstream
from edge.tasks import TaskOwner

__all__ = [
    "SERVER_KWARGS",
    "PopState",
    "RunningPop",
    "ViewerServer",
    "make_viewer_server",
    "pop_code",
    "run_pop",
    "serve_viewer",
    "start_pop",
]

log = logging.getLogger("edgelab.pop")

MAX_URL_BYTES = 8192  # CloudFront: maximum length of a URL
MAX_HEADER_BYTES = 20480  # CloudFront: maximum total length of request headers


class ParserLimits(TypedDict):
    """aiohttp's HTTP parser limits (keyword arguments of ``web.Server``)."""

    max_line_size: int
    max_field_size: int
    max_headers: int


# aiohttp parser limits, above CloudFront's so that oversize input reaches us and gets CloudFront's 413.
SERVER_KWARGS: ParserLimits = {"max_line_size": 65536, "max_field_size": 32768, "max_headers": 1024}
CLIENT_MAX_SIZE = 64 * 1024 * 1024  # request bodies (POST/PUT through the POP)
BACKGROUND_LIMIT = 1024  # background refreshes running at once (more stale hits are served without one)


def pop_code(name: str) -> str:
    """A stable X-Amz-Cf-Pop value for POP ``name``: ``IAD`` -> e.g. ``IAD89-C1`` (same in every process)."""
    return f"{name.upper()}{zlib.crc32(name.upper().encode()) % 90 + 10}-C1"


class PopState:
    """Everything one POP owns; also the target of its admin app (invalidate, reset, stats, health)."""

    def __init__(self, pop: PopSettings, distribution: Distribution, settings: Settings,
                 *, triggers: TriggerRunner | None = None, clock: Callable[[], float] | None = None,
                 functions: CloudFrontFunctionRunner | None = None, upstream: TierUpstream | None = None) -> None:
        self.pop = pop
        self.debug_headers = settings.edge.debug_headers
        self.started = time.time()
        self.identity = PopIdentity(pop_code(pop.name))
        self.viewer = settings.viewer
        self.guard = ConnectionGuard(settings.viewer, max_connections=effective_max_connections(
            settings.viewer.max_connections))
        self.causes = CauseLog(log)
        self.http_date = HttpDate()
        cache = settings.cache
        self.origin_client = AiohttpOriginClient(OriginClientConfig(
            stream_threshold=cache.max_object_bytes,
            latency=pop.origin_latency_ms / 1000.0,
            host_map={**{d: t.url for d, t in settings.origins.items() if t.url},
                      **{d: f"{t.host}:{t.port}" for d, t in settings.origins.items() if t.host and t.port}},
            keepalive_timeout=max((o.keepalive_timeout for o in distribution.origins.values()), default=5.0),
            connect={o.domain_name: (o.connection_attempts, o.connection_timeout)
                     for o in distribution.origins.values()},
            directories={d: t.directory for d, t in settings.origins.items() if t.directory is not None},
            function_url_endpoint=f"127.0.0.1:{settings.api_port}",  # the control port serves function URLs
        ))
        options = PolicyOptions.from_settings(cache)
        store = CacheStore(pop.cache_max_bytes if pop.cache_max_bytes is not None else cache.max_bytes,
                           cache.max_object_bytes)
        plans = compile_distribution(distribution, hooks=triggers is not None)  # once, as the distribution loads
        self.ctx = PopContext(plans=plans, identity=self.identity, store=store,
                              coalescer=Coalescer(), origin=self.origin_client, stats=PopStats(), options=options,
                              background=TaskOwner(f"pop-{pop.name}", limit=BACKGROUND_LIMIT), triggers=triggers,
                              functions=functions, location=pop.location,
                              location_header=settings.edge.viewer_location_header, upstream=upstream,
                              failures=FailureLog(log, debug_headers=self.debug_headers))
        if clock is not None:
            self.ctx.clock = clock

    def apply_distribution(self, distribution: Distribution,
                           functions: CloudFrontFunctionRunner | None = None) -> None:
        """Serve ``distribution`` from the next request on, without a restart (UpdateDistribution, an edited
        ``--distribution`` file; ``edge.control.cloudfront_api.distributions``).

        The compiled plans are swapped with the context that carries them, in one assignment: ``serve_viewer``
        reads ``self.ctx`` once per request, so a request in flight finishes on the plans it started with (its
        background refresh too) and the next one gets the new ones. The cache, counters, origin pool and
        background tasks are the same objects in both: cached objects stay, as on CloudFront, where a change
        propagates to the edge locations (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
        HowToUpdateDistribution.html) and objects leave the cache by expiring or by an invalidation
        (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Invalidation.html); a new cache
        policy keys new requests differently. ``functions`` replaces the CloudFront Functions runner (a POP
        started without one, now that the distribution associates functions). ConnectionAttempts /
        ConnectionTimeout of new or changed origins apply at once; OriginKeepaliveTimeout is pool-wide, read at
        start."""
        plans = compile_distribution(distribution, hooks=self.ctx.triggers is not None)
        client = self.origin_client
        client.config = replace(client.config, connect={
            **client.config.connect,
            **{o.domain_name: (o.connection_attempts, o.connection_timeout) for o in distribution.origins.values()}})
        self.ctx = replace(self.ctx, plans=plans, functions=functions or self.ctx.functions)

    def apply_chaos(self, scenario: Scenario, applied_at: float) -> PopChaos:
        """Inject ``scenario``'s faults for this POP from the next request on (replacing any scenario applied
        before: counts start again); ``applied_at`` (epoch seconds) anchors its relative windows."""
        chaos = PopChaos(scenario, self.pop.name, applied_at, self.ctx.stats.chaos_faults)
        self.ctx.chaos = chaos
        log.warning("chaos: POP %s: scenario %r applied (%d fault(s) here)", self.pop.name, scenario.name,
                    len(chaos.origin) + len(chaos.functions))
        return chaos

    def clear_chaos(self) -> bool:
        """Stop injecting faults; whether a scenario was applied."""
        had, self.ctx.chaos = self.ctx.chaos is not None, None
        if had:
            log.warning("chaos: POP %s: scenario cleared", self.pop.name)
        return had

    # --- admin target ---------------------------------------------------------------------------------
    def invalidate(self, paths: Sequence[str]) -> int:
        """Purge every cached variant covered by the CloudFront invalidation ``paths``."""
        n = sum(self.ctx.store.purge(p) for p in paths)
        self.ctx.stats.invalidations += 1
        self.ctx.stats.invalidated_objects += n
        return n

    def reset(self, *, stats: bool) -> int:
        n = len(self.ctx.store)
        self.ctx.store.clear()
        if stats:
            self.ctx.stats.reset()
        return n

    def stats_snapshot(self) -> dict[str, object]:
        cs = self.ctx.store.stats()
        return {
            "pop": self.pop.name, "pop_code": self.identity.pop_code, "region": self.pop.region,
            **self.ctx.stats.snapshot(),
            "cache": {"entries": cs.entries, "bytes": cs.bytes, "max_bytes": cs.max_bytes, "hits": cs.hits,
                      "misses": cs.misses, "evictions": cs.evictions, "rejected_too_large": cs.rejected_too_large},
            "background_tasks": len(self.ctx.background),
            "viewer_connections": self.guard.snapshot(),
            **({"upstream": {"region": up.region, "hops": up.hops, "unavailable": up.unavailable}}
               if (up := self.ctx.upstream) is not None else {}),
            **({"cloudfront_functions": self.ctx.functions.metrics()} if self.ctx.functions is not None else {}),
        }

    def health(self) -> dict[str, object]:
        return {"status": "ok", "pop": self.pop.name, "pop_code": self.identity.pop_code,
                "region": self.pop.region, "distribution": self.ctx.distribution.id,
                "uptime_s": round(time.time() - self.started, 3)}


def _viewer_request(request: web.BaseRequest, scheme: str) -> EdgeRequest:
    """web.Request -> EdgeRequest; raises RequestTooLarge (413) / BadRequest (400) for bad input."""
    raw_path = request.raw_path
    if len(raw_path) > MAX_URL_BYTES:
        raise RequestTooLarge(f"URL of {len(raw_path)} bytes")
    headers = list(request.headers.items())  # decoded by the parser, original name case kept
    if sum([len(k) + len(v) + 4 for k, v in headers]) > MAX_HEADER_BYTES:
        raise RequestTooLarge("request headers too large")
    if "#" in raw_path:  # a fragment is not part of the request (rare: clients do not send one)
        uri, _, query = raw_path.partition("?")
        uri, query = uri.split("#", 1)[0], query.split("#", 1)[0]
    else:
        uri, _, query = raw_path.partition("?")
    if not uri.startswith("/"):
        raise BadRequest(f"request target {raw_path[:100]!r} is not origin-form")
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return EdgeRequest(method=request.method, uri=uri, querystring=query, headers=headers,
                       client_ip=request.remote or "127.0.0.1",
                       client_port=peer[1] if isinstance(peer, tuple) and len(peer) >= 2 else 0, scheme=scheme,
                       http_version=request.version)


async def serve_viewer(state: PopState, request: web.BaseRequest, scheme: str = "http") -> web.StreamResponse:
    """Answer one viewer request for the POP ``state`` (the handler of ``make_viewer_server``; ``scheme`` is
    ``https`` on the HTTPS listener). The connection has no guard deadline while this runs
    (``ConnectionGuard.begin``/``end``)."""
    guard = state.guard
    conn = guard.begin(request.transport)
    try:
        return await _serve(state, request, scheme)
    finally:
        guard.end(conn)


async def _serve(state: PopState, request: web.BaseRequest, scheme: str) -> web.StreamResponse:
    started = time.perf_counter()
    if request.version[0] != 1:  # HTTP/0.9 (no version in the request line), "HTTP/2.0": refused, not answered in kind
        state.ctx.stats.bad_requests += 1
        version = f"HTTP/{request.version[0]}.{request.version[1]}"
        state.causes.report(logging.INFO, ("version", version), "refused an %s request from %s", version,
                            request.remote)
        return _refusal(state, BadRequest(f"{version} request"), started, method=request.method)
    headers = request.headers
    if headers.get(hdrs.EXPECT):
        await _expect(request)
    request_id = new_request_id()
    if hdrs.UPGRADE in headers and headers[hdrs.UPGRADE].lower() == "websocket":
        answered = await _websocket(state, request, scheme, request_id, started)
        if answered is not None:
            return answered
    try:
        edge_req = _viewer_request(request, scheme)
        if request.body_exists:
            edge_req.body = await read_body(request, timeout=state.viewer.body_timeout_s, max_size=CLIENT_MAX_SIZE)
    except EdgeError as err:  # 400 / 413 / 408: CloudFront's page, then the connection is closed
        state.ctx.stats.bad_requests += 1
        if err.status == 408:
            state.guard.counters.body_timeouts += 1
        state.causes.report(logging.INFO, ("viewer", err.status), "refused a viewer request from %s: %d %s",
                            request.remote, err.status, err.detail[:200])
        return _refusal(state, err, started, request_id, request.method)
    try:
        interim = _interim_sink(request) if request.version == HttpVersion11 else None
        response, ex = await pipeline.handle(state.ctx, edge_req, request_id, started, interim)
    except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
        state.causes.report(logging.ERROR, ("pipeline", type(exc).__name__), "unhandled error for %s %s",
                            request.method, edge_req.uri[:200], exc=exc)
        ex = Exchange(request=edge_req, request_id=request_id, started=started, x_cache="Error from cloudfront")
        response = error_response(EdgeError("internal error"), request_id)
    if state.debug_headers:
        response = debug_decorated(response, ex)
    return await _write(request, state, response, ex)


async def _websocket(state: PopState, request: web.BaseRequest, scheme: str, request_id: str,
                     started: float) -> web.StreamResponse | None:
    """A WebSocket upgrade: relayed to the origin (``edge.cdn.server.websocket``), or None for the normal path."""
    try:
        viewer = _viewer_request(request, scheme)
    except EdgeError:
        return None
    return await websocket.relay(state.ctx, state.origin_client, request, viewer, request_id, started)


def debug_decorated(response: EdgeResponse, ex: Exchange) -> EdgeResponse:
    """``[edge] debug_headers``: the step sequence, the matched behavior and the reason of an error page, as
    ``X-Edgelab-*`` headers (on a copy: a cached response's header list is shared with the cache entry)."""
    extra = [("X-Edgelab-Trace", ",".join(ex.trace))]
    if ex.plan is not None:
        extra.append(("X-Edgelab-Behavior", ex.plan.behavior.path_pattern))
    if ex.error_detail:
        extra.append(("X-Edgelab-Error", " ".join(ex.error_detail.split())[:1000]))
    return replace(response, headers=[*response.headers, *extra])


def _refusal(state: PopState, err: EdgeError, started: float, request_id: str | None = None,
             method: str = "GET") -> RawResponse:
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
    data = serialize("HEAD" if head else "GET", HttpVersion11, False, err.status, None, headers, body,
                     state.http_date, content_length=len(body) if head else None)
    assert data is not None  # a CloudFront error page is plain ASCII
    return RawResponse(err.status, None, data, False)


class ViewerHandler(web.RequestHandler):
    """aiohttp's HTTP/1 protocol with the POP's answer to what its parser refuses: ``handle_error`` (its public
    hook for a request it could not parse or a handler that raised) answers CloudFront's 413 page for a line over
    the parser's limits and CloudFront's 400 page for any other malformed request (500 for a handler bug), each
    cause logged once then rate-limited (``CauseLog``) instead of a traceback per request."""

    __slots__ = ("pop",)

    def __init__(self, manager: web.Server, pop: PopState, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.pop = pop

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's: a response already started cannot be replaced
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        state = self.pop
        started = time.perf_counter()
        err: EdgeError
        if isinstance(exc, LineTooLong) or (isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc)):
            err = RequestTooLarge(str(exc))
        elif isinstance(exc, HttpProcessingError) or status < 500:
            err = BadRequest(str(exc) if exc is not None else (message or "malformed request"))
        else:
            err = EdgeError("internal error")
        state.ctx.stats.bad_requests += err.status < 500
        parse_error = isinstance(exc, HttpProcessingError)
        state.causes.report(logging.INFO if parse_error else logging.ERROR, ("parser", err.status, type(exc).__name__),
                            "refused a request from %s: %d %s: %s", request.remote, err.status,
                            type(exc).__name__, " ".join(str(exc or message).split())[:200],
                            exc=None if parse_error else exc)
        return _refusal(state, err, started)


class ViewerServer(web.Server):
    """aiohttp's low-level server whose connections are ``ViewerHandler``s run under the POP's ``ConnectionGuard``
    (``__call__`` is the protocol factory the listener calls once per accepted connection)."""

    def __init__(self, handler: Any, *, pop: PopState, **kwargs: Any) -> None:
        request_factory = kwargs.pop("request_factory", None)
        super().__init__(handler, request_factory=request_factory, **kwargs)
        self.pop = pop
        self.handler_kwargs = kwargs

    def __call__(self) -> ViewerConnection:  # type: ignore[override]  # the listener wants any protocol
        inner = ViewerHandler(self, self.pop, loop=asyncio.get_running_loop(), **self.handler_kwargs)
        return ViewerConnection(inner, self.pop.guard)


async def _expect(request: web.BaseRequest) -> None:
    """``Expect`` (RFC 9110 §10.1.1) as aiohttp's router answers it: an interim ``100 Continue`` before the body is
    read, on HTTP/1.1; 417 for any other expectation; nothing on HTTP/1.0."""
    if request.version != HttpVersion11:
        return
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await request.writer.drain()


def _interim_sink(request: web.BaseRequest) -> InterimSink:
    """Where an origin's interim responses go for this viewer: written before the final response, as a proxy
    forwards 1xx (RFC 9110 §15.2; never to an HTTP/1.0 viewer, hence only built for HTTP/1.1). A viewer that went
    away meanwhile is not the origin's failure: the write error is dropped, the final write notices it."""

    async def send(head: Head) -> None:
        lines = [f"HTTP/1.1 {head.status} {head.reason}".rstrip()]
        lines.extend(f"{k}: {v}" for k, v in head.headers)
        try:
            await request.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
            await request.writer.drain()
        except ConnectionError:
            pass

    return send


async def _write(request: web.BaseRequest, state: PopState, response: EdgeResponse,
                 ex: Exchange) -> web.StreamResponse:
    """Decorate ``response`` with CloudFront's headers and send it (streaming bodies chunk by chunk).

    A buffered body goes out as one buffer serialised by ``edge.cdn.server.wire`` (the bytes ``web.Response`` would
    send); a cache entry's headers come from their block serialised once per entry, the POP's own headers from
    ``PopIdentity.decoration_lines``. Anything ``wire`` declines goes through ``web.Response`` as before."""
    total_s = time.perf_counter() - ex.started
    edge_s = total_s - ex.origin_seconds
    timing = ex.timing.render(ex.x_cache, edge_s if edge_s > 0.0 else 0.0, pop_code=state.identity.pop_code,
                              request_id=ex.request_id, total_seconds=total_s)
    meta = response.meta
    clean = meta.clean
    reason = response.status_description or None
    if reason is not None and ("\n" in reason or "\r" in reason):
        reason = None
    body = response.body
    length = meta.content_length
    head_length = length if request.method == "HEAD" else None
    if isinstance(body, bytes):
        if head_length is None:
            state.ctx.stats.bytes_sent += len(body)
        keep_alive = request.keep_alive
        if not (ex.timing.entries or ex.timing.origin_value) or safe_value(timing):
            block = meta.header_block if clean else None
            if block is not None and block.count != len(response.headers):
                block = None
            lines = state.identity.decoration_lines(request_id=ex.request_id, x_cache=ex.x_cache,
                                                    server_timing=timing, age=ex.age)
            data = serialize(request.method, request.version, keep_alive, response.status, reason,
                             () if block is not None else response.headers, body, state.http_date, block=block,
                             trailer=lines, content_length=head_length, drop=frozenset() if clean else REPLACED)
            if data is not None:
                return RawResponse(response.status, reason, data, keep_alive)
    headers = decorate(response.headers, state.identity, request_id=ex.request_id, x_cache=ex.x_cache,
                       server_timing=timing, age=ex.age, clean=clean)
    if isinstance(body, bytes):  # something wire declines: aiohttp handles (or refuses) it exactly as before
        if head_length is not None:
            headers.append(("Content-Length", str(head_length)))
        return web.Response(status=response.status, reason=reason, body=body, headers=headers)
    return await _stream(request, response, headers, reason, length, state)


async def _stream(request: web.BaseRequest, response: EdgeResponse, headers: list[tuple[str, str]],
                  reason: str | None, length: int | None, state: PopState) -> web.StreamResponse:
    """Send a streamed origin body through without holding it in memory."""
    body = response.body
    assert not isinstance(body, bytes)
    resp = web.StreamResponse(status=response.status, reason=reason, headers=headers)
    if length is not None:
        resp.content_length = length
    try:
        await resp.prepare(request)
        if request.method != "HEAD":
            async for chunk in body:
                await resp.write(chunk)
                state.ctx.stats.bytes_sent += len(chunk)
        await resp.write_eof()
    except (EdgeError, ConnectionError) as exc:
        # origin broke mid-body or the viewer went away: the only honest signal is to drop the connection
        log.info("stream for %s aborted: %r", request.path, exc)
        if request.transport is not None:
            request.transport.abort()
    finally:
        await response.aclose()
    return resp


def make_viewer_server(state: PopState, scheme: str = "http") -> web.Server:
    """The viewer-facing low-level server of POP ``state``: every request goes to ``serve_viewer``, with the POP's
    parser limits and request body limit (``scheme``: ``https`` for the HTTPS listener's). The caller starts/closes
    ``state.origin_client`` and closes ``state.ctx.background`` (``start_pop`` does)."""
    loop = asyncio.get_running_loop()

    def request_factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=CLIENT_MAX_SIZE)

    handler = (functools.partial(serve_viewer, state) if scheme == "http"  # no keyword to merge per request
               else functools.partial(serve_viewer, state, scheme=scheme))
    viewer = state.viewer
    # aiohttp's own keep-alive timer stays as a backstop behind the guard's deadlines
    backstop = 2 * max(viewer.header_timeout_s, viewer.keepalive_timeout_s)
    return ViewerServer(handler, pop=state, request_factory=request_factory, access_log=None,
                        keepalive_timeout=backstop, lingering_time=min(10.0, viewer.body_timeout_s), **SERVER_KWARGS)


@dataclass
class RunningPop:
    """A started POP: its runners and the bound port; ``stop()`` shuts both down."""

    state: PopState
    runner: web.BaseRunner
    admin_runner: web.AppRunner | None
    port: int
    admin_socket: Path | None
    https_runner: web.BaseRunner | None = None  # the HTTPS listener, when the POP has one
    https_port: int | None = None

    async def stop(self) -> None:
        """Stop the admin app (removing its socket file) and the POP (closing its connections, then cancelling
        its background tasks and closing its origin connection pool)."""
        try:
            self.state.guard.stop()
            if self.admin_runner is not None:
                await self.admin_runner.cleanup()
                if self.admin_socket is not None:
                    self.admin_socket.unlink(missing_ok=True)
            if self.https_runner is not None:
                await self.https_runner.cleanup()
            await self.runner.cleanup()
        finally:
            await self.state.ctx.background.aclose()
            await self.state.origin_client.close()
            if self.state.ctx.upstream is not None:
                await self.state.ctx.upstream.close()


async def start_pop(pop_settings: PopSettings, distribution: Distribution, settings: Settings, *,
                    triggers: TriggerRunner | None = None, admin_socket: str | Path | None = None,
                    host: str | None = None, port: int | None = None,
                    clock: Callable[[], float] | None = None,
                    functions: CloudFrontFunctionRunner | None = None,
                    tls_dir: Path | None = None, upstream: TierUpstream | None = None) -> RunningPop:
    """Start the POP on ``host:port`` (default: the POP settings; port 0 = any free port) and, if given, its
    admin app on the unix socket ``admin_socket``. ``functions`` (CloudFront Functions) is started and closed by
    the caller. With ``pop_settings.https_port`` (0: any free port) and ``tls_dir``, an HTTPS listener too, with
    the certificate of ``edge.cdn.server.tls`` kept in ``tls_dir`` (made there if missing). ``upstream``: the
    regional edge cache its cacheable misses go to (edge.cdn.tiers), started and closed with the POP."""
    state = PopState(pop_settings, distribution, settings, triggers=triggers, clock=clock, functions=functions,
                     upstream=upstream)
    await state.origin_client.start()
    state.guard.start()
    if upstream is not None:
        await upstream.start()
    runner = web.ServerRunner(make_viewer_server(state), handle_signals=False)
    https_runner: web.ServerRunner | None = None
    https_bound: int | None = None
    admin_runner = None
    try:
        await runner.setup()
        site = web.TCPSite(runner, host or pop_settings.host, pop_settings.port if port is None else port,
                           backlog=1024)
        await site.start()
        bound = runner.addresses[0][1]
        if pop_settings.https_port is not None and tls_dir is not None:
            files = await asyncio.to_thread(ensure_certificates, tls_dir, distribution.aliases)
            https_runner = web.ServerRunner(make_viewer_server(state, "https"), handle_signals=False)
            await https_runner.setup()
            await web.TCPSite(https_runner, host or pop_settings.host, pop_settings.https_port, backlog=1024,
                              ssl_context=server_context(files)).start()
            https_bound = state.ctx.https_port = https_runner.addresses[0][1]
        sock = Path(admin_socket) if admin_socket is not None else None
        if sock is not None:
            sock.parent.mkdir(parents=True, exist_ok=True)
            sock.unlink(missing_ok=True)
            admin_runner = web.AppRunner(make_admin_app(state), access_log=None, handle_signals=False)
            await admin_runner.setup()
            await web.UnixSite(admin_runner, str(sock)).start()
    except BaseException:
        state.guard.stop()
        if admin_runner is not None:
            await admin_runner.cleanup()
        if https_runner is not None:
            await https_runner.cleanup()
        await runner.cleanup()
        await state.ctx.background.aclose()
        await state.origin_client.close()
        if upstream is not None:
            await upstream.close()
        raise
    log.info("POP %s (%s) listening on %s:%d%s", pop_settings.name, state.identity.pop_code,
             host or pop_settings.host, bound, f" (HTTPS: {https_bound})" if https_bound is not None else "")
    return RunningPop(state=state, runner=runner, admin_runner=admin_runner, port=bound, admin_socket=sock,
                      https_runner=https_runner, https_port=https_bound)


async def run_pop(pop_settings: PopSettings, distribution: Distribution, settings: Settings, *,
                  triggers: TriggerRunner | None = None, admin_socket: str | Path | None = None,
                  stop: asyncio.Event | None = None) -> None:
    """Run one POP until cancelled (or until ``stop`` is set), then shut it down cleanly."""
    running = await start_pop(pop_settings, distribution, settings, triggers=triggers, admin_socket=admin_socket)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await running.stop()
