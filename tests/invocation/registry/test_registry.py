"""Registry semantics: versions, RevisionIds, deletes, aliases and routing, names, config validation."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.invocation.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from edge.invocation.registry.config import config_from_request, update_config
from edge.invocation.registry.core import Registry
from edge.invocation.registry.packages import zip_files as build_zip


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "state")
    yield reg
    reg.close()


def create(reg: Registry, name: str = "fn", body: str = "v1", **config: object) -> object:
    package = reg.store_code(build_zip({"app.py": f"def handler(e, c):\n    return {body!r}\n"}))
    request = {"Runtime": "python3.12", "Handler": "app.handler", **config}
    return reg.create_function(name, config_from_request(request), package)


def new_code(reg: Registry, body: str) -> object:
    return reg.store_code(build_zip({"app.py": f"def handler(e, c):\n    return {body!r}\n"}))


# -- versions ----------------------------------------------------------------------------------------------


def test_create_returns_latest_and_rejects_duplicates(registry: Registry) -> None:
    rec = create(registry)
    assert rec.version == "$LATEST" and rec.config.timeout == 3 and rec.config.memory_size == 128
    with pytest.raises(ResourceConflictException, match="Function already exist: fn"):
        create(registry)


def test_every_mutation_gives_a_new_revision_id(registry: Registry) -> None:
    r0 = create(registry)
    r1 = registry.update_function_configuration("fn", lambda c: c)  # redundant update still counts
    r2 = registry.update_function_code("fn", new_code(registry, "v2"))
    v1 = registry.publish_version("fn")
    latest, _ = registry.get_version("fn")
    revisions = [r0.revision_id, r1.revision_id, r2.revision_id, v1.revision_id, latest.revision_id]
    assert len(set(revisions)) == 5, "publishing also bumps $LATEST's RevisionId"


def test_stale_revision_id_is_412(registry: Registry) -> None:
    r0 = create(registry)
    registry.update_function_configuration("fn", lambda c: update_config(c, {"Timeout": 5}), revision_id=r0.revision_id)
    for call in (
        lambda: registry.update_function_configuration("fn", lambda c: c, revision_id=r0.revision_id),
        lambda: registry.update_function_code("fn", new_code(registry, "x"), revision_id=r0.revision_id),
        lambda: registry.publish_version("fn", revision_id=r0.revision_id),
    ):
        with pytest.raises(PreconditionFailedException) as err:
            call()
        assert err.value.status == 412 and "does not match the latest Revision Id" in err.value.message


def test_publish_without_change_returns_the_existing_version(registry: Registry) -> None:
    create(registry)
    v1 = registry.publish_version("fn")
    again = registry.publish_version("fn")
    assert (again.version, again.revision_id) == ("1", v1.revision_id)
    registry.update_function_configuration("fn", lambda c: c)  # redundant update: same content
    registry.update_function_code("fn", new_code(registry, "v1"))  # same code again
    assert registry.publish_version("fn").version == "1"
    registry.update_function_configuration("fn", lambda c: update_config(c, {"Description": "changed"}))
    assert registry.publish_version("fn").version == "2"


def test_version_numbers_are_never_reused(registry: Registry) -> None:
    create(registry)
    registry.publish_version("fn")
    registry.update_function_code("fn", new_code(registry, "v2"))
    assert registry.publish_version("fn").version == "2"
    registry.delete_function("fn", "2")
    registry.update_function_code("fn", new_code(registry, "v3"))
    assert registry.publish_version("fn").version == "3"
    assert [v.version for v in registry.list_versions("fn")] == ["$LATEST", "1", "3"]


def test_versions_are_immutable_snapshots(registry: Registry) -> None:
    create(registry, Timeout=7, Environment={"Variables": {"AA": "1"}})
    v1 = registry.publish_version("fn", description="first")
    registry.update_function_configuration("fn", lambda c: update_config(c, {"Timeout": 9, "Environment": {"Variables": {}}}))
    registry.update_function_code("fn", new_code(registry, "v2"))
    snap, _ = registry.get_version("fn", "1")
    assert (snap.config.timeout, snap.config.environment, snap.config.description) == (7, {"AA": "1"}, "first")
    assert snap.code == v1.code
    latest, _ = registry.get_version("fn")
    assert latest.config.timeout == 9 and latest.code != v1.code


def test_code_sha256_guard_on_publish(registry: Registry) -> None:
    rec = create(registry)
    with pytest.raises(InvalidParameterValueException, match=r"CodeSHA256 \(bogus\) is different from current CodeSHA256"):
        registry.publish_version("fn", code_sha256="bogus")
    assert registry.publish_version("fn", code_sha256=rec.code.code_sha256).version == "1"


def test_update_code_with_publish_returns_the_new_version(registry: Registry) -> None:
    create(registry)
    rec = registry.update_function_code("fn", new_code(registry, "v2"), publish=True)
    assert rec.version == "1"


def test_delete_rules(registry: Registry) -> None:
    create(registry)
    registry.publish_version("fn")
    with pytest.raises(InvalidParameterValueException, match=r"\$LATEST version cannot be deleted without deleting the function."):
        registry.delete_function("fn", "$LATEST")
    registry.aliases.create("fn", "live", "1")
    with pytest.raises(ResourceConflictException, match=r"following aliases reference it: \[live\]"):
        registry.delete_function("fn", "1")
    with pytest.raises(ResourceNotFoundException, match="function:fn:7"):
        registry.delete_function("fn", "7")
    registry.delete_function("fn")
    with pytest.raises(ResourceNotFoundException, match=r"Function not found: arn:aws:lambda:us-east-1:000000000000:function:fn$"):
        registry.get_version("fn")
    create(registry)  # the name is free again; versions start over for the new function
    assert registry.publish_version("fn").version == "1"
    assert registry.aliases.list("fn") == []


# -- aliases -----------------------------------------------------------------------------------------------


@pytest.fixture
def two_versions(registry: Registry) -> Registry:
    create(registry)
    registry.publish_version("fn")
    registry.update_function_code("fn", new_code(registry, "v2"))
    registry.publish_version("fn")
    return registry


def test_alias_crud_and_revisions(two_versions: Registry) -> None:
    reg = two_versions
    alias = reg.aliases.create("fn", "live", "1", "desc")
    with pytest.raises(ResourceConflictException, match="Alias already exists: arn:aws:lambda:us-east-1:000000000000:function:fn:live"):
        reg.aliases.create("fn", "live", "2")
    updated = reg.aliases.update("fn", "live", version="2", revision_id=alias.revision_id)
    assert updated.function_version == "2" and updated.description == "desc" and updated.revision_id != alias.revision_id
    with pytest.raises(PreconditionFailedException):
        reg.aliases.update("fn", "live", version="1", revision_id=alias.revision_id)
    reg.aliases.delete("fn", "live")
    with pytest.raises(ResourceNotFoundException, match="Alias not found"):
        reg.aliases.get("fn", "live")


@pytest.mark.parametrize("name", ["123", "bad name", "a" * 129, "$LATEST"])
def test_alias_name_pattern(two_versions: Registry, name: str) -> None:
    with pytest.raises(ValidationException):
        two_versions.aliases.create("fn", name, "1")


@pytest.mark.parametrize(
    ("primary", "weights", "error", "match"),
    [
        ("1", {"2": 0.5, "3": 0.1}, InvalidParameterValueException, "cannot be greater than 1"),
        ("$LATEST", {"2": 0.5}, InvalidParameterValueException, r"\$LATEST is not supported for an alias pointing to more than 1 version"),
        ("1", {"1": 0.5}, InvalidParameterValueException, "Function version 1 is already included in routing configuration"),
        ("1", {"$LATEST": 0.5}, ValidationException, "Map keys must satisfy constraint"),
        ("1", {"2": 1.5}, ValidationException, "Map value must satisfy constraint"),
        ("1", {"2": -0.1}, ValidationException, "Map value must satisfy constraint"),
        ("1", {"10": 0.5}, ResourceNotFoundException, "function:fn:10"),
        ("9", {}, ResourceNotFoundException, "function:fn:9"),
    ],
)
def test_routing_config_rules(two_versions: Registry, primary: str, weights: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        two_versions.aliases.create("fn", "live", primary, weights=weights)


def test_weighted_routing_uses_the_injected_rng(two_versions: Registry) -> None:
    reg = two_versions
    reg.aliases.create("fn", "live", "1", weights={"2": 0.25})
    rng = random.Random(42)
    counts = Counter(reg.resolve("fn", "live", rng)[1] for _ in range(4000))
    assert 0.21 < counts["2"] / 4000 < 0.29
    # same seed, same sequence of executed versions
    def sequence(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [reg.resolve("fn:live", None, rng)[1] for _ in range(50)]

    assert sequence(7) == sequence(7)
    assert set(sequence(7)) == {"1", "2"}
    spec, version = reg.resolve("fn", "live", _FixedRng(0.9))
    assert (version, spec.version) == ("1", "1")
    assert reg.resolve("fn", "live", _FixedRng(0.1))[1] == "2"


def test_removing_routing_with_empty_weights(two_versions: Registry) -> None:
    reg = two_versions
    reg.aliases.create("fn", "live", "1", weights={"2": 0.5})
    assert reg.aliases.update("fn", "live", description="x").weights == {"2": 0.5}  # absent: kept
    assert reg.aliases.update("fn", "live", weights={}).weights == {}
    assert {reg.resolve("fn", "live", _FixedRng(0.0))[1] for _ in range(3)} == {"1"}


class _FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


# -- resolution and names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "qualifier", "expected"),
    [
        ("fn", None, "$LATEST"),
        ("fn:1", None, "1"),
        ("fn", "1", "1"),
        ("fn:$LATEST", None, "$LATEST"),
        ("arn:aws:lambda:us-east-1:000000000000:function:fn", None, "$LATEST"),
        ("arn:aws:lambda:us-east-1:000000000000:function:fn:2", None, "2"),
        ("arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn%3A2", None, "2"),
        ("000000000000:function:fn:1", None, "1"),
        ("fn:live", None, "1"),
    ],
)
def test_function_name_forms(two_versions: Registry, name: str, qualifier: str | None, expected: str) -> None:
    two_versions.aliases.create("fn", "live", "1")
    spec, version = two_versions.resolve(name, qualifier, random.Random(0))
    assert version == expected == spec.version
    assert spec.function_name == "fn"


def test_name_errors(two_versions: Registry) -> None:
    rng = random.Random(0)
    with pytest.raises(ResourceNotFoundException, match=r"Functions from 'eu-west-1' are not reachable in this region \('us-east-1'\)"):
        two_versions.resolve("arn:aws:lambda:eu-west-1:000000000000:function:fn", None, rng)
    with pytest.raises(InvalidParameterValueException, match="derived qualifier"):
        two_versions.resolve("fn:1", "2", rng)
    with pytest.raises(ValidationException, match="functionName"):
        two_versions.resolve("bad name!", None, rng)
    with pytest.raises(ValidationException, match="less than or equal to 64"):
        two_versions.resolve("a" * 65, None, rng)
    with pytest.raises(ResourceNotFoundException, match=r"function:fn:nope$"):
        two_versions.resolve("fn", "nope", rng)
    with pytest.raises(ResourceNotFoundException, match=r"function:other$"):
        two_versions.resolve("other", None, rng)


def test_latest_pool_key_changes_on_update_but_not_on_publish(registry: Registry) -> None:
    create(registry)
    rng = random.Random(0)
    key0 = registry.resolve("fn", None, rng)[0].pool_key
    registry.publish_version("fn")
    assert registry.resolve("fn", None, rng)[0].pool_key == key0
    registry.update_function_configuration("fn", lambda c: update_config(c, {"MemorySize": 256}))
    spec = registry.resolve("fn", None, rng)[0]
    assert spec.pool_key != key0 and spec.memory_mb == 256
    assert registry.resolve("fn", "1", rng)[0].memory_mb == 128


def test_spec_carries_the_configuration(registry: Registry) -> None:
    create(registry, Timeout=30, MemorySize=512, EphemeralStorage={"Size": 1024}, Environment={"Variables": {"BB": "2", "AA": "1"}})
    spec, _ = registry.resolve("fn", None, random.Random(0))
    assert (spec.timeout_s, spec.memory_mb, spec.ephemeral_storage_mb) == (30.0, 512, 1024)
    assert spec.environment == (("AA", "1"), ("BB", "2"))
    assert (spec.code_dir / "app.py").read_text().startswith("def handler")
    assert spec.handler == "app.handler" and spec.runtime == "python3.12" and spec.region == "us-east-1"


# -- configuration validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "error", "match"),
    [
        ({"Timeout": 0}, ValidationException, "greater than or equal to 1"),
        ({"Timeout": 901}, ValidationException, "less than or equal to 900"),
        ({"MemorySize": 127}, ValidationException, "greater than or equal to 128"),
        ({"MemorySize": 10241}, ValidationException, "less than or equal to 10240"),
        ({"EphemeralStorage": {"Size": 511}}, ValidationException, "greater than or equal to 512"),
        ({"EphemeralStorage": {"Size": 10241}}, ValidationException, "less than or equal to 10240"),
        ({"Runtime": "cobol85"}, InvalidParameterValueException, "runtime"),
        ({"Handler": "has space"}, ValidationException, "handler"),
        ({"Handler": "h" * 129}, ValidationException, "handler"),
        ({"Role": "not-a-role"}, ValidationException, "role"),
        ({"Description": "d" * 257}, ValidationException, "description"),
        ({"Timeout": "3"}, InvalidParameterValueException, "Timeout must be an integer"),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, InvalidParameterValueException, "Reserved keys used in this request: AWS_REGION"),
        ({"Environment": {"Variables": {"1BAD": "x"}}}, ValidationException, "Map keys"),
        ({"Environment": {"Variables": {"BIG": "x" * 4090}}}, InvalidParameterValueException, "exceeded the 4KB limit"),
        ({"Layers": [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(6)]}, InvalidParameterValueException, "more than 5 layers"),
        ({"PackageType": "Image"}, InvalidParameterValueException, "Zip only"),
    ],
)
def test_config_validation(request_: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        config_from_request({"Runtime": "python3.12", "Handler": "app.handler", **request_})


def test_environment_limit_is_measured_as_compact_json() -> None:
    # {"KK":"..."} = 9 bytes of JSON framing around the value: exactly 4096 passes, 4097 fails
    config_from_request({"Runtime": "python3.12", "Handler": "a.b", "Environment": {"Variables": {"KK": "x" * 4087}}})
    with pytest.raises(InvalidParameterValueException):
        config_from_request({"Runtime": "python3.12", "Handler": "a.b", "Environment": {"Variables": {"KK": "x" * 4088}}})


def test_nodejs_is_stored_as_configured() -> None:
    cfg = config_from_request({"Runtime": "nodejs20.x", "Handler": "index.handler"})
    assert cfg.runtime == "nodejs20.x"


def test_environment_update_replaces_the_whole_map(registry: Registry) -> None:
    create(registry, Environment={"Variables": {"AA": "1", "BB": "2"}})
    rec = registry.update_function_configuration("fn", lambda c: update_config(c, {"Environment": {"Variables": {"CC": "3"}}}))
    assert rec.config.environment == {"CC": "3"}


def test_a_vanished_code_directory_is_restored_on_load(registry: Registry) -> None:
    from edge.invocation.registry.packages import remove_tree

    create(registry)
    spec, _ = registry.resolve("fn", None, random.Random(0))
    remove_tree(spec.code_dir)
    registry.cache.invalidate()
    spec, _ = registry.resolve("fn", None, random.Random(0))
    assert (spec.code_dir / "app.py").read_text().startswith("def handler")
