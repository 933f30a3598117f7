"""Asynchronous-invocation benchmark: accepting events through the API (durable, group commit) and delivering
them to a trivial function, each with a baseline measured in the same run.

    .venv/bin/python -m bench.async_bench [--duration 8] [--connections 64] [--drain-timeout 60]

(a) accept: wrk (Lua script) POSTs ``Invoke`` with ``X-Amz-Invocation-Type: Event`` to a server whose events
    are not being delivered; every 202 means the event was committed to SQLite first. Baseline: the same
    request as ``DryRun`` (same routing, resolution and validation, no storage). The stored row count is checked
    against the number of 202 answers. Target >= 2,000 events/s.
(b) delivery: the server restarts with delivery on and drains the backlog of (a) into a trivial function
    (real workers); drain rate from the queue depth over time. Baseline: the same executor invoking the same
    function directly (no queue) at the same concurrency. Target >= 1,500 events/s.

The server is this script re-executed with ``--serve`` (uvloop, like the control process); wrk runs in its own
process. Loopback only; every load phase is bounded in time. Needs ``wrk`` (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.procs import free_port
from edge.invocation import zip_files

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
LUA = """
wrk.method = "POST"
wrk.body = '{"key": "value", "n": 1}'
wrk.headers["X-Amz-Invocation-Type"] = "%s"
"""


# -- the server (re-executed subprocess) -------------------------------------------------------------------


async def _serve(state: Path, port: int, deliver: bool, concurrency: int) -> None:
    import signal

    from aiohttp import web

    from edge.control.lambda_api.app import make_lambda_api_app
    from edge.invocation import Executor, ExecutorSettings, LambdaService
    from edge.invocation.models import AsyncSettings

    service = LambdaService(state, executor=Executor(ExecutorSettings(state_dir=state)))
    await service.start()
    if deliver:
        await service.start_async_delivery(AsyncSettings(delivery_concurrency=concurrency))
    runner = web.AppRunner(make_lambda_api_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    await service.close()


def _start_server(state: Path, port: int, deliver: bool, concurrency: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "bench.async_bench", "--serve", str(state), str(port), "1" if deliver else "0",
           str(concurrency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        proc.wait()
        raise SystemExit("benchmark server failed to start")
    return proc


def _stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- measurements ------------------------------------------------------------------------------------------


def _call(url: str, method: str, path: str, body: object | None = None, headers: dict[str, str] | None = None) -> bytes:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def _wrk(url: str, invocation_type: str, duration: float, connections: int, workdir: Path) -> tuple[float, int, int]:
    """(requests/s, completed requests, non-2xx) for ``duration`` seconds. Requests still in flight when wrk
    stops are not counted by wrk but may have been stored: stored - completed is at most ``connections``."""
    script = workdir / f"{invocation_type}.lua"
    script.write_text(LUA % invocation_type)
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(duration))}s", "-s", str(script), "--timeout", "10s",
         f"{url}/2015-03-31/functions/bench/invocations"],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def _stored(state: Path) -> int:
    with sqlite3.connect(state / "registry.db", timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM async_events").fetchone()[0])


def _drain(state: Path, start_depth: int, timeout: float) -> tuple[float, int, float]:
    """(events/s over the drain, events delivered, seconds); samples the durable queue depth."""
    t0 = time.monotonic()
    depth = start_depth
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        depth = _stored(state)
        if depth == 0:
            break
    elapsed = time.monotonic() - t0
    done = start_depth - depth
    return done / elapsed, done, elapsed


async def _direct(state: Path, n: int, concurrency: int) -> float:
    """Baseline: the executor invoking the same function directly, ``concurrency`` at a time."""
    from edge.invocation import Executor, ExecutorSettings, Registry
    from edge.invocation.models import InvokeOptions

    registry = Registry(state)
    spec = registry.resolve("bench", None, random.Random())[0]
    async with Executor(ExecutorSettings(state_dir=state)) as ex:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                await ex.invoke(spec, b'{"key": "value"}', InvokeOptions(request_id=f"r{i}", invoked_arn=spec.arn))

        await asyncio.gather(*(one(i) for i in range(min(concurrency, 32))))  # warm environments
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        rate = n / (time.perf_counter() - t0)
    registry.close()
    return rate


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve":
        import uvloop

        uvloop.run(_serve(Path(argv[1]), int(argv[2]), argv[3] == "1", int(argv[4])))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.async_bench")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--delivery-concurrency", type=int, default=64)
    p.add_argument("--drain-timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="edgelab-async-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_server(state, port, deliver=False, concurrency=args.delivery_concurrency)
        try:
            _call(url, "POST", "/2015-03-31/functions", {
                "FunctionName": "bench", "Runtime": "python3.12", "Handler": "app.handler",
                "Role": "arn:aws:iam::000000000000:role/bench",
                "Code": {"ZipFile": base64.b64encode(zip_files({"app.py": HANDLER})).decode()}})
            dry, _, dry_bad = _wrk(url, "DryRun", args.duration, args.connections, work)
            rps, total, bad = _wrk(url, "Event", args.duration, args.connections, work)
        finally:
            _stop_server(server)
        stored = _stored(state)
        print(f"(a) accept   Event  {rps:8.0f} events/s  ({total} requests, {bad} non-2xx, {stored} stored)")
        print(f"    baseline DryRun {dry:8.0f} req/s     ({dry_bad} non-2xx)   ratio {rps / dry:.2f}   target >= 2000/s:"
              f" {'PASS' if rps >= 2000 and bad == 0 and total <= stored <= total + args.connections else 'FAIL'}")
        server = _start_server(state, port, deliver=True, concurrency=args.delivery_concurrency)
        try:
            rate, done, secs = _drain(state, stored, args.drain_timeout)
        finally:
            _stop_server(server)
        direct = asyncio.run(_direct(state, min(max(done, 2000), 20_000), args.delivery_concurrency))
        print(f"(b) delivery        {rate:8.0f} events/s  ({done} of {stored} delivered in {secs:.1f} s, "
              f"concurrency {args.delivery_concurrency})")
        print(f"    baseline direct {direct:8.0f} invokes/s (executor, no queue)  ratio {rate / direct:.2f}   "
              f"target >= 1500/s: {'PASS' if rate >= 1500 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
