"""Log line formats and the log store (pure, plus file I/O under tmp_path)."""

from __future__ import annotations

import re
from pathlib import Path

from edge.invocation.execution import logs


def test_report_line_format() -> None:
    line = logs.report_line("id-1", 3.0149, 128, 36, 110.1)
    assert line == ("REPORT RequestId: id-1\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"
                    "Max Memory Used: 36 MB\tInit Duration: 110.10 ms\t")
    warm = logs.report_line("id-2", 0.2, 128, 20)
    assert warm.endswith("Max Memory Used: 20 MB\t") and "Billed Duration: 1 ms" in warm
    assert logs.report_line("id", 1000.0, 128, 20, status="timeout").endswith("Status: timeout\t")


def test_platform_lines() -> None:
    assert logs.start_line("r", "$LATEST") == "START RequestId: r Version: $LATEST"
    assert logs.end_line("r") == "END RequestId: r"
    assert re.fullmatch(r"INIT_START Runtime Version: python:3\.11\.7\tRuntime Version ARN: "
                        r"arn:aws:lambda:eu-central-1::runtime:[0-9a-f]{64}",
                        logs.init_start_line("python:3.11.7", "eu-central-1"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z r Task timed out after 3\.00 seconds",
                        logs.timeout_line("r", 3))
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[7\][0-9a-f]{32}", logs.stream_name("7", "a" * 32))


def test_output_lines_and_tail() -> None:
    assert logs.output_lines(b"") == []
    assert logs.output_lines(b"a\nb\n") == ["a", "b"]
    assert logs.output_lines(b"a\n\nno newline") == ["a", "", "no newline"]
    lines = [f"{i:04d}" + "x" * 95 for i in range(100)]
    t = logs.tail(lines)
    assert len(t.encode()) == 4096 and t.endswith("x\n") and "0099" in t
    assert logs.tail(["é" * 3000]).encode("utf-8")  # never splits a character


async def test_store_batches_and_reads_back(tmp_path: Path) -> None:
    store = logs.LogStore(tmp_path / "logs", flush_interval_s=10)
    await store.start()
    try:
        store.append("/aws/lambda/f", "2026/01/01/[$LATEST]" + "a" * 32, ["START", "one", "END"], "r1", ts_ms=1000)
        store.append("/aws/lambda/f", "2026/01/01/[$LATEST]" + "b" * 32, ["other"], "r2", ts_ms=2000)
        assert not (tmp_path / "logs" / "%2Faws%2Flambda%2Ff").exists()  # nothing written yet
        # pending events are visible to readers in this process before the flush
        assert [e["message"] for e in store.read("/aws/lambda/f")] == ["START", "one", "END", "other"]
        await store.flush()
        fresh = logs.LogStore(tmp_path / "logs")
        assert fresh.groups() == ["/aws/lambda/f"]
        assert [e["message"] for e in fresh.read("/aws/lambda/f", request_id="r2")] == ["other"]
        assert [e["message"] for e in fresh.read("/aws/lambda/f", since=1500)] == ["other"]
        assert [e["message"] for e in fresh.read("/aws/lambda/f", tail=2)] == ["END", "other"]
        assert fresh.read("/aws/lambda/none") == []
    finally:
        await store.close()


async def test_store_survives_its_directory_being_removed(tmp_path: Path) -> None:
    import shutil

    store = logs.LogStore(tmp_path / "logs", flush_interval_s=10)
    await store.start()
    try:
        store.append("/g", "s", ["one"], "r1")
        await store.flush()
        shutil.rmtree(tmp_path / "logs")  # e.g. an admin wiping the state dir's logs
        store.append("/g", "s", ["two"], "r2")
        await store.flush()
        assert [e["message"] for e in store.read("/g")] == ["two"]
    finally:
        await store.close()


async def test_store_writes_one_line_per_append_and_reads_the_earlier_format(tmp_path: Path) -> None:
    import orjson

    store = logs.LogStore(tmp_path / "logs", flush_interval_s=10)
    await store.start()
    try:
        store.append("/g", "s", ["START", "out", "END", "REPORT"], "r2", ts_ms=2000)
        store.append("/g", "s", ["START 2"], "r3", ts_ms=3000)
        await store.flush()
        path = tmp_path / "logs" / "%2Fg" / "s.jsonl"
        lines = path.read_bytes().splitlines()
        assert [orjson.loads(line) for line in lines] == [[2000, "r2", ["START", "out", "END", "REPORT"]],
                                                          [3000, "r3", ["START 2"]]]
        # a stream written by an earlier edgelab (one {"t","m","r"} object per event), then a torn last line
        with path.open("ab") as f:
            f.write(b'{"t": 1000, "m": "old", "r": "r1"}\n[4000, "r4", ["torn')
        fresh = logs.LogStore(tmp_path / "logs")
        assert [(e["timestamp"], e["message"]) for e in fresh.read("/g")] == [
            (1000, "old"), (2000, "START"), (2000, "out"), (2000, "END"), (2000, "REPORT"), (3000, "START 2")]
        assert [e["message"] for e in fresh.read("/g", request_id="r1")] == ["old"]
    finally:
        await store.close()


async def test_small_flush_is_written_on_the_loop_and_a_large_one_in_a_thread(tmp_path: Path, monkeypatch) -> None:
    """A thread doing every flush's file calls took the GIL back after each one (measured in logs.py's docstring):
    up to INLINE_BYTES per flush is appended on the event loop, more in a thread; both write the same lines."""
    import asyncio

    threads: list[object] = []
    real = asyncio.to_thread

    async def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(logs.asyncio, "to_thread", counting)
    store = logs.LogStore(tmp_path / "logs", flush_interval_s=10)
    await store.start()
    threads.clear()
    try:
        store.append("/g", "a", ["small"], "r1", ts_ms=1)
        store.append("/g", "b", ["other stream"], "r2", ts_ms=2)
        await store.flush()
        assert threads == []
        big = "x" * 4096
        for i in range(logs.INLINE_BYTES // 4096 + 1):
            store.append("/g", "a", [big], f"r{i + 3}", ts_ms=3)
        await store.flush()
        assert len(threads) == 1
        fresh = logs.LogStore(tmp_path / "logs")
        assert [e["message"] for e in fresh.read("/g", stream="b")] == ["other stream"]
        got = [e["message"] for e in fresh.read("/g", stream="a")]
        assert got[0] == "small" and got[1:] == [big] * (logs.INLINE_BYTES // 4096 + 1)
    finally:
        await store.close()
