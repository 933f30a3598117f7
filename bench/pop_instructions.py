"""POP-process instructions per request, counted by callgrind (deterministic, unlike wall-clock throughput).

    .venv/bin/python -m bench.pop_instructions [--requests 2000] [--rounds 3] [--out DIR] [--keep]
                                               [--runtime nodejs20.x] [--cases hit,trigger-hit]

A POP runs under ``valgrind --tool=callgrind`` (instrumentation switched on only after start-up), its origin and
the Lambda worker processes run natively (``--trace-children=no``; the zygote is exec'd), and this driver sends
the requests with a plain ``http.client`` keep-alive connection from outside valgrind. For each case the driver
warms up (``--warmup`` requests), then ``--rounds`` times zeroes the counters (``callgrind_control -z``), sends
``--requests`` sequential requests and dumps (``callgrind_control -d``); instructions per request = a dump's total
/ requests, reported as the median of the rounds (with their spread).

Not everything the POP process executes is per request: its invocation core has periodic work (the registry's
change feed, log flushing, idle-environment reaping) whose cost grows with wall time, and under valgrind a round
takes seconds (the trigger runner's association re-checks, every 0.5 s by default, are disabled for the same
reason). The driver therefore first measures the idle rate (instructions per second with no request,
``--idle`` seconds) and reports each case both raw and with ``idle rate x round duration`` subtracted. What
remains varies with how the event loop interleaves socket readiness with the client, origin and workers (a
loaded machine changes it by a few percent): compare medians of several rounds, and of several runs.

Cases (one POP, one distribution; the function adds a header, like ``bench/trigger_bench.py``'s):

* ``hit``: a cached 1 KB object, no trigger (behavior ``*``);
* ``trigger-hit``: a cached 1 KB object behind a warm viewer-request function (behavior ``/trig/*``);
* ``miss``: a distinct key per request: origin-request shaping, origin fetch, cache store (behavior ``*``);
* ``pass``: CachingDisabled pass-through to the origin (behavior ``/pass/*``).

Only the POP's public start-up API is used (``start_pop``), so the same script measures an older checkout
(copy it into that checkout's ``bench/`` and run it there with this venv's interpreter).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.trigger_bench import FUNCTION, HANDLER, NODE_HANDLER, ORIGIN_DOMAIN, PAYLOAD  # the same function and object

ROOT = Path(__file__).resolve().parents[1]
CASES = ("hit", "trigger-hit", "miss", "pass")


def _distribution() -> dict:
    legacy = {"ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
              "MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000}
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{FUNCTION}:1"
    trig = {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all", "PathPattern": "/trig/*", **legacy,
            "LambdaFunctionAssociations": {"Quantity": 1, "Items": [
                {"LambdaFunctionARN": arn, "EventType": "viewer-request", "IncludeBody": False}]}}
    passing = {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all", "PathPattern": "/pass/*",
               "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"}  # Managed-CachingDisabled
    return {"DistributionConfig": {
        "CallerReference": "pop-instructions", "Enabled": True, "Comment": "",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o1", "DomainName": ORIGIN_DOMAIN,
                                              "CustomOriginConfig": {"OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o1", "ViewerProtocolPolicy": "allow-all", **legacy},
        "CacheBehaviors": {"Quantity": 2, "Items": [trig, passing]},
    }}


# --- child processes -------------------------------------------------------------------------------------

async def _serve_origin(port: int) -> None:
    from bench.procs import start_payload_server

    await start_payload_server(PAYLOAD, port)
    await asyncio.Event().wait()


async def _serve_pop(port: int, origin_port: int, state_dir: Path, runtime: str = "python3.11") -> None:
    sys.path.insert(0, str(ROOT))
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.settings import OriginTarget, PopSettings, Settings
    from edge.cdn.lambda_edge.runner import EdgeTriggerRunner
    from edge.cdn.server.pop import start_pop
    from edge.control.stack.pop_node import facts_lookup
    from edge.invocation.execution.executor import Executor, ExecutorSettings
    from edge.invocation.service.facade import LambdaService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pop = PopSettings("IAD", "us-east-1", "127.0.0.1", port, 0.0)
    settings = Settings(pops=(pop,), origins={ORIGIN_DOMAIN: OriginTarget(host="127.0.0.1", port=origin_port)})
    service = LambdaService(state_dir, region="us-east-1",
                            executor=Executor(ExecutorSettings(state_dir=state_dir, idle_ttl_s=600.0)))
    await service.start()
    running = None
    try:
        code = state_dir / "code"
        code.mkdir(parents=True, exist_ok=True)
        if runtime.startswith("nodejs"):  # the same function in Node.js (issue 12): the POP side of a Node trigger
            (code / "index.js").write_text(NODE_HANDLER)
        else:
            (code / "index.py").write_text(HANDLER)
        await service.create_function({"FunctionName": FUNCTION, "Runtime": runtime, "Handler": "index.handler",
                                       "Timeout": 5, "MemorySize": 128, "Publish": True}, code_dir=code)
        # association checks cached for the whole run: re-checked every 0.5 s (the default), their registry
        # lookups would add a cost per wall-clock second of the run, which valgrind stretches
        runner = EdgeTriggerRunner(service, region="us-east-1", facts=facts_lookup(service), checks_ttl_s=3600.0)
        running = await start_pop(pop, load_distribution(_distribution(), settings), settings, triggers=runner)
        await stop.wait()
    finally:
        if running is not None:
            await running.stop()
        await service.close()


# --- driver ----------------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(proc: subprocess.Popen, port: int, timeout_s: float) -> None:  # type: ignore[type-arg]
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s")


def _stop(proc: subprocess.Popen, grace_s: float) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def _requests(port: int, paths: list[str]) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers: dict[str, str] = {}
    try:
        for path in paths:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path} -> {resp.status}")
            headers = dict(resp.getheaders())
    finally:
        conn.close()
    return headers


def _paths(case: str, n: int, start: int) -> list[str]:
    if case == "hit":
        return ["/hit"] * n
    if case == "trigger-hit":
        return ["/trig/hit"] * n
    if case == "miss":
        return [f"/miss/{i}" for i in range(start, start + n)]
    return ["/pass/x"] * n


_EXPECT = {"hit": "Hit from cloudfront", "trigger-hit": "Hit from cloudfront", "miss": "Miss from cloudfront",
           "pass": "Miss from cloudfront"}


def _dump_total(out: Path, pid: int, name: str, work: Callable[[], object]) -> int:
    """Zero the counters, run ``work``, dump: the instructions the POP executed meanwhile."""
    _control("-z", str(pid))
    work()
    before = set(out.glob("callgrind.out.*"))
    _control("-d", name, str(pid))
    dumps = sorted(set(out.glob("callgrind.out.*")) - before, key=lambda p: p.stat().st_mtime)
    if not dumps:
        raise RuntimeError(f"{name}: callgrind wrote no dump")
    return _total(dumps[-1])


def _total(dump: Path) -> int:
    text = dump.read_text(errors="replace")
    m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError(f"no totals in {dump}")
    return int(m.group(1))


def run(args: argparse.Namespace) -> dict[str, float]:
    out = Path(args.out or tempfile.mkdtemp(prefix="pop-instr-"))
    out.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="pop-instr-state-"))
    origin_port, pop_port = _free_port(), _free_port()
    origin = subprocess.Popen([sys.executable, "-m", "bench.pop_instructions", "--serve-origin", str(origin_port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL)
    pop = None
    results: dict[str, float] = {}
    try:
        _wait_listening(origin, origin_port, 30)
        pop = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no",
             f"--callgrind-out-file={out}/callgrind.out.%p", sys.executable, "-m", "bench.pop_instructions",
             "--serve-pop", str(pop_port), "--origin-port", str(origin_port), "--state-dir", str(state),
             "--runtime", args.runtime],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(out / "valgrind.log", "w"))  # noqa: SIM115
        _wait_listening(pop, pop_port, 600)
        _control("-i", "on", str(pop.pid))
        _requests(pop_port, ["/hit"])
        idle_rate = _dump_total(out, pop.pid, "idle", lambda: time.sleep(args.idle)) / args.idle
        print(f"{'idle':<12} {idle_rate:>12,.0f} instructions/second", flush=True)
        index = 0
        for case in [c for c in CASES if c in args.cases.split(",")]:
            headers = _requests(pop_port, _paths(case, args.warmup, index))
            index += args.warmup
            if headers.get("X-Cache") != _EXPECT[case] or (case == "trigger-hit") != (
                    "fn-viewer-request" in headers.get("Server-Timing", "")):
                raise RuntimeError(f"{case}: unexpected response headers {headers}")
            raw, net = [], []
            for _ in range(args.rounds):
                paths = _paths(case, args.requests, index)
                index += args.requests
                t0 = time.monotonic()
                total = _dump_total(out, pop.pid, case, functools.partial(_requests, pop_port, paths))
                elapsed = time.monotonic() - t0
                raw.append(total / args.requests)
                net.append((total - idle_rate * elapsed) / args.requests)
            results[case] = statistics.median(net)
            print(f"{case:<12} {results[case]:>12,.0f} instructions/request net of idle (range {min(net):,.0f} - "
                  f"{max(net):,.0f}); raw {statistics.median(raw):,.0f} (median of {args.rounds} rounds of "
                  f"{args.requests})", flush=True)
    finally:
        if pop is not None:
            _stop(pop, 120)
        _stop(origin, 10)
        import shutil

        shutil.rmtree(state, ignore_errors=True)
        if not args.keep and not args.out:
            shutil.rmtree(out, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per case")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per case (the median is reported)")
    p.add_argument("--warmup", type=int, default=200, help="requests per case before counting")
    p.add_argument("--idle", type=float, default=5.0, help="seconds of the idle-rate measurement")
    p.add_argument("--out", help="directory for the callgrind dumps (kept)")
    p.add_argument("--keep", action="store_true", help="keep the dumps of a temporary --out")
    p.add_argument("--runtime", default="python3.11", help="the trigger-hit function's runtime (nodejs20.x...)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
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

        uvloop.run(_serve_pop(args.serve_pop, args.origin_port, args.state_dir, args.runtime))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
