"""Every performance figure of edgelab in one run, each beside its baseline measured in the same run.

    python -m bench all [--quick] [--markdown] [--only core,pop,trigger,nginx]

Runs, each in its own subprocess (their load generators and servers stay out of this process):

- ``core``     bench/core_bench.py: warm round trip vs a raw socketpair ping-pong, throughput, cold start, memory;
- ``pop``      bench/pop_bench.py: cache-hit throughput vs a bare aiohttp server, miss pass-through vs a bare
               aiohttp reverse proxy, RSS under many keys (wrk drives HTTP);
- ``trigger``  bench/trigger_bench.py: cache hits with a warm viewer-request function vs without one;
- ``trigger-node``  the same with the function in Node.js (``--runtime nodejs20.x``);
- ``node``     bench/node_bench.py: Node.js warm round trip vs Python's (same run), Node cold start, custom runtime
               warm (issue 12);
- ``nginx``    here: POP cache hits vs nginx ``proxy_cache`` hits in front of the same origin (only when ``nginx``
               is on PATH; started with a temporary config on loopback), as wrk sends them (the same head again and
               again, which the POP replays without parsing) and with every request's head different (``VARIED_LUA``);
- ``async``    bench/async_bench.py: accepting Event invokes vs DryRun, draining the queue vs direct invokes
               (row marked skipped while the script is absent);
- ``cff``      bench/cff_bench.py: a CloudFront function's viewer-request step and one KVS get, in process (medians);
- ``cff_pop``  bench/cff_pop_bench.py: cache hits through a POP with a CloudFront viewer-request function vs
               without: added p50 latency, POP CPU per hit (and requests/s under wrk when it is on PATH).
- ``whatif``   bench/whatif_bench.py: ``edgelab whatif`` on a generated 1,000,000-line log (200,000 with --quick),
               lines per second with every core vs one process in the same run.

Then prints one table (absolute figures, baseline, ratio, target, verdict); ``--markdown`` prints it as the
Markdown table of the README's Performance section. The other scripts print text for people; their figures are
read here with regular expressions (:func:`parse_core`, :func:`parse_pop`, :func:`parse_trigger`), so a change of
their wording shows up as a ``no figures`` row, never as a wrong number.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import VARIED_LUA, free_port, pin_process, run_wrk, stop_process
from bench.procs import wrk_rps as parse_rps
from bench.trigger_bench import BEFORE_ISSUE_20

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    bench: str
    measured: str  # edgelab's figure
    baseline: str = "-"  # what it is compared with, measured in the same run
    ratio: str = "-"
    target: str = "-"
    result: str = "-"  # OK, MISSED, skipped, FAILED, or "-" when there is no target


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def _f(pattern: str, text: str) -> float | None:
    m = re.search(pattern, text)
    return float(m.group(1).replace(",", "")) if m else None


def parse_core(text: str) -> list[Row]:
    """Rows from ``bench/core_bench.py`` output."""
    base50 = _f(r"baseline socketpair ping-pong\s*:\s*p50\s+([\d.]+) us", text)
    base99 = _f(r"baseline socketpair ping-pong\s*:.*?p99\s+([\d.]+) us", text)
    warm50 = _f(r"warm round trip \(1 env\)\s*:\s*p50\s+([\d.]+) us", text)
    warm99 = _f(r"warm round trip \(1 env\)\s*:.*?p99\s+([\d.]+) us", text)
    tput = _f(r"throughput \(2 envs, 2 callers\):\s*([\d.]+) invocations/s", text)
    cold50 = _f(r"cold start \(new env -> result\): p50\s+([\d.]+) ms", text)
    init50 = _f(r"of which Init Duration\s*:\s*p50\s+([\d.]+) ms", text)
    rss = _f(r"warm idle env memory\s*:\s*RSS\s+([\d.]+) MB", text)
    rows = []
    if warm50 is not None and base50:
        rows.append(Row("core: warm invoke round trip p50", f"{warm50:.0f} us", f"{base50:.0f} us socketpair ping-pong",
                        f"{warm50 / base50:.1f}x", "<= 250 us", _verdict(warm50 <= 250)))
    if warm99 is not None and base99:
        rows.append(Row("core: warm invoke round trip p99", f"{warm99:.0f} us", f"{base99:.0f} us socketpair ping-pong",
                        f"{warm99 / base99:.1f}x", "<= 1000 us", _verdict(warm99 <= 1000)))
    if tput is not None:
        rows.append(Row("core: throughput, 2 envs", f"{tput:,.0f} inv/s", target=">= 4,000/s",
                        result=_verdict(tput >= 4000)))
    if cold50 is not None:
        rows.append(Row("core: cold start p50 (new env -> result)", f"{cold50:.1f} ms",
                        f"{warm50 / 1000:.2f} ms warm" if warm50 else "-",
                        f"{cold50 / (warm50 / 1000):.0f}x" if warm50 else "-", "<= 25 ms", _verdict(cold50 <= 25)))
    if init50 is not None:
        rows.append(Row("core: of which Init Duration p50", f"{init50:.1f} ms"))
    if rss is not None:
        rows.append(Row("core: warm idle environment RSS", f"{rss:.1f} MB", target="<= 25 MB",
                        result=_verdict(rss <= 25)))
    return rows


def parse_pop(text: str) -> list[Row]:
    """Rows from ``bench/pop_bench.py`` output."""
    rows = []
    m = re.search(r"\(a\) cache hit[^\n]*?POP ([\d,.]+) rps[^\n]*? vs bare aiohttp ([\d,.]+) rps", text)
    if m:
        pop, base = (float(x.replace(",", "")) for x in m.groups())
        rows.append(Row("POP: cache hit 1 KB, req/s", f"{pop:,.0f}", f"{base:,.0f} bare aiohttp server",
                        f"{pop / base:.0%}", ">= 70%", _verdict(pop / base >= 0.70)))
    m = re.search(r"\(b\) miss pass-through[^\n]*?POP ([\d,.]+) rps[^\n]*? vs bare proxy ([\d,.]+) rps", text)
    if m:
        pop, base = (float(x.replace(",", "")) for x in m.groups())
        rows.append(Row("POP: miss pass-through 1 KB, req/s", f"{pop:,.0f}", f"{base:,.0f} bare aiohttp proxy",
                        f"{pop / base:.0%}", ">= 150% (issue 20)", _verdict(pop / base >= 1.50)))
    m = re.search(r"\(c\) RSS over many keys\s+(.*?)\s{2,}(OK|OVER)(.*)", text)
    if m:
        rows.append(Row("POP: RSS over many distinct keys", m.group(1).strip(), target=m.group(3).lstrip(": ").strip(),
                        result="OK" if m.group(2) == "OK" else "MISSED"))
    return rows


def parse_trigger(text: str) -> list[Row]:
    """Rows from ``bench/trigger_bench.py`` output."""
    plain = _f(r"no trigger\s+([\d.]+) req/s", text)
    trig = _f(r"viewer-request \(warm\)\s+([\d.]+) req/s", text)
    p50_plain = _f(r"p50 no trigger\s+([\d.]+) ms", text)
    added = _f(r"p50 added latency\s+(-?[\d.]+) ms", text)
    rows = []
    if plain and trig is not None:
        rows.append(Row("trigger: cache hit + warm viewer-request, req/s", f"{trig:,.0f}",
                        f"{plain:,.0f} same POP, no trigger", f"{trig / plain:.0%}", ">= 50% (issue 20)",
                        _verdict(trig / plain >= 0.50)))
    m = re.search(r"before \((\w+)\), warm\s+([\d.]+) req/s", text)
    if m and trig is not None:
        before = float(m.group(2))
        rows.append(Row("trigger: the same, against the code before issue 20, req/s", f"{trig:,.0f}",
                        f"{before:,.0f} at {m.group(1)}, same run", f"{trig / before:.2f}x" if before else "-",
                        ">= 2x (issue 20)", _verdict(before > 0 and trig / before >= 2.0)))
    else:
        m = re.search(r"before \((\w+)\): unavailable \((.*)\)", text)
        if m:
            rows.append(Row("trigger: the same, against the code before issue 20, req/s", "-",
                            f"{m.group(1)} unavailable: {m.group(2)[:80]}", "-", ">= 2x (issue 20)", "-"))
    if added is not None:
        rows.append(Row("trigger: added p50 latency (sequential)", f"{added:.3f} ms",
                        f"{p50_plain:.3f} ms p50 without trigger" if p50_plain is not None else "-", "-",
                        "<= 0.15 ms (issue 20)", _verdict(added <= 0.15)))
    return rows


def parse_trigger_node(text: str) -> list[Row]:
    """Rows from ``bench/trigger_bench.py --runtime nodejs...`` output (issue 12 target: >= 30% of plain hits)."""
    plain = _f(r"no trigger\s+([\d.]+) req/s", text)
    trig = _f(r"viewer-request \(warm\)\s+([\d.]+) req/s", text)
    added = _f(r"p50 added latency\s+(-?[\d.]+) ms", text)
    rows = []
    if plain and trig is not None:
        rows.append(Row("trigger: cache hit + warm Node.js viewer-request, req/s", f"{trig:,.0f}",
                        f"{plain:,.0f} same POP, no trigger", f"{trig / plain:.0%}", ">= 30%",
                        _verdict(trig / plain >= 0.30)))
    if added is not None:
        rows.append(Row("trigger: added p50 latency, Node.js (sequential)", f"{added:.3f} ms", target="<= 0.5 ms",
                        result=_verdict(added <= 0.5)))
    return rows


def parse_node(text: str) -> list[Row]:
    """Rows from ``bench/node_bench.py`` output."""
    py50 = _f(r"python warm round trip \(executor\)\s*:\s*p50\s+([\d.]+) us", text)
    node50 = _f(r"node warm round trip \(executor\)\s*:\s*p50\s+([\d.]+) us", text)
    cold50 = _f(r"node cold start, spare ready\s*:\s*p50\s+([\d.]+) ms", text)
    cold_ns = _f(r"node cold start, no spare\s*:\s*p50\s+([\d.]+) ms", text)
    init50 = _f(r"spare ready.*?\n\s*Init Duration reported \(boot \+ function Init\): p50\s+([\d.]+) ms", text)
    ric50 = _f(r"custom runtime \(awslambdaric\) warm:\s*p50\s+([\d.]+) us", text)
    rows = []
    if node50 is not None and py50:
        ok = node50 <= 300 and node50 / py50 <= 2.0
        rows.append(Row("node: warm invoke round trip p50 (executor)", f"{node50:.0f} us",
                        f"{py50:.0f} us Python, same run", f"{node50 / py50:.2f}x", "<= 300 us and <= 2x",
                        _verdict(ok)))
    if cold50 is not None:
        rows.append(Row("node: cold start p50 (new env -> result, spare ready)", f"{cold50:.1f} ms",
                        f"{cold_ns:.1f} ms without a spare" if cold_ns is not None else "-", "-", "<= 50 ms",
                        _verdict(cold50 <= 50)))
    if init50 is not None:
        rows.append(Row("node: of which Init Duration reported p50 (boot + Init)", f"{init50:.1f} ms"))
    if ric50 is not None:
        rows.append(Row("custom runtime: warm invoke p50 (awslambdaric, Runtime API)", f"{ric50:.0f} us",
                        target="<= 1500 us", result=_verdict(ric50 <= 1500)))
    return rows


def run_script(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run one benchmark script in its own process group; (exit status, stdout + stderr).

    Output goes to a file, not a pipe, so a helper process that outlives the script cannot block the read; on
    timeout the whole group the script started is killed and the status is -1.
    """
    import signal
    import tempfile

    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
            note = ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code, note = -1, f"\n(timed out after {timeout:.0f} s)"
        out.seek(0)
        return code, out.read().decode(errors="replace") + note


def _bench_rows(name: str, argv: list[str], parse: Callable[[str], list[Row]], timeout: float,
                ok_codes: tuple[int, ...] = (0,)) -> list[Row]:
    code, out = run_script(argv, timeout)
    rows = parse(out)
    if code not in ok_codes or not rows:
        tail = " / ".join(line.strip() for line in out.strip().splitlines()[-2:])[:160]
        rows.append(Row(f"{name}: run", f"exit {code}" if code not in ok_codes else "no figures found",
                        result="FAILED", target=tail or "-"))
    return rows


def core_rows(quick: bool) -> list[Row]:
    return _bench_rows("core", ["-m", "bench", "core", *(["--quick"] if quick else [])], parse_core, 300)


def pop_rows(quick: bool) -> list[Row]:
    args = ["--duration", "2", "--keys", "20000"] if quick else []
    return _bench_rows("pop", ["-m", "bench.pop_bench", *args], parse_pop, 300)


def trigger_rows(quick: bool) -> list[Row]:
    # exit status 1 means "a target was missed": the figures are still valid and the row says MISSED
    # --against: issue 20's 2x row measures the trigger POP of the commit before its work in the same run
    return _bench_rows("trigger", ["-m", "bench.trigger_bench", "--against", BEFORE_ISSUE_20,
                                   *(["--quick"] if quick else [])], parse_trigger, 400, ok_codes=(0, 1))


def trigger_node_rows(quick: bool) -> list[Row]:
    return _bench_rows("trigger-node", ["-m", "bench.trigger_bench", "--runtime", "nodejs20.x",
                                        *(["--quick"] if quick else [])], parse_trigger_node, 300, ok_codes=(0, 1))


def node_rows(quick: bool) -> list[Row]:
    return _bench_rows("node", ["-m", "bench.node_bench", *(["--quick"] if quick else [])], parse_node, 600)


NGINX_CONF = """
worker_processes 1;
daemon off;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache keys_zone=edge:10m max_size=64m;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_valid 200 1h;
        }}
    }}
}}
"""


class Nginx:
    """nginx with a temporary proxy_cache config on loopback (its processes on ``cpus``, when given); ``stop()``
    terminates and reaps it."""

    def __init__(self, origin_port: int, port: int, tmp: Path, cpus: set[int] | None = None) -> None:
        user = "user root root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""  # workers write the cache
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, origin=origin_port, port=port))
        self.proc = subprocess.Popen(["nginx", "-e", str(tmp / "error.log"), "-p", str(tmp), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=None if cpus is None else (lambda: os.sched_setaffinity(0, cpus)))
        self.port = port

    def stop(self) -> None:
        stop_process(self.proc, 10)


def wrk_rps(port: int, path: str, duration: int, connections: int, script: Path | None = None,
            cpus: set[int] | None = None) -> float:
    """Requests/second by wrk (1 thread, on ``cpus`` when given) on loopback (``script``: a wrk Lua script);
    RuntimeError if any response was not 2xx."""
    extra = ["-s", str(script)] if script is not None else []
    return parse_rps(run_wrk(["-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", *extra],
                             f"http://127.0.0.1:{port}{path}", duration, cpus))


NGINX_ROUNDS = 3  # alternating rounds of the POP and nginx per run of the nginx rows (the medians are compared)


def nginx_rows(quick: bool) -> list[Row]:
    """POP cache hits vs nginx proxy_cache hits (same 1 KB origin, same wrk settings, same run): ``NGINX_ROUNDS``
    alternating rounds of each (one when ``quick``), medians; on a machine with two CPUs or more the server under
    test runs on CPU 0 and wrk on CPU 1, both servers alike (unpinned, the scheduler sometimes put wrk and the
    server on one CPU and a run's ratio moved by +-15 %)."""
    if shutil.which("nginx") is None:
        return [Row("POP vs nginx proxy_cache: cache hit", "-", result="skipped", target="nginx not on PATH")]
    import tempfile
    import urllib.request

    from bench.pop_bench import Server  # the POP and origin server processes of the POP benchmark

    duration, rounds = (2, 1) if quick else (3, NGINX_ROUNDS)
    server_cpus, wrk_cpus = ({0}, {1}) if (os.cpu_count() or 1) >= 2 else (None, None)
    servers: list = []
    nginx = None
    with tempfile.TemporaryDirectory(prefix="edgelab-nginx-") as tmp:
        try:
            origin = Server("bare")
            servers.append(origin)
            pop = Server("pop", origin.port)
            servers.append(pop)
            if server_cpus is not None:
                pin_process(pop.proc.pid, server_cpus)
            nginx = Nginx(origin.port, free_port(), Path(tmp), server_cpus)
            deadline = time.monotonic() + 10
            while True:  # ready, and the object cached: the second GET is a proxy_cache hit
                try:
                    for _ in range(2):
                        urllib.request.urlopen(f"http://127.0.0.1:{nginx.port}/obj", timeout=2).read()
                    break
                except OSError:
                    if nginx.proc.poll() is not None or time.monotonic() > deadline:
                        err = nginx.proc.stderr.read().decode(errors="replace") if nginx.proc.stderr else ""
                        return [Row("POP vs nginx proxy_cache: cache hit", "-", result="FAILED",
                                    target=f"nginx did not start: {err.strip()[:120]}")]
                    time.sleep(0.1)
            pop.get("/obj")
            script = Path(tmp) / "varied.lua"
            script.write_text(VARIED_LUA)
            runs: dict[tuple[int, Path | None], list[float]] = {}
            for _ in range(rounds):
                for lua in (None, script):
                    for port in (pop.port, nginx.port):
                        runs.setdefault((port, lua), []).append(wrk_rps(port, "/obj", duration, 32, lua, wrk_cpus))
            pop_rps, ngx_rps, pop_varied, ngx_varied = (statistics.median(runs[port, lua]) for lua in (None, script)
                                                        for port in (pop.port, nginx.port))
        finally:
            if nginx is not None:
                nginx.stop()
            for srv in servers:
                srv.stop()
    pinned = f", median of {rounds}" + (", pinned" if server_cpus is not None else "")  # (the docstring says how)
    return [Row("POP vs nginx proxy_cache: cache hit 1 KB, req/s", f"{pop_rps:,.0f}",
                f"{ngx_rps:,.0f} nginx proxy_cache (1 worker){pinned}", f"{pop_rps / ngx_rps:.0%}", ">= 100% (issue 20)",
                _verdict(pop_rps >= ngx_rps)),
            Row("  the same, every request's head different (X-Seq), req/s", f"{pop_varied:,.0f}",
                f"{ngx_varied:,.0f} nginx proxy_cache (1 worker)", f"{pop_varied / ngx_varied:.0%}",
                "(no target: no read is parsed twice)")]


def parse_async(text: str) -> list[Row]:
    """Rows from ``bench/async_bench.py`` output."""
    rows = []
    accept, dry = _f(r"\(a\) accept\s+Event\s+([\d.]+) events/s", text), _f(r"baseline DryRun\s+([\d.]+) req/s", text)
    verdict_a = re.search(r"baseline DryRun.*target >= 2000/s:\s*(PASS|FAIL)", text)
    if accept is not None and dry:
        rows.append(Row("async: accept Event invokes, events/s", f"{accept:,.0f}", f"{dry:,.0f} DryRun req/s",
                        f"{accept / dry:.0%}", ">= 2,000/s",
                        "OK" if verdict_a and verdict_a.group(1) == "PASS" else "MISSED"))
    drain, direct = _f(r"\(b\) delivery\s+([\d.]+) events/s", text), _f(r"baseline direct\s+([\d.]+) invokes/s", text)
    if drain is not None and direct:
        rows.append(Row("async: delivery drain, events/s", f"{drain:,.0f}", f"{direct:,.0f} direct invokes/s",
                        f"{drain / direct:.0%}", ">= 1,500/s", _verdict(drain >= 1500)))
    return rows


def async_rows(quick: bool) -> list[Row]:
    if not (ROOT / "bench" / "async_bench.py").exists():
        return [Row("async invocation acceptance", "-", result="skipped", target="async benchmark not built yet")]
    args = ["--duration", "3", "--drain-timeout", "30"] if quick else []
    return _bench_rows("async", ["-m", "bench.async_bench", *args], parse_async, 300)


def parse_cff(text: str) -> list[Row]:
    """Rows from ``bench/cff_bench.py`` output (CloudFront Functions, in process)."""
    step = _f(r"cff viewer-request step \(event\+run\+apply\) p50\s+([\d.]+) µs", text)
    kvs = _f(r"cff kvs get \(difference\)\s+p50\s+(-?[\d.]+) µs", text)
    rows = []
    if step is not None:
        rows.append(Row("cff: viewer-request function step p50 (event, run, apply)", f"{step:.1f} us", target="<= 50 us",
                        result=_verdict(step <= 50)))
    if kvs is not None:
        rows.append(Row("cff: KVS get inside a function p50", f"{kvs:.1f} us", "same async function without it",
                        target="<= 20 us", result=_verdict(kvs <= 20)))
    return rows


def parse_cff_pop(text: str) -> list[Row]:
    """Rows from ``bench/cff_pop_bench.py`` output (CloudFront Functions through a POP)."""
    plain50 = _f(r"p50 no function\s+([\d.]+) us", text)
    added = _f(r"p50 added latency\s+(-?[\d.]+) us", text)
    cpu_plain = _f(r"POP CPU per hit, no function\s+([\d.]+) us", text)
    cpu_cff = _f(r"with cff\s+([\d.]+) us", text)
    rps_plain = _f(r"no function\s+([\d.]+) req/s", text)
    rps_cff = _f(r"viewer-request cff\s+([\d.]+) req/s", text)
    cpu_vr = _f(r"viewer-response .*POP CPU per hit ([\d.]+) us", text)
    varied = re.search(r"every event different \(X-Seq\): p50 added (-?[\d.]+) us, POP CPU per hit ([\d.]+) us, "
                       r"with cff ([\d.]+) us", text)
    rps_varied = re.search(r"every event different: no function ([\d.]+) req/s, viewer-request cff ([\d.]+) req/s",
                           text)
    rps_vr = _f(r"viewer-response cff\s+([\d.]+) req/s", text)
    rows = []
    if added is not None:
        rows.append(Row("cff: added p50 latency, cache hit (sequential)", f"{added:.1f} us",
                        f"{plain50:.1f} us p50 without function" if plain50 is not None else "-", "-", "<= 50 us",
                        _verdict(added <= 50)))
    if cpu_plain and cpu_cff:
        rows.append(Row("cff: cache hit + viewer-request function, POP CPU", f"{cpu_cff:.1f} us/req",
                        f"{cpu_plain:.1f} us/req no function", f"{cpu_plain / cpu_cff:.0%}", ">= 70% (throughput)",
                        _verdict(cpu_plain / cpu_cff >= 0.70)))
    if rps_plain and rps_cff:
        rows.append(Row("cff: cache hit + viewer-request function, req/s", f"{rps_cff:,.0f}",
                        f"{rps_plain:,.0f} same POP, no function", f"{rps_cff / rps_plain:.0%}", ">= 70%",
                        _verdict(rps_cff / rps_plain >= 0.70)))
    if varied is not None:  # no target of its own: the rows above with the function running on every request
        added_v, plain_v, cff_v = (float(g) for g in varied.groups())
        rows.append(Row("cff: added p50 latency, every event different", f"{added_v:.1f} us", "same run", "-",
                        "-", "-"))
        rows.append(Row("cff: viewer-request function, POP CPU, every event different", f"{cff_v:.1f} us/req",
                        f"{plain_v:.1f} us/req no function", f"{plain_v / cff_v:.0%}", "-", "-"))
    if rps_varied is not None:
        plain_r, cff_r = (float(g) for g in rps_varied.groups())
        rows.append(Row("cff: viewer-request function, req/s, every event different", f"{cff_r:,.0f}",
                        f"{plain_r:,.0f} same POP, no function", f"{cff_r / plain_r:.0%}", "-", "-"))
    if cpu_plain and cpu_vr:  # no target: what the commonest viewer-response function costs
        rows.append(Row("cff: cache hit + viewer-response security headers, POP CPU", f"{cpu_vr:.1f} us/req",
                        f"{cpu_plain:.1f} us/req no function", f"{cpu_plain / cpu_vr:.0%}", "-", "-"))
    if rps_plain and rps_vr:
        rows.append(Row("cff: cache hit + viewer-response security headers, req/s", f"{rps_vr:,.0f}",
                        f"{rps_plain:,.0f} same POP, no function", f"{rps_vr / rps_plain:.0%}", "-", "-"))
    return rows


def cff_rows(quick: bool) -> list[Row]:
    return _bench_rows("cff", ["-m", "bench.cff_bench", *(["--quick"] if quick else [])], parse_cff, 300)


def cff_pop_rows(quick: bool) -> list[Row]:
    args = [*(["--quick"] if quick else []), *(["--wrk"] if shutil.which("wrk") else [])]
    return _bench_rows("cff_pop", ["-m", "bench.cff_pop_bench", *args], parse_cff_pop, 300, ok_codes=(0, 1))


def parse_whatif(text: str) -> list[Row]:
    """The row of ``bench/whatif_bench.py``: N-process lines/s against one process in the same run."""
    one = re.search(r"whatif 1 process: ([\d,]+) lines/s \(([\d.]+) s wall", text)
    many = re.search(r"whatif (\d+) processes: ([\d,]+) lines/s \(([\d.]+) s wall", text)
    verdict = re.search(r"whatif ([\d,]+) lines in [\d.]+ s with \d+ processes, target < (\d+) s: (PASS|FAIL)", text)
    if not (one and many and verdict):
        return []
    lps1, lpsn = float(one.group(1).replace(",", "")), float(many.group(2).replace(",", ""))
    return [Row(f"whatif: {verdict.group(1)}-line log, {many.group(1)} processes, lines/s", f"{lpsn:,.0f}",
                f"{lps1:,.0f} in 1 process", f"{lpsn / lps1:.2f}x", f"< {verdict.group(2)} s",
                "OK" if verdict.group(3) == "PASS" else "MISSED")]


def whatif_rows(quick: bool) -> list[Row]:
    return _bench_rows("whatif", ["-m", "bench.whatif_bench", *(["--quick"] if quick else [])], parse_whatif, 600,
                       ok_codes=(0,))


BENCHES: dict[str, Callable[[bool], list[Row]]] = {
    "core": core_rows, "pop": pop_rows, "trigger": trigger_rows, "trigger-node": trigger_node_rows,
    "node": node_rows, "nginx": nginx_rows, "async": async_rows, "cff": cff_rows, "cff_pop": cff_pop_rows,
    "whatif": whatif_rows,
}

WRK_BENCHES = ("pop", "trigger", "trigger-node", "nginx", "async")  # the ones that drive HTTP load with wrk


def text_table(rows: list[Row]) -> str:
    header = ("benchmark", "edgelab", "baseline (same run)", "ratio", "target", "result")
    cells = [header] + [(r.bench, r.measured, r.baseline, r.ratio, r.target, r.result) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)).rstrip(), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells[1:]]
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| benchmark | edgelab | baseline (same run) | ratio | target | result |",
             "|---|---:|---|---:|---|---|"]
    lines += [f"| {esc(r.bench)} | {esc(r.measured)} | {esc(r.baseline)} | {esc(r.ratio)} | {esc(r.target)} | "
              f"{esc(r.result)} |" for r in rows]
    return "\n".join(lines)


def machine_line() -> str:
    return (f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
            f"{platform.system()} {platform.release()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench all", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs (about a minute in all)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown (README Performance)")
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    if shutil.which("wrk") is None and set(WRK_BENCHES) & set(names):
        print("wrk not found: deploy/dev.sh bench installs it (or apt-get install -y wrk); the HTTP benchmarks "
              f"{', '.join(WRK_BENCHES)} need it", file=sys.stderr)
        return 2
    rows: list[Row] = []
    t0 = time.monotonic()
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        try:
            rows += BENCHES[name](args.quick)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # one broken bench keeps the table
            rows.append(Row(f"{name}: run", "error", result="FAILED", target=str(exc).strip()[:160]))
    took = time.monotonic() - t0
    command = f"python -m bench all{' --quick' if args.quick else ''}"
    if args.markdown:
        print(f"`{command}` ({machine_line()}; {took:.0f} s)\n")
        print(markdown_table(rows))
    else:
        print(f"\n{command}: {machine_line()}; {took:.0f} s\n")
        print(text_table(rows))
    return 1 if any(r.result == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
