"""The what-if benchmark: a tiny real run of ``bench/whatif_bench.py`` parsed into its ``python -m bench all`` row."""

from __future__ import annotations

import pytest

from bench import run
from bench.whatif_bench import main as whatif_main

OUT = """generated 1,000,000 lines in 30.1 s (40.2 MB gz)
whatif 1 process: 30,000 lines/s (33.3 s wall, 33.0 s CPU)
whatif 2 processes: 55,000 lines/s (18.2 s wall, 35.1 s CPU)
whatif ratio 2 vs 1 process: 1.83x (same figures: yes)
whatif 1,000,000 lines in 18.2 s with 2 processes, target < 60 s: PASS
"""


def test_parse_whatif_row() -> None:
    (row,) = run.parse_whatif(OUT)
    assert (row.bench, row.measured, row.baseline, row.ratio, row.target, row.result) == (
        "whatif: 1,000,000-line log, 2 processes, lines/s", "55,000", "30,000 in 1 process", "1.83x", "< 60 s", "OK")
    assert run.parse_whatif(OUT.replace("PASS", "FAIL"))[0].result == "MISSED"
    assert run.parse_whatif("whatif 1 process: nothing") == []
    assert "whatif" in run.BENCHES


def test_a_small_real_run_gives_the_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert whatif_main(["--lines", "3000", "--processes", "2"]) == 0
    out = capsys.readouterr().out
    assert "(same figures: yes)" in out
    (row,) = run.parse_whatif(out)
    assert row.bench == "whatif: 3,000-line log, 2 processes, lines/s"
