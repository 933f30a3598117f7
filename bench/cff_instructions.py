"""POP-process instructions per cache hit with and without a CloudFront function, counted by callgrind.

    .venv/bin/python -m bench.cff_instructions [--requests 2000] [--rounds 3] [--warmup 300] [--idle 5] [--no-memo]

Instruction counts are deterministic where wall-clock throughput on this shared machine is not: this is issue 13's
main evidence. One POP process runs under ``valgrind --tool=callgrind`` (counting switched on after start-up) with
one distribution: behavior ``*`` serves cache hits with no function, behavior ``/cff/*`` the same cached 1 KB
object behind a viewer-request CloudFront function that adds a header (``bench/cff_pop_bench.py``'s, created and
published through the function store as a POP's runner finds it). The origin runs natively; the requests come from
this driver over one keep-alive connection. The method is ``bench/pop_instructions.py``'s (its helpers are used):
zero the counters, send ``--requests`` sequential requests, dump; per request = total / requests, net of the idle
rate (instructions per second with no request, measured first) times the round's duration; the median of
``--rounds`` rounds, the cases alternating round by round so both see the same process state.

Every measured request repeats the same event, which the engine answers from memory after the first call
(``FunctionEngine``, "Repeated events"); ``--no-memo`` runs the function on every request (the engine's cost).

Reported: instructions per plain hit, per hit with the function, the difference (the function's cost) and
plain / with-function, the throughput ratio the POP process sustains when it is the bottleneck (issue 13's target:
>= 70 %). The runner's catalog poll (every 100 ms in production: a SQLite read in a thread) is set to an hour here,
as ``pop_instructions`` disables the trigger runner's re-checks: under valgrind a round takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cff_pop_bench import CODE, FUNCTION, ORIGIN_DOMAIN, PAYLOAD, RESPONSE_CODE, RESPONSE_FUNCTION
from bench.pop_instructions import _control, _dump_total, _free_port, _requests, _stop, _wait_listening

ROOT = Path(__file__).resolve().parents[1]
CASES = {"hit": "/hit", "cff-hit": "/cff/hit", "vr-hit": "/vr/hit"}


def _distribution() -> dict:
    legacy = {"ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
              "MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000}
    cff = {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all", "PathPattern": "/cff/*", **legacy,
           "FunctionAssociations": {"Quantity": 1, "Items": [
               {"FunctionARN": f"arn:aws:cloudfront::123456789012:function/{FUNCTION}",
                "EventType": "viewer-request"}]}}
    vr = {**cff, "PathPattern": "/vr/*", "FunctionAssociations": {"Quantity": 1, "Items": [
        {"FunctionARN": f"arn:aws:cloudfront::123456789012:function/{RESPONSE_FUNCTION}",
         "EventType": "viewer-response"}]}}
    return {"DistributionConfig": {
        "CallerReference": "cff-instructions", "Enabled": True, "Comment": "",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o1", "DomainName": ORIGIN_DOMAIN,
                                              "CustomOriginConfig": {"OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all", **legacy},
        "CacheBehaviors": {"Quantity": 2, "Items": [cff, vr]},
    }}


async def _serve_origin(port: int) -> None:
    from bench.procs import start_payload_server

    await start_payload_server(PAYLOAD, port)
    await asyncio.Event().wait()


async def _serve_pop(port: int, origin_port: int, state_dir: Path, memo: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    from edge.cdn.cloudfront_functions.db import CffDatabase
    from edge.cdn.cloudfront_functions.functions import FunctionStore
    from edge.cdn.cloudfront_functions.runner import CloudFrontFunctionRunner, FunctionCatalog
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.server.pop import start_pop

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pop = PopSettings("IAD", "us-east-1", "127.0.0.1", port, 0.0)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin_port)})
    db = CffDatabase(state_dir)
    store = FunctionStore(db)
    store.publish(FUNCTION, store.create(FUNCTION, {"Comment": "", "Runtime": "cloudfront-js-1.0"}, CODE)["ETag"])
    store.publish(RESPONSE_FUNCTION, store.create(RESPONSE_FUNCTION, {"Comment": "", "Runtime": "cloudfront-js-1.0"},
                                                  RESPONSE_CODE)["ETag"])
    db.close()
    runner = CloudFrontFunctionRunner(FunctionCatalog(CffDatabase(state_dir), [FUNCTION, RESPONSE_FUNCTION]),
                                      poll_interval=3600.0, memo=memo,
                                      edge_location={"name": "IAD", "serverIp": "127.0.0.1", "region": "us-east-1"})
    await runner.start()
    running = None
    try:
        running = await start_pop(pop, load_distribution(_distribution(), settings), settings, functions=runner)
        await stop.wait()
    finally:
        if running is not None:
            await running.stop()
        await runner.close()


def run(args: argparse.Namespace) -> dict[str, float]:
    out = Path(args.keep or tempfile.mkdtemp(prefix="cff-instr-"))
    out.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="cff-instr-state-"))
    origin_port, pop_port = _free_port(), _free_port()
    origin = subprocess.Popen([sys.executable, "-m", "bench.cff_instructions", "--serve-origin", str(origin_port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL)
    pop = None
    net: dict[str, list[float]] = {case: [] for case in CASES}
    try:
        _wait_listening(origin, origin_port, 30)
        with open(out / "valgrind.log", "w") as vlog:
            pop = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no",
                 f"--callgrind-out-file={out}/callgrind.out.%p", sys.executable, "-m", "bench.cff_instructions",
                 "--serve-pop", str(pop_port), "--origin-port", str(origin_port), "--state-dir", str(state),
                 *(["--no-memo"] if args.no_memo else [])],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=vlog)
        _wait_listening(pop, pop_port, 600)
        for case, path in CASES.items():
            headers = _requests(pop_port, [path] * args.warmup)
            timing = headers.get("Server-Timing", "")
            if headers.get("X-Cache") != "Hit from cloudfront" or ("fn-viewer-request" in timing) != (case == "cff-hit") \
                    or ("fn-viewer-response" in timing) != (case == "vr-hit"):
                raise RuntimeError(f"{case}: unexpected response headers {headers}")
        _control("-i", "on", str(pop.pid))
        idle_rate = _dump_total(out, pop.pid, "idle", lambda: time.sleep(args.idle)) / args.idle
        print(f"{'idle':<8} {idle_rate:>10,.0f} instructions/second", flush=True)
        for _ in range(args.rounds):
            for case, path in CASES.items():
                t0 = time.monotonic()
                total = _dump_total(out, pop.pid, case, functools.partial(_requests, pop_port, [path] * args.requests))
                net[case].append((total - idle_rate * (time.monotonic() - t0)) / args.requests)
    finally:
        if pop is not None:
            _stop(pop, 120)
        _stop(origin, 10)
        import shutil

        shutil.rmtree(state, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    result = {case: statistics.median(v) for case, v in net.items()}
    for case, values in net.items():
        print(f"{case:<8} {result[case]:>10,.0f} instructions/request net of idle (rounds: "
              + ", ".join(f"{v:,.0f}" for v in values) + f"; {args.requests} requests each)")
    added = result["cff-hit"] - result["hit"]
    ratio = result["hit"] / result["cff-hit"] if result["cff-hit"] else 0.0
    print(f"added by the function {added:>10,.0f} instructions per hit; plain / with function {ratio:.1%} "
          f"(target >= 70 %)")
    added = result["vr-hit"] - result["hit"]
    ratio = result["hit"] / result["vr-hit"] if result["vr-hit"] else 0.0
    print(f"viewer-response: added by the function {added:>10,.0f} instructions per hit; plain / with function "
          f"{ratio:.1%} (AWS's security-headers example)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per case and round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median is reported)")
    p.add_argument("--warmup", type=int, default=300, help="requests per case before counting")
    p.add_argument("--idle", type=float, default=5.0, help="seconds of the idle-rate measurement")
    p.add_argument("--keep", help="keep the callgrind dumps in this directory (for callgrind_annotate)")
    p.add_argument("--no-memo", action="store_true",
                   help="run the function on every request (no repeated event answered from memory)")
    p.add_argument("--serve-origin", type=int, help=argparse.SUPPRESS)
    p.add_argument("--serve-pop", type=int, help=argparse.SUPPRESS)
    p.add_argument("--origin-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_origin:
        import uvloop

        uvloop.run(_serve_origin(args.serve_origin))
        return 0
    if args.serve_pop:
        import uvloop

        uvloop.run(_serve_pop(args.serve_pop, args.origin_port, args.state_dir, not args.no_memo))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
