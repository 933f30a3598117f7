"""Scheduled rules and their targets, durable in ``<state>/events.db`` (SQLite, WAL). Blocking: call from a thread.

``next_fire`` is stored with each rule (epoch seconds, None when disabled or never again), so a restarted
control process knows which runs it missed: see :mod:`.scheduler` for the catch-up rule.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.sqlite import write_transaction

__all__ = ["EventsStore", "Rule", "Target"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS rules (
    name TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    state TEXT NOT NULL,                 -- ENABLED | DISABLED
    description TEXT NOT NULL DEFAULT '',
    role_arn TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    managed_by TEXT,                     -- 'settings' for rules declared in the settings TOML
    created REAL NOT NULL,
    anchor REAL NOT NULL,                -- rate(...) periods count from here (creation or last enabling)
    next_fire REAL,
    last_fired REAL
);
CREATE TABLE IF NOT EXISTS targets (
    rule TEXT NOT NULL REFERENCES rules(name) ON DELETE CASCADE,
    id TEXT NOT NULL,
    arn TEXT NOT NULL,
    input TEXT,                          -- constant JSON text replacing the event, or NULL
    input_path TEXT,
    PRIMARY KEY (rule, id)
);
"""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    schedule: str
    state: str
    description: str
    role_arn: str | None
    tags: dict[str, str]
    managed_by: str | None
    created: float
    anchor: float
    next_fire: float | None
    last_fired: float | None


@dataclass(frozen=True, slots=True)
class Target:
    rule: str
    id: str
    arn: str
    input: str | None
    input_path: str | None


_RULE_COLS = "name, schedule, state, description, role_arn, tags, managed_by, created, anchor, next_fire, last_fired"


def _rule(row: tuple[Any, ...]) -> Rule:
    name, schedule, state, description, role, tags, managed, created, anchor, next_fire, last = row
    return Rule(name, schedule, state, description, role, json.loads(tags), managed, created, anchor, next_fire, last)


class EventsStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._tx() as cur:
            for statement in filter(str.strip, SCHEMA.split(";")):
                cur.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Cursor]:
        return write_transaction(self._conn, self._lock)

    def put_rule(self, name: str, schedule: str, state: str, description: str, role_arn: str | None,
                 tags: dict[str, str], next_fire: float | None, *, managed_by: str | None = None,
                 now: float | None = None) -> Rule:
        """Create or update a rule; a changed schedule or a (re-)enabled rule starts its periods now."""
        now = time.time() if now is None else now
        with self._tx() as cur:
            row = cur.execute(f"SELECT {_RULE_COLS} FROM rules WHERE name=?", (name,)).fetchone()
            if row is None:
                cur.execute(f"INSERT INTO rules({_RULE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (name, schedule, state, description, role_arn, json.dumps(tags), managed_by, now, now,
                             next_fire, None))
            else:
                old = _rule(row)
                merged = {**old.tags, **tags}
                cur.execute("UPDATE rules SET schedule=?, state=?, description=?, role_arn=?, tags=?, managed_by=?, "
                            "anchor=?, next_fire=? WHERE name=?",
                            (schedule, state, description, role_arn, json.dumps(merged), managed_by,
                             now, next_fire, name))
        rule = self.rule(name)
        assert rule is not None
        return rule

    def rule(self, name: str) -> Rule | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_RULE_COLS} FROM rules WHERE name=?", (name,)).fetchone()
        return None if row is None else _rule(row)

    def rules(self) -> list[Rule]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_RULE_COLS} FROM rules ORDER BY name").fetchall()
        return [_rule(r) for r in rows]

    def set_state(self, name: str, state: str, next_fire: float | None, now: float) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE rules SET state=?, next_fire=?, anchor=CASE WHEN ?='ENABLED' THEN ? ELSE anchor END "
                        "WHERE name=?", (state, next_fire, state, now, name))

    def fired(self, name: str, at: float, next_fire: float | None) -> None:
        with self._tx() as cur:
            cur.execute("UPDATE rules SET last_fired=?, next_fire=? WHERE name=?", (at, next_fire, name))

    def delete_rule(self, name: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM rules WHERE name=?", (name,))

    def targets(self, rule: str) -> list[Target]:
        with self._lock:
            rows = self._conn.execute("SELECT rule, id, arn, input, input_path FROM targets WHERE rule=? ORDER BY id",
                                      (rule,)).fetchall()
        return [Target(*r) for r in rows]

    def put_targets(self, rule: str, targets: list[Target]) -> None:
        with self._tx() as cur:
            cur.executemany("INSERT INTO targets(rule, id, arn, input, input_path) VALUES (?,?,?,?,?) "
                            "ON CONFLICT(rule, id) DO UPDATE SET arn=excluded.arn, input=excluded.input, "
                            "input_path=excluded.input_path",
                            [(rule, t.id, t.arn, t.input, t.input_path) for t in targets])

    def remove_targets(self, rule: str, ids: list[str]) -> list[str]:
        """Remove ``ids``; returns those that were not there."""
        missing = []
        with self._tx() as cur:
            for target_id in ids:
                cur.execute("DELETE FROM targets WHERE rule=? AND id=?", (rule, target_id))
                if not cur.rowcount:
                    missing.append(target_id)
        return missing
