"""Every relative link of the checkout's Markdown files points at a file that exists (issue 17: functions/README.md
named a file that does not), and so does every repository path the functions' README names in backticks."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_CODE_PATH = re.compile(r"`(?P<path>[\w.-]+/[\w./-]+\.(?:md|py|json|toml|js))`")


def _docs() -> list[Path]:
    return [REPO / "README.md", REPO / "ARCHITECTURE.md", *sorted((REPO / "functions").glob("**/README.md"))]


def test_relative_markdown_links_resolve() -> None:
    broken = []
    for doc in _docs():
        for m in _LINK.finditer(doc.read_text()):
            target = m["target"].split("#", 1)[0]
            if not target or re.match(r"^[a-z]+:", target):  # an anchor in the page, or a URL
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)}: {m['target']}")
    assert not broken, broken


def test_paths_named_in_the_functions_readme_exist() -> None:
    doc = REPO / "functions" / "README.md"
    missing = [m["path"] for m in _CODE_PATH.finditer(doc.read_text())
               if not (REPO / m["path"]).exists() and not (doc.parent / m["path"]).exists()]
    assert not missing, missing
