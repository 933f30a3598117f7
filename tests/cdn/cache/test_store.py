"""CacheStore: byte budget, LRU eviction, Vary variants, too-large objects, invalidation syntax, stats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.cache.keys import vary_values
from edge.cdn.cache.policy import CacheEntry
from edge.cdn.cache.store import ENTRY_OVERHEAD, CacheStore, invalidation_matches, validate_invalidation_path


def entry(uri: str = "/a", body: bytes = b"x" * 100, qs: str = "", vary: tuple[str, ...] = (),
          req: list[tuple[str, str]] | None = None) -> CacheEntry:
    return CacheEntry(200, (("Content-Type", "text/plain"),), body, 0.0, 0.0, 60.0, vary_names=vary,
                      vary_values=vary_values(vary, req or []), uri=uri, key_querystring=qs)


def test_put_get_and_stats() -> None:
    s = CacheStore(10_000, 1_000)
    e = entry()
    assert s.put("k", e) and s.get("k", []) is e and s.get("nope", []) is None
    st_ = s.stats()
    assert (st_.entries, st_.hits, st_.misses, st_.bytes) == (1, 1, 1, e.size + ENTRY_OVERHEAD)


def test_too_large_objects_are_refused() -> None:
    s = CacheStore(10_000, 1_000)
    assert not s.put("k", entry(body=b"x" * 1_001))
    assert s.put("k", entry(body=b"x" * 1_000))
    small_budget = CacheStore(500, 10_000)
    assert not small_budget.put("k", entry(body=b"x" * 400))  # fits max_object_bytes, not the whole budget
    assert s.stats().rejected_too_large == 1 and small_budget.stats().rejected_too_large == 1


@pytest.mark.parametrize("invalidation", [False, True])
def test_lru_eviction_order(invalidation: bool) -> None:
    """The least recently used entry is evicted; an invalidation in between (matching nothing) changes nothing."""
    cost = entry().size + ENTRY_OVERHEAD
    s = CacheStore(cost * 3, 10_000)
    for k in "abc":
        s.put(k, entry(uri=f"/{k}"))
    s.get("a", [])  # a becomes most recently used
    if invalidation:
        assert s.purge("/elsewhere/*") == 0
    s.put("d", entry(uri="/d"))
    assert s.get("b", []) is None and s.get("a", []) is not None and s.get("d", []) is not None
    assert s.stats().evictions == 1 and len(s) == 3


def test_replacing_a_key_does_not_double_count() -> None:
    s = CacheStore(100_000, 10_000)
    s.put("k", entry(body=b"1" * 500))
    s.put("k", entry(body=b"2" * 100))
    assert len(s) == 1 and s.currsize == entry(body=b"2" * 100).size + ENTRY_OVERHEAD


def test_vary_variants() -> None:
    s = CacheStore(100_000, 10_000)
    de = entry(vary=("accept-language",), req=[("Accept-Language", "de")], body=b"hallo")
    fr = entry(vary=("accept-language",), req=[("Accept-Language", "fr")], body=b"salut")
    s.put("k", de)
    s.put("k", fr)
    assert s.get("k", [("accept-language", "de")]) is de and s.get("k", [("Accept-Language", "fr")]) is fr
    assert s.get("k", [("Accept-Language", "en")]) is None and s.get("k", []) is None
    # a response with a different Vary replaces all variants
    ae = entry(vary=("accept-encoding",), req=[("Accept-Encoding", "gzip")])
    s.put("k", ae)
    assert len(s) == 1 and s.get("k", [("Accept-Encoding", "gzip, deflate")]) is ae
    assert s.delete("k") == 1 and s.get("k", [("Accept-Encoding", "gzip")]) is None


def test_delete_variant() -> None:
    s = CacheStore(100_000, 10_000)
    de = entry(vary=("accept-language",), req=[("Accept-Language", "de")])
    fr = entry(vary=("accept-language",), req=[("Accept-Language", "fr")])
    s.put("k", de)
    s.put("k", fr)
    s.delete_variant("k", de)
    assert s.get("k", [("Accept-Language", "de")]) is None and s.get("k", [("Accept-Language", "fr")]) is fr


@pytest.mark.parametrize(("path", "uri", "qs", "expected"), [
    ("/img/*", "/img/a.jpg", "", True),
    ("/img/*", "/img/a.jpg", "v=2", True),
    ("/img/*", "/IMG/a.jpg", "", False),
    ("/*", "/anything", "x=1", True),
    ("/a.jpg", "/a.jpg", "", True),
    ("/a.jpg", "/a.jpg", "v=1", False),  # query variants need the QS or a trailing *
    ("/a.jpg?v=1", "/a.jpg", "v=1", True),
    ("/a.jpg*", "/a.jpg", "v=1", True),
    ("/a.jpg*", "/a.jpgx", "", True),
    ("/a", "/a/b", "", False),
])
def test_invalidation_matching(path: str, uri: str, qs: str, expected: bool) -> None:
    assert invalidation_matches(path, uri, qs) is expected


@pytest.mark.parametrize("path", ["img/*", "/a*/b", "/a b", "/caf\u00e9"])
def test_invalid_invalidation_paths(path: str) -> None:
    assert validate_invalidation_path(path) is not None
    with pytest.raises(ValueError):
        CacheStore(1000, 1000).purge(path)


def test_purge_removes_all_variants_and_reindexes() -> None:
    s = CacheStore(100_000, 10_000)
    for lang in ("de", "fr"):
        s.put("k1", entry(uri="/img/a.jpg", vary=("accept-language",), req=[("Accept-Language", lang)]))
    s.put("k2", entry(uri="/img/b.jpg", qs="v=1"))
    s.put("k3", entry(uri="/css/site.css"))
    assert s.purge("/img/*") == 3
    assert len(s) == 1 and s.get("k1", [("Accept-Language", "de")]) is None
    assert s.purge("/css/site.css") == 1 and s.currsize == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3_000), st.sampled_from(["de", "fr", "en"])),
                min_size=1, max_size=120),
       st.integers(1_000, 20_000))
def test_budget_invariant(ops: list[tuple[int, int, str]], budget: int) -> None:
    """Whatever is stored, the accounted size never exceeds the budget and matches the live entries."""
    s = CacheStore(budget, 2_500)
    for key_no, size, lang in ops:
        s.put(f"k{key_no}", entry(uri=f"/{key_no}", body=b"b" * size, vary=("accept-language",),
                                  req=[("Accept-Language", lang)]))
        assert s.currsize <= budget
    live = list(s._lru.values())
    assert s.currsize == sum(e.size + ENTRY_OVERHEAD for e in live)
    # the variant index covers exactly the live entries
    indexed = sum(len(slot[1]) for slot in s._index.values())
    assert indexed == len(live)


def test_many_keys_stay_within_budget() -> None:
    budget = 256 * 1024
    s = CacheStore(budget, 64 * 1024)
    for i in range(5_000):
        s.put(f"key-{i}", entry(uri=f"/obj/{i}", body=b"z" * (i % 2_000)))
        assert s.currsize <= budget
    st_ = s.stats()
    assert st_.evictions > 0 and st_.entries == len(s) and st_.bytes <= budget
