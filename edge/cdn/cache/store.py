"""The per-POP cache store: byte-bounded LRU (cachetools) of :class:`CacheEntry` variants.

* One instance per POP; single event loop, no locks (all methods are synchronous and O(1) except purge).
* Accounting: each variant costs ``entry.size + ENTRY_OVERHEAD`` bytes; the total never exceeds ``max_bytes``
  (cachetools evicts least-recently-used variants before inserting).
* Entries above ``max_object_bytes`` are refused (the POP streams them instead).
* Variants: under one primary key, each stored response carries its Vary field names and the request's
  values for them (RFC 9111 §4.1). A new response whose Vary names differ replaces all older variants.
* Expired entries are kept (for revalidation and stale-if-error) until evicted, deleted or purged.
* ``purge(path)`` uses CloudFront invalidation syntax (contract §5.7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cachetools import Cache, LRUCache

from edge.cdn.cache.keys import vary_values
from edge.cdn.cache.policy import CacheEntry

__all__ = [
    "ENTRY_OVERHEAD",
    "CacheEntry",
    "CacheStats",
    "CacheStore",
    "VariantKey",
    "invalidation_matches",
    "validate_invalidation_path",
]

ENTRY_OVERHEAD = 256  # bytes charged per variant for the Python objects around it


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int
    rejected_too_large: int


VariantKey = tuple[str, tuple[str, ...]]  # (primary key, the request's values of the Vary names)


class _LRU(LRUCache[VariantKey, CacheEntry]):
    """LRUCache that reports evictions (so the variant index stays in sync)."""

    def __init__(self, maxsize: int, on_evict: Callable[[VariantKey], None]) -> None:
        super().__init__(maxsize, getsizeof=lambda e: e.size + ENTRY_OVERHEAD)
        self._on_evict = on_evict

    def popitem(self) -> tuple[VariantKey, CacheEntry]:
        key, value = super().popitem()
        self._on_evict(key)
        return key, value


def validate_invalidation_path(path: str) -> str | None:
    """None if ``path`` is a valid CloudFront invalidation path, else the reason (contract §5.7)."""
    if not path.startswith("/"):
        return "must begin with /"
    if "*" in path[:-1]:
        return "* is only allowed as the last character"
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in path):
        return "non-ASCII and unsafe characters must be URL-encoded"
    return None


def invalidation_matches(path: str, uri: str, key_querystring: str) -> bool:
    """Does invalidation ``path`` cover an entry for ``uri`` (+ the query string in its key)?

    Case-sensitive. ``/a*`` is a prefix match over ``uri?query``; an exact path matches the entry cached
    without a query string in its key, or ``/a?x=1`` that exact query variant.
    """
    target = f"{uri}?{key_querystring}" if key_querystring else uri
    if path.endswith("*"):
        return target.startswith(path[:-1])
    return target == path


class CacheStore:
    """In-memory byte-bounded cache for one POP."""

    def __init__(self, max_bytes: int, max_object_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_object_bytes = max_object_bytes
        self._lru = _LRU(max_bytes, self._forget)
        # primary key -> (vary names, set of variant values); variant key in _lru = (primary, vary values)
        self._index: dict[str, tuple[tuple[str, ...], set[tuple[str, ...]]]] = {}
        self._hits = self._misses = self._evictions = self._rejected = 0

    def _forget(self, variant_key: VariantKey) -> None:
        self._evictions += 1
        self._unindex(variant_key)

    def _unindex(self, variant_key: VariantKey) -> None:
        primary, values = variant_key
        slot = self._index.get(primary)
        if slot is not None:
            slot[1].discard(values)
            if not slot[1]:
                del self._index[primary]

    def get(self, primary: str, request_headers: Sequence[tuple[str, str]]) -> CacheEntry | None:
        """The variant of ``primary`` matching the request's Vary values (marks it recently used), or None; counted
        as a hit or a miss."""
        entry = self.peek(primary, request_headers)
        if entry is None:
            self._misses += 1
        else:
            self._hits += 1
        return entry

    def peek(self, primary: str, request_headers: Sequence[tuple[str, str]]) -> CacheEntry | None:
        """:meth:`get` without counting a hit or a miss (the entry is marked recently used): ``count_hit`` when
        the caller serves it."""
        slot = self._index.get(primary)  # (variant_key then peek_variant, written out: this is every hit's lookup)
        if slot is None:
            return None
        try:  # (not .get(): cachetools' get is a membership test, then the same lookup; on every hit)
            return self._lru[(primary, vary_values(slot[0], request_headers))]
        except KeyError:
            return None

    def variant_key(self, primary: str, request_headers: Sequence[tuple[str, str]]) -> VariantKey | None:
        """Where :meth:`peek` looks for the request's variant of ``primary`` now (None: nothing stored under it):
        a key for :meth:`peek_variant`, whose entry is the one :meth:`peek` would return while the same one is
        stored there."""
        slot = self._index.get(primary)
        return None if slot is None else (primary, vary_values(slot[0], request_headers))

    def peek_variant(self, variant: VariantKey) -> CacheEntry | None:
        """The entry stored under ``variant`` (:meth:`variant_key`), marked recently used as :meth:`peek` marks it,
        or None."""
        try:
            return self._lru[variant]
        except KeyError:
            return None

    def count_hit(self) -> None:
        self._hits += 1

    def put(self, primary: str, entry: CacheEntry) -> bool:
        """Store (or replace) a variant. False when the entry is too large to be held in memory."""
        cost = entry.size + ENTRY_OVERHEAD
        if len(entry.body) > self.max_object_bytes or cost > self.max_bytes:
            self._rejected += 1
            return False
        slot = self._index.get(primary)
        if slot is not None and slot[0] != entry.vary_names:
            self.delete(primary)  # Vary changed: older variants can no longer be selected reliably
            slot = None
        variant_key = (primary, entry.vary_values)
        self._lru.pop(variant_key, None)
        self._lru[variant_key] = entry  # may evict others (and, via _forget, unindex them)
        slot = self._index.setdefault(primary, (entry.vary_names, set()))
        slot[1].add(entry.vary_values)
        return True

    def delete(self, primary: str) -> int:
        """Remove every variant of ``primary``; returns how many were removed."""
        slot = self._index.pop(primary, None)
        if slot is None:
            return 0
        for values in slot[1]:
            self._lru.pop((primary, values), None)
        return len(slot[1])

    def delete_variant(self, primary: str, entry: CacheEntry) -> None:
        """Remove one variant (e.g. after a revalidation said it may no longer be stored)."""
        variant_key = (primary, entry.vary_values)
        if self._lru.pop(variant_key, None) is not None:
            self._unindex(variant_key)

    def purge(self, path: str) -> int:
        """Invalidate every variant covered by CloudFront invalidation ``path``; returns the count removed.

        Raises ValueError for an invalid path (see :func:`validate_invalidation_path`).
        """
        problem = validate_invalidation_path(path)
        if problem:
            raise ValueError(f"invalid invalidation path {path!r}: {problem}")
        lru = self._lru  # read with Cache's lookup: LRUCache's (and so items()) would mark every entry used
        doomed = [k for k in lru if invalidation_matches(path, (e := Cache.__getitem__(lru, k)).uri, e.key_querystring)]
        for k in doomed:
            self._lru.pop(k, None)
            self._unindex(k)
        return len(doomed)

    def clear(self) -> None:
        self._lru.clear()
        self._index.clear()

    @property
    def currsize(self) -> int:
        """Accounted bytes (always <= max_bytes)."""
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._lru)

    def stats(self) -> CacheStats:
        return CacheStats(entries=len(self._lru), bytes=self.currsize, max_bytes=self.max_bytes, hits=self._hits,
                          misses=self._misses, evictions=self._evictions, rejected_too_large=self._rejected)
