"""Process and load-generator helpers shared by the benchmark scripts (servers under test run as children)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


async def start_payload_server(payload: bytes, port: int = 0, backlog: int = 128) -> tuple[web.AppRunner, int]:
    """A bare aiohttp server answering every path with ``payload``, cacheable for an hour: the origin and the
    plain-server baseline of the benchmarks. Returns (runner, bound port); the caller cleans the runner up."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=payload, headers={"Cache-Control": "max-age=3600", "Content-Type": "text/plain"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=backlog)
    await site.start()
    return runner, int(runner.addresses[0][1])  # the one site's socket name: (host, port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, SIGKILL after ``grace_s``, and reap."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_listening(argv: Sequence[str], port: int, what: str, timeout_s: float,
                    cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` and wait until it accepts TCP connections on ``port``; RuntimeError (child reaped) if it
    exits or does not listen within ``timeout_s``."""
    proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} server exited with {proc.returncode}") from None
            time.sleep(0.05)
    stop_process(proc, 5)
    raise RuntimeError(f"{what} server did not start")


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` (all its threads); zeros once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# a wrk Lua script giving every request its own X-Seq header (in no cache key): no two request heads the same, so
# the POP replays no read (edge.cdn.server.viewer) and no CloudFront function answers from memory; counted from
# 100,000 x the run's start second (mod 10^6: LuaJIT prints integers up to 10^14 exactly), so that runs a second or
# more apart, each under 100,000 requests per second, never send the same value
VARIED_LUA = """
local n = (os.time() % 1000000) * 100000
request = function()
  n = n + 1
  return wrk.format(nil, nil, {["X-Seq"] = tostring(n)})
end
"""


def run_wrk(options: Sequence[str], url: str, duration_s: float, cpus: set[int] | None = None) -> str:
    """wrk's output for one run (1 thread unless ``options`` say otherwise; on ``cpus`` only, when given);
    RuntimeError when it saw non-2xx responses or printed no throughput."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    out = subprocess.run(["wrk", *options, url], capture_output=True, text=True, timeout=duration_s + 30,
                         check=True, preexec_fn=pin).stdout
    if "Non-2xx" in out or not re.search(r"Requests/sec:\s+[\d.]+", out):
        raise RuntimeError(f"wrk run invalid (non-2xx responses or no figures):\n{out}")
    return out


def pin_process(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` (and what it starts from now on) runs on ``cpus`` only."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def wrk_rps(out: str) -> float:
    """The Requests/sec figure of wrk's output; RuntimeError naming the output when there is none."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"no Requests/sec line in wrk's output:\n{out}")
    return float(m.group(1))
