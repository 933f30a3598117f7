"""Node.js and custom-runtime benchmark (issue 12): medians of micro-benchmarks, no HTTP load generator.

Run: ``python -m bench node [--quick] [--major 20]``. Uses uvloop. Bounded: a few thousand invocations, ~20-40 s.

Rows (each with its same-run baseline; the environment level, below the executor, for both runtimes; each warm
figure after 2,000 unmeasured invocations, so that V8 has compiled the shim's hot path as it would in a warm
environment):
- Python worker warm round trip: ``Environment.invoke`` of a forked worker (what the executor calls), log record
  formatted by the worker, trivial handler;
- Node warm round trip: ``NodeProcess.invoke`` of the shim, same payload, log record formatted by the shim.
  Targets: p50 <= 300 us and <= 2x the Python figure;
- Node cold start from a pre-started spare (INIT frame -> handler loaded -> first result: what a new environment
  costs when a spare is ready) and without one (spawn ``node`` + boot + INIT + first result). Target: p50 <= 50 ms
  (with a spare, which is how the pool will start environments);
- custom runtime over the Runtime API, warm: AWS's ``awslambdaric`` (``python -m awslambdaric``) against this
  environment's Runtime API server. Target: p50 <= 1.5 ms. The tutorial bash bootstrap is shown for reference (it
  spawns ``curl`` twice per invocation).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uvloop

from edge.invocation.execution import node_dist
from edge.invocation.execution.environment import WORKER_LOG, Credentials, Environment, worker_config
from edge.invocation.execution.node_process import NodeLaunch, NodeProcess, init_config
from edge.invocation.execution.pool import RUNTIME_DIR
from edge.invocation.execution.runtime_api import CustomConfig, CustomRuntime
from edge.invocation.execution.zygote_client import PROJECT_ROOT, ZygoteClient
from edge.invocation.models import FunctionSpec

PAYLOAD = b'{"key": "value"}'
ARN = "arn:aws:lambda:us-east-1:000000000000:function:bench"
PY_HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
NODE_HANDLER = "exports.handler = async (event, context) => ({ ok: true });\n"
BASH_BOOTSTRAP = """#!/bin/bash
set -euo pipefail
while true; do
  HEADERS="$(mktemp)"
  EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")
  REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)
  rm -f "$HEADERS"
  curl -sS "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response" -d "$EVENT_DATA" >/dev/null
done
"""


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def fmt(samples_s: list[float], unit: str = "us") -> str:
    k = 1e6 if unit == "us" else 1e3
    v = [x * k for x in samples_s]
    return (f"p50 {pct(v, .5):8.1f} {unit}  p95 {pct(v, .95):8.1f} {unit}  p99 {pct(v, .99):8.1f} {unit}  "
            f"mean {statistics.fmean(v):8.1f} {unit}  (n={len(v)})")


async def timed(n: int, warmup: int, call) -> list[float]:  # noqa: ANN001 - an async callable
    out = []
    for i in range(n + warmup):
        t0 = time.perf_counter()
        await call()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


# -- Python worker (same level: Environment.invoke) ------------------------------------------------------------
async def python_warm(work: Path, n: int) -> list[float]:
    code = work / "py"
    code.mkdir()
    (code / "app.py").write_text(PY_HANDLER)
    tmp = work / "py-tmp"
    tmp.mkdir()
    spec = FunctionSpec(function_name="bench", version="$LATEST", revision="r1", runtime="python3.11",
                        handler="app.handler", code_dir=code)
    zygote = ZygoteClient()
    await zygote.start()
    env = Environment(env_id=uuid.uuid4().hex, spec=spec, region="us-east-1", init_type="on-demand", tmp_dir=tmp,
                      log_group="/aws/lambda/bench", log_stream="s", function_name="bench", zygote=zygote)
    try:
        await env.start(worker_config(env, runtime_dir=RUNTIME_DIR, project_root=PROJECT_ROOT,
                                      credentials=Credentials()), 10.0)
        env.mark_busy()

        async def call() -> None:
            out = await env.invoke(str(uuid.uuid4()), PAYLOAD, ARN, None, None, log=WORKER_LOG)
            assert out.payload == b'{"ok": true}', out

        return await timed(n, 2000, call)
    finally:
        await env.stop(graceful=False)
        await zygote.close()


# -- Node ---------------------------------------------------------------------------------------------------------
def node_cfg(work: Path, major: int, dist: node_dist.NodeDist, tag: str) -> dict:
    code = work / f"node-{tag}"
    code.mkdir(exist_ok=True)
    (code / "index.js").write_text(NODE_HANDLER)
    tmp = work / f"node-tmp-{tag}"
    tmp.mkdir(exist_ok=True)
    return init_config(runtime=f"nodejs{major}.x", handler="index.handler", task_root=code, tmp_dir=tmp,
                       function_name="bench", log_group="/aws/lambda/bench", log_stream="s", node_bin=dist.binary)


async def node_invoke(proc: NodeProcess, log: tuple | None = (None, None)) -> None:
    out = await proc.invoke(str(uuid.uuid4()), PAYLOAD, invoked_arn=ARN, timeout_s=3.0, log=log)
    assert out.payload == b'{"ok":true}', out


async def node_warm(work: Path, major: int, dist: node_dist.NodeDist, n: int) -> list[float]:
    proc = await NodeProcess.spawn(NodeLaunch(major), dist)
    try:
        assert (await proc.init(node_cfg(work, major, dist, "warm"), 10.0)).ok
        return await timed(n, 2000, lambda: node_invoke(proc))
    finally:
        await proc.stop(graceful=False)


async def node_cold(work: Path, major: int, dist: node_dist.NodeDist, count: int,
                    spare: bool) -> tuple[list[float], list[float]]:
    """(new environment -> first result, boot only) per start; with ``spare`` the boot is not in the figure."""
    total, boots = [], []
    for i in range(count):
        cfg = node_cfg(work, major, dist, f"cold{i}{spare}")
        if spare:
            proc = await NodeProcess.spawn(NodeLaunch(major), dist)
            await asyncio.sleep(0.02)
            t0 = time.perf_counter()
        else:
            t0 = time.perf_counter()
            proc = await NodeProcess.spawn(NodeLaunch(major), dist)
        try:
            assert (await proc.init(cfg, 10.0)).ok
            await node_invoke(proc, log=([], 0.0))
            total.append(time.perf_counter() - t0)
            boots.append(proc.boot_ms / 1000)
        finally:
            await proc.stop(graceful=False)
    return total, boots


# -- custom runtimes ------------------------------------------------------------------------------------------------
async def custom_warm(work: Path, tag: str, bootstrap: str, files: dict[str, str], n: int) -> tuple[list[float], float]:
    task = work / f"custom-{tag}"
    task.mkdir()
    for name, text in {"bootstrap": bootstrap, **files}.items():
        (task / name).write_text(text)
    (task / "bootstrap").chmod(0o755)
    tmp = work / f"custom-tmp-{tag}"
    tmp.mkdir()
    rt = CustomRuntime(CustomConfig(runtime="provided.al2023", handler="app.handler", task_root=task, tmp_dir=tmp,
                                    function_name="bench", log_group="/aws/lambda/bench", log_stream="s"))
    try:
        init = await rt.start(10.0)
        assert init.ok, init

        async def call() -> None:
            out = await rt.invoke(str(uuid.uuid4()), PAYLOAD, invoked_arn=ARN, timeout_s=5.0)
            assert out.kind.value == "ok", out

        return await timed(n, min(50, n), call), init.init_ms
    finally:
        await rt.stop(graceful=False)


async def run(args: argparse.Namespace) -> None:
    dist = node_dist.find(args.major)
    if dist is None:
        raise SystemExit(f"Node.js {args.major} is not installed: python -m edge.invocation.execution.node_dist "
                         f"install {args.major} (deploy/dev.sh bench does it)")
    work = Path(tempfile.mkdtemp(prefix="edgelab-node-bench-"))
    print(f"node {dist.version} ({dist.source}), python {sys.version.split()[0]}, uvloop {uvloop.__version__}, "
          f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    py = await python_warm(work, args.n)
    print(f"python worker warm round trip : {fmt(py)}")
    nd = await node_warm(work, args.major, dist, args.n)
    print(f"node shim warm round trip     : {fmt(nd)}")
    ratio = pct(nd, .5) / pct(py, .5)
    print(f"  node/python p50             : {ratio:.2f}x   targets: node p50 <= 300 us and <= 2.00x  -> "
          f"{'OK' if pct(nd, .5) <= 300e-6 and ratio <= 2.0 else 'MISSED'}")
    cold, _ = await node_cold(work, args.major, dist, args.cold, spare=True)
    print(f"node cold start, spare ready  : {fmt(cold, 'ms')}   target p50 <= 50 ms -> "
          f"{'OK' if pct(cold, .5) <= 0.050 else 'MISSED'}")
    cold_ns, boots = await node_cold(work, args.major, dist, args.cold, spare=False)
    print(f"node cold start, no spare     : {fmt(cold_ns, 'ms')}")
    print(f"  of which node boot (spawn -> shim ready): p50 {pct(boots, .5) * 1000:6.1f} ms")
    ric, ric_init = await custom_warm(work, "ric", f"#!/bin/sh\nexec {sys.executable} -m awslambdaric app.handler\n",
                                      {"app.py": PY_HANDLER}, args.n)
    print(f"custom runtime (awslambdaric) warm: {fmt(ric)}   target p50 <= 1500 us -> "
          f"{'OK' if pct(ric, .5) <= 1.5e-3 else 'MISSED'}   (Init {ric_init:.1f} ms)")
    bash, bash_init = await custom_warm(work, "bash", BASH_BOOTSTRAP, {}, args.bash)
    print(f"custom runtime (bash + curl) warm: {fmt(bash, 'ms')}   (reference: two curl spawns per invoke; "
          f"Init {bash_init:.1f} ms)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench node")
    parser.add_argument("--n", type=int, default=3000, help="warm invocations per measurement")
    parser.add_argument("--cold", type=int, default=20, help="cold starts to measure (each)")
    parser.add_argument("--bash", type=int, default=50, help="warm invocations of the bash bootstrap")
    parser.add_argument("--major", type=int, default=node_dist.DEFAULT_MAJOR, choices=sorted(node_dist.MAJORS))
    parser.add_argument("--quick", action="store_true", help="n=500, cold=8, bash=20")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.cold, args.bash = 500, 8, 20
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
