"""Registry: reserved/provisioned concurrency, account summary, layers, the cross-process change feed."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.invocation.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from edge.invocation.registry.config import config_from_request, update_config
from edge.invocation.registry.core import Registry
from edge.invocation.registry.packages import PackageLimits
from edge.invocation.registry.packages import zip_files as build_zip

LAYER = "arn:aws:lambda:us-east-1:000000000000:layer:{}:{}"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "state")
    yield reg
    reg.close()


def create(reg: Registry, name: str = "fn", **config: object) -> None:
    package = reg.store_code(build_zip({"app.py": f"def handler(e, c):\n    return {name!r}\n"}))
    reg.create_function(name, config_from_request({"Runtime": "python3.12", "Handler": "app.handler", **config}), package)


# -- reserved concurrency ----------------------------------------------------------------------------------


def test_reserved_concurrency_keeps_100_unreserved(registry: Registry) -> None:
    create(registry, "a")
    create(registry, "b")
    assert registry.concurrency.put_reserved("a", 500, 1000) == 500
    assert registry.concurrency.put_reserved("a", 900, 1000) == 900  # its own previous 500 does not count
    with pytest.raises(InvalidParameterValueException, match=r"below its minimum value of \[100\]"):
        registry.concurrency.put_reserved("b", 1, 1000)
    registry.concurrency.put_reserved("a", 400, 1000)
    assert registry.concurrency.put_reserved("b", 500, 1000) == 500
    assert registry.concurrency.account_summary(1000).unreserved == 100
    assert registry.concurrency.reserved_map() == {"a": 400, "b": 500}
    registry.concurrency.delete_reserved("a")
    assert registry.concurrency.get_reserved("a") is None
    assert registry.concurrency.put_reserved("a", 0, 1000) == 0  # zero is allowed: throttles everything


def test_reserved_concurrency_errors(registry: Registry) -> None:
    create(registry)
    with pytest.raises(ValidationException):
        registry.concurrency.put_reserved("fn", -1, 1000)
    with pytest.raises(ResourceNotFoundException):
        registry.concurrency.put_reserved("missing", 1, 1000)


# -- provisioned concurrency -------------------------------------------------------------------------------


@pytest.fixture
def published(registry: Registry) -> Registry:
    create(registry)
    registry.publish_version("fn")
    registry.update_function_configuration("fn", lambda c: update_config(c, {"Timeout": 4}))
    registry.publish_version("fn")
    registry.aliases.create("fn", "live", "1")
    return registry


def test_provisioned_only_on_versions_and_aliases(published: Registry) -> None:
    ops = published.concurrency
    with pytest.raises(InvalidParameterValueException, match="cannot be applied to unpublished function versions"):
        ops.put_provisioned("fn", "$LATEST", 1, 1000)
    with pytest.raises(ResourceNotFoundException, match="function:fn:9"):
        ops.put_provisioned("fn", "9", 1, 1000)
    with pytest.raises(ValidationException):
        ops.put_provisioned("fn", "1", 0, 1000)
    record = ops.put_provisioned("fn", "live", 3, 1000)
    assert record.requested == 3
    assert ops.get_provisioned("fn", "live").requested == 3
    assert ops.list_provisioned() == [(record, "1")]
    with pytest.raises(ProvisionedConcurrencyConfigNotFoundException):
        ops.get_provisioned("fn", "2")


def test_one_provisioned_config_per_version(published: Registry) -> None:
    ops = published.concurrency
    ops.put_provisioned("fn", "1", 2, 1000)
    with pytest.raises(ResourceConflictException, match="already Provisioned version"):
        ops.put_provisioned("fn", "live", 2, 1000)
    ops.put_provisioned("fn", "1", 5, 1000)  # updating the same config is fine
    ops.delete_provisioned("fn", "1")
    ops.put_provisioned("fn", "live", 2, 1000)
    with pytest.raises(ResourceConflictException, match="already Provisioned alias"):
        ops.put_provisioned("fn", "1", 2, 1000)


def test_reserved_must_cover_provisioned(published: Registry) -> None:
    ops = published.concurrency
    ops.put_reserved("fn", 10, 1000)
    with pytest.raises(InvalidParameterValueException, match="should not be greater than the reservedConcurrentExecution"):
        ops.put_provisioned("fn", "1", 11, 1000)
    ops.put_provisioned("fn", "1", 6, 1000)
    with pytest.raises(InvalidParameterValueException, match=r"should not be lower than function's total provisioned concurrency \[6\]"):
        ops.put_reserved("fn", 5, 1000)
    ops.delete_reserved("fn")
    assert ops.account_summary(1000).unreserved == 994  # unreserved functions commit their provisioned concurrency
    with pytest.raises(InvalidParameterValueException, match="unreserved concurrency"):
        ops.put_provisioned("fn", "1", 901, 1000)


def test_deleting_a_version_or_alias_drops_its_provisioned_config(published: Registry) -> None:
    ops = published.concurrency
    ops.put_provisioned("fn", "2", 1, 1000)
    ops.put_provisioned("fn", "live", 1, 1000)
    published.delete_function("fn", "2")
    published.aliases.delete("fn", "live")
    assert ops.list_provisioned() == []


def test_account_summary_counts_code_and_functions(published: Registry) -> None:
    summary = published.concurrency.account_summary(1000)
    assert summary.function_count == 1 and summary.concurrent_executions == 1000
    assert summary.total_code_size > 0


# -- layers ------------------------------------------------------------------------------------------------


def _layer(reg: Registry, name: str, files: dict[str, str]) -> int:
    return reg.layers.publish(name, reg.store_code(build_zip(files)), description=name).version


def test_layer_versions_and_attachment_order(registry: Registry) -> None:
    assert _layer(registry, "base", {"python/shared.py": "X = 'base'"}) == 1
    assert _layer(registry, "base", {"python/shared.py": "X = 'base2'"}) == 2
    assert _layer(registry, "extra", {"python/shared.py": "X = 'extra'"}) == 1
    create(registry, Layers=[LAYER.format("extra", 1), LAYER.format("base", 2)])
    spec, _ = registry.resolve("fn", None, random.Random(0))
    assert [(d / "python" / "shared.py").read_text() for d in spec.layer_dirs] == ["X = 'extra'", "X = 'base2'"]
    assert [r.version for r in registry.layers.list_versions("base")] == [2, 1]
    assert [(r.name, r.version) for r in registry.layers.list_latest()] == [("base", 2), ("extra", 1)]
    # a deleted layer version keeps working for functions that already use it
    registry.layers.delete("extra", 1)
    registry.update_function_configuration("fn", lambda c: update_config(c, {"Timeout": 9}))
    assert len(registry.resolve("fn", None, random.Random(0))[0].layer_dirs) == 2
    with pytest.raises(ResourceNotFoundException):
        registry.layers.get("extra", 1)
    assert _layer(registry, "extra", {"python/x.py": ""}) == 2  # layer version numbers are not reused


def test_layer_attachment_errors(registry: Registry) -> None:
    _layer(registry, "base", {"python/a.py": ""})
    _layer(registry, "base", {"python/b.py": ""})
    with pytest.raises(InvalidParameterValueException, match=r"Layer version .*layer:nope:1 does not exist."):
        create(registry, Layers=[LAYER.format("nope", 1)])
    with pytest.raises(InvalidParameterValueException, match="Two different versions of the same layer"):
        create(registry, Layers=[LAYER.format("base", 1), LAYER.format("base", 2)])
    with pytest.raises(InvalidParameterValueException, match="Layers are not in the same region"):
        create(registry, Layers=["arn:aws:lambda:eu-west-1:000000000000:layer:base:1"])
    with pytest.raises(ValidationException):
        create(registry, Layers=["not-an-arn"])


def test_combined_unzipped_size_includes_layers(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "s", limits=PackageLimits(unzipped=1500))
    try:
        reg.layers.publish("big", reg.store_code(build_zip({"python/big.py": "x" * 1000})))
        package = reg.store_code(build_zip({"app.py": "y" * 600}))
        cfg = config_from_request({"Runtime": "python3.12", "Handler": "app.handler", "Layers": [LAYER.format("big", 1)]})
        with pytest.raises(InvalidParameterValueException, match="combined with layers exceeds the maximum allowed size of 1500"):
            reg.create_function("fn", cfg, package)
    finally:
        reg.close()


# -- change feed -------------------------------------------------------------------------------------------


def test_changes_by_another_connection_are_seen_within_the_poll_interval(tmp_path: Path) -> None:
    writer = Registry(tmp_path / "state")
    reader = Registry(tmp_path / "state", refresh_interval_s=0.05)
    try:
        create(writer)
        rng = random.Random(0)
        first = reader.resolve("fn", None, rng)[0]
        writer.update_function_configuration("fn", lambda c: update_config(c, {"MemorySize": 1024}))
        assert reader.resolve_cached("fn", None, rng)[0] == first  # served from memory until the next poll
        assert reader.cache.poll() is True
        assert reader.resolve("fn", None, rng)[0].memory_mb == 1024
        assert reader.cache.poll() is False  # nothing new
    finally:
        writer.close()
        reader.close()


def test_changes_from_another_process_are_visible(tmp_path: Path) -> None:
    state = tmp_path / "state"
    reader = Registry(state, refresh_interval_s=0.05)
    try:
        with pytest.raises(ResourceNotFoundException):
            reader.resolve("fn", None, random.Random(0))  # cached as missing
        script = textwrap.dedent(
            f"""
            import io, zipfile
            from pathlib import Path
            from edge.invocation.registry.core import Registry
            from edge.invocation.registry.config import config_from_request
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("app.py", "def handler(e, c): return 1")
            reg = Registry(Path({str(state)!r}))
            pkg = reg.store_code(buf.getvalue())
            reg.create_function("fn", config_from_request({{"Runtime": "python3.12", "Handler": "app.handler"}}), pkg)
            reg.publish_version("fn")
            reg.close()
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[3], timeout=60)
        deadline = time.monotonic() + 1.0
        while True:
            try:
                spec, version = reader.resolve("fn", "1", random.Random(0))
                break
            except ResourceNotFoundException:
                assert time.monotonic() < deadline, "change made by another process not visible within 1 s"
                time.sleep(0.02)
        assert version == "1" and (spec.code_dir / "app.py").exists()
    finally:
        reader.close()


def test_concurrent_publishers_never_collide(tmp_path: Path) -> None:
    """Two connections updating and publishing from two threads at once: numbers are unique and gap-free."""
    a = Registry(tmp_path / "state")
    b = Registry(tmp_path / "state")
    create(a)
    errors: list[BaseException] = []

    def worker(reg: Registry, offset: int) -> None:
        try:
            for i in range(15):
                reg.update_function_configuration("fn", lambda c, t=3 + offset + i: update_config(c, {"Timeout": t}))
                reg.publish_version("fn")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(reg, n * 100)) for n, reg in enumerate((a, b))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        numbers = [int(v.version) for v in a.list_versions("fn") if v.version != "$LATEST"]
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 15
    finally:
        a.close()
        b.close()
