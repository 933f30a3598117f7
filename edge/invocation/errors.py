"""Control-plane errors of the invocation core, each carrying its AWS error code, HTTP status and message.

Tree (status in brackets; the REST API maps every one of them to an AWS-style response in one place)::

    LambdaError                                   base: .code, .status, .message, .message_key
     ├── InvalidParameterValueException   [400]
     ├── ValidationException              [400]
     ├── InvalidRequestContentException   [400]
     ├── CodeStorageExceededException     [400]
     ├── ResourceNotFoundException        [404]  body key "Message"
     ├── ProvisionedConcurrencyConfigNotFoundException [404]
     ├── UnknownOperationException        [404]  unknown route (not modelled; what AWS answers)
     ├── ResourceConflictException        [409]
     ├── PreconditionFailedException      [412]
     ├── RequestTooLargeException         [413]
     ├── RequestEntityTooLargeException   [413]  oversized zip / CreateFunction request
     ├── UnsupportedMediaTypeException    [415]
     ├── TooManyRequestsException         [429]  + .reason
     ├── ServiceException                 [500]  body key "Message"
     └── InvalidRuntimeException          [502]  body key "Message"

Function failures and throttles during Invoke are *values* (:class:`~edge.invocation.models.InvocationResult`),
not exceptions; these errors describe bad requests and missing resources.
"""

from __future__ import annotations

from edge.invocation.models import function_arn

__all__ = [
    "REVISION_MISMATCH_MESSAGE",
    "CodeStorageExceededException",
    "InvalidParameterValueException",
    "InvalidRequestContentException",
    "InvalidRuntimeException",
    "LambdaError",
    "PreconditionFailedException",
    "ProvisionedConcurrencyConfigNotFoundException",
    "RequestEntityTooLargeException",
    "RequestTooLargeException",
    "ResourceConflictException",
    "ResourceNotFoundException",
    "ServiceException",
    "TooManyRequestsException",
    "UnknownOperationException",
    "UnsupportedMediaTypeException",
    "ValidationException",
    "function_not_found",
    "validation_error",
]

REVISION_MISMATCH_MESSAGE = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class LambdaError(Exception):
    """A control-plane error with its AWS error code (class name), HTTP status and message."""

    status: int = 400
    message_key: str = "message"  # AWS uses "Message" for a few shapes

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        return type(self).__name__

    def body(self) -> dict[str, object]:
        """The JSON error body AWS sends: ``{"Type": "User", "message": ...}`` (+ modelled extras)."""
        kind = "Service" if self.status >= 500 else "User"
        return {"Type": kind, self.message_key: self.message}


class InvalidParameterValueException(LambdaError):
    status = 400


class ValidationException(LambdaError):
    status = 400


class InvalidRequestContentException(LambdaError):
    status = 400


class CodeStorageExceededException(LambdaError):
    status = 400


class ResourceNotFoundException(LambdaError):
    status = 404
    message_key = "Message"


class ProvisionedConcurrencyConfigNotFoundException(LambdaError):
    status = 404


class UnknownOperationException(LambdaError):
    status = 404


class ResourceConflictException(LambdaError):
    status = 409


class PreconditionFailedException(LambdaError):
    status = 412

    def __init__(self, message: str = REVISION_MISMATCH_MESSAGE) -> None:
        super().__init__(message)


class RequestTooLargeException(LambdaError):
    status = 413


class RequestEntityTooLargeException(LambdaError):
    status = 413


class UnsupportedMediaTypeException(LambdaError):
    status = 415


class TooManyRequestsException(LambdaError):
    status = 429

    def __init__(self, reason: str, message: str = "Rate Exceeded.") -> None:
        super().__init__(message)
        self.reason = reason

    def body(self) -> dict[str, object]:
        return {**super().body(), "Reason": self.reason}


class ServiceException(LambdaError):
    status = 500
    message_key = "Message"


class InvalidRuntimeException(LambdaError):
    status = 502
    message_key = "Message"


def function_not_found(name: str, region: str, qualifier: str | None = None) -> ResourceNotFoundException:
    """AWS's 404 for an unknown function, version or alias."""
    return ResourceNotFoundException(f"Function not found: {function_arn(name, region, qualifier)}")


def validation_error(value: object, member: str, constraint: str) -> ValidationException:
    """AWS's model-constraint error: ``1 validation error detected: Value 'x' at 'member' failed ...``."""
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )

