"""SQLite plumbing of the CloudFront Functions and KeyValueStore stores: one ``cloudfront-functions.db`` in the
state dir, shared by every edgelab process, with the conventions of ``edge.invocation.registry.db``:

- WAL mode, ``busy_timeout`` and ``foreign_keys`` on every connection; readers never block the writer;
- every write transaction starts with ``BEGIN IMMEDIATE`` (the write lock is taken before anything is read, so
  two processes writing at once serialise and ETags/versions never collide);
- one connection per :class:`CffDatabase`, guarded by a lock (callers may use ``asyncio.to_thread``);
- change feed: every write bumps ``generation``; other processes notice through ``PRAGMA data_version`` (a cheap
  in-memory read) and then read the generation and what changed. Polled every 200 ms by ``kvs.KvsSnapshots``,
  a change is visible in every POP within a second.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
import threading
from contextlib import AbstractContextManager
from pathlib import Path

from edge.sqlite import read_transaction, write_transaction

__all__ = ["DB_FILENAME", "CffDatabase", "new_etag"]

DB_FILENAME = "cloudfront-functions.db"

# Statements are split on ";" (no semicolons inside comments).
SCHEMA = """
CREATE TABLE IF NOT EXISTS generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO generation(id, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS kvs_stores (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    comment TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,                -- READY | PROVISIONING | FAILED (control plane)
    failure_reason TEXT,
    created REAL NOT NULL,
    last_modified REAL NOT NULL,         -- control-plane changes (Comment)
    data_modified REAL NOT NULL,         -- last key change (data plane LastModified, meta().lastUpdatedDateTime)
    etag TEXT NOT NULL,                  -- control-plane ETag (Describe/Update/DeleteKeyValueStore)
    data_etag TEXT NOT NULL,             -- data-plane ETag: a version of the whole store
    version INTEGER NOT NULL DEFAULT 0   -- bumped with data_etag, snapshots compare it
);
CREATE TABLE IF NOT EXISTS kvs_items (
    store_id TEXT NOT NULL REFERENCES kvs_stores(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (store_id, key)
);
CREATE TABLE IF NOT EXISTS cff_functions (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cff_stages (
    name TEXT NOT NULL REFERENCES cff_functions(name) ON DELETE CASCADE,
    stage TEXT NOT NULL,                 -- DEVELOPMENT | LIVE
    comment TEXT NOT NULL,
    runtime TEXT NOT NULL,
    code BLOB NOT NULL,
    kvs_arns TEXT NOT NULL DEFAULT '[]', -- JSON list (at most one)
    etag TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,-- DEVELOPMENT: 1 when identical to LIVE
    created REAL NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (name, stage)
);
"""

_ALNUM = string.ascii_uppercase + string.digits


def new_etag(prefix: str = "E") -> str:
    """An opaque ETag in AWS's style (``E2QWRUHAPOMQZL``; data-plane ``KV1F83G8C2ARO7P``)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(13))


class CffDatabase:
    def __init__(self, state_dir: Path | str) -> None:
        self.path = Path(state_dir) / DB_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        with write_transaction(self._conn, self._lock) as cur:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)

    def write(self) -> AbstractContextManager[sqlite3.Cursor]:
        """A write transaction (BEGIN IMMEDIATE) that bumps the change generation when it commits."""
        return write_transaction(self._conn, self._lock, before_commit="UPDATE generation SET value = value + 1 WHERE id = 1")

    def read(self) -> AbstractContextManager[sqlite3.Cursor]:
        """A consistent read (one deferred transaction)."""
        return read_transaction(self._conn, self._lock)

    def data_version(self) -> int:
        """Moves when another connection commits (PRAGMA data_version): the cheap half of the change feed."""
        with self._lock:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def generation(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT value FROM generation WHERE id = 1").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
