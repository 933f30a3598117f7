"""Locust-side helpers shared by the locustfiles: :class:`EdgeUser` and the sample log.

Configuration comes from environment variables (set by ``edgelab loadtest``; all optional for a plain
``locust -f loadtests/<scenario>.py -H http://127.0.0.1:8081`` run):

- ``EDGELAB_POPS``     ``IAD=http://127.0.0.1:8081,FRA=http://127.0.0.1:8082``: users are pinned to POPs round
                       robin (scenarios that use one POP take the first); default: locust's ``--host``.
- ``EDGELAB_SAMPLES``  path of a CSV that receives one row per request (time, bucket, latency, per-function
                       durations), used by the report for the latency distributions; bounded by
                       ``EDGELAB_MAX_SAMPLES`` (default 2,000,000 rows).
- ``EDGELAB_PHASES``   the phases of :class:`PhasedShape` (see :mod:`loadtests.phases`); without it the shape
                       builds the cold/warm phases from ``EDGELAB_DURATION`` (120), ``EDGELAB_USERS`` (12) and
                       ``EDGELAB_IDLE_GAP`` (20 s).
"""

from __future__ import annotations

import csv
import itertools
import os
import sys
import time
from pathlib import Path

from locust import FastHttpUser, LoadTestShape, between, events

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `loadtests` importable under plain locust

from loadtests import phases as phase_defs
from loadtests.classify import Classification, bucket_name, classify

SAMPLE_FIELDS = ["t", "label", "bucket", "status", "ok", "cache", "start", "pop", "latency_ms", "edge_ms",
                 "origin_ms", "init_ms", "functions"]


def pop_targets(spec: str | None) -> list[tuple[str, str]]:
    """``IAD=http://...,FRA=http://...`` -> [(name, url)]; ValueError on a malformed item."""
    out = []
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        name, sep, url = item.partition("=")
        if not sep or not url.startswith("http"):
            raise ValueError(f"EDGELAB_POPS item {item!r} is not NAME=http://host:port")
        out.append((name.strip().upper(), url.strip().rstrip("/")))
    return out


class SampleLog:
    """Append-only CSV of per-request samples, closed when locust quits."""

    def __init__(self, path: str, limit: int) -> None:
        self._file = open(path, "w", newline="", buffering=1 << 16)  # noqa: SIM115 - closed on quit
        self._writer = csv.writer(self._file)
        self._writer.writerow(SAMPLE_FIELDS)
        self._left = limit

    def write(self, label: str, bucket: str, latency_ms: float, c: Classification, ok: bool) -> None:
        if self._left <= 0:
            return
        self._left -= 1
        fns = ";".join(f"{f.event}|{f.function}|{f.state}|{f.init_ms if f.init_ms is not None else ''}|"
                       f"{f.dur_ms if f.dur_ms is not None else ''}" for f in c.functions)
        self._writer.writerow([f"{time.time():.3f}", label, bucket, c.status, int(ok), c.cache, c.start, c.pop,
                               f"{latency_ms:.3f}", "" if c.edge_ms is None else c.edge_ms,
                               "" if c.origin_ms is None else c.origin_ms, f"{c.init_ms:.3f}", fns])

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


@events.init.add_listener
def _open_samples(environment, **_kw) -> None:  # type: ignore[no-untyped-def]
    """Open the sample log of this locust process (if asked) and close it when locust quits.

    Distributed (locust's ``--master`` / ``--worker``): each worker writes ``<path>.worker-<pid>`` (the runner
    merges them into ``<path>`` afterwards), and only the master marks the start (its shape's clock)."""
    path = os.environ.get("EDGELAB_SAMPLES")
    runner = getattr(environment, "runner", None)
    kind = type(runner).__name__ if runner is not None else ""
    is_master, is_worker = kind == "MasterRunner", kind == "WorkerRunner"
    log = None
    if path and not is_master:
        own = f"{path}.worker-{os.getpid()}" if is_worker else path
        log = SampleLog(own, int(os.environ.get("EDGELAB_MAX_SAMPLES", "2000000")))
    environment.edgelab_samples = log
    if log is not None:
        environment.events.quit.add_listener(lambda **_: log.close())
    if path and not is_worker:
        # the report places the phases relative to the moment the run (and the shape's clock) started
        environment.events.test_start.add_listener(
            lambda **_: Path(f"{path}.start").write_text(f"{time.time():.3f}\n"))


class EdgeUser(FastHttpUser):
    """A viewer pinned to one POP; :meth:`edge_get` classifies each response into its own stats row."""

    abstract = True
    wait_time = between(0.02, 0.1)
    single_pop = False  # True: every user of this class uses the first POP
    _serial = itertools.count()  # round-robin POP assignment across the users of this locust process

    def __init__(self, environment) -> None:  # type: ignore[no-untyped-def]
        targets = pop_targets(os.environ.get("EDGELAB_POPS"))
        if targets:
            index = 0 if self.single_pop else next(EdgeUser._serial) % len(targets)
            self.pop, self.host = targets[index]
        else:
            self.pop = "?"
        super().__init__(environment)

    def edge_get(self, path: str, label: str | None = None, *, expect: tuple[int, ...] = (200,),
                 headers: dict[str, str] | None = None) -> Classification | None:
        """GET ``path``; the stats row is ``label [start|cache@POP]``; a status outside ``expect`` fails."""
        label = label or path
        t0 = time.perf_counter()
        with self.client.get(path, headers=headers, name=label, catch_response=True) as r:
            latency_ms = (time.perf_counter() - t0) * 1000
            status = r.status_code or 0
            if status == 0:  # connection error: locust already carries the exception
                c = Classification(status=0, cache="none", start="error", pop=self.pop, edge_ms=None, origin_ms=None,
                                   functions=())
                r.request_meta["name"] = bucket_name(label, c)
                log = getattr(self.environment, "edgelab_samples", None)
                if log is not None:
                    log.write(label, bucket_name(label, c), latency_ms, c, False)
                return None
            c = classify(status, r.headers.items() if r.headers is not None else (), default_pop=self.pop)
            bucket = bucket_name(label, c)
            r.request_meta["name"] = bucket
            ok = status in expect
            if ok:
                r.success()
            else:
                r.failure(f"status {status} ({c.cache})")
            log = getattr(self.environment, "edgelab_samples", None)
            if log is not None:
                log.write(label, bucket, latency_ms, c, ok)
            return c


class PhasedShape(LoadTestShape):
    """Users per phase from ``EDGELAB_PHASES`` (default: a 120 s cold/warm run of 12 users, 20 s idle gap)."""

    abstract = True

    def __init__(self) -> None:
        super().__init__()
        text = os.environ.get("EDGELAB_PHASES")
        self.phases = (phase_defs.loads(text) if text else
                       phase_defs.cold_warm_phases(float(os.environ.get("EDGELAB_DURATION", "120")),
                                                   int(os.environ.get("EDGELAB_USERS", "12")),
                                                   float(os.environ.get("EDGELAB_IDLE_GAP", "20"))))

    def tick(self):  # type: ignore[no-untyped-def]
        phase = phase_defs.phase_at(self.phases, self.get_run_time())
        return None if phase is None else (phase.users, phase.spawn_rate)
