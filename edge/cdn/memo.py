"""The one rule of the POP's memo tables: bounded, and forgotten all at once when full.

The request path keeps small answers it would otherwise work out again for the same input (a behavior by path, a
header name's verdict, a cache entry's event fields, a function's repeated event...). Such a table is read on every
request and written only when an answer is new; emptying it when it reaches its bound keeps reads a plain dict
lookup, with no per-entry bookkeeping (an LRU's), at the cost of working some answers out again after a clear.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K")
V = TypeVar("V")


def remember(table: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` in ``table`` and return it; a table holding ``limit`` entries is emptied first."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value
