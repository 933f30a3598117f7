"""The function registry: functions, versions and aliases in SQLite, plus fast cached resolution.

Semantics (reference §4.1, §4.2):
- ``$LATEST`` is the only mutable version. Every mutation gives a new ``RevisionId``; a stale ``RevisionId`` on
  UpdateFunctionCode / UpdateFunctionConfiguration / PublishVersion / UpdateAlias is 412.
- PublishVersion snapshots ``$LATEST``; when code and configuration are the same as in the last published
  version it returns that version (same Version and RevisionId). "The same" is judged by content (a hash of
  configuration, code and layers: ``config_revision``), so re-deploying identical code publishes nothing new.
  Numbers come from ``functions.next_version``: never reused, even after deletes.
- A version referenced by an alias (primary or routing) cannot be deleted; ``$LATEST`` cannot be deleted alone.

Layers and concurrency live in :mod:`.layers` and :mod:`.concurrency` (exposed as
``registry.layers`` and ``registry.concurrency``); cached resolution for invokes in :mod:`.cache`.
All methods are synchronous and may block on SQLite: async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from edge.invocation.errors import (
    InvalidParameterValueException,
    LambdaError,
    PreconditionFailedException,
    ResourceConflictException,
    function_not_found,
)
from edge.invocation.models import DEFAULT_REGION, FunctionSpec, function_arn
from edge.invocation.registry.aliases import AliasOps
from edge.invocation.registry.cache import FunctionSnapshot, ResolveCache
from edge.invocation.registry.codestore import CodeStore
from edge.invocation.registry.concurrency import ConcurrencyOps
from edge.invocation.registry.config import FunctionConfig
from edge.invocation.registry.db import CodeRef, Database, VersionRecord
from edge.invocation.registry.layers import LayerOps
from edge.invocation.registry.names import FunctionRef, parse_function_name
from edge.invocation.registry.packages import PackageInfo, PackageLimits
from edge.invocation.registry.rows import (
    VERSION_COLUMNS,
    Clock,
    content_revision,
    new_revision,
    timestamp,
    version_from_row,
    version_sort_key,
    version_values,
)

__all__ = ["Registry"]

log = logging.getLogger("edgelab.invocation.registry")


class Registry:
    """Registry over ``<state_dir>/registry.db`` and the code store ``<state_dir>/code``.

    ``home_region`` is the region functions live in (their ARNs); executing regions may differ (POPs).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        home_region: str = DEFAULT_REGION,
        limits: PackageLimits = PackageLimits(),
        clock: Clock = time.time,
        refresh_interval_s: float = 0.1,
    ) -> None:
        self.state_dir = state_dir
        self.region = home_region
        self.clock = clock
        self.db = Database(state_dir / "registry.db")
        self.code = CodeStore(state_dir / "code", limits)
        self.layers = LayerOps(self.db, self.code, home_region, clock, self.notify_changed)
        self.aliases = AliasOps(self.db, home_region, self.notify_changed)
        self.concurrency = ConcurrencyOps(self.db, home_region, clock, self.notify_changed)
        self.cache = ResolveCache(self.db, self._load_snapshot, refresh_interval_s=refresh_interval_s)
        # pure function of its arguments; failures raise and are not cached
        self._parse = functools.lru_cache(maxsize=4096)(
            lambda name, qualifier: parse_function_name(name, qualifier, home_region)
        )

    def close(self) -> None:
        self.db.close()

    # -- names -------------------------------------------------------------------------------------------

    def parse(self, function_name: str, qualifier: str | None = None) -> FunctionRef:
        """Parse a FunctionName (+ Qualifier); memoised per registry (invokes repeat the same few names)."""
        return self._parse(function_name, qualifier)

    def notify_changed(self) -> None:
        """Our own commits do not move PRAGMA data_version for our connection: drop caches explicitly."""
        self.cache.invalidate()

    # -- create / update ---------------------------------------------------------------------------------

    def store_code(self, zip_bytes: bytes) -> PackageInfo:
        """Validate and store a package (content-addressed); blocking."""
        return self.code.put(zip_bytes)

    def create_function(
        self, name: str, config: FunctionConfig, package: PackageInfo, *, publish: bool = False, tags: dict[str, str] | None = None
    ) -> VersionRecord:
        """Create ``name`` with ``$LATEST`` = config + package; returns $LATEST (or version 1 if publish)."""
        with self.db.write() as cur:
            if cur.execute("SELECT 1 FROM functions WHERE name=?", (name,)).fetchone():
                raise ResourceConflictException(f"Function already exist: {name}")
            attachments = self.layers.attachments(cur, config.layers, package)
            now = timestamp(self.clock)
            cur.execute("INSERT INTO functions(name, created_at, tags) VALUES (?,?,?)", (name, now, json.dumps(tags or {})))
            latest = VersionRecord(
                function_name=name,
                version="$LATEST",
                config=config,
                code=CodeRef.of(package),
                layers=attachments,
                revision_id=new_revision(),
                config_revision="",
                last_modified=now,
            )
            latest = replace(latest, config_revision=content_revision(latest))
            cur.execute(f"INSERT INTO versions({VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", version_values(latest))
            result = self._publish(cur, name, None) if publish else latest
        self.notify_changed()
        return result

    def update_function_code(
        self, name: str, package: PackageInfo, *, revision_id: str | None = None, publish: bool = False,
        architectures: tuple[str, ...] | None = None,
    ) -> VersionRecord:
        def mutate(rec: VersionRecord, cur: sqlite3.Cursor) -> VersionRecord:
            cfg = replace(rec.config, architectures=architectures) if architectures else rec.config
            attachments = self.layers.attachments(cur, cfg.layers, package, existing=rec.layers)
            return replace(rec, config=cfg, code=CodeRef.of(package), layers=attachments)

        return self._update_latest(name, revision_id, mutate, publish=publish)

    def update_function_configuration(
        self, name: str, apply: Callable[[FunctionConfig], FunctionConfig], *, revision_id: str | None = None
    ) -> VersionRecord:
        """``apply`` turns the current config into the new one (validating it); layers are checked here."""

        def mutate(rec: VersionRecord, cur: sqlite3.Cursor) -> VersionRecord:
            cfg = apply(rec.config)
            package = PackageInfo(rec.code.sha256_hex, rec.code.code_sha256, rec.code.size, rec.code.unzipped_size)
            attachments = self.layers.attachments(cur, cfg.layers, package, existing=rec.layers)
            return replace(rec, config=cfg, layers=attachments)

        return self._update_latest(name, revision_id, mutate, publish=False)

    def _update_latest(
        self, name: str, revision_id: str | None, mutate: Callable[[VersionRecord, sqlite3.Cursor], VersionRecord], *, publish: bool
    ) -> VersionRecord:
        with self.db.write() as cur:
            current = self._version(cur, name, "$LATEST")
            if revision_id is not None and revision_id != current.revision_id:
                raise PreconditionFailedException()
            updated = replace(mutate(current, cur), revision_id=new_revision(), last_modified=timestamp(self.clock))
            updated = replace(updated, config_revision=content_revision(updated))
            cur.execute(
                "UPDATE versions SET config=?, code_hex=?, code_sha256=?, code_size=?, unzipped_size=?, layer_code=?, "
                "revision_id=?, config_revision=?, last_modified=? WHERE function_name=? AND version='$LATEST'",
                (*version_values(updated)[2:], name),
            )
            result = self._publish(cur, name, None) if publish else updated
        self.notify_changed()
        return result

    # -- versions ----------------------------------------------------------------------------------------

    def publish_version(
        self, name: str, *, code_sha256: str | None = None, description: str | None = None, revision_id: str | None = None
    ) -> VersionRecord:
        with self.db.write() as cur:
            latest = self._version(cur, name, "$LATEST")
            if revision_id is not None and revision_id != latest.revision_id:
                raise PreconditionFailedException()
            if code_sha256 and code_sha256 != latest.code.code_sha256:
                raise InvalidParameterValueException(
                    f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code.code_sha256}). Please try again with the CodeSHA256 in $LATEST."
                )
            result = self._publish(cur, name, description)
        self.notify_changed()
        return result

    def _publish(self, cur: sqlite3.Cursor, name: str, description: str | None) -> VersionRecord:
        latest = self._version(cur, name, "$LATEST")
        last = cur.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE function_name=? AND version!='$LATEST' "
            "ORDER BY CAST(version AS INTEGER) DESC LIMIT 1",
            (name,),
        ).fetchone()
        if last is not None and version_from_row(last).config_revision == latest.config_revision:
            return version_from_row(last)  # nothing changed since the last publish: AWS returns that version
        number = cur.execute("SELECT next_version FROM functions WHERE name=?", (name,)).fetchone()[0]
        cur.execute("UPDATE functions SET next_version=? WHERE name=?", (number + 1, name))
        config = replace(latest.config, description=description) if description is not None else latest.config
        now = timestamp(self.clock)
        version = replace(latest, version=str(number), config=config, revision_id=new_revision(), last_modified=now)
        cur.execute(f"INSERT INTO versions({VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", version_values(version))
        # publishing is a mutation of $LATEST too (new RevisionId), but not of its code/config revision
        cur.execute("UPDATE versions SET revision_id=? WHERE function_name=? AND version='$LATEST'", (new_revision(), name))
        return version

    def list_versions(self, name: str) -> list[VersionRecord]:
        with self.db.read() as cur:
            self._require_function(cur, name)
            rows = cur.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE function_name=?", (name,)).fetchall()
        return sorted((version_from_row(r) for r in rows), key=lambda r: version_sort_key(r.version))

    # -- reads -------------------------------------------------------------------------------------------

    def get_version(self, name: str, qualifier: str | None = None) -> tuple[VersionRecord, str | None]:
        """Resolve ``qualifier`` (None, $LATEST, number or alias) -> (record, alias name or None)."""
        with self.db.read() as cur:
            self._require_function(cur, name, qualifier)
            q = qualifier or "$LATEST"
            if q == "$LATEST" or q.isdigit():
                return self._version(cur, name, q, qualifier), None
            alias = self.aliases.get_in(cur, name, q, not_found=function_not_found(name, self.region, q))
            return self._version(cur, name, alias.function_version), q

    def function_extras(self, name: str) -> tuple[dict[str, str], int | None]:
        """(tags, reserved concurrency) of a function, for GetFunction."""
        with self.db.read() as cur:
            row = cur.execute("SELECT tags, reserved_concurrency FROM functions WHERE name=?", (name,)).fetchone()
        if row is None:
            raise function_not_found(name, self.region)
        return json.loads(row[0]), row[1]

    def list_functions(self, *, all_versions: bool = False) -> list[VersionRecord]:
        """$LATEST of every function by name (or every version when ``all_versions``)."""
        where = "" if all_versions else "WHERE version='$LATEST'"
        with self.db.read() as cur:
            rows = cur.execute(f"SELECT {VERSION_COLUMNS} FROM versions {where}").fetchall()
        records = [version_from_row(r) for r in rows]
        return sorted(records, key=lambda r: (r.function_name, version_sort_key(r.version)))

    # -- delete ------------------------------------------------------------------------------------------

    def delete_function(self, name: str, qualifier: str | None = None) -> None:
        with self.db.write() as cur:
            self._require_function(cur, name)
            if qualifier is None:
                cur.execute("DELETE FROM functions WHERE name=?", (name,))
            else:
                self._delete_version(cur, name, qualifier)
        self.notify_changed()

    def _delete_version(self, cur: sqlite3.Cursor, name: str, qualifier: str) -> None:
        if qualifier == "$LATEST":
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")
        if not qualifier.isdigit():
            raise InvalidParameterValueException(
                "Deletion of aliases is not supported via DeleteFunction; use DeleteAlias instead."
            )
        self._version(cur, name, qualifier, qualifier)
        users = self.aliases.referencing(cur, name, qualifier)
        if users:
            raise ResourceConflictException(
                f"Unable to delete version because the following aliases reference it: [{', '.join(users)}]"
            )
        cur.execute("DELETE FROM versions WHERE function_name=? AND version=?", (name, qualifier))
        cur.execute("DELETE FROM provisioned WHERE function_name=? AND qualifier=?", (name, qualifier))

    # -- helpers -----------------------------------------------------------------------------------------

    def _require_function(self, cur: sqlite3.Cursor, name: str, qualifier: str | None = None) -> None:
        if cur.execute("SELECT 1 FROM functions WHERE name=?", (name,)).fetchone() is None:
            raise function_not_found(name, self.region, qualifier)

    def _version(self, cur: sqlite3.Cursor, name: str, version: str, shown: str | None = None) -> VersionRecord:
        row = cur.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE function_name=? AND version=?", (name, version)
        ).fetchone()
        if row is None:
            raise function_not_found(name, self.region, shown)
        return version_from_row(row)

    # -- resolution (hot path) ---------------------------------------------------------------------------

    def resolve(self, function_name: str, qualifier: str | None, rng: random.Random) -> tuple[FunctionSpec, str]:
        """Name/ARN (+qualifier) -> (spec to run, executed version). May load from SQLite on a cache miss."""
        ref = self.parse(function_name, qualifier)
        return self.cache.resolve(ref, rng, self.region)

    def resolve_cached(
        self, function_name: str, qualifier: str | None, rng: random.Random
    ) -> tuple[FunctionSpec, str] | None:
        """Like :meth:`resolve` but never touches SQLite: None when the function is not cached yet."""
        ref = self.parse(function_name, qualifier)
        return self.cache.resolve_cached(ref, rng, self.region)

    def snapshot(self, name: str) -> FunctionSnapshot | None:
        """Everything cached about one function (specs of all versions, aliases, reserved concurrency)."""
        return self.cache.snapshot(name)

    def _load_snapshot(self, cur: sqlite3.Cursor, name: str) -> FunctionSnapshot | None:
        row = cur.execute("SELECT reserved_concurrency FROM functions WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        versions = [
            version_from_row(r)
            for r in cur.execute(f"SELECT {VERSION_COLUMNS} FROM versions WHERE function_name=?", (name,)).fetchall()
        ]
        aliases = self.aliases.list_in(cur, name)
        self._ensure_code(versions)
        return FunctionSnapshot(
            name=name,
            specs={v.version: self.spec_of(v) for v in versions},
            configs={v.version: v.config for v in versions},
            aliases={a.name: (a.function_version, dict(a.weights)) for a in aliases},
            reserved=row[0],
        )

    def _ensure_code(self, versions: list[VersionRecord]) -> None:
        """Re-extract packages whose directory vanished (e.g. a cleaned state dir); a missing zip is logged and
        left for the executor to report as the invocation's failure."""
        for digest in {v.code.sha256_hex for v in versions} | {a.sha256_hex for v in versions for a in v.layers}:
            if not self.code.code_dir(digest).is_dir():
                try:
                    self.code.ensure_extracted(digest)
                except LambdaError as exc:
                    log.error("code package %s cannot be restored: %s", digest, exc.message)

    def spec_of(self, rec: VersionRecord) -> FunctionSpec:
        """The immutable FunctionSpec for one version row (no I/O)."""
        cfg = rec.config
        # $LATEST keys pools by its code/config revision (publishing does not make it cold);
        # a published version's RevisionId never changes.
        revision = rec.config_revision if rec.version == "$LATEST" else rec.revision_id
        return FunctionSpec(
            function_name=rec.function_name,
            version=rec.version,
            revision=revision,
            runtime=cfg.runtime,
            handler=cfg.handler,
            code_dir=self.code.code_dir(rec.code.sha256_hex),
            layer_dirs=tuple(self.code.code_dir(a.sha256_hex) for a in rec.layers),
            memory_mb=cfg.memory_size,
            timeout_s=float(cfg.timeout),
            ephemeral_storage_mb=cfg.ephemeral_storage,
            environment=tuple(sorted((cfg.environment or {}).items())),
            region=self.region,
        )

    def arn(self, name: str, qualifier: str | None = None) -> str:
        return function_arn(name, self.region, qualifier)
