"""`edgelab queue ...`: local queues (DLQs, destinations, event sources) and async delivery statistics, through
the running stack's admin API (``/edgelab/v1/queues``, ``/edgelab/v1/async``)::

    edgelab queue list
    edgelab queue create NAME [--visibility-timeout 30]
    edgelab queue show NAME
    edgelab queue messages NAME [--max 10] [--delete]     read (and optionally remove) messages
    edgelab queue send NAME BODY
    edgelab queue purge NAME
    edgelab queue delete NAME
    edgelab queue stats                                    async counters per function, queue depths
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from edge.control.cli.api_client import call_api

__all__ = ["add_queue_commands", "run_queue_command"]


def add_queue_commands(sub: argparse._SubParsersAction, default_api: str) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", default=default_api, help="the stack's API (default %(default)s, or $EDGELAB_API)")
    p = sub.add_parser("queue", help="local queues (DLQs, destinations, event sources) and async statistics")
    qsub = p.add_subparsers(dest="queue_command", required=True)
    qsub.add_parser("list", help="list local queues", parents=[common])
    c = qsub.add_parser("create", help="create a local queue (arn:aws:sqs:us-east-1:000000000000:NAME)",
                        parents=[common])
    c.add_argument("name", help="queue name")
    c.add_argument("--visibility-timeout", type=float, default=30.0,
                   help="seconds a received message stays invisible (default 30)")
    for name, help_ in (("show", "one queue"), ("purge", "delete every message"), ("delete", "delete the queue")):
        qsub.add_parser(name, help=help_, parents=[common]).add_argument("name", help="queue name")
    m = qsub.add_parser("messages", help="read messages (oldest first)", parents=[common])
    m.add_argument("name", help="queue name")
    m.add_argument("--max", type=int, default=10, help="at most this many messages (default 10)")
    m.add_argument("--delete", action="store_true", help="remove the messages printed")
    s = qsub.add_parser("send", help="send a message", parents=[common])
    s.add_argument("name", help="queue name")
    s.add_argument("body", help="message body")
    qsub.add_parser("stats", help="async invocation counters and queue depths", parents=[common])


def _call(api: str, method: str, path: str, body: object | None = None) -> Any:
    return call_api(api, method, "/edgelab/v1" + path, body)


def _print_queue(q: dict[str, Any]) -> None:
    age = "-" if q["oldest_age_s"] is None else f"{q['oldest_age_s']:.1f}s"
    print(f"{q['name']:24} messages {q['messages']:6}  visible {q['visible']:6}  oldest {age:>8}  {q['arn']}")


def run_queue_command(args: argparse.Namespace) -> int:
    cmd, api = args.queue_command, args.api
    name = urllib.parse.quote(getattr(args, "name", "") or "", safe="")
    if cmd == "list":
        queues = _call(api, "GET", "/queues")["queues"]
        for q in queues:
            _print_queue(q)
        if not queues:
            print("no queues yet: `edgelab queue create NAME` makes one (or a DLQ / destination ARN "
                  "arn:aws:sqs:us-east-1:000000000000:NAME in a function's configuration)")
    elif cmd == "create":
        _print_queue(_call(api, "POST", "/queues", {"name": args.name, "visibility_timeout": args.visibility_timeout}))
    elif cmd == "show":
        _print_queue(_call(api, "GET", f"/queues/{name}"))
    elif cmd == "messages":
        query = urllib.parse.urlencode({"max": args.max, "delete": "true" if args.delete else "false"})
        for msg in _call(api, "GET", f"/queues/{name}/messages?{query}")["messages"]:
            print(json.dumps(msg))
    elif cmd == "send":
        print(_call(api, "POST", f"/queues/{name}/messages", {"body": args.body})["MessageId"])
    elif cmd == "purge":
        print(f"purged {_call(api, 'POST', f'/queues/{name}/purge')['purged']} message(s)")
    elif cmd == "delete":
        _call(api, "DELETE", f"/queues/{name}")
        print(f"deleted {args.name}")
    elif cmd == "stats":
        print(json.dumps(_call(api, "GET", "/async"), indent=2))
    return 0
