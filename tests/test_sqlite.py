"""edge.sqlite: the write transaction commits, runs its last statement, and rolls everything back on an error."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edge.sqlite import read_transaction, write_transaction


def _db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.execute("CREATE TABLE gen (value INTEGER)")
    conn.execute("INSERT INTO gen VALUES (0)")
    return conn


def test_commit_runs_before_commit_last_and_rollback_undoes_everything(tmp_path: Path) -> None:
    conn, lock = _db(tmp_path), threading.Lock()
    bump = "UPDATE gen SET value = value + 1"
    with write_transaction(conn, lock, before_commit=bump) as cur:
        cur.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), write_transaction(conn, lock, before_commit=bump) as cur:
        cur.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    with read_transaction(conn, lock) as cur:
        rows = cur.execute("SELECT v FROM t").fetchall()
        gen = cur.execute("SELECT value FROM gen").fetchone()[0]
    assert (rows, gen) == ([(1,)], 1)
    assert not conn.in_transaction and not lock.locked()


def test_a_second_process_writing_waits_for_the_first(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: another connection cannot start writing while a write transaction is open."""
    conn, lock = _db(tmp_path), threading.Lock()
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None, timeout=0.05)
    with write_transaction(conn, lock) as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
