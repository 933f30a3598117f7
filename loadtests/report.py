"""Summary of a load-test report folder (pure Python; matplotlib only for the optional PNG).

    python -m loadtests.report REPORT_DIR [--svg]

Reads what ``edgelab loadtest`` left in the folder:

- ``locust_stats.csv``  locust's per-row statistics (rows are buckets ``label [start|cache@POP]``);
- ``samples.csv``       one row per request, written by :class:`loadtests.common.SampleLog`;
- ``run.json``          the run's parameters (scenario, users, duration, POPs, phases, idle expiry);

and writes ``summary.md`` (p50/p95/p99 per bucket, cold vs warm, per phase, per function) and the latency plot
(``latency.png``, or ``latency.svg`` drawn by hand when matplotlib is absent or ``--svg`` is given).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `loadtests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtests.classify import parse_bucket
from loadtests.phases import Phase, phase_at


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One row of ``locust_stats.csv`` (times in ms)."""

    method: str
    name: str
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float
    max: float
    rps: float


@dataclass(frozen=True, slots=True)
class FnSample:
    event: str
    function: str
    state: str
    init_ms: float | None
    dur_ms: float | None


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    label: str
    bucket: str
    status: int
    ok: bool
    cache: str
    start: str
    pop: str
    latency_ms: float
    functions: tuple[FnSample, ...]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "", "N/A") else math.nan
    except ValueError:
        return math.nan


def read_stats(path: Path) -> list[StatsRow]:
    with path.open(newline="") as f:
        return [StatsRow(r.get("Type", ""), r["Name"], int(_num(r["Request Count"])), int(_num(r["Failure Count"])),
                         _num(r.get("50%")), _num(r.get("95%")), _num(r.get("99%")),
                         _num(r.get("Max Response Time")), _num(r.get("Requests/s")))
                for r in csv.DictReader(f)]


def _fn_samples(text: str) -> tuple[FnSample, ...]:
    out = []
    for item in filter(None, text.split(";")):
        parts = item.split("|")
        if len(parts) == 5:
            out.append(FnSample(parts[0], parts[1], parts[2], _num(parts[3]) if parts[3] else None,
                                _num(parts[4]) if parts[4] else None))
    return tuple(out)


def read_samples(path: Path) -> list[Sample]:
    """Rows of ``samples.csv``; a truncated last line (locust killed mid-write) is skipped."""
    samples = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            try:
                samples.append(Sample(float(r["t"]), r["label"], r["bucket"], int(r["status"]), r["ok"] != "0",
                                      r["cache"], r["start"], r["pop"], float(r["latency_ms"]),
                                      _fn_samples(r.get("functions") or "")))
            except (KeyError, TypeError, ValueError):
                continue
    return samples


def _fmt(v: float) -> str:
    return "-" if math.isnan(v) else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _pcts(values: Sequence[float]) -> list[str]:
    return [_fmt(percentile(values, q)) for q in (50, 95, 99)] + [_fmt(max(values) if values else math.nan)]


def bucket_table(stats: list[StatsRow]) -> list[str]:
    rows = []
    for s in sorted(stats, key=lambda s: (s.name == "Aggregated", parse_bucket(s.name) or (s.name,))):
        if s.name == "Aggregated":
            label, start, cache, pop = "**all requests**", "", "", ""
        else:
            label, start, cache, pop = parse_bucket(s.name) or (s.name, "?", "?", "?")
        rows.append([label, start, cache, pop, s.requests, s.failures, _fmt(s.p50), _fmt(s.p95), _fmt(s.p99),
                     _fmt(s.max), f"{s.rps:.1f}"])
    return _table(["request", "start", "cache", "POP", "requests", "failures", "p50 ms", "p95 ms", "p99 ms",
                   "max ms", "req/s"], rows)


def samples_stats(samples: list[Sample], duration_s: float) -> list[StatsRow]:
    """Exact per-bucket statistics from the samples (locust's CSV rounds times and may miss the last second)."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.bucket].append(s)
    span = duration_s if duration_s > 0 else max(1e-9, max(s.t for s in samples) - min(s.t for s in samples))

    def row(name: str, group: list[Sample]) -> StatsRow:
        lat = [s.latency_ms for s in group]
        return StatsRow("GET", name, len(group), sum(1 for s in group if not s.ok), percentile(lat, 50),
                        percentile(lat, 95), percentile(lat, 99), max(lat), len(group) / span)

    return [row(k, v) for k, v in groups.items()] + [row("Aggregated", samples)]


def start_table(samples: list[Sample]) -> list[str]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        groups[s.start].append(s.latency_ms)
    order = [k for k in ("cold", "warm", "nofn") if k in groups] + sorted(set(groups) - {"cold", "warm", "nofn"})
    return _table(["start", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                  [[k, len(groups[k]), *_pcts(groups[k])] for k in order])


def outcome_table(samples: list[Sample]) -> list[str]:
    """Latency per start, cache outcome and POP: a FRA or NRT miss pays its region's simulated origin latency and
    would otherwise blur the warm numbers."""
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for s in samples:
        groups[(s.start, s.cache or "none", s.pop or "?")].append(s.latency_ms)
    return _table(["start", "cache", "POP", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                  [[*k, len(v), *_pcts(v)] for k, v in sorted(groups.items())])


def phase_table(samples: list[Sample], phases: list[Phase], t0: float) -> list[str]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        phase = phase_at(phases, s.t - t0)
        groups[phase.name if phase else "after"].append(s)
    rows = []
    for name in [p.name for p in phases] + ["after"]:
        group = groups.get(name, [])
        if name == "after" and not group:
            continue
        lat = [s.latency_ms for s in group]
        cold = [s.latency_ms for s in group if s.start == "cold"]
        rows.append([name, len(group), len(cold), _fmt(percentile(lat, 50)), _fmt(percentile(lat, 99)),
                     _fmt(percentile(cold, 50))])
    return _table(["phase", "requests", "cold", "p50 ms", "p99 ms", "cold p50 ms"], rows)


def function_table(samples: list[Sample]) -> list[str]:
    durs: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    inits: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for s in samples:
        for f in s.functions:
            key = (f.function, f.event, f.state)
            if f.dur_ms is not None and not math.isnan(f.dur_ms):
                durs[key].append(f.dur_ms)
            if f.init_ms is not None and not math.isnan(f.init_ms):
                inits[key].append(f.init_ms)
    rows = [[fn, ev, st, len(v), *_pcts(v)[:3], _fmt(percentile(inits.get((fn, ev, st), []), 50))]
            for (fn, ev, st), v in sorted(durs.items())]
    return _table(["function", "event", "state", "invocations", "p50 ms", "p95 ms", "p99 ms", "init p50 ms"], rows)


def _secs(v: object) -> str | None:
    return None if v is None else f"{v:g} s" if isinstance(v, int | float) else str(v)


def summary_markdown(run: dict, stats: list[StatsRow], samples: list[Sample], plot_name: str | None) -> str:
    """The Markdown summary of one run (see the module docstring)."""
    phases = [Phase(*p) for p in run.get("phases") or []]
    lines = [f"# edgelab load test: {run.get('scenario', '?')}", ""]
    facts = [("started", run.get("started_at")), ("duration", f"{run.get('duration_s', '?')} s"),
             ("users", run.get("users")), ("POPs", ", ".join(run.get("pops", []))),
             ("target", run.get("target")), ("idle expiry", _secs(run.get("idle_ttl_s"))),
             ("idle gap", _secs(run.get("idle_gap_s"))), ("locust exit code", run.get("locust_exit_code"))]
    lines += [f"- {k}: {v}" for k, v in facts if v not in (None, "", "? s")]
    source = "every request, from samples.csv" if samples else "locust_stats.csv (rounded)"
    lines += ["", f"## Latency per bucket (client side; {source})", "",
              "Rows are `request [cold|warm|nofn (functions run) | cache outcome @ POP]`.", ""]
    lines += bucket_table(samples_stats(samples, float(run.get("duration_s") or 0)) if samples else stats)
    if samples:
        lines += ["", "## By start (all requests)", "", *start_table(samples)]
        lines += ["", "## By start, cache outcome and POP", "", *outcome_table(samples)]
        if phases:
            t0 = run.get("locust_started_at") or min(s.t for s in samples)
            lines += ["", "## Per phase", "", *phase_table(samples, phases, float(t0))]
        if any(s.functions for s in samples):
            lines += ["", "## Functions (POP side, from Server-Timing)", "", *function_table(samples)]
    if plot_name:
        lines += ["", "## Latency distributions", "",
                  f"![latency by start, by cache outcome, by cache outcome at each POP, and over time]({plot_name})"]
    lines += ["", "Files: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`, `locust.html`, "
              "`samples.csv`, `locust.log`, `run.json`.", ""]
    return "\n".join(lines)


def write_report(folder: Path, *, force_svg: bool = False) -> Path:
    """Write ``summary.md`` and the plot into ``folder``; FileNotFoundError without ``locust_stats.csv``."""
    from loadtests.plot import write_plot  # matplotlib stays optional

    stats_path = folder / "locust_stats.csv"
    if not stats_path.exists():
        raise FileNotFoundError(f"{stats_path} not found: is {folder} a load-test report folder?")
    run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    samples = read_samples(folder / "samples.csv") if (folder / "samples.csv").exists() else []
    start_file = folder / "samples.csv.start"  # written by the locust process when the run started
    if start_file.exists() and "locust_started_at" not in run:
        started = _num(start_file.read_text().strip())
        if not math.isnan(started):
            run["locust_started_at"] = started
    plot = write_plot(folder, samples, [Phase(*p) for p in run.get("phases") or []],
                      run.get("locust_started_at"), force_svg=force_svg) if samples else None
    out = folder / "summary.md"
    out.write_text(summary_markdown(run, read_stats(stats_path), samples, plot.name if plot else None))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.report", description="summarize a load-test report folder")
    p.add_argument("folder", type=Path)
    p.add_argument("--svg", action="store_true", help="draw the plot as a hand-written SVG (no matplotlib)")
    args = p.parse_args(argv)
    try:
        print(write_report(args.folder, force_svg=args.svg))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"loadtests.report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
