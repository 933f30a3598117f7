"""Aliases and their weighted routing configuration (reference §4.2).

Rules: an alias points to ``$LATEST`` or an existing numbered version; ``AdditionalVersionWeights`` holds at
most one ``{"<version>": weight}`` with 0.0 <= weight <= 1.0, the version numeric, existing, different from
the primary one, and the primary version not ``$LATEST``. Every create/update gives a new RevisionId; a stale
RevisionId on UpdateAlias is 412.
"""

from __future__ import annotations

import builtins
import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from edge.invocation.errors import (
    InvalidParameterValueException,
    LambdaError,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    function_not_found,
    validation_error,
)
from edge.invocation.models import UNSET, function_arn
from edge.invocation.registry.db import AliasRecord, Database
from edge.invocation.registry.names import validate_alias_name
from edge.invocation.registry.rows import ALIAS_COLUMNS, alias_from_row, new_revision

__all__ = ["UNSET", "AliasOps"]

_NUMERIC = re.compile(r"^[0-9]+$")


class AliasOps:
    def __init__(self, db: Database, region: str, changed: Callable[[], None]) -> None:
        self.db = db
        self.region = region
        self._changed = changed

    def create(
        self, fn: str, name: str, version: str, description: str = "", weights: Mapping[str, Any] | None = None
    ) -> AliasRecord:
        validate_alias_name(name)
        with self.db.write() as cur:
            self._require_function(cur, fn)
            if self._row(cur, fn, name) is not None:
                raise ResourceConflictException(f"Alias already exists: {function_arn(fn, self.region, name)}")
            clean = self._validate(cur, fn, version, weights or {})
            alias = AliasRecord(
                function_name=fn,
                name=name,
                function_version=version,
                description=description or "",
                weights=clean,
                revision_id=new_revision(),
            )
            cur.execute(
                f"INSERT INTO aliases({ALIAS_COLUMNS}) VALUES (?,?,?,?,?,?)",
                (fn, name, version, alias.description, json.dumps(clean), alias.revision_id),
            )
        self._changed()
        return alias

    def get(self, fn: str, name: str) -> AliasRecord:
        with self.db.read() as cur:
            self._require_function(cur, fn)
            return self.get_in(cur, fn, name)

    def get_in(self, cur: sqlite3.Cursor, fn: str, name: str, not_found: LambdaError | None = None) -> AliasRecord:
        row = self._row(cur, fn, name)
        if row is None:
            raise not_found or ResourceNotFoundException(f"Alias not found: {function_arn(fn, self.region, name)}")
        return alias_from_row(row)

    def update(
        self, fn: str, name: str, *, version: str | None = None, description: str | None = None,
        weights: Mapping[str, Any] | None = UNSET, revision_id: str | None = None,
    ) -> AliasRecord:
        """Update the members given; ``weights={}`` removes routing, ``UNSET`` keeps it."""
        with self.db.write() as cur:
            self._require_function(cur, fn)
            current = self.get_in(cur, fn, name)
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailedException()
            new_version = version if version is not None else current.function_version
            new_weights = current.weights if weights is UNSET else (weights or {})
            clean = self._validate(cur, fn, new_version, new_weights)
            alias = AliasRecord(
                function_name=fn,
                name=name,
                function_version=new_version,
                description=current.description if description is None else description,
                weights=clean,
                revision_id=new_revision(),
            )
            cur.execute(
                "UPDATE aliases SET function_version=?, description=?, weights=?, revision_id=? "
                "WHERE function_name=? AND name=?",
                (alias.function_version, alias.description, json.dumps(clean), alias.revision_id, fn, name),
            )
        self._changed()
        return alias

    def delete(self, fn: str, name: str) -> None:
        with self.db.write() as cur:
            self._require_function(cur, fn)
            self.get_in(cur, fn, name)
            cur.execute("DELETE FROM aliases WHERE function_name=? AND name=?", (fn, name))
            cur.execute("DELETE FROM provisioned WHERE function_name=? AND qualifier=?", (fn, name))
        self._changed()

    def list(self, fn: str, function_version: str | None = None) -> list[AliasRecord]:
        with self.db.read() as cur:
            self._require_function(cur, fn)
            aliases = self.list_in(cur, fn)
        if function_version is not None:
            aliases = [a for a in aliases if a.function_version == function_version or function_version in a.weights]
        return aliases

    def list_in(self, cur: sqlite3.Cursor, fn: str) -> builtins.list[AliasRecord]:
        rows = cur.execute(f"SELECT {ALIAS_COLUMNS} FROM aliases WHERE function_name=? ORDER BY name", (fn,))
        return [alias_from_row(r) for r in rows.fetchall()]

    def referencing(self, cur: sqlite3.Cursor, fn: str, version: str) -> builtins.list[str]:
        """Names of aliases whose primary or additional version is ``version``."""
        return [a.name for a in self.list_in(cur, fn) if a.function_version == version or version in a.weights]

    # -- validation --------------------------------------------------------------------------------------

    def _validate(self, cur: sqlite3.Cursor, fn: str, version: str, weights: Mapping[str, Any]) -> dict[str, float]:
        if not (version == "$LATEST" or _NUMERIC.match(version or "")):
            raise validation_error(
                version, "functionVersion", r"Member must satisfy regular expression pattern: (\$LATEST|[0-9]+)"
            )
        self._require_version(cur, fn, version)
        if not isinstance(weights, Mapping):
            raise InvalidParameterValueException("AdditionalVersionWeights must be a map of version to weight")
        if len(weights) > 1:
            raise InvalidParameterValueException("Number of items in AdditionalVersionWeights cannot be greater than 1")
        clean: dict[str, float] = {}
        for key, weight in weights.items():
            clean[key] = self._check_weight(cur, fn, version, key, weight, weights)
        return clean

    def _check_weight(
        self, cur: sqlite3.Cursor, fn: str, primary: str, key: str, weight: Any, weights: Mapping[str, Any]
    ) -> float:
        member = "routingConfig.additionalVersionWeights"
        if not isinstance(key, str) or not _NUMERIC.match(key):
            raise validation_error(
                dict(weights), member,
                "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must "
                "have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]",
            )  # fmt: skip
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
            raise validation_error(
                dict(weights), member,
                "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must "
                "have value greater than or equal to 0.0, Member must not be null]",
            )  # fmt: skip
        if primary == "$LATEST":
            raise InvalidParameterValueException("$LATEST is not supported for an alias pointing to more than 1 version")
        if key == primary:
            raise InvalidParameterValueException(
                f"Invalid function version {key}. Function version {key} is already included in routing configuration."
            )
        self._require_version(cur, fn, key)
        return float(weight)

    def _require_version(self, cur: sqlite3.Cursor, fn: str, version: str) -> None:
        row = cur.execute("SELECT 1 FROM versions WHERE function_name=? AND version=?", (fn, version)).fetchone()
        if row is None:
            raise function_not_found(fn, self.region, version)

    def _require_function(self, cur: sqlite3.Cursor, fn: str) -> None:
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (fn,)).fetchone() is None:
            raise function_not_found(fn, self.region)

    @staticmethod
    def _row(cur: sqlite3.Cursor, fn: str, name: str) -> tuple[Any, ...] | None:
        return cur.execute(f"SELECT {ALIAS_COLUMNS} FROM aliases WHERE function_name=? AND name=?", (fn, name)).fetchone()
