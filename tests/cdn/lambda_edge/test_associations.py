"""LambdaFunctionAssociations parsing and the association-time checks, with CloudFront's messages."""

from __future__ import annotations

from typing import Any

import pytest

from edge.cdn.lambda_edge.associations import (
    CHECKS,
    FunctionAssociation,
    InvalidLambdaFunctionAssociation,
    check_function_config,
    function_config_problems,
    parse_association,
    parse_associations,
    parse_function_arn,
)

ARN = "arn:aws:lambda:us-east-1:000000000000:function:my-fn:3"


def _raises(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(InvalidLambdaFunctionAssociation) as info:
        fn(*args, **kw)
    assert info.value.code == "InvalidLambdaFunctionAssociation" and info.value.status == 400
    return info.value.message


def test_parse_versioned_arn() -> None:
    ref = parse_function_arn(ARN)
    assert (ref.region, ref.account, ref.name, ref.qualifier, ref.is_version) == ("us-east-1", "000000000000", "my-fn", "3", True)


@pytest.mark.parametrize("qualifier", ["", ":$LATEST", ":live", ":0", ":01"])
def test_unpublished_qualifiers_rejected(qualifier: str) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function:my-fn" + qualifier
    assert _raises(parse_function_arn, arn) == (
        "The function ARN must reference a specific function version. (The ARN must end with the version number.) "
        f"ARN: {arn}"
    )


@pytest.mark.parametrize("qualifier", ["$LATEST", "live"])
def test_unpublished_allowed_locally(qualifier: str) -> None:
    ref = parse_function_arn(f"arn:aws:lambda:us-east-1:000000000000:function:f:{qualifier}", allow_unpublished=True)
    assert ref.qualifier == qualifier and not ref.is_version


def test_unqualified_still_rejected_with_allow_unpublished() -> None:
    assert "must reference a specific function version" in _raises(
        parse_function_arn, "arn:aws:lambda:us-east-1:000000000000:function:f", allow_unpublished=True
    )


def test_wrong_region() -> None:
    arn = "arn:aws:lambda:eu-west-1:000000000000:function:my-fn:1"
    assert _raises(parse_function_arn, arn) == f"The function must be in region 'us-east-1'. ARN: {arn}"


@pytest.mark.parametrize("arn", ["my-fn", "arn:aws:lambda:us-east-1:123:function:f:1", 42, None, "arn:aws:s3:::bucket"])
def test_malformed_arn(arn: Any) -> None:
    assert _raises(parse_function_arn, arn) == f"The function ARN is not a valid Lambda function ARN. ARN: {arn}"


def test_parse_association_and_include_body() -> None:
    assoc = parse_association({"LambdaFunctionARN": ARN, "EventType": "origin-request", "IncludeBody": True})
    assert assoc == FunctionAssociation("origin-request", parse_function_arn(ARN), True)
    assert parse_association({"LambdaFunctionARN": ARN, "EventType": "viewer-response"}).include_body is False


@pytest.mark.parametrize("event_type", ["origin-response", "viewer-response"])
def test_include_body_only_on_request_events(event_type: str) -> None:
    item = {"LambdaFunctionARN": ARN, "EventType": event_type, "IncludeBody": True}
    assert _raises(parse_association, item) == "The IncludeBody option can only be used with viewer-request or origin-request events."


def test_bad_event_type_and_include_body_type() -> None:
    assert _raises(parse_association, {"LambdaFunctionARN": ARN, "EventType": "request"}) == (
        "The event type 'request' is not valid. Valid values: viewer-request, origin-request, origin-response, viewer-response."
    )
    assert "IncludeBody must be true or false" in _raises(
        parse_association, {"LambdaFunctionARN": ARN, "EventType": "viewer-request", "IncludeBody": "yes"}
    )


def test_parse_associations_forms_and_duplicates() -> None:
    items = [{"LambdaFunctionARN": ARN, "EventType": e} for e in ("viewer-request", "origin-response")]
    assert [a.event_type for a in parse_associations({"Quantity": 2, "Items": items})] == ["viewer-request", "origin-response"]
    assert len(parse_associations(items)) == 2
    assert parse_associations(None) == () and parse_associations({"Quantity": 0}) == ()
    assert _raises(parse_associations, {"Quantity": 3, "Items": items}) == (
        "The parameter Quantity (3) does not match the number of Items (2)."
    )
    assert _raises(parse_associations, items + items[:1]) == (
        "More than one Lambda function association was specified for event type viewer-request."
    )


GOOD = {"timeout_s": 5, "memory_mb": 128, "code_size": 1024, "runtime": "python3.11"}


@pytest.mark.parametrize("event_type", ["viewer-request", "viewer-response", "origin-request", "origin-response"])
def test_good_config_passes(event_type: str) -> None:
    assert function_config_problems(event_type, ARN, **GOOD) == []
    assert check_function_config(event_type, ARN, **GOOD) == []


@pytest.mark.parametrize(
    ("event_type", "change", "message"),
    [
        ("viewer-request", {"timeout_s": 30}, f"The function timeout is larger than the maximum allowed for functions that are triggered by a CloudFront event: 30 Max allowed: 5 Function: {ARN}"),
        ("origin-request", {"timeout_s": 31}, f"The function timeout is larger than the maximum allowed for functions that are triggered by a CloudFront event: 31 Max allowed: 30 Function: {ARN}"),
        ("viewer-response", {"memory_mb": 256}, f"The function memory size is larger than the maximum allowed for functions that are triggered by a CloudFront event: 256 Max allowed: 128 Function: {ARN}"),
        ("viewer-request", {"code_size": 2548547}, f"The function code size is larger than the maximum allowed size for functions that are triggered by a CloudFront event: 2548547 Max allowed: 1048576 Function: {ARN}"),
        ("origin-response", {"code_size": 52428801}, f"The function code size is larger than the maximum allowed size for functions that are triggered by a CloudFront event: 52428801 Max allowed: 52428800 Function: {ARN}"),
        ("origin-request", {"environment": {"A": "1"}}, f"The function cannot have environment variables. Function: {ARN}"),
        ("origin-request", {"layers": ["arn:aws:lambda:us-east-1:000000000000:layer:l:1"]}, f"The function cannot have layers. Function: {ARN}"),
        ("origin-request", {"runtime": "java21"}, f"The function runtime java21 is not supported for functions that are triggered by a CloudFront event. Use a Node.js or Python runtime. Function: {ARN}"),
        ("origin-request", {"architecture": "arm64"}, f"The function architecture arm64 is not supported for functions that are triggered by a CloudFront event. Use x86_64. Function: {ARN}"),
        ("origin-request", {"ephemeral_storage_mb": 1024}, f"The function ephemeral storage is larger than the maximum allowed for functions that are triggered by a CloudFront event: 1024 Max allowed: 512 Function: {ARN}"),
    ],
)
def test_each_config_check(event_type: str, change: dict[str, Any], message: str) -> None:
    assert _raises(check_function_config, event_type, ARN, **(GOOD | change)) == message
    # relaxed: reported, not raised
    assert check_function_config(event_type, ARN, relax_limits=True, **(GOOD | change)) == [message]


def test_origin_memory_and_nodejs_accepted() -> None:
    assert check_function_config("origin-request", ARN, **(GOOD | {"memory_mb": 3008, "runtime": "nodejs20.x", "timeout_s": 30})) == []


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x", "nodejs22.x", "python3.7", "python3.13"])
def test_the_runtimes_cloudfront_lists_are_accepted(runtime: str) -> None:
    assert check_function_config("viewer-request", ARN, **(GOOD | {"runtime": runtime})) == []


@pytest.mark.parametrize("runtime", ["nodejs24.x", "nodejs16.x", "python3.14", "provided.al2023"])
def test_other_runtimes_are_refused_unless_relaxed(runtime: str) -> None:
    message = _raises(check_function_config, "viewer-request", ARN, **(GOOD | {"runtime": runtime}))
    assert message.startswith(f"The function runtime {runtime} is not supported for functions that are triggered")
    assert ("nodejs22.x" in message) == (not runtime.startswith("provided"))
    assert check_function_config("viewer-request", ARN, relax_limits=True, **(GOOD | {"runtime": runtime})) == [message]


def test_relax_selected_checks_only() -> None:
    config = GOOD | {"timeout_s": 10, "environment": [("A", "1")]}
    warnings = check_function_config("viewer-request", ARN, relax_limits={"timeout", "environment"}, **config)
    assert len(warnings) == 2
    assert "environment variables" in _raises(check_function_config, "viewer-request", ARN, relax_limits={"timeout"}, **config)
    assert set(CHECKS) >= {"timeout", "memory", "code_size", "environment", "layers", "runtime"}


def test_fractional_timeout_printed_as_given_and_unknown_event_is_a_caller_bug() -> None:
    msg = _raises(check_function_config, "viewer-request", ARN, **(GOOD | {"timeout_s": 5.5}))
    assert ": 5.5 Max allowed: 5 " in msg
    with pytest.raises(ValueError):
        check_function_config("request", ARN, **GOOD)
