"""Interim responses through a real POP: an origin's ``103 Early Hints`` reaches an HTTP/1.1 viewer before the final
response (RFC 9110 §15.2: a proxy forwards 1xx it did not ask for), is never cached (the conformance suite's
required ``interim-not-cached``), and never goes to an HTTP/1.0 viewer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.cdn.scripted_origin import behavior_config, distribution_config

EARLY = b"HTTP/1.1 103 Early Hints\r\nLink: </styles.css>; rel=preload; as=style\r\nX-My-Header: test\r\n\r\n"
FINAL = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=100000\r\nContent-Length: 2\r\n\r\nok"


class RawOrigin:
    """An origin that answers every request with a 103 and then a cacheable 200 (raw bytes: aiohttp's server cannot
    send interim responses); counts the requests it saw."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.requests += 1
                writer.write(EARLY)
                await writer.drain()
                await asyncio.sleep(0.05)  # the final answer comes later: the hint must not wait for it
                writer.write(FINAL)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@asynccontextmanager
async def _pop_before(origin: RawOrigin) -> AsyncIterator[int]:
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server.pop import start_pop

    origin.server = await asyncio.start_server(origin._serve, "127.0.0.1", 0)
    pop = PopSettings("TST", "us-east-1", "127.0.0.1", 0)
    settings = Settings(pops=(pop,), origins={"app.test": OriginTarget(host="127.0.0.1", port=origin.port)})
    cfg = distribution_config(default=behavior_config())
    cfg["DistributionConfig"]["Origins"]["Items"][0]["DomainName"] = "app.test"
    running = await start_pop(pop, load_distribution(cfg, settings), settings, port=0)
    try:
        yield running.port
    finally:
        await running.stop()
        origin.server.close()
        await origin.server.wait_closed()


async def _exchange(port: int, path: str, version: str = "HTTP/1.1") -> bytes:
    """Everything the POP sent for one request, up to the final response's 2-byte body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} {version}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        async with asyncio.timeout(10):
            return await reader.read(1 << 20) + await reader.read(1 << 20)
    finally:
        writer.close()


async def test_early_hints_reach_the_viewer_first_and_are_never_cached() -> None:
    origin = RawOrigin()
    async with _pop_before(origin) as port:
        first = await _exchange(port, "/page")
        second = await _exchange(port, "/page")
        old = await _exchange(port, "/other", "HTTP/1.0")
    head, _, rest = first.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 103 Early Hints"
    assert b"Link: </styles.css>; rel=preload; as=style" in head and b"X-My-Header: test" in head
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and b"Miss from cloudfront" in rest and rest.endswith(b"ok")
    assert b"X-My-Header" not in rest  # an interim response's fields are not the final response's
    # the second request is a hit: no interim response, no second origin request
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and b"Hit from cloudfront" in second
    assert b" 103 " not in second and b"X-My-Header" not in second
    # an HTTP/1.0 viewer never gets a 1xx (RFC 9110 §15.2)
    assert old.startswith(b"HTTP/1.0 200 OK\r\n") and b" 103 " not in old
    assert origin.requests == 2
