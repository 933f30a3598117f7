"""Node.js and custom-runtime benchmark (issue 12): medians of micro-benchmarks, no HTTP load generator.

Run: ``python -m bench node [--quick] [--major 20]``. Uses uvloop. Bounded: a few thousand invocations, ~30-60 s.

Every row goes through ``Executor.invoke`` with a kept ``Route`` (what a POP's prepared trigger does: limiter lease,
pooled environment, the runtime's round trip, the log record stored, metrics), each with its same-run baseline; warm
figures after 2,000 unmeasured invocations (V8 has compiled the shim's hot path, as in a warm environment):

- Python warm round trip (trivial handler): the baseline;
- Node warm round trip, same payload. Targets: p50 <= 300 us and <= 2x the Python figure;
- Node cold start, a new environment to its first result (a new revision each time, so a new pool) with a
  pre-started process ready, which is how the executor starts Node environments. Target p50 <= 50 ms. Also
  without one (``node_spares_per_key=0``: spawn + boot + Init + result), and the Init Duration the REPORT line
  carries (boot + function Init, measured);
- custom runtime warm: AWS's ``awslambdaric`` (``python -m awslambdaric``) as the bootstrap, over this environment's
  Runtime API. Target p50 <= 1.5 ms. The tutorial bash bootstrap is shown for reference (two ``curl`` spawns per
  invocation).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import uvloop

from edge.invocation.execution import node_dist
from edge.invocation.execution.executor import Executor, ExecutorSettings
from edge.invocation.execution.node_process import NodeLaunch
from edge.invocation.models import FunctionSpec, InvokeOptions, Outcome

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


async def timed(n: int, warmup: int, call) -> list[float]:
    out = []
    for i in range(n + warmup):
        t0 = time.perf_counter()
        await call()
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return out


def spec_in(work: Path, name: str, runtime: str, handler: str, files: dict[str, str],
            executable: tuple[str, ...] = ()) -> FunctionSpec:
    code = work / name
    code.mkdir()
    for rel, text in files.items():
        (code / rel).write_text(text)
    for rel in executable:
        (code / rel).chmod(0o755)
    return FunctionSpec(function_name=name, version="$LATEST", revision="r1", runtime=runtime, handler=handler,
                        code_dir=code)


def invoker(ex: Executor, spec: FunctionSpec, expect: bytes) -> Callable[[], object]:
    route = ex.route(spec, "us-east-1", None, None)

    async def call() -> None:
        res = await ex.invoke(spec, PAYLOAD, InvokeOptions(str(uuid.uuid4()), ARN), route=route)
        assert res.outcome is Outcome.OK and res.payload.replace(b" ", b"") == expect, res

    return call


async def warm(ex: Executor, spec: FunctionSpec, n: int, expect: bytes, warmup: int = 2000) -> list[float]:
    return await timed(n, warmup, invoker(ex, spec, expect))


async def node_cold(ex: Executor, spec: FunctionSpec, count: int, spare: bool) -> tuple[list[float], list[float]]:
    """(new environment -> first result, the Init Duration it reported) per start."""
    launch = NodeLaunch.for_function(node_dist.major_of_runtime(spec.runtime) or 0, spec.memory_mb, {})
    total, inits = [], []
    for i in range(count):
        fresh = dataclasses.replace(spec, revision=f"cold-{spare}-{i}")
        if spare:  # measure with a pre-started process ready, as the executor keeps one per launch key
            for _ in range(500):
                if ex.spares.ready(launch):
                    break
                await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        res = await ex.invoke(fresh, PAYLOAD, InvokeOptions(str(uuid.uuid4()), ARN))
        total.append(time.perf_counter() - t0)
        assert res.outcome is Outcome.OK and res.cold_start and res.init_duration_ms is not None, res
        inits.append(res.init_duration_ms / 1000)
        await ex.retire(spec.function_name, keep=())
    return total, inits


async def run(args: argparse.Namespace) -> None:
    dist = node_dist.find(args.major)
    if dist is None:
        raise SystemExit(f"Node.js {args.major} is not installed: python -m edge.invocation.execution.node_dist "
                         f"install {args.major} (deploy/dev.sh bench does it)")
    work = Path(tempfile.mkdtemp(prefix="edgelab-node-bench-"))
    print(f"node {dist.version} ({dist.source}), python {sys.version.split()[0]}, uvloop {uvloop.__version__}, "
          f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    runtime = f"nodejs{args.major}.x"
    py_spec = spec_in(work, "py", "python3.11", "app.handler", {"app.py": PY_HANDLER})
    node_spec = spec_in(work, "node", runtime, "index.handler", {"index.js": NODE_HANDLER})
    ric_spec = spec_in(work, "ric", "provided.al2023", "app.handler",
                       {"bootstrap": f"#!/bin/sh\nexec {sys.executable} -m awslambdaric app.handler\n",
                        "app.py": PY_HANDLER}, executable=("bootstrap",))
    bash_spec = spec_in(work, "bash", "provided.al2023", "app.handler", {"bootstrap": BASH_BOOTSTRAP},
                        executable=("bootstrap",))
    settings = ExecutorSettings(state_dir=work / "state", idle_ttl_s=600.0, install_runtimes=False)
    async with Executor(settings) as ex:
        py = await warm(ex, py_spec, args.n, b'{"ok":true}')
        print(f"python warm round trip (executor): {fmt(py)}")
        nd = await warm(ex, node_spec, args.n, b'{"ok":true}')
        print(f"node warm round trip (executor)  : {fmt(nd)}")
        ratio = pct(nd, .5) / pct(py, .5)
        print(f"  node/python p50                : {ratio:.2f}x   targets: node p50 <= 300 us and <= 2.00x  -> "
              f"{'OK' if pct(nd, .5) <= 300e-6 and ratio <= 2.0 else 'MISSED'}")
        cold, inits = await node_cold(ex, node_spec, args.cold, spare=True)
        print(f"node cold start, spare ready     : {fmt(cold, 'ms')}   target p50 <= 50 ms -> "
              f"{'OK' if pct(cold, .5) <= 0.050 else 'MISSED'}")
        print(f"  Init Duration reported (boot + function Init): p50 {pct(inits, .5) * 1000:6.1f} ms")
        ric = await warm(ex, ric_spec, args.n, b'{"ok":true}', warmup=min(200, args.n))
        print(f"custom runtime (awslambdaric) warm: {fmt(ric)}   target p50 <= 1500 us -> "
              f"{'OK' if pct(ric, .5) <= 1.5e-3 else 'MISSED'}")
        bash = await warm(ex, bash_spec, args.bash, PAYLOAD.replace(b" ", b""), warmup=5)
        print(f"custom runtime (bash + curl) warm: {fmt(bash, 'ms')}   (reference: two curl spawns per invoke)")
    async with Executor(dataclasses.replace(settings, state_dir=work / "state2", node_spares_per_key=0)) as ex:
        cold_ns, inits_ns = await node_cold(ex, node_spec, args.cold, spare=False)
        print(f"node cold start, no spare        : {fmt(cold_ns, 'ms')}")
        print(f"  Init Duration reported (boot + function Init): p50 {pct(inits_ns, .5) * 1000:6.1f} ms")


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
