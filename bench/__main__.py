"""Dispatch ``python -m bench <name> [args...]``: ``all`` runs every benchmark and prints one table
(``bench/run.py``); the others run one script (``bench/<name>_bench.py``)."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

# every bench/<name>_bench.py is `python -m bench <name>`; `all` is the harness
BENCHES = {"all": "bench.run", **{p.stem.removesuffix("_bench"): f"bench.{p.stem}"
                                  for p in sorted(Path(__file__).parent.glob("*_bench.py"))}}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m bench {{{','.join(BENCHES)}}} [args...]   (all [--quick] [--markdown]: every "
              "figure with its baseline, one table)", file=sys.stderr)
        return 2
    bench_main = importlib.import_module(BENCHES[argv[0]]).main
    if inspect.signature(bench_main).parameters:
        return int(bench_main(argv[1:]) or 0)
    saved = sys.argv  # a main() that parses sys.argv itself (pop_bench)
    sys.argv = [f"python -m bench {argv[0]}", *argv[1:]]
    try:
        return int(bench_main() or 0)
    finally:
        sys.argv = saved


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
