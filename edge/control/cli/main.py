"""The `edgelab` command line.

``edgelab serve`` starts the stack (see :mod:`edge.control.stack.supervisor`); the other commands are thin clients of
the running stack's admin API (``http://127.0.0.1:9001/edgelab/v1``)::

    edgelab serve [--distribution FILE] [--settings FILE] [--pop NAME=PORT ...] [--watch] [--realistic-cold-starts]
    edgelab chaos {apply FILE,status,clear}        edge chaos: faults by path, POP and time window, live
    edgelab pops                                   list POPs (name, region, URL)
    edgelab invalidate '/img/*' ... [--pop IAD]    CloudFront-style invalidation
    edgelab reset                                  drop warm environments and every POP's cache
    edgelab logs [NAME] [--request-id ID|CF-ID] [--tail N] [--since 10m] [--region R] [--follow]
    edgelab metrics [--json]                       requests and hit ratio per POP, invocations per function
    edgelab generate-event origin-request --uri /x -H 'Accept: */*'   a Lambda@Edge event, as the POPs build it
    edgelab invoke NAME[:QUALIFIER] -e viewer-request --uri /x           invoke with such an event (or --payload)
                                                   and say what a POP would answer (502 LambdaValidationError...)
    edgelab loadtest cold-warm [--users N --duration S --pop NAME --api URL]  locust run + report folder
    edgelab queue {list,create,show,messages,send,purge,delete,stats}    local queues, async statistics
    edgelab cff {test,create,publish,list}         CloudFront Functions (test FILE EVENT... needs no stack)
    edgelab sign-url URL --key-pair-id K --private-key key.pem      a signed URL (sign-cookies: signed cookies)
    edgelab replay LOG [--speed X] [--pop-map FILE] [--distribution FILE] [--json]   a log against the POPs
    edgelab whatif --distribution A.json --distribution B.json LOG [--html F]    offline cache policy comparison
    edgelab generate-log --lines N --seed S --format {tsv,json,har} [--out F]    synthetic CloudFront traffic
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edge.control.cli.api_client import call_api
from edge.control.cli.metrics import print_metrics_summary
from edge.control.stack.config import REPO_ROOT

DEFAULT_API = os.environ.get("EDGELAB_API", "http://127.0.0.1:9001")
API_HELP = "the stack's API (default %(default)s, or $EDGELAB_API)"


def _version() -> str:
    try:
        return version("edgelab")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed: pip install -e .)"


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the whole stack (origin demo, control plane, POPs)")
    p.add_argument("--state-dir", default=None, help="registry, code store, logs (default: .edgelab/ or the settings' state_dir)")
    p.add_argument("--distribution", help="CloudFront DistributionConfig JSON (get-distribution-config output)")
    p.add_argument("--origin", default=None, metavar="URL",
                   help="your own app (e.g. http://127.0.0.1:3000) behind the POPs: writes a minimal distribution "
                        "for it into the state directory and uses it (instead of --distribution)")
    p.add_argument("--settings", help="local settings TOML (POPs, regions, latency, functions...)")
    p.add_argument("--pop", action="append", default=[], metavar="NAME=PORT[,HTTPS_PORT]",
                   help="override a POP's port (and HTTPS port; without it, that POP has no HTTPS listener)")
    p.add_argument("--api-port", type=int, default=None, help="Lambda API / admin port (default 9001)")
    p.add_argument("--origin-port", type=int, default=8000, help="demo origin port (demo mode only)")
    p.add_argument("--no-origin", action="store_true", help="do not start the demo origin")
    p.add_argument("--watch", action="store_true",
                   help="republish declared functions when their files change; their associations then run the "
                        "newest version whatever version they pin (the console says what was re-pointed)")
    p.add_argument("--realistic-cold-starts", action="store_true",
                   help="add a modelled Init delay (per runtime, memory and package size, calibrated on published "
                        "AWS figures) to every cold start: [lambda] realistic_cold_starts")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING or ERROR")


def _add_clients(sub: argparse._SubParsersAction) -> None:
    for name, help_ in (("pops", "list the POPs"), ("reset", "drop warm environments and caches"),
                        ("status", "print the stack's status")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--api", default=DEFAULT_API, help=API_HELP)
    p = sub.add_parser("metrics", help="requests, hit ratio and errors per POP; invocations, cold starts and "
                                       "durations per function")
    p.add_argument("--json", action="store_true", help="everything, as the admin API's JSON")
    p.add_argument("--api", default=DEFAULT_API, help=API_HELP)
    p = sub.add_parser("invalidate", help="invalidate paths in every POP (or one)")
    p.add_argument("paths", nargs="+", help="CloudFront invalidation paths ('/img/*', '/index.html')")
    p.add_argument("--pop", default=None, help="only this POP (default: every POP)")
    p.add_argument("--api", default=DEFAULT_API, help=API_HELP)
    from edge.control.cli.logs import add_logs_command

    add_logs_command(sub, DEFAULT_API)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgelab", description="A local Lambda@Edge-style CDN.")
    parser.add_argument("--version", action="version", version=f"edgelab {_version()}",
                        help="print edgelab's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_clients(sub)
    from edge.control.cli.events import add_event_commands

    add_event_commands(sub, DEFAULT_API)
    from edge.control.loadtest.command import add_loadtest_parser

    add_loadtest_parser(sub)
    from edge.control.cli.queues import add_queue_commands

    add_queue_commands(sub, DEFAULT_API)
    from edge.control.cli.cff import add_cff_commands

    add_cff_commands(sub)
    from edge.control.cli.sign import add_sign_commands

    add_sign_commands(sub)
    from edge.control.cli.chaos import add_chaos_commands
    from edge.control.replay.command import add_replay_parsers
    from edge.control.whatif.command import add_whatif_parser

    add_chaos_commands(sub, DEFAULT_API)
    add_replay_parsers(sub, DEFAULT_API)
    add_whatif_parser(sub)
    return parser


_call = call_api


def _client_command(args: argparse.Namespace) -> int:
    if args.command == "pops":
        for pop in _call(args.api, "GET", "/edgelab/v1/pops")["pops"]:
            print(f"{pop['name']:6} {pop['region']:16} {pop['url']}")
        return 0
    if args.command == "invalidate":
        body = {"paths": args.paths, **({"pop": args.pop} if args.pop else {})}
        print(json.dumps(_call(args.api, "POST", "/edgelab/v1/invalidations", body), indent=2))
        return 0
    if args.command == "reset":
        print(json.dumps(_call(args.api, "POST", "/edgelab/v1/reset", {}), indent=2))
        return 0
    if args.command == "status":
        print(json.dumps(_call(args.api, "GET", "/edgelab/v1/status"), indent=2))
        return 0
    if args.command == "metrics":
        data = _call(args.api, "GET", "/edgelab/v1/metrics")
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            print_metrics_summary(data)
        return 0
    if args.command == "logs":
        from edge.control.cli.logs import run_logs_command

        return run_logs_command(args)
    raise SystemExit(f"edgelab: unknown command {args.command}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["logs"]:
        from edge.control.cli.logs import attached_values

        argv = attached_values(argv)
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from edge.control.stack.serve import serve  # heavy imports only when serving

        return serve(args)
    if args.command == "loadtest":
        from edge.control.loadtest.command import run_loadtest

        return run_loadtest(args)
    if args.command in ("generate-event", "invoke"):
        from edge.control.cli.events import run_event_command

        return run_event_command(args)
    if args.command == "queue":
        from edge.control.cli.queues import run_queue_command

        return run_queue_command(args)
    if args.command == "cff":
        from edge.control.cli.cff import run_cff_command

        return run_cff_command(args)
    if args.command == "chaos":
        from edge.control.cli.chaos import run_chaos_command

        return run_chaos_command(args)
    if args.command in ("sign-url", "sign-cookies"):
        from edge.control.cli.sign import run_sign_command

        return run_sign_command(args)
    if args.command in ("replay", "generate-log"):
        from edge.control.replay.command import run_generate_command, run_replay_command

        return run_replay_command(args) if args.command == "replay" else run_generate_command(args)
    if args.command == "whatif":
        from edge.control.whatif.command import run_whatif_command

        return run_whatif_command(args)
    return _client_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def repo_root() -> Path:
    """The checkout root (edge/ lives in it); used to find the demo distribution and functions/."""
    return REPO_ROOT
