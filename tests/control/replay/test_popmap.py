"""Edge location -> POP: the default continent table, a POP's own code, the fallback, --pop-map overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.control.replay.popmap import load_pop_map

POPS = ["IAD", "FRA", "NRT"]


def test_default_nearest_pop_by_continent() -> None:
    m = load_pop_map(None, POPS)
    assert [m.pop_for(c) for c in ("IAD89-C1", "SFO5-C3", "GRU3-C1", "LHR61-C2", "JNB1-C1", "DXB2-P1", "NRT57-P2",
                                   "SYD1-C2", "SIN2-P1", "ZZZ9-X1", "")] == \
        ["IAD", "IAD", "IAD", "FRA", "FRA", "FRA", "NRT", "NRT", "NRT", "IAD", "IAD"]


def test_missing_continent_pop_falls_back() -> None:
    m = load_pop_map(None, ["FRA", "IAD"])
    assert m.pop_for("NRT57-P2") == "IAD" and m.pop_for("CDG3-C1") == "FRA"
    assert load_pop_map(None, ["FRA"]).pop_for("SFO5-C3") == "FRA"


def test_overrides_longest_prefix_and_star(tmp_path: Path) -> None:
    f = tmp_path / "map.json"
    f.write_text('{"LHR": "NRT", "LHR61": "IAD", "*": "FRA"}')
    m = load_pop_map(f, POPS)
    assert (m.pop_for("LHR61-C2"), m.pop_for("LHR5-C1"), m.pop_for("QQQ1-A1"), m.pop_for("SFO5-C3")) == \
        ("IAD", "NRT", "FRA", "IAD")
    t = tmp_path / "map.toml"
    t.write_text('SFO = "NRT"\n')
    assert load_pop_map(t, POPS).pop_for("SFO5-C3") == "NRT"


@pytest.mark.parametrize(("text", "message"), [('{"LHR": "XXX"}', "not one of the stack's POPs"),
                                               ("[1]", "expected an object"), ("{", "not valid JSON")])
def test_bad_maps_are_refused(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "map.json"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_pop_map(f, POPS)
