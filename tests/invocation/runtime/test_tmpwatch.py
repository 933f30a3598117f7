"""TmpWatch: /tmp usage is rescanned when inotify reports a change (or the safety-net period passed), and the
cached figure is reused otherwise. Real files and a real inotify descriptor; the clock is injected."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from edge.invocation.runtime.tmpwatch import TmpWatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watch(tmp_path: Path) -> tuple[TmpWatch, FakeClock, Path]:
    root = tmp_path / "tmp"
    root.mkdir()
    clock = FakeClock()
    w = TmpWatch(str(root), ctypes.CDLL(None, use_errno=True), rescan_after_s=1.0, clock=clock)
    yield w, clock, root
    w.close()


def blocks(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_unchanged_tree_is_not_rescanned(watch: tuple[TmpWatch, FakeClock, Path]) -> None:
    w, clock, root = watch
    (root / "a").write_bytes(b"x" * 10_000)
    assert w.usage() == blocks(root / "a") and w.scans == 1
    for _ in range(5):
        clock.now += 0.1
        assert w.usage() == blocks(root / "a")
    assert w.scans == 1


def test_changes_anywhere_in_the_tree_trigger_a_rescan(watch: tuple[TmpWatch, FakeClock, Path]) -> None:
    w, _, root = watch
    assert w.usage() == 0
    sub = root / "d1" / "d2"
    sub.mkdir(parents=True)
    assert w.usage() == 0 and w.scans == 2  # the new directories are watched from now on
    with open(sub / "f", "wb") as f:
        f.write(b"y" * 50_000)
    assert w.usage() == blocks(sub / "f") and w.scans == 3
    assert w.usage() == blocks(sub / "f") and w.scans == 3
    with open(sub / "f", "ab") as f:  # an existing file in a nested directory grows
        f.write(b"z" * 200_000)
    assert w.usage() == blocks(sub / "f") and w.scans == 4
    outside = root.parent / "outside"
    outside.write_bytes(b"w" * 30_000)
    os.rename(outside, root / "moved-in")
    assert w.usage() == blocks(sub / "f") + blocks(root / "moved-in") and w.scans == 5


def test_safety_net_rescans_after_the_period(watch: tuple[TmpWatch, FakeClock, Path]) -> None:
    w, clock, _root = watch
    w.usage()
    clock.now += 1.5
    w.usage()
    assert w.scans == 2


def test_unwatchable_tree_is_scanned_every_time(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    w = TmpWatch(str(missing), ctypes.CDLL(None, use_errno=True), clock=FakeClock())
    try:
        assert w.usage() == 0 and w.usage() == 0 and w.scans == 2
        missing.mkdir()
        (missing / "f").write_bytes(b"x" * 8192)
        assert w.usage() == blocks(missing / "f")
    finally:
        w.close()
