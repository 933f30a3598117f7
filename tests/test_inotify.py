"""edge.inotify.DirectoryWatch: real files under tmp_path, the real event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.inotify import DirectoryWatch

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


async def _settle(seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)


async def _more(calls: list[float], than: int) -> int:
    """Wait (up to 2 s, for a loaded machine) until there are more calls than ``than``; their number."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while len(calls) <= than:
        assert loop.time() < deadline, "no callback within 2 s"
        await asyncio.sleep(0.005)
    return len(calls)


@contextlib.contextmanager
def _timed_calls(directory: Path, **timing: float) -> Iterator[list[float]]:
    """A watch of ``directory/f`` whose callback records the loop's time; closed on exit."""
    loop = asyncio.get_running_loop()
    calls: list[float] = []
    watch = DirectoryWatch(directory, ["f"], lambda: calls.append(loop.time()), **timing)
    assert watch.open()
    try:
        yield calls
    finally:
        watch.close()


async def test_calls_back_for_watched_names_only(tmp_path: Path) -> None:
    calls: list[float] = []
    watch = DirectoryWatch(tmp_path, ["reg.db", "reg.db-wal"], lambda: calls.append(0.0), settle_s=0.05)
    assert watch.open() and watch.active
    try:
        (tmp_path / "other.db").write_bytes(b"x")
        (tmp_path / "reg.db-shm").write_bytes(b"x")
        await _settle()
        assert calls == []
        (tmp_path / "reg.db-wal").write_bytes(b"created")  # IN_CREATE + IN_MODIFY
        await _more(calls, 0)
        await _settle(0.15)  # and the trailing call
        n = len(calls)
        # another process appending (a commit elsewhere)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"open({str(tmp_path / 'reg.db')!r}, 'ab').write(b'y')")
        assert await proc.wait() == 0
        await _more(calls, n)
        await _settle(0.15)
        n = len(calls)
        os.unlink(tmp_path / "reg.db-wal")  # IN_DELETE (SQLite removes the WAL when the last connection closes)
        await _more(calls, n)
    finally:
        watch.close()
    n = len(calls)
    (tmp_path / "reg.db").write_bytes(b"after close")
    await _settle()
    assert len(calls) == n and not watch.active
    watch.close()  # idempotent


async def test_one_write_calls_back_at_once_and_once_more_when_settled(tmp_path: Path) -> None:
    """The trailing call: a SQLite commit is visible only after the writer's last write (the WAL index is updated
    through shared memory, which inotify does not report), so the caller reads once more ``settle_s`` later."""
    loop = asyncio.get_running_loop()
    with _timed_calls(tmp_path, min_interval_s=0.05, settle_s=0.2) as calls:
        written = loop.time()
        (tmp_path / "f").write_bytes(b"x")
        await _more(calls, 0)
        await asyncio.sleep(0.4)
        assert len(calls) == 2, calls
        assert calls[1] - calls[0] >= 0.19 and calls[1] >= written + 0.19


async def test_a_burst_is_coalesced(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    with _timed_calls(tmp_path, min_interval_s=0.2, settle_s=0.1) as calls:
        start = loop.time()
        for _ in range(20):  # 20 writes in ~0.1 s
            with (tmp_path / "f").open("ab") as f:
                f.write(b"x")
            await asyncio.sleep(0.005)
        last_write = loop.time()
        await asyncio.sleep(0.4)
        # the first at once; at most one per interval while the burst lasts (~0.1 s, longer on a loaded machine);
        # one when it settled
        assert 2 <= len(calls) <= 2 + int((last_write - start) / 0.2), calls
        assert calls[0] - start < 0.1 and calls[-1] >= last_write + 0.09


async def test_directory_going_away_calls_back_and_deactivates(tmp_path: Path) -> None:
    watched = tmp_path / "state"
    watched.mkdir()
    calls: list[int] = []
    watch = DirectoryWatch(watched, ["f"], lambda: calls.append(1))
    assert watch.open()
    watched.rmdir()
    await _settle()
    assert calls and not watch.active  # the caller re-checks, then polls
    watch.close()


async def test_open_returns_false_when_the_directory_cannot_be_watched(tmp_path: Path) -> None:
    watch = DirectoryWatch(tmp_path / "missing", ["f"], lambda: None)
    assert watch.open() is False and not watch.active
    watch.close()


async def test_database_watch_sets_written_for_the_db_and_its_wal_and_polls_without_inotify(tmp_path: Path) -> None:
    """DatabaseWatch: a write to ``x.db`` or ``x.db-wal`` sets ``written`` (and calls ``on_write``), the shared
    memory file does not; the change-feed wait is FALLBACK_POLL_S while watching and the poll interval when the
    watch cannot open."""
    from edge.inotify import FALLBACK_POLL_S, DatabaseWatch

    calls: list[float] = []
    watch = DatabaseWatch(tmp_path / "x.db", 0.05, on_write=lambda: calls.append(0.0))
    assert watch.open() and watch.timeout == FALLBACK_POLL_S
    try:
        (tmp_path / "x.db-shm").write_bytes(b"x")
        await _settle()
        assert not watch.written.is_set() and calls == []
        (tmp_path / "x.db-wal").write_bytes(b"x")
        await _more(calls, 0)
        assert watch.written.is_set()
    finally:
        watch.close()
    unwatched = DatabaseWatch(tmp_path / "missing" / "x.db", 0.05)
    assert not unwatched.open() and not unwatched.active and unwatched.timeout == 0.05
