"""In-memory resolution cache with a cross-process change feed.

Each process caches one :class:`FunctionSnapshot` per function name (specs of every version, aliases with
their weights, reserved concurrency); unknown names are cached as ``None`` too so a 404 flood costs no
queries. The whole cache is dropped when

- this process commits a change (the registry calls :meth:`ResolveCache.invalidate`), or
- ``PRAGMA data_version`` moved, i.e. another process committed. :meth:`ResolveCache.poll` reads it; it is
  called by the service's poll task every ~100 ms, or lazily by :meth:`ResolveCache.resolve` at most once per
  ``refresh_interval_s``. Either way changes made elsewhere are visible in well under a second.

A generation counter keeps a snapshot loaded concurrently with an invalidation from being stored.
"""

from __future__ import annotations

import enum
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edge.invocation.errors import function_not_found
from edge.invocation.models import FunctionSpec
from edge.invocation.registry.config import FunctionConfig
from edge.invocation.registry.db import Database
from edge.invocation.registry.names import FunctionRef

__all__ = ["FunctionSnapshot", "ResolveCache", "pick_version"]

Loader = Callable[[sqlite3.Cursor, str], "FunctionSnapshot | None"]


class _Missing(enum.Enum):
    """Not cached (a cached None says the function does not exist)."""

    MISSING = "missing"


_MISSING: Final = _Missing.MISSING


@dataclass(frozen=True, slots=True)
class FunctionSnapshot:
    name: str
    specs: dict[str, FunctionSpec]  # "$LATEST", "1", ... -> spec
    configs: dict[str, FunctionConfig]
    aliases: dict[str, tuple[str, dict[str, float]]]  # alias -> (primary version, {extra version: weight})
    reserved: int | None


def pick_version(snap: FunctionSnapshot, qualifier: str | None, rng: random.Random, region: str) -> str:
    """The version to execute for ``qualifier``: one weighted draw per call for routed aliases."""
    q = qualifier or "$LATEST"
    if q in snap.specs:
        return q
    alias = snap.aliases.get(q)
    if alias is None:
        raise function_not_found(snap.name, region, q)
    primary, weights = alias
    for extra, weight in weights.items():  # at most one entry (validated on write)
        if rng.random() < weight:
            return extra
    return primary


class ResolveCache:
    def __init__(
        self,
        db: Database,
        loader: Loader,
        *,
        refresh_interval_s: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._loader = loader
        self._interval = refresh_interval_s
        self._monotonic = monotonic
        self._snapshots: dict[str, FunctionSnapshot | None] = {}
        # Increments on every invalidation; lets owners detect "something changed" (a plain attribute: read on
        # every Lambda@Edge invocation). Only this class writes it.
        self.generation = 0
        self._lock = threading.Lock()
        self._data_version = db.data_version()
        self._last_poll = monotonic()

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._snapshots = {}

    def poll(self) -> bool:
        """Check the change feed (blocking, cheap); drop the cache if another process committed."""
        self._last_poll = self._monotonic()
        version = self._db.data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        self.invalidate()
        return True

    def cached(self, name: str) -> FunctionSnapshot | _Missing | None:
        """The cached snapshot, None for a cached "does not exist", or ``_MISSING``. Never blocks."""
        return self._snapshots.get(name, _MISSING)

    def snapshot(self, name: str) -> FunctionSnapshot | None:
        """Cached snapshot, loading it from SQLite on a miss (blocking)."""
        if self._monotonic() - self._last_poll >= self._interval:
            self.poll()
        found = self._snapshots.get(name, _MISSING)
        if found is not _MISSING:
            return found
        generation = self.generation
        with self._db.read() as cur:
            snap = self._loader(cur, name)
        with self._lock:
            if generation == self.generation:
                self._snapshots[name] = snap
        return snap

    def resolve(self, ref: FunctionRef, rng: random.Random, region: str) -> tuple[FunctionSpec, str]:
        snap = self.snapshot(ref.name)
        return self._pick(snap, ref, rng, region)

    def resolve_cached(self, ref: FunctionRef, rng: random.Random, region: str) -> tuple[FunctionSpec, str] | None:
        found = self.cached(ref.name)
        if found is _MISSING:
            return None
        return self._pick(found, ref, rng, region)

    @staticmethod
    def _pick(
        snap: FunctionSnapshot | None, ref: FunctionRef, rng: random.Random, region: str
    ) -> tuple[FunctionSpec, str]:
        if snap is None:
            raise function_not_found(ref.name, region, ref.qualifier)
        version = pick_version(snap, ref.qualifier, rng, region)
        return snap.specs[version], version
