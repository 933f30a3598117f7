"""Edge chaos scenarios: the TOML file, parsed and validated (pure; ``edge.cdn.chaos.engine`` applies it).

A scenario is a list of faults, each selected by path pattern, POP and time window::

    name = "origin brown-out"       # optional, shown by `edgelab chaos status` and in the log lines
    seed = 7                        # optional (default 0): latency draws and throttle rates are reproducible

    [[fault]]
    kind = "origin-latency"         # origin-latency | origin-error | origin-timeout | origin-refused
                                    # | cold-start | throttle
    paths = ["/api/*"]              # CloudFront path patterns (the cache behaviors' syntax); default every path
    pops = ["IAD"]                  # POP names, or "all" (the default)
    start = 10                      # seconds after the scenario is applied (default 0) ...
    duration = 60                   # ... for this long (default: until the scenario is cleared)
    # at = 2026-12-05T01:00:00Z     # or an absolute start (a TOML date-time with its offset),
    # until = 2026-12-05T01:05:00Z  # and an absolute end (or a duration)
    latency_ms = 250                # fixed; or a distribution:
    # latency = { distribution = "uniform", min_ms = 100, max_ms = 400 }
    #           { distribution = "normal", mean_ms = 200, stddev_ms = 50 }
    #           { distribution = "lognormal", median_ms = 200, sigma = 0.5 }
    #           { distribution = "exponential", mean_ms = 200 }

Kinds and their keys (besides ``kind``, ``paths``, ``pops`` and the window):

* ``origin-latency``: ``latency_ms`` or ``latency``; the origin answers that much later. A delay past the origin's
  ``OriginReadTimeout`` becomes that timeout (504), as on CloudFront;
* ``origin-error``: ``status`` (400-599), optional ``body`` and ``content_type`` (default ``text/plain``): the
  origin answers that (cached like any origin error, for the error caching minimum TTL);
* ``origin-timeout``: the origin does not answer; the fetch fails after the origin's ``OriginReadTimeout`` with
  CloudFront's 504 ("Origin response timeout",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/DownloadDistValuesOrigin.html#DownloadDistValuesOriginResponseTimeout);
* ``origin-refused``: the connection is refused: CloudFront's 502 ("HTTP 502 status code (Bad Gateway)",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-502-bad-gateway.html);
* ``cold-start``: ``function`` (a Lambda function name), optional ``version``, ``count`` (the next N invocations
  per POP run on a new environment, default 1) and ``extra_init_ms`` (added to their Init, default 0);
* ``throttle``: ``function``, optional ``version``, and ``count`` (the next N invocations per POP) or ``rate``
  (that fraction of invocations, 0 < rate <= 1): throttled as Lambda throttles (``Rate exceeded``), which
  CloudFront answers with a 503 ``LambdaLimitExceeded``
  (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-503-service-unavailable.html).

Function faults apply to every path (``paths`` is refused for them). Errors are :class:`ScenarioError`\\ s naming the
key and its line.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.cdn.config.behaviors import compile_pattern

__all__ = [
    "FUNCTION_KINDS",
    "KINDS",
    "ORIGIN_KINDS",
    "Fault",
    "Latency",
    "Scenario",
    "ScenarioError",
    "parse_scenario",
]

ORIGIN_LATENCY, ORIGIN_ERROR, ORIGIN_TIMEOUT, ORIGIN_REFUSED = ("origin-latency", "origin-error", "origin-timeout",
                                                                "origin-refused")
COLD_START, THROTTLE = "cold-start", "throttle"
ORIGIN_KINDS = (ORIGIN_LATENCY, ORIGIN_ERROR, ORIGIN_TIMEOUT, ORIGIN_REFUSED)
FUNCTION_KINDS = (COLD_START, THROTTLE)
KINDS = ORIGIN_KINDS + FUNCTION_KINDS
MAX_FAULTS = 100
MAX_LATENCY_MS = 600_000.0

_COMMON = {"kind", "paths", "pops", "start", "duration", "at", "until"}
_KEYS = {
    ORIGIN_LATENCY: _COMMON | {"latency_ms", "latency"},
    ORIGIN_ERROR: _COMMON | {"status", "body", "content_type"},
    ORIGIN_TIMEOUT: set(_COMMON),
    ORIGIN_REFUSED: set(_COMMON),
    COLD_START: (_COMMON - {"paths"}) | {"function", "version", "count", "extra_init_ms"},
    THROTTLE: (_COMMON - {"paths"}) | {"function", "version", "count", "rate"},
}
_DISTRIBUTIONS = {
    "uniform": ("min_ms", "max_ms"),
    "normal": ("mean_ms", "stddev_ms"),
    "lognormal": ("median_ms", "sigma"),
    "exponential": ("mean_ms",),
}
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ScenarioError(ValueError):
    """A scenario that cannot be applied; the message names the key, its line and what to do."""


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution (milliseconds): ``distribution`` is ``fixed`` or one of ``_DISTRIBUTIONS``."""

    distribution: str
    a: float  # fixed value, min, mean or median
    b: float = 0.0  # max, stddev or sigma


@dataclass(frozen=True, slots=True)
class Fault:
    """One validated fault. The window is relative (``start``/``duration`` seconds after the scenario is applied)
    unless ``at`` is set (epoch seconds; ``until`` or ``at + duration`` ends it). ``end`` None: no end."""

    index: int  # 1-based position in the file (log lines, status)
    kind: str
    paths: tuple[str, ...]  # path patterns; () = every path
    pops: tuple[str, ...]  # upper-case POP names; () = every POP
    start: float = 0.0
    duration: float | None = None
    at: float | None = None
    until: float | None = None
    latency: Latency | None = None
    status: int = 0
    body: bytes = b""
    content_type: str = "text/plain"
    function: str = ""
    version: str | None = None
    count: int | None = None
    rate: float | None = None
    extra_init_ms: float = 0.0

    def window(self, applied_at: float) -> tuple[float, float | None]:
        """(begin, end) in epoch seconds for a scenario applied at ``applied_at``; end None: open."""
        begin = self.at if self.at is not None else applied_at + self.start
        if self.until is not None:
            return begin, self.until
        return begin, None if self.duration is None else begin + self.duration

    def describe(self) -> str:
        """A short human description (log lines, status)."""
        where = ",".join(self.paths) if self.paths else "*"
        what = {ORIGIN_LATENCY: lambda: f"latency {self._latency_text()}",
                ORIGIN_ERROR: lambda: f"status {self.status}",
                ORIGIN_TIMEOUT: lambda: "no answer until the origin read timeout",
                ORIGIN_REFUSED: lambda: "connection refused",
                COLD_START: lambda: f"{self._target()} next {self.count} cold, +{self.extra_init_ms:g} ms Init",
                THROTTLE: lambda: f"{self._target()} " + (f"next {self.count}" if self.count is not None
                                                          else f"rate {self.rate:g}")}[self.kind]()
        return f"{self.kind} #{self.index} ({what}) on {where if self.kind in ORIGIN_KINDS else 'every path'}"

    def _target(self) -> str:
        return f"{self.function}:{self.version}" if self.version else self.function

    def _latency_text(self) -> str:
        lat = self.latency
        assert lat is not None
        if lat.distribution == "fixed":
            return f"{lat.a:g} ms"
        names = _DISTRIBUTIONS[lat.distribution]
        values = ", ".join(f"{n}={v:g}" for n, v in zip(names, (lat.a, lat.b), strict=False))
        return f"{lat.distribution}({values})"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "description": self.describe(),
                "pops": list(self.pops) or "all"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario: its ``source`` (the TOML text, what is sent to the POPs) and its faults."""

    name: str
    seed: int
    faults: tuple[Fault, ...]
    source: str

    def for_pop(self, pop: str) -> tuple[Fault, ...]:
        """The faults that apply to POP ``pop``."""
        up = pop.upper()
        return tuple(f for f in self.faults if not f.pops or up in f.pops)


def _lines(text: str) -> tuple[list[int], dict[str, int]]:
    """Line numbers of the ``[[fault]]`` headers (in order) and of the top-level keys."""
    headers: list[int] = []
    top: dict[str, int] = {}
    in_table = False
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if re.match(r"^\[\[\s*fault\s*\]\]", stripped):
            headers.append(n)
            in_table = True
        elif stripped.startswith("["):
            in_table = True
        elif not in_table:
            m = re.match(r"^([A-Za-z0-9_-]+)\s*=", stripped)
            if m:
                top.setdefault(m.group(1), n)
    return headers, top


def _key_line(text: str, header: int, key: str) -> int:
    """The line of ``key`` inside the table that starts at line ``header`` (the header's line if not found)."""
    lines = text.splitlines()
    for n in range(header, len(lines)):
        stripped = lines[n].strip()
        if stripped.startswith("["):
            break
        if re.match(rf"^{re.escape(key)}\s*=", stripped):
            return n + 1
    return header


class _Fault:
    """Validation of one ``[[fault]]`` table (errors name ``fault[i].key`` and the line)."""

    def __init__(self, data: Mapping[str, Any], i: int, text: str, header: int) -> None:
        self.data, self.i, self.text, self.header = data, i, text, header

    def fail(self, key: str | None, message: str) -> ScenarioError:
        line = _key_line(self.text, self.header, key) if key else self.header
        where = f"fault[{self.i}].{key}" if key else f"fault[{self.i}]"
        return ScenarioError(f"line {line}: {where}: {message}")

    def number(self, key: str, default: float | None, *, lo: float = 0.0, hi: float = math.inf,
               lo_open: bool = False) -> float | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(key, f"must be a number, not {value!r}")
        if value < lo or (lo_open and value == lo) or value > hi:
            bound = f"> {lo:g}" if lo_open else f">= {lo:g}"
            raise self.fail(key, f"{value!r} is out of range: must be {bound} and <= {hi:g}")
        return float(value)

    def integer(self, key: str, default: int | None, *, lo: int, hi: int) -> int | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"{value} is out of range {lo}..{hi}")
        return value

    def string(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {value!r}")
        return value

    def instant(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise self.fail(key, f"must be a TOML date-time with an offset, like 2026-12-05T01:00:00Z, not {value!r}")
        return value.timestamp()

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a non-empty list of strings, not {value!r}")
        return tuple(value)


def _latency(v: _Fault) -> Latency:
    fixed, spec = v.data.get("latency_ms"), v.data.get("latency")
    if (fixed is None) == (spec is None):
        raise v.fail(None, 'origin-latency needs exactly one of latency_ms = 250 or latency = { distribution = '
                           '"uniform", min_ms = 100, max_ms = 400 }')
    if fixed is not None:
        value = v.number("latency_ms", None, hi=MAX_LATENCY_MS)
        assert value is not None
        return Latency("fixed", value)
    if not isinstance(spec, dict):
        raise v.fail("latency", "must be an inline table like { distribution = \"uniform\", min_ms = 100, max_ms = 400 }")
    kind = spec.get("distribution")
    if kind not in _DISTRIBUTIONS:
        raise v.fail("latency", f"distribution {kind!r} is not one of {', '.join(_DISTRIBUTIONS)}")
    names = _DISTRIBUTIONS[kind]
    unknown = sorted(set(spec) - {"distribution", *names})
    missing = [n for n in names if n not in spec]
    if unknown or missing:
        raise v.fail("latency", f"a {kind} distribution takes {', '.join(names)}"
                                f"{f'; unknown: {unknown}' if unknown else ''}{f'; missing: {missing}' if missing else ''}")
    values = []
    for n in names:
        x = spec[n]
        if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x <= MAX_LATENCY_MS:
            raise v.fail("latency", f"{n} must be a number between 0 and {MAX_LATENCY_MS:g}, not {x!r}")
        values.append(float(x))
    if kind == "uniform" and values[0] > values[1]:
        raise v.fail("latency", f"min_ms ({values[0]:g}) is above max_ms ({values[1]:g})")
    if kind in ("lognormal", "exponential") and values[0] <= 0:
        raise v.fail("latency", f"{names[0]} must be above 0")
    return Latency(kind, *values)


def _fault(data: Any, i: int, text: str, header: int) -> Fault:
    v = _Fault(data if isinstance(data, dict) else {}, i, text, header)
    if not isinstance(data, dict):
        raise v.fail(None, "must be a table ([[fault]])")
    kind = data.get("kind")
    if kind not in KINDS:
        raise v.fail("kind" if "kind" in data else None,
                     f"kind {kind!r} is not one of {', '.join(KINDS)}" if kind is not None
                     else f"missing kind (one of {', '.join(KINDS)})")
    unknown = sorted(set(data) - _KEYS[kind])
    if unknown:
        hint = " (function faults apply to every path)" if "paths" in unknown else ""
        raise v.fail(unknown[0], f"unknown key for a {kind} fault{hint}; known: {', '.join(sorted(_KEYS[kind]))}")
    paths = v.strings("paths")
    for p in paths:
        if len(p) > 255:
            raise v.fail("paths", f"path pattern {p[:40]!r}... is over 255 characters (CloudFront's limit)")
        compile_pattern(p)
    pops_value = data.get("pops", "all")
    pops: tuple[str, ...] = ()
    if not (isinstance(pops_value, str) and pops_value.lower() == "all"):
        pops = tuple(p.upper() for p in v.strings("pops"))
    start = v.number("start", 0.0, hi=31_536_000.0)
    duration = v.number("duration", None, lo=0.0, hi=31_536_000.0, lo_open=True)
    at, until = v.instant("at"), v.instant("until")
    if "start" in data and at is not None:
        raise v.fail("start", "give either start (seconds after the scenario is applied) or at (a date-time), not both")
    if until is not None:
        if at is None:
            raise v.fail("until", "until needs at (an absolute window); use duration with start")
        if duration is not None:
            raise v.fail("until", "give either until or duration, not both")
        if until <= at:
            raise v.fail("until", "until must be after at")
    fields: dict[str, Any] = {"index": i, "kind": kind, "paths": paths, "pops": pops, "start": start or 0.0,
                              "duration": duration, "at": at, "until": until}
    if kind == ORIGIN_LATENCY:
        fields["latency"] = _latency(v)
    elif kind == ORIGIN_ERROR:
        if "status" not in data:
            raise v.fail(None, "an origin-error fault needs status = 503 (400-599)")
        fields["status"] = v.integer("status", None, lo=400, hi=599)
        fields["body"] = (v.string("body", "") or "").encode()
        content_type = v.string("content_type", "text/plain") or "text/plain"
        if "\r" in content_type or "\n" in content_type:
            raise v.fail("content_type", "must be one header line")
        fields["content_type"] = content_type
    elif kind in FUNCTION_KINDS:
        function = v.string("function", None)
        if not function:
            raise v.fail(None, f"a {kind} fault needs function = \"NAME\" (the Lambda function's name)")
        if not _NAME.match(function):
            raise v.fail("function", f"{function!r} is not a Lambda function name (letters, digits, - and _)")
        version = data.get("version")
        if version is not None:
            version = str(version) if isinstance(version, int) and not isinstance(version, bool) else version
            if not isinstance(version, str) or not (version.isdigit() or version == "$LATEST"):
                raise v.fail("version", f"must be a version number or \"$LATEST\", not {data.get('version')!r}")
        fields["function"], fields["version"] = function, version
        if kind == COLD_START:
            fields["count"] = v.integer("count", 1, lo=1, hi=1_000_000)
            fields["extra_init_ms"] = v.number("extra_init_ms", 0.0, hi=MAX_LATENCY_MS) or 0.0
        else:
            if ("count" in data) == ("rate" in data):
                raise v.fail(None, "a throttle fault needs exactly one of count = N (the next N invocations) "
                                   "or rate = 0.5 (that fraction of invocations)")
            fields["count"] = v.integer("count", None, lo=1, hi=1_000_000)
            fields["rate"] = v.number("rate", None, lo=0.0, hi=1.0, lo_open=True)
    return Fault(**fields)


def parse_scenario(text: str) -> Scenario:
    """Parse and validate a scenario file's ``text``; :class:`ScenarioError` names the bad key and its line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}") from None
    headers, top = _lines(text)
    unknown = sorted(set(data) - {"name", "seed", "fault"})
    if unknown:
        key = unknown[0]
        raise ScenarioError(f"line {top.get(key, 1)}: unknown top-level key {key!r}; a scenario has name, seed and "
                            "[[fault]] tables")
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 256:
        raise ScenarioError(f"line {top.get('name', 1)}: name must be a string of at most 256 characters")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"line {top.get('seed', 1)}: seed must be an integer, not {seed!r}")
    tables = data.get("fault", [])
    if not isinstance(tables, list):
        raise ScenarioError(f"line {top.get('fault', 1)}: fault must be an array of tables: write [[fault]]")
    if not tables:
        raise ScenarioError("the scenario has no [[fault]] table: add at least one (to stop all faults, clear the "
                            "scenario: edgelab chaos clear)")
    if len(tables) > MAX_FAULTS:
        raise ScenarioError(f"{len(tables)} faults: at most {MAX_FAULTS} per scenario")
    faults = tuple(_fault(t, i, text, headers[i - 1] if i - 1 < len(headers) else 1)
                   for i, t in enumerate(tables, 1))
    return Scenario(name=name, seed=seed, faults=faults, source=text)
