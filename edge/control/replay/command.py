"""The CLI of ``edgelab replay FILE`` and ``edgelab generate-log``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_replay_parsers", "run_generate_command", "run_replay_command"]


def add_replay_parsers(sub: argparse._SubParsersAction[Any], default_api: str) -> None:
    p = sub.add_parser("replay", help="send a request log to the running stack's POPs and compare X-Cache/status "
                                      "with the log")
    p.add_argument("log", metavar="FILE", help="CloudFront standard log (.gz too), standard logging v2 JSON lines, "
                                               "or HAR 1.2")
    p.add_argument("--speed", type=float, default=1.0,
                   help="time factor: 2 replays twice as fast as logged, 0 as fast as possible (default 1)")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight at most (default 32)")
    p.add_argument("--pop-map", metavar="FILE", help='JSON/TOML: edge location prefix -> POP ({"LHR": "FRA", '
                                                     '"*": "IAD"}); default: nearest of the stack\'s POPs by continent')
    p.add_argument("--stack", metavar="URL", default=default_api,
                   help="the stack's API, whose POPs are replayed to (default %(default)s, or $EDGELAB_API)")
    p.add_argument("--pop", action="append", default=[], metavar="NAME=URL",
                   help="replay to this POP URL instead of asking the stack (repeat for each POP)")
    p.add_argument("--distribution", metavar="FILE",
                   help="the stack's DistributionConfig JSON: group the report by its behaviors' path patterns")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    p.add_argument("--list", type=int, default=20, dest="max_listed",
                   help="disagreeing requests listed at most (default 20)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    g = sub.add_parser("generate-log", help="synthetic CloudFront traffic (Zipf popularity, POPs, diurnal rate), "
                                            "deterministic per seed")
    g.add_argument("--lines", type=int, default=10_000, help="requests (default 10000)")
    g.add_argument("--seed", type=int, default=1, help="random seed: same seed, same log (default 1)")
    g.add_argument("--format", choices=("tsv", "json", "har"), default="tsv",
                   help="tsv: legacy standard log; json: standard logging v2 JSON lines; har: HAR 1.2")
    g.add_argument("--out", metavar="FILE", help="write here (gzip when it ends with .gz); default: stdout")
    g.add_argument("--catalogue", type=int, default=5_000, help="distinct objects (default 5000)")
    g.add_argument("--zipf", type=float, default=0.9, help="Zipf exponent of popularity (default 0.9)")
    g.add_argument("--duration", type=float, default=3600.0, help="seconds the log spans (default 3600)")
    g.add_argument("--start", type=float, default=None,
                   help="epoch seconds of the first request (default 2026-01-01T00:00:00Z)")
    g.add_argument("--host", default=None, help="cs(Host) (default d111111abcdef8.cloudfront.net)")
    g.add_argument("--prefix", default="", help="put in front of every path (e.g. /static to stay in a behavior)")
    g.add_argument("--ttl", type=float, default=86_400.0,
                   help="TTL of the generator's own cache model for the recorded Hit/Miss (default 86400)")


def run_generate_command(args: argparse.Namespace) -> int:
    from edge.control.replay.generator import GeneratorSpec, write_log, write_log_file

    if args.lines < 0 or args.catalogue < 1 or args.duration <= 0 or args.zipf < 0:
        print("edgelab generate-log: --lines >= 0, --catalogue >= 1, --duration > 0 and --zipf >= 0",
              file=sys.stderr)
        return 2
    if args.prefix and not args.prefix.startswith("/"):
        print("edgelab generate-log: --prefix must start with /", file=sys.stderr)
        return 2
    spec = GeneratorSpec(lines=args.lines, seed=args.seed, catalogue=args.catalogue, zipf=args.zipf,
                         duration=args.duration, prefix=args.prefix.rstrip("/"), ttl=args.ttl,
                         **({"start": args.start} if args.start is not None else {}),
                         **({"host": args.host} if args.host else {}))
    try:
        if args.out:
            n = write_log_file(spec, args.format, Path(args.out))
            print(f"wrote {n:,} requests to {args.out} ({args.format})", file=sys.stderr)
        else:
            write_log(spec, args.format, sys.stdout.buffer)
    except OSError as exc:
        print(f"edgelab generate-log: {exc}", file=sys.stderr)
        return 2
    return 0


def _pops(args: argparse.Namespace) -> dict[str, str]:
    if args.pop:
        out = {}
        for item in args.pop:
            name, sep, url = item.partition("=")
            if not sep or not name or not url.startswith(("http://", "https://")):
                raise ValueError(f"--pop {item!r}: expected NAME=http://HOST:PORT")
            out[name.upper()] = url.rstrip("/")
        return out
    from edge.control.cli.api_client import call_api

    return {p["name"]: p["url"].rstrip("/") for p in call_api(args.stack, "GET", "/edgelab/v1/pops")["pops"]}


def run_replay_command(args: argparse.Namespace) -> int:
    from edge.cdn.config.distribution import load_distribution
    from edge.cdn.config.plan import compile_distribution
    from edge.cdn.config.policies import ConfigError
    from edge.control.replay.popmap import load_pop_map
    from edge.control.replay.readers import LogReadError, read_log
    from edge.control.replay.replay import replay

    if args.speed < 0 or args.concurrency < 1 or args.timeout <= 0:
        print("edgelab replay: --speed >= 0, --concurrency >= 1 and --timeout > 0", file=sys.stderr)
        return 2
    try:
        plan = compile_distribution(load_distribution(args.distribution), hooks=False) if args.distribution else None
        pops = _pops(args)
        pop_map = load_pop_map(args.pop_map, list(pops))
        records, stats = read_log(args.log)
    except (ConfigError, ValueError, LogReadError) as exc:
        print(f"edgelab replay: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"edgelab replay: {stats.summary()}: nothing to replay", file=sys.stderr)
        return 1
    report = asyncio.run(replay(records, pops, pop_map, speed=args.speed, concurrency=args.concurrency, plan=plan,
                                timeout=args.timeout, stats=stats, max_listed=args.max_listed))
    print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
    return 0
