"""Package validation, safe extraction, deterministic zipping and the content-addressed code store."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from edge.invocation.errors import InvalidParameterValueException, RequestEntityTooLargeException
from edge.invocation.registry.codestore import CodeStore
from edge.invocation.registry.packages import UNZIP_FAILED, PackageLimits, code_sha256, inspect_zip, zip_directory
from edge.invocation.registry.packages import zip_files as build_zip


def _zip_with_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "x = 1\n")
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def test_code_sha256_is_base64_of_digest() -> None:
    data = b"hello"
    assert code_sha256(data) == base64.b64encode(hashlib.sha256(data).digest()).decode()
    zipped = build_zip({"a.py": "x"})
    info = inspect_zip(zipped)
    assert info.sha256_hex == hashlib.sha256(zipped).hexdigest()
    assert info.code_sha256 == code_sha256(zipped)
    assert info.size == len(zipped)


def test_zipped_limit_is_413_with_aws_message() -> None:
    data = build_zip({"a.py": "x" * 100})
    with pytest.raises(RequestEntityTooLargeException) as err:
        inspect_zip(data, PackageLimits(zipped=len(data), unzipped=10_000))
    assert err.value.status == 413
    assert err.value.message == f"Zipped size must be smaller than {len(data)} bytes"
    inspect_zip(data, PackageLimits(zipped=len(data) + 1, unzipped=10_000))  # just under: accepted


def test_unzipped_limit_counts_entries() -> None:
    data = build_zip({"a.py": "x" * 600, "b.py": "y" * 500})
    with pytest.raises(InvalidParameterValueException, match="Unzipped size must be smaller than 1000 bytes"):
        inspect_zip(data, PackageLimits(unzipped=1000))
    assert inspect_zip(data, PackageLimits(unzipped=1100)).unzipped_size == 1100


def test_lying_size_headers_are_stopped_during_extraction(tmp_path: Path) -> None:
    data = bytearray(build_zip({"a.py": "x" * 5000}))
    # falsify the central directory's uncompressed size (offset 24 in the central header) to 10 bytes
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    store = CodeStore(tmp_path / "code", PackageLimits(unzipped=1000))
    with pytest.raises(InvalidParameterValueException):
        store.put(bytes(data))
    assert list((tmp_path / "code" / "extracted").iterdir()) == []
    assert list((tmp_path / "code" / "tmp").iterdir()) == []


@pytest.mark.parametrize("payload", [b"", b"not a zip at all", build_zip({"a.py": "x"})[:-30]])
def test_corrupt_zip_is_rejected_with_aws_message(payload: bytes) -> None:
    with pytest.raises(InvalidParameterValueException) as err:
        inspect_zip(payload)
    assert err.value.message == UNZIP_FAILED


def test_bad_crc_is_rejected_and_leaves_nothing(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("app.py", "print('hello world')\n")
    data = bytearray(buf.getvalue())
    data[data.find(b"hello")] ^= 0xFF  # corrupt the stored bytes, CRC no longer matches
    store = CodeStore(tmp_path / "code")
    with pytest.raises(InvalidParameterValueException, match="Could not unzip uploaded file"):
        store.put(bytes(data))
    assert list((tmp_path / "code" / "extracted").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "/etc/evil", "C:/evil.py", "a\\..\\..\\evil.py"])
def test_zip_slip_entries_are_rejected(name: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.py", "x")
        zf.writestr(zipfile.ZipInfo(name), "evil")
    with pytest.raises(InvalidParameterValueException, match="Could not unzip uploaded file"):
        inspect_zip(buf.getvalue())


@pytest.mark.parametrize(("name", "target"), [("link", "/etc/passwd"), ("link", "../outside"), ("a/b/link", "../../../x")])
def test_symlinks_leaving_the_package_are_rejected(name: str, target: str) -> None:
    with pytest.raises(InvalidParameterValueException, match="symlink"):
        inspect_zip(_zip_with_symlink(name, target))


def test_symlink_inside_the_package_is_extracted(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    info = store.put(_zip_with_symlink("lib/alias.py", "../app.py"))
    root = store.code_dir(info.sha256_hex)
    assert os.readlink(root / "lib" / "alias.py") == "../app.py"
    assert (root / "lib" / "alias.py").read_text() == "x = 1\n"


def test_store_is_content_addressed_idempotent_and_read_only(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    data = build_zip({"app.py": "def handler(e, c):\n    return e\n", "pkg/mod.py": "y = 2\n"})
    first = store.put(data)
    again = store.put(data)
    assert first == again
    root = store.code_dir(first.sha256_hex)
    assert root.name == first.sha256_hex
    assert (root / "pkg" / "mod.py").read_text() == "y = 2\n"
    assert store.read_zip(first.sha256_hex) == data
    assert not os.stat(root / "app.py").st_mode & 0o222  # files read-only
    assert not os.stat(root / "pkg").st_mode & 0o222  # directories read-only
    assert list((tmp_path / "code" / "tmp").iterdir()) == []


def test_store_re_extracts_a_missing_directory(tmp_path: Path) -> None:
    from edge.invocation.registry.packages import remove_tree

    store = CodeStore(tmp_path / "code")
    info = store.put(build_zip({"app.py": "z = 3\n"}))
    remove_tree(store.code_dir(info.sha256_hex))
    assert (store.ensure_extracted(info.sha256_hex) / "app.py").read_text() == "z = 3\n"


def test_zip_directory_is_deterministic_and_skips_caches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (src / "pkg" / "m.py").write_text("x = 1\n")
    first = zip_directory(src)
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"junk")
    os.utime(src / "app.py", (1_000_000, 1_000_000))  # timestamps do not matter
    assert zip_directory(src) == first
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        assert zf.namelist() == ["app.py", "pkg/m.py"]
    (src / "app.py").write_text("def handler(e, c):\n    return 2\n")
    assert zip_directory(src) != first


def test_zip_directory_keeps_the_executable_bit(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bootstrap").write_text("#!/bin/sh\n")
    os.chmod(src / "bootstrap", 0o755)
    store = CodeStore(tmp_path / "code")
    info = store.put(zip_directory(src))
    assert os.access(store.code_dir(info.sha256_hex) / "bootstrap", os.X_OK)


def test_zip_directory_missing_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValueException, match="does not exist"):
        zip_directory(tmp_path / "nope")


# -- hostile archives (issue 18, item 1): symlink chains, clashing entries, nothing written outside -------------

def _archive(*entries: tuple[str, str | None, str]) -> bytes:
    """A zip of (name, link target or None, content) entries, in that order (names may repeat)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)  # duplicates are part of the attack
        for name, link, content in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            if link is not None:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, link)
            else:
                info.external_attr = ((0o40755 if name.endswith("/") else 0o100644) & 0xFFFF) << 16
                zf.writestr(info, content)
    return buf.getvalue()


def _chain(depth: int) -> list[tuple[str, str | None, str]]:
    """``s/l1 -> ..``, ``s/l2 -> l1/..``, ...: every link looks harmless by its text; ``s/l<depth>`` is depth
    levels above the package root."""
    return [("s/l1", "..", "")] + [(f"s/l{i}", f"l{i - 1}/..", "") for i in range(2, depth + 1)]


def _nothing_outside(base: Path) -> None:
    assert sorted(p.name for p in base.iterdir()) == ["code"], list(base.iterdir())
    assert not (base.parent / "X").exists() and not (base.parent.parent / "X").exists()


@pytest.mark.parametrize("data", [
    _archive(*_chain(5), ("s/l5/X", None, "pwned")),  # the report: a file written through the chain
    _archive(*_chain(5)),  # the links alone already point above the root
    _archive(("s/l5/X", None, "pwned"), *_chain(5)),  # archive order does not matter
    _archive(("a", "b", ""), ("b", "a", ""), ("a/x", None, "loop")),  # a link loop with a file under it
    _archive(("s/l1", "..", ""), ("s/l1/X", None, "under an earlier link")),
    _archive(("s/l1", "..", ""), ("s/l1", None, "the same name again, as a file")),
    _archive(("app.py", None, "x = 1"), ("app.py/inner.py", None, "a file where a directory is needed")),
    _archive(("d/", None, ""), ("d", None, "a directory entry, then a file of the same name")),
    _archive(("app.py", None, "x = 1"), ("app.py", None, "x = 2")),  # duplicate names
], ids=["chain-file", "chain-links", "chain-reordered", "loop", "file-under-link", "link-then-file",
        "file-then-child", "dir-then-file", "duplicate"])
def test_hostile_archives_are_refused_with_the_entry_named(tmp_path: Path, data: bytes) -> None:
    base = tmp_path / "base"
    base.mkdir()
    store = CodeStore(base / "code")
    with pytest.raises(InvalidParameterValueException, match=UNZIP_FAILED.replace(".", r"\.")) as err:
        store.put(data)
    assert err.value.status == 400 and "'" in err.value.message  # the offending entry is named
    _nothing_outside(base)


def test_a_long_chain_of_links_inside_the_package_is_refused(tmp_path: Path) -> None:
    links = [("l0", "app.py", "")] + [(f"l{i}", f"l{i - 1}", "") for i in range(1, 45)]
    with pytest.raises(InvalidParameterValueException, match="too many levels of symbolic links"):
        inspect_zip(_archive(("app.py", None, "x = 1"), *links))


def test_links_that_stay_inside_are_kept(tmp_path: Path) -> None:
    data = _archive(("pkg/real.py", None, "V = 1\n"), ("pkg/sub/up", "..", ""), ("alias", "pkg/sub/up/real.py", ""),
                    ("deep/a/b", "../../pkg", ""))
    store = CodeStore(tmp_path / "code")
    root = store.code_dir(store.put(data).sha256_hex)
    assert (root / "alias").read_text() == "V = 1\n"
    assert (root / "deep" / "a" / "b" / "real.py").read_text() == "V = 1\n"


def test_the_lambda_api_refuses_the_chain_for_functions_and_layers(lambda_api_factory: Any, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    api = lambda_api_factory(tmp_path / "state")
    client = api.client()
    data = _archive(("app.py", None, "def handler(e, c):\n    return e\n"), *_chain(5), ("s/l5/X", None, "pwned"))
    calls = [
        lambda: client.create_function(FunctionName="evil", Runtime="python3.12", Handler="app.handler",
                                       Role="arn:aws:iam::000000000000:role/r", Code={"ZipFile": data}),
        lambda: client.publish_layer_version(LayerName="evil", Content={"ZipFile": data}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        body = err.value.response
        assert body["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert body["Error"]["Code"] == "InvalidParameterValueException"
        assert "s/l" in body["Error"]["Message"]
    assert not (tmp_path / "X").exists() and not (tmp_path.parent / "X").exists()
    assert not any(p.name == "X" for p in tmp_path.rglob("X"))
