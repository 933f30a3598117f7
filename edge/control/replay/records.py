"""One logged viewer request, as the readers (:mod:`edge.control.replay.readers`) give it to replay and what-if.

The fields are those of CloudFront's standard logs ("Standard logging reference", log file fields,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html#BasicDistributionFileFormat):
the legacy tab-separated files name them in their ``#Fields:`` line, standard logging (v2) in JSON uses the same
names as keys. HAR 1.2 entries carry the same facts in their request and response (the POP in ``X-Amz-Cf-Pop``,
the result in ``X-Cache``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEGACY_FIELDS", "LogRecord", "result_of_x_cache"]

# The 33 fields of a legacy standard log line, in their documented order (the "#Fields:" line of every file).
LEGACY_FIELDS = (
    "date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem", "sc-status",
    "cs(Referer)", "cs(User-Agent)", "cs-uri-query", "cs(Cookie)", "x-edge-result-type", "x-edge-request-id",
    "x-host-header", "cs-protocol", "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
    "x-edge-response-result-type", "cs-protocol-version", "fle-status", "fle-encrypted-fields", "c-port",
    "time-to-first-byte", "x-edge-detailed-result-type", "sc-content-type", "sc-content-len", "sc-range-start",
    "sc-range-end",
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A viewer request and what CloudFront answered. Empty strings stand for the log's ``-``."""

    line: int  # 1-based line number in the (decompressed) file; the entry number for HAR
    ts: float  # epoch seconds (UTC) the log gives for the request
    location: str  # x-edge-location, e.g. "IAD89-C1" ("" when the log does not say)
    method: str
    host: str  # cs(Host) (the distribution's domain) or x-host-header
    uri: str  # cs-uri-stem, as logged (percent-encoded)
    query: str  # cs-uri-query without "?" ("" for none)
    status: int  # sc-status (0: the viewer went away before CloudFront answered)
    result_type: str  # x-edge-result-type: Hit, RefreshHit, Miss, Error, LimitExceeded, ...
    sc_bytes: int = 0  # bytes CloudFront served to the viewer, headers included
    content_len: int | None = None  # sc-content-len: the response body's Content-Length, when known
    cookie: str = ""  # cs(Cookie), decoded
    user_agent: str = ""  # cs(User-Agent), decoded
    referer: str = ""  # cs(Referer), decoded

    @property
    def pop_code(self) -> str:
        """The edge location without its server suffix: ``IAD89-C1`` -> ``IAD89`` (the cache the request used)."""
        return self.location.partition("-")[0] or "-"

    @property
    def body_bytes(self) -> int:
        """The object's size as served: sc-content-len when logged, else sc-bytes (which includes headers)."""
        return self.content_len if self.content_len is not None else self.sc_bytes

    def headers(self) -> list[tuple[str, str]]:
        """The viewer request headers the log records (Host, User-Agent, Referer, Cookie)."""
        out = [("Host", self.host)] if self.host else []
        if self.user_agent:
            out.append(("User-Agent", self.user_agent))
        if self.referer:
            out.append(("Referer", self.referer))
        if self.cookie:
            out.append(("Cookie", self.cookie))
        return out


def result_of_x_cache(x_cache: str) -> str:
    """``Hit from cloudfront`` -> ``Hit`` (the x-edge-result-type vocabulary); ``""`` when absent."""
    return x_cache.split(" ", 1)[0] if x_cache else ""
