"""The report writer on synthetic locust CSVs and samples (no locust run)."""

import csv
import json
import math

import pytest

from loadtests.report import main as report_main
from loadtests.report import percentile, read_samples, read_stats, write_report

STATS_HEADER = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
                "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]


def _stats_row(type_, name, count, fails, p50, p95, p99, mx, rps):
    return [type_, name, count, fails, p50, p50, 1, mx, 100, rps, 0, p50, p50, p50, p50, p95, p95, p99, p99, mx, mx, mx]


@pytest.fixture
def folder(tmp_path):
    with (tmp_path / "locust_stats.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(STATS_HEADER)
        w.writerow(_stats_row("GET", "/ [cold|miss@FRA]", 3, 0, 120, 300, 300, 310.5, 0.1))
        w.writerow(_stats_row("GET", "/ [warm|hit@IAD]", 97, 1, 3, 9, 14, 20.0, 12.5))
        w.writerow(_stats_row("", "Aggregated", 100, 1, 3, 11, 300, 310.5, 12.6))
    t0 = 1000.0
    rows = []
    # burst (0-3 s): 3 cold + 7 warm; steady (3-6): 10 warm; idle (6-9): none; burst-again (9-12): 2 cold + 8 warm
    for i in range(10):
        rows.append((t0 + 0.1 + i * 0.2, "cold" if i < 3 else "warm", 100.0 + i if i < 3 else 2.0 + i))
        rows.append((t0 + 3.1 + i * 0.2, "warm", 3.0 + i))
        rows.append((t0 + 9.1 + i * 0.2, "cold" if i < 2 else "warm", 90.0 + i if i < 2 else 2.5))
    with (tmp_path / "samples.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "label", "bucket", "status", "ok", "cache", "start", "pop", "latency_ms", "edge_ms",
                    "origin_ms", "init_ms", "functions"])
        for i, (t, start, lat) in enumerate(rows):
            init = "7.5" if start == "cold" else ""
            fn = f"viewer-request|edge-hello:1|{start}|{init}|{lat / 10:.2f}"
            ok = 0 if i == 1 else 1  # one failed request (a warm one)
            w.writerow([t, "/", f"/ [{start}|hit@IAD]", 200, ok, "hit", start, "IAD", lat, 1.0, "", init or 0, fn])
        f.write("1012.5,/,/ [warm|hit@IAD],20")  # a truncated last line: locust stopped mid-write
    (tmp_path / "samples.csv.start").write_text(f"{t0}\n")
    (tmp_path / "run.json").write_text(json.dumps({
        "scenario": "cold-warm", "users": 4, "duration_s": 12, "pops": ["IAD", "FRA"], "idle_ttl_s": 1,
        "idle_gap_s": 3, "phases": [["burst", 3, 4, 4], ["steady", 6, 4, 4], ["idle", 9, 0, 4],
                                    ["burst-again", 12, 4, 4]]}))
    return tmp_path


def test_percentile_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([7], 99) == 7
    assert math.isnan(percentile([], 50))


def test_read_stats_and_samples(folder):
    stats = read_stats(folder / "locust_stats.csv")
    assert [s.name for s in stats] == ["/ [cold|miss@FRA]", "/ [warm|hit@IAD]", "Aggregated"]
    assert (stats[1].requests, stats[1].failures, stats[1].p95, stats[1].p99) == (97, 1, 9, 14)
    samples = read_samples(folder / "samples.csv")
    assert len(samples) == 30  # the truncated line is skipped
    assert samples[0].functions[0].init_ms == 7.5 and samples[1].functions[0].init_ms is None


def test_summary_tables(folder):
    summary = write_report(folder, force_svg=True).read_text()
    assert "# edgelab load test: cold-warm" in summary
    # per bucket, exact, from the samples (the locust CSV is only the fallback); req/s over the 12 s run
    assert "every request, from samples.csv" in summary
    assert "| / | cold | hit | IAD | 5 | 0 | 100 | 102 | 102 | 102 | 0.4 |" in summary
    assert "| / | warm | hit | IAD | 25 | 1 |" in summary
    assert "| **all requests** |  |  |  | 30 | 1 |" in summary
    assert summary.index("| / | cold | hit") < summary.index("| / | warm | hit") < summary.index("**all requests**")
    # cold vs warm from the samples: 5 cold (100, 101, 102, 90, 91), 25 warm
    assert "| cold | 5 | 100 | 102 | 102 | 102 |" in summary
    assert "| warm | 25 |" in summary
    # phases placed with the run's start mark
    assert "| burst | 10 | 3 |" in summary
    assert "| steady | 10 | 0 |" in summary
    assert "| idle | 0 | 0 | - | - | - |" in summary
    assert "| burst-again | 10 | 2 |" in summary
    assert "| edge-hello:1 | viewer-request | cold | 5 |" in summary
    assert "](latency.svg)" in summary
    assert "| cold | hit | IAD | 5 | 100 | 102 | 102 | 102 |" in summary  # by start, cache outcome and POP
    assert "- idle gap: 3 s" in summary


def test_hand_written_svg(folder):
    write_report(folder, force_svg=True)
    svg = (folder / "latency.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 2 and "cold (n=5)" in svg and "warm (n=25)" in svg


def test_png_with_matplotlib(folder):
    write_report(folder)
    assert (folder / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](latency.png)" in (folder / "summary.md").read_text()


def test_without_samples_or_run_json(folder):
    (folder / "samples.csv").unlink()
    (folder / "run.json").unlink()
    summary = write_report(folder).read_text()
    assert "locust_stats.csv (rounded)" in summary and "By start" not in summary and "![" not in summary
    assert "| / | cold | miss | FRA | 3 | 0 | 120 | 300 | 300 | 310 | 0.1 |" in summary
    assert "| / | warm | hit | IAD | 97 | 1 | 3.0 | 9.0 | 14.0 | 20.0 | 12.5 |" in summary
    assert summary.index("| / | cold | miss") < summary.index("**all requests**")


def test_cli_errors_on_a_folder_without_stats(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert "locust_stats.csv not found" in capsys.readouterr().err


def test_throttled_requests_and_misses_per_pop_are_drawn_and_tabled_apart(folder):
    """Issue 17: throttled requests were missing from the plot, shared a colour with cold ones and the title said
    "cold vs warm"; FRA/NRT misses were mixed into "warm"."""
    from loadtests.plot import COLORS, start_title

    rows = [(1000.5 + i * 0.1, "warm", "hit", "IAD", 2.0) for i in range(5)]
    rows += [(1001.0 + i * 0.1, "warm", "miss", "FRA", 55.0 + i) for i in range(4)]
    rows += [(1001.5 + i * 0.1, "throttled", "throttled", "IAD", 1.5) for i in range(3)]
    rows += [(1002.0, "cold", "miss", "NRT", 140.0)]
    with (folder / "samples.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "label", "bucket", "status", "ok", "cache", "start", "pop", "latency_ms", "edge_ms",
                    "origin_ms", "init_ms", "functions"])
        for t, start, cache, pop, lat in rows:
            w.writerow([t, "/", f"/ [{start}|{cache}@{pop}]", 503 if start == "throttled" else 200, 1, cache, start,
                        pop, lat, 1.0, "", 0, ""])
    summary = write_report(folder, force_svg=True).read_text()
    assert "| warm | miss | FRA | 4 | 56.0 | 58.0 | 58.0 | 58.0 |" in summary
    assert "| warm | hit | IAD | 5 |" in summary and "| throttled | throttled | IAD | 3 |" in summary
    svg = (folder / "latency.svg").read_text()
    assert "latency by start: cold vs warm vs throttled" in svg and "cold vs warm</text>" not in svg
    assert "throttled (n=3)" in svg and svg.count("<polyline") == 3
    assert COLORS["throttled"] not in (COLORS["cold"], COLORS["warm"])
    assert start_title({"warm": [], "throttled": []}) == "latency by start: warm vs throttled"
    write_report(folder)  # and the four-panel PNG
    assert (folder / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
