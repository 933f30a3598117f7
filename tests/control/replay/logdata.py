"""Log lines for the reader, replay and what-if tests: legacy standard log lines built field by field."""

from __future__ import annotations

import time

from edge.control.replay.records import LEGACY_FIELDS

BASE = 1_767_225_600  # 2026-01-01T00:00:00Z
HEADER = "#Version: 1.0\n#Fields: " + " ".join(LEGACY_FIELDS) + "\n"


def tsv_line(t: float, location: str, method: str, uri: str, status: int = 200, size: int = 1000,
             result: str = "Miss", query: str = "-", cookie: str = "-", ua: str = "test%20agent") -> str:
    stamp = time.gmtime(BASE + t)
    values = {"date": time.strftime("%Y-%m-%d", stamp), "time": time.strftime("%H:%M:%S", stamp),
              "x-edge-location": location, "sc-bytes": str(size + 300), "cs-method": method,
              "cs(Host)": "d111111abcdef8.cloudfront.net", "cs-uri-stem": uri, "sc-status": str(status),
              "cs(User-Agent)": ua, "cs-uri-query": query, "cs(Cookie)": cookie, "x-edge-result-type": result,
              "sc-content-len": str(size)}
    return "\t".join(values.get(f, "-") for f in LEGACY_FIELDS) + "\n"
