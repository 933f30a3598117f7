"""Architecture guard rails: imports go one way (cdn -> invocation, control -> both, never back), outside code
uses the invocation core's public surface only, no module imports another package's underscore names, the
invocation core has no import cycles, load tests never import the edge package, and modules stay within the size
budget."""

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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_targets(path: Path) -> list[tuple[str, str | None]]:
    """Every absolute import of a file (also under ``TYPE_CHECKING`` and inside functions) as (module, name):
    ``import a.b`` -> ("a.b", None); ``from a.b import c`` -> ("a.b", "c")."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, a.name) for a in node.names]
    return out


def is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


@pytest.mark.parametrize(("package", "forbidden"), [
    (("edge", "invocation"), ("edge.cdn", "edge.control")),
    (("edge", "cdn"), ("edge.control",)),
    (("loadtests",), ("edge",)),
])
def test_imports_go_one_way(package: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in py_files(*package) for m in imported_modules(p)
                 if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert not offenders, "\n".join(offenders)


# The invocation core's public surface: the only edge.invocation modules code outside edge/invocation imports.
INVOCATION_PUBLIC = frozenset({"edge.invocation", "edge.invocation.errors", "edge.invocation.models"})
# Known imports past the surface in code another change owns; each must still occur (remove it once fixed).
INVOCATION_PUBLIC_PENDING: frozenset[str] = frozenset()  # "<file> imports <module>" entries being moved


@pytest.mark.parametrize("package", [("edge", "control"), ("edge", "cdn")])
def test_outside_code_uses_the_invocation_public_surface(package: tuple[str, ...]) -> None:
    found = set()
    for p in py_files(*package):
        for module, name in import_targets(p):
            target = module
            if module == "edge.invocation" and name is not None and is_module(f"{module}.{name}"):
                target = f"{module}.{name}"  # `from edge.invocation import registry` imports a module
            if (target == "edge.invocation" or target.startswith("edge.invocation.")) and target not in INVOCATION_PUBLIC:
                found.add(f"{p.relative_to(ROOT)} imports {target}")
    pending = {f for f in INVOCATION_PUBLIC_PENDING if f.startswith("/".join(package) + "/")}
    assert found - pending == set(), "\n".join(sorted(found - pending))
    assert pending <= found, f"fixed: remove from INVOCATION_PUBLIC_PENDING: {sorted(pending - found)}"


def test_no_underscore_names_imported_from_another_package() -> None:
    offenders = []
    for p in py_files("edge"):
        package = module_name(p) if p.name == "__init__.py" else module_name(p).rpartition(".")[0]
        for module, name in import_targets(p):
            source_package = module if (ROOT.joinpath(*module.split(".")) / "__init__.py").is_file() else (
                module.rpartition(".")[0])
            imported = name if name is not None else module.rpartition(".")[2]
            if (imported.startswith("_") and not imported.startswith("__") and module.startswith("edge")
                    and source_package != package):
                offenders.append(f"{p.relative_to(ROOT)} imports {imported} from {module}")
    assert not offenders, "\n".join(offenders)


def lazy_exports(path: Path) -> dict[str, str]:
    """A module's PEP 562 re-exports (its ``_LAZY = {name: defining module}`` map), or {}."""
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.value.keys, node.value.values, strict=True)
                    if k is not None}
    return {}


def test_invocation_core_has_no_import_cycles() -> None:
    """Also counting imports under ``TYPE_CHECKING``: a cycle there is a design cycle (e.g. a component typed
    against the service that owns it); depend on a narrow Protocol instead. A public module's lazy re-exports
    (``_LAZY``, imported on first access, and under ``TYPE_CHECKING`` for type checkers) are not dependencies."""
    graph: dict[str, set[str]] = {}
    for p in py_files("edge", "invocation"):
        deps = set()
        reexports = lazy_exports(p)
        for module, name in import_targets(p):
            if name is not None and reexports.get(name) == module:
                continue
            if name is not None and is_module(f"{module}.{name}"):
                deps.add(f"{module}.{name}")
            elif module.startswith("edge.invocation") and is_module(module):
                deps.add(module)
        graph[module_name(p)] = deps - {module_name(p), "edge.invocation"}  # the package root only re-exports
    cycles = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep):], dep]))
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_worker_runtime_stays_light() -> None:
    """Worker start-up time is cold-start time: the worker-side runtime (everything in runtime/; the core-side
    client of the zygote lives in execution/) imports neither the server stack nor asyncio (orjson is fine: the
    zygote preloads it before forking)."""
    heavy = ("aiohttp", "edge.invocation.registry.core", "edge.invocation.service.facade", "edge.invocation.execution.executor",
             "sqlite3", "asyncio", "uvloop")
    offenders = [f"{p.name} imports {m}" for p in py_files("edge", "invocation", "runtime")
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
