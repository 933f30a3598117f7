"""Local settings: defaults, the example file, validation naming keys, --pop overrides."""

from __future__ import annotations

import contextlib
import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cdn.config.policies import ConfigError
from edge.cdn.config.settings import apply_pop_overrides, load_settings, parse_settings

EXAMPLE = Path(__file__).parents[3] / "deploy" / "edgelab.example.toml"


def test_defaults() -> None:
    s = load_settings(None)
    assert [(p.name, p.region, p.port) for p in s.pops] == [
        ("IAD", "us-east-1", 8081), ("FRA", "eu-central-1", 8082), ("NRT", "ap-northeast-1", 8083)]
    assert s.pops[1].origin_latency_ms > s.pops[0].origin_latency_ms
    assert s.cache.error_caching_min_ttl_s == 10 and not s.cache.heuristic_freshness
    assert s.api_port == 9001 and not s.edge.allow_unpublished_qualifiers and s.lambda_.concurrency_for("x") == 1000
    assert s.edge.cff_memo and not parse_settings({"edge": {"cff_memo": False}}).edge.cff_memo


def test_example_file_loads_completely() -> None:
    s = load_settings(EXAMPLE)
    assert s.origin_target("APP.example.com") is not None
    assert s.origin_target("app.example.com").port == 8000  # type: ignore[union-attr]
    assert s.origins["assets-bucket.s3.eu-central-1.amazonaws.com"].directory == (
        EXAMPLE.parent.parent / "origin" / "static").resolve()
    assert s.cache_policies["ApiShortCache"] is s.cache_policies["a1b2c3d4-0000-4000-8000-000000000001"]
    assert s.functions[0].dir == (EXAMPLE.parent.parent / "functions" / "security-headers").resolve()
    assert s.lambda_.concurrency_for("eu-central-1") == 1000
    assert s.distribution is not None and s.distribution.name == "full-distribution.json"


@pytest.mark.parametrize(("doc", "key"), [
    ({"pops": [{"name": "IAD"}]}, "pops[0].region"),
    ({"pops": [{"name": "I-D", "region": "us-east-1"}]}, "pops[0].name"),
    ({"pops": [{"name": "A", "region": "r", "port": 70000}]}, "pops[0].port"),
    ({"pops": [{"name": "A", "region": "r", "port": "80"}]}, "pops[0].port"),
    ({"pops": [{"name": "A", "region": "r", "port": 1}, {"name": "A", "region": "r", "port": 2}]}, "pops[1].name"),
    ({"pops": [{"name": "A", "region": "r", "port": 1}, {"name": "B", "region": "r", "port": 1}]}, "pops[1].port"),
    ({"pops": [{"name": "A", "region": "r", "colour": "red"}]}, "pops[0].colour"),
    ({"origins": {"app.example.com": "nowhere"}}, "origins.app.example.com"),
    ({"cache": {"max_bytes": -1}}, "cache.max_bytes"),
    ({"cache": {"heuristic_freshness": "yes"}}, "cache.heuristic_freshness"),
    ({"edge": {"debug_headers": 1}}, "edge.debug_headers"),
    ({"edge": {"cff_memo": "no"}}, "edge.cff_memo"),
    ({"functions": [{"name": "f", "handler": "nodot"}]}, "functions[0].handler"),
    ({"functions": [{"name": "f", "memory": 64}]}, "functions[0].memory"),
    ({"lambda": {"account_concurrency": {"us-east-1": 0}}}, "lambda.account_concurrency.us-east-1"),
    ({"cache_policies": {"p": {"Name": "p", "MinTTL": 10, "DefaultTTL": 5,
                               "ParametersInCacheKeyAndForwardedToOrigin": {}}}}, "cache_policies.p"),
    ({"api_port": True}, "api_port"),
    ({"whatever": 1}, "whatever"),
])
def test_errors_name_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_settings(doc)
    assert ei.value.path == key or ei.value.path.startswith(key), str(ei.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[pops\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")


def test_origin_target_forms(tmp_path: Path) -> None:
    s = parse_settings({"origins": {"a.com": "[::1]:8000", "b.com": "http://127.0.0.1:9000/base/",
                                    "c.com": "dir:/srv/x"}}, tmp_path)
    assert (s.origins["a.com"].host, s.origins["a.com"].port) == ("::1", 8000)
    assert s.origins["b.com"].url == "http://127.0.0.1:9000/base"
    assert s.origins["c.com"].directory == Path("/srv/x")


def test_pop_overrides() -> None:
    s = apply_pop_overrides(load_settings(None), ["fra=9082", "NRT=127.0.0.2:9083"])
    assert s.pop("FRA").port == 9082 and (s.pop("NRT").host, s.pop("NRT").port) == ("127.0.0.2", 9083)
    assert s.pop("IAD").port == 8081
    # HTTPS: the default POPs listen on 8443-8445; a moved POP keeps one only when its HTTPS port is named
    assert (s.pop("IAD").https_port, s.pop("FRA").https_port) == (8443, None)
    assert apply_pop_overrides(load_settings(None), ["FRA=9082,9444"]).pop("FRA").https_port == 9444
    assert parse_settings({"pops": [{"name": "X", "region": "us-east-1", "https_port": 0}]}).pop("X").https_port == 0
    for bad in ("XXX=1", "FRA", "FRA=abc", "FRA=8081", "FRA=9082,x", "FRA=9082,70000"):
        with pytest.raises(ConfigError):
            apply_pop_overrides(load_settings(None), [bad])


def test_concurrency_shorthand() -> None:
    s = parse_settings({"lambda": {"account_concurrency": 5, "idle_ttl_s": 10}})
    assert s.lambda_.concurrency_for("eu-central-1") == 5 and s.lambda_.idle_ttl_s == 10


def _leaf_paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaf_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaf_paths(v, (*prefix, i))
    return out


_EXAMPLE_DOC = tomllib.loads(EXAMPLE.read_text())
_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 70_000) | st.floats(allow_nan=True)
                       | st.text(max_size=6) | st.sampled_from(["dir:x", "1.2.3.4:80", "http://h", "a.b"]),
                       lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=4), c, max_size=2),
                       max_leaves=4)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([p for p in _leaf_paths(_EXAMPLE_DOC) if p]), _VALUES)
def test_mutated_settings_never_crash(path: tuple[object, ...], value: object) -> None:
    doc = copy.deepcopy(_EXAMPLE_DOC)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    with contextlib.suppress(ConfigError):  # a clear refusal is fine; any other exception fails the test
        parse_settings(doc, EXAMPLE.parent)


def test_state_dir_defaults_to_the_working_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edge.cdn.config.settings import load_settings

    f = tmp_path / "conf" / "s.toml"
    f.parent.mkdir()
    f.write_text("api_port = 9001\n")
    assert load_settings(f).state_dir == Path(".edgelab")  # relative: the working directory, as documented
    f.write_text('state_dir = "st"\n')
    assert load_settings(f).state_dir == f.parent / "st"  # given in the file: relative to the file


@pytest.mark.parametrize("doc", [{"distribution": "\x00"}, {"state_dir": "a\x00"}, {"origins": {"x.com": "dir:\x00"}},
                                 {"functions": [{"name": "a", "dir": "\x00"}]},
                                 {"cloudfront_functions": [{"name": "a", "dir": "d\x00"}]}])
def test_a_path_with_a_nul_byte_is_a_config_error(doc: dict[str, Any]) -> None:  # found by the mutation test
    with pytest.raises(ConfigError, match="NUL"):
        parse_settings(doc, EXAMPLE.parent)


def test_tiers_section_and_a_pops_rec_region() -> None:
    from edge.cdn.config.settings import TierSettings, parse_settings

    s = parse_settings({"tiers": {"enabled": False, "cache_max_bytes": 1024},
                        "pops": [{"name": "LHR", "region": "eu-west-2", "rec_region": "eu-central-1"}]})
    assert s.tiers == TierSettings(enabled=False, cache_max_bytes=1024)
    assert s.pops[0].tier_region == "eu-central-1"
    assert parse_settings({}).tiers.enabled and parse_settings({}).pops[0].tier_region == "us-east-1"
    for bad, key in (({"tiers": {"enabled": "yes"}}, "tiers.enabled"), ({"tiers": {"cache_max_bytes": -1}},
                     "tiers.cache_max_bytes"), ({"tiers": {"shield": True}}, "tiers.shield")):
        with pytest.raises(ConfigError) as exc:
            parse_settings(bad)
        assert key in str(exc.value)
