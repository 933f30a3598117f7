"""Dispatch ``python -m bench <name> [args...]`` to ``bench.<name>_bench.main(args)``."""

from __future__ import annotations

import importlib
import sys

BENCHES = {"core": "bench.core_bench"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(sorted(BENCHES))}}} [args...]", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHES[argv[0]]).main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
