"""AWS API errors of the CloudFront (2020-05-31) and CloudFront KeyValueStore (2022-07-26) services.

Codes and HTTP statuses are botocore's models (``cloudfront/2020-05-31/service-2.json``,
``cloudfront-keyvaluestore/2022-07-26/service-2.json``); messages follow the API reference's error
descriptions and always name the problem and the next step. The phase 2 REST endpoint renders
:class:`CloudFrontApiError` as the service's XML (control plane) or JSON (data plane) error body.
"""

from __future__ import annotations

__all__ = ["CloudFrontApiError", "api_error"]

# code -> HTTP status (botocore models)
STATUS = {
    # cloudfront (XML)
    "FunctionAlreadyExists": 409,
    "FunctionSizeLimitExceeded": 413,
    "FunctionInUse": 409,
    "InvalidArgument": 400,
    "InvalidIfMatchVersion": 400,
    "NoSuchFunctionExists": 404,
    "PreconditionFailed": 412,
    "TestFunctionFailed": 500,
    "TooManyFunctions": 400,
    "UnsupportedOperation": 400,
    "EntityAlreadyExists": 409,
    "EntityLimitExceeded": 400,
    "EntityNotFound": 404,
    "EntitySizeLimitExceeded": 413,
    "CannotDeleteEntityWhileInUse": 409,
    "AccessDenied": 403,
    # cloudfront-keyvaluestore (JSON)
    "ConflictException": 409,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "InternalServerException": 500,
}


class CloudFrontApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = STATUS[code]


def api_error(code: str, message: str) -> CloudFrontApiError:
    return CloudFrontApiError(code, message)
