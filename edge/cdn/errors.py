"""Errors of the POP data plane, each carrying the CloudFront status, X-Cache text and error-page line.

Tree::

    EdgeError                      (base; never raised itself)
     ├── ViewerError               bad viewer input answered by the POP itself
     │    ├── BadRequest           400  malformed request
     │    ├── RequestTooLarge      413  URL > 8,192 bytes or headers > 20,480 bytes
     │    ├── MethodNotAllowed     403  method outside the behavior's AllowedMethods
     │    ├── GetWithBody          403  a GET carrying a body (contract §1.4)
     │    ├── DistributionDisabled 403  Enabled=false
     │    ├── GeoBlocked           403  Restrictions.GeoRestriction refuses the viewer's country
     │    └── SignatureRefused     403  a signed URL / cookie is missing, unknown, malformed or denied (text/xml)
     ├── OriginError               the origin could not produce a response
     │    ├── OriginUnavailable    502  connection refused/reset, bad response, DNS
     │    └── OriginTimeout        504  no response within the origin read timeout
     └── LambdaError               a trigger failed (raised by the TriggerRunner)
          ├── LambdaExecutionError 503  handler threw, crashed or timed out
          ├── LambdaLimitExceeded  503  throttled
          └── LambdaValidationError 502 the result failed validation

Every class knows its ``status``, its ``x_cache`` value and the specific message line of the CloudFront
error page (contract §4.1/§4.2); ``responses.error_response`` renders any of them. The pipeline is the only
place that turns them into responses.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every POP error. ``detail`` is for logs, ``message`` for the viewer-facing page."""

    status: int = 500
    x_cache: str = "Error from cloudfront"
    message: str = "The request could not be satisfied."
    custom_page: bool = False  # a CustomErrorResponse for its status replaces the page (origin errors always do)

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)
        self.detail = detail


class ViewerError(EdgeError):
    """The viewer's request is refused by the POP before any cache or origin work."""


class BadRequest(ViewerError):
    status = 400
    message = "Bad request."


class RequestTooLarge(ViewerError):
    status = 413
    message = "Bad request. The request line or the request headers are too large."


class MethodNotAllowed(ViewerError):
    status = 403
    message = (
        "This distribution is not configured to allow the HTTP request method that was used for this request. "
        "The distribution supports only cachable requests."
    )


class GetWithBody(ViewerError):
    status = 403
    message = "Bad request. A GET request cannot include a body."


class DistributionDisabled(ViewerError):
    status = 403
    message = "Bad request. The distribution is disabled."


class GeoBlocked(ViewerError):
    """CloudFront's answer to a viewer its geographic restriction refuses ("Restrict the geographic distribution of
    your content", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/georestrictions.html): 403 with
    the error page below, replaced by a custom error response for 403 when there is one."""

    status = 403
    message = "The Amazon CloudFront distribution is configured to block access from your country."
    custom_page = True


class SignatureRefused(ViewerError):
    """CloudFront's answer to a request of a behavior with trusted key groups or signers whose signed URL or cookies
    do not pass (``edge.cdn.signing``): 403 with an XML body ``<Error><Code>..</Code><Message>..</Message></Error>``
    ("Serve private content with signed URLs and signed cookies",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/PrivateContent.html), replaced by a custom
    error response for 403 when there is one."""

    status = 403
    custom_page = True

    def __init__(self, code: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message


class HttpsRequired(ViewerError):
    """An HTTP request to a behavior whose ``ViewerProtocolPolicy`` is ``https-only`` (or ``redirect-to-https``
    for a method other than GET/HEAD below HTTP/1.1): "CloudFront returns HTTP status code 403 (Forbidden)"
    ("Require HTTPS for communication between viewers and CloudFront",
    https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-https-viewers-to-cloudfront.html)."""

    status = 403
    message = "Bad request. This distribution requires HTTPS."


class RedirectToHttps(ViewerError):
    """``redirect-to-https``: an HTTP GET/HEAD gets 301, other methods 307 (method and body kept), with the
    ``https://`` URL in Location and ``X-Cache: Redirect from cloudfront``, before any function runs (same page;
    shared/docs/cloudfront-features.md §7)."""

    x_cache = "Redirect from cloudfront"

    def __init__(self, location: str, *, status: int) -> None:
        super().__init__(f"HTTP request redirected to {location}")
        self.status = status
        self.location = location


class OriginError(EdgeError):
    """The origin fetch failed at the transport level (mapped once, in origin_client)."""


class OriginUnavailable(OriginError):
    status = 502
    message = "CloudFront wasn't able to connect to the origin."


class OriginTimeout(OriginError):
    status = 504
    message = "CloudFront attempted to establish a connection with the origin, but either the attempt failed or the origin closed the connection."


class LambdaError(EdgeError):
    """A Lambda@Edge trigger failed; ``event_type`` and ``function`` say which one (logs/debug header)."""

    def __init__(self, detail: str = "", *, event_type: str = "", function: str = "") -> None:
        super().__init__(detail)
        self.event_type = event_type
        self.function = function


class LambdaExecutionError(LambdaError):
    status = 503
    x_cache = "LambdaExecutionError from cloudfront"
    message = (
        "The Lambda function associated with the CloudFront distribution is invalid or doesn't have the "
        "required permissions."
    )


class LambdaLimitExceeded(LambdaError):
    status = 503
    x_cache = "LambdaLimitExceeded from cloudfront"
    message = "The Lambda function associated with the CloudFront distribution was throttled."


class LambdaValidationError(LambdaError):
    status = 502
    x_cache = "LambdaValidationError from cloudfront"
    message = "The Lambda function result failed validation: {detail}"

    def __init__(self, detail: str = "", *, event_type: str = "", function: str = "", page_line: str = "") -> None:
        super().__init__(detail, event_type=event_type, function=function)
        # The specific page line (e.g. "The Lambda function returned invalid JSON: ...") when the caller
        # knows the exact CloudFront wording; otherwise a generic "failed validation" line with the detail.
        self.page_line = page_line or self.message.format(detail=detail or "The function returned an invalid result.")


def page_line(err: EdgeError) -> str:
    """The specific message line of the CloudFront error page for ``err``."""
    if isinstance(err, LambdaValidationError):
        return err.page_line
    return err.message
