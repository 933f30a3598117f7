"""Viewer connection limits and timeouts of a real POP (issue 18 items 7 and 8), over raw sockets on 127.0.0.1.

An idle-socket flood at a low connection limit does not keep a normal viewer out and its descriptors are freed
after the header timeout; a slowloris head is closed unanswered; a stalled body gets 408 and a close; a keep-alive
connection is closed after the idle timeout; HTTP/0.9 is refused on an HTTP/1.1 status line; every over-long URL
gets CloudFront's 413 page and a close; a malformed-request flood logs one line per cause, no traceback each.
(Non-UTF-8 header bytes through a viewer-request function: tests/e2e/test_data_path_functions.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.settings import CacheSettings, OriginTarget, PopSettings, Settings, ViewerSettings
from edge.cdn.server.limits import BUSY
from edge.cdn.server.pop import RunningPop, start_pop
from tests.cdn.scripted_origin import ORIGIN_DOMAIN, ScriptedOrigin, behavior_config, distribution_config

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


@contextlib.asynccontextmanager
async def pop_with(origin: ScriptedOrigin, viewer: ViewerSettings, config: dict | None = None
                   ) -> AsyncIterator[RunningPop]:
    pop = PopSettings("TST", "us-east-1", "127.0.0.1", 0, 0.0)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin.port)},
                        cache=CacheSettings(max_bytes=1 << 20, max_object_bytes=1 << 16), viewer=viewer)
    running = await start_pop(pop, load_distribution(config or distribution_config(), settings), settings, port=0)
    try:
        yield running
    finally:
        await running.stop()


async def exchange(port: int, data: bytes, *, wait: float = 3.0) -> tuple[bytes, bool]:
    """Send ``data``, read until the POP closes (or ``wait`` s pass): (bytes read, closed by the POP)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = bytearray()
    closed = False
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                out += chunk
            closed = True
    except (TimeoutError, ConnectionError):
        closed = closed or False
    finally:
        writer.close()
    return bytes(out), closed


async def get_ok(port: int, path: str = "/alive") -> bytes:
    data, _ = await exchange(port, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    return data


async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` every 10 ms for at most ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


async def open_flood(port: int, into: list[socket.socket], *, batches: int, per_batch: int = 100) -> None:
    """Open ``batches`` x ``per_batch`` idle non-blocking connections to ``port`` (appended to ``into``, which the
    caller closes), yielding between batches so the POP accepts them."""
    for _ in range(batches):
        for _ in range(per_batch):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            into.append(s)
        await asyncio.sleep(0.01)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_idle_socket_flood_does_not_keep_a_viewer_out_and_its_descriptors_are_freed() -> None:
    """Issue 18 item 7: 2,000 idle sockets against a limit of 40: each new connection closes the longest-idle one,
    so a normal viewer is served at once; after the header timeout the POP holds none of the flood's sockets."""
    viewer = ViewerSettings(max_connections=40, header_timeout_s=0.5, keepalive_timeout_s=0.5)
    async with ScriptedOrigin() as origin:
        origin.script("/alive", body=b"yes", headers={"Cache-Control": "max-age=60"})
        async with pop_with(origin, viewer) as running:
            guard = running.state.guard
            assert (await get_ok(running.port)).endswith(b"yes")  # cached; the origin connection is pooled
            baseline = open_fds()
            flood: list[socket.socket] = []
            try:
                await open_flood(running.port, flood, batches=20)
                await until(lambda: guard.counters.accepted >= 2000, 5, "every flood socket reached the guard")
                assert len(guard.conns) <= 40
                async with asyncio.timeout(2):  # served within the timeout, flood still open
                    reply = await get_ok(running.port)
                assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"yes")
                assert guard.counters.evicted >= 1960
                await until(lambda: not guard.conns, 5, "the header timeout closes what is left of the flood")
                await until(lambda: open_fds() <= baseline + len(flood), 5, "only the flood's client ends remain")
                assert guard.counters.header_timeouts >= 1
            finally:
                for s in flood:
                    s.close()
            assert open_fds() <= baseline + 1


async def test_at_the_limit_with_every_connection_busy_a_new_one_is_refused_fast() -> None:
    viewer = ViewerSettings(max_connections=2, header_timeout_s=5, keepalive_timeout_s=5)
    async with ScriptedOrigin() as origin:
        for path in ("/slow1", "/slow2"):
            origin.script(path, body=b"s", delay=1.0, headers={"Cache-Control": "no-store"})
        async with pop_with(origin, viewer) as running:
            guard = running.state.guard
            slow = [asyncio.ensure_future(get_ok(running.port, p)) for p in ("/slow1", "/slow2")]
            await until(lambda: sum(c.state == BUSY for c in guard.conns.values()) == 2, 3, "two busy connections")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            data, closed = await exchange(running.port, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", wait=2)
            assert (data, closed) == (b"", True) and loop.time() - t0 < 0.5
            assert guard.counters.refused == 1
            for reply in await asyncio.gather(*slow):  # the busy ones were not disturbed
                assert reply.startswith(b"HTTP/1.1 200 ")


async def test_slowloris_head_is_closed_without_an_answer() -> None:
    viewer = ViewerSettings(header_timeout_s=0.4)
    async with ScriptedOrigin() as origin, pop_with(origin, viewer) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n")
        with contextlib.suppress(ConnectionError):
            for i in range(30):  # one header byte every 0.1 s: never a complete head
                await asyncio.sleep(0.1)
                if reader.at_eof():
                    break
                writer.write(b"X-%d: v\r\n" % i)
        async with asyncio.timeout(2):
            rest = await reader.read()
        writer.close()
        assert rest == b"" and 0.3 < loop.time() - t0 < 1.5
        assert running.state.guard.counters.header_timeouts == 1
        assert origin.hits.total() == 0


async def test_stalled_body_gets_408_and_a_close() -> None:
    viewer = ViewerSettings(body_timeout_s=0.3)
    config = distribution_config(default=behavior_config(cache_policy=CACHING_DISABLED,
                                                         methods=("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH",
                                                                  "DELETE")))
    async with ScriptedOrigin() as origin, pop_with(origin, viewer, config) as running:
        data, closed = await exchange(
            running.port, b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789", wait=3)
        assert data.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in data and closed
        assert b"<H1>408 ERROR</H1>" in data
        assert running.state.guard.counters.body_timeouts == 1 and origin.hits.total() == 0
        # a body that keeps coming, slower than the timeout in total but never pausing that long, is served
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\nConnection: close\r\n\r\n")
        for b in (b"ab", b"cd", b"ef", b"gh"):
            await asyncio.sleep(0.15)
            writer.write(b)
        async with asyncio.timeout(3):
            reply = await reader.read()
        writer.close()
        assert reply.startswith(b"HTTP/1.1 404 ") and origin.requests["/up"][0].body == b"abcdefgh"


async def test_keepalive_connection_is_closed_after_the_idle_timeout() -> None:
    viewer = ViewerSettings(keepalive_timeout_s=0.4)
    async with ScriptedOrigin() as origin:
        origin.script("/alive", body=b"yes", headers={"Cache-Control": "max-age=60"})
        async with pop_with(origin, viewer) as running:
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            loop = asyncio.get_running_loop()
            for _ in range(2):  # keep-alive: two requests on one connection
                writer.write(b"GET /alive HTTP/1.1\r\nHost: a\r\n\r\n")
                async with asyncio.timeout(2):
                    head = await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(3)
                assert head.startswith(b"HTTP/1.1 200 ")
            t0 = loop.time()
            async with asyncio.timeout(3):
                assert await reader.read() == b""
            writer.close()
            assert 0.2 < loop.time() - t0 < 1.5
            assert running.state.guard.counters.idle_timeouts == 1


async def test_http09_is_refused_on_an_http11_status_line() -> None:
    viewer = ViewerSettings(header_timeout_s=0.4)
    async with ScriptedOrigin() as origin, pop_with(origin, viewer) as running:
        data, closed = await exchange(running.port, b"GET /\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 400 ") and closed, data[:60]
        assert len(STATUS_LINE.findall(data)) == 1 and b"<H1>400 ERROR</H1>" in data
        data, closed = await exchange(running.port, b"GET /\r\n")  # no blank line: never answered in HTTP/0.9
        assert (data, closed) == (b"", True)
        assert origin.hits.total() == 0


@pytest.mark.parametrize("length", [8193, 60_000, 100_000, 300_000])
async def test_every_overlong_url_gets_cloudfronts_413_and_a_close(length: int) -> None:
    async with ScriptedOrigin() as origin, pop_with(origin, ViewerSettings()) as running:
        data, closed = await exchange(running.port, b"GET /" + b"a" * (length - 1) + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 413 ") and closed, data[:60]
        assert b"<H1>413 ERROR</H1>" in data and b"X-Cache: Error from cloudfront" in data
        if length < 60_000:  # to a HEAD request: the same head, no body
            data, closed = await exchange(running.port, b"HEAD /" + b"a" * (length - 1) + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413 ") and b"\r\nContent-Length: " in head and body == b"" and closed
        assert origin.hits.total() == 0


async def test_malformed_request_flood_logs_one_line_per_cause(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with ScriptedOrigin() as origin, pop_with(origin, ViewerSettings()) as running:
        for i in range(100):
            data, _ = await exchange(running.port, b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header %d\r\n\r\n" % i)
            assert data.startswith(b"HTTP/1.1 400 ") and b"<H1>400 ERROR</H1>" in data
    lines = [r for r in caplog.records if r.name.startswith(("edgelab", "aiohttp"))
             and r.levelno >= logging.INFO and "refused" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("aiohttp"))


def test_the_guard_holds_on_uvloop() -> None:
    """The stack's POP processes run on uvloop, whose transports are its own classes: the same flood, slowloris and
    HTTP/0.9 cases on a uvloop event loop."""
    import uvloop

    async def scenario() -> None:
        viewer = ViewerSettings(max_connections=20, header_timeout_s=0.4, keepalive_timeout_s=0.4)
        async with ScriptedOrigin() as origin:
            origin.script("/alive", body=b"yes", headers={"Cache-Control": "max-age=60"})
            async with pop_with(origin, viewer) as running:
                guard = running.state.guard
                flood: list[socket.socket] = []
                try:
                    await open_flood(running.port, flood, batches=5)
                    await until(lambda: guard.counters.accepted >= 500, 5, "the flood reached the guard")
                    assert len(guard.conns) <= 20 and guard.counters.evicted >= 480
                    assert (await get_ok(running.port)).endswith(b"yes")
                    data, closed = await exchange(running.port, b"GET /\r\n\r\n")
                    assert data.startswith(b"HTTP/1.1 400 ") and closed
                    data, closed = await exchange(running.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1")
                    assert (data, closed) == (b"", True)
                    await until(lambda: not guard.conns, 5, "the header timeout closed the rest")
                finally:
                    for s in flood:
                        s.close()

    uvloop.run(scenario())
