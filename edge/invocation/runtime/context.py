"""The ``context`` object handed to handlers (awslambdaric's ``LambdaContext`` fields) and the Lambda log format.

Per-environment values (function name, version, memory, log group/stream) are read once from the environment
variables the core set; per-invocation values come from the INVOKE frame.
"""

from __future__ import annotations

import json
import logging
import sys
import time


class CognitoIdentity:
    """Always present; both ids are None unless the invoker supplied an identity (never, in edgelab)."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id: str | None = None, pool_id: str | None = None) -> None:
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self) -> str:
        return f"CognitoIdentity(cognito_identity_id={self.cognito_identity_id!r})"


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, data: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))


class ClientContext:
    """Parsed ``ClientContext`` JSON: ``client`` (a :class:`Client` or None), ``custom`` and ``env`` dicts."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")

    def __repr__(self) -> str:
        return f"ClientContext(custom={self.custom!r}, env={self.env!r})"


def parse_client_context(raw: str | None) -> ClientContext | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return ClientContext(data) if isinstance(data, dict) else None


class StaticFields:
    """Values fixed for the life of one execution environment (read once from its environment variables)."""

    __slots__ = ("function_name", "function_version", "log_group_name", "log_stream_name", "memory_limit_in_mb")

    def __init__(self, environ: dict[str, str]) -> None:
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")  # a str, as AWS
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")


class LambdaContext:
    """What ``handler(event, context)`` receives; mirrors awslambdaric's LambdaContext."""

    __slots__ = (
        "_deadline_ms",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "tenant_id",
    )

    def __init__(self, static: StaticFields, request_id: str, deadline_ms: int, invoked_arn: str,
                 client_context: str | None, function_name: str | None) -> None:
        self.aws_request_id = request_id
        self.function_name = function_name or static.function_name
        self.function_version = static.function_version
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = static.memory_limit_in_mb
        self.log_group_name = static.log_group_name
        self.log_stream_name = static.log_stream_name
        self.identity = CognitoIdentity()
        self.client_context = parse_client_context(client_context) if client_context else None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},log_group_name={self.log_group_name},"
                f"log_stream_name={self.log_stream_name},function_name={self.function_name},"
                f"memory_limit_in_mb={self.memory_limit_in_mb},function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn},client_context={self.client_context},"
                f"identity={self.identity}])")


class RequestIdHolder:
    """The request id the log formatter stamps on records; updated by the invoke loop (one per environment)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = ""


class LambdaLogHandler(logging.StreamHandler):
    """``[LEVEL]\\t<ISO-8601 ms Z>\\t<request id>\\t<message>``; newlines become CR so a record is one event."""

    def __init__(self, holder: RequestIdHolder) -> None:
        super().__init__(sys.stdout)
        self._holder = holder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record).replace("\n", "\r")
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            ms = int(record.msecs)
            sys.stdout.write(f"[{record.levelname}]\t{ts}.{ms:03d}Z\t{self._holder.value}\t{msg}\n")
        except Exception:  # logging must never break the handler (stdlib contract)
            self.handleError(record)


def install_logging(holder: RequestIdHolder) -> None:
    """Root logger: one Lambda-format handler at WARNING (the managed runtime's default level)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(LambdaLogHandler(holder))
    root.setLevel(logging.WARNING)
