"""Cache behavior selection: CloudFront ``PathPattern`` semantics (contract §5.1).

Ordered, first match wins, default behavior last; case-sensitive; ``*`` matches any sequence of characters
including ``/``; ``?`` exactly one character; the leading ``/`` of a pattern is optional. Query string and
cookies play no part. Each pattern is compiled once, when the distribution is loaded
(:attr:`Behavior.regex`), so matching is a loop of ``fullmatch`` calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # distribution.py imports compile_pattern from here
    from edge.cdn.config.distribution import Behavior, Distribution

__all__ = ["compile_pattern", "match_behavior"]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A CloudFront path pattern as a regex to ``fullmatch`` against the URI path (which starts with ``/``)."""
    pattern = pattern.replace("&amp;", "&")  # how the API spells "&" in patterns (contract §5.1)
    if not pattern.startswith(("/", "*")):
        pattern = "/" + pattern
    out = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
    return re.compile("".join(out), re.DOTALL)


def match_behavior(distribution: Distribution, path: str) -> Behavior:
    """The first cache behavior whose pattern matches ``path`` (URI path, no query), else the default one.

    ``path`` is matched as received (percent-encoded, case-sensitive); a missing leading ``/`` is added.
    """
    if not path.startswith("/"):
        path = "/" + path
    for behavior in distribution.behaviors:
        if behavior.regex is not None and behavior.regex.fullmatch(path):
            return behavior
    return distribution.default_behavior
