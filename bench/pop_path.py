"""The POP's own instructions per request, in one process: deterministic to the last few instructions.

    .venv/bin/python -m bench.pop_path [--cases hit,trigger-hit,pass,miss] [--requests 2000]
    .venv/bin/python -m bench.pop_path --drive CASE N      (one run without valgrind: what callgrind counts)

``bench.pop_instructions`` counts a whole POP process with its invocation core and real workers, so its figures
move by a few thousand instructions from run to run (the core's periodic work grows with valgrind's wall time,
the event loop interleaves differently on a loaded machine). This one counts only what the POP itself executes
per request, the same way every time: a POP (``start_pop``), a 1 KB origin and a keep-alive client run in one
uvloop process; for ``trigger-hit`` the viewer-request association's target answers on the next turn of the
event loop with the header-adding function's result (no invocation core, no worker process: what remains is the
POP side of a triggered hit, i.e. the viewer protocol, the pipeline, the Lambda@Edge event and result, the
request's task and its wake-ups). The process runs under ``valgrind --tool=callgrind`` twice, with ``--requests``
/ 10 and ``--requests`` sequential requests after the same warm-up; instructions per request = the difference of
the two totals / the difference of the request counts, so start-up and shutdown cancel out. Use it to compare
two versions of the POP code (same machine or not: the counts do not depend on load).

What each case includes besides the POP: the client's side of the exchange (asyncio streams, the same for every
case and version) and, for ``pass`` and ``miss``, the in-process aiohttp origin answering (the same for every
version). Cases: ``hit`` (a cached 1 KB object), ``trigger-hit`` (the same behind a viewer-request association),
``pass`` (CachingDisabled: to the origin every time), ``miss`` (a distinct cache key per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.trigger_bench import ORIGIN_DOMAIN, PAYLOAD, _distribution
from edge.invocation.models import InvocationResult, Outcome

CASES = ("hit", "trigger-hit", "pass", "miss")
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
WARMUP = 100


class _InstantTarget:
    """A prepared invocation target answering with what the benchmark's function returns (the request plus an
    ``X-Bench`` header), one event-loop turn later (as a reply read from a worker's socket would)."""

    def __init__(self) -> None:
        self.payload = b""

    def _result(self, payload: bytes, request_id: str | None) -> InvocationResult:
        if not self.payload:  # the function's result for this (fixed) request, made once
            request = orjson.loads(payload)["Records"][0]["cf"]["request"]
            request["headers"]["x-bench"] = [{"key": "X-Bench", "value": "1"}]
            self.payload = orjson.dumps(request)
        return InvocationResult(Outcome.OK, self.payload, request_id or "", "1", duration_ms=1.0)

    async def invoke(self, payload: bytes, request_id: str | None = None,
                     trace_id: str | None = None) -> InvocationResult:
        loop = asyncio.get_running_loop()
        turn = loop.create_future()
        loop.call_soon(turn.set_result, None)
        await turn
        return self._result(payload, request_id)

    def submit(self, payload: bytes, request_id: str | None, trace_id: str | None,
               done: Callable[[InvocationResult], object]) -> bool:
        """The result one loop turn later, as ``Executor.submit`` gives it from a worker channel's data_received."""
        asyncio.get_running_loop().call_soon(done, self._result(payload, request_id))
        return True


class _Invoker:
    def __init__(self) -> None:
        self.target = _InstantTarget()

    def prepare(self, *args: object, **kwargs: object) -> _InstantTarget:
        return self.target


def _config(case: str) -> dict:
    cfg = _distribution(case == "trigger-hit")
    if case == "pass":
        default = cfg["DistributionConfig"]["DefaultCacheBehavior"]
        for name in ("ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL"):
            default.pop(name, None)
        default["CachePolicyId"] = CACHING_DISABLED
    return cfg


async def drive(case: str, requests: int) -> str:
    """Serve ``WARMUP`` + ``requests`` sequential requests of ``case`` through an in-process POP; the last
    response's head."""
    from bench.procs import start_payload_server
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.lambda_edge.runner import EdgeTriggerRunner, VersionFacts
    from edge.cdn.server.pop import start_pop

    facts = [VersionFacts("1", "r", 5.0, 128, 1000, (), (), "python3.11", "x86_64", 512)]

    async def lookup(name: str, qualifier: str) -> list[VersionFacts]:
        return facts

    origin, origin_port = await start_payload_server(PAYLOAD)
    pop = PopSettings("IAD", "us-east-1", "127.0.0.1", 0, 0.0)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin_port)})
    # association checks once (a re-check every 0.5 s would count with valgrind's wall time)
    runner = EdgeTriggerRunner(_Invoker(), region="us-east-1", facts=lookup, checks_ttl_s=1e9)
    running = await start_pop(pop, load_distribution(_config(case), settings), settings, triggers=runner)
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    same = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    head = b""
    try:
        for i in range(WARMUP + requests):  # the client's part kept small: one write, two reads
            writer.write(b"GET /m/%d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n" % i if case == "miss" else same)
            head = await reader.readuntil(b"\r\n\r\n")
            at = head.find(b"\r\nContent-Length: ")
            if at < 0:
                raise RuntimeError(f"no Content-Length in {head!r}")
            await reader.readexactly(int(head[at + 18:head.index(b"\r", at + 18)]))
    finally:
        writer.close()
        await running.stop()
        await origin.cleanup()
    return head.decode("latin-1")


def _count(case: str, requests: int) -> int:
    """Instructions of one callgrind run of ``--drive case requests``."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "valgrind.log"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", f"--log-file={log}",
               sys.executable, "-m", "bench.pop_path", "--drive", case, str(requests)]
        subprocess.run(cmd, check=True, env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL)
        found = re.search(r"Collected : (\d+)", log.read_text())
        if found is None:
            raise RuntimeError(f"no instruction count in {log.read_text()[-500:]}")
        return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    p.add_argument("--requests", type=int, default=2000, help="requests of the longer run (the shorter: a tenth)")
    p.add_argument("--drive", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.drive:
        import uvloop

        case, n = args.drive[0], int(args.drive[1])
        print(uvloop.run(drive(case, n)), end="")
        return
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        p.error(f"unknown case(s) {', '.join(sorted(unknown))}: choose from {', '.join(CASES)}")
    if not args.requests >= 20:
        p.error("--requests must be at least 20")
    short = args.requests // 10
    for case in cases:
        per = (_count(case, args.requests) - _count(case, short)) / (args.requests - short)
        print(f"{case:12s} {per:10,.0f} instructions/request (POP side in one process; ({args.requests} - {short}) "
              "requests)")


if __name__ == "__main__":
    main()
