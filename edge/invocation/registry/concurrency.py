"""Reserved concurrency, provisioned concurrency configs and account settings (reference §4.3, §4.4).

Accounting: a function *commits* its reserved concurrency if it has one, else the sum of its provisioned
concurrency. ``UnreservedConcurrentExecutions = account limit - sum(commitments)`` must stay >= 100; the
function's own previous commitment is not counted against a new value. Reserved >= the function's total
provisioned concurrency. Provisioned concurrency only on published versions or aliases, one config per version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from edge.invocation.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    function_not_found,
    validation_error,
)
from edge.invocation.registry.db import Database, ProvisionedRecord
from edge.invocation.registry.rows import Clock, provisioned_from_row, timestamp

__all__ = ["DEFAULT_ACCOUNT_LIMIT", "MIN_UNRESERVED", "AccountSummary", "ConcurrencyOps"]

DEFAULT_ACCOUNT_LIMIT = 1000
MIN_UNRESERVED = 100


@dataclass(frozen=True, slots=True)
class AccountSummary:
    concurrent_executions: int
    unreserved: int
    total_code_size: int
    function_count: int


class ConcurrencyOps:
    def __init__(self, db: Database, region: str, clock: Clock, changed: Callable[[], None]) -> None:
        self.db = db
        self.region = region
        self.clock = clock
        self._changed = changed

    # -- reserved ----------------------------------------------------------------------------------------

    def put_reserved(self, fn: str, count: int, account_limit: int) -> int:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise validation_error(count, "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
        with self.db.write() as cur:
            self._require_function(cur, fn)
            provisioned = self._provisioned_total(cur, fn)
            if count < provisioned:
                raise InvalidParameterValueException(
                    f" ReservedConcurrentExecutions  {count} should not be lower than function's total provisioned "
                    f"concurrency [{provisioned}]."
                )
            others = self._commitments(cur, exclude=fn)
            if account_limit - others - count < MIN_UNRESERVED:
                raise InvalidParameterValueException(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
                )
            cur.execute("UPDATE functions SET reserved_concurrency=? WHERE name=?", (count, fn))
        self._changed()
        return count

    def get_reserved(self, fn: str) -> int | None:
        with self.db.read() as cur:
            self._require_function(cur, fn)
            return cur.execute("SELECT reserved_concurrency FROM functions WHERE name=?", (fn,)).fetchone()[0]

    def delete_reserved(self, fn: str) -> None:
        with self.db.write() as cur:
            self._require_function(cur, fn)
            cur.execute("UPDATE functions SET reserved_concurrency=NULL WHERE name=?", (fn,))
        self._changed()

    def reserved_map(self) -> dict[str, int]:
        with self.db.read() as cur:
            rows = cur.execute("SELECT name, reserved_concurrency FROM functions WHERE reserved_concurrency IS NOT NULL")
            return dict(rows.fetchall())

    # -- provisioned -------------------------------------------------------------------------------------

    def put_provisioned(self, fn: str, qualifier: str, count: int, account_limit: int) -> ProvisionedRecord:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise validation_error(count, "provisionedConcurrentExecutions", "Member must have value greater than or equal to 1")
        with self.db.write() as cur:
            version = self.target_version(cur, fn, qualifier)
            self._check_single_config(cur, fn, qualifier, version)
            self._check_provisioned_budget(cur, fn, qualifier, count, account_limit)
            record = ProvisionedRecord(
                function_name=fn, qualifier=qualifier, requested=count, last_modified=timestamp(self.clock)
            )
            cur.execute(
                "INSERT OR REPLACE INTO provisioned(function_name, qualifier, requested, last_modified) VALUES (?,?,?,?)",
                (fn, qualifier, count, record.last_modified),
            )
        self._changed()
        return record

    def get_provisioned(self, fn: str, qualifier: str) -> ProvisionedRecord:
        with self.db.read() as cur:
            self.target_version(cur, fn, qualifier)
            row = cur.execute(
                "SELECT function_name, qualifier, requested, last_modified FROM provisioned "
                "WHERE function_name=? AND qualifier=?",
                (fn, qualifier),
            ).fetchone()
        if row is None:
            raise ProvisionedConcurrencyConfigNotFoundException("No Provisioned Concurrency Config found for this function")
        return provisioned_from_row(row)

    def delete_provisioned(self, fn: str, qualifier: str) -> None:
        self.get_provisioned(fn, qualifier)
        with self.db.write() as cur:
            cur.execute("DELETE FROM provisioned WHERE function_name=? AND qualifier=?", (fn, qualifier))
        self._changed()

    def list_provisioned(self, fn: str | None = None) -> list[tuple[ProvisionedRecord, str]]:
        """Every config with the version it currently targets (aliases resolved)."""
        with self.db.read() as cur:
            sql = "SELECT function_name, qualifier, requested, last_modified FROM provisioned"
            rows = cur.execute(sql + (" WHERE function_name=?" if fn else "") + " ORDER BY function_name, qualifier", (fn,) if fn else ()).fetchall()
            return [(provisioned_from_row(r), self.target_version(cur, r[0], r[1])) for r in rows]

    def target_version(self, cur: sqlite3.Cursor, fn: str, qualifier: str) -> str:
        """The numbered version a provisioned config applies to (404 if the qualifier does not exist)."""
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (fn,)).fetchone() is None:
            raise function_not_found(fn, self.region)
        if qualifier == "$LATEST":
            raise InvalidParameterValueException("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        if qualifier.isdigit():
            found = cur.execute("SELECT 1 FROM versions WHERE function_name=? AND version=?", (fn, qualifier)).fetchone()
            if found is None:
                raise function_not_found(fn, self.region, qualifier)
            return qualifier
        row = cur.execute("SELECT function_version FROM aliases WHERE function_name=? AND name=?", (fn, qualifier)).fetchone()
        if row is None:
            raise function_not_found(fn, self.region, qualifier)
        if row[0] == "$LATEST":
            raise InvalidParameterValueException("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
        return str(row[0])

    def _check_single_config(self, cur: sqlite3.Cursor, fn: str, qualifier: str, version: str) -> None:
        rows = cur.execute("SELECT qualifier FROM provisioned WHERE function_name=? AND qualifier!=?", (fn, qualifier))
        for (other,) in rows.fetchall():
            if self.target_version(cur, fn, other) == version:
                if qualifier.isdigit():
                    raise ResourceConflictException(
                        f"Version can't be used for Provisioned Concurrency configuration on an already Provisioned alias ({other})"
                    )
                raise ResourceConflictException(
                    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
                )

    def _check_provisioned_budget(self, cur: sqlite3.Cursor, fn: str, qualifier: str, count: int, account_limit: int) -> None:
        reserved = cur.execute("SELECT reserved_concurrency FROM functions WHERE name=?", (fn,)).fetchone()[0]
        own = self._provisioned_total(cur, fn, exclude_qualifier=qualifier) + count
        if reserved is not None:
            if own > reserved:
                raise InvalidParameterValueException(
                    "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
                )
            return
        unreserved = account_limit - self._commitments(cur, exclude=fn) - own
        if unreserved < MIN_UNRESERVED:
            raise InvalidParameterValueException(
                f"Specified ConcurrentExecutions for function is greater than account's unreserved concurrency "
                f"[{account_limit - self._commitments(cur, exclude=fn) - MIN_UNRESERVED}]."
            )

    # -- account -----------------------------------------------------------------------------------------

    def account_summary(self, account_limit: int) -> AccountSummary:
        with self.db.read() as cur:
            committed = self._commitments(cur)
            code = cur.execute("SELECT COALESCE(SUM(code_size), 0) FROM versions").fetchone()[0]
            layers = cur.execute("SELECT COALESCE(SUM(code_size), 0) FROM layer_versions").fetchone()[0]
            count = cur.execute("SELECT COUNT(*) FROM functions").fetchone()[0]
        return AccountSummary(
            concurrent_executions=account_limit,
            unreserved=account_limit - committed,
            total_code_size=int(code) + int(layers),
            function_count=int(count),
        )

    def _commitments(self, cur: sqlite3.Cursor, exclude: str | None = None) -> int:
        rows = cur.execute(
            "SELECT f.name, f.reserved_concurrency, COALESCE((SELECT SUM(requested) FROM provisioned p "
            "WHERE p.function_name = f.name), 0) FROM functions f"
        ).fetchall()
        return sum((reserved if reserved is not None else prov) for name, reserved, prov in rows if name != exclude)

    def _provisioned_total(self, cur: sqlite3.Cursor, fn: str, exclude_qualifier: str | None = None) -> int:
        row = cur.execute(
            "SELECT COALESCE(SUM(requested), 0) FROM provisioned WHERE function_name=? AND qualifier IS NOT ?",
            (fn, exclude_qualifier),
        ).fetchone()
        return int(row[0])

    def _require_function(self, cur: sqlite3.Cursor, fn: str) -> None:
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (fn,)).fetchone() is None:
            raise function_not_found(fn, self.region)
