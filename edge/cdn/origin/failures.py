"""One console line per origin failure cause, rate-limited.

CloudFront answers a failed origin fetch with ``502``/``504 Error from cloudfront`` and says why only in its logs.
A local stack's user needs the why at once: the POP logs one WARNING line per cause (error kind and origin
domain) the first time it happens, then at most one line per cause every ``interval`` seconds, saying how many
failures it did not print in between. A domain that does not resolve gets the hint that it may be missing from
the settings' ``[origins]``. The full detail of one request's error is also in the ``X-Edgelab-Error`` response
header with ``[edge] debug_headers = true``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FailureLog"]

_UNRESOLVED = ("gaierror", "Name or service not known", "nodename nor servname", "Temporary failure in name resolution",
               "DNS")
_MAX_CAUSES = 1024  # causes remembered (an origin-request function may invent a domain per request)


@dataclass(slots=True)
class _Cause:
    last: float
    suppressed: int = 0


class FailureLog:
    """Rate-limited origin failure lines (see the module docstring)."""

    def __init__(self, logger: logging.Logger, *, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, debug_headers: bool = False) -> None:
        self.logger = logger
        self.debug_headers = debug_headers  # when off, the first line of a cause says how to see every detail
        self.interval = interval
        self.clock = clock
        self._causes: dict[tuple[str, str], _Cause] = {}

    def report(self, kind: str, domain: str, status: int, detail: str) -> bool:
        """Log the failure ``kind`` (an error class name) of origin ``domain`` unless that cause was logged less than
        ``interval`` seconds ago; returns whether a line was written."""
        now = self.clock()
        key = (kind, domain)
        cause = self._causes.get(key)
        if cause is not None and now - cause.last < self.interval:
            cause.suppressed += 1
            return False
        suppressed = cause.suppressed if cause is not None else 0
        first = cause is None
        if cause is None and len(self._causes) >= _MAX_CAUSES:
            self._causes.clear()
        self._causes[key] = _Cause(last=now)
        hint = ""
        if any(marker in detail for marker in _UNRESOLVED):
            hint = f" (is {domain} mapped in the settings' [origins]? e.g. \"{domain}\" = \"127.0.0.1:8000\")"
        more = f" [{suppressed} more since the last line]" if suppressed else ""
        if first and not self.debug_headers:
            more += " ([edge] debug_headers = true puts each request's reason in its X-Edgelab-Error header)"
        self.logger.warning("origin %s failed: %d %s: %s%s%s", domain or "?", status, kind,
                            " ".join(detail.split())[:500], hint, more)
        return True
