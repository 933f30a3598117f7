"""What the viewer gets for CloudFront Functions failures, rendered by the POP's own error page code."""

from __future__ import annotations

from edge.cdn.cloudfront_functions.errors import (
    PAGE_READ_ONLY,
    FunctionExecutionError,
    FunctionThrottledError,
    FunctionValidationError,
)
from edge.cdn.responses import error_response


def test_execution_error_page() -> None:
    err = FunctionExecutionError("TypeError: x", function="f", event_type="viewer-request")
    resp = error_response(err, "RID==")
    assert resp.status == 503 and err.x_cache == "FunctionExecutionError from cloudfront"
    assert b"The CloudFront function associated with the CloudFront distribution is invalid or could not run." in resp.body
    assert b"503 ERROR" in resp.body and b"RID==" in resp.body and ("Server", "CloudFront") in resp.headers


def test_validation_error_page_carries_the_specific_line() -> None:
    err = FunctionValidationError("read-only Host", page_line=PAGE_READ_ONLY)
    resp = error_response(err, "RID")
    assert resp.status == 502 and err.x_cache == "FunctionValidationError from cloudfront"
    assert PAGE_READ_ONLY.encode() in resp.body
    # the class default is untouched by an instance's page line
    assert FunctionValidationError("x").message != PAGE_READ_ONLY


def test_throttled() -> None:
    err = FunctionThrottledError("over budget")
    resp = error_response(err, "RID")
    assert resp.status == 503 and err.x_cache == "FunctionThrottledError from cloudfront"
    assert b"503 ERROR" in resp.body
