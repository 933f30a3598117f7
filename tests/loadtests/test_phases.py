"""Phases of the cold/warm experiment (pure)."""

import pytest

from loadtests.phases import Phase, cold_warm_phases, dumps, loads, phase_at


def test_two_minute_default_layout():
    phases = cold_warm_phases(120, 12, 20)
    assert [p.name for p in phases] == ["burst", "steady", "idle", "burst-again"]
    assert [p.until_s for p in phases] == [15, 85, 105, 120]
    assert [p.users for p in phases] == [12, 12, 0, 12]
    assert all(p.spawn_rate == 12 for p in phases)  # every user within a second: a burst
    assert phases[2].until_s - phases[1].until_s == 20  # the idle gap as asked


def test_short_run_keeps_minimum_burst():
    phases = cold_warm_phases(12, 4, 3)
    assert [p.until_s for p in phases] == [3, 6, 9, 12]


@pytest.mark.parametrize("duration,users,gap,match", [
    (30, 12, 25, "use --duration >= "), (120, 0, 20, "users"), (120, 5, 0, "idle gap"),
])
def test_invalid(duration, users, gap, match):
    with pytest.raises(ValueError, match=match):
        cold_warm_phases(duration, users, gap)


def test_phase_at_boundaries():
    phases = cold_warm_phases(120, 12, 20)
    assert phase_at(phases, 0).name == "burst"
    assert phase_at(phases, 14.99).name == "burst"
    assert phase_at(phases, 15).name == "steady"
    assert phase_at(phases, 104).name == "idle"
    assert phase_at(phases, 119.9).name == "burst-again"
    assert phase_at(phases, 120) is None


def test_dumps_loads_round_trip_and_errors():
    phases = cold_warm_phases(60, 3, 10)
    assert loads(dumps(phases)) == phases
    for bad in ("", "{}", "[[1]]", '[["a", 5, 1, 1], ["b", 5, 1, 1]]', "[]"):
        with pytest.raises(ValueError):
            loads(bad)
    assert loads('[["x", 1, 2, 3]]') == [Phase("x", 1.0, 2, 3.0)]
