"""SQLite plumbing of the registry: schema, connection settings, transactions, record types.

One ``registry.db`` (WAL mode) is shared by every edgelab process. Rules that make that safe:

- every connection sets ``busy_timeout`` and ``foreign_keys``; the database runs in WAL mode so readers never
  block the writer and vice versa;
- every write transaction starts with ``BEGIN IMMEDIATE``: the write lock is taken before anything is read, so
  two processes publishing at once serialise and version numbers never collide;
- one connection per :class:`Database`, guarded by a lock (``asyncio.to_thread`` runs calls on pool threads).

Change feed: ``PRAGMA data_version`` changes whenever *another* connection commits. It is a cheap in-memory
read, polled by the registry to drop its caches.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from edge.invocation.registry.config import FunctionConfig
from edge.invocation.registry.packages import PackageInfo
from edge.sqlite import read_transaction, write_transaction

_BUMP = "UPDATE registry_generation SET value = value + 1 WHERE id = 1"  # the change feed (track_changes)

__all__ = ["AliasRecord", "CodeRef", "Database", "LayerVersionRecord", "ProvisionedRecord", "VersionRecord"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    next_version INTEGER NOT NULL DEFAULT 1,
    reserved_concurrency INTEGER,
    tags TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS versions (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version TEXT NOT NULL,               -- '$LATEST' or a decimal number
    config TEXT NOT NULL,                -- FunctionConfig JSON
    code_hex TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    unzipped_size INTEGER NOT NULL,
    layer_code TEXT NOT NULL DEFAULT '[]',  -- [[arn, sha256_hex, size, unzipped], ...] resolved at update time
    revision_id TEXT NOT NULL,           -- AWS RevisionId: new on every mutation
    config_revision TEXT NOT NULL,       -- internal: content hash of config+code+layers (see registry_rows)
    last_modified TEXT NOT NULL,
    PRIMARY KEY (function_name, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    function_version TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    weights TEXT NOT NULL DEFAULT '{}',
    revision_id TEXT NOT NULL,
    PRIMARY KEY (function_name, name)
);
CREATE TABLE IF NOT EXISTS provisioned (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    requested INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);
CREATE TABLE IF NOT EXISTS layers (
    name TEXT PRIMARY KEY,
    next_version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS layer_versions (
    layer_name TEXT NOT NULL REFERENCES layers(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    compatible_runtimes TEXT NOT NULL DEFAULT '[]',
    compatible_architectures TEXT NOT NULL DEFAULT '[]',
    license_info TEXT,
    code_hex TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    unzipped_size INTEGER NOT NULL,
    created_date TEXT NOT NULL,
    PRIMARY KEY (layer_name, version)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Migrations: appended statements, all idempotent (IF NOT EXISTS). A database lacking any table named here is
# brought up to date by the first process that opens it (see Database._has_schema).
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS registry_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO registry_generation(id, value) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,             -- '$LATEST', a version number or an alias
    max_retry INTEGER,                   -- NULL: not set (AWS default 2 applies)
    max_age INTEGER,                     -- NULL: not set (AWS default 21600 applies)
    on_success TEXT,
    on_failure TEXT,
    last_modified REAL NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);
CREATE TABLE IF NOT EXISTS async_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    function_name TEXT NOT NULL,         -- no foreign key: events of a deleted function are expired explicitly
    qualifier TEXT,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, -- invocations that ended in a function error
    throttles INTEGER NOT NULL DEFAULT 0,
    depth INTEGER NOT NULL DEFAULT 0,    -- destination chain depth (0: invoked by a client)
    lease_until REAL NOT NULL DEFAULT 0,
    last_version TEXT,                   -- executed version and error payload of the last failed attempt
    last_error BLOB
);
CREATE INDEX IF NOT EXISTS async_events_due ON async_events(due_at);
CREATE TABLE IF NOT EXISTS async_stats (
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (function_name, name)
);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    visibility_timeout REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL REFERENCES queues(name) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',   -- SQS MessageAttributes shape
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages(queue, visible_at);
CREATE TABLE IF NOT EXISTS event_source_mappings (
    uuid TEXT PRIMARY KEY,
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT,
    source_arn TEXT NOT NULL,
    config TEXT NOT NULL,                -- JSON: BatchSize, MaximumBatchingWindowInSeconds, ...
    enabled INTEGER NOT NULL,
    last_modified REAL NOT NULL,
    last_result TEXT NOT NULL DEFAULT 'No records processed'
);
"""

SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS function_policies (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,             -- '' for the unqualified function, else a version or an alias
    statements TEXT NOT NULL,            -- JSON list of the resource-based policy's statements
    revision_id TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);
CREATE TABLE IF NOT EXISTS function_urls (
    url_id TEXT PRIMARY KEY,             -- the <url-id> of <url-id>.lambda-url.<region>.on.aws
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,             -- '' for the unqualified function, else an alias
    auth_type TEXT NOT NULL,
    cors TEXT,                           -- JSON (the Cors structure) or NULL
    invoke_mode TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    UNIQUE (function_name, qualifier)
);
CREATE TABLE IF NOT EXISTS queue_attributes (
    queue TEXT PRIMARY KEY REFERENCES queues(name) ON DELETE CASCADE,
    attributes TEXT NOT NULL DEFAULT '{}',   -- SQS queue attributes set by the user (strings), tags under "tags"
    modified_at REAL NOT NULL
);
"""

ALL_SCHEMA = SCHEMA + SCHEMA_V2 + SCHEMA_V3
_TABLES = tuple(
    line.split()[5] for line in ALL_SCHEMA.splitlines() if line.startswith("CREATE TABLE IF NOT EXISTS")
)


@dataclass(frozen=True, slots=True)
class CodeRef:
    sha256_hex: str
    code_sha256: str
    size: int
    unzipped_size: int

    @classmethod
    def of(cls, info: PackageInfo) -> CodeRef:
        return cls(info.sha256_hex, info.code_sha256, info.size, info.unzipped_size)


@dataclass(frozen=True, slots=True)
class LayerAttachment:
    arn: str  # layer version ARN
    sha256_hex: str
    size: int
    unzipped_size: int


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One row of ``versions``: $LATEST or a published version."""

    function_name: str
    version: str
    config: FunctionConfig
    code: CodeRef
    layers: tuple[LayerAttachment, ...]
    revision_id: str
    config_revision: str
    last_modified: str


@dataclass(frozen=True, slots=True)
class AliasRecord:
    function_name: str
    name: str
    function_version: str
    description: str
    weights: dict[str, float] = field(default_factory=dict)
    revision_id: str = ""


@dataclass(frozen=True, slots=True)
class ProvisionedRecord:
    function_name: str
    qualifier: str
    requested: int
    last_modified: str


@dataclass(frozen=True, slots=True)
class LayerVersionRecord:
    name: str
    version: int
    description: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]
    license_info: str | None
    code: CodeRef
    created_date: str


class Database:
    """One SQLite connection with the project's settings; ``read()`` and ``write()`` give a locked cursor."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, track_changes: bool = True) -> None:
        """``track_changes``: every write transaction bumps ``registry_generation`` (the registry's change
        feed). The asynchronous-invocation store opens its own connection with ``track_changes=False`` so
        that its high-rate commits never invalidate the registry caches of other processes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.track_changes = track_changes
        self._seen_data_version = -1
        self._generation = 0
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        if not self._has_schema():  # only the first opener takes the write lock (others never wait here)
            with self.write() as cur:
                # executescript() would COMMIT behind our back: run the statements one by one instead
                for statement in filter(str.strip, ALL_SCHEMA.split(";")):
                    cur.execute(statement)

    def _has_schema(self) -> bool:
        marks = ",".join("?" * len(_TABLES))
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN ({marks})", _TABLES
        ).fetchone()
        return int(row[0]) == len(_TABLES)

    def read(self) -> AbstractContextManager[sqlite3.Cursor]:
        """A consistent snapshot for several SELECTs (deferred transaction)."""
        return read_transaction(self._conn, self._lock)

    def write(self) -> AbstractContextManager[sqlite3.Cursor]:
        """A write transaction holding the database write lock from the start (BEGIN IMMEDIATE); with
        ``track_changes`` it bumps the change generation as it commits."""
        return write_transaction(self._conn, self._lock, before_commit=_BUMP if self.track_changes else None)

    def execute_pragma(self, pragma: str) -> None:
        """Connection-level setting (e.g. ``synchronous=FULL``) for this connection only."""
        with self._lock:
            self._conn.execute(f"PRAGMA {pragma}")

    def data_version(self) -> int:
        """The registry's change token: moves when another connection (any process) committed a registry
        change since the last call. ``PRAGMA data_version`` (a cheap in-memory read) tells whether anything
        was committed at all; only then is the generation row read, so commits of untracked connections
        (the async event store) do not count as registry changes."""
        with self._lock:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if version != self._seen_data_version:
                self._seen_data_version = version
                row = self._conn.execute("SELECT value FROM registry_generation WHERE id = 1").fetchone()
                self._generation = int(row[0]) if row else 0
            return self._generation

    def close(self) -> None:
        with self._lock:
            self._conn.close()
