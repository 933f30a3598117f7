"""SQLite transactions as every edgelab store takes them (the registry, the CloudFront Functions store, the
EventBridge store): one connection per store object guarded by a lock, writes under ``BEGIN IMMEDIATE`` so that the
write lock is held before anything is read (two processes writing at once serialise instead of failing on upgrade;
https://www.sqlite.org/lang_transaction.html), reads in one deferred transaction (a consistent snapshot).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ["read_transaction", "write_transaction"]


@contextmanager
def write_transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any], *,
                      before_commit: str | None = None) -> Iterator[sqlite3.Cursor]:
    """A write transaction on ``conn`` (opened with ``isolation_level=None``) under ``lock``: committed when the block
    ends, rolled back when it raises. ``before_commit`` is run as the transaction's last statement (a change feed's
    generation bump)."""
    with lock:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            if before_commit is not None:
                cur.execute(before_commit)
        except BaseException:
            cur.execute("ROLLBACK")
            cur.close()
            raise
        cur.execute("COMMIT")
        cur.close()


@contextmanager
def read_transaction(conn: sqlite3.Connection, lock: AbstractContextManager[Any]) -> Iterator[sqlite3.Cursor]:
    """Several SELECTs on one snapshot (a deferred transaction) under ``lock``."""
    with lock:
        cur = conn.cursor()
        cur.execute("BEGIN")
        try:
            yield cur
        finally:
            cur.execute("COMMIT")
            cur.close()
