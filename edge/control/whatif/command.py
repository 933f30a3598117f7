"""``edgelab whatif --distribution A.json --distribution B.json LOG``: the CLI of :mod:`edge.control.whatif.engine`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.cdn.config.distribution import load_distribution
from edge.cdn.config.policies import ConfigError
from edge.control.replay.readers import LogReadError

__all__ = ["add_whatif_parser", "run_whatif_command"]

MAX_DISTRIBUTIONS = 6


def add_whatif_parser(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("whatif", help="evaluate a request log offline against distributions (hit ratio, origin "
                                      "load, function invocations per POP)")
    p.add_argument("log", metavar="FILE", help="CloudFront standard log (.gz too), standard logging v2 JSON lines, "
                                               "or HAR 1.2")
    p.add_argument("--distribution", action="append", required=True, metavar="FILE",
                   help="a DistributionConfig JSON to evaluate (repeat to compare, labelled A, B, ...)")
    p.add_argument("--origin-headers", default=None, metavar="FILE",
                   help='JSON: path pattern -> Cache-Control or headers the origin sends ({"/img/*": "max-age=600"}); '
                        "default: none (DefaultTTL)")
    p.add_argument("--processes", type=int, default=None,
                   help="worker processes (default: every core; 1: in this process)")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report here (and the chart beside it as "
                                                       "FILE.svg); default: print it")
    p.add_argument("--html", metavar="FILE", help="write the HTML report (chart inline) here")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of Markdown")


def run_whatif_command(args: argparse.Namespace) -> int:
    from edge.control.whatif.engine import load_origin_headers, run_whatif
    from edge.control.whatif.report import as_json, chart_svg, html_report, markdown_report

    if len(args.distribution) > MAX_DISTRIBUTIONS:
        print(f"edgelab whatif: at most {MAX_DISTRIBUTIONS} distributions at once", file=sys.stderr)
        return 2
    if args.processes is not None and args.processes < 1:
        print("edgelab whatif: --processes must be at least 1", file=sys.stderr)
        return 2
    labels = [chr(ord("A") + i) for i in range(len(args.distribution))]
    sources = dict(zip(labels, args.distribution, strict=True))
    docs: dict[str, Any] = {}
    for label, path in list(sources.items()):
        try:  # refuse a bad distribution here, with the loader's message
            dist = load_distribution(path)
            docs[label] = json.loads(Path(path).read_bytes())
        except ConfigError as exc:
            print(f"edgelab whatif: distribution {label} ({path}): {exc}", file=sys.stderr)
            return 2
        sources[label] = f"{path} ({dist.id}, {len(dist.all_behaviors)} behaviors)"
    try:
        headers = load_origin_headers(args.origin_headers)
        result = run_whatif(args.log, docs, processes=args.processes, origin_headers=headers)
    except (OSError, ValueError, LogReadError) as exc:
        print(f"edgelab whatif: {exc}", file=sys.stderr)
        return 2
    try:
        if args.html:
            Path(args.html).write_text(html_report(result, sources))
        if args.json:
            print(json.dumps(as_json(result, sources), indent=2))
        elif args.markdown:
            chart = Path(args.markdown).with_suffix(".svg")
            chart.write_text(chart_svg(result))
            Path(args.markdown).write_text(markdown_report(result, sources, chart.name))
            print(f"wrote {args.markdown} and {chart}" + (f" and {args.html}" if args.html else ""))
        else:
            print(markdown_report(result, sources))
    except OSError as exc:
        print(f"edgelab whatif: cannot write the report: {exc}", file=sys.stderr)
        return 2
    if result.stats.bad:
        print(f"edgelab whatif: {result.stats.bad:,} bad lines skipped (see the report's first line)", file=sys.stderr)
    return 0
