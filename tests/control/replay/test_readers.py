"""The log readers: legacy standard logs (plain and gzip, with and without #Fields), v2 JSON lines and HAR 1.2;
bad lines counted with their line numbers, never a crash."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from edge.control.replay.readers import LogReadError, read_log
from edge.control.replay.records import LEGACY_FIELDS
from tests.control.replay.logdata import BASE, HEADER, tsv_line


def test_legacy_tsv_fields_and_decoding(tmp_path: Path) -> None:
    log = tmp_path / "E123.2026-01-01-00.abcd"
    log.write_text(HEADER + tsv_line(5, "IAD89-C1", "GET", "/img/a.jpg", 200, 1234, "Hit", query="x=1&y=2",
                                     cookie="session%3Dabc", ua="Mozilla/5.0%20(X11)"))
    (rec,), stats = read_log(log)
    assert (stats.format, stats.records, stats.bad) == ("tsv", 1, 0)
    assert rec.ts == BASE + 5 and rec.location == "IAD89-C1" and rec.pop_code == "IAD89"
    assert (rec.method, rec.uri, rec.query, rec.status, rec.result_type) == ("GET", "/img/a.jpg", "x=1&y=2", 200, "Hit")
    assert (rec.content_len, rec.sc_bytes, rec.body_bytes) == (1234, 1534, 1234)
    assert rec.cookie == "session=abc" and rec.user_agent == "Mozilla/5.0 (X11)" and rec.referer == ""
    assert ("Cookie", "session=abc") in rec.headers() and rec.line == 3


def test_bad_lines_are_counted_with_line_numbers(tmp_path: Path) -> None:
    good = tsv_line(0, "FRA56-P5", "GET", "/a")
    lines = [good,
             "2026-01-01\t00:00:01\tFRA56-P5\n",  # too few fields
             good.replace("GET", "FETCH"),  # not a method
             good.replace("2026-01-01", "2026-02-30"),  # no such date
             good.replace("\t200\t", "\t2x0\t"),  # status not a number
             good.replace("/a", "a"),  # stem without /
             "\n", good]
    log = tmp_path / "bad.log"
    log.write_text(HEADER + "".join(lines))
    records, stats = read_log(log)
    assert len(records) == 2 and stats.bad == 5 and stats.lines == 7
    assert [b.line for b in stats.examples] == [4, 5, 6, 7, 8]
    reasons = [b.reason for b in stats.examples]
    assert "3 tab-separated fields" in reasons[0] and "FETCH" in reasons[1] and "does not exist" in reasons[2]
    assert "sc-status" in reasons[3] and "does not start with /" in reasons[4]
    assert "5 bad lines skipped" in stats.summary() and "line 4:" in stats.summary()


def test_gzip_and_headerless_tsv(tmp_path: Path) -> None:
    log = tmp_path / "x.gz"
    with gzip.open(log, "wt") as f:
        f.write(tsv_line(1, "NRT57-P2", "HEAD", "/b") + tsv_line(2, "NRT57-P2", "GET", "/c"))
    records, stats = read_log(log)
    assert stats.format == "tsv.gz" and [r.uri for r in records] == ["/b", "/c"]


def test_fields_line_decides_the_order(tmp_path: Path) -> None:
    log = tmp_path / "few.log"
    log.write_text("#Version: 1.0\n#Fields: cs-uri-stem date time cs-method sc-status x-edge-location\n"
                   "/z\t2026-01-01\t00:00:09\tGET\t304\tSFO5-C3\n")
    (rec,), _ = read_log(log)
    assert (rec.uri, rec.method, rec.status, rec.location, rec.ts) == ("/z", "GET", 304, "SFO5-C3", BASE + 9)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress((HEADER + tsv_line(0, "IAD89-C1", "GET", "/a") * 2000).encode())
    log = tmp_path / "cut.gz"
    log.write_bytes(data[: len(data) // 2])
    with pytest.raises(LogReadError, match="ends early or is corrupt"):
        read_log(log)


def test_corrupt_gzip_is_a_clear_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress((HEADER + tsv_line(0, "IAD89-C1", "GET", "/a") * 2000).encode()))
    data[200:260] = bytes(60)  # zeros in the middle of the deflate stream
    log = tmp_path / "bad.gz"
    log.write_bytes(bytes(data))
    with pytest.raises(LogReadError, match=r"corrupt|cannot decompress"):
        read_log(log)


def test_json_lines_v2(tmp_path: Path) -> None:
    good = {"date": "2026-01-01", "time": "00:00:03", "x-edge-location": "LHR61-C2", "cs-method": "GET",
            "cs-uri-stem": "/j", "sc-status": 404, "x-edge-result-type": "Error", "sc-content-len": "12"}
    lines = [json.dumps(good), "{not json", "[1, 2]", json.dumps({**good, "time": "25:00:00"}),
             json.dumps({k: v for k, v in good.items() if k not in ("date", "time")} | {"timestamp": BASE + 7})]
    log = tmp_path / "v2.json"
    log.write_text("\n".join(lines) + "\n")
    records, stats = read_log(log)
    assert stats.format == "json" and stats.bad == 3 and [b.line for b in stats.examples] == [2, 3, 4]
    assert [(r.status, r.result_type, r.ts) for r in records] == [(404, "Error", BASE + 3), (404, "Error", BASE + 7)]


def test_har(tmp_path: Path) -> None:
    entry = {"startedDateTime": "2026-01-01T00:00:04.500Z",
             "request": {"method": "GET", "url": "https://d1.cloudfront.net/p/q.css?v=2",
                         "headers": [{"name": "Cookie", "value": "a=1"}, {"name": "User-Agent", "value": "UA"}]},
             "response": {"status": 200, "headers": [{"name": "x-cache", "value": "RefreshHit from cloudfront"},
                                                     {"name": "x-amz-cf-pop", "value": "SIN2-P1"}],
                          "content": {"size": 321}, "bodySize": 100}}
    log = tmp_path / "s.har"
    log.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry, {"request": {}}, "x"]}}, indent=1))
    (rec,), stats = read_log(log)
    assert stats.format == "har" and stats.bad == 2 and [b.line for b in stats.examples] == [2, 3]
    assert (rec.uri, rec.query, rec.host, rec.location, rec.result_type) == ("/p/q.css", "v=2", "d1.cloudfront.net",
                                                                              "SIN2-P1", "RefreshHit")
    assert rec.ts == BASE + 4.5 and rec.cookie == "a=1" and rec.body_bytes == 321


@pytest.mark.parametrize(("content", "message"), [
    ("hello world\n", "not a CloudFront standard log"),
    ('{"log": {"entries": 3}}', "without log.entries"),
    ('{"log": \n', "neither JSON lines nor a HAR"),
    ("#Version: 1.0\n#Fields: date time\n", "lacks cs-method, cs-uri-stem"),
])
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    log = tmp_path / "x"
    log.write_text(content)
    with pytest.raises(LogReadError, match=message):
        read_log(log)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(LogReadError, match="cannot read the log"):
        read_log(tmp_path / "nope")
    (tmp_path / "empty").write_text("\n\n")
    records, stats = read_log(tmp_path / "empty")
    assert records == [] and stats.format == "empty"


def test_fields_constant_is_the_documented_33() -> None:
    assert len(LEGACY_FIELDS) == 33 and LEGACY_FIELDS[-1] == "sc-range-end"
