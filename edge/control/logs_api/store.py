"""What the CloudWatch Logs API reads: edgelab's log store of one region (``<state>/logs/<region>/``), with the
group and stream facts CloudWatch reports. Blocking file I/O: call from a thread.

Every process (the control process, each POP) appends to its own stream files under the region it executes in
(``edge.invocation.LogStore``), so a region's groups are: ``/aws/lambda/NAME`` (API invokes, us-east-1),
``/aws/lambda/us-east-1.NAME`` (Lambda@Edge replicas, in each POP's region) and
``/aws/cloudfront/LambdaEdge/<DistributionId>`` (CloudFront's validation errors of Lambda@Edge results, in
the POP's region), as CloudWatch names them
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-cloudwatch-metrics-logging.html).
A group exists once something logged to it (Lambda creates the group at the first invocation).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import orjson

from edge.invocation import LogStore
from edge.invocation.models import ACCOUNT_ID

__all__ = ["Event", "GroupInfo", "RegionLogs", "StreamInfo", "group_arn"]

TAIL_PROBE = 65_536  # bytes read from a stream file's end to find its last event


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    created_ms: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    last_ingestion_ms: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class Event:
    """One log event; ``seq`` is its position in its stream, ``(timestamp, stream, seq)`` orders events."""

    timestamp: int
    message: str
    stream: str
    seq: int
    ingestion_ms: int

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.timestamp, self.stream, self.seq)

    @property
    def event_id(self) -> str:
        """A stable decimal id (CloudWatch's eventId is an opaque numeric string)."""
        return f"{self.timestamp:015d}{zlib.crc32(self.stream.encode()):010d}{self.seq:08d}"


def group_arn(name: str, region: str, *, star: bool = True) -> str:
    return f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{name}" + (":*" if star else "")


def _record_ts(line: bytes) -> int | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is list and obj:
        return int(obj[0])
    if isinstance(obj, dict) and "t" in obj:
        return int(obj["t"])
    return None


class RegionLogs:
    """The groups and streams of one region's log directory (read-only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = LogStore(root)

    def _group_dir(self, group: str) -> Path:
        return self.root / quote(group, safe="")

    def _stream_path(self, group: str, stream: str) -> Path:
        return self._group_dir(group) / (quote(stream, safe="") + ".jsonl")

    def groups(self) -> list[GroupInfo]:
        out = []
        for name in self.store.groups():
            streams = self.streams(name)
            if not streams:
                continue
            out.append(GroupInfo(name, min(s.created_ms for s in streams), sum(s.stored_bytes for s in streams)))
        return out

    def has_group(self, group: str) -> bool:
        return self._group_dir(group).is_dir()

    def streams(self, group: str) -> list[StreamInfo]:
        out = []
        for name in self.store.streams(group):
            info = self.stream(group, name)
            if info is not None:
                out.append(info)
        return out

    def stream(self, group: str, stream: str) -> StreamInfo | None:
        path = self._stream_path(group, stream)
        try:
            st = path.stat()
            with path.open("rb") as f:
                first_line = f.readline()
                f.seek(max(0, st.st_size - TAIL_PROBE))
                tail = f.read()
        except FileNotFoundError:
            return None
        first = _record_ts(first_line)
        last = None
        for line in reversed(tail.splitlines()):
            last = _record_ts(line)
            if last is not None:
                break
        created = first if first is not None else int(st.st_mtime * 1000)
        return StreamInfo(stream, created, first, last, int(st.st_mtime * 1000), st.st_size)

    def events(self, group: str, stream: str) -> list[Event]:
        """Every event of one stream, oldest first (the ingestion time is the file's last write: edgelab
        keeps no separate ingestion clock; it is at most one flush interval behind the event)."""
        try:
            ingestion = int(os.stat(self._stream_path(group, stream)).st_mtime * 1000)
        except FileNotFoundError:
            return []
        raw = self.store.read(group, stream=stream)
        return [Event(int(str(e["timestamp"])), str(e["message"]), stream, i, max(ingestion, int(str(e["timestamp"]))))
                for i, e in enumerate(raw)]

    def read_new(self, group: str, offsets: dict[str, int]) -> list[Event]:
        """Events appended to ``group``'s streams since ``offsets`` (stream -> bytes already read; updated in
        place; call :meth:`prime` first: live tail shows what arrives after it started)."""
        out: list[Event] = []
        gdir = self._group_dir(group)
        if not gdir.is_dir():
            return out
        for path in gdir.glob("*.jsonl"):
            stream = unquote(path.name[: -len(".jsonl")])
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            start = offsets.get(stream, 0)  # a stream created since prime() is new from its first byte
            if size <= start:
                continue
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(size - start)
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
            offsets[stream] = start + len(complete)
            now = int(path.stat().st_mtime * 1000)
            for line in complete.splitlines():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if type(obj) is list:
                    out += [Event(int(obj[0]), str(m), stream, -1, now) for m in obj[2]]
                elif isinstance(obj, dict):
                    out.append(Event(int(obj["t"]), str(obj["m"]), stream, -1, now))
        out.sort(key=lambda e: (e.timestamp, e.stream))
        return out

    def prime(self, group: str, offsets: dict[str, int]) -> None:
        """Start ``offsets`` at the current end of every stream of ``group`` (and of streams created later)."""
        gdir = self._group_dir(group)
        if gdir.is_dir():
            for path in gdir.glob("*.jsonl"):
                try:
                    offsets[unquote(path.name[: -len(".jsonl")])] = path.stat().st_size
                except FileNotFoundError:
                    continue
