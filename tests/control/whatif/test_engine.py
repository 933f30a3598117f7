"""What-if numbers against a hand-computed case: ten requests, two distributions differing in DefaultTTL (60 s vs
3600 s) and in their Lambda@Edge association, counted exactly; the same figures with one and two processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.control.cli.main import main
from edge.control.whatif.engine import Counters, load_origin_headers, run_whatif
from edge.control.whatif.report import chart_svg, html_report, markdown_report, totals
from tests.cdn.scripted_origin import behavior_config, distribution_config
from tests.control.replay.logdata import HEADER, tsv_line

ALL = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}:1"


def _dist(default_ttl: int, event: str) -> dict:
    b = behavior_config(default_ttl=default_ttl, methods=ALL)
    b["LambdaFunctionAssociations"] = {"Quantity": 1, "Items": [
        {"LambdaFunctionARN": ARN.format("f"), "EventType": event, "IncludeBody": False}]}
    return distribution_config(default=b)


# t (s), location, method, path, logged size.                         A (TTL 60)     B (TTL 3600)
LOG = [(0, "IAD89-C1", "GET", "/a", 1000),                            # miss 1000      miss 1000
       (10, "IAD89-C1", "GET", "/a", 1000),                           # hit            hit
       (30, "IAD89-C1", "GET", "/b", 500),                            # miss 500       miss 500
       (50, "IAD89-C1", "GET", "/a", 1000),                           # hit (age 50)   hit
       (70, "IAD89-C2", "GET", "/a", 1000),                           # miss (expired, no validator)  hit
       (80, "IAD89-C1", "GET", "/b", 500),                            # hit (age 50)   hit
       (100, "FRA56-P5", "GET", "/a", 1000),                          # miss: another POP's cache     miss
       (130, "IAD89-C1", "GET", "/a", 1000),                          # miss (age 60 = TTL)           hit
       (140, "IAD89-C1", "POST", "/a", 200),                          # pass 200       pass 200
       (4000, "IAD89-C1", "GET", "/b", 500)]                          # miss 500       miss (age 3970)


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path, Path]:
    log = tmp_path / "ten.log"
    log.write_text(HEADER + "".join(tsv_line(t, loc, m, p, size=s) for t, loc, m, p, s in LOG))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_dist(60, "viewer-request")))
    b.write_text(json.dumps(_dist(3600, "origin-request")))
    return log, a, b


def _check(c: Counters, *, requests: int, hits: int, misses: int, passes: int, origin: int, origin_bytes: int) -> None:
    assert (c.requests, c.hits, c.misses, c.passes, c.origin_requests, c.origin_bytes) == \
        (requests, hits, misses, passes, origin, origin_bytes)


@pytest.mark.parametrize("processes", [1, 2])
def test_hand_computed_case(case: tuple[Path, Path, Path], processes: int) -> None:
    log, a, b = case
    result = run_whatif(log, {"A": a, "B": b}, processes=processes)
    assert result.processes == processes and result.stats.records == 10 and result.stats.bad == 0
    ta, tb = totals(result, "A"), totals(result, "B")
    _check(ta, requests=10, hits=3, misses=6, passes=1, origin=7, origin_bytes=1000 + 500 + 1000 + 1000 + 1000 + 200 + 500)
    _check(tb, requests=10, hits=5, misses=4, passes=1, origin=5, origin_bytes=1000 + 500 + 1000 + 200 + 500)
    assert ta.hit_ratio == pytest.approx(3 / 9) and tb.hit_ratio == pytest.approx(5 / 9)
    assert dict(ta.invocations) == {"viewer-request": 10}  # every request the behavior allows
    assert dict(tb.invocations) == {"origin-request": 5}  # every origin fetch, the POST included
    iad_a, fra_a = result.results["A"]["IAD89"]["*"], result.results["A"]["FRA56"]["*"]
    _check(iad_a, requests=9, hits=3, misses=5, passes=1, origin=6, origin_bytes=4200)
    _check(fra_a, requests=1, hits=0, misses=1, passes=0, origin=1, origin_bytes=1000)
    assert result.recorded["IAD89"].requests == 9 and result.recorded["IAD89"].misses == 9  # the log says Miss


def test_origin_headers_override_the_default_ttl(case: tuple[Path, Path, Path], tmp_path: Path) -> None:
    log, a, _ = case
    rules = tmp_path / "origin.json"
    rules.write_text(json.dumps({"/b": "no-store", "/a": {"Cache-Control": "max-age=20", "ETag": '"v1"'}}))
    result = run_whatif(log, {"A": a}, processes=1, origin_headers=load_origin_headers(rules))
    c = result.results["A"]["IAD89"]["*"]
    # /a: 0 miss, 10 hit, 50 refresh (304, no bytes), 70 refresh (age 20 = max-age: stale), 130 refresh;
    # /b (no-store) three misses; the POST a pass
    assert (c.hits, c.refresh_hits, c.misses, c.origin_requests, c.origin_bytes) == (1, 3, 4, 8, 1000 + 500 * 3 + 200)
    assert "max-age=20" in result.assumptions[0]


def test_bad_origin_headers_file(tmp_path: Path) -> None:
    f = tmp_path / "o.json"
    f.write_text('{"/a": 5}')
    with pytest.raises(ValueError, match="must be a Cache-Control string"):
        load_origin_headers(f)


def test_reports(case: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, a, b = case
    md, page = tmp_path / "r.md", tmp_path / "r.html"
    assert main(["whatif", "--distribution", str(a), "--distribution", str(b), str(log), "--processes", "1",
                 "--markdown", str(md), "--html", str(page)]) == 0
    text = md.read_text()
    assert "| A | 10 | 33.3% | 7 | 5.2 KB | viewer-request 10 |" in text
    assert "| B | 10 | 55.6% | 5 | 3.2 KB | origin-request 5 |" in text
    assert "DefaultTTL" in text and "![hit ratio per POP](r.svg)" in text
    assert (tmp_path / "r.svg").read_text().startswith("<svg") and "<svg" in page.read_text()
    capsys.readouterr()
    assert main(["whatif", "--distribution", str(a), str(log), "--json", "--processes", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["results"]["A"]["total"]["origin_bytes"] == 5200
    assert data["results"]["A"]["pops"]["FRA56"]["total"]["misses"] == 1


def test_cli_errors(case: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, a, _ = case
    bad = tmp_path / "bad.json"
    bad.write_text('{"DistributionConfig": {"Origins": 3}}')
    assert main(["whatif", "--distribution", str(bad), str(log)]) == 2
    assert "distribution A" in capsys.readouterr().err
    assert main(["whatif", "--distribution", str(a), str(tmp_path / "missing.log")]) == 2
    assert "cannot read the log" in capsys.readouterr().err
    assert main(["whatif", "--distribution", str(a), str(log), "--processes", "1",
                 "--html", str(tmp_path / "no" / "such" / "dir.html")]) == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_chart_and_html_escape_names() -> None:
    from edge.control.replay.readers import ReadStats
    from edge.control.whatif.engine import WhatIfResult

    r = WhatIfResult(["<A>"], {"<A>": {"P<1": {"*": Counters(requests=2, hits=1, misses=1)}}},
                     {"P<1": Counters(requests=2, hits=2)}, ReadStats("x"))
    svg, page = chart_svg(r), html_report(r, {})
    assert "P&lt;1" in svg and "&lt;A&gt;" in svg and "<A>" not in svg
    assert "P&lt;1" in page and "<A>" not in page
    assert "| P<1 | 2 | 100.0% | 50.0% |" in markdown_report(r, {})
