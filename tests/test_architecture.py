"""Architecture guard rails: imports go one way (cdn -> invocation, control -> both, never back), load tests
never import the edge package, and modules stay within the size budget."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def py_files(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


@pytest.mark.parametrize(("package", "forbidden"), [
    (("edge", "invocation"), ("edge.cdn", "edge.control")),
    (("edge", "cdn"), ("edge.control",)),
    (("loadtests",), ("edge",)),
])
def test_imports_go_one_way(package: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in py_files(*package) for m in imported_modules(p)
                 if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not offenders, "\n".join(offenders)


def test_worker_runtime_stays_light() -> None:
    """Worker start-up time is cold-start time: the worker-side runtime (everything in runtime/ but the core-side
    spawner) imports neither the server stack nor asyncio (orjson is fine: the zygote preloads it before forking)."""
    heavy = ("aiohttp", "edge.invocation.registry.core", "edge.invocation.service.facade", "edge.invocation.execution.executor",
             "sqlite3", "asyncio", "uvloop")
    offenders = [f"{p.name} imports {m}" for p in py_files("edge", "invocation", "runtime") if p.name != "spawner.py"
                 for m in imported_modules(p) if any(m == h or m.startswith(h + ".") for h in heavy)]
    assert not offenders, offenders


def test_module_size_budget() -> None:
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in py_files("edge") + py_files("origin")
           if (n := len(p.read_text().splitlines())) > 600]
    assert not big, big


def test_no_test_imports_locust_or_gevent_in_process() -> None:
    """Importing locust monkey-patches the stdlib with gevent for the whole pytest session (asyncio tests hang):
    locust only ever runs in subprocesses."""
    offenders = []
    for p in sorted((ROOT / "tests").rglob("*.py")):
        text = p.read_text()
        try:
            mods = imported_modules(p)
        except SyntaxError:  # deliberately broken handler fixtures
            continue
        if any(m.split(".")[0] in ("locust", "gevent") for m in mods) or "importorskip(" + '"locust"' in text:
            offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, offenders
