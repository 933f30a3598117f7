"""Short headless locust runs through `edgelab loadtest --api` against a real stack (edgelab serve + demo origin
started by OwnStack on free ports, idle expiry 1 s), and the report they leave. ~30 s in all."""

import argparse
import csv
import importlib.util
import json
import os
import urllib.request
from pathlib import Path

import pytest

# The load extra (installed by deploy/dev.sh) provides locust, but locust must NOT be imported here: importing it
# monkey-patches the standard library with gevent in the whole pytest process (asyncio tests then hang). Locust runs
# in subprocesses only; a missing install fails here instead of skipping.
assert importlib.util.find_spec("locust") is not None, "locust (the load extra) is not installed: deploy/dev.sh test"

from edge.control.loadtest import command as loadtest  # noqa: E402
from edge.control.loadtest.stack import OwnStack  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logs = tmp_path_factory.mktemp("stack-logs")
    s = OwnStack(logs, idle_ttl_s=1.0, pops=["IAD", "FRA"], multi=True)
    try:
        s.start(timeout_s=90)
        yield s
    finally:
        procs = list(s.procs)
        s.stop()
        assert all(p.returncode is not None for _, p in procs), "stack processes not reaped"
        assert not s.tmp.exists()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgelab")
    loadtest.add_loadtest_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["loadtest", *argv])


def _folder(out: Path) -> Path:
    (folder,) = list(out.iterdir())
    return folder


def _samples(folder: Path) -> list[dict[str, str]]:
    with (folder / "samples.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_cold_warm_experiment_buckets_and_report(stack, tmp_path, capsys):
    code = loadtest.run_loadtest(_args("cold-warm", "--api", stack.api_url, "--duration", "12", "--idle-gap", "3",
                                       "--users", "4", "--out", str(tmp_path)))
    out = capsys.readouterr().out
    folder = _folder(tmp_path)
    assert code == 0, (folder / "locust.log").read_text()[-3000:]
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust.html", "samples.csv", "summary.md",
                 "run.json"):
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "latency.png").exists() or (folder / "latency.svg").exists()
    run = json.loads((folder / "run.json").read_text())
    assert run["pops"] == ["IAD", "FRA"] and [p[0] for p in run["phases"]] == ["burst", "steady", "idle",
                                                                               "burst-again"]
    rows = _samples(folder)
    assert {r["pop"] for r in rows} == {"IAD", "FRA"}
    assert all(r["bucket"] == f"{r['label']} [{r['start']}|{r['cache']}@{r['pop']}]" for r in rows)
    assert all(r["ok"] == "1" for r in rows)
    # locust's own statistics come out in the same buckets
    with (folder / "locust_stats.csv").open(newline="") as f:
        names = {r["Name"] for r in csv.DictReader(f)}
    assert "/ [warm|hit@IAD]" in names and any(n.endswith("@FRA]") for n in names)
    # cold starts in the first burst (fresh pools) and again after the idle gap (pools expired)
    t0 = float((folder / "samples.csv.start").read_text())
    burst = [r for r in rows if float(r["t"]) - t0 < 3]
    again = [r for r in rows if float(r["t"]) - t0 >= 9]
    assert any(r["start"] == "cold" for r in burst)
    assert any(r["start"] == "cold" for r in again), "no cold start after an idle gap 3x the idle expiry"
    summary = (folder / "summary.md").read_text()
    assert "## By start" in summary and "## By start, cache outcome and POP" in summary and "| burst-again |" in summary and "edge-hello:1" in summary
    assert f"report: {folder}" in out


def test_throttle_scenario_reserved_concurrency_set_then_restored(stack, tmp_path):
    code = loadtest.run_loadtest(_args("throttle", "--api", stack.api_url, "--duration", "4", "--users", "6",
                                       "--reserved", "1", "--out", str(tmp_path)))
    folder = _folder(tmp_path)
    assert code == 0, (folder / "locust.log").read_text()[-3000:]
    caches = {r["cache"] for r in _samples(folder)}
    assert {"generated", "throttled"} <= caches
    with urllib.request.urlopen(f"{stack.api_url}/2019-09-30/functions/lt-slow/concurrency") as resp:
        assert json.loads(resp.read() or b"{}").get("ReservedConcurrentExecutions") is None
    assert os.path.exists(folder / "summary.md")


def test_reset_makes_the_next_request_cold_and_a_miss(stack):
    url = {n: f"http://127.0.0.1:{p}" for n, _, p in stack.pops}["IAD"] + "/"

    def timing() -> tuple[str, str]:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return resp.headers["X-Cache"], resp.headers["Server-Timing"]

    timing()
    x_cache, st = timing()
    assert x_cache.startswith("Hit") and "edge-hello:1 warm" in st
    loadtest.reset(stack.api_url)
    x_cache, st = timing()
    assert x_cache.startswith("Miss") and "edge-hello:1 cold" in st


def test_cold_warm_with_two_locust_processes_gives_one_merged_report(stack, tmp_path):
    """`--processes 2`: locust's distributed mode (a master and two workers on this machine); the workers'
    samples are merged into one samples.csv and one report whose tables and plots split cold/warm, cache
    outcome and POP."""
    code = loadtest.run_loadtest(_args("cold-warm", "--api", stack.api_url, "--duration", "12", "--idle-gap", "3",
                                       "--users", "4", "--processes", "2", "--out", str(tmp_path)))
    folder = _folder(tmp_path)
    assert code == 0, (folder / "locust.log").read_text()[-3000:]
    run = json.loads((folder / "run.json").read_text())
    assert run["processes"] == 2
    workers = run["worker_samples"]
    assert len(workers) == 2 and all(n > 0 for n in workers.values()), workers  # both workers sent requests
    assert not list(folder.glob("samples.csv.worker-*"))  # merged, then removed
    rows = _samples(folder)
    assert len(rows) == sum(workers.values())
    assert [float(r["t"]) for r in rows] == sorted(float(r["t"]) for r in rows)
    assert {r["pop"] for r in rows} == {"IAD", "FRA"} and {r["start"] for r in rows} >= {"cold", "warm"}
    summary = (folder / "summary.md").read_text()
    assert "## By start, cache outcome and POP" in summary and "| burst-again |" in summary
    assert (folder / "latency.png").exists() or (folder / "latency.svg").exists()
    with (folder / "locust_stats.csv").open(newline="") as f:  # the master's statistics cover both workers
        total = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    assert int(total["Request Count"]) >= len(rows) - 50


def test_chaos_file_applied_for_the_run_then_cleared(stack, tmp_path):
    scenario = tmp_path / "chaos.toml"
    scenario.write_text('name = "lt"\n[[fault]]\nkind = "origin-latency"\npops = ["IAD"]\nlatency_ms = 20\n')
    out = tmp_path / "out"
    code = loadtest.run_loadtest(_args("hits", "--api", stack.api_url, "--duration", "3", "--users", "2",
                                       "--chaos", str(scenario), "--out", str(out)))
    folder = _folder(out)
    assert code == 0, (folder / "locust.log").read_text()[-3000:]
    assert (folder / "chaos.toml").read_text() == scenario.read_text()
    with urllib.request.urlopen(f"{stack.api_url}/edgelab/v1/chaos") as resp:
        pops = json.loads(resp.read())["pops"]
    assert pops["IAD"]["scenario"] is None and pops["FRA"]["scenario"] is None  # cleared at the end
    assert pops["IAD"]["counts"]["origin-latency"] >= 1 and pops["FRA"]["counts"] == {}
