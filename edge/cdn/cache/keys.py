"""Cache keys: CloudFront's primary key per cache policy, plus the RFC 9111 §4.1 Vary secondary key.

Pure functions, no I/O. Rules (contract §5.2):

* The key always holds the distribution domain (so caches are per distribution) and the URI path;
  ``OPTIONS`` requests get their own key, GET and HEAD share one.
* Query strings: none / whitelist / allExcept / all. Names and values are case-sensitive and **order is
  kept** (``?a=1&b=2`` and ``?b=2&a=1`` are different keys); only ``&`` separates parameters.
* Headers: listed names only (case-insensitive names, case-sensitive values).
* Cookies: none / whitelist / allExcept / all, case-sensitive, sorted by name.
* With EnableAcceptEncodingGzip/Brotli, a normalised ``Accept-Encoding`` (``br,gzip``/``gzip``/``br``) is part
  of the key; absent when the viewer accepts neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edge.cdn.config.policies import CachePolicy, KeyList
from edge.cdn.models import header_all

__all__ = ["cache_key", "key_querystring", "normalize_accept_encoding", "parse_cookies", "select_cookies",
           "vary_names", "vary_values"]

_SEP = "\x1f"  # unit separator: cannot appear in a URI, header value or cookie after HTTP parsing


def key_querystring(rule: KeyList, querystring: str) -> str:
    """The part of the raw query string (no ``?``) that goes into the key; parameter order is preserved."""
    if rule.behavior == "none" or not querystring:
        return ""
    if rule.behavior == "all":
        return querystring
    kept = [p for p in querystring.split("&") if p and rule.includes(p.partition("=")[0])]
    return "&".join(kept)


def parse_cookies(cookie_headers: Iterable[str]) -> list[tuple[str, str]]:
    """``Cookie`` header values -> ``[(name, value)]`` in order; malformed pairs (no ``=``) are dropped."""
    out: list[tuple[str, str]] = []
    for header in cookie_headers:
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                out.append((name, value))
    return out


def select_cookies(rule: KeyList, cookie_headers: Iterable[str]) -> list[tuple[str, str]]:
    """Cookies selected by ``rule``, sorted by name (CloudFront forwards them sorted)."""
    if rule.behavior == "none":
        return []
    return sorted((c for c in parse_cookies(cookie_headers) if rule.includes(c[0])), key=lambda c: c[0])


def normalize_accept_encoding(value: str | None, gzip: bool, brotli: bool) -> str | None:
    """CloudFront's normalised Accept-Encoding: ``"br,gzip"``, ``"br"``, ``"gzip"`` or None.

    Codings with ``q=0`` are refused; other codings and ``*`` are ignored (contract §5.2).
    """
    if not value or not (gzip or brotli):
        return None
    accepted: set[str] = set()
    for item in value.split(","):
        coding, *params = (x.strip() for x in item.split(";"))
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            accepted.add(coding.lower())
    flags = [c for c, on in (("br", brotli), ("gzip", gzip)) if on and c in accepted]
    return ",".join(flags) or None


def cache_key(domain: str, policy: CachePolicy, method: str, uri: str, querystring: str,
              headers: Sequence[tuple[str, str]]) -> str:
    """The primary cache key (a compact string) for a viewer request after viewer-request triggers ran."""
    parts = [domain.lower(), "OPTIONS" if method.upper() == "OPTIONS" else "", uri,
             key_querystring(policy.query_strings, querystring)]
    if policy.headers.behavior != "none":
        for name in sorted({n.lower() for n in policy.headers.names}):
            values = header_all(headers, name)
            parts.append(f"h:{name}={','.join(values)}" if values else f"h:{name}")
    if policy.cookies.behavior != "none":
        cookies = select_cookies(policy.cookies, header_all(headers, "cookie"))
        parts.append("c:" + ";".join(f"{n}={v}" for n, v in cookies))
    if policy.gzip or policy.brotli:
        ae = normalize_accept_encoding(
            ",".join(header_all(headers, "accept-encoding")) or None, policy.gzip, policy.brotli)
        parts.append(f"ae:{ae or ''}")
    return _SEP.join(parts)


def vary_names(response_headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Lower-cased, de-duplicated, sorted field names of the response's ``Vary`` (``("*",)`` for ``Vary: *``)."""
    names: set[str] = set()
    for k, v in response_headers:
        if k.lower() == "vary":
            names.update(n.strip().lower() for n in v.split(",") if n.strip())
    return ("*",) if "*" in names else tuple(sorted(names))


def vary_values(names: Sequence[str], request_headers: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The request's values for each Vary field (RFC 9111 §4.1): combined field values, whitespace-normalised.

    ``Accept-Encoding`` is compared after CloudFront's normalisation, so ``gzip, deflate, br`` and
    ``br, gzip`` select the same variant.
    """
    out = []
    for name in names:
        values = header_all(request_headers, name)
        if name == "accept-encoding":
            out.append(normalize_accept_encoding(",".join(values) or None, True, True) or "")
        else:
            out.append(",".join(" ".join(v.split()) for v in values) if values else "\x00")
    return tuple(out)
