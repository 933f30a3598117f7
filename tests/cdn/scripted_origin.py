"""ScriptedOrigin: a real aiohttp origin on 127.0.0.1:<port 0> that serves scripted responses and counts hits.

Usage::

    async with ScriptedOrigin() as origin:
        origin.script("/a", body=b"hello", headers={"Cache-Control": "max-age=60"})
        origin.script("/etag", handler=my_handler)   # async (request, hit_number) -> web.StreamResponse
        ...
        assert origin.hits["/a"] == 1
        seen = origin.requests["/a"][-1]   # RecordedRequest(method, path, query, headers, body)

Unscripted paths answer 404 with ``Cache-Control: no-store`` (so they are not cached by accident).
``delay`` sleeps before answering (to exercise timeouts and collapsing). Hits are counted when the request
arrives, before any delay.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web

Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]


@dataclass(slots=True)
class Script:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    handler: Handler | None = None
    chunked: bool = False  # send without Content-Length


class ScriptedOrigin:
    """A scripted origin server; see the module docstring."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock  # when set, every response's Date follows it (tests with a FakeClock)
        self.scripts: dict[str, Script] = {}
        self.hits: Counter[str] = Counter()
        self.requests: defaultdict[str, list[RecordedRequest]] = defaultdict(list)
        self.port = 0
        self.peers: set[object] = set()  # distinct client (host, port) pairs = TCP connections seen
        self._runner: web.AppRunner | None = None

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, path: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
               body: bytes | str = b"", delay: float = 0.0, handler: Handler | None = None,
               chunked: bool = False) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.scripts[path] = Script(status, dict(headers or {}), data, delay, handler, chunked)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        resp = await self._answer(request)
        if self.clock is not None and "Date" not in resp.headers and not resp.prepared:
            resp.headers["Date"] = formatdate(self.clock(), usegmt=True)
        return resp

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.transport is not None:
            self.peers.add(request.transport.get_extra_info("peername"))
        self.hits[path] += 1
        n = self.hits[path]
        body = await request.read()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        self.requests[path].append(RecordedRequest(request.method, request.raw_path.split("?")[0],
                                                   request.query_string, headers, body))
        s = self.scripts.get(path)
        if s is None:
            return web.Response(status=404, text="not scripted\n", headers={"Cache-Control": "no-store"})
        if s.delay:
            await asyncio.sleep(s.delay)
        if s.handler is not None:
            return await s.handler(request, n)
        if s.chunked:
            resp = web.StreamResponse(status=s.status, headers=s.headers)
            if self.clock is not None:
                resp.headers["Date"] = formatdate(self.clock(), usegmt=True)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, len(s.body), 65536):
                await resp.write(s.body[i:i + 65536])
            await resp.write_eof()
            return resp
        return web.Response(status=s.status, headers=s.headers, body=s.body)

    async def start(self) -> ScriptedOrigin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedOrigin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- POP test helpers ------------------------------------------------------------------------------------

ORIGIN_DOMAIN = "origin.test"


class FakeClock:
    """Epoch-seconds clock for cache ages: starts at the real time (origin Date headers stay consistent)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def behavior_config(pattern: str | None = None, *, cache_policy: str | None = None, min_ttl: int = 0,
                    default_ttl: int = 86400, max_ttl: int = 31536000, query_string: bool = True,
                    headers: tuple[str, ...] = (), cookies: str = "none",
                    methods: tuple[str, ...] = ("GET", "HEAD"), cached: tuple[str, ...] = ("GET", "HEAD"),
                    origin_request_policy: str | None = None) -> dict:
    """A CacheBehavior (legacy ForwardedValues unless ``cache_policy`` names a policy id)."""
    b: dict = {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all",
               "AllowedMethods": {"Quantity": len(methods), "Items": list(methods),
                                  "CachedMethods": {"Quantity": len(cached), "Items": list(cached)}}}
    if pattern is not None:
        b["PathPattern"] = pattern
    if cache_policy:
        b["CachePolicyId"] = cache_policy
    else:
        b["ForwardedValues"] = {"QueryString": query_string, "Cookies": {"Forward": cookies},
                                "Headers": {"Quantity": len(headers), "Items": list(headers)}}
        b.update(MinTTL=min_ttl, DefaultTTL=default_ttl, MaxTTL=max_ttl)
    if origin_request_policy:
        b["OriginRequestPolicyId"] = origin_request_policy
    return b


def distribution_config(*, default: dict | None = None, behaviors: list[dict] | None = None,
                        errors: list[dict] | None = None, root: str = "", enabled: bool = True,
                        origin_path: str = "", custom_headers: Mapping[str, str] | None = None,
                        read_timeout: int = 30) -> dict:
    """A DistributionConfig with one custom origin ``o1`` at ORIGIN_DOMAIN."""
    ch = [{"HeaderName": k, "HeaderValue": v} for k, v in (custom_headers or {}).items()]
    cfg: dict = {
        "CallerReference": "test", "Enabled": enabled, "DefaultRootObject": root, "Comment": "",
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "o1", "DomainName": ORIGIN_DOMAIN, "OriginPath": origin_path,
            "CustomHeaders": {"Quantity": len(ch), "Items": ch},
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
                                   "OriginReadTimeout": read_timeout, "OriginKeepaliveTimeout": 5}}]},
        "DefaultCacheBehavior": default or behavior_config(),
        "CacheBehaviors": {"Quantity": len(behaviors or []), "Items": behaviors or []},
        "CustomErrorResponses": {"Quantity": len(errors or []), "Items": errors or []},
    }
    return {"DistributionConfig": cfg}


def pop_settings_for(origin: ScriptedOrigin, *, name: str = "TST", max_object_bytes: int = 1 << 20,
                     max_bytes: int = 16 << 20, error_ttl: float = 10.0, latency_ms: float = 0.0):  # type: ignore[no-untyped-def]
    """(PopSettings, Settings) mapping ORIGIN_DOMAIN to the scripted origin."""
    from edge.cdn.config.settings import CacheSettings, OriginTarget, PopSettings, Settings

    pop = PopSettings(name, "us-east-1", "127.0.0.1", 0, latency_ms)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin.port)},
                        cache=CacheSettings(max_bytes=max_bytes, max_object_bytes=max_object_bytes,
                                            error_caching_min_ttl_s=error_ttl))
    return pop, settings


class PopHarness:
    """A real POP (``start_pop`` on 127.0.0.1:0, admin on a unix socket) plus a client session.

    ``await h.get("/a")`` returns ``(status, headers, body)``; ``h.state`` is the POP's PopState.
    """

    def __init__(self, origin: ScriptedOrigin, config: dict, *, clock: FakeClock | None = None,
                 triggers: object = None, admin_socket: str | None = None, functions: object = None,
                 **settings_kw: object) -> None:
        self.origin = origin
        self.config = config
        self.clock = clock
        self.triggers = triggers
        self.functions = functions  # a CloudFrontFunctionRunner, started and closed by the caller
        self.admin_socket = admin_socket
        self.settings_kw = settings_kw
        self.running = None
        self.session = None

    async def __aenter__(self) -> PopHarness:
        import aiohttp

        from edge.cdn.config.distribution import load_distribution
        from edge.cdn.server.pop import start_pop

        pop, settings = pop_settings_for(self.origin, **self.settings_kw)  # type: ignore[arg-type]
        dist = load_distribution(self.config, settings)
        self.running = await start_pop(pop, dist, settings, triggers=self.triggers,  # type: ignore[arg-type]
                                       admin_socket=self.admin_socket, port=0, clock=self.clock,
                                       functions=self.functions)  # type: ignore[arg-type]
        self.session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        if self.running is not None:
            await self.running.stop()

    @property
    def port(self) -> int:
        return self.running.port  # type: ignore[union-attr]

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.running.state  # type: ignore[union-attr]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def request(self, method: str, path: str, **kw: object) -> tuple[int, object, bytes]:
        async with self.session.request(method, self.url + path, allow_redirects=False, **kw) as resp:  # type: ignore[union-attr]
            return resp.status, resp.headers, await resp.read()

    async def get(self, path: str, **kw: object) -> tuple[int, object, bytes]:
        return await self.request("GET", path, **kw)
