"""The `edgelab` command line.

``edgelab serve`` starts the stack (see :mod:`edge.control.stack.supervisor`); the other commands are thin clients of
the running stack's admin API (``http://127.0.0.1:9001/edgelab/v1``)::

    edgelab serve [--distribution FILE] [--settings FILE] [--pop NAME=PORT ...] [--watch]
    edgelab pops                                   list POPs (name, region, URL)
    edgelab invalidate '/img/*' ... [--pop IAD]    CloudFront-style invalidation
    edgelab reset                                  drop warm environments and every POP's cache
    edgelab logs FUNCTION [--request-id ID] [--tail N] [--region R]
    edgelab metrics                                counters per function/version and per POP
    edgelab generate-event -e origin-request --uri /x -H 'Accept: */*'   a Lambda@Edge event, as the POPs build it
    edgelab invoke NAME[:QUALIFIER] -e viewer-request --uri /x           invoke with such an event (or --payload)
    edgelab loadtest cold-warm [--users N --duration S --pop NAME --api URL]  locust run + report folder
    edgelab queue {list,create,show,messages,send,purge,delete,stats}    local queues, async statistics
    edgelab cff {test,create,publish,list}         CloudFront Functions (test FILE EVENT... needs no stack)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edge.control.cli.api_client import call_api
from edge.control.stack.config import REPO_ROOT

DEFAULT_API = os.environ.get("EDGELAB_API", "http://127.0.0.1:9001")


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the whole stack (origin demo, control plane, POPs)")
    p.add_argument("--state-dir", default=None, help="registry, code store, logs (default: .edgelab/ or the settings' state_dir)")
    p.add_argument("--distribution", help="CloudFront DistributionConfig JSON (get-distribution-config output)")
    p.add_argument("--settings", help="local settings TOML (POPs, regions, latency, functions...)")
    p.add_argument("--pop", action="append", default=[], metavar="NAME=PORT[,HTTPS_PORT]",
                   help="override a POP's port (and HTTPS port; without it, that POP has no HTTPS listener)")
    p.add_argument("--api-port", type=int, default=None, help="Lambda API / admin port (default 9001)")
    p.add_argument("--origin-port", type=int, default=8000, help="demo origin port (demo mode only)")
    p.add_argument("--no-origin", action="store_true", help="do not start the demo origin")
    p.add_argument("--watch", action="store_true", help="republish declared functions when their files change")
    p.add_argument("--log-level", default="INFO")


def _add_clients(sub: argparse._SubParsersAction) -> None:
    for name, help_ in (("pops", "list the POPs"), ("reset", "drop warm environments and caches"),
                        ("metrics", "print metrics as JSON"), ("status", "print the stack's status")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--api", default=DEFAULT_API)
    p = sub.add_parser("invalidate", help="invalidate paths in every POP (or one)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--pop", default=None)
    p.add_argument("--api", default=DEFAULT_API)
    p = sub.add_parser("logs", help="read a function's logs")
    p.add_argument("function")
    p.add_argument("--request-id", default=None)
    p.add_argument("--tail", type=int, default=50)
    p.add_argument("--region", default=None)
    p.add_argument("--api", default=DEFAULT_API)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgelab", description="A local Lambda@Edge-style CDN.")
    sub = parser.add_subparsers(dest="command", required=True)
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
    if args.command in ("metrics", "status"):
        path = "/edgelab/v1/metrics" if args.command == "metrics" else "/edgelab/v1/status"
        print(json.dumps(_call(args.api, "GET", path), indent=2))
        return 0
    if args.command == "logs":
        q = [f"function={args.function}", f"tail={args.tail}"]
        if args.request_id:
            q.append(f"request_id={args.request_id}")
        if args.region:
            q.append(f"region={args.region}")
        events = _call(args.api, "GET", "/edgelab/v1/logs?" + "&".join(q))["events"]
        for ev in events:
            print(f"{ev.get('region', '')} {ev.get('group', '')} {ev['message']}".rstrip("\n"))
        return 0
    raise SystemExit(f"edgelab: unknown command {args.command}")


def main(argv: list[str] | None = None) -> int:
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
    return _client_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def repo_root() -> Path:
    """The checkout root (edge/ lives in it); used to find the demo distribution and functions/."""
    return REPO_ROOT
