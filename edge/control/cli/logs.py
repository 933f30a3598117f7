"""`edgelab logs`: a function's (or a log group's) events from every region in one view, through the running
stack's admin API (``GET /edgelab/v1/logs``, :mod:`edge.control.logs_api.merged`)::

    edgelab logs                                   the log groups (by their AWS names) and their regions
    edgelab logs NAME [--tail N] [--since 10m] [--region R] [--request-id ID] [--follow]

NAME is a function (``/aws/lambda/NAME``, ``/aws/lambda/us-east-1.NAME`` in every POP's region, a CloudFront
function's ``/aws/cloudfront/function/NAME``, and the validation errors naming it) or a log group name
(``/aws/cloudfront/LambdaEdge/<DistributionId>``...). Each line: time (UTC), POP, region, group, message; a
multi-line message (a traceback) follows indented, with the function's own file names. ``--request-id`` takes a
Lambda request id or the ``X-Amz-Cf-Id`` a viewer saw. An unknown name is an error (exit status 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from edge.control.cli.api_client import call_api

__all__ = ["add_logs_command", "format_event", "parse_since", "run_logs_command"]

FOLLOW_INTERVAL_S = 0.5
FOLLOW_MARGIN_MS = 5_000  # events reach the files up to a flush late: ask again from a bit before the last one
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_since(value: str, now_ms: int | None = None) -> int:
    """``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``1d``, ``1w``, ``500ms``), an ISO 8601
    time (UTC when it names no zone) or epoch milliseconds. Returns epoch ms; ``ValueError`` otherwise."""
    text = value.strip()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    m = _DURATION.match(text)
    if m:
        return now - int(float(m["n"]) * _UNIT_MS[m["unit"]])
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {value!r}: expected a duration (30s, 10m, 2h, 1d), an ISO 8601 time "
                         "(2026-12-04T22:00:00Z) or epoch milliseconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _since(value: str) -> int:
    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_OPTIONS = ("-h", "--help", "--request-id", "--tail", "--since", "--region", "--follow", "-f", "--api")


def attached_values(argv: list[str]) -> list[str]:
    """``logs ... --request-id VALUE`` as ``--request-id=VALUE`` when VALUE starts with ``-`` and is no option of the
    command (nor an abbreviation of one): an X-Amz-Cf-Id is URL-safe base64 and starts with ``-`` once in 64 ids,
    which argparse would otherwise refuse ("expected one argument")."""
    out = list(argv)
    for i in range(len(out) - 2, -1, -1):
        value = out[i + 1]
        if out[i] == "--request-id" and value.startswith("-") and not any(o.startswith(value) for o in _OPTIONS):
            out[i:i + 2] = [f"--request-id={value}"]
    return out


def add_logs_command(sub: argparse._SubParsersAction, default_api: str) -> None:
    p = sub.add_parser("logs", help="read logs: a function's from every region, or a log group's")
    p.add_argument("name", nargs="?", default="",
                   help="function name or log group name (/aws/lambda/us-east-1.NAME, /aws/cloudfront/LambdaEdge/"
                        "DIST...); none: list the log groups")
    p.add_argument("--request-id", default=None,
                   help="only this invocation: a Lambda request id, or the X-Amz-Cf-Id header a viewer got")
    p.add_argument("--tail", type=int, default=None,
                   help="the last N events (default 50; with --since: every event since then)")
    p.add_argument("--since", type=_since, default=None, metavar="WHEN",
                   help="events from WHEN on: 30s, 10m, 2h, 1d ago, an ISO 8601 time (UTC) or epoch ms")
    p.add_argument("--region", default=None, help="only this region (e.g. eu-central-1 for FRA)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl+C")
    p.add_argument("--api", default=default_api, help="the stack's API (default %(default)s, or $EDGELAB_API)")


def format_event(ev: dict[str, Any]) -> str:
    """One event: ``time pop region group  message``; the lines after a multi-line message's first (a traceback,
    whose lines the runtime joins with CR and indents with no-break spaces) follow indented by four spaces."""
    text = str(ev.get("message", "")).replace("\u00a0", " ").rstrip("\r\n")
    first, *rest = text.splitlines() or [""]
    head = f"{ev.get('time', '')} {ev.get('pop', '-'):<4} {ev.get('region', ''):<14} {ev.get('group', '')}  {first}"
    if not rest:
        return head
    return head + "\n" + "\n".join(f"    {line}" for line in rest) + "\n"


def _query(args: argparse.Namespace, *, since: int | None, tail: int) -> str:
    q: dict[str, str] = {"name": args.name, "tail": str(tail)}
    if args.request_id:
        q["request_id"] = args.request_id
    if args.region:
        q["region"] = args.region
    if since is not None:
        q["since"] = str(since)
    return "/edgelab/v1/logs?" + urllib.parse.urlencode(q)


def _list_groups(args: argparse.Namespace) -> int:
    groups = call_api(args.api, "GET", "/edgelab/v1/logs?" + urllib.parse.urlencode({"name": ""}))["groups"]
    if not groups:
        print("no log groups yet: they appear with a function's first invocation", file=sys.stderr)
        return 0
    for g in groups:
        last = g.get("last_event_ms")
        when = dt.datetime.fromtimestamp(last / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last else "-"
        print(f"{g['group']:56} {g['region']:16} last event {when}")
    return 0


def run_logs_command(args: argparse.Namespace, *, sleep: Callable[[float], None] = time.sleep,
                     rounds: int | None = None) -> int:
    """Print the events; with ``--follow`` keep polling (``rounds``: how many polls, for tests; None = until
    interrupted)."""
    if not args.name:
        return _list_groups(args)
    tail = args.tail if args.tail is not None else (0 if args.since is not None else 50)
    found = call_api(args.api, "GET", _query(args, since=args.since, tail=tail))
    events = found["events"]
    for ev in events:
        print(format_event(ev), flush=True)
    if not events and not args.follow:
        print(f"no events in {', '.join(found['groups'])}"
              + (" for that request id" if args.request_id else "") + (" since then" if args.since else ""),
              file=sys.stderr)
    if not args.follow:
        return 0
    seen = {ev["id"]: ev["timestamp"] for ev in events}  # printed events the next query may return again
    last = max(seen.values(), default=int(time.time() * 1000))
    n = 0
    try:
        while rounds is None or n < rounds:
            n += 1
            sleep(FOLLOW_INTERVAL_S)
            since = last - FOLLOW_MARGIN_MS
            for ev in call_api(args.api, "GET", _query(args, since=since, tail=0))["events"]:
                if ev["id"] not in seen:
                    print(format_event(ev), flush=True)
                    seen[ev["id"]] = ev["timestamp"]
                    last = max(last, ev["timestamp"])
            seen = {i: ts for i, ts in seen.items() if ts >= last - FOLLOW_MARGIN_MS}  # older ones cannot return
    except KeyboardInterrupt:
        return 0
    return 0
