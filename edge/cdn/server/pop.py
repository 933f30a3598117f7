"""The POP server: the viewer boundary of one edge location and its runner helpers.

* ``start_pop(...)`` builds the POP's state (``PopState``) and serves it on event-loop servers (``Listener``: HTTP,
  and HTTPS when configured) whose connections speak ``edge.cdn.server.viewer``'s HTTP/1.x protocol, plus the
  admin app (aiohttp) on a UnixSite; ``RunningPop.stop()`` closes them, the viewer connections and the requests
  in flight, then the background refresh tasks and the origin ClientSession. ``run_pop(...)`` does that and waits
  until cancelled.
* ``PopViewer`` (the protocol's app) turns a parsed request into an ``EdgeRequest``, runs the pipeline
  (``pipeline.begin`` answers a fresh hit synchronously, ``pipeline.resume`` the rest in a task) and writes the
  response decorated with CloudFront's headers; buffered responses are serialised by ``edge.cdn.server.wire``
  (cache entries' headers serialised once per entry), streamed ones chunk by chunk with the viewer's
  back-pressure. Why not aiohttp's server: README "Performance" (the POP at the speed limit).
* Viewer input limits (contract / CloudFront quotas): URL over 8,192 bytes or request headers over 20,480
  bytes -> 413 with the CloudFront error page, and the connection is closed, as CloudFront does ("Maximum length
  of a request and maximum length of a URL", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
  RequestAndResponseBehaviorCustomOrigin.html); the parser stops at the limit, so every over-long URL gets the
  same answer however long it is. Malformed requests get CloudFront's 400 page and a close; an HTTP/0.9 request
  (``GET /`` without a version) or one claiming another major version is refused with that 400 on an HTTP/1.1
  status line, never answered in kind. Each refusal cause is logged once, then rate-limited (``CauseLog``).
* Viewer connections: every accepted connection runs under ``edge.cdn.server.limits`` (``[viewer]`` settings:
  connection budget, header / body / keep-alive timeouts).
* WebSocket upgrades a behavior relays are handed over to aiohttp's protocol (``PopViewer._relayed``), whose
  WebSocket support ``edge.cdn.server.websocket`` uses on both sides; tier nodes (``edge.cdn.tiers.server``) keep
  aiohttp's low-level server with ``SERVER_KWARGS``: their one client is a POP.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

from aiohttp import web

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
from edge.cdn.errors import BadRequest, EdgeError
from edge.cdn.models import EdgeRequest, EdgeResponse, header_get
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig
from edge.cdn.origin.failures import FailureLog
from edge.cdn.responses import REPLACED, PopIdentity, decorate, error_response, new_request_id
from edge.cdn.server import websocket
from edge.cdn.server.admin import make_admin_app
from edge.cdn.server.limits import CauseLog, ConnectionGuard, effective_max_connections
from edge.cdn.server.tls import ensure_certificates, server_context
from edge.cdn.server.viewer import ViewerProtocol, ViewerRequest, viewer_connection
from edge.cdn.server.wire import HttpDate, safe_value, serialize
from edge.cdn.stats import PopStats
from edge.cdn.steps import Exchange, TriggerRunner
from edge.cdn.steps.context import PopContext
from edge.cdn.steps.viewer_request import admit
from edge.cdn.tiers.upstream import TierUpstream
from edge.tasks import TaskOwner

__all__ = [
    "SERVER_KWARGS",
    "Listener",
    "PopState",
    "PopViewer",
    "RunningPop",
    "pop_code",
    "run_pop",
    "start_pop",
]

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

    def respond(self, conn: ViewerProtocol, req: ViewerRequest) -> bool | Coroutine[Any, Any, bool]:
        state = self.state
        started = time.perf_counter()
        refusal = req.refusal
        if refusal is None and req.version[0] != 1:
            version = f"HTTP/{req.version[0]}.{req.version[1]}"  # HTTP/0.9, HTTP/2.0: refused, not answered in kind
            state.causes.report(logging.INFO, ("version", version), "refused an %s request from %s", version,
                                conn.client_ip)
            refusal = BadRequest(f"{version} request")
        request_id = new_request_id()
        if refusal is None:
            try:
                edge_req = self._edge_request(conn, req)
            except EdgeError as err:
                refusal = err
        if refusal is not None:
            state.ctx.stats.bad_requests += 1
            state.causes.report(logging.INFO, ("viewer", refusal.status), "refused a viewer request from %s: %d %s",
                                conn.client_ip, refusal.status, refusal.detail[:200])
            conn.write(_refusal(state, refusal, started, request_id, req.method))
            return False
        if req.upgrade and self._relayed(conn, req, edge_req, request_id, started):
            return False
        if req.body is not None:
            edge_req.body = req.body[0] if len(req.body) == 1 else b"".join(req.body)
        interim = conn.interim if req.version == (1, 1) else None
        try:
            ex, response, at = pipeline.begin(state.ctx, edge_req, request_id, started, interim)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex, response, at = self._bug(edge_req, request_id, started, exc), None, EdgeError("internal error")
        if response is None:
            return self._finish(conn, req, ex, at)
        if state.debug_headers:
            response = debug_decorated(response, ex)
        keep_alive = self._send(conn, req, response, ex)
        return keep_alive if keep_alive is not None else self._write(conn, req, response, ex)

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
        return EdgeRequest(method=req.method, uri=uri, querystring=query, headers=req.headers, client_ip=peer[0],
                           client_port=peer[1], scheme=self.scheme, http_version=req.version)

    def _bug(self, edge_req: EdgeRequest, request_id: str, started: float, exc: Exception) -> Exchange:
        self.state.causes.report(logging.ERROR, ("pipeline", type(exc).__name__), "unhandled error for %s %s",
                                 edge_req.method, edge_req.uri[:200], exc=exc)
        return Exchange(request=edge_req, request_id=request_id, started=started, x_cache="Error from cloudfront")

    async def _finish(self, conn: ViewerProtocol, req: ViewerRequest, ex: Exchange, at: pipeline.Resume) -> bool:
        """Everything but a fresh hit: the rest of the pipeline, then the response (streamed or not)."""
        state = self.state
        try:
            response = await pipeline.resume(state.ctx, ex, at)
        except Exception as exc:  # a bug: answer like CloudFront would (500 page) and keep serving
            ex = self._bug(ex.request, ex.request_id, ex.started, exc)
            response = error_response(EdgeError("internal error"), ex.request_id)
        if state.debug_headers:
            response = debug_decorated(response, ex)
        keep_alive = self._send(conn, req, response, ex)
        return keep_alive if keep_alive is not None else await self._write(conn, req, response, ex)

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
    def _send(self, conn: ViewerProtocol, req: ViewerRequest, response: EdgeResponse, ex: Exchange) -> bool | None:
        """Write a buffered ``response`` decorated with CloudFront's headers, serialised by ``edge.cdn.server.wire``
        (a cache entry's headers from their block serialised once per entry, the POP's own headers from
        ``PopIdentity.decoration_lines``); the keep-alive verdict, or None for what only ``_write`` sends (a
        streamed body, a header that needs checking line by line)."""
        body = response.body
        if not isinstance(body, bytes):
            return None
        state = self.state
        total_s = time.perf_counter() - ex.started
        edge_s = total_s - ex.origin_seconds
        timing = ex.timing.render(ex.x_cache, edge_s if edge_s > 0.0 else 0.0, pop_code=state.identity.pop_code,
                                  request_id=ex.request_id, total_seconds=total_s)
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
        total_s = time.perf_counter() - ex.started
        edge_s = total_s - ex.origin_seconds
        timing = ex.timing.render(ex.x_cache, edge_s if edge_s > 0.0 else 0.0, pop_code=state.identity.pop_code,
                                  request_id=ex.request_id, total_seconds=total_s)
        headers = decorate(response.headers, state.identity, request_id=ex.request_id, x_cache=ex.x_cache,
                           server_timing=timing, age=ex.age, clean=response.meta.clean)
        reason = response.status_description or None
        if reason is not None and not safe_value(reason):
            reason = None
        length = response.meta.content_length
        head = req.method == "HEAD"
        body = response.body
        keep_alive = req.keep_alive
        no_body = head or response.status in (204, 304) or response.status < 200
        if isinstance(body, bytes):
            drop = {"transfer-encoding"} | ({"content-length"} if no_body else set())
            data = serialize(req.method, req.version, keep_alive, response.status, reason, headers, body,
                             state.http_date, content_length=length if head else None, drop=frozenset(drop),
                             undecodable=True)
            if data is None:
                state.causes.report(logging.ERROR, ("response", "header"), "a response to %s %s has a header "
                                    "that cannot be sent: answered 500", req.method, req.target[:200])
                data = _refusal(state, EdgeError("response header cannot be sent"), ex.started, ex.request_id,
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


class Listener:
    """One viewer listener of a POP (HTTP, or HTTPS with ``ssl``): an event-loop server whose connections are
    ``edge.cdn.server.viewer`` protocols under the POP's connection guard."""

    def __init__(self, app: PopViewer, server: asyncio.base_events.Server) -> None:
        self.app = app
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]

    @classmethod
    async def start(cls, state: PopState, scheme: str, handlers: TaskOwner, host: str, port: int,
                    ssl: Any = None) -> Listener:
        app = PopViewer(state, scheme, handlers)
        server = await asyncio.get_running_loop().create_server(
            lambda: viewer_connection(app), host, port, backlog=1024, reuse_address=True, ssl=ssl)
        return cls(app, server)

    async def close(self) -> None:
        self.server.close()
        if self.app.upgrades is not None:  # the connections handed over to aiohttp (WebSocket relays)
            await self.app.upgrades.shutdown(1.0)


@dataclass
class RunningPop:
    """A started POP: its listeners, admin app and the bound ports; ``stop()`` shuts them down."""

    state: PopState
    listener: Listener
    admin_runner: web.AppRunner | None
    port: int
    admin_socket: Path | None
    handlers: TaskOwner
    https_listener: Listener | None = None  # the HTTPS listener, when the POP has one
    https_port: int | None = None

    async def stop(self) -> None:
        """Stop the admin app (removing its socket file) and the POP (its listeners, then every viewer connection
        and the requests still being answered, then its background tasks and its origin connection pool)."""
        try:
            self.state.guard.stop()
            if self.admin_runner is not None:
                await self.admin_runner.cleanup()
                if self.admin_socket is not None:
                    self.admin_socket.unlink(missing_ok=True)
            for listener in (self.https_listener, self.listener):
                if listener is not None:
                    await listener.close()
            self.state.guard.close_all()
            await self.handlers.aclose()
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
    handlers = TaskOwner(f"pop-{pop_settings.name}-viewers")
    listener: Listener | None = None
    https: Listener | None = None
    admin_runner = None
    bind = host or pop_settings.host
    try:
        listener = await Listener.start(state, "http", handlers, bind, pop_settings.port if port is None else port)
        if pop_settings.https_port is not None and tls_dir is not None:
            files = await asyncio.to_thread(ensure_certificates, tls_dir, distribution.aliases)
            https = await Listener.start(state, "https", handlers, bind, pop_settings.https_port,
                                         ssl=server_context(files))
            state.ctx.https_port = https.port
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
        for opened in (https, listener):
            if opened is not None:
                await opened.close()
        await handlers.aclose()
        await state.ctx.background.aclose()
        await state.origin_client.close()
        if upstream is not None:
            await upstream.close()
        raise
    https_bound = https.port if https is not None else None
    log.info("POP %s (%s) listening on %s:%d%s", pop_settings.name, state.identity.pop_code,
             bind, listener.port, f" (HTTPS: {https_bound})" if https_bound is not None else "")
    return RunningPop(state=state, listener=listener, admin_runner=admin_runner, port=listener.port,
                      admin_socket=sock, handlers=handlers, https_listener=https, https_port=https_bound)


async def run_pop(pop_settings: PopSettings, distribution: Distribution, settings: Settings, *,
                  triggers: TriggerRunner | None = None, admin_socket: str | Path | None = None,
                  stop: asyncio.Event | None = None) -> None:
    """Run one POP until cancelled (or until ``stop`` is set), then shut it down cleanly."""
    running = await start_pop(pop_settings, distribution, settings, triggers=triggers, admin_socket=admin_socket)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await running.stop()
