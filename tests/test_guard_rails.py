"""Guard rails run by the test suite (CI runs exactly ``deploy/dev.sh test``): ruff with the project's rule set
and mypy with its configuration (both in ``pyproject.toml``, both from the dev extras of this environment)
must pass, and every ``# type: ignore`` left in the type-checked code names its error code and says why.

The last test plants a violation of each kind and checks the tools report it, so that a configuration that
checks nothing (a wrong path, a section mypy ignores) cannot pass unnoticed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 110  # a cold mypy run takes ~5-10 s on a loaded 2-core machine; pytest's own timeout is 120 s


def run_tool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m <tool> ...`` with this interpreter (the venv's ruff and mypy), from the checkout root."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)


def test_ruff_passes() -> None:
    proc = run_tool("ruff", "check", ".")
    assert proc.returncode == 0, f"ruff check . failed:\n{proc.stdout}{proc.stderr}"


def test_mypy_passes() -> None:
    proc = run_tool("mypy", "--config-file", "pyproject.toml")  # files, strictness and cache dir from there
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}{proc.stderr}"


# `# type: ignore[code, ...]` followed by `# why` on the same line
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")
REASON = re.compile(r"^\s*#\s*\S")


def ignores_without_reason(text: str) -> list[tuple[int, str]]:
    bad = []
    for number, line in enumerate(text.splitlines(), 1):
        m = IGNORE.search(line)
        if m is not None and (m["codes"] is None or not REASON.match(m["rest"])):
            bad.append((number, line.strip()))
    return bad


def test_type_ignores_name_their_code_and_reason() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line}" for p in sorted((ROOT / "edge").rglob("*.py"))
                 for n, line in ignores_without_reason(p.read_text())]
    assert not offenders, "write `# type: ignore[code]  # why`:\n" + "\n".join(offenders)


def test_ignore_rule_itself() -> None:
    assert ignores_without_reason("x = f()  # type: ignore[arg-type]  # the stub is wrong\n") == []
    assert len(ignores_without_reason("x = f()  # type: ignore[arg-type]\n")) == 1
    assert len(ignores_without_reason("x = f()  # type: ignore  # no code\n")) == 1


def test_the_checks_catch_a_planted_violation(tmp_path: Path) -> None:
    """ruff (the project's config, a file under edge/) flags a raw asyncio.create_task and unsorted imports;
    mypy (the project's config) flags an unannotated function in a strict module and a type error."""
    planted = "import sys\nimport asyncio\n\n\nasync def f() -> None:\n    asyncio.create_task(f())\n    sys.exit()\n"
    proc = run_tool("ruff", "check", "--no-cache", "--stdin-filename", "edge/planted.py", "-", stdin=planted)
    assert proc.returncode == 1 and "TID251" in proc.stdout and "I001" in proc.stdout, proc.stdout + proc.stderr

    pure = ROOT / "edge" / "cdn" / "lambda_edge" / "rules.py"  # in the strict list; imports only the stdlib
    shadow = tmp_path / "rules.py"
    shadow.write_text(pure.read_text() + "\n\ndef planted(x):\n    return x\n\n\nWRONG: int = 'text'\n")
    proc = run_tool("mypy", "--config-file", "pyproject.toml", "--cache-dir", str(tmp_path / "cache"),
                    "--shadow-file", str(pure), str(shadow), str(pure))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "[no-untyped-def]" in out and "[assignment]" in out, out
