"""Lambda@Edge rule tables: event types, disallowed and read-only headers, size and configuration limits.

Pure data plus tiny lookups, shared by :mod:`edge.cdn.lambda_edge.events` (what a function may see),
:mod:`edge.cdn.lambda_edge.results` (what a function may return) and :mod:`edge.cdn.lambda_edge.associations` (what may be
associated). Every value cites the section of ``docs/lambda-edge-contract.md`` it comes from.
"""

from __future__ import annotations

import functools
import re
from types import MappingProxyType

# --- event types (contract §1.1) -------------------------------------------------------------------------

VIEWER_REQUEST = "viewer-request"
ORIGIN_REQUEST = "origin-request"
ORIGIN_RESPONSE = "origin-response"
VIEWER_RESPONSE = "viewer-response"

EVENT_TYPES = (VIEWER_REQUEST, ORIGIN_REQUEST, ORIGIN_RESPONSE, VIEWER_RESPONSE)
REQUEST_EVENTS = frozenset({VIEWER_REQUEST, ORIGIN_REQUEST})
RESPONSE_EVENTS = frozenset({ORIGIN_RESPONSE, VIEWER_RESPONSE})
VIEWER_EVENTS = frozenset({VIEWER_REQUEST, VIEWER_RESPONSE})
ORIGIN_EVENTS = frozenset({ORIGIN_REQUEST, ORIGIN_RESPONSE})
# request.origin is part of the event only on the origin side (§1.5, §1.7)
EVENTS_WITH_ORIGIN = ORIGIN_EVENTS

# --- headers (contract §3.1, §3.2) -----------------------------------------------------------------------

# Disallowed headers: never exposed to a function, and a function may not add them (§3.1, 2023 list).
DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")


def is_disallowed(lname: str) -> bool:
    """True if the lowercase header name ``lname`` is on CloudFront's disallowed list (§3.1)."""
    return lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES)


# Read-only headers per event type: adding, changing or deleting one fails validation (§3.2, 2023 list).
READ_ONLY_HEADERS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        VIEWER_REQUEST: frozenset({"content-length", "host", "transfer-encoding", "via"}),
        ORIGIN_REQUEST: frozenset(
            {
                "accept-encoding",
                "content-length",
                "if-modified-since",
                "if-none-match",
                "if-range",
                "if-unmodified-since",
                "transfer-encoding",
                "via",
            }
        ),
        ORIGIN_RESPONSE: frozenset({"transfer-encoding", "via"}),
        VIEWER_RESPONSE: frozenset({"warning", "via"}),
    }
)

# A viewer-request function may not add CloudFront-Viewer-Country (§3.1): CloudFront adds it later.
VIEWER_REQUEST_FORBIDDEN_ADD = frozenset({"cloudfront-viewer-country"})

# RFC 9110 token characters: what a header field name may consist of.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Control characters that may not appear in a header value (CR, LF, NUL and the other C0 controls but TAB).
HEADER_VALUE_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@functools.lru_cache(maxsize=1024)  # header names repeat: a hit costs ~0.1 us, the split-and-join ~1.4 us
def title_case(lname: str) -> str:
    """The ``key`` Lambda@Edge fills in for a header given without one: ``x-foo-bar`` -> ``X-Foo-Bar`` (§1.3)."""
    return "-".join(part[:1].upper() + part[1:] for part in lname.split("-"))


# --- sizes (contract §1.4, §3.3) -------------------------------------------------------------------------

KB = 1024
MB = 1024 * 1024

# Request body exposed to the function with IncludeBody, truncated beyond this (then inputTruncated=true).
BODY_EXPOSED_LIMIT = MappingProxyType({VIEWER_REQUEST: 40 * KB, ORIGIN_REQUEST: 1 * MB})
# Replaced request body (action=replace), measured on the returned ``data`` string.
BODY_REPLACE_TEXT_LIMIT = MappingProxyType({VIEWER_REQUEST: 40 * KB, ORIGIN_REQUEST: 1 * MB})
BODY_REPLACE_BASE64_LIMIT = MappingProxyType({VIEWER_REQUEST: int(53.2 * KB), ORIGIN_REQUEST: int(1.33 * MB)})
# Generated (or body-replaced) response, headers + body.
GENERATED_RESPONSE_LIMIT = MappingProxyType(
    {VIEWER_REQUEST: 40 * KB, VIEWER_RESPONSE: 40 * KB, ORIGIN_REQUEST: 1 * MB, ORIGIN_RESPONSE: 1 * MB}
)
# uri + querystring after a function changed them must stay below this many characters.
URI_QS_LIMIT = 8192

# --- origin fields (contract §1.5) -----------------------------------------------------------------------

ORIGIN_PROTOCOLS = frozenset({"http", "https"})
ORIGIN_SSL_PROTOCOLS = frozenset({"TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"})
ORIGIN_S3_AUTH_METHODS = frozenset({"origin-access-identity", "none"})
ORIGIN_READ_TIMEOUT_RANGE = (4, 60)
ORIGIN_KEEPALIVE_TIMEOUT_RANGE = (1, 60)
ORIGIN_CUSTOM_DOMAIN_MAX = 253
ORIGIN_S3_DOMAIN_MAX = 128
ORIGIN_PATH_MAX = 255


def origin_port_ok(port: int) -> bool:
    """Ports CloudFront accepts for a custom origin: 80, 443, or 1024-65535."""
    return port in (80, 443) or 1024 <= port <= 65535


# --- function configuration (contract §3.4) --------------------------------------------------------------

EDGE_REGION = "us-east-1"
MAX_TIMEOUT_S = MappingProxyType({VIEWER_REQUEST: 5, VIEWER_RESPONSE: 5, ORIGIN_REQUEST: 30, ORIGIN_RESPONSE: 30})
# Viewer triggers: 128 MB. Origin triggers: the ordinary Lambda range (checked by the Lambda API already).
MAX_MEMORY_MB = MappingProxyType(
    {VIEWER_REQUEST: 128, VIEWER_RESPONSE: 128, ORIGIN_REQUEST: 10240, ORIGIN_RESPONSE: 10240}
)
MAX_CODE_SIZE = MappingProxyType(
    {VIEWER_REQUEST: 1 * MB, VIEWER_RESPONSE: 1 * MB, ORIGIN_REQUEST: 50 * MB, ORIGIN_RESPONSE: 50 * MB}
)
# The runtimes Lambda@Edge accepts ("Restrictions on Lambda@Edge", Supported runtimes: Node.js 22, 20, 18, older
# Node.js deprecated; Python 3.13 down to 3.7; the newest text defers to Lambda's list and names no Node.js 24)
# among those this build runs. Anything else is refused with CloudFront's message at association time
# (``nodejs24.x`` and ``provided.*`` too, unless ``[edge] relax_limits``).
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-at-edge-function-restrictions.html
EDGE_RUNTIMES = frozenset({"nodejs18.x", "nodejs20.x", "nodejs22.x", *(f"python3.{m}" for m in range(7, 14))})
SUPPORTED_ARCHITECTURES = frozenset({"x86_64"})
MAX_EPHEMERAL_STORAGE_MB = 512
