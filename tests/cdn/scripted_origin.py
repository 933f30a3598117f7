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

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.hits: Counter[str] = Counter()
        self.requests: defaultdict[str, list[RecordedRequest]] = defaultdict(list)
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def script(self, path: str, *, status: int = 200, headers: Mapping[str, str] | None = None,
               body: bytes | str = b"", delay: float = 0.0, handler: Handler | None = None,
               chunked: bool = False) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.scripts[path] = Script(status, dict(headers or {}), data, delay, handler, chunked)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
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
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedOrigin:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
