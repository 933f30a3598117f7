"""The POP cache: pure policy (RFC 9111 + CloudFront TTL rules), keys, the byte-bounded store, collapsing.

Modules: :mod:`.policy` (decisions), :mod:`.ranges` (serving an entry: Age/HEAD/304/Range), :mod:`.keys`
(primary + Vary keys), :mod:`.store` (CacheStore), :mod:`.coalesce` (Coalescer).
"""

from edge.cdn.cache.coalesce import Coalescer
from edge.cdn.cache.keys import cache_key, key_querystring, normalize_accept_encoding, select_cookies
from edge.cdn.cache.policy import (
    CacheControl,
    CacheEntry,
    Hit,
    Miss,
    NotStorable,
    PolicyOptions,
    Refreshed,
    Stale,
    StaleReason,
    StoreContext,
    StoreDecision,
    build_entry,
    conditional_headers,
    evaluate,
    merge_not_modified,
    on_origin_error,
    parse_cache_control,
    storability,
)
from edge.cdn.cache.ranges import Served, serve_entry
from edge.cdn.cache.store import CacheStats, CacheStore

__all__ = [
    "CacheControl", "CacheEntry", "CacheStats", "CacheStore", "Coalescer", "Hit", "Miss", "NotStorable",
    "PolicyOptions", "Refreshed", "Served", "Stale", "StaleReason", "StoreContext", "StoreDecision", "build_entry",
    "cache_key", "conditional_headers", "evaluate", "key_querystring", "merge_not_modified",
    "normalize_accept_encoding", "on_origin_error", "parse_cache_control", "select_cookies", "serve_entry",
    "storability",
]
