"""The code store's staging area: what a writer killed mid-extraction left behind is removed at startup."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from edge.invocation.registry.codestore import CodeStore
from edge.invocation.registry.packages import zip_files


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_orphaned_staging_entries_are_removed_when_a_store_opens(tmp_path: Path) -> None:
    root = tmp_path / "code"
    tmp = root / "tmp"
    tmp.mkdir(parents=True)
    dead = _dead_pid()
    (tmp / f"abcdef012345-p{dead}-x1y2").mkdir()
    (tmp / f"abcdef012345-p{dead}-x1y2" / "half.py").write_text("partial")
    (tmp / f"p{dead}-zz.zip").write_bytes(b"partial")
    (tmp / f"abcdef012345-p{os.getpid()}-live").mkdir()  # a live writer's: kept
    old = tmp / "abcdef012345-legacy"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (tmp / "fresh-legacy").mkdir()  # no pid, recent: may be a live older writer's
    store = CodeStore(root)
    assert store.removed_orphans == 3
    assert sorted(p.name for p in tmp.iterdir()) == [f"abcdef012345-p{os.getpid()}-live", "fresh-legacy"]
    info = store.put(zip_files({"app.py": "x = 1\n"}))  # staging still works, and leaves nothing behind
    assert (store.code_dir(info.sha256_hex) / "app.py").read_text() == "x = 1\n"
    assert sorted(p.name for p in tmp.iterdir()) == [f"abcdef012345-p{os.getpid()}-live", "fresh-legacy"]
