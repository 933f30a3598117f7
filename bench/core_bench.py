"""Invocation-core benchmark: warm round trip, throughput, cold start, memory of a warm idle environment.

Run: ``python -m bench core [--quick]``. Uses uvloop. Bounded: a few thousand invocations, ~10-20 s.
Baseline measured in the same run: a raw length-prefixed ping-pong over a socketpair with a forked echo
process, driven by the same event loop (the floor any process-per-environment design pays).

``python -m bench core --prepared N`` only runs N warm invocations through ``LambdaService.prepare(...)``'s
``PreparedInvoke.invoke`` (the Lambda@Edge trigger path), for an instruction count of the core's side of a warm
invocation (the worker runs in its own process, which callgrind does not follow)::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python -m bench core --prepared 200
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p python -m bench core --prepared 2200
    # (total of the second - total of the first) / 2000 = instructions per warm invocation

``--worker N`` does the same for the worker side, in process (``Worker.recv`` + ``Worker.invoke``).

``python -m bench core --gaps N [--gap-us 150]`` measures the warm round trip N times each back to back, after a busy
gap and after an idle gap of that length (the driver sleeping, as a sequential client's POP does between requests):
what a sequential probe's added latency pays for the CPUs waking up (issue 20's latency row; README, "Tenth stop").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uvloop

from edge.invocation import Executor, ExecutorSettings
from edge.invocation.models import FunctionSpec, InvokeOptions

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"
SEGMENTS = 3


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def _fmt_us(samples: list[float]) -> str:
    us = [x * 1e6 for x in samples]
    return (f"p50 {_pct(us, .5):7.1f} us  p95 {_pct(us, .95):7.1f} us  p99 {_pct(us, .99):7.1f} us  "
            f"mean {statistics.fmean(us):7.1f} us  (n={len(us)})")


# -- baseline: raw socketpair ping-pong ---------------------------------------------------------------------
class _Pong(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None

    def data_received(self, data: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)


async def baseline(n: int) -> list[float]:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # echo child: blocking recv/send, like a worker
        a.close()
        while True:
            data = b.recv(65536)
            if not data:
                os._exit(0)
            b.sendall(data)
    b.close()
    a.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_unix_connection(_Pong, sock=a)
    msg = struct.pack("<III", 40, 2, 0) + b"x" * 42
    samples = []
    for i in range(n + 100):
        proto.waiter = loop.create_future()
        t0 = time.perf_counter()
        transport.write(msg)
        await proto.waiter
        if i >= 100:
            samples.append(time.perf_counter() - t0)
    transport.close()
    await asyncio.sleep(0.01)  # let the loop actually close the socket: the child then sees EOF and exits
    await asyncio.to_thread(os.waitpid, pid, 0)
    return samples


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (from /proc/<pid>/stat), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_precise(pid: int) -> float:
    """On-CPU time of all threads of a process in seconds, with nanosecond resolution (the scheduler's
    ``/proc/<pid>/task/*/schedstat``); falls back to :func:`cpu_seconds` (10 ms ticks) where unavailable."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)


# -- memory ------------------------------------------------------------------------------------------------
def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    out["Uss"] = out.pop("Private_Clean") + out.pop("Private_Dirty")
    return out


# -- the benchmark -----------------------------------------------------------------------------------------
def spec_for(code: Path, revision: str = "r1", name: str = "bench") -> FunctionSpec:
    return FunctionSpec(function_name=name, version="$LATEST", revision=revision, runtime="python3.11",
                        handler="app.handler", code_dir=code)


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="edgelab-bench-"))
    code = work / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    base = await baseline(args.n)  # before the executor exists, so the forked echo inherits none of its fds
    print(f"baseline socketpair ping-pong : {_fmt_us(base)}")
    ex = Executor(ExecutorSettings(state_dir=work / "state"))
    await ex.start()
    try:
        spec = spec_for(code)
        payload = b'{"key": "value"}'

        def opts() -> InvokeOptions:
            return InvokeOptions(request_id=str(uuid.uuid4()), invoked_arn=spec.arn)

        for _ in range(200):  # warm-up (first one is the cold start)
            await ex.invoke(spec, payload, opts())
        warm = []
        worker_pid = ex.environments()[0].pid
        assert worker_pid is not None
        # CPU per invocation: the best of SEGMENTS equal runs (the machine is shared: a burst of other load
        # inflates one segment's cache misses and scheduling cost, rarely all of them)
        per_segment = max(args.n // SEGMENTS, 1)
        cpu_core, cpu_worker = [], []
        for _ in range(SEGMENTS):
            cpu0 = (time.process_time(), cpu_seconds_precise(worker_pid))
            for _ in range(per_segment):
                o = opts()
                t0 = time.perf_counter()
                r = await ex.invoke(spec, payload, o)
                warm.append(time.perf_counter() - t0)
                assert r.payload == b'{"ok": true}', r
            cpu1 = (time.process_time(), cpu_seconds_precise(worker_pid))
            cpu_core.append((cpu1[0] - cpu0[0]) / per_segment * 1e6)
            cpu_worker.append((cpu1[1] - cpu0[1]) / per_segment * 1e6)
        print(f"warm round trip (1 env)      : {_fmt_us(warm)}")
        print(f"  CPU per invocation          : core {min(cpu_core):6.1f} us, worker {min(cpu_worker):6.1f} us "
              f"(best of {SEGMENTS} x {per_segment})")
        print(f"  ratio warm/baseline p50     : {_pct(warm, .5) / _pct(base, .5):.2f}x   "
              f"targets: p50 <= 250 us, p99 <= 1000 us")

        # throughput with 2 environments: two concurrent callers, each loop keeps one env busy
        await asyncio.gather(*[ex.invoke(spec_for(code, name="tp"), payload, opts()) for _ in range(2)])
        tp_spec = spec_for(code, name="tp")

        async def tp_loop(count: int) -> None:
            for _ in range(count):
                await ex.invoke(tp_spec, payload, opts())

        total = args.n * 2
        t0 = time.perf_counter()
        await asyncio.gather(tp_loop(total // 2), tp_loop(total // 2))
        elapsed = time.perf_counter() - t0
        envs = [e for e in ex.environments() if e.spec.function_name == "tp"]
        print(f"throughput (2 envs, 2 callers): {total / elapsed:8.0f} invocations/s "
              f"({total} in {elapsed:.2f} s, envs={len(envs)})   target >= 4000/s")

        # cold start: a new revision each time -> new environment -> first result
        cold, inits = [], []
        for i in range(args.cold):
            s = spec_for(code, revision=f"cold{i}", name="cold")
            t0 = time.perf_counter()
            r = await ex.invoke(s, payload, InvokeOptions(request_id=str(uuid.uuid4()), invoked_arn=s.arn))
            cold.append(time.perf_counter() - t0)
            assert r.cold_start and r.init_duration_ms is not None
            inits.append(r.init_duration_ms / 1000)
            await ex.retire("cold")
            await asyncio.sleep(0.01)
        ms = [x * 1000 for x in cold]
        print(f"cold start (new env -> result): p50 {_pct(ms, .5):6.2f} ms  p95 {_pct(ms, .95):6.2f} ms  "
              f"max {max(ms):6.2f} ms (n={len(ms)})   target p50 <= 25 ms")
        ims = [x * 1000 for x in inits]
        print(f"  of which Init Duration      : p50 {_pct(ims, .5):6.2f} ms")

        # memory of a warm idle environment (and of the zygote it was forked from)
        env = next(e for e in ex.environments() if e.spec.function_name == "bench")
        await asyncio.sleep(0.2)
        assert env.pid is not None and ex._zygote.pid is not None
        m, z = memory_kb(env.pid), memory_kb(ex._zygote.pid)
        print(f"warm idle env memory          : RSS {m['Rss'] / 1024:5.1f} MB  PSS {m['Pss'] / 1024:5.1f} MB  "
              f"USS {m['Uss'] / 1024:5.1f} MB   target RSS <= 25 MB")
        print(f"zygote memory                 : RSS {z['Rss'] / 1024:5.1f} MB  PSS {z['Pss'] / 1024:5.1f} MB  "
              f"USS {z['Uss'] / 1024:5.1f} MB")
    finally:
        await ex.close()


async def prepared_loop(n: int) -> None:
    """``n`` warm invocations through a PreparedInvoke (after a cold start and 200 warm-up calls)."""
    from edge.invocation import LambdaService, zip_files

    work = Path(tempfile.mkdtemp(prefix="edgelab-bench-"))
    # periodic tasks (log flusher, reaper, change-feed poll) off: their share per invocation would depend on how
    # long an invocation takes (under valgrind: ~50x longer), not on what it does
    ex = Executor(ExecutorSettings(state_dir=work / "state", log_flush_interval_s=3600, reaper_interval_s=3600))
    async with LambdaService(work / "state", executor=ex, poll_interval_s=3600) as service:
        await service.create_function({"FunctionName": "bench", "Runtime": "python3.11", "Handler": "app.handler",
                                       "Code": {"ZipFile": zip_files({"app.py": HANDLER})}})
        target = service.prepare("bench", None)
        payload = b'{"key": "value"}'
        for _ in range(200):
            await target.invoke(payload)
        gc.collect()
        gc.freeze()  # start-up objects: a full collection over them would land in one run's count, not the other's
        for _ in range(n):
            r = await target.invoke(payload)
        assert r.payload == b'{"ok": true}', r
    print(f"{n} warm invocations through PreparedInvoke.invoke: done")


def worker_loop(n: int) -> None:
    """``n`` invocations of the worker side in this process (``Worker.recv`` + ``Worker.invoke`` over a
    socketpair, the bench's event and result, the log record formatted as for a warm invocation): the worker's
    own instruction count under callgrind, as ``--prepared`` gives the core's."""
    import ctypes

    from edge.invocation.runtime import context, protocol, worker

    tmp = tempfile.mkdtemp(prefix="edgelab-bench-")
    saved = os.dup(1), os.dup(2)
    out = os.memfd_create("bench-worker-output")  # the worker drains fd 1/2 as its output (a memfd in real life)
    os.dup2(out, 1)
    os.dup2(out, 2)
    try:
        env = {"AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
               "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1"}
        core, sock = socket.socketpair()
        w = worker.Worker(sock, {"env": env, "memory_mb": 1 << 20, "tmp": tmp, "tmp_quota_mb": 0},
                          lambda event, ctx: {"ok": True}, context.RequestIdHolder(), ctypes.CDLL(None))
        meta = {"t": protocol.K_INVOKE, "id": str(uuid.uuid4()), "dl": int((time.time() + 3600) * 1000),
                "arn": "arn:aws:lambda:us-east-1:000000000000:function:bench", "lg": 1}
        frame = b"".join(protocol.encode(meta, b'{"key": "value"}'))
        for _ in range(n):
            core.sendall(frame)
            got = w.recv()
            assert got is not None
            w.invoke(*got)
            reply = core.recv(65536)
        assert b'{"ok": true}' in reply, reply
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    print(f"{n} worker-side invocations in process: done")


BLOCK = 1000  # round trips per mode in a row (gaps_loop)


async def gaps_loop(n: int, gap_us: int, block: int = BLOCK) -> dict[str, float]:
    """Warm round-trip p50 (us) back to back, after ``gap_us`` of spinning and after ``gap_us`` of sleeping, in
    alternating blocks of ``block`` (long enough for the host's adaptive wake-up polling of an idle virtual CPU to settle
    on each pattern, as over a sequential probe: blocks of 100 measured a third of the idle gap's cost)."""
    work = Path(tempfile.mkdtemp(prefix="edgelab-bench-"))
    code = work / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    ex = Executor(ExecutorSettings(state_dir=work / "state"))
    await ex.start()
    samples: dict[str, list[float]] = {"back to back": [], "busy gap": [], "idle gap": []}
    gap_s = gap_us / 1e6
    loop = asyncio.get_running_loop()
    try:
        spec = spec_for(code)
        payload = b'{"key": "value"}'
        for _ in range(200):
            await ex.invoke(spec, payload, InvokeOptions(request_id=str(uuid.uuid4()), invoked_arn=spec.arn))
        for _ in range(max(n // block, 1)):
            for mode, out in samples.items():
                for _ in range(block):
                    if mode == "busy gap":
                        end = time.perf_counter() + gap_s
                        while time.perf_counter() < end:
                            pass
                    elif mode == "idle gap":
                        # the driver idles as a sequential client's POP does, its loop waiting for a thread's sleep
                        # (uvloop's own timers have millisecond resolution): a gap of gap_us and a thread's wake-up
                        await loop.run_in_executor(None, time.sleep, gap_s)
                    o = InvokeOptions(request_id=str(uuid.uuid4()), invoked_arn=spec.arn)
                    t0 = time.perf_counter()
                    await ex.invoke(spec, payload, o)
                    out.append(time.perf_counter() - t0)
    finally:
        await ex.close()
    return {mode: _pct(out, .5) * 1e6 for mode, out in samples.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench core")
    parser.add_argument("--n", type=int, default=3000, help="warm invocations per measurement")
    parser.add_argument("--cold", type=int, default=30, help="cold starts to measure")
    parser.add_argument("--quick", action="store_true", help="n=500, cold=10")
    parser.add_argument("--prepared", type=int, metavar="N",
                        help="only run N warm invocations through LambdaService.prepare (for callgrind)")
    parser.add_argument("--worker", type=int, metavar="N",
                        help="only run N worker-side invocations in this process (for callgrind)")
    parser.add_argument("--gaps", type=int, metavar="N",
                        help="only measure N warm round trips each back to back, after a busy and an idle gap")
    parser.add_argument("--gap-us", type=int, default=150, help="the gap of --gaps (default: %(default)s us)")
    args = parser.parse_args(argv)
    if args.gaps is not None:
        p50 = uvloop.run(gaps_loop(args.gaps, args.gap_us))
        for mode, value in p50.items():
            print(f"warm round trip p50, {mode:12s}: {value:6.1f} us")
        print(f"  an idle gap of {args.gap_us} us adds {p50['idle gap'] - p50['back to back']:.1f} us, a busy one "
              f"{p50['busy gap'] - p50['back to back']:.1f} us (cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f})")
        return 0
    if args.prepared is not None:
        uvloop.run(prepared_loop(args.prepared))
        return 0
    if args.worker is not None:
        worker_loop(args.worker)
        return 0
    if args.quick:
        args.n, args.cold = 500, 10
    print(f"python {sys.version.split()[0]}, uvloop {uvloop.__version__}, cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f}")
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
