"""Robustness: any mutation of a valid distribution either loads or raises ConfigError (never another error)."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cdn.config.distribution import ConfigError, load_distribution

BASE = json.loads((Path(__file__).parents[1] / "fixtures" / "full-distribution.json").read_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(BASE) if p]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70_000) | st.text(max_size=8) | st.sampled_from(
        ["GET", "*", "/x/*", "whitelist", "all", "none", "allExcept", "viewer-request", "200", "-1", "http-only"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["Quantity", "Items", "Enabled", "Forward", "HeaderName", "X"]), children, max_size=3),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON, st.booleans()), min_size=1, max_size=3))
def test_mutations_never_crash(mutations: list[tuple[tuple[Any, ...], Any, bool]]) -> None:
    doc = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        parent: Any = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    with contextlib.suppress(ConfigError):  # a clear refusal is fine; any other exception fails the test
        load_distribution(doc)
