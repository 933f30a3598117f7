"""The tiny HTTP client the CLI and ``edgelab loadtest`` use for the running stack's API (stdlib only: the CLI
must start fast, and load tests must not pull in the server stack).

When the stack requires SigV4 (``[[api.auth]]`` in its settings), set ``EDGELAB_ACCESS_KEY_ID`` and
``EDGELAB_SECRET_ACCESS_KEY`` to one of its keys: every request is then signed with botocore's signer (imported
only then), scoped to ``EDGELAB_REGION`` (default us-east-1) and the ``lambda`` service."""

from __future__ import annotations

import contextlib
import json
import os
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
    url = api.rstrip("/") + path
    headers = signed_headers(method, url, {"Content-Type": "application/json"}, data or b"")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
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


def signing_keys() -> tuple[str, str] | None:
    """(access key id, secret) from ``EDGELAB_ACCESS_KEY_ID`` / ``EDGELAB_SECRET_ACCESS_KEY``; None when unset. One
    without the other is a mistake worth a clear exit, not an unsigned request that fails later."""
    akid, secret = os.environ.get("EDGELAB_ACCESS_KEY_ID", ""), os.environ.get("EDGELAB_SECRET_ACCESS_KEY", "")
    if not akid and not secret:
        return None
    if not akid or not secret:
        missing = "EDGELAB_ACCESS_KEY_ID" if not akid else "EDGELAB_SECRET_ACCESS_KEY"
        raise SystemExit(f"edgelab: {missing} is not set (set both, or neither for a stack without [[api.auth]])")
    return akid, secret


def signed_headers(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """``headers``, SigV4-signed when :func:`signing_keys` are set (every request the CLI makes goes through here)."""
    keys = signing_keys()
    return headers if keys is None else sign(method, url, headers, body, *keys)


def sign(method: str, url: str, headers: dict[str, str], body: bytes, akid: str, secret: str) -> dict[str, str]:
    """``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date``) for this request, by botocore's signer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    region = os.environ.get("EDGELAB_REGION", "us-east-1")
    SigV4Auth(Credentials(akid, secret), "lambda", region).add_auth(request)
    return dict(request.headers.items())


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
