"""What the viewer gets when a CloudFront function fails, as data-plane errors the pipeline renders.

Each class is an :class:`edge.cdn.errors.EdgeError` (status, ``X-Cache`` value, page line), so
``edge.cdn.responses.error_response`` renders it as CloudFront's standard error page. Sources: AWS Developer
Guide, CloudFront, ``http-503-service-unavailable`` ("FunctionExecutionError", "FunctionThrottledError"),
``http-502-bad-gateway`` ("FunctionValidationError"), ``edge-function-restrictions-all`` (read-only headers);
the X-Cache texts are those observed on real distributions (docs/cloudfront-features.md §1.7):

=========================  ======  ========================================  ========================================
condition                  status  X-Cache                                   page line
=========================  ======  ========================================  ========================================
exception, refused syntax  503     ``FunctionExecutionError from cloudfront``  "The CloudFront function associated with
or a bad return value,                                                       the CloudFront distribution is invalid
engine limit reached                                                         or could not run."
invalid result             502     ``FunctionValidationError from cloudfront`` e.g. "The CloudFront function tried to
                                                                             add, delete, or change a read-only
                                                                             header."
throttled                  503     ``FunctionThrottledError from cloudfront``  (undocumented; ours)
=========================  ======  ========================================  ========================================
"""

from __future__ import annotations

from edge.cdn.errors import EdgeError

__all__ = [
    "EXECUTION_PAGE_LINE",
    "FUNCTION_GENERATED",
    "PAGE_BODY",
    "PAGE_DISALLOWED",
    "PAGE_HEADER",
    "PAGE_ORIGIN",
    "PAGE_READ_ONLY",
    "PAGE_SHAPE",
    "PAGE_STATUS",
    "PAGE_URI",
    "FunctionError",
    "FunctionExecutionError",
    "FunctionThrottledError",
    "FunctionValidationError",
]

FUNCTION_GENERATED = "FunctionGeneratedResponse from cloudfront"
EXECUTION_PAGE_LINE = "The CloudFront function associated with the CloudFront distribution is invalid or could not run."

# The read-only line is CloudFront's (aws-samples/amazon-cloudfront-functions#27); the others are ours, same style.
PAGE_READ_ONLY = "The CloudFront function tried to add, delete, or change a read-only header."
PAGE_DISALLOWED = "The CloudFront function tried to add a disallowed header."
PAGE_HEADER = "The CloudFront function returned an invalid header."
PAGE_STATUS = "The CloudFront function returned an invalid status code."
PAGE_URI = "The CloudFront function returned an invalid uri or query string."
PAGE_BODY = "The CloudFront function returned an invalid body."
PAGE_ORIGIN = "The CloudFront function returned an invalid origin."
PAGE_SHAPE = "The CloudFront function returned an invalid request or response."


class FunctionError(EdgeError):
    """A CloudFront function failed; ``function`` and ``event_type`` say which one, ``detail`` why (logs)."""

    def __init__(self, detail: str = "", *, function: str = "", event_type: str = "", page_line: str = "") -> None:
        super().__init__(detail)
        self.function = function
        self.event_type = event_type
        if page_line:
            self.message = page_line  # edge.cdn.errors.page_line() reads ``message``


class FunctionExecutionError(FunctionError):
    status = 503
    x_cache = "FunctionExecutionError from cloudfront"
    message = EXECUTION_PAGE_LINE


class FunctionValidationError(FunctionError):
    status = 502
    x_cache = "FunctionValidationError from cloudfront"
    message = PAGE_SHAPE


class FunctionThrottledError(FunctionError):
    status = 503
    x_cache = "FunctionThrottledError from cloudfront"
    message = "The CloudFront function associated with the CloudFront distribution was throttled."
