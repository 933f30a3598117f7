"""``edgelab chaos``: edge chaos scenarios on the running stack (the admin API's ``/edgelab/v1/chaos``).

    edgelab chaos apply FILE      validate the scenario TOML and inject its faults in every POP (replaces any)
    edgelab chaos status [--json] each POP's faults: pending / active / spent / expired, injections so far
    edgelab chaos clear           stop injecting everywhere
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge.control.cli.api_client import call_api

PATH = "/edgelab/v1/chaos"


def add_chaos_commands(sub: argparse._SubParsersAction, default_api: str) -> None:
    p = sub.add_parser("chaos", help="edge chaos: inject origin latency/errors/timeouts/refusals, forced cold "
                                     "starts and throttles by path, POP and time window")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    apply = verbs.add_parser("apply", help="apply a scenario file (TOML) to every POP")
    apply.add_argument("file", help="the scenario (see the README's 'Edge chaos and realistic cold starts')")
    status = verbs.add_parser("status", help="what each POP is injecting")
    status.add_argument("--json", action="store_true", help="the admin API's JSON")
    verbs.add_parser("clear", help="stop injecting faults")
    for v in (apply, status, verbs.choices["clear"]):
        v.add_argument("--api", default=default_api, help="the stack's API (default %(default)s, or $EDGELAB_API)")


def format_status(data: dict[str, Any]) -> list[str]:
    """One line per POP and fault for ``edgelab chaos status``."""
    lines: list[str] = []
    for pop, answer in sorted(data.get("pops", {}).items()):
        if not isinstance(answer, dict) or "error" in answer:
            lines.append(f"{pop}: {answer.get('error') if isinstance(answer, dict) else answer}")
            continue
        scenario = answer.get("scenario")
        counts = ", ".join(f"{k}={v}" for k, v in sorted((answer.get("counts") or {}).items())) or "none"
        if scenario is None:
            lines.append(f"{pop}: no scenario (faults injected since start: {counts})")
            continue
        lines.append(f"{pop}: scenario {scenario.get('name') or '(unnamed)'!r} (faults injected: {counts})")
        for f in scenario.get("faults", []):
            left = f" remaining={f['remaining']}" if "remaining" in f else ""
            lines.append(f"  #{f['index']} {f['state']:<8} injected={f['injected']}{left}  {f['description']}")
    return lines


def run_chaos_command(args: argparse.Namespace) -> int:
    if args.verb == "apply":
        path = Path(args.file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise SystemExit(f"edgelab: cannot read the scenario {path}: {exc.strerror}") from None
        data = call_api(args.api, "PUT", PATH, {"scenario": text})
        faults = data["scenario"]["faults"]
        print(f"applied {path} ({len(faults)} fault(s)) to {', '.join(sorted(data['pops']))}")
        for f in faults:
            print(f"  #{f['index']} {f['description']}  pops: {f['pops'] if f['pops'] == 'all' else ','.join(f['pops'])}")
        return 0
    if args.verb == "status":
        data = call_api(args.api, "GET", PATH)
        print(json.dumps(data, indent=2) if args.json else "\n".join(format_status(data)))
        return 0
    data = call_api(args.api, "DELETE", PATH)
    print("cleared: " + ", ".join(f"{pop} ({'had a scenario' if r.get('cleared') else 'none'})"
                                  for pop, r in sorted(data["pops"].items())))
    return 0
