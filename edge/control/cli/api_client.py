"""The tiny HTTP client the CLI and ``edgelab loadtest`` use for the running stack's API (stdlib only: the CLI
must start fast, and load tests must not pull in the server stack)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    """The API answered an error status (``status`` and ``body`` set) or could not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "", reason: object = None) -> None:
        super().__init__(message)
        self.status, self.body, self.reason = status, body, reason


def request_json(api: str, method: str, path: str, body: object | None = None, *, timeout: float = 30) -> Any:
    """``method`` ``api + path`` with a JSON body; the decoded JSON answer, or :class:`ApiError`."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        raise ApiError(f"{method} {path}: HTTP {exc.code} {text[:300]}", status=exc.code, body=text) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"{method} {path}: cannot reach {api} ({exc})", reason=reason) from None
    return json.loads(raw) if raw else None


def call_api(api: str, method: str, path: str, body: object | None = None, *, timeout: float = 30) -> Any:
    """:func:`request_json` for CLI commands: failures exit with a one-line message."""
    try:
        return request_json(api, method, path, body, timeout=timeout)
    except ApiError as exc:
        if exc.status is None:
            raise SystemExit(f"edgelab: cannot reach {api} ({exc.reason}); is `edgelab serve` running?") from None
        detail = exc.body
        with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not an object: the body as it is
            detail = json.loads(detail).get("message", detail)
        raise SystemExit(f"edgelab: {method} {path}: {detail} (HTTP {exc.status})") from None
