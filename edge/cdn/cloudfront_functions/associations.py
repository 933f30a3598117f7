"""A cache behavior's ``FunctionAssociations`` (CloudFront Functions): parsing and CloudFront's association rules.

Pure. The distribution loader calls :func:`parse_function_associations` for each behavior and
:func:`check_combination` with the event types its Lambda@Edge associations use. Failures raise
:class:`InvalidFunctionAssociation` (CloudFront API error ``InvalidFunctionAssociation``, HTTP 400, botocore's
``cloudfront`` 2020-05-31 model) with a message naming the problem and the next step.

Rules (sources):

* ``FunctionAssociation = {FunctionARN, EventType}``; the ARN is ``arn:aws:cloudfront::<12 digits>:function/<name>``
  with a name of ``[a-zA-Z0-9-_]{1,64}``, at most 108 characters (CloudFront API Reference, ``FunctionAssociation``;
  CloudFormation ``AWS::CloudFront::Distribution FunctionAssociation``);
* ``EventType`` is ``viewer-request`` or ``viewer-response``: "You cannot use origin-facing event types
  (origin-request and origin-response) with a CloudFront function" (same pages);
* "Each event type (viewer request, origin request, origin response, and viewer response) can have only one edge
  function association", and "You can't combine CloudFront Functions and Lambda@Edge in viewer events (viewer
  request and viewer response)"; every other combination is allowed, e.g. a CloudFront function on viewer-request
  with Lambda@Edge on origin-request (Developer Guide, "Restrictions on all edge functions",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/edge-function-restrictions-all.html);
* the function must be in the ``LIVE`` stage (API Reference, ``FunctionAssociations.Items``): checked when the
  association is resolved (the POP's runner, ``edge.cdn.cloudfront_functions.runner``), not here, since functions are
  created through the API after the stack starts;
* "the function and distribution must be owned by the same AWS account" (same restrictions page). Emulator: any
  account is accepted and the function is looked up by name: real configurations carry their owner's account id,
  and a local stack has no account of its own to compare it with.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from edge.cdn.cloudfront_functions.limits import EVENT_TYPES

__all__ = ["CffAssociation", "InvalidFunctionAssociation", "check_combination", "parse_function_association"]

_ARN_RE = re.compile(r"^arn:aws:cloudfront::(?P<account>[0-9]{12}):function/(?P<name>[a-zA-Z0-9\-_]{1,64})$")
_MAX_ARN = 108
_ORIGIN_EVENTS = ("origin-request", "origin-response")
_VIEWER_EVENTS = frozenset(EVENT_TYPES)


class InvalidFunctionAssociation(Exception):
    """CloudFront's 400 ``InvalidFunctionAssociation`` ("A CloudFront function association is invalid")."""

    code = "InvalidFunctionAssociation"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class CffAssociation:
    """One ``FunctionAssociations`` item: the CloudFront function (by name) to run for a viewer event type."""

    event_type: str  # viewer-request | viewer-response
    arn: str  # as configured
    function_name: str
    account: str


def parse_function_association(item: Any) -> CffAssociation:
    """One ``{"FunctionARN", "EventType"}`` item (CloudFront API field names)."""
    if not isinstance(item, dict):
        raise InvalidFunctionAssociation("A function association must be an object {FunctionARN, EventType}.")
    unknown = sorted(set(item) - {"FunctionARN", "EventType"})
    if unknown:
        raise InvalidFunctionAssociation(f"Unknown field {unknown[0]!r} in a function association "
                                         "(expected FunctionARN and EventType).")
    event_type = item.get("EventType")
    arn = item.get("FunctionARN")
    if event_type in _ORIGIN_EVENTS:
        raise InvalidFunctionAssociation(
            f"You cannot use origin-facing event types (origin-request and origin-response) with a CloudFront "
            f"function: {arn} is associated with {event_type}. Use viewer-request or viewer-response, or a "
            "Lambda@Edge function (LambdaFunctionAssociations) for origin events.")
    if event_type not in _VIEWER_EVENTS:
        raise InvalidFunctionAssociation(
            f"The event type {event_type!r} is not valid for a CloudFront function: use viewer-request or "
            "viewer-response.")
    m = _ARN_RE.match(arn) if isinstance(arn, str) and len(arn) <= _MAX_ARN else None
    if m is None or not isinstance(arn, str):
        raise InvalidFunctionAssociation(
            f"The function ARN {arn!r} is not a valid CloudFront function ARN: expected "
            "arn:aws:cloudfront::<account id>:function/<name> (name: 1-64 letters, digits, '-' or '_').")
    return CffAssociation(event_type=event_type, arn=arn, function_name=m["name"], account=m["account"])


def check_combination(functions: Collection[str], lambda_edge: Collection[str]) -> None:
    """CloudFront's combination rules for one behavior: ``functions`` are the event types of its CloudFront
    Functions associations (already one per type), ``lambda_edge`` those of its Lambda@Edge associations."""
    lambda_viewer = sorted(set(lambda_edge) & _VIEWER_EVENTS)
    if functions and lambda_viewer:
        raise InvalidFunctionAssociation(
            "You can't combine CloudFront Functions and Lambda@Edge in viewer events: this behavior has a "
            f"CloudFront function on {', '.join(sorted(functions))} and a Lambda@Edge function on "
            f"{', '.join(lambda_viewer)}. Move the Lambda@Edge function to an origin event, or do that work in "
            "the CloudFront function.")
