"""Readers of request logs: CloudFront standard logs (legacy tab-separated, and standard logging v2 as JSON lines),
gzip-compressed or not, and HAR 1.2 files. One :class:`LogRecord` per request.

- Legacy standard logs: ``#Version: 1.0``, then ``#Fields:`` naming the tab-separated fields of every following
  line; ``-`` is an empty value ("Standard logging reference", log file fields,
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html#BasicDistributionFileFormat).
  CloudFront delivers them gzip-compressed ("Standard logging (legacy)",
  https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html). A file
  without a ``#Fields:`` line is read with the documented 33 fields in their order.
- Standard logging (v2), JSON output: one object per line with the same field names as keys ("Configure standard
  logging (v2)", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging.html);
  ``timestamp`` (epoch seconds) stands in when ``date``/``time`` are not selected.
- HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): ``log.entries[]``; the edge location is the
  response's ``X-Amz-Cf-Pop`` and the result type the first word of its ``X-Cache``.

A line that cannot be read is counted, never fatal: :class:`ReadStats` keeps the count and the first few with their
line numbers and reasons. Only a file that is unreadable or in none of these formats raises :class:`LogReadError`.
"""

from __future__ import annotations

import calendar
import gzip
import itertools
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import orjson

from edge.control.replay.records import LEGACY_FIELDS, LogRecord

__all__ = ["BadLine", "LogReadError", "ReadStats", "iter_log", "read_log"]

MAX_EXAMPLES = 5
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


class LogReadError(Exception):
    """The file cannot be read as a log at all (the message names the file, the problem and the next step)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str
    text: str  # the start of the line, for the report


@dataclass(slots=True)
class ReadStats:
    """What a read saw: the format, lines read, records kept, bad lines (count and the first few)."""

    path: str
    format: str = "?"  # "tsv", "tsv.gz", "json", "json.gz", "har", "har.gz"
    lines: int = 0  # data lines (comments and blank lines excluded); HAR: entries
    records: int = 0
    skipped: int = 0  # good lines a ``select`` filter left out
    bad: int = 0
    examples: list[BadLine] = field(default_factory=list)

    def add_bad(self, line: int, reason: str, text: str) -> None:
        self.bad += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(BadLine(line, reason, text[:120]))

    def merge(self, other: ReadStats) -> None:
        """Add another partition's counts (the same file read by several workers, disjoint selections)."""
        self.lines += other.lines
        self.records += other.records
        self.bad += other.bad  # a bad line belongs to one partition (by its location, "" when unreadable)
        self.examples = sorted([*self.examples, *other.examples], key=lambda b: b.line)[:MAX_EXAMPLES]

    def summary(self) -> str:
        """``N records read from FILE (format); M bad lines: line 7: reason; ...``."""
        text = f"{self.records:,} requests read from {self.path} ({self.format})"
        if self.bad:
            shown = "; ".join(f"line {b.line}: {b.reason}" for b in self.examples)
            more = f" (first {len(self.examples)} shown)" if self.bad > len(self.examples) else ""
            text += f"; {self.bad:,} bad lines skipped{more}: {shown}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "lines": self.lines, "records": self.records,
                "bad": self.bad, "bad_examples": [{"line": b.line, "reason": b.reason, "text": b.text}
                                                  for b in self.examples]}


Select = Callable[[str], bool]  # edge location -> keep this record?


def _open_text(path: Path) -> tuple[IO[str], bool]:
    """The log as text (gzip-compressed when it starts with gzip's magic bytes), undecodable bytes replaced."""
    try:
        with path.open("rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        if gz:
            return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n"), True
        return path.open(encoding="utf-8", errors="replace", newline="\n"), False
    except OSError as exc:
        raise LogReadError(f"{path}: cannot read the log: {exc.strerror or exc}") from None


_DAY_CACHE: dict[str, float] = {}


def _day_epoch(date: str) -> float:
    day = _DAY_CACHE.get(date)
    if day is None:
        y, m, d = date.split("-")
        if len(y) != 4 or len(m) != 2 or len(d) != 2:
            raise ValueError(f"date {date!r} is not YYYY-MM-DD")
        yi, mi, di = int(y), int(m), int(d)
        if not (1 <= mi <= 12 and 1 <= di <= calendar.monthrange(yi, mi)[1]):
            raise ValueError(f"date {date!r} does not exist")
        day = _DAY_CACHE[date] = float(calendar.timegm((yi, mi, di, 0, 0, 0)))
        if len(_DAY_CACHE) > 4096:
            _DAY_CACHE.clear()
    return day


def _timestamp(date: str, time: str) -> float:
    h, m, s = time.split(":")
    hi, mi, sf = int(h), int(m), float(s)
    if not (0 <= hi < 24 and 0 <= mi < 60 and 0 <= sf < 61):
        raise ValueError(f"time {time!r} is not HH:MM:SS")
    return _day_epoch(date) + hi * 3600 + mi * 60 + sf


def _dash(value: str) -> str:
    return "" if value == "-" else value


def _decoded(value: str) -> str:
    value = "" if value == "-" else value
    return unquote(value) if "%" in value else value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None


def _record(line: int, get: Callable[[str], str], ts: float) -> LogRecord:
    """A record from field values by name (``get`` answers ``""`` for a field the log lacks)."""
    method = get("cs-method")
    if method not in _METHODS:
        raise ValueError(f"cs-method {method!r} is not an HTTP method")
    uri = get("cs-uri-stem")
    if not uri.startswith("/"):
        raise ValueError(f"cs-uri-stem {uri!r} does not start with /")
    status = _int(get("sc-status") or "0", "sc-status")
    if status and not 100 <= status <= 599:
        raise ValueError(f"sc-status {status} is not an HTTP status")
    clen = _dash(get("sc-content-len"))
    return LogRecord(
        line=line, ts=ts, location=_dash(get("x-edge-location")), method=method,
        host=_dash(get("cs(Host)")) or _dash(get("x-host-header")), uri=uri, query=_dash(get("cs-uri-query")),
        status=status, result_type=_dash(get("x-edge-result-type")),
        sc_bytes=_int(_dash(get("sc-bytes")) or "0", "sc-bytes"),
        content_len=_int(clen, "sc-content-len") if clen else None,
        cookie=_decoded(get("cs(Cookie)")), user_agent=_decoded(get("cs(User-Agent)")),
        referer=_decoded(get("cs(Referer)")))


def _numbered(f: IO[str], first: str, n0: int) -> Iterator[tuple[int, str]]:
    """The lines of ``f`` numbered from ``first`` (read already, line ``n0``) on."""
    return enumerate(itertools.chain((first,), iter(f.readline, "")), start=n0)


def _iter_tsv(f: IO[str], first: str, n0: int, stats: ReadStats, select: Select | None) -> Iterator[LogRecord]:
    index = {name: i for i, name in enumerate(LEGACY_FIELDS)}
    for n, raw in _numbered(f, first, n0):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        if text.startswith("#"):
            if text.startswith("#Fields:"):
                names = text[len("#Fields:"):].split()
                index = {name: i for i, name in enumerate(names)}
                missing = [k for k in ("cs-method", "cs-uri-stem") if k not in index]
                if missing:
                    raise LogReadError(f"{stats.path}: line {n}: the #Fields line lacks {', '.join(missing)}; "
                                       "replay and what-if need at least the method and the URI stem")
            continue
        if select is not None:  # only the location is split off a line another worker owns
            li = index.get("x-edge-location", -1)
            head = text.split("\t", li + 1) if li >= 0 else []
            if not select(head[li] if 0 <= li < len(head) else ""):
                stats.skipped += 1
                continue
        parts = text.split("\t")
        stats.lines += 1
        if len(parts) < len(index):
            stats.add_bad(n, f"{len(parts)} tab-separated fields, the #Fields line names {len(index)}", text)
            continue

        def get(name: str, parts: list[str] = parts, index: dict[str, int] = index) -> str:
            i = index.get(name)
            return parts[i] if i is not None else ""

        try:
            yield _record(n, get, _timestamp(get("date"), get("time")))
        except ValueError as exc:
            stats.add_bad(n, str(exc), text)
            continue
        stats.records += 1


def _json_ts(obj: dict[str, Any]) -> float:
    if "date" in obj and "time" in obj:
        return _timestamp(str(obj["date"]), str(obj["time"]))
    for key, scale in (("timestamp", 1.0), ("timestamp(ms)", 1000.0)):
        if key in obj:
            try:
                return float(obj[key]) / scale
            except (TypeError, ValueError):
                raise ValueError(f"{key} {obj[key]!r} is not a number") from None
    raise ValueError("no date/time or timestamp field")


def _iter_json_lines(f: IO[str], first: str, n0: int, stats: ReadStats,
                     select: Select | None) -> Iterator[LogRecord]:
    for n, raw in _numbered(f, first, n0):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            obj = exc
        location = str(obj.get("x-edge-location", "")) if isinstance(obj, dict) else ""
        if select is not None and not select(location):
            stats.skipped += 1
            continue
        stats.lines += 1
        if isinstance(obj, orjson.JSONDecodeError):
            stats.add_bad(n, f"not JSON ({obj.msg})", text)
            continue
        if not isinstance(obj, dict):
            stats.add_bad(n, "not a JSON object", text)
            continue

        def get(name: str, obj: dict[str, Any] = obj) -> str:
            v = obj.get(name)
            return "" if v is None else str(v)

        try:
            yield _record(n, get, _json_ts(obj))
        except ValueError as exc:
            stats.add_bad(n, str(exc), text)
            continue
        stats.records += 1


def _har_headers(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in items if isinstance(items, list) else []:
        if isinstance(h, dict) and isinstance(h.get("name"), str):
            name = h["name"].lower()
            value = str(h.get("value", ""))
            out[name] = f"{out[name]}; {value}" if name == "cookie" and name in out else value
    return out


def _har_entry(n: int, entry: Any) -> LogRecord:
    if not isinstance(entry, dict):
        raise ValueError("entry is not an object")
    req, resp = entry.get("request"), entry.get("response")
    if not isinstance(req, dict) or not isinstance(resp, dict):
        raise ValueError("entry lacks request or response")
    try:
        ts = datetime.fromisoformat(str(entry.get("startedDateTime", ""))).timestamp()
    except ValueError:
        raise ValueError(f"startedDateTime {entry.get('startedDateTime')!r} is not ISO 8601") from None
    url = urlsplit(str(req.get("url", "")))
    qh, sh = _har_headers(req.get("headers")), _har_headers(resp.get("headers"))
    content = resp.get("content") if isinstance(resp.get("content"), dict) else {}
    size = content.get("size") if isinstance(content, dict) else None
    body = resp.get("bodySize")
    values = {"cs-method": str(req.get("method", "")), "cs-uri-stem": url.path or "/", "cs-uri-query": url.query,
              "cs(Host)": url.hostname or qh.get("host", ""), "sc-status": str(resp.get("status", "")),
              "x-edge-location": sh.get("x-amz-cf-pop", ""),
              "x-edge-result-type": sh.get("x-cache", "").split(" ", 1)[0],
              "sc-content-len": str(size) if isinstance(size, int) and size >= 0 else "",
              "sc-bytes": str(body) if isinstance(body, int) and body >= 0 else "0",
              "cs(Cookie)": qh.get("cookie", ""), "cs(User-Agent)": qh.get("user-agent", ""),
              "cs(Referer)": qh.get("referer", "")}
    return _record(n, lambda name: values.get(name, ""), ts)


def _iter_har(f: IO[str], first: str, stats: ReadStats, select: Select | None) -> Iterator[LogRecord]:
    try:
        doc = orjson.loads(first + f.read())
    except orjson.JSONDecodeError as exc:
        raise LogReadError(f"{stats.path}: neither JSON lines nor a HAR document: {exc}; export the log again "
                           "(CloudFront standard logs, or HAR 1.2 from the browser's network panel)") from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) and isinstance(doc.get("log"), dict) \
        else None
    if not isinstance(entries, list):
        raise LogReadError(f"{stats.path}: a JSON document without log.entries: not a HAR 1.2 file")
    for n, entry in enumerate(entries, 1):
        try:
            rec: LogRecord | None = _har_entry(n, entry)
            problem = ""
        except ValueError as exc:
            rec, problem = None, str(exc)
        if select is not None and not select(rec.location if rec is not None else ""):
            stats.skipped += 1
            continue
        stats.lines += 1
        if rec is None:
            stats.add_bad(n, f"entry {n}: {problem}", orjson.dumps(entry)[:120].decode(errors="replace"))
            continue
        stats.records += 1
        yield rec


def iter_log(path: str | Path, stats: ReadStats | None = None, select: Select | None = None) -> Iterator[LogRecord]:
    """The records of ``path`` in file order (format detected from the content); counts go to ``stats``.

    ``select`` sees each line's x-edge-location before the line is parsed further (what-if's per-POP workers).
    """
    p = Path(path)
    stats = stats if stats is not None else ReadStats(str(p))
    f, gz = _open_text(p)
    with f:
        try:
            first, n0 = f.readline(), 1
            while first and not first.strip():
                first, n0 = f.readline(), n0 + 1
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise LogReadError(f"{p}: cannot decompress: {exc}") from None
        head = first.lstrip()
        suffix = ".gz" if gz else ""
        try:
            if not head:
                stats.format = "empty"
                return
            if head.startswith("#") or head[:1].isdigit():
                stats.format = "tsv" + suffix
                yield from _iter_tsv(f, first, n0, stats, select)
            elif head.startswith("{"):
                try:
                    obj = orjson.loads(head)
                except orjson.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict) and "log" not in obj:
                    stats.format = "json" + suffix
                    yield from _iter_json_lines(f, first, n0, stats, select)
                else:
                    stats.format = "har" + suffix
                    yield from _iter_har(f, first, stats, select)
            else:
                raise LogReadError(f"{p}: not a CloudFront standard log (#Version/#Fields lines or tab-separated "
                                   "lines), JSON lines (standard logging v2) or HAR 1.2: it starts with "
                                   f"{head[:40]!r}")
        except (EOFError, OSError, zlib.error) as exc:
            raise LogReadError(f"{p}: the file ends early or is corrupt ({exc}); what was read before is lost: "
                               "check the download") from None


def read_log(path: str | Path, select: Select | None = None) -> tuple[list[LogRecord], ReadStats]:
    """Every record of ``path`` (see :func:`iter_log`), with the read's statistics."""
    stats = ReadStats(str(path))
    records = list(iter_log(path, stats, select))
    return records, stats
