"""`edgelab generate-event` and `edgelab invoke`: Lambda@Edge events built exactly as the POPs build them
(:mod:`edge.cdn.lambda_edge.events`), printed or sent to a function through the running stack's Lambda API, like
``sam local generate-event cloudfront ...`` / ``sam local invoke`` but with edgelab's own event builder.

``edgelab invoke`` on a Lambda@Edge event (built from the options, or a CloudFront event given with ``--payload``)
then checks the result as a POP does: the same outcome mapping (:func:`edge.cdn.lambda_edge.runner.outcome_error`)
and result validation (:func:`edge.cdn.lambda_edge.results.parse_result`), and says what the POP would answer,
e.g. ``502 LambdaValidationError`` with CloudFront's reason for a function that changed the read-only ``Host``
header (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-function-restrictions-all.html).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from edge.cdn.lambda_edge.events import EventConfig, build_event_dict, event_header_maps
from edge.cdn.lambda_edge.rules import EVENT_TYPES, REQUEST_EVENTS, RESPONSE_EVENTS
from edge.cdn.models import CustomOrigin, EdgeRequest, EdgeResponse
from edge.control.cli.api_client import signed_headers

DEMO_DISTRIBUTION_DOMAIN = "d111111abcdef8.cloudfront.net"
DEMO_DISTRIBUTION_ID = "EDFDVBD6EXAMPLE"


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), val.strip()


def add_event_options(p: argparse.ArgumentParser, *, positional_event: bool = False) -> None:
    if positional_event:  # `edgelab generate-event viewer-request` as well as `-e viewer-request`
        p.add_argument("event_type_arg", nargs="?", choices=EVENT_TYPES, metavar="EVENT_TYPE",
                       help=f"the event type ({', '.join(EVENT_TYPES)}); the same as -e")
    p.add_argument("--event", "-e", dest="event_type", choices=EVENT_TYPES, default=None,
                   help="the event type (default viewer-request)")
    p.add_argument("--method", default="GET", help="request method (default GET)")
    p.add_argument("--uri", default="/", help="request path; a '?query' part goes to the querystring, as on a POP")
    p.add_argument("--querystring", default=None, help="query string without '?' (or put it in --uri)")
    p.add_argument("--header", "-H", action="append", type=_header, default=[], metavar="'Name: value'",
                   help="a request header (repeatable)")
    p.add_argument("--client-ip", default="203.0.113.178", help="the viewer's IP address (clientIp)")
    p.add_argument("--body", default=None, help="request body (with --include-body)")
    p.add_argument("--include-body", action="store_true",
                   help="put the body in the event, as an association with IncludeBody does (request events)")
    p.add_argument("--status", type=int, default=200, help="response status (response events)")
    p.add_argument("--response-header", action="append", type=_header, default=[], metavar="'Name: value'",
                   help="a response header (response events, repeatable)")
    p.add_argument("--origin-domain", default="example.org", help="custom origin domain (origin events)")


@dataclass
class CliEvent:
    """A Lambda@Edge event and the request/response it was built from (what a POP validates the result against)."""

    event_type: str
    event: dict[str, Any]
    request: EdgeRequest
    response: EdgeResponse | None
    include_body: bool


def event_type_of(args: argparse.Namespace) -> str:
    positional = getattr(args, "event_type_arg", None)
    if positional and args.event_type and positional != args.event_type:
        raise SystemExit(f"edgelab: event type given twice ({positional} and -e {args.event_type}): give one")
    return positional or args.event_type or "viewer-request"


def split_uri(uri: str, querystring: str | None) -> tuple[str, str]:
    """``--uri`` and ``--querystring`` as a POP splits a request target: the path goes to ``uri``, what follows
    ``?`` to ``querystring`` (without the ``?``)."""
    path, sep, query = uri.partition("?")
    if sep and querystring is not None:
        raise SystemExit(f"edgelab: --uri {uri!r} has a query string and --querystring is given too: give one")
    if not path.startswith("/"):
        raise SystemExit(f"edgelab: --uri must start with '/', got {uri!r}")
    return path, query if sep else (querystring or "")


def build_cli_event(args: argparse.Namespace) -> CliEvent:
    event_type = event_type_of(args)
    origin_side = event_type.startswith("origin")
    uri, querystring = split_uri(args.uri, args.querystring)
    headers = list(args.header)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", args.origin_domain if origin_side else DEMO_DISTRIBUTION_DOMAIN))
    if origin_side and not any(k.lower() == "user-agent" for k, _ in headers):
        headers.append(("User-Agent", "Amazon CloudFront"))
    request = EdgeRequest(method=args.method.upper(), uri=uri, querystring=querystring, headers=headers,
                          client_ip=args.client_ip, body=args.body.encode() if args.body is not None else None,
                          origin=CustomOrigin(domain_name=args.origin_domain) if origin_side else None)
    response = EdgeResponse(status=args.status, headers=list(args.response_header)) \
        if event_type in RESPONSE_EVENTS else None
    request_id = base64.urlsafe_b64encode(secrets.token_bytes(40)).decode()
    include_body = args.include_body and event_type in REQUEST_EVENTS
    event = build_event_dict(event_type, config=EventConfig(DEMO_DISTRIBUTION_DOMAIN, DEMO_DISTRIBUTION_ID,
                                                            request_id),
                             request=request, response=response, include_body=include_body)
    return CliEvent(event_type, event, request, response, include_body)


def _flat_headers(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return []
    return [(str(e.get("key", name)), str(e.get("value", ""))) for name, entries in value.items()
            if isinstance(entries, list) for e in entries if isinstance(e, dict)]


def event_from_payload(payload: bytes) -> CliEvent | None:
    """The CloudFront event of a ``--payload`` (None when it is not one: then there is nothing to check)."""
    try:
        event = json.loads(payload)
        cf = event["Records"][0]["cf"]
        event_type = cf["config"]["eventType"]
        req = cf["request"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if event_type not in EVENT_TYPES or not isinstance(req, dict):
        return None
    body = None
    raw_body = req.get("body")
    if isinstance(raw_body, dict) and isinstance(raw_body.get("data"), str):
        data = raw_body["data"]
        try:
            body = base64.b64decode(data, validate=True) if raw_body.get("encoding") == "base64" else data.encode()
        except binascii.Error:
            body = None
    origin = None
    custom = (req.get("origin") or {}).get("custom") if isinstance(req.get("origin"), dict) else None
    if isinstance(custom, dict) and isinstance(custom.get("domainName"), str):
        origin = CustomOrigin(domain_name=custom["domainName"])
    request = EdgeRequest(method=str(req.get("method", "GET")), uri=str(req.get("uri", "/")),
                          querystring=str(req.get("querystring", "")), headers=_flat_headers(req.get("headers")),
                          client_ip=str(req.get("clientIp", "")), body=body, origin=origin)
    response = None
    if event_type in RESPONSE_EVENTS:
        resp = cf.get("response")
        if not isinstance(resp, dict):
            return None
        try:
            status = int(resp.get("status", 200))
        except (TypeError, ValueError):
            return None
        response = EdgeResponse(status=status, headers=_flat_headers(resp.get("headers")))
    return CliEvent(event_type, event, request, response, include_body=isinstance(raw_body, dict))


def add_event_commands(sub: argparse._SubParsersAction, default_api: str) -> None:
    p = sub.add_parser("generate-event", help="print a Lambda@Edge event (as the POPs build it)")
    add_event_options(p, positional_event=True)
    p = sub.add_parser("invoke", help="invoke a function with a Lambda@Edge event (or --payload) via the API, and "
                                      "say what a POP would answer")
    p.add_argument("function", help="NAME or NAME:QUALIFIER")
    p.add_argument("--payload", help="raw JSON payload instead of a generated event ('-' = stdin); a CloudFront "
                                     "event is checked as a POP checks it")
    p.add_argument("--api", default=default_api, help="the stack's API (default %(default)s, or $EDGELAB_API)")
    add_event_options(p)


def pop_verdict(cli_event: CliEvent, function: str, *, status: int, function_error: str | None, body: bytes,
                executed_version: str, error_type: str = "") -> tuple[bool, str]:
    """(ok, what a POP would answer) for one invocation of ``cli_event``: the Invoke API's answer (``status``,
    ``X-Amz-Function-Error``, ``body``) mapped as the POP's trigger runner maps the invocation core's result."""
    from edge.cdn.errors import LambdaError, LambdaExecutionError, LambdaLimitExceeded
    from edge.cdn.lambda_edge.results import GeneratedResponse, RequestResult, parse_result
    from edge.cdn.lambda_edge.runner import outcome_error
    from edge.invocation.models import InvocationResult, Outcome

    event_type = cli_event.event_type
    err: LambdaError | None = None
    if status == 429:
        err = LambdaLimitExceeded(f"{function} throttled ({error_type or 'TooManyRequestsException'})")
    elif status >= 300:
        err = LambdaExecutionError(f"{error_type or status}: {body.decode(errors='replace')[:300]}")
    elif function_error:
        try:
            etype = json.loads(body).get("errorType")
        except (ValueError, AttributeError):
            etype = None
        err = outcome_error(event_type, function, InvocationResult(
            Outcome.FUNCTION_ERROR, body, "", executed_version, error_type=etype or function_error))
    else:
        event_headers, response_headers = event_header_maps(cli_event.event)
        try:
            parsed = parse_result(event_type, body, original_request=cli_event.request,
                                  original_response=cli_event.response, include_body=cli_event.include_body,
                                  event_headers=event_headers, event_response_headers=response_headers)
        except LambdaError as exc:
            err = exc
        else:
            if isinstance(parsed, GeneratedResponse):
                where = "the viewer (not cached)" if event_type == "viewer-request" else "the viewer, and cached"
                return True, (f"the POP would answer {where} with the function's response: {parsed.response.status}"
                              f" (X-Cache: LambdaGeneratedResponse from cloudfront)")
            if isinstance(parsed, RequestResult):
                r = parsed.request
                target = "its cache and then the origin" if event_type == "viewer-request" else "the origin"
                query = f"?{r.querystring}" if r.querystring else ""
                return True, f"the POP would continue to {target} with {r.method} {r.uri}{query}"
            return True, f"the POP would send the viewer the function's response: {parsed.response.status}"
    assert err is not None
    reason = f": {err.detail}" if getattr(err, "detail", "") else ""
    extra = (" (the detail goes to the log group /aws/cloudfront/LambdaEdge/<DistributionId>)"
             if err.status == 502 else "")
    return False, f"the POP would answer {err.status} {err.x_cache.split(' from ')[0]}{reason}{extra}"


def run_event_command(args: argparse.Namespace) -> int:
    if args.command == "generate-event":
        print(json.dumps(build_cli_event(args).event, indent=2))
        return 0
    cli_event: CliEvent | None
    if args.payload == "-":
        payload = sys.stdin.buffer.read()
        cli_event = event_from_payload(payload)
    elif args.payload is not None:
        payload = args.payload.encode()
        cli_event = event_from_payload(payload)
    else:
        cli_event = build_cli_event(args)
        payload = json.dumps(cli_event.event).encode()
    name, _, qualifier = args.function.partition(":")
    url = f"{args.api.rstrip('/')}/2015-03-31/functions/{urllib.parse.quote(name, safe='')}/invocations"
    if qualifier:
        url += "?" + urllib.parse.urlencode({"Qualifier": qualifier})
    req = urllib.request.Request(url, data=payload, method="POST",
                                 headers=signed_headers("POST", url, {"X-Amz-Log-Type": "Tail"}, payload))
    try:
        with urllib.request.urlopen(req, timeout=960) as resp:
            status, body, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        text = exc.read()
        error_type = exc.headers.get("x-amzn-ErrorType", str(exc.code))
        print(f"edgelab: {error_type}: {text.decode(errors='replace')}", file=sys.stderr)
        if cli_event is not None and exc.code != 404:
            print("# " + pop_verdict(cli_event, args.function, status=exc.code, function_error=None, body=text,
                                     executed_version="", error_type=error_type.split(":")[0])[1], file=sys.stderr)
        elif cli_event is not None:
            print("# the POP would answer 503 LambdaExecutionError: the association does not resolve",
                  file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"edgelab: cannot reach {args.api} ({exc.reason}); is `edgelab serve` running?", file=sys.stderr)
        return 1
    logs = headers.get("X-Amz-Log-Result")
    if logs:
        sys.stderr.write(base64.b64decode(logs).decode(errors="replace").replace("\r", "\n"))
    version = headers.get("X-Amz-Executed-Version") or ""
    function_error = headers.get("X-Amz-Function-Error")
    print(f"# executed version {version}" + (f", function error: {function_error}" if function_error else ""),
          file=sys.stderr)
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        sys.stdout.write(body.decode(errors="replace"))
    if cli_event is None:
        print("# not a CloudFront event: no Lambda@Edge result check", file=sys.stderr)
        return 1 if function_error else 0
    ok, verdict = pop_verdict(cli_event, name, status=status, function_error=function_error, body=body,
                              executed_version=version)
    print(f"# {verdict}", file=sys.stderr)
    return 0 if ok else 1
