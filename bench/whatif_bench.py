"""``edgelab whatif`` throughput: ``python -m bench whatif [--lines N] [--quick]``.

Generates a legacy CloudFront log (``edgelab generate-log``, seed 1, gzip-compressed as CloudFront delivers it;
1,000,000 lines, 200,000 with ``--quick``) and evaluates it against two distributions (the demo distribution and
the same with CachingOptimized on its default behavior, as ``edgelab whatif --distribution A --distribution B``
does), first in one process, then with one worker per core (the POPs partitioned, ``multiprocess``), in the same
run. Prints lines per second for each, the ratio, the CPU seconds each used, and whether the N-process run
evaluated 1,000,000 lines in under a minute (the issue's target; ``--quick`` scales the target with the lines).
Both runs must produce the same figures (checked here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from edge.control.replay.generator import GeneratorSpec, write_log_file
from edge.control.whatif.engine import run_whatif
from edge.control.whatif.report import as_json

ROOT = Path(__file__).resolve().parents[1]
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench whatif")
    p.add_argument("--lines", type=int, default=None, help="log lines (default 1,000,000; --quick 200,000)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="N (default: every core)")
    args = p.parse_args(argv)
    lines = args.lines or (200_000 if args.quick else 1_000_000)
    demo = json.loads((ROOT / "deploy" / "demo" / "distribution.json").read_text())
    optimized = json.loads(json.dumps(demo))
    cfg = optimized.get("DistributionConfig", optimized)
    cfg["DefaultCacheBehavior"]["CachePolicyId"] = CACHING_OPTIMIZED
    with tempfile.TemporaryDirectory(prefix="edgelab-whatif-bench-") as tmp:
        log = Path(tmp) / "bench.log.gz"
        t = time.perf_counter()
        write_log_file(GeneratorSpec(lines=lines, seed=1, catalogue=50_000), "tsv", log)
        print(f"generated {lines:,} lines in {time.perf_counter() - t:.1f} s ({log.stat().st_size / 1e6:.1f} MB gz)")
        figures = {}
        for n in (1, args.processes):
            c0 = _cpu()
            result = run_whatif(log, {"A": demo, "B": optimized}, processes=n)
            cpu = _cpu() - c0
            figures[n] = (result.seconds, as_json(result, {})["results"])
            print(f"whatif {n} process{'es' if n > 1 else ''}: {lines / result.seconds:,.0f} lines/s "
                  f"({result.seconds:.1f} s wall, {cpu:.1f} s CPU)")
    same = figures[1][1] == figures[args.processes][1]
    one, many = figures[1][0], figures[args.processes][0]
    limit = 60.0 * lines / 1_000_000
    print(f"whatif ratio {args.processes} vs 1 process: {one / many:.2f}x (same figures: {'yes' if same else 'NO'})")
    print(f"whatif {lines:,} lines in {many:.1f} s with {args.processes} processes, target < {limit:.0f} s: "
          f"{'PASS' if many < limit and same else 'FAIL'}")
    return 0 if same else 1


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
