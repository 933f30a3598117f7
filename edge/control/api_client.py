"""The CLI's tiny HTTP client for the running stack's admin API (stdlib only: the CLI must start fast)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def call_api(api: str, method: str, path: str, body: object | None = None, *, timeout: float = 30) -> Any:
    """``method`` ``api + path`` with a JSON body; the decoded JSON answer. Errors exit with a clear message."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(api.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("message", detail)
        except (ValueError, AttributeError):
            pass
        raise SystemExit(f"edgelab: {method} {path}: {detail} (HTTP {exc.code})") from None
    except urllib.error.URLError as exc:
        raise SystemExit(f"edgelab: cannot reach {api} ({exc.reason}); is `edgelab serve` running?") from None
    return json.loads(raw) if raw else None
