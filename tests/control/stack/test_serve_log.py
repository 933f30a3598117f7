"""The stack's own log (``configure_serve_logging``): console plus a size-rotated file per process, a bounded
number of files, and a second call replacing (not duplicating) the handlers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge.control.stack import logview


def test_serve_log_is_rotated_by_size_and_keeps_a_few_files(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logview, "SERVE_LOG_BYTES", 2000)
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        path = logview.configure_serve_logging("INFO", "%(message)s", tmp_path, "pop-IAD")
        path = logview.configure_serve_logging("INFO", "%(message)s", tmp_path, "pop-IAD")  # replaces, no duplicates
        assert path == tmp_path / "serve-logs" / "pop-IAD.log"
        assert len(root.handlers) == len(before) + 2
        log = logging.getLogger("edgelab.test-rotation")
        for i in range(400):
            log.info("line %04d %s", i, "x" * 40)
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["pop-IAD.log", "pop-IAD.log.1", "pop-IAD.log.2", "pop-IAD.log.3"]
        assert all(p.stat().st_size <= 2100 for p in path.parent.iterdir())
        assert "line 0399" in path.read_text()
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
        logview._installed.clear()
        root.setLevel(level)
