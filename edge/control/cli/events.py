"""`edgelab generate-event` and `edgelab invoke`: Lambda@Edge events built exactly as the POPs build them
(:mod:`edge.cdn.lambda_edge.events`), printed or sent to a function through the running stack's Lambda API, like
``sam local generate-event cloudfront ...`` / ``sam local invoke`` but with edgelab's own event builder.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

from edge.cdn.lambda_edge.events import EventConfig, build_event_dict
from edge.cdn.lambda_edge.rules import EVENT_TYPES, RESPONSE_EVENTS
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse

DEMO_DISTRIBUTION_DOMAIN = "d111111abcdef8.cloudfront.net"
DEMO_DISTRIBUTION_ID = "EDFDVBD6EXAMPLE"


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


def add_event_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", "-e", dest="event_type", choices=EVENT_TYPES, default="viewer-request")
    p.add_argument("--method", default="GET")
    p.add_argument("--uri", default="/")
    p.add_argument("--querystring", default="")
    p.add_argument("--header", "-H", action="append", type=_header, default=[], metavar="'Name: value'")
    p.add_argument("--client-ip", default="203.0.113.178")
    p.add_argument("--body", default=None, help="request body (with --include-body)")
    p.add_argument("--include-body", action="store_true")
    p.add_argument("--status", type=int, default=200, help="response status (response events)")
    p.add_argument("--response-header", action="append", type=_header, default=[], metavar="'Name: value'")
    p.add_argument("--origin-domain", default="example.org", help="custom origin (origin events)")


def build_cli_event(args: argparse.Namespace) -> dict[str, object]:
    origin_side = args.event_type.startswith("origin")
    headers = list(args.header)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", args.origin_domain if origin_side else DEMO_DISTRIBUTION_DOMAIN))
    if origin_side and not any(k.lower() == "user-agent" for k, _ in headers):
        headers.append(("User-Agent", "Amazon CloudFront"))
    request = EdgeRequest(method=args.method.upper(), uri=args.uri, querystring=args.querystring, headers=headers,
                          client_ip=args.client_ip, body=args.body.encode() if args.body is not None else None,
                          origin=CustomOrigin(domain_name=args.origin_domain) if origin_side else None)
    response = EdgeResponse(status=args.status, headers=list(args.response_header)) \
        if args.event_type in RESPONSE_EVENTS else None
    request_id = base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()
    return build_event_dict(args.event_type, config=EventConfig(DEMO_DISTRIBUTION_DOMAIN, DEMO_DISTRIBUTION_ID,
                                                                request_id),
                            request=request, response=response, include_body=args.include_body)


def add_event_commands(sub: argparse._SubParsersAction, default_api: str) -> None:
    p = sub.add_parser("generate-event", help="print a Lambda@Edge event (as the POPs build it)")
    add_event_options(p)
    p = sub.add_parser("invoke", help="invoke a function with a Lambda@Edge event (or --payload) via the API")
    p.add_argument("function", help="NAME or NAME:QUALIFIER")
    p.add_argument("--payload", help="raw JSON payload instead of a generated event ('-' = stdin)")
    p.add_argument("--api", default=default_api)
    add_event_options(p)


def run_event_command(args: argparse.Namespace) -> int:
    if args.command == "generate-event":
        print(json.dumps(build_cli_event(args), indent=2))
        return 0
    if args.payload == "-":
        payload = sys.stdin.buffer.read()
    elif args.payload is not None:
        payload = args.payload.encode()
    else:
        payload = json.dumps(build_cli_event(args)).encode()
    name, _, qualifier = args.function.partition(":")
    url = f"{args.api.rstrip('/')}/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations"
    if qualifier:
        url += "?" + urllib.parse.urlencode({"Qualifier": qualifier})
    req = urllib.request.Request(url, data=payload, method="POST", headers={"X-Amz-Log-Type": "Tail"})
    try:
        with urllib.request.urlopen(req, timeout=960) as resp:
            body, headers = resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        print(f"edgelab: {exc.headers.get('x-amzn-ErrorType', exc.code)}: {exc.read().decode(errors='replace')}",
              file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"edgelab: cannot reach {args.api} ({exc.reason}); is `edgelab serve` running?", file=sys.stderr)
        return 1
    logs = headers.get("X-Amz-Log-Result")
    if logs:
        sys.stderr.write(base64.b64decode(logs).decode(errors="replace"))
    print(f"# executed version {headers.get('X-Amz-Executed-Version')}"
          + (f", function error: {headers['X-Amz-Function-Error']}" if headers.get("X-Amz-Function-Error") else ""),
          file=sys.stderr)
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        sys.stdout.write(body.decode(errors="replace"))
    return 1 if headers.get("X-Amz-Function-Error") else 0
