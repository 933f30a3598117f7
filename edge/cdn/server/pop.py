"""The POP server: the viewer boundary of one edge location and its runner helpers.

* ``start_pop(...)`` builds the POP's state (``PopState``) and serves it on event-loop servers (``Listener``: HTTP,
  and HTTPS when configured) whose connections speak ``edge.cdn.server.viewer``'s HTTP/1.x protocol, plus the
  admin app (aiohttp) on a UnixSite; ``RunningPop.stop()`` closes them, the viewer connections and the requests
  in flight, then the background refresh tasks and the origin ClientSession. ``run_pop(...)`` does that and waits
  until cancelled.
* ``respond.PopViewer`` (the protocol's app) turns a parsed request into an ``EdgeRequest``, runs the pipeline
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
* WebSocket upgrades a behavior relays are handed over to aiohttp's protocol (``respond.PopViewer._relayed``), whose
  WebSocket support ``edge.cdn.server.websocket`` uses on both sides; tier nodes (``edge.cdn.tiers.server``) keep
  aiohttp's low-level server with ``respond.SERVER_KWARGS``: their one client is a POP.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.policy import PolicyOptions
from edge.cdn.cache.store import CacheStore
from edge.cdn.chaos.engine import PopChaos
from edge.cdn.chaos.scenario import Scenario
from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner
from edge.cdn.config.distribution import Distribution
from edge.cdn.config.plan import compile_distribution
from edge.cdn.config.settings import PopSettings, Settings
from edge.cdn.origin.client import AiohttpOriginClient, OriginClientConfig
from edge.cdn.origin.failures import FailureLog
from edge.cdn.responses import PopIdentity
from edge.cdn.server.admin import make_admin_app, serve_admin
from edge.cdn.server.limits import CauseLog, ConnectionGuard, effective_max_connections
from edge.cdn.server.respond import PopViewer
from edge.cdn.server.tls import ensure_certificates, server_context
from edge.cdn.server.viewer import viewer_connection
from edge.cdn.server.wire import HttpDate
from edge.cdn.stats import PopStats
from edge.cdn.steps import TriggerRunner
from edge.cdn.steps.context import PopContext
from edge.cdn.tiers.upstream import TierUpstream
from edge.tasks import TaskOwner

__all__ = [
    "Listener",
    "PopState",
    "RunningPop",
    "pop_code",
    "run_pop",
    "start_pop",
]

log = logging.getLogger("edgelab.pop")

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

        The compiled plans are swapped with the context that carries them, in one assignment: ``respond.PopViewer``
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
        # a TLS handshake gets the header timeout: a viewer that connects and never completes one is closed
        server = await asyncio.get_running_loop().create_server(
            lambda: viewer_connection(app), host, port, backlog=1024, reuse_address=True, ssl=ssl,
            ssl_handshake_timeout=state.viewer.header_timeout_s if ssl is not None else None)
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
            admin_runner = await serve_admin(make_admin_app(state), sock)
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
