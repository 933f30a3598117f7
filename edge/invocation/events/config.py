"""FunctionEventInvokeConfig operations (Put/Update/Get/Delete/List), stored in ``event_invoke_configs``.

One config per function qualifier (``$LATEST``, a version or an alias; an unqualified request means
``$LATEST``), as AWS. Validation: MaximumRetryAttempts 0..2, MaximumEventAgeInSeconds 60..21600, destinations
are lambda ARNs of existing functions (not the function itself) or SQS-style ARNs of existing local queues.
These are registry changes (the registry's change feed moves); all methods block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from edge.invocation.errors import (
    InvalidParameterValueException,
    ResourceNotFoundException,
    function_not_found,
    validation_error,
)
from edge.invocation.events.model import EventInvokeConfig, parse_destination
from edge.invocation.models import function_arn
from edge.invocation.registry.db import Database

__all__ = ["EventInvokeConfigOps", "check_destination"]

_COLS = "function_name, qualifier, max_retry, max_age, on_success, on_failure, last_modified"


def _row(r: tuple[Any, ...]) -> EventInvokeConfig:
    return EventInvokeConfig(*r)


def check_destination(
    arn: Any, *, region: str, function_exists: Callable[[str], bool], queue_exists: Callable[[str], bool],
    own_name: str | None, member: str,
) -> str:
    """Validate one destination ARN (format, supported kind, existing target, not the function itself)."""
    dest = parse_destination(arn, region, member)
    if dest.kind == "lambda":
        if own_name is not None and dest.name == own_name:
            raise InvalidParameterValueException(
                f"The {member} {arn} is the function itself: a function cannot be its own destination "
                "(it would invoke itself in a loop)."
            )
        if not function_exists(dest.name):
            raise InvalidParameterValueException(f"The {member} {arn} does not exist (no such function).")
    elif not queue_exists(dest.name):
        raise InvalidParameterValueException(
            f"The {member} {arn} does not exist: create the local queue first (edgelab queue create {dest.name})."
        )
    return arn


class EventInvokeConfigOps:
    def __init__(self, db: Database, region: str, clock: Callable[[], float], changed: Callable[[], None],
                 queue_exists: Callable[[str], bool]) -> None:
        self.db = db
        self.region = region
        self.clock = clock
        self._changed = changed
        self._queue_exists = queue_exists

    # -- validation --------------------------------------------------------------------------------------

    def _qualifier(self, cur: sqlite3.Cursor, name: str, qualifier: str | None) -> str:
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (name,)).fetchone() is None:
            raise function_not_found(name, self.region, qualifier)
        q = qualifier or "$LATEST"
        found = cur.execute("SELECT 1 FROM versions WHERE function_name=? AND version=?", (name, q)).fetchone() or \
            cur.execute("SELECT 1 FROM aliases WHERE function_name=? AND name=?", (name, q)).fetchone()
        if found is None:
            raise function_not_found(name, self.region, q)
        return q

    def _fields(self, cur: sqlite3.Cursor, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if params.get("MaximumRetryAttempts") is not None:
            out["max_retry"] = _int_range(params["MaximumRetryAttempts"], "maximumRetryAttempts", 0, 2)
        if params.get("MaximumEventAgeInSeconds") is not None:
            out["max_age"] = _int_range(params["MaximumEventAgeInSeconds"], "maximumEventAgeInSeconds", 60, 21600)
        if params.get("DestinationConfig") is not None:
            dc = params["DestinationConfig"]
            if not isinstance(dc, Mapping):
                raise InvalidParameterValueException("DestinationConfig must be an object")
            for member, key in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
                target = dc.get(member) or {}
                if not isinstance(target, Mapping):
                    raise InvalidParameterValueException(f"DestinationConfig.{member} must be an object")
                arn = target.get("Destination")
                out[key] = None if not arn else check_destination(
                    arn, region=self.region, own_name=name, member=f"{member} destination",
                    function_exists=lambda n: cur.execute("SELECT 1 FROM functions WHERE name=?", (n,)).fetchone()
                    is not None,
                    queue_exists=self._queue_exists,
                )
        return out

    # -- operations --------------------------------------------------------------------------------------

    def put(self, name: str, qualifier: str | None, params: Mapping[str, Any], *, merge: bool) -> EventInvokeConfig:
        """PutFunctionEventInvokeConfig (``merge=False``: overwrite) or Update... (``merge=True``: partial)."""
        with self.db.write() as cur:
            q = self._qualifier(cur, name, qualifier)
            fields = self._fields(cur, name, params)
            current = self._get(cur, name, q)
            if merge and current is None:
                raise self._missing(name, q)
            base: dict[str, Any] = {"max_retry": None, "max_age": None, "on_success": None, "on_failure": None}
            if merge and current is not None:
                base = {k: getattr(current, k) for k in base}
            base.update(fields)
            cfg = EventInvokeConfig(name, q, last_modified=round(self.clock(), 3), **base)
            cur.execute(
                f"INSERT OR REPLACE INTO event_invoke_configs({_COLS}) VALUES (?,?,?,?,?,?,?)",
                (cfg.function_name, cfg.qualifier, cfg.max_retry, cfg.max_age, cfg.on_success, cfg.on_failure,
                 cfg.last_modified),
            )
        self._changed()
        return cfg

    def get(self, name: str, qualifier: str | None) -> EventInvokeConfig:
        with self.db.read() as cur:
            q = self._qualifier(cur, name, qualifier)
            found = self._get(cur, name, q)
        if found is None:
            raise self._missing(name, q)
        return found

    def delete(self, name: str, qualifier: str | None) -> None:
        with self.db.write() as cur:
            q = self._qualifier(cur, name, qualifier)
            cur.execute("DELETE FROM event_invoke_configs WHERE function_name=? AND qualifier=?", (name, q))
            if cur.rowcount == 0:
                raise self._missing(name, q)
        self._changed()

    def list(self, name: str) -> list[EventInvokeConfig]:
        with self.db.read() as cur:
            self._qualifier(cur, name, None)
            rows = cur.execute(f"SELECT {_COLS} FROM event_invoke_configs WHERE function_name=? ORDER BY qualifier",
                               (name,)).fetchall()
        return [_row(r) for r in rows]

    def all(self) -> dict[tuple[str, str], EventInvokeConfig]:
        """Every config by (function, qualifier): the deliverer's cache, reloaded when the registry changes."""
        with self.db.read() as cur:
            rows = cur.execute(f"SELECT {_COLS} FROM event_invoke_configs").fetchall()
        return {(r[0], r[1]): _row(r) for r in rows}

    def _get(self, cur: sqlite3.Cursor, name: str, q: str) -> EventInvokeConfig | None:
        row = cur.execute(f"SELECT {_COLS} FROM event_invoke_configs WHERE function_name=? AND qualifier=?",
                          (name, q)).fetchone()
        return None if row is None else _row(row)

    def _missing(self, name: str, q: str) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"The function {function_arn(name, self.region, q)} doesn't have an EventInvokeConfig"
        )


def _int_range(value: Any, member: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{member} must be an integer")
    if value < low:
        raise validation_error(value, member, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise validation_error(value, member, f"Member must have value less than or equal to {high}")
    return value
