"""The POP's Python per repeated cache hit, in one process: a kept answer against the same hit replayed and parsed.

    .venv/bin/python -m bench.viewer_path [--hits 20000] [--rounds 5]

A POP (``start_pop``) with a 1 KB object cached, and one viewer connection made by the POP's own listener factory
(``viewer.viewer_connection``) on a transport that only counts what is written; the same read (a GET of the object
as wrk sends it) is handed to the connection's ``data_received`` ``--hits`` times in a loop, three ways in alternating
rounds: as the POP answers it (``kept``: the connection keeps the hit's answer, ``PopViewer.again``), with no answer
kept (``replayed``: ``lean.keep_hit`` keeps nothing, so the read's parsed request is replayed and the hit found by
``lean.plain_hit``, the way before the eleventh stop) and with no read remembered either (``parsed``: llhttp parses
every read). What it measures is the POP's Python between the event loop handing over a read and the response's bytes
going to the transport (no socket, no kernel); the medians of the rounds are printed, and the ratios to ``replayed``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench.pop_path import _config
from bench.trigger_bench import ORIGIN_DOMAIN, PAYLOAD

READ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
WAYS = ("kept", "replayed", "parsed")


class _Transport:
    """What a viewer connection writes to, counted and dropped."""

    def __init__(self) -> None:
        self.writes = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    abort = pause_reading = resume_reading = close


def _keep_nothing(*args: object) -> None:
    """``lean.keep_hit`` for the ways without kept answers: nothing kept (the protocol never asks ``again``)."""


async def measure(hits: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds per hit of each way, one figure per round."""
    from bench.procs import start_payload_server
    from edge.cdn import lean
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server import viewer
    from edge.cdn.server.pop import start_pop

    origin, origin_port = await start_payload_server(PAYLOAD)
    pop = PopSettings("IAD", "us-east-1", "127.0.0.1", 0, 0.0)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin_port)})
    running = await start_pop(pop, load_distribution(_config("hit"), settings), settings)
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    remembered, real_keep = viewer.MAX_REMEMBERED_BYTES, lean.keep_hit
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(READ)  # the miss that caches the object
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        writer.close()
        for _ in range(rounds):
            for way in WAYS:
                viewer.MAX_REMEMBERED_BYTES = 0 if way == "parsed" else remembered
                conn = viewer.viewer_connection(running.listener.app)
                transport = _Transport()
                conn.connection_made(transport)  # type: ignore[arg-type]
                lean.keep_hit = real_keep if way == "kept" else _keep_nothing  # type: ignore[assignment]
                for _ in range(4):  # remembered, replayed, kept
                    conn.data_received(READ)
                t0 = time.perf_counter()
                for _ in range(hits):
                    conn.data_received(READ)
                results[way].append((time.perf_counter() - t0) / hits * 1e6)
                if transport.writes != hits + 4 or b"X-Cache: Hit from cloudfront" not in transport.last:
                    raise RuntimeError(f"{way}: {transport.writes} answers to {hits + 4} reads, the last "
                                       f"{transport.last[:300]!r}")
                conn.connection_lost(None)
    finally:
        viewer.MAX_REMEMBERED_BYTES, lean.keep_hit = remembered, real_keep
        await running.stop()
        await origin.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hits", type=int, default=20_000, help="reads per way and round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (the median is printed)")
    args = p.parse_args(argv)
    import uvloop

    uvloop.install()
    results = asyncio.run(measure(args.hits, args.rounds))
    base = statistics.median(results["replayed"])
    print(f"POP Python per repeated 1 KB cache hit, {args.hits:,} reads x {args.rounds} rounds (medians):")
    for way in WAYS:
        median = statistics.median(results[way])
        runs = ", ".join(f"{x:.2f}" for x in results[way])
        print(f"  {way:9} {median:6.2f} us   {median / base:5.2f}x replayed   (rounds: {runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
