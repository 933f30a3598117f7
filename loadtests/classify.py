"""Classify one edgelab response from its headers (pure: no locust, no I/O).

- ``X-Cache`` gives the cache outcome: ``Hit``/``RefreshHit``/``Miss``/``Error``/``LambdaGeneratedResponse``/
  ``LambdaLimitExceeded``/``LambdaExecutionError``/... ``from cloudfront``.
- ``Server-Timing`` gives the edge time, the origin time and one entry per function invocation::

      cdn-cache;desc=MISS, edge;dur=40.2, fn-viewer-request;desc="edge-hello:1 cold init=7.7";dur=11.21,
      origin;dur=2.8, fn-origin-response;desc="default-cache-control:1 warm";dur=0.82

- ``X-Amz-Cf-Pop`` (``IAD48-C1``) gives the POP: its leading letters.

A request is ``cold`` when any function it ran was a cold start, ``warm`` when functions ran and none was cold,
``nofn`` when no function ran, and ``throttled`` when its only function was refused (``LambdaLimitExceeded``:
the last function entry is the refused one, whatever state the POP printed for it). :func:`bucket_name` turns
that into the locust row name ``/ [cold|miss@FRA]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

CACHE_OUTCOMES = {
    "hit": "hit", "refreshhit": "refresh", "miss": "miss", "error": "error",
    "lambdageneratedresponse": "generated", "lambdalimitexceeded": "throttled",
    "lambdaexecutionerror": "fn-error", "lambdavalidationerror": "fn-error", "functionexecutionerror": "fn-error",
    "functionvalidationerror": "fn-error", "functiongeneratedresponse": "generated",
    "functionthrottlederror": "throttled", "redirect": "redirect",
}
_POP_RE = re.compile(r"^([A-Za-z]+)")
_INIT_RE = re.compile(r"init=([0-9.]+)")


@dataclass(frozen=True, slots=True)
class Metric:
    """One Server-Timing entry: ``name;desc="...";dur=1.2`` (dur/desc None when absent)."""

    name: str
    desc: str | None
    dur: float | None


@dataclass(frozen=True, slots=True)
class FunctionTiming:
    """One function invocation reported by the POP."""

    event: str  # viewer-request, origin-request, origin-response, viewer-response
    function: str  # name:version as reported, e.g. "edge-hello:1"
    state: str  # cold | warm | the raw word the POP used (e.g. throttled)
    init_ms: float | None  # Init Duration of a cold start
    dur_ms: float | None  # the invocation as the POP measured it


@dataclass(frozen=True, slots=True)
class Classification:
    status: int
    cache: str  # hit, refresh, miss, error, generated, throttled, fn-error, none, or X-Cache's word lower-cased
    start: str  # cold | warm | nofn
    pop: str  # IAD, FRA... ("?" when unknown)
    edge_ms: float | None
    origin_ms: float | None
    functions: tuple[FunctionTiming, ...]

    @property
    def init_ms(self) -> float:
        """Sum of the Init Durations of the cold starts this request paid for."""
        return sum(f.init_ms or 0.0 for f in self.functions)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, buf, quoted, escaped = [], [], False, False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == sep and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_server_timing(header: str | None) -> list[Metric]:
    """Parse a Server-Timing value (W3C syntax); malformed entries are skipped, never raised."""
    if not header:
        return []
    metrics = []
    for entry in _split_outside_quotes(header, ","):
        pieces = _split_outside_quotes(entry, ";")
        name = pieces[0].strip()
        if not name:
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = _unquote(value)
        metrics.append(Metric(name=name, desc=params.get("desc"), dur=_float(params.get("dur"))))
    return metrics


def function_timing(metric: Metric) -> FunctionTiming | None:
    """A ``fn-<event>`` entry as a :class:`FunctionTiming` (None for other entries)."""
    if not metric.name.startswith("fn-"):
        return None
    words = (metric.desc or "").split()
    function = words[0] if words else "?"
    state = words[1].lower() if len(words) > 1 else "?"
    m = _INIT_RE.search(metric.desc or "")
    return FunctionTiming(event=metric.name[3:], function=function, state=state,
                          init_ms=float(m.group(1)) if m else None, dur_ms=metric.dur)


def cache_outcome(x_cache: str | None) -> str:
    """``Hit from cloudfront`` -> ``hit``; unknown words are kept (lower-cased); no header -> ``none``."""
    if not x_cache or not x_cache.strip():
        return "none"
    word = x_cache.split()[0].lower()
    return CACHE_OUTCOMES.get(word, word)


def pop_name(x_amz_cf_pop: str | None, default: str = "?") -> str:
    """``IAD48-C1`` -> ``IAD``."""
    m = _POP_RE.match((x_amz_cf_pop or "").strip())
    return m.group(1).upper() if m else default


def lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Case-insensitive view of response headers (the first value of a repeated header wins)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        out.setdefault(str(key).lower(), str(value))
    return out


def classify(status: int, headers: Mapping[str, str] | Iterable[tuple[str, str]],
             default_pop: str = "?") -> Classification:
    h = lower_headers(headers)
    metrics = parse_server_timing(h.get("server-timing"))
    fns = tuple(t for t in (function_timing(m) for m in metrics) if t is not None)
    cache = cache_outcome(h.get("x-cache"))
    if cache == "throttled" and fns and fns[-1].state != "throttled":
        # LambdaLimitExceeded: the last function reported is the one that was refused and never ran
        fns = (*fns[:-1], replace(fns[-1], state="throttled", init_ms=None))
    edge = next((m.dur for m in metrics if m.name == "edge"), None)
    origin_durs = [m.dur for m in metrics if m.name == "origin" and m.dur is not None]
    if not fns:
        start = "nofn"
    elif any(f.state == "cold" for f in fns):
        start = "cold"
    elif any(f.state == "warm" for f in fns):
        start = "warm"
    else:
        start = fns[-1].state  # e.g. throttled: no function ran
    return Classification(status=status, cache=cache, start=start,
                          pop=pop_name(h.get("x-amz-cf-pop"), default_pop), edge_ms=edge,
                          origin_ms=sum(origin_durs) if origin_durs else None, functions=fns)


def bucket_name(label: str, c: Classification) -> str:
    """The locust row name: ``/ [warm|hit@IAD]``."""
    return f"{label} [{c.start}|{c.cache}@{c.pop}]"


_BUCKET_RE = re.compile(r"^(?P<label>.*) \[(?P<start>[^|\]]+)\|(?P<cache>[^@\]]+)@(?P<pop>[^\]]+)\]$")


def parse_bucket(name: str) -> tuple[str, str, str, str] | None:
    """Inverse of :func:`bucket_name`: ``(label, start, cache, pop)``, or None for other row names."""
    m = _BUCKET_RE.match(name)
    return (m["label"], m["start"], m["cache"], m["pop"]) if m else None
