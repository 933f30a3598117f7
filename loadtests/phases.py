"""Load phases of the cold/warm experiment (pure: no locust).

The classic experiment, after a reset of warm pools and caches:

1. ``burst``       every user starts at once: each POP pays cold starts (one per concurrently busy environment);
2. ``steady``      the same users keep going: the environments are warm;
3. ``idle``        no users for longer than the idle expiry: the warm environments are retired;
4. ``burst-again`` every user starts at once again: cold starts again.

Phases are passed to the locust process as JSON in ``EDGELAB_PHASES`` (``[[name, until_s, users, rate], ...]``),
so the runner, the shape and the report agree on one definition.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    until_s: float  # the phase ends at this run time (seconds since the start)
    users: int
    spawn_rate: float


def cold_warm_phases(duration_s: float, users: int, idle_gap_s: float) -> list[Phase]:
    """Phases for a run of ``duration_s`` with an idle gap of ``idle_gap_s``; ValueError if it does not fit."""
    if users < 1:
        raise ValueError("users must be >= 1")
    if idle_gap_s <= 0:
        raise ValueError("the idle gap must be > 0 s")
    burst = max(3.0, round(duration_s * 0.125, 1))
    steady_end = duration_s - idle_gap_s - burst
    if steady_end < 2 * burst:
        need = 3 * burst + idle_gap_s
        raise ValueError(f"a {duration_s:g} s run cannot hold bursts of {burst:g} s, a steady phase and an idle "
                         f"gap of {idle_gap_s:g} s: use --duration >= {need:g}")
    rate = float(users)  # all users within a second: a burst
    return [Phase("burst", burst, users, rate), Phase("steady", steady_end, users, rate),
            Phase("idle", steady_end + idle_gap_s, 0, rate), Phase("burst-again", duration_s, users, rate)]


def phase_at(phases: list[Phase], run_time_s: float) -> Phase | None:
    """The phase running at ``run_time_s`` (None once the last one has ended)."""
    for phase in phases:
        if run_time_s < phase.until_s:
            return phase
    return None


def dumps(phases: list[Phase]) -> str:
    return json.dumps([[p.name, p.until_s, p.users, p.spawn_rate] for p in phases])


def loads(text: str) -> list[Phase]:
    """Inverse of :func:`dumps`; ValueError on anything else."""
    try:
        raw = json.loads(text)
        phases = [Phase(str(n), float(u), int(us), float(r)) for n, u, us, r in raw]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad phases {text!r}: expected [[name, until_s, users, rate], ...]") from exc
    if not phases or any(b.until_s <= a.until_s for a, b in itertools.pairwise(phases)):
        raise ValueError(f"bad phases {text!r}: need at least one phase, with increasing end times")
    return phases
