"""One locust run of ``edgelab loadtest``: the headless locust subprocess, its progress line, and the report.

Locust writes ``locust_stats.csv``/``locust_stats_history.csv``/``locust_failures.csv``/``locust.html`` and its
console output (``locust.log``) into the report folder; the locustfiles add ``samples.csv``. The progress line
is read from the ``Aggregated`` rows locust appends to ``locust_stats_history.csv`` every second.

``--processes N`` (N > 1) uses locust's own distributed mode on this machine
(https://docs.locust.io/en/stable/running-distributed.html): the headless master (statistics, the load shape)
with ``--expect-workers N`` on a free loopback port, and N ``--worker`` processes generating the requests, each
writing its own ``samples.csv.worker-<pid>``; they are merged into ``samples.csv`` (by time) before the report.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from edge.control.stack.config import REPO_ROOT


def last_aggregated(history: Path) -> dict[str, str] | None:
    """The newest ``Aggregated`` row of a growing ``locust_stats_history.csv`` (None before the first)."""
    try:
        with history.open("rb") as f:
            header = f.readline().decode()
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(len(header), size - 65536))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    rows = [line for line in tail.splitlines() if ",Aggregated," in line]
    if not header or not rows:
        return None
    parsed = next(csv.DictReader(io.StringIO(header + rows[-1] + "\n")), None)
    return dict(parsed) if parsed else None


def progress_line(row: dict[str, str] | None, elapsed: float, duration: float, phase: str | None) -> str:
    if row is None:
        return f"  {elapsed:5.0f}s/{duration:.0f}s  starting locust..."
    phase_txt = f"  phase {phase:<11}" if phase else ""
    return (f"  {elapsed:5.0f}s/{duration:.0f}s{phase_txt}  users {row.get('User Count', '?'):>3}  "
            f"req/s {float(row.get('Requests/s') or 0):7.1f}  requests {row.get('Total Request Count', '?'):>7}  "
            f"failures {row.get('Total Failure Count', '?'):>4}  p50 {row.get('50%', '?')} ms  "
            f"p95 {row.get('95%', '?')} ms")


class LocustRun:
    """Runs one scenario's locustfile headless into ``folder``; :meth:`write_report` summarizes it."""

    def __init__(self, folder: Path, loadtests: Path, scenario: Any, args: argparse.Namespace, users: int,
                 pops: list[tuple[str, str]], phases: list[Any] | None, phases_mod: ModuleType, api: str,
                 idle_ttl: float | None) -> None:
        self.folder, self.loadtests, self.scenario, self.args = folder, loadtests, scenario, args
        self.users, self.pops, self.phases, self.phases_mod = users, pops, phases, phases_mod
        self.duration = phases[-1].until_s if phases else float(args.duration)
        self.processes = int(getattr(args, "processes", 1) or 1)
        self.master_port = _free_port() if self.processes > 1 else 0
        self.run_info: dict[str, Any] = {
            "processes": self.processes,
            "scenario": args.scenario, "users": users, "duration_s": self.duration,
            "spawn_rate": args.spawn_rate or scenario.spawn_rate, "pops": [p[0] for p in pops],
            "pop_urls": dict(pops), "target": api, "started_at": dt.datetime.now().isoformat(timespec="seconds"),
            "idle_ttl_s": idle_ttl, "idle_gap_s": (phases[2].until_s - phases[1].until_s) if phases else None,
            "phases": [[p.name, p.until_s, p.users, p.spawn_rate] for p in phases] if phases else None,
            "reserved_concurrency": args.reserved if scenario.reserved else None,
        }
        self._save_info()

    def _save_info(self) -> None:
        (self.folder / "run.json").write_text(json.dumps(self.run_info, indent=2) + "\n")

    def command(self) -> list[str]:
        """The locust command line. Shaped runs get no -u/-r/-t (locust ignores them, and warns, when a shape
        drives the users; the run is still bounded by :meth:`run`) and so not ``locust.conf`` either, which sets
        them for hand runs; every other option it holds is given here."""
        cmd = [sys.executable, "-m", "locust", "-f", str(self.loadtests / self.scenario.locustfile), "--headless",
               "-H", self.pops[0][1], "--csv", str(self.folder / "locust"), "--csv-full-history",
               "--html", str(self.folder / "locust.html"), "--only-summary", "--stop-timeout", "5",
               "--loglevel", "WARNING"]
        if self.processes > 1:
            cmd += ["--master", "--expect-workers", str(self.processes), "--master-bind-host", "127.0.0.1",
                    "--master-bind-port", str(self.master_port)]
        if self.phases:
            return cmd
        rate = self.args.spawn_rate or self.scenario.spawn_rate
        return [*cmd, "--config", str(self.loadtests / "locust.conf"), "-u", str(self.users), "-r", f"{rate:g}",
                "-t", f"{int(self.duration)}s"]

    def worker_command(self) -> list[str]:
        """One locust worker of a distributed run (its users, rates and duration come from the master)."""
        return [sys.executable, "-m", "locust", "-f", str(self.loadtests / self.scenario.locustfile), "--worker",
                "--master-host", "127.0.0.1", "--master-port", str(self.master_port), "--loglevel", "WARNING"]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["EDGELAB_POPS"] = ",".join(f"{n}={u}" for n, u in self.pops)
        env["EDGELAB_SAMPLES"] = str(self.folder / "samples.csv")
        if self.phases:
            env["EDGELAB_PHASES"] = self.phases_mod.dumps(self.phases)
        return env

    def run(self) -> int:
        """Run locust to completion (bounded: duration + 60 s), printing progress; returns its exit status."""
        print(f"edgelab loadtest: {self.args.scenario} on {', '.join(n for n, _ in self.pops)}, "
              f"{self.users} users, {self.duration:g} s -> {self.folder}", flush=True)
        workers: list[subprocess.Popen[bytes]] = []
        with (self.folder / "locust.log").open("wb") as log:
            proc = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=self.environment(), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                workers.extend(  # appended one by one: a failed start still leaves the others to stop
                    subprocess.Popen(self.worker_command(), cwd=REPO_ROOT, env=self.environment(), stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                    for _ in range(self.processes if self.processes > 1 else 0))
                return self._watch(proc)
            finally:
                for p in [proc, *workers]:  # the workers quit with the master; anything left is stopped
                    _stop(p, 15 if p is proc else 10)

    def _watch(self, proc: subprocess.Popen[bytes]) -> int:
        tty = sys.stdout.isatty()
        t0, last_print = time.monotonic(), 0.0
        history = self.folder / "locust_stats_history.csv"
        while True:
            try:
                code = proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                pass
            elapsed = time.monotonic() - t0
            if elapsed > self.duration + 60:
                print(f"\nedgelab loadtest: locust still running {elapsed:.0f} s after the start; stopping it",
                      file=sys.stderr)
                proc.send_signal(signal.SIGINT)
                code = proc.wait(timeout=20)
                break
            phase = self.phases_mod.phase_at(self.phases, self._run_time(elapsed)) if self.phases else None
            line = progress_line(last_aggregated(history), elapsed, self.duration, phase.name if phase else None)
            if tty:
                print("\r" + line.ljust(118)[:118], end="", flush=True)
            elif elapsed - last_print >= 10:
                print(line, flush=True)
                last_print = elapsed
        if tty:
            print()
        return code

    def _run_time(self, fallback: float) -> float:
        """Seconds since locust's run started (its ``.start`` mark), else since the process was spawned."""
        try:
            return time.time() - float((self.folder / "samples.csv.start").read_text())
        except (OSError, ValueError):
            return fallback

    def merge_worker_samples(self) -> None:
        """``samples.csv.worker-*`` (one per worker of a distributed run) -> ``samples.csv``, rows ordered by time;
        each worker's row count goes to ``run.json`` (``worker_samples``)."""
        parts = sorted(self.folder.glob("samples.csv.worker-*"))
        if not parts:
            return
        header: list[str] | None = None
        rows: list[list[str]] = []
        counts: dict[str, int] = {}
        for part in parts:
            with part.open(newline="") as f:
                reader = csv.reader(f)
                head = next(reader, None)
                if head is None:
                    continue
                header = header or head
                mine = [r for r in reader if len(r) == len(head)]  # a last line cut short by a stop is dropped
            counts[part.name] = len(mine)
            rows += mine
        rows.sort(key=lambda r: float(r[0]) if r[0].replace(".", "", 1).isdigit() else 0.0)
        with (self.folder / "samples.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            if header:
                writer.writerow(header)
            writer.writerows(rows)
        for part in parts:
            part.unlink()
        self.run_info["worker_samples"] = counts

    def write_report(self, code: int) -> int:
        """Summarize the folder (``python -m loadtests.report``); returns locust's status, or 2 if nothing ran."""
        self.run_info["locust_exit_code"] = code
        self.merge_worker_samples()
        self._save_info()
        if not (self.folder / "locust_stats.csv").exists():
            print(f"edgelab loadtest: locust wrote no statistics (exit {code}); see {self.folder / 'locust.log'}",
                  file=sys.stderr)
            return 2
        done = subprocess.run([sys.executable, "-m", "loadtests.report", str(self.folder)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            print(f"edgelab loadtest: the report failed:\n{done.stderr}", file=sys.stderr)
            return 2
        summary = self.folder / "summary.md"
        print(summary.read_text())
        print(f"report: {self.folder}  (summary.md, locust.html, latency plot, CSVs)")
        return code


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGINT, then SIGKILL after ``grace_s``; always reaped."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
