"""Error records in awslambdaric's shapes, traceback trimming and the ``[ERROR]`` log line.

A record is ``{"errorMessage", "errorType", "requestId", "stackTrace"}``; Init failures carry ``requestId ""``.
Stack traces are ``traceback.format_list`` strings with the runtime's own frames removed, so the first entry is
the user's code (awslambdaric drops every frame up to the first one outside its bootstrap).
"""

from __future__ import annotations

import traceback
from types import TracebackType

IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"

_RUNTIME_DIR = __file__.rsplit("/", 1)[0] + "/"
_IMPORTLIB_FRAMES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


class FaultException(Exception):
    """A runtime-detected fault with an AWS error type (raised during Init or marshalling)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str) -> dict[str, object]:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace or []}


def _user_frames(tb: TracebackType | None) -> list[str]:
    """Format the traceback, dropping leading frames that belong to the runtime (this package)."""
    frames = traceback.extract_tb(tb)
    start = 0
    for i, fs in enumerate(frames):
        if not fs.filename.startswith(_RUNTIME_DIR):
            start = i
            break
    else:
        start = len(frames)
    return traceback.format_list(frames[start:])


def from_exception(exc: BaseException, request_id: str) -> dict[str, object]:
    """Error record for an exception raised by user code (handler or module-level Init code)."""
    if isinstance(exc, FaultException):
        return make_error(exc.message, exc.error_type, exc.trace, request_id)
    return make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), request_id)


def error_log_line(record: dict[str, object]) -> str:
    """awslambdaric's ``[ERROR] Type: message`` line; CR separates the traceback lines so it stays one event."""
    parts = ["[ERROR]"]
    etype, msg = record.get("errorType"), record.get("errorMessage")
    if etype:
        parts.append(f" {etype}")
    if msg:
        parts.append(f"{':' if etype else ''} {msg}")
    lines = ["".join(parts)]
    stack = record.get("stackTrace")
    if isinstance(stack, list):
        lines.append("Traceback (most recent call last):")
        for element in stack:
            for line in str(element).splitlines():
                stripped = line.lstrip(" ")
                lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    return "\r".join(lines) + "\n"
