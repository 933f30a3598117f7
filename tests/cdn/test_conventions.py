"""Guard rails of the CDN data plane (edge/cdn), checked on the source: what the house rules forbid stays out."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from edge.cdn.models import EdgeResponse, ResponseMeta

CDN = Path(__file__).resolve().parents[2] / "edge" / "cdn"


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), filename=str(p))) for p in sorted(CDN.rglob("*.py"))]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(CDN.parents[1])}:{getattr(node, 'lineno', '?')}"


def test_response_metadata_is_typed() -> None:
    """What the POP knows about a response travels in named fields (ResponseMeta), not in a dict of strings."""
    assert [f.name for f in dataclasses.fields(EdgeResponse)] == ["status", "headers", "body", "status_description",
                                                                   "meta"]
    assert all(f.type != "dict[str, object]" for f in dataclasses.fields(ResponseMeta))
    offenders = [_where(p, n) for p, tree in _sources() for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and n.attr == "extra"]
    assert not offenders, offenders


def test_no_identity_keyed_memos() -> None:
    """Data fixed when the configuration loads is compiled then (edge.cdn.config.plan), not memoised by id()."""
    offenders = [_where(p, n) for p, tree in _sources() for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "id"]
    assert not offenders, offenders


def test_no_private_attributes_of_other_objects() -> None:
    """No ``obj._name`` on anything but ``self``/``cls``: edge/cdn reads and writes no library's private state
    (aiohttp's sites, responses, writers...)."""
    offenders = [f"{_where(p, n)} {ast.unparse(n)}" for p, tree in _sources() for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")
                 and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))]
    assert not offenders, offenders
